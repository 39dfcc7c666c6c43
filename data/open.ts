/**
 * One entry point for every dataset the CLI reads: an MNIST-layout IDX folder, an image folder
 * with `train/` and `val/` (or `test/`) halves, or a single image folder whose every tenth image
 * of each class is held out for validation. Returns both halves, preprocessed to the model's
 * scale, with the training statistics (cached beside the data).
 *
 * @module
 */
import { joinPath } from "../io/files.ts";
import { type Dataset, loadIdxDirectory } from "./dataset.ts";
import { DataError, loadImageFolder, type Skipped } from "./folder.ts";
import { datasetStatistics, fingerprint, type Statistics } from "./statistics.ts";
import { WorkerPool } from "./workers.ts";

/** A training and a validation set, ready for the trainer. */
export interface OpenedDataset {
  /** Training images. */
  train: Dataset;
  /** Validation images. */
  test: Dataset;
  /** What was read, in words. */
  description: string;
  /** Files and folders left out. */
  skipped: Skipped[];
  /** The training set's mean image and colour PCA. */
  stats: Statistics;
  /** Whether the statistics came from the cache. */
  statsCached: boolean;
}

/** How to open a dataset. */
export interface OpenOptions {
  /** The model's input [channels, height, width]. */
  input: readonly [number, number, number];
  /** Side of the stored images of an image folder (default {@linkcode storedSize} of the input). */
  size?: number;
  /** Skipped files are errors. */
  strict?: boolean;
  /** Called as image files are decoded. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The side images are stored at for a model whose input side is `input`: the paper's ratio,
 * 256 stored for 227 cropped (28 -> 32).
 *
 * @example
 * ```ts
 * import { storedSize } from "./open.ts";
 * console.log(storedSize(227), storedSize(28)); // 256 32
 * ```
 */
export function storedSize(input: number): number {
  return Math.round(input * 256 / 227);
}

const exists = async (path: string) => {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
};

const idxFiles = [
  "train-images-idx3-ubyte",
  "train-labels-idx1-ubyte",
  "t10k-images-idx3-ubyte",
  "t10k-labels-idx1-ubyte",
];

// Every tenth image of each class (in listing order) held out.
function split(d: Dataset): { train: Dataset; test: Dataset } {
  const seen = new Map<number, number>(), train: number[] = [], test: number[] = [];
  for (let i = 0; i < d.count; i++) {
    const k = seen.get(d.labels[i]) ?? 0;
    seen.set(d.labels[i], k + 1);
    (k % 10 === 9 ? test : train).push(i);
  }
  const size = d.shape[0] * d.shape[1] * d.shape[2];
  const take = (picked: number[]): Dataset => {
    const images = new Uint8Array(new SharedArrayBuffer(picked.length * size));
    picked.forEach((i, k) => images.set(d.images.subarray(i * size, (i + 1) * size), k * size));
    return {
      ...d,
      count: picked.length,
      images,
      labels: Int32Array.from(picked, (i) => d.labels[i]),
    };
  };
  return { train: take(train), test: take(test) };
}

/**
 * Opens `path` as an IDX folder or an image folder (see the module notes).
 *
 * @example
 * ```ts ignore
 * import { openDataset } from "./open.ts";
 * const data = await openDataset("data/fashion-mnist-mini", { input: [1, 28, 28] });
 * console.log(data.train.count, data.test.count); // 5000 1000
 * ```
 */
export async function openDataset(path: string, options: OpenOptions): Promise<OpenedDataset> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new DataError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!info.isDirectory) throw new DataError(`${path} is not a folder`);
  const idx = await exists(joinPath(path, idxFiles[0])) ||
    await exists(joinPath(path, `${idxFiles[0]}.gz`));
  return idx ? await openIdx(path, options.input) : await openImageFolder(path, options);
}

/** An IDX folder, its images of the model's input shape, and their cached statistics. */
async function openIdx(path: string, input: OpenOptions["input"]): Promise<OpenedDataset> {
  const [channels, h, w] = input;
  const data = await loadIdxDirectory(path);
  if (data.train.shape.join() !== [channels, h, w].join()) {
    throw new DataError(
      `the model takes ${channels}x${h}x${w} inputs; ${path} holds ${
        data.train.shape.join("x")
      } images`,
    );
  }
  const files = [];
  for (const f of idxFiles) {
    files.push(await exists(joinPath(path, f)) ? joinPath(path, f) : joinPath(path, `${f}.gz`));
  }
  const print = await fingerprint(files, "idx");
  const cache = joinPath(path, ".alexnet-statistics.json");
  const { stats, cached } = await datasetStatistics(data.train, cache, print);
  return { ...data, description: `IDX files in ${path}`, skipped: [], stats, statsCached: cached };
}

/** An image folder: train/ and val/ (or test/) halves, or every tenth image held out. */
async function openImageFolder(path: string, options: OpenOptions): Promise<OpenedDataset> {
  const [channels, h, w] = options.input;
  if (h !== w) throw new DataError(`image folders need a square model input, not ${h}x${w}`);
  const size = options.size ?? storedSize(h), c = channels as 1 | 3;
  if (c !== 1 && c !== 3) {
    throw new DataError(`image folders need 1 or 3 input channels, not ${channels}`);
  }
  const held = (await exists(joinPath(path, "val")))
    ? "val"
    : (await exists(joinPath(path, "test")))
    ? "test"
    : undefined;
  const pool = new WorkerPool();
  try {
    const load = (dir: string) =>
      loadImageFolder(dir, {
        channels: c,
        size,
        strict: options.strict,
        onProgress: options.onProgress,
        pool,
      });
    let train: Dataset, test: Dataset, skipped: Skipped[], files: string[], description: string;
    if (held && await exists(joinPath(path, "train"))) {
      const trainDir = joinPath(path, "train");
      const a = await load(trainDir), b = await load(joinPath(path, held));
      // Validation labels follow the training folder's class list, by name.
      const index = new Map(a.dataset.classes.map((name, i) => [name, i]));
      const unknown = b.dataset.classes.filter((n) => !index.has(n));
      if (unknown.length > 0) {
        throw new DataError(
          `${joinPath(path, held)} has classes not in train/: ${unknown.join(", ")}`,
        );
      }
      const labels = b.dataset.labels.map((l) => index.get(b.dataset.classes[l])!);
      train = a.dataset, test = { ...b.dataset, labels, classes: a.dataset.classes };
      skipped = [...a.skipped, ...b.skipped];
      files = a.files;
      description = `image folders ${trainDir} and ${joinPath(path, held)}`;
    } else {
      const a = await load(path);
      ({ train, test } = split(a.dataset));
      skipped = a.skipped;
      files = a.files;
      description = `image folder ${path} (every tenth image per class held out)`;
    }
    if (test.count === 0) throw new DataError(`${path}: no images left for validation`);
    // The statistics are the training files': any of them changing invalidates the cache.
    const print = await fingerprint(files, `${c}x${size}`);
    const cache = joinPath(path, `.alexnet-statistics-${c}x${size}.json`);
    const { stats, cached } = await datasetStatistics(train, cache, print);
    return { train, test, description, skipped, stats, statsCached: cached };
  } finally {
    pool.close();
  }
}
