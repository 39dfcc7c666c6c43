/**
 * The launches of a pass over a run of layers, by layer index, where two layers may run as one
 * kernel: an LRN and the max-pooling after it (the paper's conv1 and conv2 blocks). Forward, the
 * pooling normalises its own inputs (lrn_maxpool_forward.ts); backward, at stride 2, the LRN's
 * gradient kernel gathers the pooling's (lrn_maxpool_backward.ts). Either way the tensor between
 * them is neither written nor read, and the results are those of the two kernels, to the bit.
 *
 * @module
 */
import { type Launch, NO_LAUNCH } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { FUSED_POOL_STRIDE } from "../kernels/lrn_maxpool_backward.ts";
import type { Layer } from "./layer.ts";
import { Lrn } from "./lrn.ts";
import { MaxPool } from "./maxpool.ts";

/** An LRN and the max-pooling right after it. */
export interface LrnPool {
  /** The LRN. */
  lrn: Lrn;
  /** The pooling after it. */
  pool: MaxPool;
  /** Their gradients run as one kernel too (pooling at stride 2). */
  backward: boolean;
}

/**
 * The LRN at `i` and the max-pooling at `i + 1`, or null where `layers` hold no such pair there.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { PAPER_LRN } from "../kernels/lrn_forward.ts";
 * import { buildLayers } from "./build.ts";
 * import { lrnPoolAt } from "./fusion.ts";
 * const gpu = await Gpu.create();
 * const layers = buildLayers(gpu, [
 *   { kind: "lrn", name: "lrn1", params: PAPER_LRN },
 *   { kind: "maxpool", name: "pool1", size: 3, stride: 2 },
 * ], [4, 7, 7]);
 * console.log(lrnPoolAt(layers, 0)?.backward, lrnPoolAt(layers, 1)); // true null
 * gpu.destroy();
 * ```
 */
export function lrnPoolAt(layers: readonly Layer[], i: number): LrnPool | null {
  const [lrn, pool] = [layers[i], layers[i + 1]];
  if (!(lrn instanceof Lrn && pool instanceof MaxPool)) return null;
  return { lrn, pool, backward: pool.stride === FUSED_POOL_STRIDE };
}

/**
 * Records the forward launches of `layers` from `acts` (their input, then each one's output).
 * An LRN followed by max-pooling leaves its own slot empty, the pooling reading its input, and
 * `alone` holds its own launch, for a pass that stops at it.
 *
 * @example
 * ```ts ignore
 * const { forward, alone } = recordForward(layers, acts, batch, true);
 * ```
 */
export function recordForward(
  layers: readonly Layer[],
  acts: readonly Tensor[],
  batch: number,
  training: boolean,
): { forward: Launch[]; alone: Map<number, Launch> } {
  const forward: Launch[] = [], alone = new Map<number, Launch>();
  layers.forEach((layer, i) => {
    const after = lrnPoolAt(layers, i - 1);
    if (lrnPoolAt(layers, i)) {
      alone.set(i, layer.forward(acts[i], acts[i + 1], batch, training));
      forward.push(NO_LAUNCH);
    } else if (after) {
      forward.push(after.pool.forwardAfter(after.lrn, acts[i - 1], acts[i + 1], batch, training));
    } else {
      forward.push(layer.forward(acts[i], acts[i + 1], batch, training));
    }
  });
  return { forward, alone };
}

/** What {@linkcode recordBackward} reads, by layer index (`acts` and `grads` from the input on). */
export interface BackwardPass {
  /** The input, then each layer's output. */
  acts: readonly Tensor[];
  /** Their gradients (null where nobody needs one). */
  grads: readonly (Tensor | null)[];
  /** The forward launches (pooling's hold its argmax). */
  forward: readonly Launch[];
  /** Examples in a launch. */
  batch: number;
  /** Add to the parameter gradients instead of writing them. */
  accumulate: boolean;
  /** The layers whose parameters get gradients. */
  trainable: readonly boolean[];
  /** The layers whose input gradient is needed. */
  needsDx: readonly boolean[];
}

/**
 * Records the backward launches of `layers`: none for a layer that computes neither gradient;
 * for an LRN and a pooling at stride 2 after it, one kernel in the LRN's slot and none in the
 * pooling's.
 *
 * @example
 * ```ts ignore
 * const backward = recordBackward(layers, { acts, grads, forward, batch, accumulate: false,
 *   trainable, needsDx });
 * ```
 */
export function recordBackward(layers: readonly Layer[], pass: BackwardPass): Launch[] {
  const { acts, grads, forward, batch, accumulate, trainable, needsDx } = pass;
  return layers.map((layer, i) => {
    if (!trainable[i] && !needsDx[i]) return NO_LAUNCH;
    const dx = needsDx[i] ? grads[i] : null;
    const pair = lrnPoolAt(layers, i);
    if (pair?.backward) {
      const args = { x: acts[i], dy: grads[i + 2]!, dx, batch, forward: forward[i + 1] };
      return pair.lrn.backwardThrough(pair.pool, args);
    }
    if (lrnPoolAt(layers, i - 1)?.backward) return NO_LAUNCH; // in the LRN's kernel
    const [x, y, dy] = [acts[i], acts[i + 1], grads[i + 1]!];
    const weights = trainable[i];
    return layer.backward({ x, y, dy, dx, batch, accumulate, forward: forward[i], weights });
  });
}
