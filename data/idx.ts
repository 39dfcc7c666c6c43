/**
 * IDX files (the MNIST and Fashion-MNIST format), plain or gzip-compressed: a 4-byte magic
 * (two zero bytes, a type code, the number of dimensions), big-endian 32-bit dimension sizes,
 * then the values.
 *
 * @module
 */

/** The contents of an IDX file of unsigned bytes. */
export interface IdxArray {
  /** Dimension sizes, outermost first. */
  shape: number[];
  /** The values. */
  data: Uint8Array;
}

/**
 * Parses an IDX file of unsigned bytes (type 0x08), gunzipping it first if it is compressed.
 *
 * @example
 * ```ts
 * import { parseIdx } from "./idx.ts";
 * const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]);
 * console.log(await parseIdx(bytes)); // { shape: [2], data: Uint8Array [7, 9] }
 * ```
 */
export async function parseIdx(bytes: Uint8Array, name = "IDX file"): Promise<IdxArray> {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
        new DecompressionStream("gzip"),
      );
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    } catch (e) {
      throw new RangeError(`${name}: corrupt gzip data (${(e as Error).message})`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new RangeError(`${name}: not an IDX file (bad magic number)`);
  }
  if (bytes[2] !== 0x08) {
    throw new RangeError(
      `${name}: IDX type 0x${bytes[2].toString(16)} is not unsigned bytes (0x08)`,
    );
  }
  const dims = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * dims) throw new RangeError(`${name}: truncated header`);
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * dims;
  if (bytes.length - start !== count) {
    throw new RangeError(
      `${name}: ${bytes.length - start} bytes of data for shape [${shape}] (${count} expected)`,
    );
  }
  return { shape, data: bytes.subarray(start) };
}

/**
 * Reads `path` (or `path.gz` when `path` is missing) as an IDX file of unsigned bytes.
 *
 * @example
 * ```ts
 * import { readIdx } from "./idx.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([0, 0, 8, 1, 0, 0, 0, 1, 5]));
 * console.log((await readIdx(path)).data); // Uint8Array [5]
 * ```
 */
export async function readIdx(path: string): Promise<IdxArray> {
  for (const candidate of [path, `${path}.gz`]) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(candidate);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    return await parseIdx(bytes, candidate);
  }
  throw new Deno.errors.NotFound(`no IDX file at ${path} or ${path}.gz`);
}

/**
 * An IDX file of unsigned bytes (type 0x08) holding `data` with dimension sizes `shape`.
 *
 * @example
 * ```ts
 * import { encodeIdx, parseIdx } from "./idx.ts";
 * console.log(await parseIdx(encodeIdx([2], new Uint8Array([7, 9])))); // { shape: [2], data: [7, 9] }
 * ```
 */
export function encodeIdx(shape: readonly number[], data: Uint8Array): Uint8Array {
  const start = 4 + 4 * shape.length, out = new Uint8Array(start + data.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, 8, shape.length]);
  shape.forEach((size, i) => view.setUint32(4 + 4 * i, size, false));
  out.set(data, start);
  return out;
}
