/**
 * Dropout as a layer: in place, active only in training, the identity in inference.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, NO_LAUNCH } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { dropoutForward, type DropoutLaunch } from "../kernels/dropout_forward.ts";
import { tensorSeed } from "./init.ts";
import {
  type BackwardArgs,
  type Layer,
  ParameterFreeLayer,
  type Shape,
  shapeSize,
} from "./layer.ts";

/**
 * Dropout with probability `p` (the paper: 0.5 after fc6 and fc7).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Dropout } from "./dropout.ts";
 * const gpu = await Gpu.create();
 * console.log(new Dropout(gpu, "drop6", [4096, 1, 1], 0.5).inPlace); // true
 * gpu.destroy();
 * ```
 */
export class Dropout extends ParameterFreeLayer implements Layer {
  /** The layer's name. */
  readonly name: string;
  /** One example's input shape. */
  readonly inputShape: Shape;
  /** Same as the input. */
  readonly outputShape: Shape;
  /** Works on its input buffer. */
  readonly inPlace = true;
  /** Drop probability. */
  readonly p: number;
  readonly #gpu: Gpu;

  /** A dropout over inputs of `input` shape. */
  constructor(gpu: Gpu, name: string, input: Shape, p: number) {
    super();
    if (!(p >= 0 && p < 1)) {
      throw new RangeError(`${name}: dropout probability ${p} is not in [0, 1)`);
    }
    this.#gpu = gpu;
    this.name = name;
    this.inputShape = this.outputShape = input;
    this.p = p;
  }

  /** Records dropout of `batch` examples in training (set its seed per step); nothing in inference. */
  forward(x: Tensor, _y: Tensor, batch: number, training: boolean): Launch | DropoutLaunch {
    if (!training || this.p === 0) return NO_LAUNCH;
    return dropoutForward(this.#gpu, { x, count: batch * shapeSize(this.inputShape), p: this.p });
  }

  /** Records the same mask (the forward launch's seed) applied to the gradient, in place. */
  backward({ dy, batch, forward }: BackwardArgs): Launch {
    if (forward.buffers.length === 0) return NO_LAUNCH;
    const count = batch * shapeSize(this.inputShape);
    return dropoutForward(this.#gpu, { x: dy, count, p: this.p, params: forward.buffers[0] });
  }
}

/**
 * The seed of the dropout masks of layer `layer` (its index in the whole table) at `step`: the
 * same on one device and on data-parallel replicas, so that they train alike; each model-parallel
 * tower (`tower` 0 or 1) draws its own. A mask element is then a hash of the seed and the
 * element's index in the whole batch, so splitting a batch does not change it.
 *
 * @example
 * ```ts
 * import { dropoutSeed } from "./dropout.ts";
 * console.assert(dropoutSeed(1, 0, 5, null) !== dropoutSeed(1, 1, 5, null));
 * console.assert(dropoutSeed(1, 0, 5, 0) !== dropoutSeed(1, 0, 5, 1));
 * ```
 */
export function dropoutSeed(
  seed: number,
  step: number,
  layer: number,
  tower: number | null,
): number {
  return tensorSeed(seed, `dropout ${step} ${layer}${tower === null ? "" : ` tower ${tower}`}`);
}
