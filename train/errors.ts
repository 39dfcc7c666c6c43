/**
 * How a training run fails: a fault (named by step, with the checkpoint to resume from) or a
 * diverging loss.
 *
 * @module
 */

/**
 * A run stopped by a fault (a failed step, a lost device, a failed write): the message names the
 * step and the checkpoint to resume from, which the fault left intact.
 *
 * @example
 * ```ts
 * import { TrainingError } from "./errors.ts";
 * const e = new TrainingError("step 7 (epoch 1, batch 7) failed: ...");
 * console.log(e instanceof Error); // true
 * ```
 */
export class TrainingError extends Error {
  /**
   * An error with `message`, caused by `cause`.
   *
   * @example
   * ```ts
   * import { TrainingError } from "./errors.ts";
   * console.log(new TrainingError("step 3 failed").name); // TrainingError
   * ```
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TrainingError";
  }
}

/**
 * A loss that is NaN or infinite: training stops, the last checkpoint stays.
 *
 * @example
 * ```ts
 * import { DivergedError } from "./errors.ts";
 * console.log(new DivergedError("the loss became NaN at step 3").name); // "DivergedError"
 * ```
 */
export class DivergedError extends Error {
  /** Names the step and the checkpoint to resume from. */
  constructor(message: string) {
    super(message);
    this.name = "DivergedError";
  }
}

/**
 * A guard for a run's work: any fault inside `work` (a failed step, a lost device, a failed write)
 * becomes one {@linkcode TrainingError} saying where, why, and how to go on from the checkpoint
 * at `checkpointPath`.
 *
 * @example
 * ```ts
 * import { faultGuard } from "./errors.ts";
 * const guard = faultGuard("/nonexistent/checkpoint.safetensors");
 * await guard("step 1", () => Promise.reject(new Error("lost"))).catch((e) => console.log(e.message));
 * // "step 1 failed: lost; no checkpoint was written yet"
 * ```
 */
export function faultGuard(
  checkpointPath: string,
): <T>(where: string, work: () => Promise<T>) => Promise<T> {
  const resumeHint = async () =>
    await Deno.stat(checkpointPath).then(
      () => `the last checkpoint (${checkpointPath}) is intact: resume with --resume`,
      () => "no checkpoint was written yet",
    );
  return async (where, work) => {
    try {
      return await work();
    } catch (e) {
      if (e instanceof DivergedError || e instanceof TrainingError) throw e;
      const message = (e as Error).message;
      const hint = /out of memory|OutOfMemory/i.test(message)
        ? " (the device ran out of memory: try a smaller --batch)"
        : "";
      throw new TrainingError(`${where} failed: ${message}${hint}; ${await resumeHint()}`, {
        cause: e,
      });
    }
  };
}
