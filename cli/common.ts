/**
 * What the commands share: the usage error, flag parsing, the bundled data, and reading datasets and
 * weights files with clear errors.
 *
 * @module
 */
import { DataError } from "../data/folder.ts";
import type { Dataset } from "../data/dataset.ts";
import { encodePng, type Picture } from "../data/image.ts";
import { openWeights, readImages } from "../train/predict.ts";
import { GpuError } from "../gpu/errors.ts";
import { openDataset, type OpenedDataset } from "../data/open.ts";
import { MODELS } from "../mod.ts";
import { writeFileAtomic } from "../io/files.ts";
import type { Parallelism, Precision } from "../mod.ts";
import { interleave } from "../viz/grid.ts";

/** The bundled default dataset: 5,000 + 1,000 Fashion-MNIST images (Zalando Research, MIT). */
export const BUNDLED_DATA = decodeURIComponent(
  new URL("../data/fashion-mnist-mini", import.meta.url).pathname,
);

/** A bad command line: reported in one line with exit code 2. */
export class UsageError extends Error {}

/** Parsed flags. */
export type Values = Record<string, string | boolean | undefined>;

/** A command: its help, its flags and what it runs. */
export interface Command {
  help: string;
  options: Record<string, { type: "string" | "boolean" }>;
  /** Whether the command takes operands (file names). */
  positionals?: boolean;
  run: (values: Values, positionals: string[]) => Promise<void>;
}

/** A flag's value as a number, checked: an integer where asked, and above `min`. */
export function number(
  v: Values,
  name: string,
  fallback: number,
  { integer = false, min = 0, inclusive = false } = {},
) {
  const raw = v[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const ok = Number.isFinite(value) && (!integer || Number.isInteger(value)) &&
    (inclusive ? value >= min : value > min);
  if (!ok || String(raw).trim() === "") {
    throw new UsageError(
      `--${name} must be ${integer ? "an integer" : "a number"} ${
        inclusive ? ">=" : ">"
      } ${min}, got "${raw}"`,
    );
  }
  return value;
}

/** `--model`, checked against the known configurations. */
export function modelName(v: Values, fallback: string): string {
  const name = String(v.model ?? fallback);
  if (!MODELS[name]) {
    throw new UsageError(`unknown model "${name}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  return name;
}

/** A flag the command cannot do without. */
export function required(v: Values, name: string, command: string): string {
  if (typeof v[name] !== "string") throw new UsageError(`${command}: --${name} is required`);
  return v[name] as string;
}

/** Opens a dataset for a model's input, reporting progress, skips and cache use on stderr. */
export async function openData(
  dir: string,
  input: readonly [number, number, number],
  strict: boolean,
  size?: number,
): Promise<OpenedDataset> {
  let shown = -1;
  const onProgress = (done: number, total: number) => {
    const percent = Math.floor((100 * done) / total);
    if (percent !== shown && (percent % 10 === 0 || done === total)) {
      shown = percent;
      console.error(`decoding images: ${done}/${total}`);
    }
  };
  let data;
  try {
    data = await openDataset(dir, { input, strict, onProgress, size });
  } catch (e) {
    if (e instanceof DataError || e instanceof RangeError) {
      throw new UsageError(`--data ${dir}: ${e.message}`);
    }
    throw e;
  }
  if (data.skipped.length > 0) {
    const first = data.skipped[0];
    console.error(
      `skipped ${data.skipped.length} file(s) or folder(s) that could not be used ` +
        `(first: ${first.path}: ${first.reason}); --strict makes this an error`,
    );
  }
  if (data.statsCached) {
    console.error("training statistics (mean image, colour PCA) read from the cache");
  }
  return data;
}

/** A weights file's tensors, model name and preprocessing (when train wrote it). */
export async function readWeights(v: Values, fallback: string) {
  const path = String(v.weights ?? fallback);
  const model = v.model !== undefined ? modelName(v, "") : undefined;
  let bytes;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new UsageError(`--weights ${path}: ${(e as Error).message}`);
  }
  try {
    const { net, preprocess } = await openWeights(bytes, { model, precision: precisionChoice(v) });
    return { net, preprocess, path };
  } catch (e) {
    if (e instanceof GpuError) throw e;
    const hint = /known model/.test((e as Error).message) ? ": pass --model" : "";
    throw new UsageError(`--weights ${path}: ${(e as Error).message}${hint}`);
  }
}

/** `--crops`: 1 (the centre) or 10 (the paper's test). */
export function crops(v: Values): 1 | 10 {
  const n = v.crops === undefined ? 1 : Number(v.crops);
  if (n !== 1 && n !== 10) throw new UsageError(`--crops must be 1 or 10, got "${v.crops}"`);
  return n;
}

/** Writes a planar picture as a PNG, atomically. */
export async function writePng(path: string, picture: Picture): Promise<void> {
  const { width, height, channels } = picture;
  await writeFileAtomic(path, encodePng(interleave(picture), { width, height, channels }));
}

/**
 * Image files decoded and preprocessed as the stored training images were (shorter side to
 * `size`, centre square), as a dataset of `channels` x `size` x `size` images without labels.
 */
export async function readPictures(
  files: string[],
  channels: 1 | 3,
  size: number,
): Promise<Dataset> {
  const bytes = await Promise.all(files.map(readImageFile));
  try {
    return readImages(bytes, channels, size, files);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** An image file's bytes, or a usage error naming it. */
export async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * `--precision f32|f16` (default f32), checked: what the GEMM core multiplies.
 *
 * @example
 * ```ts
 * import { precisionChoice } from "./common.ts";
 * console.log(precisionChoice({ precision: "f16" })); // "f16"
 * ```
 */
export function precisionChoice(v: Values): Precision {
  const precision = String(v.precision ?? "f32");
  if (precision !== "f32" && precision !== "f16") {
    throw new UsageError(`--precision must be f32 or f16, got "${v.precision}"`);
  }
  return precision;
}

/**
 * `--devices 1|2` and `--parallel model|data`, checked.
 *
 * @example
 * ```ts
 * import { deviceChoice } from "./common.ts";
 * console.log(deviceChoice({ devices: "2" })); // { devices: 2, parallel: "model" }
 * ```
 */
export function deviceChoice(v: Values): { devices: 1 | 2; parallel: Parallelism } {
  const devices = Number(v.devices ?? 1);
  if (devices !== 1 && devices !== 2) {
    throw new UsageError(`--devices must be 1 or 2, got "${v.devices}"`);
  }
  const parallel = String(v.parallel ?? "model");
  if (parallel !== "model" && parallel !== "data") {
    throw new UsageError(`--parallel must be model or data, got "${v.parallel}"`);
  }
  if (v.parallel !== undefined && devices === 1) {
    throw new UsageError("--parallel needs --devices 2");
  }
  return { devices, parallel };
}
