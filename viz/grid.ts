/**
 * Pictures as grids of tiles: the layout the paper's figures share (Figure 3's kernels, Figure
 * 4's query images beside their nearest neighbours).
 *
 * @module
 */
import type { Picture } from "../data/image.ts";

/** How tiles are laid out. */
export interface GridOptions {
  /** Tiles per row. */
  columns: number;
  /** Integer upscaling of every tile (nearest neighbour, so pixels stay visible). */
  scale?: number;
  /** Pixels between tiles. */
  gap?: number;
  /** Extra gap before these rows (e.g. between the two towers). */
  breaks?: number[];
}

/**
 * Lays tiles (all of one size; grey tiles are shown as grey in an RGB picture) out in a grid.
 * `undefined` tiles leave their cell empty.
 *
 * @example
 * ```ts
 * import { tileGrid } from "./grid.ts";
 * const tile = { width: 2, height: 2, channels: 1 as const, data: new Uint8Array(4).fill(200) };
 * const p = tileGrid([tile, tile, tile], { columns: 2, scale: 2, gap: 1 });
 * console.log(p.width, p.height); // 11 11
 * ```
 */
export function tileGrid(tiles: (Picture | undefined)[], options: GridOptions): Picture {
  const first = tiles.find((t) => t !== undefined);
  if (!first) throw new RangeError("tileGrid: no tiles");
  const { columns, scale = 1, gap = 1, breaks = [] } = options;
  const rows = Math.ceil(tiles.length / columns);
  const tw = first.width * scale, th = first.height * scale;
  const rowTop = (r: number) =>
    gap + r * (th + gap) + breaks.filter((b) => b <= r).length * 3 * gap;
  const width = gap + columns * (tw + gap), height = rowTop(rows);
  const plane = width * height, data = new Uint8Array(3 * plane).fill(255);
  for (const [i, tile] of tiles.entries()) {
    if (!tile) continue;
    if (tile.width !== first.width || tile.height !== first.height) {
      throw new RangeError(
        `tileGrid: tile ${i} is ${tile.width}x${tile.height}, not ${first.width}x${first.height}`,
      );
    }
    const x0 = gap + (i % columns) * (tw + gap), y0 = rowTop(Math.floor(i / columns));
    const tplane = tile.width * tile.height;
    for (let y = 0; y < th; y++) {
      for (let x = 0; x < tw; x++) {
        const src = Math.floor(y / scale) * tile.width + Math.floor(x / scale);
        for (let c = 0; c < 3; c++) {
          data[c * plane + (y0 + y) * width + x0 + x] =
            tile.data[(tile.channels === 1 ? 0 : c) * tplane + src];
        }
      }
    }
  }
  return { width, height, channels: 3, data };
}

/**
 * A planar picture as the interleaved bytes PNG encoders take.
 *
 * @example
 * ```ts
 * import { interleave } from "./grid.ts";
 * const p = { width: 2, height: 1, channels: 3 as const, data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
 * console.log(interleave(p)); // Uint8Array [1, 3, 5, 2, 4, 6]
 * ```
 */
export function interleave(p: Picture): Uint8Array {
  const n = p.width * p.height, out = new Uint8Array(n * p.channels);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < p.channels; c++) out[i * p.channels + c] = p.data[c * n + i];
  }
  return out;
}
