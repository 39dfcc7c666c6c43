/**
 * The paper's Figure 3: the first convolution's kernels as pictures, tower A's above tower B's.
 *
 * @module
 */
import type { Picture } from "../data/image.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import { tileGrid } from "./grid.ts";

/**
 * Each kernel of a [out, in, k, k] weight as a tile (RGB for 3 input channels, grey for 1),
 * mid-grey at zero and scaled by its own largest magnitude, laid out `columns` to a row with the
 * second half (tower B) below a gap.
 *
 * @example
 * ```ts
 * import { filterGrid } from "./filters.ts";
 * const weight = { shape: [4, 1, 2, 2], data: Float32Array.from({ length: 16 }, (_, i) => i - 8) };
 * const p = filterGrid(weight, { columns: 2, scale: 1 });
 * console.log(p.width, p.height); // 7 10
 * ```
 */
export function filterGrid(
  weight: NamedTensor,
  { columns = 16, scale = 4, towers = 2 }: { columns?: number; scale?: number; towers?: number } =
    {},
): Picture {
  const [out, inputs, kh, kw] = weight.shape;
  if (weight.shape.length !== 4 || (inputs !== 1 && inputs !== 3)) {
    throw new RangeError(`filterGrid: a [out, 1 or 3, k, k] weight, not [${weight.shape}]`);
  }
  const size = inputs * kh * kw, perTower = Math.ceil(out / towers);
  const rowsPerTower = Math.ceil(perTower / columns);
  const tiles: (Picture | undefined)[] = [];
  for (let t = 0; t < towers; t++) {
    for (let i = 0; i < rowsPerTower * columns; i++) {
      const f = t * perTower + i;
      if (i >= perTower || f >= out) {
        tiles.push(undefined);
        continue;
      }
      const w = weight.data.subarray(f * size, (f + 1) * size);
      const peak = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
      const data = Uint8Array.from(w, (v) => Math.round(127.5 + 127.5 * v / peak));
      tiles.push({ width: kw, height: kh, channels: inputs as 1 | 3, data });
    }
  }
  const breaks = Array.from({ length: towers - 1 }, (_, t) => (t + 1) * rowsPerTower);
  return tileGrid(tiles, { columns, scale, gap: 1, breaks });
}
