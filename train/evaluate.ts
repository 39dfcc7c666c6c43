/**
 * Accuracy over a whole dataset: the centre crop, or the paper's ten-crop test (softmax averaged
 * over the four corners, the centre and their mirrors).
 *
 * @module
 */
import { type BatchOptions, type Dataset, makeBatch } from "../data/dataset.ts";
import type { Network } from "../layers/network.ts";
import { scoreLogits } from "../layers/scoring.ts";

/** How {@linkcode evaluateDataset} reads a dataset. */
export interface EvaluateOptions {
  /** The training set's mean image. */
  mean: Float32Array;
  /** Per-channel standard deviations to divide by (torchvision's weights). */
  std?: readonly number[];
  /** The model's input [height, width] (default: the stored size). */
  crop?: readonly [number, number];
  /** Examples per forward pass. */
  batch: number;
  /** 1: the centre crop; 10: the paper's test, softmax averaged over corners, centre and mirrors. */
  crops?: 1 | 10;
  /** Corners of the image padded by this many pixels (see {@linkcode BatchOptions.viewPad}). */
  viewPad?: number;
}

/**
 * Top-1 and top-5 accuracy and mean loss over a whole dataset (mean-subtracted, not augmented).
 *
 * @example
 * ```ts ignore
 * import { evaluateDataset } from "./evaluate.ts";
 * console.log(await evaluateDataset(net, test, { mean, batch: 256, crops: 10 }));
 * ```
 */
export async function evaluateDataset(
  net: Network,
  d: Dataset,
  options: EvaluateOptions,
): Promise<{ top1: number; top5: number; loss: number }> {
  const classes = net.config.classes, views = options.crops === 10 ? 10 : 1;
  let top1 = 0, top5 = 0, loss = 0;
  for (let first = 0; first < d.count; first += options.batch) {
    const indices = Int32Array.from(
      { length: Math.min(options.batch, d.count - first) },
      (_, i) => first + i,
    );
    const batch: BatchOptions = {
      mean: options.mean,
      std: options.std,
      crop: options.crop,
      viewPad: options.viewPad,
    };
    let e;
    if (views === 1) {
      const { input, labels } = makeBatch(d, indices, batch);
      e = await net.evaluate(input, labels);
    } else {
      const sum = new Float64Array(indices.length * classes);
      let labels: Int32Array = new Int32Array(0);
      for (let view = 0; view < views; view++) {
        const b = makeBatch(d, indices, { ...batch, view });
        const p = await net.forward(b.input, indices.length, { softmax: true });
        for (let i = 0; i < sum.length; i++) sum[i] += p[i] / views;
        labels = b.labels;
      }
      // The log of averaged probabilities scores like logits (their softmax is the average).
      e = scoreLogits(Float32Array.from(sum, (p) => Math.log(p)), labels, classes);
    }
    top1 += e.top1 * indices.length;
    top5 += e.top5 * indices.length;
    loss += e.loss * indices.length;
  }
  return { top1: top1 / d.count, top5: top5 / d.count, loss: loss / d.count };
}
