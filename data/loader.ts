/**
 * Batches assembled in workers: the dataset is copied once into shared memory, then each batch
 * (crops, flips, colour noise, mean subtraction) is built by a worker while the caller is busy
 * with the previous one, and arrives as a packed Float32Array ready for the device.
 *
 * @module
 */
import { type BatchOptions, type Dataset, makeBatch } from "./dataset.ts";
import { WorkerPool } from "./workers.ts";

function shared<T extends Uint8Array | Int32Array | Float32Array>(a: T): T {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const copy = new (a.constructor as new (b: SharedArrayBuffer) => T)(
    new SharedArrayBuffer(a.byteLength),
  );
  copy.set(a as never);
  return copy;
}

/**
 * Builds batches of one dataset in a worker pool (or, with `workers` 0, on the calling thread).
 *
 * @example
 * ```ts
 * import { BatchLoader } from "./loader.ts";
 * const d = { count: 2, shape: [1, 1, 2] as [number, number, number],
 *   images: new Uint8Array([0, 255, 255, 0]), labels: new Int32Array([4, 7]), classes: [] };
 * const loader = new BatchLoader(d, 1);
 * const b = await loader.batch([1], { mean: new Float32Array(2) });
 * console.log(b.input, b.labels); // Float32Array [1, 0] Int32Array [7]
 * loader.close();
 * ```
 */
export class BatchLoader {
  readonly #dataset: Dataset;
  readonly #pool?: WorkerPool;
  readonly #means = new WeakMap<Float32Array, Float32Array>();

  /** Shares `dataset` with `workers` workers (default: one per core). */
  constructor(dataset: Dataset, workers = navigator.hardwareConcurrency || 1) {
    this.#dataset = workers > 0
      ? { ...dataset, images: shared(dataset.images), labels: shared(dataset.labels) }
      : dataset;
    if (workers > 0) this.#pool = new WorkerPool(workers);
  }

  /** The examples `indices` as a batch (see {@linkcode makeBatch}). */
  batch(
    indices: ArrayLike<number>,
    options: BatchOptions,
  ): Promise<{ input: Float32Array; labels: Int32Array }> {
    if (!this.#pool) return Promise.resolve(makeBatch(this.#dataset, indices, options));
    // The mean goes to shared memory once, not with every batch.
    let mean = this.#means.get(options.mean);
    if (!mean) this.#means.set(options.mean, mean = shared(options.mean));
    return this.#pool.run({
      kind: "batch",
      args: {
        dataset: this.#dataset,
        indices: Int32Array.from(indices),
        options: { ...options, mean },
      },
    });
  }

  /** Stops the workers. */
  close(): void {
    this.#pool?.close();
  }
}
