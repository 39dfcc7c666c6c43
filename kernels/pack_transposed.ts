/**
 * Packs a tensor, viewed as [outer, rows, cols], into rgba32float texels four rows at a time,
 * transposed: texel 2 + (o * cols + s) * ceil(rows / 4) + r / 4 holds x[o, r..r+3, s] (zero past
 * the last row; rounded to f16 where the device's precision is f16); texel 0 holds zeros, which
 * is what a convolution's padding reads, and texel 1 ones, which is what a bias's column reads. An NCHW tensor as [batch, channels, pixels] packs channels
 * last (four channels of a pixel per texel); as [1, batch, channels * pixels], images last (four
 * images of an element per texel). A convolution's GEMM then gathers its im2col operand from these
 * texels in place, four k per fetch, instead of packing the im2col matrix: the tensor is written
 * once, not once per kernel tap (25 times for a 5x5 kernel).
 *
 * Reference test: tests/kernels/conv2d_test.ts (packed operands gather B from it); timed by
 * `deno task bench:kernels --kernel conv2d_forward` (its packed variants).
 *
 * @module
 */
import type { Gpu, Precision } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { enableWgsl } from "./gemm/core.ts";
import { PACKED_TEXEL_WGSL, roundTexel } from "./gemm/pack_wgsl.ts";
import { gemmScratch } from "./gemm/record.ts";
import type { GemmTile } from "./gemm/tiles.ts";

const WORKGROUP = 64;

/** How {@linkcode packTransposed} views its tensor: [outer, rows, cols], rows packed by four. */
export interface TransposedView {
  /** Blocks packed one after another (images, for channels last). */
  outer: number;
  /** The axis packed four to a texel (channels, or images). */
  rows: number;
  /** The axis the texels run along (pixels, or channels x pixels). */
  cols: number;
}

/**
 * The texels {@linkcode packTransposed} writes for `view`, the zero and ones texels included.
 *
 * @example
 * ```ts
 * import { transposedTexels } from "./pack_transposed.ts";
 * console.log(transposedTexels({ outer: 2, rows: 8, cols: 9 })); // 38: 2 + 2 * 9 * 2
 * ```
 */
export function transposedTexels(view: TransposedView): number {
  return 2 + view.outer * view.cols * Math.ceil(view.rows / 4);
}

/**
 * Whether a GEMM with `tile` can gather B from `view` packed into the device's scratch texture B:
 * packed operands, and the texels fit.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { GEMM_TILES } from "./gemm/tiles.ts";
 * import { canGather } from "./pack_transposed.ts";
 * const gpu = await Gpu.create();
 * console.log(canGather(gpu, GEMM_TILES.packed, { outer: 2, rows: 8, cols: 9 })); // true
 * console.log(canGather(gpu, GEMM_TILES.blocks, { outer: 2, rows: 8, cols: 9 })); // false
 * gpu.destroy();
 * ```
 */
export function canGather(gpu: Gpu, tile: GemmTile, view: TransposedView): boolean {
  return tile.kind === "textures" && transposedTexels(view) <= gemmScratch(gpu).texels;
}

/**
 * WGSL of the packing kernel for `view`, rounding to `precision`.
 *
 * @example
 * ```ts
 * import { packTransposedWgsl } from "./pack_transposed.ts";
 * console.assert(packTransposedWgsl({ outer: 1, rows: 3, cols: 5 }).includes("textureStore"));
 * ```
 */
export function packTransposedWgsl(view: TransposedView, precision?: Precision): string {
  const rows4 = Math.ceil(view.rows / 4);
  return /* wgsl */ `${enableWgsl(precision)}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var packed: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> count: vec4u; // x: texels
${PACKED_TEXEL_WGSL}
${WORKGROUP_INDEX_WGSL}
const ROWS = ${view.rows}u;
const ROWS4 = ${rows4}u;
const COLS = ${view.cols}u;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  var v = vec4f(f32(i == 1u)); // texel 0: zeros, texel 1: ones
  if (i > 1u) {
    let column = (i - 2u) / ROWS4; // o * COLS + s
    let r = ((i - 2u) % ROWS4) * 4u;
    let first = ((column / COLS) * ROWS + r) * COLS + column % COLS;
${
    [0, 1, 2, 3].map((t) => `    v[${t}] = select(0.0, x[first + ${t}u * COLS], r + ${t}u < ROWS);`)
      .join("\n")
  }
  }
  textureStore(packed, packedTexel(i), ${roundTexel(precision)});
}`;
}

/**
 * Records the packing of `x`, viewed as `view` whatever its shape, into the texels of the device's
 * scratch texture B ({@linkcode gemmScratch}), from which a GEMM recorded next gathers B.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { packTransposed } from "./pack_transposed.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 4, 1, 2], new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
 * const view = { outer: 1, rows: 4, cols: 2 };
 * const { dispatches } = packTransposed(gpu, { x, view });
 * gpu.run(dispatches); // texel 2 holds [1, 3, 5, 7] (pixel 0), texel 3 [2, 4, 6, 8] (pixel 1)
 * gpu.destroy();
 * ```
 */
export function packTransposed(
  gpu: Gpu,
  args: { x: Tensor; view: TransposedView },
): Launch {
  const { view } = args;
  const pipeline = gpu.pipeline(
    `pack_transposed:${view.rows}:${view.cols}`,
    packTransposedWgsl(view, gpu.precision),
    ["read", "storage_texture", "uniform"],
  );
  const texels = transposedTexels(view);
  return gpu.perElement(
    "pack_transposed",
    pipeline,
    [args.x.buffer, gemmScratch(gpu).b],
    texels,
    WORKGROUP,
  );
}

/**
 * The taps to gather B by, a tap at a time (`recordGemm`'s `gatherTaps`), for a depth of `taps`
 * taps of `quads` texels each; undefined, a texel at a time, where a tap has fewer than 8: then
 * the tap's setup costs more than its inner loop saves (alexnet's conv1, one quad a tap: 1.6x
 * slower a tap at a time).
 *
 * @example
 * ```ts
 * import { tapsToGather } from "./pack_transposed.ts";
 * console.log(tapsToGather(9, 32), tapsToGather(121, 1)); // 9 undefined
 * ```
 */
export function tapsToGather(taps: number, quads: number): number | undefined {
  return quads >= 8 ? taps : undefined;
}
