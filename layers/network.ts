/**
 * A feed-forward network of layers on one device: builds the layers from a configuration, records
 * each batch size's launches once (a plan) and replays them with one submit per micro-batch, and
 * loads and saves its parameters as safetensors with PyTorch's names and layouts.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { type NamedTensor, parseSafetensors, serializeSafetensors } from "../io/safetensors.ts";
import type { LrnParams } from "../kernels/lrn_forward.ts";
import { Conv2d, Dense } from "./conv2d.ts";
import { Dropout } from "./dropout.ts";
import { initialValues, type InitScheme, tensorSeed } from "./init.ts";
import { type GemmTuning, type Layer, type Shape, shapeSize } from "./layer.ts";
import { Lrn } from "./lrn.ts";
import { MaxPool } from "./maxpool.ts";
import {
  destroyPlan,
  type InferencePlan,
  recordInference,
  recordTraining,
  type TrainingPlan,
} from "./plan.ts";
import { Sgd, type SgdHyper } from "./sgd.ts";

/** One row of a configuration's layer table. */
export type LayerSpec =
  | {
    kind: "conv";
    name: string;
    out: number;
    kernel: number;
    stride?: number;
    pad?: number;
    groups?: number;
    relu?: boolean;
    /** The bias the paper's initialisation gives this layer (0 or 1). */
    bias?: number;
  }
  | { kind: "dense"; name: string; out: number; relu?: boolean; bias?: number }
  | { kind: "lrn"; name: string; params: LrnParams }
  | { kind: "maxpool"; name: string; size: number; stride: number }
  | { kind: "dropout"; name: string; p: number };

/** A whole network: its input, its classes and its layer table. */
export interface ModelConfig {
  /** The configuration's name (`alexnet`, `alexnet-small`, or your own). */
  name: string;
  /** One example's input shape [channels, height, width]. */
  input: Shape;
  /** Number of classes: the last layer's output channels. */
  classes: number;
  /** The layers in order. */
  layers: LayerSpec[];
}

/** Options of {@linkcode Network.create}. */
export interface NetworkOptions {
  /** Seed of the initial parameters (default 1). */
  seed?: number;
  /** Initialisation scheme (default "paper"). */
  init?: InitScheme;
  /** Destroy the device with the network (default false). */
  ownsDevice?: boolean;
}

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

/** Accuracy of a network on labelled examples. */
export interface Evaluation {
  /** Fraction whose label is the top class. */
  top1: number;
  /** Fraction whose label is among the five top classes. */
  top5: number;
  /** Mean cross-entropy. */
  loss: number;
}

/**
 * What a trainer and the commands need of a network, on one device ({@linkcode Network}) or
 * split over two (`ParallelNetwork`): same inputs, same outputs, the same weights files.
 */
export interface Model {
  /** The configuration the network was built from. */
  readonly config: ModelConfig;
  /** The device or devices it runs on, in words. */
  readonly description: string;
  /** The number of learned values. */
  readonly parameterCount: number;
  /** Steps taken (dropout masks derive from it); settable to resume. */
  step: number;
  /** Logits (or probabilities) of `batch` examples, [batch, classes]. */
  forward(input: Float32Array, batch: number, options?: ForwardOptions): Promise<Float32Array>;
  /** One SGD step on a labelled batch: its mean loss and top-1 accuracy before the update. */
  trainStep(
    input: Float32Array,
    labels: Int32Array,
    options?: TrainStepOptions,
  ): Promise<{ loss: number; accuracy: number }>;
  /** Top-1, top-5 and loss on labelled examples. */
  evaluate(input: Float32Array, labels: Int32Array): Promise<Evaluation>;
  /** Every parameter, by PyTorch name. */
  weights(): Promise<Map<string, NamedTensor>>;
  /** Replaces every parameter (exactly this network's tensors and shapes). */
  setWeights(tensors: ReadonlyMap<string, NamedTensor>): void | Promise<void>;
  /** The parameters as safetensors bytes, with `metadata` in the header. */
  weightsBytes(metadata?: Record<string, string>): Promise<Uint8Array>;
  /** The SGD velocities by parameter name (empty before the first step where unbuilt). */
  optimizerState(): Promise<Map<string, NamedTensor>>;
  /** Restores the velocities {@linkcode Model.optimizerState} gave. */
  loadOptimizerState(state: ReadonlyMap<string, NamedTensor>): void | Promise<void>;
  /** Frees everything the network holds. */
  destroy(): void | Promise<void>;
}

const MAX_PLANS = 3;

/**
 * A network of layers on one device.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Network } from "./network.ts";
 * const gpu = await Gpu.create();
 * const net = Network.create(gpu, {
 *   name: "tiny", input: [1, 4, 4], classes: 3,
 *   layers: [{ kind: "conv", name: "conv1", out: 2, kernel: 3, pad: 1 },
 *     { kind: "dense", name: "fc", out: 3, relu: false }],
 * });
 * console.log(await net.forward(new Float32Array(16), 1)); // three logits
 * net.destroy();
 * gpu.destroy();
 * ```
 */
export class Network implements Model {
  /** The device. */
  readonly gpu: Gpu;
  /** The configuration the network was built from. */
  readonly config: ModelConfig;
  /** The layers, in order. */
  readonly layers: readonly Layer[];
  /** Examples per launch: the largest batch whose every activation fits one storage binding. */
  readonly maxMicroBatch: number;
  #plans = new Map<string, InferencePlan | TrainingPlan>();
  #sgd: Sgd | undefined;
  #gathered: Tensor | undefined;
  #seed: number;
  #step = 0;
  #destroyed = false;
  #ownsDevice: boolean;

  private constructor(
    gpu: Gpu,
    config: ModelConfig,
    layers: Layer[],
    ownsDevice: boolean,
    seed: number,
  ) {
    this.gpu = gpu;
    this.#seed = seed;
    this.#ownsDevice = ownsDevice;
    this.config = config;
    this.layers = layers;
    this.maxMicroBatch = microBatchLimit(gpu, config.name, [
      config.input,
      ...layers.map((l) => l.outputShape),
    ]);
  }

  /**
   * Builds the layers of `config` on `gpu` and initialises their parameters from the seed.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 2, 2], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] }, { seed: 3 });
   * console.log(net.parameterCount); // 10
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  static create(gpu: Gpu, config: ModelConfig, options: NetworkOptions = {}): Network {
    const layers: Layer[] = [];
    let shape = config.input;
    try {
      for (const spec of config.layers) {
        const layer = buildLayer(gpu, spec, shape);
        layers.push(layer);
        shape = layer.outputShape;
      }
      if (shape[0] !== config.classes || shape[1] !== 1 || shape[2] !== 1) {
        throw new RangeError(
          `${config.name}: the last layer gives [${shape}] per example, not [${config.classes}, 1, 1]`,
        );
      }
      const net = new Network(gpu, config, layers, options.ownsDevice ?? false, options.seed ?? 1);
      net.initialize(options.init ?? "paper", options.seed ?? 1);
      return net;
    } catch (e) {
      for (const layer of layers) layer.destroy();
      throw e;
    }
  }

  /**
   * Re-initialises every parameter from `seed` with `scheme`.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * net.initialize("he", 5);
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  initialize(scheme: InitScheme, seed: number): void {
    this.#assertUsable();
    if (scheme === "none") return;
    const params = this.parameters;
    const shapes = new Map([...params].map(([name, t]) => [name, t.shape]));
    for (const [name, t] of initialWeights(this.config, shapes, scheme, seed)) {
      params.get(name)!.write(t.data);
    }
  }

  /** Every learned tensor by its PyTorch name, in layer order. */
  get parameters(): Map<string, Tensor> {
    return new Map(this.layers.flatMap((l) => [...l.parameters]));
  }

  /** The number of learned values. */
  get parameterCount(): number {
    return [...this.parameters.values()].reduce((n, t) => n + t.size, 0);
  }

  /** The adapter, in words. */
  get description(): string {
    return this.gpu.description;
  }

  /** Multiply-adds per example in the forward pass. */
  get macs(): number {
    return this.layers.reduce((n, l) => n + l.macs, 0);
  }

  /**
   * Runs the network on `batch` examples laid out NCHW in `input` and returns their logits
   * (or, with `softmax`, probabilities) as a [batch, classes] row-major array. Batches larger
   * than {@linkcode Network.maxMicroBatch} run as several launches with one readback.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * const p = await net.forward(new Float32Array([1, 2]), 2, { softmax: true });
   * console.log(p.length); // 4
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async forward(
    input: Float32Array,
    batch: number,
    options: ForwardOptions = {},
  ): Promise<Float32Array> {
    this.#assertUsable();
    this.#assertUsable();
    checkBatch(this.config, "forward", input, batch);
    const perExample = shapeSize(this.config.input);
    const chunks = Math.ceil(batch / this.maxMicroBatch);
    const plan = this.#plan("inference", Math.ceil(batch / chunks)) as InferencePlan;
    let width = this.config.classes;
    let result = options.softmax ? plan.probabilities : plan.logits;
    let dispatches = options.softmax ? [...plan.forward, ...plan.softmax] : plan.forward;
    if (options.upTo !== undefined) {
      const at = this.layers.findIndex((l) => l.name === options.upTo);
      if (at < 0) {
        throw new RangeError(`forward: no layer "${options.upTo}" in ${this.config.name}`);
      }
      width = shapeSize(this.layers[at].outputShape);
      result = plan.outputs[at];
      dispatches = plan.forward.slice(0, plan.ends[at]);
    }
    if (chunks === 1) {
      plan.input.write(input);
      this.gpu.run(dispatches);
      return await this.gpu.read(result.buffer, 0, batch * width * 4);
    }
    const gathered = this.#gather(batch * width);
    for (let first = 0; first < batch; first += plan.batch) {
      const rows = Math.min(plan.batch, batch - first);
      plan.input.write(input.subarray(first * perExample, (first + rows) * perExample));
      this.gpu.run(
        dispatches,
        (encoder) =>
          encoder.copyBufferToBuffer(
            result.buffer,
            0,
            gathered.buffer,
            first * width * 4,
            rows * width * 4,
          ),
      );
    }
    return await this.gpu.read(gathered.buffer, 0, batch * width * 4);
  }

  /**
   * One step of stochastic gradient descent on `batch` labelled examples: forward (with
   * dropout), softmax cross-entropy averaged over the batch, backward, and the paper's update.
   * Batches past {@linkcode Network.maxMicroBatch} run as micro-batches whose gradients add up
   * to the whole batch's. One submit per micro-batch and one readback per step: the mean loss
   * and the fraction of examples whose label scored highest (before the update).
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * const { loss } = await net.trainStep(new Float32Array([1]), new Int32Array([0]), { lr: 0.1 });
   * console.log(loss); // 0.693... (two equal logits)
   * net.destroy();
   * gpu.destroy();
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
    const perExample = shapeSize(this.config.input);
    const chunks = Math.ceil(batch / this.maxMicroBatch);
    const plan = this.#plan("training", Math.ceil(batch / chunks)) as TrainingPlan;
    const sgd = this.#sgd ??= new Sgd(this.gpu, this.parameters, this.gradients);
    const gather = this.#gather(2 * batch);
    const active = (i: number) => dropout || !plan.dropouts.has(i);
    const forward = plan.forward.flatMap((l, i) => active(i) ? l.dispatches : []);
    for (let first = 0; first < batch; first += plan.batch) {
      const rows = Math.min(plan.batch, batch - first);
      plan.input.write(input.subarray(first * perExample, (first + rows) * perExample));
      this.gpu.write(plan.labels, labels.subarray(first, first + rows));
      plan.loss.set(rows, 1 / batch);
      for (const [i, launch] of plan.dropouts) {
        // The mask depends on the step and the example, not on how the batch was split.
        const seed = tensorSeed(this.#seed, `dropout ${this.#step} ${i}`);
        launch.setSeed(seed, first * shapeSize(this.layers[i].inputShape));
      }
      const backward = (first === 0 ? plan.backwardFirst : plan.backwardRest).toReversed()
        .flatMap((l, r) => active(plan.forward.length - 1 - r) ? l.dispatches : []);
      this.gpu.run(
        [...forward, ...plan.loss.dispatches, ...backward],
        (encoder) => {
          const [losses, hits] = [0, plan.batch * 4];
          encoder.copyBufferToBuffer(
            plan.losses.buffer,
            losses,
            gather.buffer,
            first * 4,
            rows * 4,
          );
          encoder.copyBufferToBuffer(
            plan.losses.buffer,
            hits,
            gather.buffer,
            (batch + first) * 4,
            rows * 4,
          );
        },
      );
    }
    sgd.setHyper({ lr, momentum, weightDecay });
    this.gpu.run(sgd.dispatches);
    this.#step++;
    const results = await this.gpu.read(gather.buffer, 0, 2 * batch * 4);
    const sum = (from: number) => results.subarray(from, from + batch).reduce((a, b) => a + b, 0);
    return { loss: sum(0) / batch, accuracy: sum(batch) / batch };
  }

  /**
   * Top-1 and top-5 accuracy and mean cross-entropy on labelled examples (inference: no dropout).
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log(await net.evaluate(new Float32Array([1, 2]), new Int32Array([0, 1])));
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async evaluate(input: Float32Array, labels: Int32Array): Promise<Evaluation> {
    const logits = await this.forward(input, labels.length);
    return scoreLogits(logits, labels, this.config.classes);
  }

  /** Steps taken by {@linkcode Network.trainStep} (dropout masks derive from it); settable to resume. */
  get step(): number {
    return this.#step;
  }
  set step(value: number) {
    this.#step = value;
  }

  /** The parameters' gradients of the last step, by parameter name (empty before training). */
  get gradients(): Map<string, Tensor> {
    return new Map(this.layers.flatMap((l) => [...l.gradients]));
  }

  /**
   * The optimizer's state (one velocity per parameter), by parameter name; empty before the
   * first step.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log((await net.optimizerState()).size); // 0
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async optimizerState(): Promise<Map<string, NamedTensor>> {
    return this.#sgd ? await this.#sgd.state() : new Map();
  }

  /**
   * Restores the optimizer's state saved by {@linkcode Network.optimizerState}.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * await net.trainStep(new Float32Array([1]), new Int32Array([0]));
   * net.loadOptimizerState(await net.optimizerState());
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  loadOptimizerState(state: ReadonlyMap<string, NamedTensor>): void {
    this.#assertUsable();
    if (!this.#sgd) {
      this.#plan("training", 1);
      this.#sgd = new Sgd(this.gpu, this.parameters, this.gradients);
    }
    this.#sgd.load(state);
  }

  /**
   * Replaces every parameter with the tensors of a safetensors file (a path, a URL or its
   * bytes). The file must hold exactly this network's tensors with the same shapes.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const config = { name: "t", input: [1, 1, 1] as const, classes: 2,
   *   layers: [{ kind: "dense" as const, name: "fc", out: 2, relu: false }] };
   * const a = Network.create(gpu, config, { seed: 1 }), b = Network.create(gpu, config, { seed: 2 });
   * await b.loadWeights(await a.weightsBytes());
   * a.destroy();
   * b.destroy();
   * gpu.destroy();
   * ```
   */
  async loadWeights(source: string | URL | Uint8Array): Promise<void> {
    this.#assertUsable();
    const bytes = source instanceof Uint8Array ? source : await Deno.readFile(source);
    this.setWeights(parseSafetensors(bytes).tensors);
  }

  /**
   * Replaces every parameter with `tensors` (by PyTorch name): exactly this network's tensors,
   * with the same shapes, or a clear error naming the first that differs.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * net.setWeights(await net.weights());
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  setWeights(tensors: ReadonlyMap<string, NamedTensor>): void {
    this.#assertUsable();
    const params = this.parameters;
    checkWeights(this.config.name, new Map([...params].map(([n, t]) => [n, t.shape])), tensors);
    for (const [name, t] of params) t.write(tensors.get(name)!.data);
  }

  /**
   * Reads every parameter back from the device, by PyTorch name.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log([...(await net.weights()).keys()]); // ["fc.weight", "fc.bias"]
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async weights(): Promise<Map<string, NamedTensor>> {
    this.#assertUsable();
    const out = new Map<string, NamedTensor>();
    for (const [name, t] of this.parameters) {
      out.set(name, { shape: [...t.shape], data: await t.read() });
    }
    return out;
  }

  /**
   * The parameters as a safetensors file's bytes, with `metadata` added to the header's.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * console.log((await net.weightsBytes()).length > 24); // true
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async weightsBytes(metadata: Record<string, string> = {}): Promise<Uint8Array> {
    return weightsFile(this.config.name, await this.weights(), metadata);
  }

  /**
   * Writes the parameters to `path` as safetensors, atomically (a temporary file, then rename):
   * a crash mid-write never leaves a half-written file under `path`.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
   * await net.saveWeights(path);
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async saveWeights(path: string): Promise<void> {
    const bytes = await this.weightsBytes();
    const temporary = `${path}.${Deno.pid}.tmp`;
    try {
      await Deno.writeFile(temporary, bytes);
      await Deno.rename(temporary, path);
    } catch (e) {
      await Deno.remove(temporary).catch(() => {});
      throw e;
    }
  }

  /**
   * Measures, for the micro-batch a batch of `batch` runs as, every candidate tiling of every
   * layer's GEMMs on this adapter, and keeps the fastest: plans recorded afterwards use them.
   * Returns each layer's choices. Kernels compile for every candidate, so it takes a while once;
   * problems chosen before (earlier in this run, or adopted by `loadTuning`) are not measured
   * again (their `ms` is null).
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [4, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * const tuned = await net.tune(8);
   * console.log(tuned.map((t) => t.layer)); // ["fc", "fc", "fc"]
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  async tune(batch: number): Promise<(GemmTuning & { layer: string })[]> {
    this.#assertUsable();
    const micro = Math.ceil(batch / Math.ceil(batch / this.maxMicroBatch));
    const results: (GemmTuning & { layer: string })[] = [];
    for (const layer of this.layers) {
      for (const t of (await layer.tune?.(micro)) ?? []) results.push({ layer: layer.name, ...t });
    }
    // Plans recorded before the tuning keep their tilings: record them again.
    for (const plan of this.#plans.values()) destroyPlan(plan);
    this.#plans.clear();
    return results;
  }

  /**
   * Frees every buffer of the network, and the device if the network acquired it. Later calls
   * throw.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Network } from "./network.ts";
   * const gpu = await Gpu.create();
   * const net = Network.create(gpu, { name: "t", input: [1, 1, 1], classes: 2,
   *   layers: [{ kind: "dense", name: "fc", out: 2, relu: false }] });
   * net.destroy();
   * gpu.destroy();
   * ```
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const plan of this.#plans.values()) destroyPlan(plan);
    this.#plans.clear();
    this.#sgd?.destroy();
    this.#gathered?.destroy();
    for (const layer of this.layers) layer.destroy();
    if (this.#ownsDevice) this.gpu.destroy();
  }

  /**
   * The recorded launches of `kind` for micro-batches of `batch`, built once and kept (the few
   * most recently used). A kept plan up to twice as large serves too, its extra rows ignored: an
   * epoch's last, partial batch reuses the full batches' plan instead of recording another.
   */
  #plan(kind: "inference" | "training", batch: number): InferencePlan | TrainingPlan {
    for (const [key, plan] of this.#plans) {
      if (key.startsWith(kind) && plan.batch >= batch && plan.batch <= 2 * batch) {
        this.#plans.delete(key); // re-inserted below: most recently used last
        this.#plans.set(key, plan);
        return plan;
      }
    }
    if (this.#plans.size >= MAX_PLANS) {
      const [oldest] = this.#plans.keys();
      destroyPlan(this.#plans.get(oldest)!);
      this.#plans.delete(oldest);
    }
    const plan = kind === "inference"
      ? recordInference(this.gpu, this.layers, this.config.input, batch)
      : recordTraining(this.gpu, this.layers, this.config.input, batch);
    this.#plans.set(`${kind} ${batch}`, plan);
    return plan;
  }

  /** A buffer of at least `size` floats where several launches' results meet for one readback. */
  #gather(size: number): Tensor {
    if (!this.#gathered || this.#gathered.size < size) {
      this.#gathered?.destroy();
      this.#gathered = Tensor.zeros(this.gpu, [size], "gathered results");
    }
    return this.#gathered;
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error(`${this.config.name}: the network was destroyed`);
    if (this.gpu.lost) throw new Error(`${this.config.name}: its GPU device is gone`);
  }
}

/**
 * Examples per launch on `gpu`: the largest batch whose every activation (one example's of each
 * of `shapes`) fits one storage binding. Throws when not even one example fits.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { microBatchLimit } from "./network.ts";
 * const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 4096 } });
 * console.log(microBatchLimit(gpu, "t", [[1, 8, 8], [4, 8, 8]])); // 4
 * gpu.destroy();
 * ```
 */
export function microBatchLimit(gpu: Gpu, model: string, shapes: readonly Shape[]): number {
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const largest = Math.max(...shapes.map(shapeSize));
  const examples = Math.floor(limit / (largest * 4));
  if (examples < 1) {
    throw new RangeError(
      `${model}: one example's activations (${largest * 4} bytes) exceed this adapter's ` +
        `storage binding limit (${limit} bytes)`,
    );
  }
  return examples;
}

/**
 * A weights file's bytes: `tensors` by PyTorch name, the model's name and `metadata` in its
 * header (what every network's `weightsBytes` writes, on one device or two).
 *
 * @example
 * ```ts
 * import { weightsFile } from "./network.ts";
 * const t = new Map([["fc.bias", { shape: [1], data: new Float32Array([1]) }]]);
 * console.log(weightsFile("t", t).length > 8); // true
 * ```
 */
export function weightsFile(
  model: string,
  tensors: Map<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  return serializeSafetensors(tensors, { ...metadata, format: "pt", model });
}

/**
 * Throws a clear error unless `input` holds `batch` examples of `config`'s input shape (and
 * `labels`, where given, are classes of it): the checks every network's entry points share.
 *
 * @example
 * ```ts
 * import { ALEXNET_SMALL } from "../mod.ts";
 * import { checkBatch } from "./network.ts";
 * checkBatch(ALEXNET_SMALL, "forward", new Float32Array(784), 1, new Int32Array([9]));
 * ```
 */
export function checkBatch(
  config: ModelConfig,
  what: string,
  input: Float32Array,
  batch: number,
  labels?: Int32Array,
): void {
  const perExample = shapeSize(config.input);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`${what}: batch must be a positive integer, got ${batch}`);
  }
  if (input.length !== batch * perExample) {
    throw new RangeError(
      `${what}: input has ${input.length} values; ${batch} examples of [${config.input}] ` +
        `need ${batch * perExample}`,
    );
  }
  labels?.forEach((label, i) => {
    if (!(label >= 0 && label < config.classes)) {
      throw new RangeError(
        `${what}: label ${label} at ${i} is not a class of 0..${config.classes - 1}`,
      );
    }
  });
}

/**
 * Throws a clear error unless `tensors` holds exactly the parameters `shapes` names, with those
 * shapes: the first missing, extra or misshapen tensor is named.
 *
 * @example
 * ```ts
 * import { checkWeights } from "./network.ts";
 * const shapes = new Map([["fc.bias", [2]]]);
 * checkWeights("t", shapes, new Map([["fc.bias", { shape: [2], data: new Float32Array(2) }]]));
 * ```
 */
export function checkWeights(
  model: string,
  shapes: ReadonlyMap<string, readonly number[]>,
  tensors: ReadonlyMap<string, NamedTensor>,
): void {
  const missing = [...shapes.keys()].filter((name) => !tensors.has(name));
  if (missing.length > 0) {
    throw new RangeError(`weights for ${model}: missing tensor(s) ${missing.join(", ")}`);
  }
  const extra = [...tensors.keys()].filter((name) => !shapes.has(name));
  if (extra.length > 0) {
    throw new RangeError(
      `weights for ${model}: tensor(s) ${extra.join(", ")} are not in this model`,
    );
  }
  for (const [name, shape] of shapes) {
    const loaded = tensors.get(name)!;
    if (loaded.shape.join() !== shape.join()) {
      throw new RangeError(
        `weights for ${model}: tensor ${name} has shape [${loaded.shape}], the model needs [${shape}]`,
      );
    }
  }
}

/**
 * The initial parameters of `config` by `scheme` from `seed`, for parameters of `shapes` (by
 * name): the same values whichever devices hold them.
 *
 * @example
 * ```ts
 * import { initialWeights } from "./network.ts";
 * const config = { name: "t", input: [2, 1, 1] as const, classes: 1,
 *   layers: [{ kind: "dense" as const, name: "fc", out: 1, bias: 1 }] };
 * const w = initialWeights(config, new Map([["fc.weight", [1, 2]], ["fc.bias", [1]]]), "paper", 1);
 * console.log(w.get("fc.bias")?.data); // Float32Array [1]
 * ```
 */
export function initialWeights(
  config: ModelConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
  scheme: Exclude<InitScheme, "none">,
  seed: number,
): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const spec of config.layers) {
    if (spec.kind !== "conv" && spec.kind !== "dense") continue;
    const shape = shapes.get(`${spec.name}.weight`)!;
    const values = initialValues(scheme, spec.name, shape, spec.bias ?? 0, seed);
    out.set(`${spec.name}.weight`, { shape: [...shape], data: values.weight });
    out.set(`${spec.name}.bias`, { shape: [shape[0]], data: values.bias });
  }
  return out;
}

/**
 * Top-1 and top-5 accuracy and mean cross-entropy of [rows, classes] logits against labels.
 *
 * @example
 * ```ts
 * import { scoreLogits } from "./network.ts";
 * console.log(scoreLogits(new Float32Array([2, 1, 0, 5]), new Int32Array([0, 0]), 2).top1); // 0.5
 * ```
 */
export function scoreLogits(logits: Float32Array, labels: Int32Array, classes: number): Evaluation {
  let top1 = 0, top5 = 0, loss = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const label = labels[r];
    const above = row.reduce((n, v) => n + (v > row[label] ? 1 : 0), 0);
    if (above === 0) top1++;
    if (above < 5) top5++;
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    loss += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[label];
  }
  const n = labels.length;
  return { top1: top1 / n, top5: top5 / n, loss: loss / n };
}

/**
 * Builds the layer a table row describes, for inputs of `input` shape.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { buildLayer } from "./network.ts";
 * const gpu = await Gpu.create();
 * const pool = buildLayer(gpu, { kind: "maxpool", name: "pool1", size: 3, stride: 2 }, [96, 55, 55]);
 * console.log(pool.outputShape); // [96, 27, 27]
 * gpu.destroy();
 * ```
 */
export function buildLayer(gpu: Gpu, spec: LayerSpec, input: Shape): Layer {
  switch (spec.kind) {
    case "conv":
      return new Conv2d(gpu, spec.name, input, spec);
    case "dense":
      return new Dense(gpu, spec.name, input, spec);
    case "lrn":
      return new Lrn(gpu, spec.name, input, spec.params);
    case "maxpool":
      return new MaxPool(gpu, spec.name, input, spec.size, spec.stride);
    case "dropout":
      return new Dropout(gpu, spec.name, input, spec.p);
  }
}
