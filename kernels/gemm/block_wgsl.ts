/**
 * The barrier-free GEMM ("registers" and "textures" tilings): each invocation accumulates one
 * TM x TN block in registers, written out as scalar statements; "textures" reads the operands
 * packed four k to a texel (`pack_wgsl.ts`). The fast strategy on CPU adapters.
 *
 * @module
 */
import { WORKGROUP_INDEX_WGSL } from "../../gpu/launch.ts";
import type { GemmVariant } from "./core.ts";
import { PACKED_TEXEL_WGSL } from "./pack_wgsl.ts";
import type { GemmTile } from "./tiles.ts";

/**
 * The "registers" and "textures" strategies: one TM x TN block per invocation, written out as
 * scalar statements (no arrays, no inner loops), so that the compiler keeps it in registers; rows
 * and columns past the edge are clamped for loading and skipped on store. "registers" reads the
 * operands through the loaders, one k at a time, or four with `vectorK` (rounding each to f16
 * where the precision is "f16"); "textures" reads four k per texel from the packed operands.
 *
 * @example
 * ```ts
 * import { blockGemmWgsl } from "./block_wgsl.ts";
 * import { GEMM_TILES } from "./tiles.ts";
 * console.assert(blockGemmWgsl(GEMM_TILES.thinBlocks).includes("c15_3"));
 * ```
 */
export function blockGemmWgsl(
  t: Extract<GemmTile, { kind: "registers" | "textures" }>,
  variant: GemmVariant = {},
): string {
  const { binding = 0, gatheredB = false, vectorK = false } = variant;
  const half = variant.precision === "f16";
  const packed = t.kind === "textures";
  const quads = packed || vectorK; // four k a step
  const round = (e: string) => !half ? e : quads ? `vec4f(vec4<f16>(${e}))` : `f32(f16(${e}))`;
  const rows = [...Array(t.tm).keys()], cols = [...Array(t.tn).keys()];
  const each = (f: (i: number, j: number) => string) =>
    rows.flatMap((i) => cols.map((j) => f(i, j))).join("\n");
  const loadA = (i: number) =>
    packed
      ? `textureLoad(packedA, packedTexel(row${i} * steps + k), 0)`
      : round(vectorK ? `loadA4(row${i}, k)` : `loadA(row${i}, k)`);
  const loadB = (j: number) =>
    packed
      ? `textureLoad(packedB, packedTexel(${
        gatheredB ? `texelOfB(k, chunk.c0 + col${j})` : `col${j} * steps + k`
      }), 0)`
      : round(vectorK ? `loadB4(k, col${j})` : `loadB(k, col${j})`);
  const step = /* wgsl */ `
  let steps = ${quads ? "(depth + 3u) / 4u" : "depth"};
  for (var k = 0u; k < steps; k++) {
${rows.map((i) => `    let a${i} = ${loadA(i)};`).join("\n")}
${cols.map((j) => `    let b${j} = ${loadB(j)};`).join("\n")}
${
    each((i, j) =>
      quads
        ? `    c${i}_${j} = fma(a${i}.w, b${j}.w, fma(a${i}.z, b${j}.z, fma(a${i}.y, b${j}.y, fma(a${i}.x, b${j}.x, c${i}_${j}))));`
        : `    c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`
    )
  }
  }`;
  return /* wgsl */ `
${WORKGROUP_INDEX_WGSL}
${
    packed
      ? `${PACKED_TEXEL_WGSL}
@group(0) @binding(${binding}) var<uniform> chunk: GemmChunk;
@group(0) @binding(${binding + 1}) var packedA: texture_2d<f32>;
@group(0) @binding(${binding + 2}) var packedB: texture_2d<f32>;`
      : ""
  }

@compute @workgroup_size(${t.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let rows = ${packed ? "chunk.nr" : "gemmRows()"};
  let cols = ${packed ? "chunk.nc" : "gemmCols()"};
  let depth = gemmDepth();
  let blocksN = (cols + ${t.tn - 1}u) / ${t.tn}u;
  let block = workgroupIndex(wid, nwg) * ${t.threads}u + lid;
  if (block >= blocksN * ((rows + ${t.tm - 1}u) / ${t.tm}u)) { return; }
  let n0 = (block % blocksN) * ${t.tn}u; // neighbouring invocations: neighbouring column blocks
  let m0 = (block / blocksN) * ${t.tm}u;
${rows.map((i) => `  let row${i} = min(m0 + ${i}u, rows - 1u);`).join("\n")}
${cols.map((j) => `  let col${j} = min(n0 + ${j}u, cols - 1u);`).join("\n")}
${each((i, j) => `  var c${i}_${j} = 0.0;`)}
${step}
${
    each((i, j) =>
      `  if (m0 + ${i}u < rows && n0 + ${j}u < cols) { storeC(${
        packed ? "chunk.r0 + " : ""
      }m0 + ${i}u, ${packed ? "chunk.c0 + " : ""}n0 + ${j}u, c${i}_${j}); }`
    )
  }
}`;
}
