/**
 * Scoring on the host: top-1 and top-5 accuracy and the loss of logits against labels, and the
 * softmax cross-entropy and its gradient in float64 for logits joined from two towers.
 *
 * @module
 */

/** Accuracy of a network on labelled examples. */
export interface Evaluation {
  /** Fraction whose label is the top class. */
  top1: number;
  /** Fraction whose label is among the five top classes. */
  top5: number;
  /** Mean cross-entropy. */
  loss: number;
}

/**
 * Top-1 and top-5 accuracy and mean cross-entropy of [rows, classes] logits against labels.
 *
 * @example
 * ```ts
 * import { scoreLogits } from "./scoring.ts";
 * console.log(scoreLogits(new Float32Array([2, 1, 0, 5]), new Int32Array([0, 0]), 2).top1); // 0.5
 * ```
 */
export function scoreLogits(logits: Float32Array, labels: Int32Array, classes: number): Evaluation {
  let top1 = 0, top5 = 0, loss = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const label = labels[r];
    const above = row.reduce((n, v) => n + (v > row[label] ? 1 : 0), 0);
    if (above === 0) top1++;
    if (above < 5) top5++;
    const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
    loss += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[label];
  }
  const n = labels.length;
  return { top1: top1 / n, top5: top5 / n, loss: loss / n };
}

/** A row's largest value and the sum of exp(v - largest): its softmax, free of overflow. */
function softmaxParts(row: Float32Array): { max: number; sum: number } {
  const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return { max, sum };
}

/**
 * Softmax cross-entropy of [rows, classes] logits in float64: the summed loss, the top-1 hits
 * (ties count, as on the device) and the gradient of `scale` times the summed loss. Where the
 * logits are joined from two towers, the loss is computed here rather than on a device.
 *
 * @example
 * ```ts
 * import { crossEntropy } from "./scoring.ts";
 * const { loss, hits } = crossEntropy(new Float32Array([0, 0]), new Int32Array([1]), 2, 1);
 * console.log(loss.toFixed(4), hits); // "0.6931" 1
 * ```
 */
export function crossEntropy(z: Float32Array, labels: Int32Array, classes: number, scale: number) {
  const gradient = new Float32Array(z.length);
  let loss = 0, hits = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = z.subarray(r * classes, (r + 1) * classes), label = labels[r];
    const { max, sum } = softmaxParts(row);
    loss += max + Math.log(sum) - row[label];
    if (row[label] >= max) hits++;
    for (let c = 0; c < classes; c++) {
      gradient[r * classes + c] = scale * (Math.exp(row[c] - max) / sum - (c === label ? 1 : 0));
    }
  }
  return { loss, hits, gradient };
}

/**
 * The softmax of each row of [rows, classes] logits, in float64.
 *
 * @example
 * ```ts
 * import { softmaxRows } from "./scoring.ts";
 * console.log(softmaxRows(new Float32Array([0, 0]), 2)); // Float32Array [0.5, 0.5]
 * ```
 */
export function softmaxRows(z: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(z.length);
  for (let r = 0; r < z.length / classes; r++) {
    const row = z.subarray(r * classes, (r + 1) * classes);
    const { max, sum } = softmaxParts(row);
    row.forEach((v, c) => out[r * classes + c] = Math.exp(v - max) / sum);
  }
  return out;
}
