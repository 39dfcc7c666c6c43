/**
 * Packed operands: the layout of the scratch textures the "textures" tiling reads (four
 * consecutive k per rgba32float texel), and the kernel that packs a chunk of A or B into them.
 *
 * @module
 */
import type { Precision } from "../../gpu/device.ts";
import { WORKGROUP_INDEX_WGSL } from "../../gpu/launch.ts";

/**
 * Packed operands are laid out row after row, `steps` = ceil(depth / 4) texels each, in a scratch
 * texture PACKED_WIDTH texels wide (a power of two: the coordinates of a linear texel index are a
 * mask and a shift) and up to PACKED_HEIGHT high, one for each operand per device: 128 MiB each,
 * whatever the layer. A GEMM whose operands are larger runs in chunks of rows and columns, each
 * packed and multiplied in turn; a chunk's uniform says which.
 */
/** Texels a scratch texture row holds. */
export const PACKED_WIDTH = 4096;
/** Rows of a scratch texture, where the adapter allows. */
export const PACKED_HEIGHT = 2048;
/**
 * WGSL of the scratch textures' layout: `packedTexel(i)`, the coordinates of linear texel `i`, and
 * the uniform `GemmChunk` that says which rows and columns a packed launch covers.
 *
 * @example
 * ```ts
 * import { PACKED_TEXEL_WGSL } from "./pack_wgsl.ts";
 * console.assert(PACKED_TEXEL_WGSL.includes("fn packedTexel(i: u32) -> vec2i"));
 * ```
 */
export const PACKED_TEXEL_WGSL = /* wgsl */ `
struct GemmChunk { r0: u32, nr: u32, c0: u32, nc: u32 } // rows r0.., columns c0.. of C

fn packedTexel(i: u32) -> vec2i {
  return vec2i(i32(i & ${PACKED_WIDTH - 1}u), i32(i >> ${Math.log2(PACKED_WIDTH)}u));
}`;

/**
 * WGSL of the texel `v` (a vec4f) as the packed operands store it: rounded to half precision where
 * `precision` is "f16" (then exact in the rgba32float texel), else as it is.
 *
 * @example
 * ```ts
 * import { roundTexel } from "./pack_wgsl.ts";
 * console.log(roundTexel("f16")); // "vec4f(vec4<f16>(v))"
 * ```
 */
export function roundTexel(precision?: Precision): string {
  return precision === "f16" ? "vec4f(vec4<f16>(v))" : "v";
}

/**
 * The WGSL of the entry point `main` that packs a chunk of operand A (rows m) or B (columns n)
 * into the rgba32float storage texture `packed`: texel (k / 4) of a row holds elements k..k+3, zero
 * past the depth, each rounded to f16 where `precision` is "f16"; read in one load where the
 * operand's loader reads four k (`alongK`: `loadA4` or `loadB4`). The chunk's uniform is at binding `binding`, the
 * texture at `binding + 1`. One invocation per texel, in the texels' order.
 *
 * @example
 * ```ts
 * import { gemmPackWgsl } from "./pack_wgsl.ts";
 * console.assert(gemmPackWgsl("B", 4).includes("loadB(k + 3u, row)"));
 * ```
 */
export function gemmPackWgsl(
  operand: "A" | "B",
  binding: number,
  precision?: Precision,
  alongK = false,
): string {
  const load = (c: number) => operand === "A" ? `loadA(row, k + ${c}u)` : `loadB(k + ${c}u, row)`;
  const texel = alongK
    ? `  v = ${operand === "A" ? "loadA4(row, k / 4u)" : "loadB4(k / 4u, row)"};`
    : [0, 1, 2, 3].map((c) => `  if (k + ${c}u < depth) { v[${c}] = ${load(c)}; }`).join("\n");
  const [first, count] = operand === "A" ? ["chunk.r0", "chunk.nr"] : ["chunk.c0", "chunk.nc"];
  return /* wgsl */ `
${PACKED_TEXEL_WGSL}
@group(0) @binding(${binding}) var<uniform> chunk: GemmChunk;
@group(0) @binding(${binding + 1}) var packed: texture_storage_2d<rgba32float, write>;
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let depth = gemmDepth();
  let steps = (depth + 3u) / 4u;
  let i = workgroupIndex(wid, nwg) * 64u + lid;
  if (i >= ${count} * steps) { return; }
  let row = ${first} + i / steps;
  let k = (i % steps) * 4u;
  var v = vec4f(0.0);
${texel}
  textureStore(packed, packedTexel(i), ${roundTexel(precision)});
}`;
}
