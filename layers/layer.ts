/**
 * What every layer is: a shape transformer that owns its parameters and records its kernels.
 *
 * @module
 */
import type { Launch } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** The shape of one example: [channels, height, width]. */
export type Shape = readonly [number, number, number];

/**
 * A layer of the network. Layers are built for one input shape; `forward` records (does not run)
 * the launches that compute `y` from `x` for a batch, so a plan is recorded once and replayed.
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
  /** Multiply-adds per example in the forward pass. */
  readonly macs: number;
  /** True when the output is written over the input (no buffer of its own). */
  readonly inPlace: boolean;
  /** Records the forward launches for `batch` examples (`training` enables dropout). */
  forward(x: Tensor, y: Tensor, batch: number, training: boolean): Launch;
  /** Frees the parameters. */
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
