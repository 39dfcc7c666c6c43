/**
 * Reading and writing safetensors files: an 8-byte little-endian header length, a JSON header
 * mapping each tensor name to its dtype, shape and byte range, then the raw little-endian data.
 * Every malformed input is rejected with a {@linkcode SafetensorsError} naming what is wrong;
 * nothing is allocated beyond the tensors the file really holds.
 *
 * @module
 */

/** Element types this project reads; all are converted to float32. */
export type Dtype = "F32" | "F16" | "BF16" | "F64";

const DTYPE_BYTES: Record<Dtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** A named float32 tensor as read from or written to a file. */
export interface NamedTensor {
  /** Dimensions, outermost first. */
  shape: number[];
  /** Row-major values. */
  data: Float32Array;
}

/** The contents of a safetensors file. */
export interface Safetensors {
  /** Tensors by name, in file order, converted to float32. */
  tensors: Map<string, NamedTensor>;
  /** The free-form string map stored under `__metadata__`. */
  metadata: Record<string, string>;
}

/**
 * A malformed or unsupported safetensors file.
 *
 * @example
 * ```ts
 * import { parseSafetensors, SafetensorsError } from "./safetensors.ts";
 * try {
 *   parseSafetensors(new Uint8Array(3));
 * } catch (e) {
 *   console.log(e instanceof SafetensorsError); // true
 * }
 * ```
 */
export class SafetensorsError extends Error {
  /**
   * Wraps a message.
   *
   * @example
   * ```ts
   * import { SafetensorsError } from "./safetensors.ts";
   * console.assert(new SafetensorsError("bad").name === "SafetensorsError");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

/**
 * Parses a safetensors file held in memory.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
 * console.log(parseSafetensors(bytes).tensors.get("w")); // { shape: [2], data: Float32Array [1, 2] }
 * ```
 */
export function parseSafetensors(bytes: Uint8Array): Safetensors {
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `the file is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    throw new SafetensorsError(
      `the header length ${headerLength} overruns the file (${bytes.length} bytes)`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw new SafetensorsError("the header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`the header is not JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SafetensorsError("the header is not a JSON object");
  }
  const dataLength = bytes.length - dataStart;
  const metadata = readMetadata((header as Record<string, unknown>)["__metadata__"]);
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    entries.push({ name, ...readEntry(name, raw, dataLength) });
  }
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    const [prev, next] = [byOffset[i - 1], byOffset[i]];
    if (next.begin < prev.end) {
      throw new SafetensorsError(
        `tensors "${prev.name}" and "${next.name}" overlap (bytes ${next.begin}..${prev.end})`,
      );
    }
  }
  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { shape: e.shape, data: toFloat32(e.dtype, raw) });
  }
  return { tensors, metadata };
}

function readMetadata(raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError("__metadata__ is not a JSON object");
  }
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== "string") {
      throw new SafetensorsError(`__metadata__ entry "${key}" is not a string`);
    }
  }
  return raw as Record<string, string>;
}

function readEntry(name: string, raw: unknown, dataLength: number) {
  const where = `tensor "${name}"`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError(`${where}: its header entry is not an object`);
  }
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
    throw new SafetensorsError(
      `${where}: dtype ${JSON.stringify(dtype)} is not supported (F32, F16, BF16 or F64)`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(
      `${where}: shape ${JSON.stringify(shape)} is not a list of sizes`,
    );
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError(
      `${where}: data_offsets ${JSON.stringify(offsets)} is not a [begin, end] byte range`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataLength) {
    throw new SafetensorsError(
      `${where}: bytes ${begin}..${end} lie past the end of the data (${dataLength} bytes)`,
    );
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * DTYPE_BYTES[dtype as Dtype];
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `${where}: ${
        end - begin
      } bytes of data for shape [${shape}] of ${dtype} (${expected} expected)`,
    );
  }
  return { dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

function toFloat32(dtype: Dtype, raw: Uint8Array): Float32Array {
  if (dtype === "F32") return new Float32Array(raw.slice().buffer); // copy: data may be unaligned
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out = new Float32Array(raw.length / DTYPE_BYTES[dtype]);
  for (let i = 0; i < out.length; i++) {
    switch (dtype) {
      case "F64":
        out[i] = view.getFloat64(i * 8, true);
        break;
      case "BF16":
        out[i] = bf16ToFloat(view.getUint16(i * 2, true));
        break;
      case "F16":
        out[i] = f16ToFloat(view.getUint16(i * 2, true));
        break;
    }
  }
  return out;
}

const scratch = new DataView(new ArrayBuffer(4));
function bf16ToFloat(bits: number): number {
  scratch.setUint32(0, bits << 16);
  return scratch.getFloat32(0);
}

function f16ToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f, fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * Serialises float32 tensors (in the given order) as a safetensors file; the header is padded
 * with spaces to a multiple of 8 bytes, as the reference writer does, so the data stays aligned.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ b: { shape: [], data: new Float32Array([3]) } }, {
 *   format: "pt",
 * });
 * console.log(bytes.length % 8); // 4: header padded to 8, then 4 bytes of data
 * ```
 */
export function serializeSafetensors(
  tensors: Record<string, NamedTensor> | Map<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header["__metadata__"] = metadata;
  let offset = 0;
  for (const [name, t] of list) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length) {
      throw new SafetensorsError(
        `tensor "${name}": ${t.data.length} values for shape [${t.shape}]`,
      );
    }
    header[name] = {
      dtype: "F32",
      shape: t.shape,
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
