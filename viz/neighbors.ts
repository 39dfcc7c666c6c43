/**
 * The paper's Figure 4 (right): for each query image, the training images whose feature vectors
 * at the last hidden layer (fc7) are closest in Euclidean distance.
 *
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import type { Picture } from "../data/image.ts";
import { tileGrid } from "./grid.ts";

/**
 * The `k` rows of `base` nearest each row of `queries` (rows of `dim` values), nearest first.
 *
 * @example
 * ```ts
 * import { nearestNeighbours } from "./neighbors.ts";
 * const base = new Float32Array([0, 0, 5, 5, 1, 1]), queries = new Float32Array([4, 4]);
 * console.log(nearestNeighbours(queries, base, 2, 2)); // Int32Array [1, 2]
 * ```
 */
export function nearestNeighbours(
  queries: Float32Array,
  base: Float32Array,
  dim: number,
  k: number,
): Int32Array {
  const nq = queries.length / dim, nb = base.length / dim;
  if (k > nb) throw new RangeError(`nearestNeighbours: ${k} neighbours of ${nb} rows`);
  const out = new Int32Array(nq * k);
  const distance = new Float64Array(nb);
  for (let q = 0; q < nq; q++) {
    for (let b = 0; b < nb; b++) {
      let s = 0;
      for (let i = 0; i < dim; i++) s += (queries[q * dim + i] - base[b * dim + i]) ** 2;
      distance[b] = s;
    }
    const order = Array.from({ length: nb }, (_, i) => i).sort((a, b) =>
      distance[a] - distance[b] || a - b
    );
    out.set(order.slice(0, k), q * k);
  }
  return out;
}

/**
 * One row per query: the query's picture, then its neighbours' (from `d`).
 *
 * @example
 * ```ts
 * import { neighbourGrid } from "./neighbors.ts";
 * const d = { count: 2, shape: [1, 2, 2] as [number, number, number],
 *   images: new Uint8Array(8), labels: new Int32Array(2), classes: [] };
 * const q = { width: 2, height: 2, channels: 1 as const, data: new Uint8Array(4) };
 * console.log(neighbourGrid([q], d, new Int32Array([1, 0]), 2).width); // 10
 * ```
 */
export function neighbourGrid(
  queries: Picture[],
  d: Dataset,
  indices: Int32Array,
  k: number,
  scale = 1,
): Picture {
  const [c, h, w] = d.shape, size = c * h * w;
  const tiles: Picture[] = [];
  for (const [q, picture] of queries.entries()) {
    tiles.push(picture);
    for (let j = 0; j < k; j++) {
      const i = indices[q * k + j];
      tiles.push({
        width: w,
        height: h,
        channels: c as 1 | 3,
        data: d.images.subarray(i * size, (i + 1) * size),
      });
    }
  }
  return tileGrid(tiles, { columns: k + 1, scale, gap: 1 });
}
