/**
 * Image folders in the ImageNet layout: one subfolder per class (class names are the folder
 * names, sorted), PNG and JPEG files inside. Every image is decoded once, in workers, and
 * preprocessed as the paper did: shorter side scaled to `size`, central `size` x `size` square
 * kept. Files that cannot be read are skipped and reported, never fatal unless `strict`.
 *
 * @module
 */
import { joinPath } from "../io/files.ts";
import type { Dataset } from "./dataset.ts";
import { WorkerPool } from "./workers.ts";

// Files in flight at once: enough to keep every worker busy, few enough to bound memory.
const DECODE_WINDOW = 256;

/** A file or folder the loader left out, and why. */
export interface Skipped {
  /** The file or folder. */
  path: string;
  /** Why it was left out. */
  reason: string;
}

/** How an image folder is loaded. */
export interface FolderOptions {
  /** 1 to convert images to grey, 3 for RGB. */
  channels: 1 | 3;
  /** The side of the stored square images (the paper: 256). */
  size: number;
  /** Any skipped file or empty class folder is an error. */
  strict?: boolean;
  /** Called as images are decoded. */
  onProgress?: (done: number, total: number) => void;
  /** Workers to decode with (default: a pool of one per core, closed afterwards). */
  pool?: WorkerPool;
}

/**
 * A load that `strict` turned into an error, or a folder with nothing to load.
 *
 * @example
 * ```ts
 * import { DataError, loadImageFolder } from "./folder.ts";
 * const dir = await Deno.makeTempDir();
 * try {
 *   await loadImageFolder(dir, { channels: 3, size: 8 });
 * } catch (e) {
 *   console.log(e instanceof DataError); // true: no class folders
 * }
 * ```
 */
export class DataError extends Error {
  /**
   * An error with `message`.
   *
   * @example
   * ```ts
   * import { DataError } from "./folder.ts";
   * console.log(new DataError("no classes").name); // DataError
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

/**
 * The class folders of `dir` (sorted) and the files in each (sorted, hidden files left out).
 *
 * @example
 * ```ts ignore
 * import { listImageFolder } from "./folder.ts";
 * const { classes, files } = await listImageFolder("photos/train");
 * ```
 */
export async function listImageFolder(
  dir: string,
): Promise<{ classes: string[]; files: { path: string; label: number }[]; skipped: Skipped[] }> {
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) entries.push(e);
  } catch (e) {
    throw new DataError(`cannot read ${dir}: ${(e as Error).message}`);
  }
  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const classes = entries.filter((e) => e.isDirectory && !e.name.startsWith("."))
    .map((e) => e.name).sort(byName);
  if (classes.length === 0) throw new DataError(`${dir} has no class folders`);
  const files: { path: string; label: number }[] = [], skipped: Skipped[] = [];
  for (const [label, name] of classes.entries()) {
    const folder = joinPath(dir, name), names: string[] = [];
    try {
      for await (const e of Deno.readDir(folder)) {
        if (!e.name.startsWith(".") && !e.isDirectory) names.push(e.name);
      }
    } catch (e) {
      skipped.push({ path: folder, reason: `unreadable folder (${(e as Error).message})` });
      continue;
    }
    if (names.length === 0) skipped.push({ path: folder, reason: "empty class folder" });
    for (const n of names.sort(byName)) files.push({ path: joinPath(folder, n), label });
  }
  return { classes, files, skipped };
}

/**
 * Loads an image folder into memory, decoded and preprocessed, with what it skipped and every
 * file it listed.
 *
 * @example
 * ```ts ignore
 * import { loadImageFolder } from "./folder.ts";
 * const { dataset, skipped } = await loadImageFolder("photos/train", { channels: 3, size: 256 });
 * console.log(dataset.count, dataset.classes, skipped.length);
 * ```
 */
export async function loadImageFolder(
  dir: string,
  options: FolderOptions,
): Promise<{ dataset: Dataset; skipped: Skipped[]; files: string[] }> {
  const { classes, files, skipped } = await listImageFolder(dir);
  const { channels, size } = options, bytes = channels * size * size;
  const images = new Uint8Array(new SharedArrayBuffer(files.length * bytes));
  const labels = new Int32Array(files.length);
  const pool = options.pool ?? new WorkerPool();
  let count = 0;
  try {
    // Decoded in parallel, a window at a time, kept in listing order so the dataset does not
    // depend on timing.
    for (let first = 0; first < files.length; first += DECODE_WINDOW) {
      const window = files.slice(first, first + DECODE_WINDOW);
      const results = window.map((f) =>
        pool.run<{ data?: Uint8Array; error?: string }>({
          kind: "decode",
          path: f.path,
          channels,
          size,
        })
      );
      for (const [i, result] of results.entries()) {
        const r = await result;
        if (r.data) {
          images.set(r.data, count * bytes);
          labels[count++] = window[i].label;
        } else {
          skipped.push({ path: window[i].path, reason: r.error ?? "unknown" });
        }
        options.onProgress?.(first + i + 1, files.length);
      }
    }
  } finally {
    if (!options.pool) pool.close();
  }
  if (options.strict && skipped.length > 0) {
    const list = skipped.slice(0, 5).map((s) => `\n  ${s.path}: ${s.reason}`).join("");
    throw new DataError(`${skipped.length} problems in ${dir} (--strict):${list}`);
  }
  if (count === 0) throw new DataError(`${dir}: no readable images`);
  return {
    dataset: {
      count,
      shape: [channels, size, size],
      images: images.subarray(0, count * bytes),
      labels: labels.subarray(0, count),
      classes,
    },
    skipped,
    files: files.map((f) => f.path),
  };
}
