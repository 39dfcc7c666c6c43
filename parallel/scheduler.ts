/**
 * The two-device scheduler: a network split over two WebGPU devices, each in its own Worker.
 *
 * - `model` parallelism is the paper's: each device holds half the filters of every layer
 *   (a tower), and the towers exchange activations before conv3, fc6, fc7 and fc8, and their
 *   input gradients on the way back (partial sums, added here).
 * - `data` parallelism: each device a full replica on half the batch, gradients added before
 *   both apply the same update.
 *
 * Devices share no memory: what crosses is read back from one device (a mapped staging
 * buffer), moved between threads as a transferable, and written to the other. The loss is
 * computed here, on the joined logits, in float64.
 *
 * @module
 */
import type { NamedTensor } from "../io/safetensors.ts";
import {
  checkBatch,
  checkWeights,
  type Evaluation,
  type ForwardOptions,
  initialWeights,
  type Model,
  type ModelConfig,
  scoreLogits,
  type TrainStepOptions,
  weightsFile,
} from "../layers/network.ts";
import type { Precision } from "../gpu/device.ts";
import type { InitScheme } from "../layers/init.ts";
import { numel } from "../gpu/tensor.ts";
import { shapeSize } from "../layers/layer.ts";
import { joinTowers, splitTowers, towerHalf, towerRows } from "./split.ts";
import type { TowerSpec } from "./tower.ts";

/** How the work is divided between the devices. */
export type Parallelism = "model" | "data";

/** Options of {@linkcode ParallelNetwork.create}. */
export interface ParallelOptions {
  /** `model` (the paper's towers, default) or `data` (replicas on half the batch each). */
  parallel?: Parallelism;
  /** Seed of the initial parameters and dropout masks (default 1). */
  seed?: number;
  /** Initialisation scheme (default "paper"). */
  init?: InitScheme;
  /** Caps on each device's limits (how tests exercise micro-batching). */
  limits?: Partial<GPUSupportedLimits>;
  /** The devices' GEMM precision (default "f32"; see `GpuOptions.precision`). */
  precision?: Precision;
  /**
   * Model parallelism: run a batch as two halves in flight, so that one half's exchange overlaps
   * the other's compute (default true; false measures what the overlap saves).
   */
  overlap?: boolean;
}

/** Where a step's time went: in the devices' calls, and in the exchanges between them. */
export interface ExchangeStats {
  /** Calls to the devices (each waits for its results). */
  calls: number;
  /** Milliseconds spent outside the slower device's work: moving, joining, splitting, adding. */
  exchangeMs: number;
  /** Milliseconds of the slower device's work in each call, summed. */
  computeMs: number;
}

/** What a device reports once its tower is built. */
interface Created {
  description: string;
  maxMicroBatch: number;
  shapes: Map<string, number[]>;
}

interface Reply {
  id: number;
  result?: unknown;
  ms?: number;
  error?: { name?: string; message: string };
}

/** A tower in its Worker: calls by name, answered in order. */
class TowerWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, PromiseWithResolvers<Reply>>();
  #next = 0;
  #failure: Error | undefined;

  constructor() {
    this.#worker = new Worker(new URL("./tower_worker.ts", import.meta.url).href, {
      type: "module",
    });
    this.#worker.onmessage = (e: MessageEvent<Reply>) => {
      this.#pending.get(e.data.id)?.resolve(e.data);
      this.#pending.delete(e.data.id);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failure = new Error(`device worker failed: ${e.message}`);
      for (const p of this.#pending.values()) p.reject(this.#failure);
      this.#pending.clear();
    };
  }

  async call<T>(op: string, ...args: unknown[]): Promise<{ result: T; ms: number }> {
    if (this.#failure) throw this.#failure;
    const id = this.#next++;
    const reply = Promise.withResolvers<Reply>();
    this.#pending.set(id, reply);
    this.#worker.postMessage({ id, op, args });
    const { result, ms, error } = await reply.promise;
    if (error) throw Object.assign(new Error(error.message), { name: error.name ?? "Error" });
    return { result: result as T, ms: ms ?? 0 };
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

/**
 * A network split over two devices, with the same surface as a one-device `Network`: the same
 * weights files, the same logits and gradients (to float rounding), the same training loop.
 *
 * @example
 * ```ts
 * import { ALEXNET_SMALL } from "../mod.ts";
 * import { ParallelNetwork } from "./scheduler.ts";
 * const net = await ParallelNetwork.create(ALEXNET_SMALL, { parallel: "model", seed: 1 });
 * const logits = await net.forward(new Float32Array(2 * 28 * 28), 2);
 * console.log(logits.length, net.description); // 20, "2 devices (model parallel): ..."
 * await net.destroy();
 * ```
 */
export class ParallelNetwork implements Model {
  /** The configuration the network was built from. */
  readonly config: ModelConfig;
  /** How the work is divided. */
  readonly parallel: Parallelism;
  /** Each device's adapter, in words. */
  readonly adapters: readonly string[];
  /** Examples per device call. */
  readonly maxMicroBatch: number;
  /** Whether model parallelism keeps two halves of a batch in flight. */
  readonly overlap: boolean;
  /** Calls and exchange time so far (reset it to measure a stretch). */
  stats: ExchangeStats = { calls: 0, exchangeMs: 0, computeMs: 0 };
  /** Steps taken (dropout masks derive from it); settable to resume. */
  step = 0;
  readonly #towers: TowerWorker[];
  readonly #stages: number;
  /** Each parameter's shape on one device, and in the whole network. */
  readonly #towerShapes: Map<string, number[]>;
  readonly #shapes: Map<string, number[]>;
  #destroyed = false;

  private constructor(
    config: ModelConfig,
    parallel: Parallelism,
    towers: TowerWorker[],
    created: Created[],
    stages: number,
    overlap: boolean,
  ) {
    this.config = config;
    this.overlap = overlap;
    this.parallel = parallel;
    this.#towers = towers;
    this.#stages = stages;
    this.adapters = created.map((c) => c.description);
    this.maxMicroBatch = Math.min(...created.map((c) => c.maxMicroBatch));
    this.#towerShapes = created[0].shapes;
    this.#shapes = new Map(
      [...created[0].shapes].map((
        [name, shape],
      ) => [name, parallel === "model" ? [2 * shape[0], ...shape.slice(1)] : shape]),
    );
  }

  /**
   * Acquires two devices, each from its own `requestAdapter()` in its own Worker (two adapters
   * where the machine has two, else two devices of one), and builds the network over them,
   * initialised exactly as on one device.
   *
   * @example
   * ```ts
   * import { ALEXNET_SMALL } from "../mod.ts";
   * import { ParallelNetwork } from "./scheduler.ts";
   * const net = await ParallelNetwork.create(ALEXNET_SMALL, { parallel: "data" });
   * console.log(net.parameterCount); // 1132810
   * await net.destroy();
   * ```
   */
  static async create(
    config: ModelConfig,
    options: ParallelOptions = {},
  ): Promise<ParallelNetwork> {
    const parallel = options.parallel ?? "model";
    if (parallel !== "model" && parallel !== "data") {
      throw new RangeError(`parallel must be "model" or "data", got "${parallel}"`);
    }
    const seed = options.seed ?? 1;
    const stages = parallel === "model" ? splitTowers(config) : [config.layers];
    const towers = [new TowerWorker(), new TowerWorker()];
    try {
      const created = await Promise.all(towers.map(async (w, t) => {
        const spec: TowerSpec = {
          input: config.input,
          stages,
          seed,
          tower: parallel === "model" ? t : null,
        };
        const { limits, precision } = options;
        return (await w.call<Created>("create", spec, { limits, precision })).result;
      }));
      const net = new ParallelNetwork(
        config,
        parallel,
        towers,
        created,
        stages.length,
        options.overlap ?? true,
      );
      const init = options.init ?? "paper";
      if (init !== "none") await net.setWeights(initialWeights(config, net.#shapes, init, seed));
      return net;
    } catch (e) {
      for (const w of towers) w.terminate();
      throw e;
    }
  }

  /** The devices and the mode, in words. */
  get description(): string {
    return `2 devices (${this.parallel} parallel): ${this.adapters.join("; ")}`;
  }

  /** The number of learned values. */
  get parameterCount(): number {
    return [...this.#shapes.values()].reduce((n, s) => n + numel(s), 0);
  }

  /**
   * Logits (or probabilities) of `batch` examples, [batch, classes]: the towers' halves joined
   * (model parallelism) or the replicas' halves of the batch (data parallelism).
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * console.log(await net.forward(new Float32Array(8), 2, { softmax: true })); // 2 x 2
   * await net.destroy();
   * ```
   */
  async forward(
    input: Float32Array,
    batch: number,
    options: ForwardOptions = {},
  ): Promise<Float32Array> {
    this.#assertUsable();
    checkBatch(this.config, "forward", input, batch);
    if (options.upTo !== undefined) {
      throw new RangeError(
        "forward({ upTo }) runs on one device: create the network with devices: 1",
      );
    }
    const classes = this.config.classes, logits = new Float32Array(batch * classes);
    const call = { dropout: false, step: this.step };
    await this.#eachMicroBatch(batch, async (first, rows, t, slot) => {
      const x = this.#examples(input, first, rows);
      const z = t === null
        ? await this.#modelForward(x, rows, { ...call, first, slot })
        : (await this.#towers[t].call<Float32Array>("forward", 0, x, rows, { ...call, first }))
          .result;
      logits.set(z, first * classes);
    });
    return options.softmax ? softmaxRows(logits, classes) : logits;
  }

  /**
   * One SGD step on a labelled batch, equal (to float rounding, and with dropout off) to the
   * one-device step: forward, the loss averaged over the whole batch, backward, update.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * const { loss } = await net.trainStep(new Float32Array(4), new Int32Array([1]), { dropout: false });
   * console.log(loss); // 0.693... (two equal logits)
   * await net.destroy();
   * ```
   */
  async trainStep(
    input: Float32Array,
    labels: Int32Array,
    options: TrainStepOptions = {},
  ): Promise<{ loss: number; accuracy: number }> {
    const batch = labels.length;
    this.#assertUsable();
    checkBatch(this.config, "trainStep", input, batch, labels);
    const classes = this.config.classes;
    const { lr = 0.01, momentum = 0.9, weightDecay = 5e-4, dropout = true } = options;
    let loss = 0, hits = 0;
    // What already holds this step's gradients: replicas by tower, model-parallel stages by index.
    const begun = new Set<number>();
    await this.#eachMicroBatch(batch, async (first, rows, t, slot) => {
      const x = this.#examples(input, first, rows), call = { dropout, step: this.step, first };
      const z = t === null
        ? await this.#modelForward(x, rows, { ...call, slot })
        : (await this.#towers[t].call<Float32Array>("forward", 0, x, rows, call)).result;
      const scored = crossEntropy(z, labels.subarray(first, first + rows), classes, 1 / batch);
      loss += scored.loss;
      hits += scored.hits;
      if (t === null) {
        await this.#modelBackward(scored.gradient, rows, { dropout, slot }, begun);
      } else {
        const accumulate = begun.has(t);
        begun.add(t);
        await this.#towers[t].call("backward", 0, scored.gradient, rows, { accumulate, dropout });
      }
    });
    if (this.parallel === "data") await this.#addGradients([...begun]);
    await this.#all(() => ["update", { lr, momentum, weightDecay }]);
    this.step++;
    return { loss: loss / batch, accuracy: hits / batch };
  }

  /**
   * Top-1, top-5 and mean cross-entropy on labelled examples (no dropout).
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * console.log(await net.evaluate(new Float32Array(8), new Int32Array([0, 1])));
   * await net.destroy();
   * ```
   */
  async evaluate(input: Float32Array, labels: Int32Array): Promise<Evaluation> {
    return scoreLogits(await this.forward(input, labels.length), labels, this.config.classes);
  }

  /**
   * Every parameter by PyTorch name, joined from the towers: the one-device network's file.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * console.log((await net.weights()).get("fc.weight")?.shape); // [2, 8]
   * await net.destroy();
   * ```
   */
  async weights(): Promise<Map<string, NamedTensor>> {
    return this.#gather(await this.#all(() => ["weights"]));
  }

  /**
   * The parameters' gradients of the last step (summed over replicas), joined as weights are.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * await net.trainStep(new Float32Array(4), new Int32Array([0]));
   * console.log((await net.gradients()).size); // 4
   * await net.destroy();
   * ```
   */
  async gradients(): Promise<Map<string, NamedTensor>> {
    return this.#gather(await this.#all(() => ["gradients"]));
  }

  /**
   * Replaces every parameter, each device getting its rows (or, replicas, all of them).
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * await net.setWeights(await net.weights());
   * await net.destroy();
   * ```
   */
  async setWeights(tensors: ReadonlyMap<string, NamedTensor>): Promise<void> {
    this.#assertUsable();
    checkWeights(this.config.name, this.#shapes, tensors);
    await this.#all((t) => ["setWeights", this.#scatter(tensors, t)]);
  }

  /**
   * The parameters as safetensors bytes, with `metadata` in the header.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * await Deno.writeFile(await Deno.makeTempFile(), await net.weightsBytes({ note: "two devices" }));
   * await net.destroy();
   * ```
   */
  async weightsBytes(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    return weightsFile(this.config.name, await this.weights(), metadata);
  }

  /**
   * The SGD velocities by parameter name, joined as the weights are.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * console.log((await net.optimizerState()).size); // 4
   * await net.destroy();
   * ```
   */
  async optimizerState(): Promise<Map<string, NamedTensor>> {
    return this.#gather(await this.#all(() => ["optimizerState"]));
  }

  /**
   * Restores velocities that {@linkcode ParallelNetwork.optimizerState} (or one device) gave.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * await net.loadOptimizerState(await net.optimizerState());
   * await net.destroy();
   * ```
   */
  async loadOptimizerState(state: ReadonlyMap<string, NamedTensor>): Promise<void> {
    this.#assertUsable();
    const problem = [...this.#shapes].find(([name, s]) =>
      state.get(name)?.data.length !== numel(s)
    );
    if (problem) {
      throw new RangeError(`optimizer state: no velocity of [${problem[1]}] for ${problem[0]}`);
    }
    await this.#all((t) => ["loadOptimizerState", this.#scatter(state, t)]);
  }

  /**
   * Frees both devices and ends their workers.
   *
   * @example
   * ```ts
   * import { ParallelNetwork } from "./scheduler.ts";
   * const config = { name: "t", input: [1, 2, 2] as const, classes: 2,
   *   layers: [{ kind: "conv" as const, name: "conv1", out: 2, kernel: 1 },
   *     { kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const net = await ParallelNetwork.create(config, { seed: 1 });
   * await net.destroy();
   * ```
   */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.allSettled(this.#towers.map((w) => w.call("destroy")));
    for (const w of this.#towers) w.terminate();
  }

  /**
   * Calls `work` for each chunk of the batch. Model parallelism: chunks of half the batch (at
   * most a micro-batch), two in flight in their own buffer sets (`slot`), so that one chunk's
   * results cross between the devices while they compute the other's; `tower` is null (both
   * devices take part). Data parallelism: each tower's half of the batch, the halves at once,
   * each in micro-batches.
   */
  async #eachMicroBatch(
    batch: number,
    work: (first: number, rows: number, tower: number | null, slot: number) => Promise<void>,
  ): Promise<void> {
    if (this.parallel === "data") {
      const run = async (from: number, to: number, tower: number) => {
        for (let first = from; first < to; first += this.maxMicroBatch) {
          await work(first, Math.min(this.maxMicroBatch, to - first), tower, 0);
        }
      };
      const half = Math.ceil(batch / 2);
      await Promise.all([run(0, half, 0), run(half, batch, 1)]);
      return;
    }
    const chunk = Math.min(this.maxMicroBatch, this.overlap ? Math.ceil(batch / 2) : batch);
    const flying: Promise<void>[] = [];
    for (let first = 0, k = 0; first < batch; first += chunk, k++) {
      if (k >= 2) await flying[k - 2]; // its buffer set is free again
      const chain = work(first, Math.min(chunk, batch - first), null, this.overlap ? k % 2 : 0);
      chain.catch(() => {}); // rejected chains are reported by the Promise.all below
      flying.push(chain);
    }
    await Promise.all(flying);
  }

  /** Both towers forward through every stage, their outputs joined at each exchange. */
  async #modelForward(
    x: Float32Array,
    rows: number,
    call: { dropout: boolean; step: number; first: number; slot: number },
  ): Promise<Float32Array> {
    let acts = x;
    for (let s = 0; s < this.#stages; s++) {
      const outs = await this.#all(() => ["forward", s, acts, rows, call]);
      acts = this.#timed(() => joinTowers(outs as Float32Array[], rows));
    }
    return acts;
  }

  /**
   * Both towers backward, each from its half of the output gradient; input gradients added.
   * A stage's first call of the step writes its parameter gradients, later ones add to them:
   * decided as each call is sent, the order the devices run them in.
   */
  async #modelBackward(
    gradient: Float32Array,
    rows: number,
    options: { dropout: boolean; slot: number },
    begun: Set<number>,
  ): Promise<void> {
    let g = gradient;
    for (let s = this.#stages - 1; s >= 0; s--) {
      const halves = this.#timed(() => [0, 1].map((t) => towerHalf(g, rows, t)));
      const call = { ...options, accumulate: begun.has(s) };
      begun.add(s);
      const dxs = await this.#all((t) => ["backward", s, halves[t], rows, call]);
      if (s > 0) g = this.#timed(() => add(dxs[0] as Float32Array, dxs[1] as Float32Array));
    }
  }

  /** Data parallelism: the replicas' gradients added, and the sum given back to both. */
  async #addGradients(towers: number[]): Promise<void> {
    const started = performance.now();
    const grads = await Promise.all(
      towers.map(async (t) =>
        (await this.#towers[t].call<Map<string, Float32Array>>("gradients")).result
      ),
    );
    const sum = new Map(
      [...grads[0]].map((
        [name, g],
      ) => [name, grads.slice(1).reduce((a, b) => add(a, b.get(name)!), g)]),
    );
    await Promise.all(this.#towers.map((w) => w.call("setGradients", sum)));
    this.stats.exchangeMs += performance.now() - started;
  }

  /** The same call on both devices at once; the time beyond the slower one's work is exchange. */
  async #all(args: (tower: number) => unknown[]): Promise<unknown[]> {
    this.#assertUsable();
    const started = performance.now();
    const replies = await Promise.all(
      this.#towers.map((w, t) => {
        const [op, ...rest] = args(t);
        return w.call(op as string, ...rest);
      }),
    );
    const slowest = Math.max(...replies.map((r) => r.ms));
    this.stats.calls++;
    this.stats.computeMs += slowest;
    this.stats.exchangeMs += performance.now() - started - slowest;
    return replies.map((r) => r.result);
  }

  /** Runs `work` on this thread and counts its time as exchange. */
  #timed<T>(work: () => T): T {
    const started = performance.now();
    const result = work();
    this.stats.exchangeMs += performance.now() - started;
    return result;
  }

  /** Whole-network tensors from each device's (rows joined, or a replica's as they are). */
  #gather(parts: unknown[]): Map<string, NamedTensor> {
    const [a, b] = parts as Map<string, Float32Array>[];
    const out = new Map<string, NamedTensor>();
    for (const [name, shape] of this.#shapes) {
      const data = this.parallel === "model" ? concat(a.get(name)!, b.get(name)!) : a.get(name)!;
      out.set(name, { shape, data });
    }
    return out;
  }

  /** Device `tower`'s share of whole-network tensors. */
  #scatter(tensors: ReadonlyMap<string, NamedTensor>, tower: number): Map<string, Float32Array> {
    return new Map(
      [...this.#towerShapes.keys()].map((name) => {
        const data = tensors.get(name)!.data;
        return [name, this.parallel === "model" ? towerRows(data, tower) : data];
      }),
    );
  }

  #examples(input: Float32Array, first: number, rows: number): Float32Array {
    const per = shapeSize(this.config.input);
    return input.subarray(first * per, (first + rows) * per);
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error(`${this.config.name}: the network was destroyed`);
  }
}

/** A row's largest value and the sum of exp(v - largest): its softmax, free of overflow. */
function softmaxParts(row: Float32Array): { max: number; sum: number } {
  const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return { max, sum };
}

/**
 * Softmax cross-entropy of [rows, classes] logits in float64: the summed loss, the top-1 hits
 * (ties count, as on the device) and the gradient of `scale` times the summed loss.
 */
function crossEntropy(z: Float32Array, labels: Int32Array, classes: number, scale: number) {
  const gradient = new Float32Array(z.length);
  let loss = 0, hits = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = z.subarray(r * classes, (r + 1) * classes), label = labels[r];
    const { max, sum } = softmaxParts(row);
    loss += max + Math.log(sum) - row[label];
    if (row[label] >= max) hits++;
    for (let c = 0; c < classes; c++) {
      gradient[r * classes + c] = scale * (Math.exp(row[c] - max) / sum - (c === label ? 1 : 0));
    }
  }
  return { loss, hits, gradient };
}

function softmaxRows(z: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let r = 0; r < z.length / classes; r++) {
    const row = z.subarray(r * classes, (r + 1) * classes);
    const { max, sum } = softmaxParts(row);
    row.forEach((v, c) => out[r * classes + c] = Math.exp(v - max) / sum);
  }
  return out;
}

function add(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i];
  return out;
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
