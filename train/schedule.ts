/**
 * The learning-rate schedule: the paper's rule (divide by 10 when the validation error stops
 * improving) or division by 10 at fixed epochs.
 *
 * @module
 */
import type { TrainerState, TrainOptions } from "./trainer.ts";

/** What the schedule reads of a run's options. */
type ScheduleOptions = Pick<TrainOptions, "lr" | "lrSteps" | "patience">;

/** What the schedule keeps in a run's state. */
type ScheduleState = Pick<TrainerState, "lr" | "bestError" | "staleEpochs">;

/**
 * The learning rate at the start of `epoch` (0-based) under fixed steps, or the current one under
 * the paper's rule (which changes it only after validation, {@linkcode afterValidation}).
 *
 * @example
 * ```ts
 * import { rateAtEpoch } from "./schedule.ts";
 * console.log(rateAtEpoch({ lr: 0.01, lrSteps: [2], patience: 2 }, 0.01, 3)); // 0.001
 * ```
 */
export function rateAtEpoch(options: ScheduleOptions, current: number, epoch: number): number {
  if (options.lrSteps.length === 0) return current;
  return options.lr * 0.1 ** options.lrSteps.filter((e) => e <= epoch).length;
}

/**
 * The paper's rule after an epoch's validation error `error`: a better error resets the count,
 * `patience` epochs without one divide the rate by 10. Returns the new rate where it changed.
 * Nothing changes under fixed steps.
 *
 * @example
 * ```ts
 * import { afterValidation } from "./schedule.ts";
 * const state = { lr: 0.01, bestError: 0.2, staleEpochs: 1 };
 * console.log(afterValidation({ lr: 0.01, lrSteps: [], patience: 2 }, state, 0.3)); // 0.001
 * ```
 */
export function afterValidation(
  options: ScheduleOptions,
  state: ScheduleState,
  error: number,
): number | undefined {
  if (options.lrSteps.length > 0) return undefined;
  if (error < state.bestError - 1e-4) {
    state.bestError = error;
    state.staleEpochs = 0;
  } else if (++state.staleEpochs >= options.patience) {
    state.lr /= 10;
    state.staleEpochs = 0;
    return state.lr;
  }
  return undefined;
}
