/**
 * Convolution and dense layers: both own a weight and a bias and run the one implicit-GEMM
 * kernel; a dense layer is a convolution whose kernel covers its whole input.
 *
 * @module
 */
import type { Gpu, Launch } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import {
  conv2dForward,
  type Conv2dGeometry,
  conv2dOutputSize,
  validateConv2d,
} from "../kernels/conv2d_forward.ts";
import type { Layer, Shape } from "./layer.ts";

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
  readonly #gpu: Gpu;
  readonly #weight: Tensor;
  readonly #bias: Tensor;

  /**
   * Allocates the layer's parameters (zero; see `initParameters` in `init.ts`).
   * `weightShape` overrides the declared weight shape (dense layers declare [out, in]).
   */
  constructor(
    gpu: Gpu,
    name: string,
    input: Shape,
    options: Conv2dOptions,
    weightShape?: number[],
  ) {
    const { out, kernel, stride = 1, pad = 0, groups = 1, relu = true } = options;
    this.geometry = {
      inChannels: input[0],
      height: input[1],
      width: input[2],
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
    this.name = name;
    this.inputShape = input;
    this.outputShape = [out, oh, ow];
    this.relu = relu;
    this.macs = out * oh * ow * (input[0] / groups) * kernel * kernel;
    this.#weight = Tensor.zeros(
      gpu,
      weightShape ?? [out, input[0] / groups, kernel, kernel],
      `${name}.weight`,
    );
    this.#bias = Tensor.zeros(gpu, [out], `${name}.bias`);
    this.parameters = new Map([[`${name}.weight`, this.#weight], [`${name}.bias`, this.#bias]]);
  }

  /**
   * Records the convolution of `batch` examples.
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
   * gpu.destroy();
   * ```
   */
  forward(x: Tensor, y: Tensor, batch: number): Launch {
    return conv2dForward(this.#gpu, {
      geometry: this.geometry,
      batch,
      x,
      weight: this.#weight,
      bias: this.#bias,
      y,
      relu: this.relu,
    });
  }

  /**
   * Frees the weight and bias.
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
    for (const t of this.parameters.values()) t.destroy();
  }
}

/**
 * A fully connected layer over the flattened (NCHW) input: a convolution whose kernel is the
 * whole input map, declaring its weight as PyTorch's [out, in].
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
  /**
   * Allocates a dense layer of `out` neurons over inputs of shape `input`.
   */
  constructor(gpu: Gpu, name: string, input: Shape, options: { out: number; relu?: boolean }) {
    if (input[1] !== input[2]) {
      throw new RangeError(
        `${name}: a dense layer needs square input maps, got ${input[1]}x${input[2]}`,
      );
    }
    super(gpu, name, input, { out: options.out, kernel: input[1], relu: options.relu }, [
      options.out,
      input[0] * input[1] * input[2],
    ]);
  }
}
