/**
 * Split depth: where a GEMM has too few blocks to keep a CPU adapter's cores busy (conv1's weight
 * gradient: 96 x 364 outputs summed over 96,800 pixels, 138 register blocks), several invocations
 * share each block's depth (`GemmVariant.splits`), each writing its sums to a scratch
 * [splits, rows, cols]; this kernel adds them and stores C through the operands' epilogue.
 *
 * @module
 */
import { WORKGROUP_INDEX_WGSL } from "../../gpu/launch.ts";
import { PACKED_TEXEL_WGSL } from "./pack_wgsl.ts";
import { type GemmTile, registerBlocks, type TileFamily } from "./tiles.ts";

/** Workgroups a CPU adapter's launch should have: a few for each of its cores. */
const BUSY_WORKGROUPS = 8;
/** The least depth (k steps of the core's loop) worth a share of its own. */
const LEAST_SHARE = 64;

/**
 * How many invocations share each block's depth for a `rows` x `cols` GEMM of `steps` k steps
 * (four k a step with packed or vector operands) with `tile`: 1 (no split) on GPUs, for workgroup
 * tiles and wherever the launch already has enough workgroups.
 *
 * @example
 * ```ts
 * import { depthSplits } from "./split_wgsl.ts";
 * import { GEMM_TILES } from "./tiles.ts";
 * console.log(depthSplits(64, 26, 100352 / 4, GEMM_TILES.packed, "llvmpipe")); // 64
 * console.log(depthSplits(4096, 4096, 1024, GEMM_TILES.packed, "llvmpipe")); // 1
 * ```
 */
export function depthSplits(
  rows: number,
  cols: number,
  steps: number,
  tile: GemmTile,
  family: TileFamily,
): number {
  if (tile.kind === "workgroup" || family === "gpu") return 1;
  const wanted = Math.ceil(BUSY_WORKGROUPS * tile.threads / registerBlocks(rows, cols, tile));
  return Math.max(1, Math.min(wanted, Math.floor(steps / LEAST_SHARE)));
}

/**
 * The WGSL of the entry point `main` that adds `splits` partial sums (binding `partialBinding`) of
 * each element of C and stores it with the operands' `storeC`; with packed operands the chunk's
 * uniform at binding `chunkBinding` places it. One invocation per element.
 *
 * @example
 * ```ts
 * import { splitReduceWgsl } from "./split_wgsl.ts";
 * console.assert(splitReduceWgsl(4, 3).includes("storeC(e / cols, e % cols, sum)"));
 * ```
 */
export function splitReduceWgsl(splits: number, partialBinding: number, chunkBinding?: number) {
  const packed = chunkBinding !== undefined;
  return /* wgsl */ `
${WORKGROUP_INDEX_WGSL}
${
    packed
      ? `${PACKED_TEXEL_WGSL}\n@group(0) @binding(${chunkBinding}) var<uniform> chunk: GemmChunk;`
      : ""
  }
@group(0) @binding(${partialBinding}) var<storage, read> partial: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let rows = ${packed ? "chunk.nr" : "gemmRows()"};
  let cols = ${packed ? "chunk.nc" : "gemmCols()"};
  let e = workgroupIndex(wid, nwg) * 64u + lid;
  if (e >= rows * cols) { return; }
  var sum = 0.0;
  for (var s = 0u; s < ${splits}u; s++) { sum += partial[s * rows * cols + e]; }
  storeC(${packed ? "chunk.r0 + " : ""}e / cols, ${packed ? "chunk.c0 + " : ""}e % cols, sum);
}`;
}
