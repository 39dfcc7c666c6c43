/**
 * The GEMM core every matrix kernel shares: C[m, n] = sum over k of A[m, k] * B[k, n], tiled.
 *
 * The caller's WGSL defines what the matrices are, which is how one core serves the
 * convolution forward (A = weights, B = im2col of the input), its input gradient
 * (A = transposed weights, B = the output gradient gathered) and its weight gradient
 * (A = the output gradient, B = im2col transposed), with no matrix materialised in buffers:
 *
 * - `fn gemmRows() -> u32`, `fn gemmCols() -> u32`, `fn gemmDepth() -> u32`: the sizes;
 * - `fn loadA(m: u32, k: u32) -> f32` and `fn loadB(k: u32, n: u32) -> f32`: elements, called
 *   only in range;
 * - `fn storeC(m: u32, n: u32, value: f32)`: the epilogue, called only in range;
 * - with packed operands and B gathered in place (`gatheredB`), k running over taps of texels of
 *   the scratch texture B (four k a texel), `fn quadsPerTap() -> u32` and `fn tapOfB(tap: u32, n:
 *   u32) -> vec2u` instead of `loadB`: the texel of tap `tap`'s first four k in column n, and the
 *   step to its next texel (0 where every texel is the same: padding, a constant column);
 * - where both operands are contiguous along k (`vectorK`, a dense layer), `fn loadA4(m: u32, k4:
 *   u32) -> vec4f` and `fn loadB4(k4: u32, n: u32) -> vec4f` instead of `loadA` and `loadB`: four
 *   consecutive k, 4 k4 .. 4 k4 + 3, in one storage-buffer load (the depth a multiple of 4);
 * - where A is contiguous along m (`vectorM`), `fn loadA4m(m4: u32, k: u32) -> vec4f` instead of
 *   `loadA` (or `loadA4`): rows 4 m4 .. 4 m4 + 3 (the rows a multiple of 4); where B is
 *   contiguous along n (`vectorN`), `fn loadB4n(k: u32, n4: u32) -> vec4f`: columns 4 n4 ..
 *   4 n4 + 3, called for every quad that holds a column (what lies past the last is never stored).
 *   A dense layer's gradients: W^T read along its rows, the batch's outer products along both;
 * - where C's rows are contiguous and its columns a multiple of 4 (`vectorStores`), also `fn
 *   storeC4(m: u32, n4: u32, value: vec4f)`: columns 4 n4 .. 4 n4 + 3 of row m, all in range.
 *
 * The generators: `workgroup_wgsl.ts` (GPU tiles), `block_wgsl.ts` (register blocks, packed or
 * not), `pack_wgsl.ts` (packing into textures); `record.ts` records a kernel's launches,
 * `tiles.ts` and `tuning.ts` choose the tiling. Reference test: tests/kernels/conv2d_test.ts (every
 * tiling); timed by `deno task bench:kernels --kernel conv2d_forward` (each tiling side by side).
 *
 * @module
 */
import type { Precision } from "../../gpu/device.ts";
import type { TexelRead } from "../../gpu/launch.ts";
import { blockGemmWgsl } from "./block_wgsl.ts";
import type { GemmTile } from "./tiles.ts";
import { workgroupGemmWgsl } from "./workgroup_wgsl.ts";

/** What the core's WGSL depends on besides the tiling (see {@linkcode gemmWgsl}). */
export interface GemmVariant {
  /** The first binding after the operands' (packed operands only; default 0). */
  binding?: number;
  /** B gathered from texels the operands' `tapOfB` names (packed operands only). */
  gatheredB?: boolean;
  /**
   * With `gatheredB`: the depth loop runs over taps, asking `tapOfB` once per tap for each column
   * and walking the tap's texels, instead of asking once per texel (where taps hold few texels);
   * see `block_wgsl.ts`.
   */
  gatheredTaps?: boolean;
  /**
   * The operands define `loadA4` and `loadB4` (four consecutive k) instead of `loadA` and `loadB`:
   * register blocks read four k a load, workgroup tiles through scalar loaders derived from them.
   */
  vectorK?: boolean;
  /** A is read four rows a load, `loadA4m` (with `vectorK`, B still four k a load). */
  vectorM?: boolean;
  /** B is read four columns a load, `loadB4n` (with `vectorK`, A still four k a load). */
  vectorN?: boolean;
  /**
   * The operands also define `storeC4`, and register blocks that do not split their depth store
   * four columns a store with it (see the module's documentation).
   */
  vectorStores?: boolean;
  /**
   * Register blocks only: neighbouring invocations take neighbouring row blocks, not column
   * blocks, so that a SIMD group of invocations reads one long run of a matrix row a step where A
   * is read four rows a load across the rows of a larger matrix (the dense input gradient's W).
   */
  adjacentRows?: boolean;
  /**
   * Register blocks and packed operands only: the depth is split among this many invocations per
   * block, which write partial sums at binding `partialBinding` (see `split_wgsl.ts`).
   */
  splits?: number;
  /** The binding of the partial sums with `splits`. */
  partialBinding?: number;
  /**
   * "f16": the workgroup tiles hold half-precision values and register blocks round what they load
   * (the module must start with {@linkcode enableWgsl}'s directive); packed operands are rounded
   * when packed, so it changes nothing for them (default "f32").
   */
  precision?: Precision;
  /** How packed operands' textures are read (default "sampled"; see `TexelRead`). */
  texelRead?: TexelRead;
}

/**
 * The WGSL of the core's entry point `main` for `tile`; concatenate it after the definitions of
 * the sizes, loaders and epilogue. With packed operands ("textures") it reads the chunk's uniform
 * and `packedA` and `packedB` at bindings `binding`, `binding + 1` and `binding + 2` instead of the
 * loaders (see `record.ts`); with `gatheredB` it reads B's four k at (k / 4, n) from the texel
 * that the operands' `tapOfB` names, B being left in place by the caller rather than packed.
 *
 * @example
 * ```ts
 * import { gemmWgsl } from "./core.ts";
 * import { GEMM_TILES } from "./tiles.ts";
 * console.assert(gemmWgsl(GEMM_TILES.wide).includes("workgroupBarrier"));
 * console.assert(!gemmWgsl(GEMM_TILES.blocks).includes("workgroupBarrier"));
 * ```
 */
export function gemmWgsl(t: GemmTile, variant: GemmVariant = {}): string {
  return t.kind === "workgroup" ? workgroupGemmWgsl(t, variant) : blockGemmWgsl(t, variant);
}

/**
 * The directive a module whose WGSL rounds to `precision` starts with: `enable f16;` for "f16"
 * (half-precision types need the extension, declared before anything else), else nothing.
 *
 * @example
 * ```ts
 * import { enableWgsl } from "./core.ts";
 * console.log(enableWgsl("f16")); // "enable f16;\n"
 * ```
 */
export function enableWgsl(precision?: Precision): string {
  return precision === "f16" ? "enable f16;\n" : "";
}

/**
 * The scalar loaders `loadA` and `loadB` of operands that define only vector ones (see
 * {@linkcode GemmVariant}), for the cores and pack kernels that read one element at a time.
 *
 * @example
 * ```ts
 * import { scalarLoadersWgsl } from "./core.ts";
 * console.log(scalarLoadersWgsl({ vectorM: true }).includes("loadA4m(m / 4u, k)[m % 4u]")); // true
 * console.log(scalarLoadersWgsl({})); // ""
 * ```
 */
export function scalarLoadersWgsl(v: Pick<GemmVariant, "vectorK" | "vectorM" | "vectorN">): string {
  const a = v.vectorM
    ? "loadA4m(m / 4u, k)[m % 4u]"
    : v.vectorK
    ? "loadA4(m, k / 4u)[k % 4u]"
    : undefined;
  const b = v.vectorN
    ? "loadB4n(k, n / 4u)[n % 4u]"
    : v.vectorK
    ? "loadB4(k / 4u, n)[k % 4u]"
    : undefined;
  return [
    a && `fn loadA(m: u32, k: u32) -> f32 { return ${a}; }`,
    b && `fn loadB(k: u32, n: u32) -> f32 { return ${b}; }`,
  ].filter(Boolean).map((line) => `\n${line}`).join("");
}
