/**
 * Image files to pixels: PNG and JPEG decoded by imagescript's WebAssembly codecs, checked first so
 * that a file they cannot read fails with a message naming the reason, then converted to planar
 * 8-bit grey or RGB (alpha dropped, as PIL's `convert` does; 16-bit samples rounded to 8 bits;
 * CMYK JPEGs converted as Adobe writes them).
 *
 * @module
 */
import { encodePng as encodePngStream, jpegDecoder, pngDecoder } from "./codecs.js";

/** A decoded image: planar (CHW) unsigned bytes. */
export interface Picture {
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** channels x height x width bytes. */
  data: Uint8Array;
}

/**
 * A file that is not an image this loader reads, with the reason.
 *
 * @example
 * ```ts
 * import { decodeImage, ImageError } from "./image.ts";
 * try {
 *   decodeImage(new TextEncoder().encode("hello"));
 * } catch (e) {
 *   console.log(e instanceof ImageError, (e as Error).message); // true "not a PNG or JPEG file"
 * }
 * ```
 */
export class ImageError extends Error {
  /**
   * An error with `message`.
   *
   * @example
   * ```ts
   * import { ImageError } from "./image.ts";
   * console.log(new ImageError("empty file").name); // ImageError
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "ImageError";
  }
}

/** Images larger than this many pixels are refused rather than risk a decompression bomb. */
export const MAX_PIXELS = 1 << 26;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Decodes a PNG or JPEG file's bytes to planar grey (`channels` 1) or RGB (`channels` 3).
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const rgb = new Uint8Array([255, 0, 0, 0, 255, 0]); // a red and a green pixel
 * const png = encodePng(rgb, { width: 2, height: 1, channels: 3 });
 * console.log(decodeImage(png, 3).data); // planes R, G, B: Uint8Array [255, 0, 0, 255, 0, 0]
 * ```
 */
export function decodeImage(bytes: Uint8Array, channels: 1 | 3 = 3): Picture {
  if (bytes.length === 0) throw new ImageError("empty file");
  const rgba = PNG_SIGNATURE.every((b, i) => bytes[i] === b)
    ? decodePng(bytes)
    : bytes[0] === 0xff && bytes[1] === 0xd8
    ? decodeJpeg(bytes)
    : undefined;
  if (!rgba) throw new ImageError("not a PNG or JPEG file");
  return fromRgba(rgba, channels);
}

interface Rgba {
  width: number;
  height: number;
  pixels: Uint8Array;
}

let png: WebAssembly.Exports | undefined;
let jpeg: WebAssembly.Exports | undefined;

// The checks the decoders leave out: a truncated file, a damaged chunk, an absurd size.
function checkPng(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8, sawEnd = false, sawData = false;
  while (at + 12 <= bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) break;
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) {
      throw new ImageError(`PNG chunk ${type} is damaged (CRC mismatch)`);
    }
    if (at === 8) {
      if (type !== "IHDR" || length !== 13) throw new ImageError("PNG has no IHDR header");
      const width = view.getUint32(at + 8), height = view.getUint32(at + 12);
      if (width === 0 || height === 0) throw new ImageError("PNG has zero width or height");
      if (width * height > MAX_PIXELS) {
        throw new ImageError(`PNG is ${width}x${height}, over ${MAX_PIXELS} pixels`);
      }
    }
    sawData ||= type === "IDAT";
    if (type === "IEND") {
      sawEnd = true;
      break;
    }
    at += 12 + length;
  }
  if (!sawEnd || !sawData) throw new ImageError("PNG is truncated (no image data or no IEND)");
}

function decodePng(bytes: Uint8Array): Rgba {
  checkPng(bytes);
  png ??= new WebAssembly.Instance(pngDecoder, {
    env: { emscripten_notify_memory_growth: () => {} },
  }).exports;
  const { walloc, wfree, decode, width, height, memory } = png as Record<string, CallableFunction>;
  const input = walloc(bytes.length) as number;
  new Uint8Array((memory as unknown as WebAssembly.Memory).buffer).set(bytes, input);
  const at = decode(input, bytes.length) as number;
  wfree(input);
  if (at < 0) throw new ImageError(`PNG could not be decoded (decoder status ${at})`);
  const w = width() as number, h = height() as number;
  const buffer = (memory as unknown as WebAssembly.Memory).buffer;
  const pixels = new Uint8Array(buffer, at, 4 * w * h).slice();
  wfree(at);
  return { width: w, height: h, pixels };
}

// Frame headers: SOF0-3, 5-7, 9-11, 13-15 (C4, C8 and CC are other markers).
const isFrameHeader = (m: number) =>
  m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

function checkJpeg(bytes: Uint8Array): void {
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (isFrameHeader(marker)) {
      if (at + 10 > bytes.length) break;
      if (marker !== 0xc0 && marker !== 0xc1 && marker !== 0xc2) {
        throw new ImageError(
          `JPEG coding SOF${marker - 0xc0} (lossless, hierarchical or arithmetic) is not supported`,
        );
      }
      const precision = bytes[at + 4];
      const height = (bytes[at + 5] << 8) | bytes[at + 6];
      const width = (bytes[at + 7] << 8) | bytes[at + 8];
      const components = bytes[at + 9];
      if (precision !== 8) throw new ImageError(`JPEG has ${precision}-bit samples; only 8`);
      if (![1, 3, 4].includes(components)) {
        throw new ImageError(`JPEG has ${components} colour components`);
      }
      if (width === 0 || height === 0) throw new ImageError("JPEG has zero width or height");
      if (width * height > MAX_PIXELS) {
        throw new ImageError(`JPEG is ${width}x${height}, over ${MAX_PIXELS} pixels`);
      }
      // The entropy-coded data follows; a file cut inside it has no end-of-image marker.
      const end = bytes.length >= 2 && bytes[bytes.length - 2] === 0xff &&
        bytes[bytes.length - 1] === 0xd9;
      if (!end) throw new ImageError("JPEG is truncated (no end-of-image marker)");
      return;
    }
    at += 2 + length;
  }
  throw new ImageError("JPEG is truncated or damaged (no frame header)");
}

function decodeJpeg(bytes: Uint8Array): Rgba {
  checkJpeg(bytes);
  jpeg ??= new WebAssembly.Instance(jpegDecoder, {}).exports;
  const f = jpeg as Record<string, CallableFunction>;
  const memory = () => new Uint8Array((jpeg!.memory as WebAssembly.Memory).buffer);
  const input = f.walloc(bytes.length) as number;
  memory().set(bytes, input);
  const frame = f.decode(input, bytes.length, 0, 0) as number; // takes ownership of the input
  if (frame <= 1) throw new ImageError("JPEG could not be decoded (corrupt data)");
  const width = f.decode_width(frame) as number, height = f.decode_height(frame) as number;
  const format = f.decode_format(frame) as number;
  const at = f.decode_buffer(frame) as number, length = f.wlen() as number;
  const source = memory().slice(at, at + length);
  f.decode_free(frame);
  const pixels = new Uint8Array(4 * width * height);
  for (let i = 0; i < width * height; i++) {
    if (format === 0) { // grey
      pixels.fill(source[i], 4 * i, 4 * i + 3);
    } else if (format === 1) { // RGB
      pixels.set(source.subarray(3 * i, 3 * i + 3), 4 * i);
    } else if (format === 2) { // CMYK, stored inverted as Adobe writes it
      const k = 255 - source[4 * i + 3];
      for (let c = 0; c < 3; c++) {
        pixels[4 * i + c] = Math.round((255 - source[4 * i + c]) * k / 255);
      }
    } else {
      throw new ImageError(`JPEG pixel format ${format} is not supported`);
    }
    pixels[4 * i + 3] = 255;
  }
  return { width, height, pixels };
}

// RGBA (alpha dropped) to planar RGB, or to grey with PIL's ITU-R 601-2 weights and rounding.
function fromRgba({ width, height, pixels }: Rgba, channels: 1 | 3): Picture {
  const n = width * height, data = new Uint8Array(channels * n);
  for (let i = 0; i < n; i++) {
    const r = pixels[4 * i], g = pixels[4 * i + 1], b = pixels[4 * i + 2];
    if (channels === 1) data[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
    else (data[i] = r), (data[n + i] = g), (data[2 * n + i] = b);
  }
  return { width, height, channels, data };
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Encodes 8-bit interleaved pixels (grey, grey + alpha, RGB or RGBA) as a PNG. Always compressed:
 * imagescript's encoder writes an invalid zlib stream when asked to store data uncompressed past
 * 64 KiB (its default, level 0).
 *
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng(new Uint8Array([0, 128, 255]), { width: 3, height: 1, channels: 1 });
 * console.log(decodeImage(png, 1).data); // Uint8Array [0, 128, 255]
 * ```
 */
export function encodePng(
  pixels: Uint8Array,
  options: { width: number; height: number; channels: 1 | 2 | 3 | 4 },
): Uint8Array {
  if (pixels.length !== options.width * options.height * options.channels) {
    throw new RangeError(
      `${pixels.length} bytes for a ${options.width}x${options.height}x${options.channels} image`,
    );
  }
  return encodePngStream(pixels, { ...options, level: 6 });
}
