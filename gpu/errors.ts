/**
 * How a device's failures become exceptions: WebGPU reports validation errors, out-of-memory and
 * device loss asynchronously, so every call runs inside error scopes that are popped lazily and
 * checked at the next readback, and every wait races the device's loss instead of hanging.
 *
 * @module
 */

/**
 * Error thrown for any failure of the WebGPU device: validation, memory, loss, missing adapter.
 *
 * @example
 * ```ts
 * import { Gpu } from "./device.ts";
 * import { GpuError } from "./errors.ts";
 * const gpu = await Gpu.create();
 * gpu.destroy();
 * try {
 *   gpu.buffer(4, "after destroy");
 * } catch (e) {
 *   console.log(e instanceof GpuError); // true
 * }
 * ```
 */
export class GpuError extends Error {
  /**
   * Wraps a message.
   *
   * @example
   * ```ts
   * import { GpuError } from "./errors.ts";
   * const e = new GpuError("device lost");
   * console.assert(e.name === "GpuError");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

/**
 * The errors of one device: its scopes' outcomes, uncaptured errors and loss.
 *
 * @example
 * ```ts ignore
 * const errors = new ErrorCapture(device, () => destroyed);
 * errors.scoped(() => device.createBuffer(descriptor));
 * await errors.check(); // throws what the call raised
 * ```
 */
export class ErrorCapture {
  readonly #device: GPUDevice;
  #scopes: Promise<GPUError | null>[] = [];
  #uncaptured: string[] = [];
  #lost: string | null = null;
  readonly #lostPromise: Promise<never>;

  /** Listens to `device`; `destroyed` tells a loss we caused from one the driver did. */
  constructor(device: GPUDevice, destroyed: () => boolean) {
    this.#device = device;
    device.addEventListener("uncapturederror", (event) => {
      this.#uncaptured.push((event as GPUUncapturedErrorEvent).error.message);
    });
    this.#lostPromise = device.lost.then((info) => {
      this.#lost = info.message || String(info.reason);
      throw new GpuError(
        destroyed() ? "the GPU device was destroyed" : `the GPU device was lost: ${this.#lost}`,
      );
    });
    this.#lostPromise.catch(() => {}); // observed through guard(); never an unhandled rejection
  }

  /** Why the device was lost, or null while it is not. */
  get lost(): string | null {
    return this.#lost;
  }

  /** Runs `body` inside validation, out-of-memory and internal error scopes, popped lazily. */
  scoped<T>(body: () => T): T {
    const device = this.#device;
    device.pushErrorScope("internal");
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    try {
      return body();
    } finally {
      // A scope of a lost device rejects (Dawn: "Instance dropped"); held, it must not go unhandled.
      for (let i = 0; i < 3; i++) this.#scopes.push(device.popErrorScope().catch(lostScope));
    }
  }

  /** Races `promise` with device loss, so that no wait hangs on a lost device. */
  async guard<T>(promise: Promise<T>): Promise<T> {
    try {
      return await Promise.race([promise, this.#lostPromise]);
    } catch (e) {
      // Dawn aborts pending maps and scopes when its GPU process goes, before `lost` settles.
      if (this.#lost !== null || /instance/i.test((e as Error).message)) {
        throw new GpuError(`the GPU device was lost: ${(e as Error).message}`);
      }
      throw e;
    }
  }

  /** Throws the first error reported since the last check (see `Gpu.check`). */
  async check(): Promise<void> {
    const scopes = this.#scopes;
    this.#scopes = [];
    const errors = await this.guard(Promise.all(scopes));
    const messages = errors.filter((e) => e !== null).map((e) => e!.message);
    messages.push(...this.#uncaptured.splice(0));
    if (messages.length > 0) throw new GpuError(`WebGPU error: ${messages.join("\n")}`);
  }
}

/** A scope that could not be popped, as the error it stands for. */
function lostScope(e: Error): GPUError {
  return { message: `the GPU device was lost: ${e.message}` } as GPUError;
}
