/**
 * The barrier-free GEMM ("registers", "mirrored" and "textures" tilings): each invocation
 * accumulates one TM x TN block in registers, written out as scalar statements; "textures" reads
 * the operands packed four k to a texel (`pack_wgsl.ts`). The fast strategy on CPU adapters.
 *
 * @module
 */
import { texelLoadWgsl, textureWgsl, WORKGROUP_INDEX_WGSL } from "../../gpu/launch.ts";
import type { GemmVariant } from "./core.ts";
import { PACKED_TEXEL_WGSL } from "./pack_wgsl.ts";
import type { GemmTile } from "./tiles.ts";

/**
 * The "registers" (and "mirrored") and "textures" strategies: one TM x TN block per invocation,
 * written out as scalar statements (no arrays, no inner loops), so that the compiler keeps it in
 * registers; rows and columns past the edge are clamped for loading and skipped on store, the block
 * a row at a time by a loop (`storeC` inlined TN times, not TM x TN). "registers" reads the
 * operands through the loaders, one k at a time, four with `vectorK`, and A four rows or B four
 * columns a load with `vectorM` / `vectorN` (rounding each to f16 where the precision is "f16";
 * with both, still four k a step, A read as zeros past the depth), and with `vectorStores` stores
 * the whole block four columns a store through `storeC4`, and with `adjacentRows` gives
 * neighbouring invocations neighbouring row blocks; "textures" reads four k per texel from
 * the packed operands, B a tap at a time with `gatheredTaps`. With `splits` S > 1, S invocations
 * share each block's depth and write their sums to `partial` [S, rows, cols] for
 * `splitReduceWgsl` to add and store (too few blocks to keep a CPU adapter's cores busy otherwise).
 *
 * @example
 * ```ts
 * import { blockGemmWgsl } from "./block_wgsl.ts";
 * import { GEMM_TILES } from "./tiles.ts";
 * console.assert(blockGemmWgsl(GEMM_TILES.thinBlocks).includes("c15_3"));
 * ```
 */
export function blockGemmWgsl(
  t: Exclude<GemmTile, { kind: "workgroup" }>,
  variant: GemmVariant = {},
): string {
  const { binding = 0, gatheredB = false, vectorK = false, splits = 1 } = variant;
  const texelRead = variant.texelRead ?? "sampled";
  const texel = (name: string, i: string) => texelLoadWgsl(name, `packedTexel(${i})`, texelRead);
  const taps = gatheredB && variant.gatheredTaps === true;
  const half = variant.precision === "f16";
  const packed = t.kind === "textures";
  const quads = packed || vectorK; // four k a step
  const byRows = !packed && variant.vectorM === true, byCols = !packed && variant.vectorN === true;
  const byQuads = !packed && splits === 1 && variant.vectorStores === true;
  // Loaded along m and n, the depth still runs four k a step: each sum then takes four
  // multiply-adds a visit, not one (the block's sums live in memory on a CPU adapter).
  const unrolled = !quads && byRows && byCols;
  if ((byRows && t.tm % 4) || ((byCols || byQuads) && t.tn % 4)) {
    throw new RangeError(
      `tile ${JSON.stringify(t)}: vector loads and stores need blocks of whole quads`,
    );
  }
  const round = (e: string, vector: boolean) =>
    !half ? e : vector ? `vec4f(vec4<f16>(${e}))` : `f32(f16(${e}))`;
  const rows = [...Array(t.tm).keys()], cols = [...Array(t.tn).keys()];
  const subs = quads || unrolled ? [0, 1, 2, 3] : [0]; // the k of a step
  const each = (f: (i: number, j: number) => string) =>
    rows.flatMap((i) => cols.map((j) => f(i, j))).join("\n");
  const kOf = (s: number) => quads ? `4u * k + ${s}u` : unrolled ? (s ? `k${s}` : "4u * k") : "k";
  // Past the depth, an unrolled step reads the last k again and A as zeros.
  const pastDepth = (e: string, s: number) =>
    unrolled && s > 0 ? `select(vec4f(0.0), ${e}, 4u * k + ${s}u < depth)` : e;
  const lane = (i: number) => "xyzw"[i % 4];
  // The step's loads, and the expression of A[row i] and B[column j] at its s-th k.
  const aLoads = byRows
    ? subs.flatMap((s) =>
      rows.filter((i) => i % 4 === 0).map((i) =>
        `let a${i / 4}_${s} = ${pastDepth(round(`loadA4m(quad${i / 4}, ${kOf(s)})`, true), s)};`
      )
    )
    : rows.map((i) =>
      `let a${i} = ${
        packed
          ? texel("packedA", `row${i} * steps + k`)
          : round(vectorK ? `loadA4(row${i}, k)` : `loadA(row${i}, k)`, vectorK)
      };`
    );
  const bLoads = byCols
    ? subs.flatMap((s) =>
      cols.filter((j) => j % 4 === 0).map((j) =>
        `let b${j / 4}_${s} = ${round(`loadB4n(${kOf(s)}, colQuad${j / 4})`, true)};`
      )
    )
    : cols.map((j) =>
      `let b${j} = ${
        packed
          ? texel(
            "packedB",
            taps
              ? `t${j}.x + q * t${j}.y`
              : gatheredB
              ? `texelOfB(k, chunk.c0 + col${j})`
              : `col${j} * steps + k`,
          )
          : round(vectorK ? `loadB4(k, col${j})` : `loadB(k, col${j})`, vectorK)
      };`
    );
  const a = (i: number, s: number) =>
    byRows ? `a${i >> 2}_${s}.${lane(i)}` : quads ? `a${i}.${lane(s)}` : `a${i}`;
  const b = (j: number, s: number) =>
    byCols ? `b${j >> 2}_${s}.${lane(j)}` : quads ? `b${j}.${lane(s)}` : `b${j}`;
  const fmas = (i: number, j: number) =>
    subs.reduce((acc, s) => `fma(${a(i, s)}, ${b(j, s)}, ${acc})`, `c${i}_${j}`);
  const body = [
    ...(unrolled ? [1, 2, 3].map((s) => `let k${s} = min(4u * k + ${s}u, depth - 1u);`) : []),
    ...aLoads,
    ...bLoads,
    ...rows.flatMap((i) => cols.map((j) => `c${i}_${j} = ${fmas(i, j)};`)),
  ];
  const step = taps ? tapSteps(t, splits, body) : /* wgsl */ `
  let steps = ${quads || unrolled ? "(depth + 3u) / 4u" : "depth"};
${
    splits > 1
      ? `  let share = (steps + ${splits - 1}u) / ${splits}u;
  for (var k = split * share; k < min(split * share + share, steps); k++) {`
      : "  for (var k = 0u; k < steps; k++) {"
  }
${body.map((line) => `    ${line}`).join("\n")}
  }`;
  return /* wgsl */ `
${WORKGROUP_INDEX_WGSL}
${
    packed
      ? `${PACKED_TEXEL_WGSL}
@group(0) @binding(${binding}) var<uniform> chunk: GemmChunk;
${textureWgsl("packedA", binding + 1, texelRead)}
${textureWgsl("packedB", binding + 2, texelRead)}${gatheredB && !taps ? GATHERED_TEXEL_WGSL : ""}`
      : ""
  }

${
    splits > 1
      ? `@group(0) @binding(${variant.partialBinding}) var<storage, read_write> partial: array<f32>;`
      : ""
  }

@compute @workgroup_size(${t.threads})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let rows = ${packed ? "chunk.nr" : "gemmRows()"};
  let cols = ${packed ? "chunk.nc" : "gemmCols()"};
  let depth = gemmDepth();
  let blocksN = (cols + ${t.tn - 1}u) / ${t.tn}u;
  let blocks = blocksN * ((rows + ${t.tm - 1}u) / ${t.tm}u);
${
    splits > 1
      ? `  let whole = workgroupIndex(wid, nwg) * ${t.threads}u + lid;
  if (whole >= blocks * ${splits}u) { return; }
  let split = whole / blocks; // the share of the depth this invocation sums
  let block = whole % blocks;`
      : `  let block = workgroupIndex(wid, nwg) * ${t.threads}u + lid;
  if (block >= blocks) { return; }`
  }
${
    variant.adjacentRows
      ? `  let blocksM = (rows + ${t.tm - 1}u) / ${t.tm}u;
  let m0 = (block % blocksM) * ${t.tm}u; // neighbouring invocations: row blocks
  let n0 = (block / blocksM) * ${t.tn}u;`
      : `  let n0 = (block % blocksN) * ${t.tn}u; // neighbouring invocations: column blocks
  let m0 = (block / blocksN) * ${t.tm}u;`
  }
${
    byRows
      ? rows.filter((i) => i % 4 === 0).map((i) =>
        `  let quad${i / 4} = min(m0 / 4u + ${i / 4}u, rows / 4u - 1u);`
      ).join("\n")
      : rows.map((i) => `  let row${i} = min(m0 + ${i}u, rows - 1u);`).join("\n")
  }
${
    byCols
      ? cols.filter((j) => j % 4 === 0).map((j) =>
        `  let colQuad${j / 4} = min(n0 / 4u + ${j / 4}u, (cols - 1u) / 4u);`
      ).join("\n")
      : cols.map((j) => `  let col${j} = min(n0 + ${j}u, cols - 1u);`).join("\n")
  }
${each((i, j) => `  var c${i}_${j} = 0.0;`)}
${step}
${
    byQuads
      ? quadStores(t)
      : shiftedStores(t, (row, j) =>
        splits > 1
          ? `partial[(split * rows + ${row}) * cols + n0 + ${j}u] = c0_${j};`
          : `storeC(${packed ? "chunk.r0 + " : ""}${row}, ${
            packed ? "chunk.c0 + " : ""
          }n0 + ${j}u, c0_${j});`)
  }
}`;
}

// B's texel of k for column n, gathered a texel at a time: the tap's first texel and k's step in it.
const GATHERED_TEXEL_WGSL = /* wgsl */ `
fn texelOfB(k4: u32, n: u32) -> u32 {
  let t = tapOfB(k4 / quadsPerTap(), n);
  return t.x + (k4 % quadsPerTap()) * t.y;
}`;

/**
 * The depth loop of packed operands whose B is gathered a tap at a time (`gatheredTaps`): k runs
 * over (tap, texel of the tap), the operands' `tapOfB(tap, n)` gives column n's texel of the tap's
 * first quad and the step to the next (0 where the tap is padding: texel 0 is zeros), so the
 * inner loop walks texels with one multiply-add a column instead of the full gather. With
 * `splits`, invocations share the taps.
 */
function tapSteps(t: { tn: number }, splits: number, body: string[]): string {
  const cols = [...Array(t.tn).keys()];
  return `
  let steps = (depth + 3u) / 4u;
  let perTap = quadsPerTap();
  let taps = steps / perTap;
${
    splits > 1
      ? `  let share = (taps + ${splits - 1}u) / ${splits}u;
  for (var tap = split * share; tap < min(split * share + share, taps); tap++) {`
      : "  for (var tap = 0u; tap < taps; tap++) {"
  }
${cols.map((j) => `    let t${j} = tapOfB(tap, chunk.c0 + col${j});`).join("\n")}
    for (var q = 0u; q < perTap; q++) {
      let k = tap * perTap + q;
${body.map((line) => `      ${line}`).join("\n")}
    }
  }`;
}

/**
 * The epilogue: a loop over the block's rows that stores row 0 (`store(row, j)`, column j) and
 * shifts the rows up, so that the store is written TN times, not TM x TN times (inlined loads and
 * stores are what the compiler spends its time on).
 */
function shiftedStores(
  t: { tm: number; tn: number },
  store: (row: string, j: number) => string,
): string {
  const cols = [...Array(t.tn).keys()], rows = [...Array(t.tm - 1).keys()];
  return `  let blockRows = min(rows - m0, ${t.tm}u); // a runtime bound: the loop stays a loop
  for (var i = 0u; i < blockRows; i++) {
${cols.map((j) => `    if (n0 + ${j}u < cols) { ${store("m0 + i", j)} }`).join("\n")}
${rows.flatMap((i) => cols.map((j) => `    c${i}_${j} = c${i + 1}_${j};`)).join("\n")}
  }`;
}

/**
 * The epilogue with `vectorStores`: the block written out a vec4 at a time, TM x TN / 4 stores in
 * place of the shifting loop. Such blocks are shallow (a dense weight gradient's depth is the
 * batch), and shifting their sums a row at a time costs about what summing them does; the stores
 * being vec4s, there are four times fewer to inline.
 */
function quadStores(t: { tm: number; tn: number }): string {
  const quads = [...Array(t.tn / 4).keys()], rows = [...Array(t.tm).keys()];
  return rows.map((i) =>
    `  if (m0 + ${i}u < rows) {
${
      quads.map((q) =>
        `    if (n0 + ${4 * q}u < cols) { storeC4(m0 + ${i}u, n0 / 4u + ${q}u, vec4f(${
          [0, 1, 2, 3].map((s) => `c${i}_${4 * q + s}`).join(", ")
        })); }`
      ).join("\n")
    }
  }`
  ).join("\n");
}
