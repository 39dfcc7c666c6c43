/**
 * The network: one engine for one device or two. It runs its layer table on towers (`tower.ts`):
 * one tower holding the whole table on one device; a replica on each of two devices (data
 * parallelism); or the paper's two towers, each half of every layer, exchanging activations at
 * the split points (model parallelism, `parallel/split.ts`). Whatever the devices, the same calls
 * take the same inputs and give the same outputs, errors and weights files.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { readBytes, writeFileAtomic } from "../io/files.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import { parseWeightsFile } from "../io/weights_file.ts";
import { type TunedGemm, Tuning } from "../kernels/gemm/tuning.ts";
import {
  type ExchangeStats,
  type ModelBatch,
  modelInfer,
  modelLearn,
  onAll,
  sumGradients,
} from "../parallel/exchange.ts";
import type { TowerHandle } from "../parallel/protocol.ts";
import { concat, joinLayers, joinTensors, stageOf, towerTensors } from "../parallel/split.ts";
import { initialWeights } from "./init.ts";
import { shapeSize } from "./layer.ts";
import { type ModelConfig, resolveModel } from "./models.ts";
import { type NetworkOptions, type Parallelism, placeTowers } from "./placement.ts";
import { type Evaluation, scoreLogits, softmaxRows } from "./scoring.ts";
import type { SgdHyper } from "./sgd.ts";
import type { LayerInfo, Tower } from "./tower.ts";
import { checkBatch, checkWeights, weightsFile } from "./weights.ts";

export type { NetworkOptions, Parallelism } from "./placement.ts";

/** Options of {@linkcode Network.forward}. */
export interface ForwardOptions {
  /** Return softmax probabilities instead of logits. */
  softmax?: boolean;
  /**
   * Stop after this layer and return its output [batch, ...its output shape] (e.g. "fc7": the
   * paper's 4096-dimensional feature vectors, after ReLU).
   */
  upTo?: string;
}

/** Options of {@linkcode Network.trainStep}: the paper's values by default. */
export interface TrainStepOptions extends Partial<SgdHyper> {
  /** Apply dropout (default true; off for exact comparisons). */
  dropout?: boolean;
}

/**
 * A network of layers on one device or two.
 *
 * @example
 * ```ts
 * import { Network } from "./network.ts";
 * const net = await Network.create({
 *   name: "tiny", input: [1, 4, 4], classes: 3,
 *   layers: [{ kind: "conv", name: "conv1", out: 2, kernel: 3, pad: 1 },
 *     { kind: "dense", name: "fc", out: 3, relu: false }],
 * });
 * console.log(await net.forward(new Float32Array(16), 1)); // three logits
 * await net.destroy();
 * ```
 */
export class Network {
  /** The configuration the network was built from. */
  readonly config: ModelConfig;
  /** How two devices divide the work, or null on one device. */
  readonly parallel: Parallelism | null;
  /** Each device's adapter, in words. */
  readonly adapters: readonly string[];
  /**
   * The devices' keys in a tuning (adapter, backend, precision; see `kernels/gemm/tuning.ts`).
   *
   * @ignore
   */
  readonly tuningKeys: readonly string[];
  /** Examples per launch on every device. */
  readonly maxMicroBatch: number;
  /** The layers in order, with their whole-network output shapes, parameters and multiply-adds. */
  readonly layers: readonly LayerInfo[];
  /**
   * The autotuner's choices the kernels use ({@linkcode Network.tune} adds to it).
   *
   * @ignore
   */
  readonly tuning: Tuning;
  /**
   * Calls and exchange time between devices so far (reset it to measure a stretch).
   *
   * @ignore
   */
  stats: ExchangeStats = { calls: 0, exchangeMs: 0, computeMs: 0 };
  /** Steps taken (dropout masks derive from it); settable to resume. */
  step = 0;
  readonly #towers: TowerHandle[];
  readonly #stages: number;
  readonly #overlap: boolean;
  /** Each parameter's shape in the whole network. */
  readonly #shapes: Map<string, number[]>;
  readonly #ownedGpu: Gpu | undefined;
  #destroyed = false;
  #frozen: readonly string[] = [];

  private constructor(
    config: ModelConfig,
    parallel: Parallelism | null,
    towers: TowerHandle[],
    parts: { stages: number; overlap: boolean; tuning: Tuning; ownedGpu?: Gpu },
  ) {
    this.config = config;
    this.parallel = parallel;
    this.#towers = towers;
    this.#stages = parts.stages;
    this.#overlap = parts.overlap;
    this.#ownedGpu = parts.ownedGpu;
    this.tuning = parts.tuning;
    const infos = towers.map((t) => t.info);
    this.adapters = infos.map((i) => i.description);
    this.tuningKeys = [...new Set(infos.map((i) => i.adapter))];
    this.maxMicroBatch = Math.min(...infos.map((i) => i.maxMicroBatch));
    const model = parallel === "model";
    this.#shapes = new Map(
      [...infos[0].shapes].map(([name, s]) => [name, model ? [2 * s[0], ...s.slice(1)] : s]),
    );
    this.layers = model ? joinLayers(config, infos[0].layers, infos[1].layers) : infos[0].layers;
  }

  /**
   * Builds `config` on its devices and initialises its parameters from the seed: the same
   * parameters, bit for bit, whatever the device count.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 2, 2], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] }, { seed: 3 });
   * console.log(net.parameterCount); // 10
   * await net.destroy();
   * ```
   */
  static async create(config: ModelConfig, options: NetworkOptions = {}): Promise<Network> {
    const { seed = 1, init = "paper" } = options;
    const tuning = options.tuning ?? new Tuning();
    const { parallel, towers, stages, ownedGpu } = await placeTowers(config, options, tuning);
    const net = new Network(config, parallel, towers, {
      stages,
      overlap: options.overlap ?? true,
      tuning,
      ownedGpu,
    });
    try {
      const last = net.layers.at(-1)?.outputShape ?? config.input;
      if (last.join() !== [config.classes, 1, 1].join()) {
        const want = `[${config.classes}, 1, 1]`;
        throw new RangeError(
          `${config.name}: the last layer gives [${last}] per example, not ${want}`,
        );
      }
      if (init !== "none") await net.setWeights(initialWeights(config, net.#shapes, init, seed));
      return net;
    } catch (e) {
      await net.destroy();
      throw e;
    }
  }

  /** The device or devices, in words. */
  get description(): string {
    if (this.parallel === null) return this.adapters[0];
    return `2 devices (${this.parallel} parallel): ${this.adapters.join("; ")}`;
  }

  /** The number of learned values. */
  get parameterCount(): number {
    return this.layers.reduce((n, l) => n + l.parameters, 0);
  }

  /** Multiply-adds per example in the forward pass. */
  get macs(): number {
    return this.layers.reduce((n, l) => n + l.macs, 0);
  }

  /**
   * The tower, where the network runs on one device in this thread (benchmarks time its layers).
   *
   * @ignore
   */
  get tower(): Tower | undefined {
    return this.#towers.length === 1 ? this.#towers[0].local : undefined;
  }

  /**
   * Runs the network on `batch` examples laid out NCHW in `input` and returns their logits (or,
   * with `softmax`, probabilities; with `upTo`, that layer's output) as a [batch, ...] row-major
   * array. Large batches run in micro-batches.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * const p = await net.forward(new Float32Array([1, 2]), 2, { softmax: true });
   * console.log(p.length); // 4
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
    const upTo = options.upTo === undefined ? undefined : this.#layerIndex(options.upTo);
    if (this.parallel === "model") {
      const where = upTo === undefined ? undefined : stageOf(this.config, upTo);
      const out = await modelInfer(this.#modelBatch(batch), input, batch, where);
      return options.softmax && upTo === undefined ? softmaxRows(out, this.config.classes) : out;
    }
    const shares = this.#shares(batch);
    const outs = await onAll(this.#towers.slice(0, shares.length), this.stats, "infer", (t) => {
      const [first, rows] = shares[t];
      return [this.#examples(input, first, rows), rows, { softmax: options.softmax, upTo }];
    });
    return concat(outs);
  }

  /**
   * One step of stochastic gradient descent on a labelled batch: forward (with dropout), softmax
   * cross-entropy averaged over the batch, backward, and the paper's update. Returns the mean loss
   * and the fraction of examples whose label scored highest, before the update.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * const { loss } = await net.trainStep(new Float32Array([1]), new Int32Array([0]), { lr: 0.1 });
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
    const { lr = 0.01, momentum = 0.9, weightDecay = 5e-4, dropout = true } = options;
    const hyper = { lr, momentum, weightDecay };
    let sums;
    if (this.parallel === "model") {
      const run = this.#modelBatch(batch);
      sums = await modelLearn(run, input, labels, this.config.classes, dropout);
      await onAll(this.#towers, this.stats, "update", () => [hyper]);
    } else {
      const shares = this.#shares(batch), alone = this.parallel === null;
      const results = await onAll(
        this.#towers.slice(0, shares.length),
        this.stats,
        "learn",
        (t) => {
          const [first, rows] = shares[t];
          const update = alone ? hyper : undefined, scale = 1 / batch, step = this.step;
          return [
            this.#examples(input, first, rows),
            labels.subarray(first, first + rows),
            { first, scale, step, dropout, update },
          ];
        },
      );
      if (!alone) {
        await sumGradients(this.#towers, shares.map((_, t) => t), this.stats);
        await onAll(this.#towers, this.stats, "update", () => [hyper]);
      }
      sums = results.reduce((a, b) => ({ loss: a.loss + b.loss, hits: a.hits + b.hits }));
    }
    this.step++;
    return { loss: sums.loss / batch, accuracy: sums.hits / batch };
  }

  /**
   * Top-1 and top-5 accuracy and mean cross-entropy on labelled examples (no dropout).
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log(await net.evaluate(new Float32Array([1, 2]), new Int32Array([0, 1])));
   * await net.destroy();
   * ```
   */
  async evaluate(input: Float32Array, labels: Int32Array): Promise<Evaluation> {
    return scoreLogits(await this.forward(input, labels.length), labels, this.config.classes);
  }

  /**
   * Every parameter by PyTorch name, in layer order, joined from the devices.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log([...(await net.weights()).keys()]); // ["fc.weight", "fc.bias"]
   * await net.destroy();
   * ```
   */
  async weights(): Promise<Map<string, NamedTensor>> {
    this.#assertUsable();
    return joinTensors(
      this.parallel === "model",
      this.#shapes,
      await onAll(this.#towers, this.stats, "weights", () => []),
    );
  }

  /**
   * The parameters' gradients of the last step (summed over replicas), by parameter name.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * await net.trainStep(new Float32Array([1]), new Int32Array([0]));
   * console.log((await net.gradients()).get("fc.bias")?.data); // Float32Array [-0.5, 0.5]
   * await net.destroy();
   * ```
   */
  async gradients(): Promise<Map<string, NamedTensor>> {
    this.#assertUsable();
    return joinTensors(
      this.parallel === "model",
      this.#shapes,
      await onAll(this.#towers, this.stats, "gradients", () => []),
    );
  }

  /**
   * Replaces every parameter with `tensors` (by PyTorch name): exactly this network's tensors,
   * with the same shapes, or a clear error naming the first that differs.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * await net.setWeights(await net.weights());
   * await net.destroy();
   * ```
   */
  async setWeights(tensors: ReadonlyMap<string, NamedTensor>): Promise<void> {
    this.#assertUsable();
    checkWeights(this.config.name, this.#shapes, tensors);
    await onAll(
      this.#towers,
      this.stats,
      "setWeights",
      (t) => [towerTensors(this.parallel === "model", tensors, t)],
    );
  }

  /**
   * Replaces every parameter with the tensors of a safetensors or `.pth` file (a state_dict
   * `torch.save` wrote, under this project's names): a path, a URL (`file:`, `http:` or
   * `https:`), a `Blob` (a browser's `File`) or its bytes.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const config = { name: "t", input: [1, 1, 1] as const, classes: 2,
   *   layers: [{ kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const a = await Network.create(config, { seed: 1 }), b = await Network.create(config, { seed: 2 });
   * await b.loadWeights(await a.weightsBytes());
   * await a.destroy();
   * await b.destroy();
   * ```
   */
  async loadWeights(source: string | URL | Uint8Array | Blob): Promise<void> {
    this.#assertUsable();
    await this.setWeights(parseWeightsFile(await readBytes(source)).tensors);
  }

  /**
   * The parameters as a safetensors file's bytes, with `metadata` added to the header's.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log((await net.weightsBytes({ note: "mine" })).length > 24); // true
   * await net.destroy();
   * ```
   */
  async weightsBytes(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    return weightsFile(this.config.name, await this.weights(), metadata);
  }

  /**
   * Writes the parameters to `path` as safetensors, durably and atomically (a synced temporary
   * file, then rename): a crash mid-write never leaves a half-written file under `path`.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * await net.saveWeights(await Deno.makeTempFile({ suffix: ".safetensors" }));
   * await net.destroy();
   * ```
   */
  async saveWeights(path: string, metadata: Record<string, string> = {}): Promise<void> {
    await writeFileAtomic(path, await this.weightsBytes(metadata));
  }

  /**
   * The optimizer's state, one SGD velocity per parameter by name (zero before the first step).
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log((await net.optimizerState()).get("fc.bias")?.data); // Float32Array [0, 0]
   * await net.destroy();
   * ```
   */
  async optimizerState(): Promise<Map<string, NamedTensor>> {
    this.#assertUsable();
    return joinTensors(
      this.parallel === "model",
      this.#shapes,
      await onAll(this.#towers, this.stats, "optimizerState", () => []),
    );
  }

  /**
   * Restores the velocities {@linkcode Network.optimizerState} gave (on any device count).
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * await net.loadOptimizerState(await net.optimizerState());
   * await net.destroy();
   * ```
   */
  async loadOptimizerState(state: ReadonlyMap<string, NamedTensor>): Promise<void> {
    this.#assertUsable();
    for (const [name, shape] of this.#shapes) {
      if (state.get(name)?.data.length !== shape.reduce((a, b) => a * b, 1)) {
        throw new RangeError(`optimizer state: no velocity of [${shape}] for ${name}`);
      }
    }
    await onAll(
      this.#towers,
      this.stats,
      "loadOptimizerState",
      (t) => [towerTensors(this.parallel === "model", state, t)],
    );
  }

  /**
   * Keeps the layers named in `layers` fixed in later training steps (fine-tuning): their
   * parameter gradients are neither computed nor applied, weight decay included, and a frozen
   * prefix of the network runs no backward pass at all. `freeze([])` trains every layer again.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [2, 1, 1], classes: 2, layers: [
   *   { kind: "dense", name: "fc1", out: 2, relu: true },
   *   { kind: "dense", name: "fc2", out: 2, relu: false },
   * ] }, { seed: 1 });
   * await net.freeze(["fc1"]);
   * const before = (await net.weights()).get("fc1.weight")!.data;
   * await net.trainStep(new Float32Array([1, 2]), new Int32Array([1]), { lr: 0.1 });
   * console.log((await net.weights()).get("fc1.weight")!.data.every((v, i) => v === before[i])); // true
   * await net.destroy();
   * ```
   */
  async freeze(layers: readonly string[]): Promise<void> {
    this.#assertUsable();
    for (const name of layers) {
      const layer = this.layers.find((l) => l.name === name);
      if (!layer) throw new RangeError(`freeze: no layer "${name}" in ${this.config.name}`);
      if (layer.parameters === 0) throw new RangeError(`freeze: ${name} has no parameters`);
    }
    this.#frozen = [...new Set(layers)];
    await onAll(this.#towers, this.stats, "freeze", () => [this.#frozen]);
  }

  /** The layers {@linkcode Network.freeze} keeps fixed (none by default). */
  get frozen(): readonly string[] {
    return this.#frozen;
  }

  /**
   * Measures, for the micro-batch a batch of `batch` runs as, every candidate tiling of every
   * layer's GEMMs and keeps the fastest in {@linkcode Network.tuning}; later launches use them.
   * Returns each layer's choices (the first device's; a second of the same adapter adopts them).
   * Problems the tuning had a choice for are not measured again (their `ms` is null).
   *
   * @example
   * ```ts ignore
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [4, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * // Not run as a doc test: every candidate kernel compiles, seconds each on a CPU adapter.
   * const tuned = await net.tune(8);
   * console.log(tuned.map((t) => t.layer)); // ["fc", "fc", "fc"]
   * await net.destroy();
   * ```
   */
  async tune(batch: number): Promise<(TunedGemm & { layer: string })[]> {
    this.#assertUsable();
    const given = this.#perTower(batch);
    const results = [];
    for (const [t, tower] of this.#towers.entries()) {
      const { result } = await tower.call("tune", given, this.tuning.toJSON());
      for (const r of result) this.tuning.set(r.adapter, r.problem, r.tile);
      if (t === 0) results.push(...result.map(({ adapter: _, ...r }) => r));
    }
    return results;
  }

  /**
   * Frees everything the network holds: its towers, their workers, and the device it acquired.
   * Later calls throw.
   *
   * @example
   * ```ts
   * import { Network } from "./network.ts";
   * const net = await Network.create({ name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * await net.destroy();
   * ```
   */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.allSettled(this.#towers.map((t) => t.close()));
    this.#ownedGpu?.destroy();
  }

  /** Model parallelism: how a batch of `batch` runs over the towers. */
  #modelBatch(batch: number): ModelBatch {
    return {
      towers: this.#towers,
      stages: this.#stages,
      chunk: this.#chunk(batch),
      overlap: this.#overlap,
      step: this.step,
      perExample: shapeSize(this.config.input),
      stats: this.stats,
    };
  }

  /** Data parallelism: each replica's [first, rows] of a batch (the second may be empty); else one. */
  #shares(batch: number): [number, number][] {
    if (this.parallel !== "data") return [[0, batch]];
    const half = Math.ceil(batch / 2);
    return half < batch ? [[0, half], [half, batch - half]] : [[0, batch]];
  }

  /** Model parallelism: examples a chunk holds (half the batch in flight at once, at most). */
  #chunk(batch: number): number {
    return Math.min(this.maxMicroBatch, this.#overlap ? Math.ceil(batch / 2) : batch);
  }

  /** Examples a tower is given at once of a batch of `batch`: a chunk, or its share. */
  #perTower(batch: number): number {
    return this.parallel === "model" ? this.#chunk(batch) : this.#shares(batch)[0][1];
  }

  #layerIndex(name: string): number {
    const at = this.layers.findIndex((l) => l.name === name);
    if (at < 0) throw new RangeError(`forward: no layer "${name}" in ${this.config.name}`);
    return at;
  }

  #examples(input: Float32Array, first: number, rows: number): Float32Array {
    const per = shapeSize(this.config.input);
    return input.subarray(first * per, (first + rows) * per);
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error(`${this.config.name}: the network was destroyed`);
  }
}

/**
 * Acquires a device (or two) and builds a network on it, initialised from the seed: the same
 * parameters whatever the device count. `model` names a configuration (`alexnet`, the default;
 * `alexnet-small`; `torchvision`) or is your own table.
 *
 * @example
 * ```ts
 * import { createAlexNet } from "./network.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * console.log(net.parameterCount); // 1132810
 * await net.destroy();
 * const two = await createAlexNet({ model: "alexnet-small", seed: 1, devices: 2 });
 * console.log(two.description); // "2 devices (model parallel): ..."
 * await two.destroy();
 * ```
 */
export async function createAlexNet(
  options: NetworkOptions & { model?: string | ModelConfig } = {},
): Promise<Network> {
  return await Network.create(resolveModel(options.model ?? "alexnet"), options);
}
