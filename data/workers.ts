/**
 * A pool of Deno Workers for the CPU side of training: decoding image files and assembling
 * augmented batches run beside the main thread, which only feeds the GPU (the paper likewise
 * prepared batches on the CPU while the GPUs trained on the previous one).
 *
 * @module
 */

/** One job for a worker of `data/worker.ts`. */
export type Job =
  | { kind: "decode"; path: string; channels: 1 | 3; size: number }
  | { kind: "batch"; args: unknown };

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/**
 * Workers running `data/worker.ts`; each job goes to the least-loaded one.
 *
 * @example
 * ```ts
 * import { WorkerPool } from "./workers.ts";
 * const pool = new WorkerPool(1);
 * const r = await pool.run({ kind: "decode", path: "/nonexistent.png", channels: 3, size: 8 });
 * console.log(r); // { error: "NotFound: ..." }
 * pool.close();
 * ```
 */
export class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly #pending: Map<number, Pending>[] = [];
  #next = 0;

  /** Starts `size` workers (default: one per CPU core). */
  constructor(size = navigator.hardwareConcurrency || 1) {
    for (let w = 0; w < size; w++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
      const pending = new Map<number, Pending>();
      worker.onmessage = (e: MessageEvent<{ id: number; result: unknown }>) => {
        pending.get(e.data.id)?.resolve(e.data.result);
        pending.delete(e.data.id);
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        for (const p of pending.values()) p.reject(new Error(`data worker failed: ${e.message}`));
        pending.clear();
      };
      this.#workers.push(worker);
      this.#pending.push(pending);
    }
  }

  /** Runs a job on the least-loaded worker and resolves with its result. */
  run<T>(job: Job, transfer: Transferable[] = []): Promise<T> {
    let w = 0;
    for (let i = 1; i < this.#workers.length; i++) {
      if (this.#pending[i].size < this.#pending[w].size) w = i;
    }
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending[w].set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#workers[w].postMessage({ id, job }, transfer);
    });
  }

  /** Stops the workers; jobs still running are abandoned. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    for (const p of this.#pending) {
      for (const job of p.values()) job.reject(new Error("worker pool closed"));
      p.clear();
    }
  }
}
