/**
 * Resampling for the paper's preprocessing: "we down-sampled the images to a fixed resolution of
 * 256 x 256 ... rescaled the image such that the shorter side was of length 256, and then cropped
 * out the central 256 x 256 patch". Bilinear (triangle-filter) resampling whose support widens
 * with the reduction factor, so shrinking averages every source pixel instead of skipping most of
 * them (imagescript's own resize is nearest-neighbour); it matches PIL's `Image.BILINEAR`.
 *
 * @module
 */
import type { Picture } from "./image.ts";

// For each output position, the first source index and the normalised triangle weights.
function filterTaps(
  source: number,
  target: number,
): { first: Int32Array; weights: Float64Array[] } {
  const scale = source / target, support = Math.max(scale, 1);
  const first = new Int32Array(target), weights: Float64Array[] = [];
  for (let o = 0; o < target; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support)),
      hi = Math.min(source, Math.ceil(centre + support));
    const w = new Float64Array(hi - lo);
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      w[i - lo] = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      sum += w[i - lo];
    }
    for (let i = 0; i < w.length; i++) w[i] /= sum;
    first[o] = lo;
    weights.push(w);
  }
  return { first, weights };
}

/**
 * Resamples a picture to `width` x `height` (antialiased bilinear, separable, rounded to bytes).
 *
 * @example
 * ```ts
 * import { resize } from "./resize.ts";
 * const p = { width: 4, height: 1, channels: 1 as const, data: new Uint8Array([0, 100, 200, 100]) };
 * console.log(resize(p, 2, 1).data); // Uint8Array [ 71, 143 ]
 * ```
 */
export function resize(p: Picture, width: number, height: number): Picture {
  if (!(width >= 1 && height >= 1)) throw new RangeError(`resize to ${width}x${height}`);
  const cols = filterTaps(p.width, width), rows = filterTaps(p.height, height);
  const out = new Uint8Array(p.channels * width * height);
  const across = new Float64Array(p.height * width);
  for (let c = 0; c < p.channels; c++) {
    const plane = p.data.subarray(c * p.width * p.height);
    for (let y = 0; y < p.height; y++) {
      for (let x = 0; x < width; x++) {
        const w = cols.weights[x], at = y * p.width + cols.first[x];
        let s = 0;
        for (let k = 0; k < w.length; k++) s += w[k] * plane[at + k];
        across[y * width + x] = s;
      }
    }
    for (let y = 0; y < height; y++) {
      const w = rows.weights[y], first = rows.first[y];
      for (let x = 0; x < width; x++) {
        let s = 0;
        for (let k = 0; k < w.length; k++) s += w[k] * across[(first + k) * width + x];
        out[(c * height + y) * width + x] = Math.min(255, Math.max(0, Math.round(s)));
      }
    }
  }
  return { width, height, channels: p.channels, data: out };
}

/**
 * The paper's preprocessing: shorter side scaled to `size`, then the central `size` x `size`
 * square cut out.
 *
 * @example
 * ```ts
 * import { resizeAndCentreCrop } from "./resize.ts";
 * const p = { width: 6, height: 3, channels: 1 as const, data: new Uint8Array(18).fill(7) };
 * const q = resizeAndCentreCrop(p, 2);
 * console.log(q.width, q.height, q.data); // 2 2 Uint8Array [ 7, 7, 7, 7 ]
 * ```
 */
export function resizeAndCentreCrop(p: Picture, size: number): Picture {
  const scale = size / Math.min(p.width, p.height);
  // The long side truncated, as torchvision's Resize does, so that its preprocessing is matched.
  const w = Math.max(size, Math.floor(p.width * scale + 1e-9));
  const h = Math.max(size, Math.floor(p.height * scale + 1e-9));
  const scaled = w === p.width && h === p.height ? p : resize(p, w, h);
  const x0 = Math.floor((w - size) / 2), y0 = Math.floor((h - size) / 2);
  const out = new Uint8Array(p.channels * size * size);
  for (let c = 0; c < p.channels; c++) {
    for (let y = 0; y < size; y++) {
      const from = (c * h + y0 + y) * w + x0;
      out.set(scaled.data.subarray(from, from + size), (c * size + y) * size);
    }
  }
  return { width: size, height: size, channels: p.channels, data: out };
}
