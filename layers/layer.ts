/**
 * What every layer is: a shape transformer that owns its parameters and their gradients and
 * records its kernels.
 *
 * @module
 */
import type { Launch } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { TunedGemm } from "../kernels/gemm/tuning.ts";

/** The shape of one example: [channels, height, width]. */
export type Shape = readonly [number, number, number];

/** What a layer's backward pass reads and writes. */
export interface BackwardArgs {
  /** The layer's input in the forward pass. */
  x: Tensor;
  /** The layer's output in the forward pass (the same tensor as `x` for in-place layers). */
  y: Tensor;
  /** The loss gradient with respect to `y`. */
  dy: Tensor;
  /** Where the gradient with respect to `x` goes (the same as `dy` for in-place layers), or
   * null where nobody needs it (the first layer). */
  dx: Tensor | null;
  /** Examples in the launch. */
  batch: number;
  /** Add the parameter gradients to the stored ones (micro-batches after a batch's first). */
  accumulate: boolean;
  /** Compute the parameter gradients (default true; false for a frozen layer). */
  weights?: boolean;
  /** This layer's forward launch in the same plan (dropout reuses its seed). */
  forward: Launch;
}

/**
 * A layer of the network. Layers are built for one input shape; `forward` and `backward` record
 * (do not run) the launches for a batch, so a plan is recorded once and replayed.
 */
export interface Layer {
  /** The layer's name in the paper's table (conv1, lrn1, pool1, fc6, drop6, ...). */
  readonly name: string;
  /** One example's input shape. */
  readonly inputShape: Shape;
  /** One example's output shape. */
  readonly outputShape: Shape;
  /** Learned tensors by their PyTorch names (`conv1.weight`, ...), weight before bias. */
  readonly parameters: ReadonlyMap<string, Tensor>;
  /** The loss gradients of the parameters, by the same names (allocated at first backward). */
  readonly gradients: ReadonlyMap<string, Tensor>;
  /** Multiply-adds per example in the forward pass. */
  readonly macs: number;
  /** True when the output is written over the input (no buffer of its own). */
  readonly inPlace: boolean;
  /** Records the forward launches for `batch` examples (`training` enables dropout). */
  forward(x: Tensor, y: Tensor, batch: number, training: boolean): Launch;
  /** Records the backward launches: `dx` and the parameter gradients from `dy`. */
  backward(args: BackwardArgs): Launch;
  /**
   * Measures the candidate GEMM tilings of the layer's kernels at `batch` and records the fastest
   * in the tuning the layer was built with (layers that multiply).
   */
  tune?(batch: number): Promise<TunedGemm[]>;
  /** Frees the parameters and gradients. */
  destroy(): void;
}

/**
 * Elements of one example of `shape`.
 *
 * @example
 * ```ts
 * import { shapeSize } from "./layer.ts";
 * console.assert(shapeSize([96, 55, 55]) === 290400);
 * ```
 */
export function shapeSize(shape: Shape): number {
  return shape[0] * shape[1] * shape[2];
}

/** What every layer without parameters shares: no parameters, no gradients, no multiply-adds. */
export abstract class ParameterFreeLayer {
  /** None. */
  readonly parameters: ReadonlyMap<string, Tensor> = new Map();
  /** None. */
  readonly gradients: ReadonlyMap<string, Tensor> = new Map();
  /** Counted as zero: only convolutions and dense layers count multiply-adds. */
  readonly macs = 0;
  /** Nothing to free. */
  destroy(): void {}
}
