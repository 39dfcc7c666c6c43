/**
 * Labelled image datasets in memory, and the batches training reads from them: scaled to [0, 1],
 * the training set's per-pixel mean image subtracted (the paper's only normalisation), and, for
 * training, random crops of the zero-padded image and horizontal flips, drawn from the run's seed
 * so that the same seed gives the same batches.
 *
 * @module
 */
import { uniformAt } from "../kernels/random.ts";
import { readIdx } from "./idx.ts";

/** Images (unsigned bytes, NCHW) with class labels. */
export interface Dataset {
  /** Examples. */
  count: number;
  /** One image's shape [channels, height, width]. */
  shape: [number, number, number];
  /** count x channels x height x width bytes. */
  images: Uint8Array;
  /** One class index per image. */
  labels: Int32Array;
  /** Class names, by index. */
  classes: string[];
}

/** Fashion-MNIST's class names (Zalando Research). */
export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** Where Debian's `dataset-fashion-mnist` package puts the data. */
export const DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist";

/**
 * Loads an MNIST-layout directory: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
 * `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (each optionally `.gz`).
 *
 * @example
 * ```ts ignore
 * import { DEBIAN_FASHION_MNIST, loadIdxDirectory } from "./dataset.ts";
 * const { train, test } = await loadIdxDirectory(DEBIAN_FASHION_MNIST);
 * console.log(train.count, test.count); // 60000 10000
 * ```
 */
export async function loadIdxDirectory(
  dir: string,
  classes: string[] = FASHION_MNIST_CLASSES,
): Promise<{ train: Dataset; test: Dataset }> {
  const load = async (prefix: string): Promise<Dataset> => {
    const images = await readIdx(`${dir}/${prefix}-images-idx3-ubyte`);
    const labels = await readIdx(`${dir}/${prefix}-labels-idx1-ubyte`);
    if (images.shape.length !== 3) {
      throw new RangeError(`${dir}/${prefix} images: shape [${images.shape}] is not [n, h, w]`);
    }
    if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
      throw new RangeError(
        `${dir}/${prefix}: ${labels.shape[0]} labels for ${images.shape[0]} images`,
      );
    }
    const max = labels.data.reduce((m, v) => Math.max(m, v), 0);
    const names = max < classes.length
      ? classes
      : Array.from({ length: max + 1 }, (_, i) => String(i));
    return {
      count: images.shape[0],
      shape: [1, images.shape[1], images.shape[2]],
      images: images.data,
      labels: Int32Array.from(labels.data),
      classes: names,
    };
  };
  return { train: await load("train"), test: await load("t10k") };
}

/**
 * The per-pixel mean of a dataset's images, scaled to [0, 1].
 *
 * @example
 * ```ts
 * import { meanImage } from "./dataset.ts";
 * const d = { count: 2, shape: [1, 1, 2] as [number, number, number],
 *   images: new Uint8Array([0, 255, 255, 255]), labels: new Int32Array(2), classes: [] };
 * console.log(meanImage(d)); // Float32Array [0.5, 1]
 * ```
 */
export function meanImage(d: Dataset): Float32Array {
  const size = d.shape[0] * d.shape[1] * d.shape[2];
  const sum = new Float64Array(size);
  for (let e = 0; e < d.count; e++) {
    for (let i = 0; i < size; i++) sum[i] += d.images[e * size + i];
  }
  return Float32Array.from(sum, (s) => s / d.count / 255);
}

/** How a batch is drawn. */
export interface BatchOptions {
  /** The mean image to subtract (from {@linkcode meanImage} of the training set). */
  mean: Float32Array;
  /** Random crops of the image padded by `pad` pixels and random horizontal flips. */
  augment?: { pad: number; flip: boolean; seed: number; step: number };
}

/**
 * The examples `indices` of `d` as a NCHW float batch and their labels.
 *
 * @example
 * ```ts
 * import { makeBatch } from "./dataset.ts";
 * const d = { count: 1, shape: [1, 1, 2] as [number, number, number],
 *   images: new Uint8Array([0, 255]), labels: new Int32Array([3]), classes: [] };
 * console.log(makeBatch(d, [0], { mean: new Float32Array(2) })); // { input: [0, 1], labels: [3] }
 * ```
 */
export function makeBatch(
  d: Dataset,
  indices: ArrayLike<number>,
  options: BatchOptions,
): { input: Float32Array; labels: Int32Array } {
  const [c, h, w] = d.shape, size = c * h * w;
  const input = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  const a = options.augment;
  const stepSeed = a ? (Math.imul(a.seed ^ 0x2545f491, 0x9e3779b1) + a.step) >>> 0 : 0;
  for (let e = 0; e < indices.length; e++) {
    const src = indices[e] * size;
    labels[e] = d.labels[indices[e]];
    // Per example: a shift in [-pad, pad] each way and a coin for the flip, from (seed, step, e).
    const draw = (k: number) => uniformAt(stepSeed, e * 3 + k);
    const dy = a ? Math.floor(draw(0) * (2 * a.pad + 1)) - a.pad : 0;
    const dx = a ? Math.floor(draw(1) * (2 * a.pad + 1)) - a.pad : 0;
    const flip = a?.flip === true && draw(2) < 0.5;
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        const sy = y + dy;
        for (let x = 0; x < w; x++) {
          const sx = (flip ? w - 1 - x : x) + dx;
          const at = (ch * h + y) * w + x;
          const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
          // Padding is the mean (zero after subtraction), not black.
          input[e * size + at] = inside
            ? d.images[src + (ch * h + sy) * w + sx] / 255 - options.mean[(ch * h + sy) * w + sx]
            : 0;
        }
      }
    }
  }
  return { input, labels };
}

/**
 * A seeded permutation of 0..n-1 (Fisher-Yates with the counter-based generator).
 *
 * @example
 * ```ts
 * import { permutation } from "./dataset.ts";
 * console.log(permutation(5, 1, 0).toSorted()); // [0, 1, 2, 3, 4]
 * ```
 */
export function permutation(n: number, seed: number, epoch: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniformAt(seed ^ 0x5bd1e995, epoch * n + i) * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
