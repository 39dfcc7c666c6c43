/**
 * The GEMM core every matrix kernel shares: C[m, n] = sum over k of A[m, k] * B[k, n], tiled.
 *
 * A workgroup computes a BM x BN tile of C, staging BK-deep slices of A and B in workgroup
 * memory; each invocation accumulates a TM x TN block in registers, its rows and columns strided
 * by the invocation grid so that neighbouring invocations touch neighbouring elements.
 * The caller's WGSL defines what the matrices are, which is how one core serves the
 * convolution forward (A = weights, B = im2col of the input), its input gradient
 * (A = transposed weights, B = the output gradient gathered) and its weight gradient
 * (A = the output gradient, B = im2col transposed), with no matrix ever materialised:
 *
 * - `fn gemmRows() -> u32`, `fn gemmCols() -> u32`, `fn gemmDepth() -> u32`: the sizes;
 * - `fn loadA(m: u32, k: u32) -> f32` and `fn loadB(k: u32, n: u32) -> f32`: elements, called
 *   only in range;
 * - `fn storeC(m: u32, n: u32, value: f32)`: the epilogue, called only in range.
 *
 * @module
 */
import { WORKGROUP_INDEX_WGSL } from "../gpu/device.ts";

/** The tiling of a GEMM launch: a parameter of the generator. */
export interface GemmTile {
  /** Rows of C per workgroup. */
  bm: number;
  /** Columns of C per workgroup. */
  bn: number;
  /** Depth staged per step. */
  bk: number;
  /** Rows per invocation. */
  tm: number;
  /** Columns per invocation. */
  tn: number;
}

/**
 * Picks the tiling for `rows` x `cols`: wide tiles by default, tall narrow ones when there are
 * few columns (dense layers at small batch, where the columns are the batch).
 *
 * @example
 * ```ts
 * import { chooseTile } from "./gemm.ts";
 * console.log(chooseTile(96, 3025)); // { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 }
 * ```
 */
export function chooseTile(rows: number, cols: number): GemmTile {
  if (cols <= 16 && rows >= 64) return { bm: 128, bn: 16, bk: 16, tm: 4, tn: 2 };
  if (rows <= 16 && cols >= 64) return { bm: 16, bn: 128, bk: 16, tm: 2, tn: 4 };
  return { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
}

/**
 * The number of workgroups a launch of `rows` x `cols` needs with `tile`.
 *
 * @example
 * ```ts
 * import { gemmWorkgroups } from "./gemm.ts";
 * console.log(gemmWorkgroups(100, 100, { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 })); // 4
 * ```
 */
export function gemmWorkgroups(rows: number, cols: number, tile: GemmTile): number {
  return Math.ceil(rows / tile.bm) * Math.ceil(cols / tile.bn);
}

/**
 * The WGSL of the core's entry point `main` for `tile`; concatenate it after the definitions of
 * the sizes, loaders and epilogue.
 *
 * @example
 * ```ts
 * import { gemmWgsl } from "./gemm.ts";
 * const wgsl = gemmWgsl({ bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 });
 * console.assert(wgsl.includes("workgroupBarrier"));
 * ```
 */
export function gemmWgsl(t: GemmTile): string {
  if (t.bm % t.tm || t.bn % t.tn) throw new RangeError(`tile ${JSON.stringify(t)} does not divide`);
  const tx = t.bn / t.tn, ty = t.bm / t.tm, threads = tx * ty;
  return /* wgsl */ `
${WORKGROUP_INDEX_WGSL}
const BM = ${t.bm}u;
const BN = ${t.bn}u;
const BK = ${t.bk}u;
const TM = ${t.tm}u;
const TN = ${t.tn}u;
const TX = ${tx}u; // invocations along n
const TY = ${ty}u; // invocations along m
const THREADS = ${threads}u;

var<workgroup> tileA: array<f32, ${t.bk * t.bm}>; // [k][m]
var<workgroup> tileB: array<f32, ${t.bk * t.bn}>; // [k][n]

@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let rows = gemmRows();
  let cols = gemmCols();
  let depth = gemmDepth();
  let tilesN = (cols + BN - 1u) / BN;
  let tile = workgroupIndex(wid, nwg);
  if (tile >= tilesN * ((rows + BM - 1u) / BM)) { return; }
  let n0 = (tile % tilesN) * BN;
  let m0 = (tile / tilesN) * BM;
  let tx = lid % TX;
  let ty = lid / TX;

  var acc: array<f32, ${t.tm * t.tn}>;
  for (var k0 = 0u; k0 < depth; k0 += BK) {
    for (var i = lid; i < BM * BK; i += THREADS) { // consecutive invocations: consecutive k
      let m = m0 + i / BK;
      let k = k0 + i % BK;
      var v = 0.0;
      if (m < rows && k < depth) { v = loadA(m, k); }
      tileA[(i % BK) * BM + i / BK] = v;
    }
    for (var i = lid; i < BK * BN; i += THREADS) { // consecutive invocations: consecutive n
      let k = k0 + i / BN;
      let n = n0 + i % BN;
      var v = 0.0;
      if (n < cols && k < depth) { v = loadB(k, n); }
      tileB[i] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, ${t.tm}>;
      var b: array<f32, ${t.tn}>;
      for (var i = 0u; i < TM; i++) { a[i] = tileA[kk * BM + ty + i * TY]; }
      for (var j = 0u; j < TN; j++) { b[j] = tileB[kk * BN + tx + j * TX]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let m = m0 + ty + i * TY;
    for (var j = 0u; j < TN; j++) {
      let n = n0 + tx + j * TX;
      if (m < rows && n < cols) { storeC(m, n, acc[i * TN + j]); }
    }
  }
}`;
}
