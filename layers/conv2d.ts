/**
 * Convolution and dense layers: both own a weight and a bias (and their gradients) and run the
 * one implicit-GEMM core; a dense layer is a 1x1 convolution over its flattened input.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { joinLaunches, type Launch } from "../gpu/launch.ts";
import { Tensor } from "../gpu/tensor.ts";
import { conv2dBackwardInput } from "../kernels/conv2d_backward_input.ts";
import { conv2dBackwardWeight } from "../kernels/conv2d_backward_weight.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { reluBackward } from "../kernels/relu_backward.ts";
import { readsCopies } from "../kernels/gemm/mirror.ts";
import {
  type Conv2dGeometry,
  conv2dOutputSize,
  validateConv2d,
} from "../kernels/conv2d_geometry.ts";
import { autotuneGemm, type TunedGemm, Tuning } from "../kernels/gemm/tuning.ts";
import type { BackwardArgs, Layer, Shape } from "./layer.ts";
import { WeightCopies } from "./weight_copies.ts";

/** Options of a convolution layer. */
export interface Conv2dOptions {
  /** Output channels (kernels). */
  out: number;
  /** Square kernel size. */
  kernel: number;
  /** Stride (default 1). */
  stride?: number;
  /** Zero padding on every side (default 0). */
  pad?: number;
  /** Channel groups (default 1); the paper's two-tower layers use 2. */
  groups?: number;
  /** Fused ReLU (default true). */
  relu?: boolean;
  /** The autotuner's choices the layer's kernels use and `tune` adds to (default: its own). */
  tuning?: Tuning;
}

/**
 * A convolution with bias and (by default) ReLU.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Conv2d } from "./conv2d.ts";
 * const gpu = await Gpu.create();
 * const conv1 = new Conv2d(gpu, "conv1", [3, 227, 227], { out: 96, kernel: 11, stride: 4 });
 * console.log(conv1.outputShape, conv1.macs); // [96, 55, 55] 105415200
 * gpu.destroy();
 * ```
 */
export class Conv2d implements Layer {
  /** The layer's name. */
  readonly name: string;
  /** One example's input shape. */
  readonly inputShape: Shape;
  /** One example's output shape. */
  readonly outputShape: Shape;
  /** `NAME.weight` and `NAME.bias`. */
  readonly parameters: ReadonlyMap<string, Tensor>;
  /** Multiply-adds per example. */
  readonly macs: number;
  /** Never in place. */
  readonly inPlace = false;
  /** The convolution's geometry. */
  readonly geometry: Conv2dGeometry;
  /** Whether ReLU is fused. */
  readonly relu: boolean;
  /**
   * The next layer's input gradient applies this layer's ReLU mask (an LRN, which reads the
   * output anyway, or a max-pooling, whose argmax skips zeros), so the backward pass does not:
   * one pass over the output gradient fewer.
   */
  reluMaskedAfter = false;
  /** The autotuner's choices its kernels use. */
  readonly tuning: Tuning;
  readonly #gpu: Gpu;
  readonly #weightCopies: WeightCopies;
  #gradients: Map<string, Tensor> | undefined;

  /**
   * Allocates the layer's parameters (zero until initialised or loaded). `geometry` and
   * `weightShape` let a dense layer describe itself as a convolution.
   */
  constructor(
    gpu: Gpu,
    name: string,
    input: Shape,
    options: Conv2dOptions,
    as?: { geometryInput: Shape; weightShape: number[] },
  ) {
    const { out, kernel, stride = 1, pad = 0, groups = 1, relu = true } = options;
    this.tuning = options.tuning ?? new Tuning();
    const [c, h, w] = as?.geometryInput ?? input;
    this.geometry = {
      inChannels: c,
      height: h,
      width: w,
      outChannels: out,
      kernelH: kernel,
      kernelW: kernel,
      strideH: stride,
      strideW: stride,
      padH: pad,
      padW: pad,
      groups,
    };
    try {
      validateConv2d(this.geometry);
    } catch (e) {
      throw new RangeError(`${name}: ${(e as Error).message}`);
    }
    const [oh, ow] = conv2dOutputSize(this.geometry);
    this.#gpu = gpu;
    this.#weightCopies = new WeightCopies(gpu);
    this.name = name;
    this.inputShape = input;
    this.outputShape = [out, oh, ow];
    this.relu = relu;
    this.macs = out * oh * ow * (c / groups) * kernel * kernel;
    const weightShape = as?.weightShape ?? [out, c / groups, kernel, kernel];
    this.parameters = new Map([
      [`${name}.weight`, Tensor.zeros(gpu, weightShape, `${name}.weight`)],
      [`${name}.bias`, Tensor.zeros(gpu, [out], `${name}.bias`)],
    ]);
  }

  /** The gradients of `NAME.weight` and `NAME.bias`, allocated at first use. */
  get gradients(): ReadonlyMap<string, Tensor> {
    this.#gradients ??= new Map(
      [...this.parameters].map(([n, t]) => [n, Tensor.zeros(this.#gpu, t.shape, `${n} gradient`)]),
    );
    return this.#gradients;
  }

  /**
   * Records the convolution of `batch` examples. In training (`training`), on llvmpipe, a dense
   * layer copies its weights to a texture it keeps for its input gradient (`weight_copies.ts`).
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Tensor } from "../gpu/tensor.ts";
   * import { Conv2d } from "./conv2d.ts";
   * const gpu = await Gpu.create();
   * const conv = new Conv2d(gpu, "conv", [1, 4, 4], { out: 2, kernel: 3, pad: 1 });
   * const x = Tensor.zeros(gpu, [1, 1, 4, 4]), y = Tensor.zeros(gpu, [1, 2, 4, 4]);
   * gpu.run(conv.forward(x, y, 1).dispatches);
   * console.log((await y.read()).length); // 32: the read waits for the launch
   * gpu.destroy();
   * ```
   */
  forward(x: Tensor, y: Tensor, batch: number, training = false): Launch {
    const copies = training && readsCopies(this.#gpu) ? this.#weightCopies : undefined;
    return conv2dForward(this.#gpu, {
      geometry: this.geometry,
      batch,
      x,
      weight: this.parameters.get(`${this.name}.weight`)!,
      bias: this.parameters.get(`${this.name}.bias`)!,
      y,
      relu: this.relu,
      tuning: this.tuning,
      weightCopy: copies && ((slice) => copies.target(slice)),
    });
  }

  /**
   * Records the input gradient (unless `dx` is null) and the weight and bias gradients.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Tensor } from "../gpu/tensor.ts";
   * import { Conv2d } from "./conv2d.ts";
   * const gpu = await Gpu.create();
   * const conv = new Conv2d(gpu, "conv", [1, 4, 4], { out: 2, kernel: 3, pad: 1 });
   * const x = Tensor.zeros(gpu, [1, 1, 4, 4]), y = Tensor.zeros(gpu, [1, 2, 4, 4]);
   * const forward = conv.forward(x, y, 1);
   * const dy = Tensor.zeros(gpu, [1, 2, 4, 4]), dx = Tensor.zeros(gpu, [1, 1, 4, 4]);
   * gpu.run(conv.backward({ x, y, dy, dx, batch: 1, accumulate: false, forward }).dispatches);
   * console.log([...conv.gradients.keys()]); // ["conv.weight", "conv.bias"]
   * console.log(await conv.gradients.get("conv.bias")!.read()); // Float32Array [0, 0]
   * gpu.destroy();
   * ```
   */
  backward(args: BackwardArgs): Launch {
    const gradients = this.gradients;
    // The fused ReLU's mask goes into dy first (in place: dy is this layer's alone).
    const gpu = this.#gpu;
    const mask = this.relu && !this.reluMaskedAfter
      ? [reluBackward(gpu, { y: args.y, dy: args.dy, count: args.dy.size })]
      : [];
    const common = { geometry: this.geometry, batch: args.batch, dy: args.dy, tuning: this.tuning };
    const weight = this.parameters.get(`${this.name}.weight`)!;
    // Where the forward pass kept its copy of the weights, the input gradient reads it there.
    const weightCopy = (slice: GPUBufferBinding) =>
      this.#weightCopies.copiedBy(args.forward, slice);
    const input = args.dx
      ? [conv2dBackwardInput(gpu, { ...common, weight, dx: args.dx, weightCopy })]
      : [];
    const weights = args.weights === false ? [] : [conv2dBackwardWeight(gpu, {
      ...common,
      x: args.x,
      dWeight: gradients.get(`${this.name}.weight`)!,
      dBias: gradients.get(`${this.name}.bias`)!,
      accumulate: args.accumulate,
    })];
    return joinLaunches([...mask, ...input, ...weights]);
  }

  /**
   * Times the candidate tilings of the layer's three GEMMs (forward, input gradient, weight
   * gradient) at `batch` on scratch tensors, and keeps the fastest in {@linkcode Conv2d.tuning} for
   * launches recorded later.
   *
   * @example
   * ```ts ignore
   * import { Gpu } from "../gpu/device.ts";
   * import { Conv2d } from "./conv2d.ts";
   * const gpu = await Gpu.create();
   * const conv = new Conv2d(gpu, "conv", [3, 9, 9], { out: 8, kernel: 3 });
   * // Not run as a doc test: every candidate kernel compiles, seconds each on a CPU adapter.
   * console.log((await conv.tune(2)).length); // 3
   * conv.destroy();
   * gpu.destroy();
   * ```
   */
  async tune(batch: number): Promise<TunedGemm[]> {
    const gpu = this.#gpu, geometry = this.geometry;
    const { inChannels: c, height: h, width: w } = geometry;
    const x = Tensor.zeros(gpu, [batch, c, h, w], `${this.name} tuning x`);
    const dx = Tensor.zeros(gpu, [batch, c, h, w], `${this.name} tuning dx`);
    const y = Tensor.zeros(gpu, [batch, ...this.outputShape], `${this.name} tuning y`);
    const dy = Tensor.zeros(gpu, [batch, ...this.outputShape], `${this.name} tuning dy`);
    const weight = this.parameters.get(`${this.name}.weight`)!;
    const bias = this.parameters.get(`${this.name}.bias`)!;
    const dWeight = Tensor.zeros(gpu, weight.shape, `${this.name} tuning dWeight`);
    const dBias = Tensor.zeros(gpu, bias.shape, `${this.name} tuning dBias`);
    try {
      const common = { geometry, batch };
      return [
        await autotuneGemm(
          gpu,
          this.tuning,
          (tile) => conv2dForward(gpu, { ...common, x, weight, bias, y, relu: this.relu, tile }),
        ),
        await autotuneGemm(
          gpu,
          this.tuning,
          (tile) => conv2dBackwardInput(gpu, { ...common, dy, weight, dx, tile }),
        ),
        await autotuneGemm(
          gpu,
          this.tuning,
          (tile) =>
            conv2dBackwardWeight(gpu, {
              ...common,
              x,
              dy,
              dWeight,
              dBias,
              accumulate: false,
              tile,
            }),
        ),
      ];
    } finally {
      for (const t of [x, dx, y, dy, dWeight, dBias]) t.destroy();
    }
  }

  /**
   * Frees the weight, bias and their gradients.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Conv2d } from "./conv2d.ts";
   * const gpu = await Gpu.create();
   * new Conv2d(gpu, "c", [1, 3, 3], { out: 1, kernel: 3 }).destroy();
   * gpu.destroy();
   * ```
   */
  destroy(): void {
    this.#weightCopies.destroy();
    for (const t of this.parameters.values()) t.destroy();
    for (const t of this.#gradients?.values() ?? []) t.destroy();
  }
}

/**
 * A fully connected layer over the flattened (NCHW) input, declaring its weight as PyTorch's
 * [out, in]: a 1x1 convolution over a [c * h * w, 1, 1] input, which is the same memory.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Dense } from "./conv2d.ts";
 * const gpu = await Gpu.create();
 * const fc6 = new Dense(gpu, "fc6", [256, 6, 6], { out: 4096 });
 * console.log(fc6.parameters.get("fc6.weight")!.shape); // [4096, 9216]
 * gpu.destroy();
 * ```
 */
export class Dense extends Conv2d {
  /** Allocates a dense layer of `out` neurons over inputs of shape `input`. */
  constructor(
    gpu: Gpu,
    name: string,
    input: Shape,
    options: { out: number; relu?: boolean; tuning?: Tuning },
  ) {
    const features = input[0] * input[1] * input[2];
    super(gpu, name, input, { ...options, kernel: 1 }, {
      geometryInput: [features, 1, 1],
      weightShape: [options.out, features],
    });
  }
}
