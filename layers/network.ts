/**
 * A feed-forward network of layers on one device: builds the layers from a configuration, records
 * each batch size's launches once (a plan) and replays them with one submit per micro-batch, and
 * loads and saves its parameters as safetensors with PyTorch's names and layouts.
 *
 * @module
 */
import type { Dispatch, Gpu, Launch } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { type NamedTensor, parseSafetensors, serializeSafetensors } from "../io/safetensors.ts";
import type { LrnParams } from "../kernels/lrn_forward.ts";
import { softmaxForward } from "../kernels/softmax_forward.ts";
import { Conv2d, Dense } from "./conv2d.ts";
import { Dropout } from "./dropout.ts";
import { initialValues, type InitScheme } from "./init.ts";
import { type Layer, type Shape, shapeSize } from "./layer.ts";
import { Lrn } from "./lrn.ts";
import { MaxPool } from "./maxpool.ts";

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
}

/** The recorded launches and buffers of one micro-batch size. */
interface Plan {
  batch: number;
  input: Tensor;
  logits: Tensor;
  probabilities: Tensor;
  forward: Dispatch[];
  softmax: Dispatch[];
  owned: Tensor[];
  uniforms: GPUBuffer[];
}

const MAX_PLANS = 2;

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
export class Network {
  /** The device. */
  readonly gpu: Gpu;
  /** The configuration the network was built from. */
  readonly config: ModelConfig;
  /** The layers, in order. */
  readonly layers: readonly Layer[];
  /** Examples per launch: the largest batch whose every activation fits one storage binding. */
  readonly maxMicroBatch: number;
  #plans = new Map<number, Plan>();
  #destroyed = false;
  #ownsDevice: boolean;

  private constructor(gpu: Gpu, config: ModelConfig, layers: Layer[], ownsDevice: boolean) {
    this.gpu = gpu;
    this.#ownsDevice = ownsDevice;
    this.config = config;
    this.layers = layers;
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const largest = Math.max(
      shapeSize(config.input),
      ...layers.map((l) => shapeSize(l.outputShape)),
    );
    this.maxMicroBatch = Math.floor(limit / (largest * 4));
    if (this.maxMicroBatch < 1) {
      throw new RangeError(
        `${config.name}: one example's activations (${largest * 4} bytes) exceed this adapter's ` +
          `storage binding limit (${limit} bytes)`,
      );
    }
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
      const net = new Network(gpu, config, layers, options.ownsDevice ?? false);
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
    this.config.layers.forEach((spec, i) => {
      if (spec.kind !== "conv" && spec.kind !== "dense") return;
      const weight = this.layers[i].parameters.get(`${spec.name}.weight`)!;
      const bias = this.layers[i].parameters.get(`${spec.name}.bias`)!;
      const values = initialValues(scheme, spec.name, weight.shape, spec.bias ?? 0, seed);
      weight.write(values.weight);
      bias.write(values.bias);
    });
  }

  /** Every learned tensor by its PyTorch name, in layer order. */
  get parameters(): Map<string, Tensor> {
    return new Map(this.layers.flatMap((l) => [...l.parameters]));
  }

  /** The number of learned values. */
  get parameterCount(): number {
    return [...this.parameters.values()].reduce((n, t) => n + t.size, 0);
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
    const perExample = shapeSize(this.config.input);
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(`forward: batch must be a positive integer, got ${batch}`);
    }
    if (input.length !== batch * perExample) {
      throw new RangeError(
        `forward: input has ${input.length} values; ${batch} examples of [${this.config.input}] ` +
          `need ${batch * perExample}`,
      );
    }
    const chunks = Math.ceil(batch / this.maxMicroBatch);
    const plan = this.#plan(Math.ceil(batch / chunks));
    const classes = this.config.classes;
    const result = options.softmax ? plan.probabilities : plan.logits;
    const dispatches = options.softmax ? [...plan.forward, ...plan.softmax] : plan.forward;
    if (chunks === 1) {
      plan.input.write(input);
      this.gpu.run(dispatches);
      return await this.gpu.read(result.buffer, 0, batch * classes * 4);
    }
    const gathered = Tensor.zeros(this.gpu, [batch, classes], "gathered outputs");
    try {
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
              first * classes * 4,
              rows * classes * 4,
            ),
        );
      }
      return await gathered.read();
    } finally {
      gathered.destroy();
    }
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
    const { tensors } = parseSafetensors(bytes);
    const params = this.parameters;
    const missing = [...params.keys()].filter((name) => !tensors.has(name));
    if (missing.length > 0) {
      throw new RangeError(
        `weights for ${this.config.name}: missing tensor(s) ${missing.join(", ")}`,
      );
    }
    const extra = [...tensors.keys()].filter((name) => !params.has(name));
    if (extra.length > 0) {
      throw new RangeError(
        `weights for ${this.config.name}: tensor(s) ${extra.join(", ")} are not in this model`,
      );
    }
    for (const [name, t] of params) {
      const loaded = tensors.get(name)!;
      if (loaded.shape.join() !== t.shape.join()) {
        throw new RangeError(
          `weights for ${this.config.name}: tensor ${name} has shape [${loaded.shape}], ` +
            `the model needs [${t.shape}]`,
        );
      }
    }
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
   * The parameters as a safetensors file's bytes.
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
  async weightsBytes(): Promise<Uint8Array> {
    return serializeSafetensors(await this.weights(), { format: "pt", model: this.config.name });
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
    for (const layer of this.layers) layer.destroy();
    if (this.#ownsDevice) this.gpu.destroy();
  }

  /** The recorded launches for micro-batches of `batch`, built once and kept (the last few). */
  #plan(batch: number): Plan {
    const cached = this.#plans.get(batch);
    if (cached) return cached;
    if (this.#plans.size >= MAX_PLANS) {
      const [oldest] = this.#plans.keys();
      destroyPlan(this.#plans.get(oldest)!);
      this.#plans.delete(oldest);
    }
    const owned: Tensor[] = [];
    const launches: Launch[] = [];
    const input = Tensor.zeros(this.gpu, [batch, ...this.config.input], "input");
    owned.push(input);
    let x = input;
    for (const layer of this.layers) {
      let y = x;
      if (!layer.inPlace) {
        y = Tensor.zeros(this.gpu, [batch, ...layer.outputShape], `${layer.name} output`);
        owned.push(y);
      }
      launches.push(layer.forward(x, y, batch, false));
      x = y;
    }
    const logits = new Tensor(this.gpu, [batch, this.config.classes], x.buffer);
    const probabilities = Tensor.zeros(this.gpu, [batch, this.config.classes], "probabilities");
    owned.push(probabilities);
    const softmax = softmaxForward(this.gpu, { x: logits, y: probabilities, rows: batch });
    const plan: Plan = {
      batch,
      input,
      logits,
      probabilities,
      forward: launches.flatMap((l) => l.dispatches),
      softmax: softmax.dispatches,
      owned,
      uniforms: [...launches, softmax].flatMap((l) => l.uniforms),
    };
    this.#plans.set(batch, plan);
    return plan;
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error(`${this.config.name}: the network was destroyed`);
    if (this.gpu.lost) throw new Error(`${this.config.name}: its GPU device is gone`);
  }
}

function destroyPlan(plan: Plan): void {
  for (const t of plan.owned) t.destroy();
  for (const u of plan.uniforms) u.destroy();
}

function buildLayer(gpu: Gpu, spec: LayerSpec, input: Shape): Layer {
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
