/**
 * The network's side of a tower in a Worker (`tower_worker.ts`): requests of
 * `protocol.ts` posted with an id, answered in order.
 *
 * @module
 */
import type { GpuOptions } from "../gpu/device.ts";
import type { TuningTable } from "../kernels/gemm/tuning.ts";
import type { TowerInfo, TowerSpec } from "../layers/tower.ts";
import type { Answer, CallArgs, Reply, Request, TowerCall, TowerHandle } from "./protocol.ts";

type Body<T> = T extends unknown ? Omit<T, "id"> : never;

// The browser build inlines this module into mod.js, with the worker's bundle in parallel/ beside it.
const TOWER_WORKER = import.meta.url.endsWith("/worker_tower.ts")
  ? "./tower_worker.ts"
  : "./parallel/tower_worker.js";

/**
 * Starts a worker, acquires a device there (its own `requestAdapter()`) and builds the tower on it.
 *
 * @example
 * ```ts
 * import { workerTower } from "./worker_tower.ts";
 * const tower = await workerTower({ name: "t", input: [2, 1, 1], seed: 1, tower: null,
 *   stages: [[{ kind: "dense", name: "fc", out: 1, relu: false }]] }, {}, {});
 * console.log(tower.info.shapes.get("fc.weight")); // [1, 2]
 * await tower.close();
 * ```
 */
export async function workerTower(
  spec: TowerSpec,
  options: GpuOptions,
  tuning: TuningTable,
): Promise<TowerHandle> {
  const worker = new Worker(new URL(TOWER_WORKER, import.meta.url).href, { type: "module" });
  const pending = new Map<number, PromiseWithResolvers<{ result: unknown; ms: number }>>();
  let next = 0, failure: Error | undefined;
  worker.onmessage = (e: MessageEvent<Reply>) => {
    const reply = e.data, waiting = pending.get(reply.id);
    pending.delete(reply.id);
    if ("error" in reply) {
      waiting?.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
    } else {
      waiting?.resolve(reply);
    }
  };
  worker.onerror = (e) => {
    e.preventDefault();
    failure = new Error(`device worker failed: ${e.message}`);
    for (const p of pending.values()) p.reject(failure);
    pending.clear();
  };
  const post = (request: Body<Request>) => {
    if (failure) return Promise.reject(failure);
    const id = next++, reply = Promise.withResolvers<{ result: unknown; ms: number }>();
    pending.set(id, reply);
    worker.postMessage({ ...request, id });
    return reply.promise;
  };
  let info: TowerInfo;
  try {
    info = (await post({ op: "create", spec, options, tuning })).result as TowerInfo;
  } catch (e) {
    worker.terminate();
    throw e;
  }
  return {
    info,
    local: undefined,
    call: <K extends TowerCall>(op: K, ...args: CallArgs<K>) =>
      post({ op, args } as Body<Request>) as Promise<Answer<K>>,
    close: async () => {
      await post({ op: "destroy" }).catch(() => {});
      worker.terminate();
    },
  };
}
