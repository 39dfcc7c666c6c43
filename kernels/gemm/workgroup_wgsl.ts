/**
 * The classic GPU GEMM ("workgroup" tilings): a workgroup stages BM x BK and BK x BN tiles of the
 * operands in workgroup memory behind barriers, and each invocation accumulates a TM x TN block of
 * the BM x BN tile. With f16 precision the tiles hold half-precision values.
 *
 * @module
 */
import { WORKGROUP_INDEX_WGSL } from "../../gpu/launch.ts";
import type { GemmVariant } from "./core.ts";
import type { GemmTile } from "./tiles.ts";

/**
 * The WGSL of the core's entry point `main` for a workgroup tiling; concatenate it after the
 * operands' definitions (see `core.ts`), their scalar loaders (derived from vector ones where
 * the operands define those: `scalarLoadersWgsl`).
 *
 * @example
 * ```ts
 * import { GEMM_TILES } from "./tiles.ts";
 * import { workgroupGemmWgsl } from "./workgroup_wgsl.ts";
 * console.assert(workgroupGemmWgsl(GEMM_TILES.wide).includes("workgroupBarrier"));
 * console.assert(workgroupGemmWgsl(GEMM_TILES.wide, { precision: "f16" }).includes("array<f16, 1024>"));
 * ```
 */
export function workgroupGemmWgsl(
  t: Extract<GemmTile, { kind: "workgroup" }>,
  variant: GemmVariant = {},
): string {
  const half = variant.precision === "f16";
  if (t.bm % t.tm || t.bn % t.tn) throw new RangeError(`tile ${JSON.stringify(t)} does not divide`);
  const tx = t.bn / t.tn, ty = t.bm / t.tm, threads = tx * ty;
  const element = half ? "f16" : "f32";
  const [store, load] = half ? ["f16", "f32"] : ["", ""]; // conversions into and out of the tiles
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

var<workgroup> tileA: array<${element}, ${t.bk * t.bm}>; // [k][m]
var<workgroup> tileB: array<${element}, ${t.bk * t.bn}>; // [k][n]

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
      tileA[(i % BK) * BM + i / BK] = ${store}(v);
    }
    for (var i = lid; i < BK * BN; i += THREADS) { // consecutive invocations: consecutive n
      let k = k0 + i / BN;
      let n = n0 + i % BN;
      var v = 0.0;
      if (n < cols && k < depth) { v = loadB(k, n); }
      tileB[i] = ${store}(v);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, ${t.tm}>;
      var b: array<f32, ${t.tn}>;
      for (var i = 0u; i < TM; i++) { a[i] = ${load}(tileA[kk * BM + ty + i * TY]); }
      for (var j = 0u; j < TN; j++) { b[j] = ${load}(tileB[kk * BN + tx + j * TX]); }
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
