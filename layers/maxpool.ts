/**
 * Overlapping max-pooling as a layer (no parameters).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, NO_LAUNCH } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { maxPoolBackward } from "../kernels/maxpool_backward.ts";
import { lrnMaxPoolForward } from "../kernels/lrn_maxpool_forward.ts";
import { maxPoolForward, maxPoolOutputSize, type PoolLaunch } from "../kernels/maxpool_forward.ts";
import { type BackwardArgs, type Layer, ParameterFreeLayer, type Shape } from "./layer.ts";
import type { Lrn } from "./lrn.ts";

/**
 * Max-pooling over `size` x `size` windows at `stride`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { MaxPool } from "./maxpool.ts";
 * const gpu = await Gpu.create();
 * console.log(new MaxPool(gpu, "pool1", [96, 55, 55], 3, 2).outputShape); // [96, 27, 27]
 * gpu.destroy();
 * ```
 */
export class MaxPool extends ParameterFreeLayer implements Layer {
  /** The layer's name. */
  readonly name: string;
  /** One example's input shape. */
  readonly inputShape: Shape;
  /** One example's output shape. */
  readonly outputShape: Shape;
  /** Needs its own (smaller) output buffer. */
  readonly inPlace = false;
  /** Window side. */
  readonly size: number;
  /** Window step. */
  readonly stride: number;
  /**
   * The input is a ReLU's output whose mask this layer's input gradient applies (set by
   * `buildLayers`, with the convolution's `reluMaskedAfter`).
   */
  reluInput = false;
  readonly #gpu: Gpu;

  /** A pooling over inputs of `input` shape. */
  constructor(gpu: Gpu, name: string, input: Shape, size: number, stride: number) {
    super();
    let out: [number, number];
    try {
      out = maxPoolOutputSize(input[1], input[2], size, stride);
    } catch (e) {
      throw new RangeError(`${name}: ${(e as Error).message}`);
    }
    this.#gpu = gpu;
    this.name = name;
    this.inputShape = input;
    this.outputShape = [input[0], out[0], out[1]];
    this.size = size;
    this.stride = stride;
  }

  /** Records the pooling of `batch` examples (saving each window's argmax in training). */
  forward(x: Tensor, y: Tensor, batch: number, training: boolean): PoolLaunch {
    const { size, stride, reluInput } = this, saveIndices = training;
    return maxPoolForward(this.#gpu, { x, y, batch, size, stride, saveIndices, reluInput });
  }

  /**
   * Records the pooling of `lrn`'s normalisation of `x` (that layer's input) in one kernel, as
   * {@linkcode MaxPool.forward} of `lrn`'s output would pool it: LRN's output is never stored.
   */
  forwardAfter(lrn: Lrn, x: Tensor, y: Tensor, batch: number, training: boolean): PoolLaunch {
    const { size, stride } = this;
    const params = lrn.params, saveIndices = training;
    return lrnMaxPoolForward(this.#gpu, { x, y, batch, params, size, stride, saveIndices });
  }

  /** Records the input gradient from the argmax the forward launch saved. */
  backward({ dy, dx, batch, forward }: BackwardArgs): Launch {
    const indices = (forward as PoolLaunch).indices;
    if (!dx) return NO_LAUNCH;
    if (!indices) throw new Error(`${this.name}: backward needs a training forward pass`);
    return maxPoolBackward(this.#gpu, {
      indices,
      dy,
      dx,
      batch,
      size: this.size,
      stride: this.stride,
    });
  }
}
