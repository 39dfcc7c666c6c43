/**
 * What crosses between two devices, and when. Model parallelism (the paper's): both towers run a
 * stage, their outputs are joined per example and given to both for the next stage, and on the
 * way back each tower's input gradient is a partial sum over its own filters, added here. A batch
 * runs as two chunks in flight, each in its own buffer set, so that one chunk's results cross
 * while the devices compute the other's. Data parallelism: the replicas' gradients are added and
 * the sum given back to both.
 *
 * Devices share no memory: what crosses is read back from one device, moved between threads as a
 * transferable, and written to the other.
 *
 * @module
 */
import type { StageCall } from "../layers/tower.ts";
import type { CallArgs, CallResult, TowerCall, TowerHandle } from "./protocol.ts";
import { crossEntropy } from "../layers/scoring.ts";
import { concat, joinTowers, towerHalf } from "./split.ts";

/** Where a step's time went: in the devices' calls, and in the exchanges between them. */
export interface ExchangeStats {
  /** Calls to the devices (each waits for its results). */
  calls: number;
  /** Milliseconds spent outside the slower device's work: moving, joining, splitting, adding. */
  exchangeMs: number;
  /** Milliseconds of the slower device's work in each call, summed. */
  computeMs: number;
}

/**
 * The same call on every tower at once (its arguments by tower); the time beyond the slowest
 * tower's work counts as exchange.
 *
 * @example
 * ```ts ignore
 * const weights = await onAll(towers, stats, "weights", () => []);
 * ```
 */
export async function onAll<K extends TowerCall>(
  towers: readonly TowerHandle[],
  stats: ExchangeStats,
  op: K,
  args: (tower: number) => CallArgs<K>,
): Promise<CallResult<K>[]> {
  const started = performance.now();
  const answers = await Promise.all(towers.map((t, i) => t.call(op, ...args(i))));
  const slowest = Math.max(...answers.map((a) => a.ms));
  stats.calls++;
  stats.computeMs += slowest;
  stats.exchangeMs += performance.now() - started - slowest;
  return answers.map((a) => a.result);
}

/** Runs `work` on this thread and counts its time as exchange. */
function timed<T>(stats: ExchangeStats, work: () => T): T {
  const started = performance.now();
  const result = work();
  stats.exchangeMs += performance.now() - started;
  return result;
}

/**
 * Calls `work` for each chunk of a batch of `batch`: chunks of at most `chunk` examples, two in
 * flight at once in buffer sets 0 and 1 (`slot`) where `overlap`, else one at a time in set 0.
 *
 * @example
 * ```ts
 * import { eachChunk } from "./exchange.ts";
 * const seen: string[] = [];
 * await eachChunk(5, 2, true, async (first, rows, slot) => { seen.push(`${first}+${rows}@${slot}`); });
 * console.log(seen); // ["0+2@0", "2+2@1", "4+1@0"]
 * ```
 */
export async function eachChunk(
  batch: number,
  chunk: number,
  overlap: boolean,
  work: (first: number, rows: number, slot: number) => Promise<void>,
): Promise<void> {
  const flying: Promise<void>[] = [];
  for (let first = 0, k = 0; first < batch; first += chunk, k++) {
    if (k >= 2) await flying[k - 2]; // its buffer set is free again
    const chain = work(first, Math.min(chunk, batch - first), overlap ? k % 2 : 0);
    chain.catch(() => {}); // rejected chains are reported by the Promise.all below
    flying.push(chain);
  }
  await Promise.all(flying);
}

/**
 * Both towers forward through the stages, their outputs joined at each exchange. With `upTo`,
 * stage `upTo.stage` stops after its layer `upTo.layer`, whose output is joined where the towers
 * hold halves of it (`upTo.split`) or taken from the first tower where both computed all of it.
 *
 * @example
 * ```ts ignore
 * const logits = await modelForward(towers, 5, images, rows, { dropout: false, step, first }, stats);
 * ```
 */
export async function modelForward(
  towers: readonly TowerHandle[],
  stages: number,
  x: Float32Array,
  rows: number,
  call: StageCall,
  stats: ExchangeStats,
  upTo?: { stage: number; layer: number; split: boolean },
): Promise<Float32Array> {
  let acts = x;
  const last = upTo?.stage ?? stages - 1;
  for (let s = 0; s <= last; s++) {
    const stageCall = s === upTo?.stage ? { ...call, upTo: upTo.layer } : call;
    const outs = await onAll(towers, stats, "forward", () => [s, acts, rows, stageCall]);
    acts = upTo && s === last && !upTo.split ? outs[0] : timed(stats, () => joinTowers(outs, rows));
  }
  return acts;
}

/**
 * Both towers backward through the stages, each from its half of the output gradient; input
 * gradients added. A stage's first call of the step writes its parameter gradients, later ones
 * add to them (`begun` holds the stages begun): decided as each call is sent, the order the
 * devices run them in.
 *
 * @example
 * ```ts ignore
 * await modelBackward(towers, 5, gradient, rows, { dropout: true, slot: 0 }, begun, stats);
 * ```
 */
export async function modelBackward(
  towers: readonly TowerHandle[],
  stages: number,
  gradient: Float32Array,
  rows: number,
  options: { dropout: boolean; slot: number },
  begun: Set<number>,
  stats: ExchangeStats,
): Promise<void> {
  let g = gradient;
  for (let s = stages - 1; s >= 0; s--) {
    const halves = timed(stats, () => [0, 1].map((t) => towerHalf(g, rows, t)));
    const call = { ...options, accumulate: begun.has(s) };
    begun.add(s);
    const dxs = await onAll(towers, stats, "backward", (t) => [s, halves[t], rows, call]);
    if (s > 0) g = timed(stats, () => add(dxs[0]!, dxs[1]!));
  }
}

/**
 * Data parallelism: the gradients of the replicas `replicas` (those that took examples) added,
 * and the sum given to every replica.
 *
 * @example
 * ```ts ignore
 * await sumGradients(towers, [0, 1], stats);
 * ```
 */
export async function sumGradients(
  towers: readonly TowerHandle[],
  replicas: readonly number[],
  stats: ExchangeStats,
): Promise<void> {
  const started = performance.now();
  const grads = await Promise.all(
    replicas.map(async (t) => (await towers[t].call("gradients")).result),
  );
  const sum = new Map(
    [...grads[0]].map((
      [name, g],
    ) => [name, grads.slice(1).reduce((a, b) => add(a, b.get(name)!), g)]),
  );
  await Promise.all(towers.map((t) => t.call("setGradients", sum)));
  stats.exchangeMs += performance.now() - started;
}

function add(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

/** How a model-parallel batch runs: chunks, their overlap, the step, where time is counted. */
export interface ModelBatch {
  /** The towers. */
  towers: readonly TowerHandle[];
  /** Stages each runs. */
  stages: number;
  /** Examples a chunk holds. */
  chunk: number;
  /** Two chunks in flight. */
  overlap: boolean;
  /** The step (dropout masks derive from it). */
  step: number;
  /** Values of one example's input. */
  perExample: number;
  /** Where exchange time is counted. */
  stats: ExchangeStats;
}

/**
 * Model parallelism, inference: the outputs (logits, or layer `upTo`'s) of `batch` examples,
 * chunk by chunk.
 *
 * @example
 * ```ts ignore
 * const logits = await modelInfer(run, images, 8);
 * ```
 */
export async function modelInfer(
  run: ModelBatch,
  input: Float32Array,
  batch: number,
  upTo?: { stage: number; layer: number; split: boolean },
): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  await eachChunk(batch, run.chunk, run.overlap, async (first, rows, slot) => {
    const x = input.subarray(first * run.perExample, (first + rows) * run.perExample);
    const call = { dropout: false, step: run.step, first, slot };
    parts[first] = await modelForward(run.towers, run.stages, x, rows, call, run.stats, upTo);
  });
  return concat(parts.filter((p) => p));
}

/**
 * Model parallelism, one step's gradients: each chunk forward, the loss on the joined logits in
 * float64, backward. Returns the summed loss and top-1 hits; the update is the caller's.
 *
 * @example
 * ```ts ignore
 * const { loss, hits } = await modelLearn(run, images, labels, classes, true);
 * ```
 */
export async function modelLearn(
  run: ModelBatch,
  input: Float32Array,
  labels: Int32Array,
  classes: number,
  dropout: boolean,
): Promise<{ loss: number; hits: number }> {
  const batch = labels.length;
  let loss = 0, hits = 0;
  const begun = new Set<number>(); // stages whose gradients this step has written
  await eachChunk(batch, run.chunk, run.overlap, async (first, rows, slot) => {
    const x = input.subarray(first * run.perExample, (first + rows) * run.perExample);
    const call = { dropout, step: run.step, first, slot };
    const z = await modelForward(run.towers, run.stages, x, rows, call, run.stats);
    const scored = crossEntropy(z, labels.subarray(first, first + rows), classes, 1 / batch);
    loss += scored.loss;
    hits += scored.hits;
    const options = { dropout, slot };
    await modelBackward(run.towers, run.stages, scored.gradient, rows, options, begun, run.stats);
  });
  return { loss, hits };
}
