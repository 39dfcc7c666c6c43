/**
 * How a network talks to its towers, in this thread or in a Worker: one typed protocol whose calls
 * are the {@linkcode Tower}'s own methods, so that both ends agree by construction. A
 * {@linkcode TowerHandle} answers a call with its result and the milliseconds its device spent.
 *
 * @module
 */
import type { GpuOptions } from "../gpu/device.ts";
import type { TuningTable } from "../kernels/gemm/tuning.ts";
import type { Tower, TowerInfo, TowerSpec } from "../layers/tower.ts";

/** The calls a tower answers, by name: its methods. */
export type TowerCall =
  | "describe"
  | "infer"
  | "learn"
  | "forward"
  | "backward"
  | "update"
  | "freeze"
  | "gradients"
  | "setGradients"
  | "weights"
  | "setWeights"
  | "optimizerState"
  | "loadOptimizerState"
  | "tune";

/** The arguments of call `K`. */
export type CallArgs<K extends TowerCall> = Parameters<Tower[K]>;

/** The result of call `K`. */
export type CallResult<K extends TowerCall> = Awaited<ReturnType<Tower[K]>>;

/** A tower's answer to a call: its result and its duration on the tower's side. */
export interface Answer<K extends TowerCall> {
  /** What the call returned. */
  result: CallResult<K>;
  /** Milliseconds the tower spent on it. */
  ms: number;
}

/** A tower, wherever it runs. */
export interface TowerHandle {
  /** What the tower reported when it was built. */
  readonly info: TowerInfo;
  /** The tower itself, where it runs on this thread. */
  readonly local: Tower | undefined;
  /** Calls one of the tower's methods. */
  call<K extends TowerCall>(op: K, ...args: CallArgs<K>): Promise<Answer<K>>;
  /** Frees the tower (and, in a worker, its device) and ends the worker. */
  close(): Promise<void>;
}

/** A request to a worker: build the tower, call it, or free it. */
export type Request =
  | { id: number; op: "create"; spec: TowerSpec; options: GpuOptions; tuning: TuningTable }
  | { id: number; op: "destroy" }
  | { [K in TowerCall]: { id: number; op: K; args: CallArgs<K> } }[TowerCall];

/** A worker's reply: the result (moved, not copied) or the error, by request id. */
export type Reply =
  | { id: number; result: unknown; ms: number }
  | { id: number; error: { name: string; message: string } };

/**
 * Runs call `op` on `tower` and times it: what a handle does in this thread and a worker does
 * for a request.
 *
 * @example
 * ```ts ignore
 * const { result, ms } = await answer(tower, "weights", []);
 * ```
 */
export async function answer<K extends TowerCall>(
  tower: Tower,
  op: K,
  args: CallArgs<K>,
): Promise<Answer<K>> {
  const started = performance.now();
  const method = tower[op] as (...a: CallArgs<K>) => CallResult<K> | Promise<CallResult<K>>;
  const result = await method.apply(tower, args);
  return { result, ms: performance.now() - started };
}

/**
 * The array buffers of a result, to move rather than copy across threads.
 *
 * @example
 * ```ts
 * import { transferables } from "./protocol.ts";
 * const a = new Float32Array(4);
 * console.log(transferables(new Map([["x", a.subarray(0, 2)], ["y", a.subarray(2)]])).length); // 1
 * ```
 */
export function transferables(result: unknown): ArrayBuffer[] {
  if (result instanceof Float32Array) return [result.buffer as ArrayBuffer];
  if (result instanceof Map) {
    // Views of one buffer (the gathered gradients) share it: move it once.
    return [...new Set([...result.values()].flatMap(transferables))];
  }
  return [];
}

/**
 * A handle on a tower in this thread: calls run directly, arrays shared, not copied.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tower } from "../layers/tower.ts";
 * import { localTower } from "./protocol.ts";
 * const gpu = await Gpu.create();
 * const handle = localTower(Tower.create(gpu, { name: "t", input: [2, 1, 1], seed: 1, tower: null,
 *   stages: [[{ kind: "dense", name: "fc", out: 1, relu: false }]] }));
 * console.log((await handle.call("weights")).result.size); // 2
 * await handle.close();
 * gpu.destroy();
 * ```
 */
export function localTower(tower: Tower): TowerHandle {
  return {
    info: tower.describe(),
    local: tower,
    call: (op, ...args) => answer(tower, op, args),
    close: () => tower.close(),
  };
}
