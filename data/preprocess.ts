/**
 * What a trained network needs to read new images the way it was trained: the class names, the
 * stored image size and the training set's mean image. Saved as one JSON entry (`preprocess`) in
 * the metadata of the weights file, so that `eval` and `predict` need nothing else and the
 * tensors stay exactly PyTorch's.
 *
 * @module
 */

/** The preprocessing a network was trained with. */
export interface Preprocess {
  /** Class names, by index. */
  classes: string[];
  /** Stored images' [channels, height, width] (crops are taken from these). */
  shape: [number, number, number];
  /** The training set's per-pixel mean, scaled to [0, 1]. */
  mean: Float32Array;
  /** Per-channel standard deviations the input is divided by (torchvision's weights). */
  std?: number[];
}

/**
 * `p` as a metadata string (the mean as base64 little-endian float32).
 *
 * @example
 * ```ts
 * import { decodePreprocess, encodePreprocess } from "./preprocess.ts";
 * const p = { classes: ["a", "b"], shape: [1, 1, 2] as [number, number, number],
 *   mean: new Float32Array([0.25, 0.5]) };
 * console.log(decodePreprocess(encodePreprocess(p)).mean); // Float32Array [0.25, 0.5]
 * ```
 */
export function encodePreprocess(p: Preprocess): string {
  const mean = new Uint8Array(p.mean.buffer, p.mean.byteOffset, p.mean.byteLength);
  let binary = "";
  for (let i = 0; i < mean.length; i += 0x8000) {
    binary += String.fromCharCode(...mean.subarray(i, i + 0x8000));
  }
  return JSON.stringify({ classes: p.classes, shape: p.shape, mean: btoa(binary), std: p.std });
}

/**
 * Parses {@linkcode encodePreprocess}'s string, checking its shape.
 *
 * @example
 * ```ts
 * import { decodePreprocess } from "./preprocess.ts";
 * try { decodePreprocess("{}"); } catch (e) { console.log((e as Error).message); }
 * ```
 */
export function decodePreprocess(text: string): Preprocess {
  const j = JSON.parse(text);
  const binary = atob(typeof j.mean === "string" ? j.mean : "");
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const shape: [number, number, number] = j.shape;
  const std = j.std === undefined
    ? undefined
    : Array.isArray(j.std) && j.std.length === shape?.[0] &&
        j.std.every((v: unknown) => typeof v === "number" && v > 0)
    ? j.std as number[]
    : null;
  const ok = std !== null && Array.isArray(j.classes) && Array.isArray(shape) &&
    shape.length === 3 &&
    shape.every((n) => Number.isInteger(n) && n > 0) &&
    bytes.length === 4 * shape[0] * shape[1] * shape[2];
  if (!ok) throw new RangeError("preprocess metadata is malformed");
  return { classes: j.classes.map(String), shape, mean: new Float32Array(bytes.buffer), std };
}
