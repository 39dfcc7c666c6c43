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

/**
 * Fashion-MNIST's class names (Zalando Research).
 *
 * @example
 * ```ts
 * import { FASHION_MNIST_CLASSES } from "./dataset.ts";
 * console.log(FASHION_MNIST_CLASSES[7]); // "Sneaker"
 * ```
 */
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

/** The principal components of a dataset's RGB values (see statistics.ts). */
export interface ColourPca {
  /** Eigenvectors p1, p2, p3 as rows: vectors[3 * i + channel]. */
  vectors: Float32Array;
  /** Eigenvalues l1, l2, l3 of the covariance of pixel values scaled to [0, 1]. */
  values: Float32Array;
}

/** How a batch is drawn. */
export interface BatchOptions {
  /** The mean image to subtract (from {@linkcode meanImage} of the training set). */
  mean: Float32Array;
  /**
   * Per-channel standard deviations to divide by after subtracting the mean (torchvision's
   * normalisation; the paper has none).
   */
  std?: readonly number[];
  /** The crop's [height, width], the model's input (default: the stored images' size). */
  crop?: readonly [number, number];
  /**
   * Training augmentation: random crops (of the image padded by `pad` pixels, padding being the
   * mean), random horizontal flips, and, given `pca`, the paper's colour noise: each image gets
   * [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T added to every pixel, a_i ~ N(0, 0.1).
   */
  augment?: {
    pad: number;
    flip: boolean;
    seed: number;
    step: number;
    pca?: ColourPca;
  };
  /**
   * Which of the paper's ten test views (without `augment`): 0-3 the corners (top left, top
   * right, bottom left, bottom right), 4 the centre (the default), 5-9 the same mirrored.
   */
  view?: number;
  /**
   * The views' padding: corners of the image padded by this many pixels (for images stored at the
   * input size, whose only corner is otherwise the centre, as training's crops are padded too).
   */
  viewPad?: number;
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
  const [c, sh, sw] = d.shape, stored = c * sh * sw;
  const [h, w] = options.crop ?? [sh, sw], size = c * h * w;
  const a = options.augment, pad = a ? a.pad : options.viewPad ?? 0;
  if (h > sh + 2 * pad || w > sw + 2 * pad) {
    throw new RangeError(`a ${h}x${w} crop of ${sh}x${sw} images padded by ${pad}`);
  }
  const view = options.view ?? 4;
  if (!(Number.isInteger(view) && view >= 0 && view < 10)) throw new RangeError(`view ${view}`);
  const input = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  const stepSeed = a ? (Math.imul(a.seed ^ 0x2545f491, 0x9e3779b1) + a.step) >>> 0 : 0;
  for (let e = 0; e < indices.length; e++) {
    const src = indices[e] * stored;
    labels[e] = d.labels[indices[e]];
    // The crop's top-left corner ranges over [-pad, stored - crop + pad] each way.
    const draw = (k: number) => uniformAt(stepSeed, e * 3 + k);
    const corner = [[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5]][view % 5];
    const oy = a
      ? Math.floor(draw(0) * (sh - h + 2 * pad + 1)) - pad
      : Math.floor(corner[0] * (sh - h + 2 * pad)) - pad;
    const ox = a
      ? Math.floor(draw(1) * (sw - w + 2 * pad + 1)) - pad
      : Math.floor(corner[1] * (sw - w + 2 * pad)) - pad;
    const flip = a ? a.flip && draw(2) < 0.5 : view >= 5;
    const shift = a?.pca ? colourShift(a.pca, 0.1, stepSeed, e) : undefined;
    for (let ch = 0; ch < c; ch++) {
      const add = shift ? shift[ch] : 0, scale = options.std ? 1 / options.std[ch] : 1;
      for (let y = 0; y < h; y++) {
        const sy = y + oy;
        for (let x = 0; x < w; x++) {
          const sx = (flip ? w - 1 - x : x) + ox;
          const inside = sy >= 0 && sy < sh && sx >= 0 && sx < sw;
          const at = (ch * sh + sy) * sw + sx;
          // Padding is the mean (zero after subtraction), not black.
          input[e * size + (ch * h + y) * w + x] = inside
            ? (d.images[src + at] / 255 - options.mean[at] + add) * scale
            : 0;
        }
      }
    }
  }
  return { input, labels };
}

// One image's colour noise: sum_i p_i a_i l_i with a_i ~ N(0, std) (Box-Muller, own stream).
function colourShift(pca: ColourPca, std: number, stepSeed: number, e: number): number[] {
  const seed = (stepSeed ^ 0x6c8e9cf5) >>> 0;
  const r = std * Math.sqrt(-2 * Math.log(1 - uniformAt(seed, 4 * e)));
  const t = 2 * Math.PI * uniformAt(seed, 4 * e + 1);
  const r2 = std * Math.sqrt(-2 * Math.log(1 - uniformAt(seed, 4 * e + 2)));
  const alpha = [
    r * Math.cos(t),
    r * Math.sin(t),
    r2 * Math.cos(2 * Math.PI * uniformAt(seed, 4 * e + 3)),
  ];
  return [0, 1, 2].map((ch) =>
    alpha.reduce((s, ai, i) => s + pca.vectors[3 * i + ch] * ai * pca.values[i], 0)
  );
}

/**
 * Pixels of padding around a stored image that crops of `crop` size are taken from: 2 where the
 * images are stored at the crop's size (28x28 Fashion-MNIST, whose only crop would otherwise be the
 * whole image), none where they are stored larger (the paper's 227 crops of 256).
 *
 * @example
 * ```ts
 * import { cropPadding } from "./dataset.ts";
 * console.log(cropPadding([1, 28, 28], [28, 28]), cropPadding([3, 256, 256], [227, 227])); // 2 0
 * ```
 */
export function cropPadding(stored: readonly number[], crop: readonly [number, number]): number {
  return stored[1] === crop[0] && stored[2] === crop[1] ? 2 : 0;
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
