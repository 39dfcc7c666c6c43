/**
 * Local response normalisation as a layer (no parameters).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, NO_LAUNCH } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { lrnBackward } from "../kernels/lrn_backward.ts";
import { lrnForward, type LrnParams } from "../kernels/lrn_forward.ts";
import { lrnMaxPoolBackward } from "../kernels/lrn_maxpool_backward.ts";
import type { PoolLaunch } from "../kernels/maxpool_forward.ts";
import { type BackwardArgs, type Layer, ParameterFreeLayer, type Shape } from "./layer.ts";
import type { MaxPool } from "./maxpool.ts";

/**
 * Local response normalisation across channels.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { PAPER_LRN } from "../kernels/lrn_forward.ts";
 * import { Lrn } from "./lrn.ts";
 * const gpu = await Gpu.create();
 * console.log(new Lrn(gpu, "lrn1", [96, 55, 55], PAPER_LRN).outputShape); // [96, 55, 55]
 * gpu.destroy();
 * ```
 */
export class Lrn extends ParameterFreeLayer implements Layer {
  /** The layer's name. */
  readonly name: string;
  /** One example's input shape. */
  readonly inputShape: Shape;
  /** Same as the input. */
  readonly outputShape: Shape;
  /** Needs its own output buffer (each output reads several inputs). */
  readonly inPlace = false;
  /** The normalisation constants. */
  readonly params: LrnParams;
  /**
   * The input is a ReLU's output whose mask this layer's input gradient applies (set by
   * `buildLayers`, with the convolution's `reluMaskedAfter`).
   */
  reluInput = false;
  readonly #gpu: Gpu;

  /** A normalisation over inputs of `input` shape. */
  constructor(gpu: Gpu, name: string, input: Shape, params: LrnParams) {
    super();
    if (input[0] % params.groups) {
      throw new RangeError(
        `${name}: ${input[0]} channels do not split into ${params.groups} groups`,
      );
    }
    this.#gpu = gpu;
    this.name = name;
    this.inputShape = this.outputShape = input;
    this.params = params;
  }

  /** Records the normalisation of `batch` examples (the same in training: nothing is saved). */
  forward(x: Tensor, y: Tensor, batch: number, _training: boolean): Launch {
    return lrnForward(this.#gpu, { x, y, batch, params: this.params });
  }

  /** Records the input gradient from the forward pass's input. */
  backward({ x, dy, dx, batch }: BackwardArgs): Launch {
    if (!dx) return NO_LAUNCH;
    const { params, reluInput } = this;
    return lrnBackward(this.#gpu, { x, dy, dx, batch, params, reluInput });
  }

  /**
   * Records the input gradient through `pool`, the max-pooling after this layer, in one kernel:
   * from the pooled gradient `dy` and the argmax `pool`'s training `forward` launch saved.
   */
  backwardThrough(
    pool: MaxPool,
    { x, dy, dx, batch, forward }: Pick<BackwardArgs, "x" | "dy" | "dx" | "batch" | "forward">,
  ): Launch {
    const indices = (forward as PoolLaunch).indices;
    if (!dx) return NO_LAUNCH;
    if (!indices) throw new Error(`${pool.name}: backward needs a training forward pass`);
    const { params, reluInput } = this, { size, stride } = pool;
    return lrnMaxPoolBackward(this.#gpu, {
      x,
      dy,
      dx,
      indices,
      batch,
      params,
      size,
      stride,
      reluInput,
    });
  }
}
