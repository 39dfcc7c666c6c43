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
 * - with packed operands and B gathered in place (`gatheredB`), `fn texelOfB(k4: u32, n: u32) ->
 *   u32` instead of `loadB`: the texel of the scratch texture B that holds B[4 k4 .. 4 k4 + 3, n];
 * - where both operands are contiguous along k (`vectorK`, a dense layer), `fn loadA4(m: u32, k4:
 *   u32) -> vec4f` and `fn loadB4(k4: u32, n: u32) -> vec4f` instead of `loadA` and `loadB`: four
 *   consecutive k, 4 k4 .. 4 k4 + 3, in one storage-buffer load (the depth a multiple of 4).
 *
 * {@linkcode recordGemm} records the launches of one kernel for any tiling, in the device's
 * precision: with "f16" every element of A and B is rounded to half precision where the core
 * stages it (a packed texel, a workgroup tile, a register) and the exact products sum in f32.
 *
 * @module
 */
import {
  type BindingKind,
  type Gpu,
  type Launch,
  type Precision,
  type Resource,
  WORKGROUP_INDEX_WGSL,
} from "../gpu/device.ts";

/**
 * The tiling of a GEMM launch, a parameter of the generator. Three strategies:
 * - "workgroup": a workgroup stages BM x BK and BK x BN tiles in workgroup memory behind
 *   barriers and each invocation accumulates TM x TN of its BM x BN tile (the classic GPU GEMM);
 * - "registers": no workgroup memory, no barriers; each invocation reads its operands straight
 *   from the buffers and accumulates a TM x TN block. On CPU adapters (llvmpipe), where barriers
 *   are expensive and FMAs per load decide, this is several times faster;
 * - "textures": the same blocks, but the operands are first packed into rgba32float textures,
 *   four consecutive k per texel (A by rows, B by columns), and read with `textureLoad`. llvmpipe
 *   fetches a texel for eight invocations in a few vector instructions, where each storage-buffer
 *   element costs a bounds-checked scalar load per invocation: two to three times faster there.
 */
export type GemmTile =
  | { kind: "workgroup"; bm: number; bn: number; bk: number; tm: number; tn: number }
  | { kind: "registers" | "textures"; tm: number; tn: number; threads: number };

/** The tilings {@linkcode chooseTile} picks from: each is checked by the same tests. */
export const GEMM_TILES = {
  wide: { kind: "workgroup", bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  tall: { kind: "workgroup", bm: 128, bn: 16, bk: 16, tm: 4, tn: 2 },
  flat: { kind: "workgroup", bm: 16, bn: 128, bk: 16, tm: 2, tn: 4 },
  blocks: { kind: "registers", tm: 16, tn: 16, threads: 64 },
  narrowBlocks: { kind: "registers", tm: 16, tn: 8, threads: 64 },
  thinBlocks: { kind: "registers", tm: 16, tn: 4, threads: 64 },
  packed: { kind: "textures", tm: 16, tn: 16, threads: 64 },
} as const satisfies Record<string, GemmTile>;

/**
 * The tilings the autotuner times, by kind of adapter. Larger register blocks are left out on
 * llvmpipe: 32x16 ran alexnet-small's conv2 15% faster than 16x16 but its unrolled kernel took
 * about 30 s to compile (32x32: 112 s), once per shape; packed operands compile in seconds.
 */
export const GEMM_CANDIDATES: { cpu: readonly GemmTile[]; gpu: readonly GemmTile[] } = {
  cpu: [GEMM_TILES.packed, GEMM_TILES.blocks, GEMM_TILES.narrowBlocks, GEMM_TILES.thinBlocks],
  gpu: [GEMM_TILES.wide, GEMM_TILES.tall, GEMM_TILES.flat],
};

// Per device: the tiling measured fastest for each GEMM problem (kernel, geometry, batch).
const tuned = new WeakMap<Gpu, Map<string, GemmTile>>();

/**
 * The tiling for a GEMM `problem` of `rows` x `cols` x `depth` on `gpu`: the autotuner's choice
 * where it measured one, otherwise {@linkcode chooseTile}'s (register blocks instead of packed
 * operands deeper than a scratch texture holds). `vectorK`: the operands load four k at a time.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { gemmTile } from "./gemm.ts";
 * const gpu = await Gpu.create();
 * console.log(gemmTile(gpu, "never tuned", 96, 3025, 363).kind); // "textures" on a CPU adapter
 * gpu.destroy();
 * ```
 */
export function gemmTile(
  gpu: Gpu,
  problem: string,
  rows: number,
  cols: number,
  depth: number,
  vectorK = false,
): GemmTile {
  const tile = tuned.get(gpu)?.get(problem) ?? chooseTile(rows, cols, depth, gpu.cpu, vectorK);
  return tile.kind === "textures" && Math.ceil(depth / 4) > gemmScratch(gpu).texels // too deep to pack
    ? GEMM_TILES.blocks
    : tile;
}

/**
 * Times every candidate tiling of one GEMM problem (GPU time where the adapter has timestamp
 * queries) and records the fastest for {@linkcode gemmTile}. `build` records the launch with a
 * given tiling; its `problem` names what is being tuned.
 *
 * @example
 * ```ts ignore
 * const best = await autotuneGemm(gpu, (tile) => conv2dForward(gpu, { ...args, tile }));
 * ```
 */
export async function autotuneGemm(
  gpu: Gpu,
  build: (tile: GemmTile) => Launch & { problem: string },
): Promise<{ problem: string; tile: GemmTile; ms: number | null }> {
  let best: { problem: string; tile: GemmTile; ms: number } | undefined;
  for (const tile of gpu.cpu ? GEMM_CANDIDATES.cpu : GEMM_CANDIDATES.gpu) {
    let launch;
    try {
      launch = build(tile);
    } catch (e) {
      if (e instanceof PackedTooLarge) continue; // this shape cannot pack: not a candidate
      throw e;
    }
    const known = tuned.get(gpu)?.get(launch.problem);
    if (known) { // measured before (this run, or a saved tuning): nothing to time
      for (const b of launch.buffers) b.destroy();
      return { problem: launch.problem, tile: known, ms: null };
    }
    try {
      gpu.run(launch.dispatches); // compile and warm up
      await gpu.device.queue.onSubmittedWorkDone();
      let ms = await gpu.timePass(launch.dispatches);
      if (ms === null) {
        const started = performance.now();
        gpu.run(launch.dispatches);
        await gpu.device.queue.onSubmittedWorkDone();
        ms = performance.now() - started;
      }
      if (!best || ms < best.ms) best = { problem: launch.problem, tile, ms };
    } finally {
      for (const b of launch.buffers) b.destroy();
    }
  }
  if (!tuned.has(gpu)) tuned.set(gpu, new Map());
  tuned.get(gpu)!.set(best!.problem, best!.tile);
  return best!;
}

/**
 * Where the autotuner's choices are kept between runs: `$XDG_CACHE_HOME/alexnet-webgpu` (else
 * `~/.cache/alexnet-webgpu`), `gemm-tuning.json`, holding each adapter's choices by problem.
 *
 * @example
 * ```ts
 * import { defaultTuningPath } from "./gemm.ts";
 * console.log(defaultTuningPath().endsWith("gemm-tuning.json")); // true
 * ```
 */
export function defaultTuningPath(): string {
  const home = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`;
  return `${home}/alexnet-webgpu/gemm-tuning.json`;
}

/** The key of an adapter's choices in a tuning file: its description, backend and precision. */
function adapterKey(gpu: Gpu): string {
  const backend = Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default";
  return `${gpu.description} (${backend})${gpu.precision === "f16" ? " f16" : ""}`;
}

/**
 * Adopts the choices a tuning file saved for this adapter, so that {@linkcode gemmTile} uses them
 * without measuring again; returns how many. A missing or unreadable file adopts none.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { loadTuning } from "./gemm.ts";
 * const gpu = await Gpu.create();
 * console.log(await loadTuning(gpu, "/nonexistent/gemm-tuning.json")); // 0
 * gpu.destroy();
 * ```
 */
export async function loadTuning(gpu: Gpu, path: string): Promise<number> {
  let saved: Record<string, Record<string, GemmTile>>;
  try {
    saved = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return 0;
  }
  const mine = Object.entries(saved[adapterKey(gpu)] ?? {})
    .filter(([, tile]) => (tile.kind !== "workgroup") === gpu.cpu && isTile(tile));
  if (!tuned.has(gpu)) tuned.set(gpu, new Map());
  for (const [problem, tile] of mine) tuned.get(gpu)!.set(problem, tile);
  return mine.length;
}

/**
 * Adds this adapter's choices to the tuning file (written atomically; other adapters' kept).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { saveTuning } from "./gemm.ts";
 * const gpu = await Gpu.create();
 * await saveTuning(gpu, `${await Deno.makeTempDir()}/gemm-tuning.json`);
 * gpu.destroy();
 * ```
 */
export async function saveTuning(gpu: Gpu, path: string): Promise<void> {
  let saved: Record<string, Record<string, GemmTile>> = {};
  try {
    saved = JSON.parse(await Deno.readTextFile(path));
  } catch { /* a new file */ }
  saved[adapterKey(gpu)] = {
    ...saved[adapterKey(gpu)],
    ...Object.fromEntries(tuned.get(gpu) ?? []),
  };
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || ".", { recursive: true });
  const temporary = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(temporary, JSON.stringify(saved, null, 1) + "\n");
  await Deno.rename(temporary, path);
}

/** Whether a value read from a file is a tiling the generator accepts. */
function isTile(t: GemmTile): boolean {
  const whole = (...v: unknown[]) => v.every((x) => Number.isInteger(x) && (x as number) > 0);
  return t.kind === "registers" || t.kind === "textures"
    ? whole(t.tm, t.tn, t.threads)
    : t.kind === "workgroup" && whole(t.bm, t.bn, t.bk, t.tm, t.tn) && t.bm % t.tm === 0 &&
      t.bn % t.tn === 0;
}

/**
 * Picks the tiling for `rows` x `cols` x `depth` on an adapter. On CPU adapters: packed operands
 * for GEMMs of at least 2^25 multiply-adds, register blocks below (packing pays for its two passes
 * and its kernels' compile time, seconds a shape on llvmpipe, only on large GEMMs) and where the
 * operands load four k at a time (`vectorK`: as fast as texels, with nothing to pack), narrow
 * register blocks for eight columns or fewer and thin ones for four or fewer (dense layers at small
 * batches; 16 rows a block, so that fc8's 1,000 rows still make enough workgroups). On GPUs, wide
 * workgroup tiles by default, tall narrow ones when there are few columns (dense layers at small
 * batch, where the columns are the batch) and flat ones when there are few rows.
 *
 * @example
 * ```ts
 * import { chooseTile } from "./gemm.ts";
 * console.log(chooseTile(96, 3025, 363, false).kind); // "workgroup"
 * console.log(chooseTile(96, 3025, 363, true).kind); // "textures"
 * ```
 */
export function chooseTile(
  rows: number,
  cols: number,
  depth: number,
  cpu: boolean,
  vectorK = false,
): GemmTile {
  if (cpu) {
    if (cols <= 8) return cols <= 4 ? GEMM_TILES.thinBlocks : GEMM_TILES.narrowBlocks;
    return rows * cols * depth >= 2 ** 25 && !vectorK ? GEMM_TILES.packed : GEMM_TILES.blocks;
  }
  if (cols <= 16 && rows >= 64) return GEMM_TILES.tall;
  if (rows <= 16 && cols >= 64) return GEMM_TILES.flat;
  return GEMM_TILES.wide;
}

/**
 * The number of workgroups a launch of `rows` x `cols` needs with `tile`.
 *
 * @example
 * ```ts
 * import { gemmWorkgroups } from "./gemm.ts";
 * const tile = { kind: "workgroup", bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 } as const;
 * console.log(gemmWorkgroups(100, 100, tile)); // 4
 * ```
 */
export function gemmWorkgroups(rows: number, cols: number, tile: GemmTile): number {
  if (tile.kind !== "workgroup") {
    return Math.ceil(Math.ceil(rows / tile.tm) * Math.ceil(cols / tile.tn) / tile.threads);
  }
  return Math.ceil(rows / tile.bm) * Math.ceil(cols / tile.bn);
}

/** What the core's WGSL depends on besides the tiling (see {@linkcode gemmWgsl}). */
export interface GemmVariant {
  /** The first binding after the operands' (packed operands only; default 0). */
  binding?: number;
  /** B gathered from texels the operands' `texelOfB` names (packed operands only). */
  gatheredB?: boolean;
  /**
   * The operands define `loadA4` and `loadB4` (four consecutive k) instead of `loadA` and `loadB`:
   * register blocks read four k a load, workgroup tiles through scalar loaders derived from them.
   */
  vectorK?: boolean;
  /**
   * "f16": the workgroup tiles hold half-precision values and register blocks round what they load
   * (the module must start with {@linkcode enableWgsl}'s directive); packed operands are rounded
   * when packed, so it changes nothing for them (default "f32").
   */
  precision?: Precision;
}

/**
 * The WGSL of the core's entry point `main` for `tile`; concatenate it after the definitions of
 * the sizes, loaders and epilogue. With packed operands ("textures") it reads the chunk's uniform
 * and `packedA` and `packedB` at bindings `binding`, `binding + 1` and `binding + 2` instead of the
 * loaders (see {@linkcode recordGemm}); with `gatheredB` it reads B's four k at (k / 4, n) from the
 * texel that the operands' `fn texelOfB(k4: u32, n: u32) -> u32` names, B being left in place by
 * the caller rather than packed.
 *
 * @example
 * ```ts
 * import { GEMM_TILES, gemmWgsl } from "./gemm.ts";
 * const wgsl = gemmWgsl({ kind: "workgroup", bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 });
 * console.assert(wgsl.includes("workgroupBarrier"));
 * console.assert(gemmWgsl(GEMM_TILES.wide, { precision: "f16" }).includes("array<f16, 1024>"));
 * ```
 */
export function gemmWgsl(t: GemmTile, variant: GemmVariant = {}): string {
  if (t.kind !== "workgroup") return blockGemmWgsl(t, variant);
  const half = variant.precision === "f16";
  if (t.bm % t.tm || t.bn % t.tn) throw new RangeError(`tile ${JSON.stringify(t)} does not divide`);
  const tx = t.bn / t.tn, ty = t.bm / t.tm, threads = tx * ty;
  const element = half ? "f16" : "f32";
  const [store, load] = half ? ["f16", "f32"] : ["", ""]; // conversions into and out of the tiles
  return /* wgsl */ `
${variant.vectorK ? SCALAR_FROM_VECTOR_WGSL : ""}
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

/** The scalar loaders of operands that define only the vector ones. */
const SCALAR_FROM_VECTOR_WGSL = /* wgsl */ `
fn loadA(m: u32, k: u32) -> f32 { return loadA4(m, k / 4u)[k % 4u]; }
fn loadB(k: u32, n: u32) -> f32 { return loadB4(k / 4u, n)[k % 4u]; }`;

/**
 * Packed operands are laid out row after row, `steps` = ceil(depth / 4) texels each, in a scratch
 * texture PACKED_WIDTH texels wide (a power of two: the coordinates of a linear texel index are a
 * mask and a shift) and up to PACKED_HEIGHT high, one for each operand per device: 128 MiB each,
 * whatever the layer. A GEMM whose operands are larger runs in chunks of rows and columns, each
 * packed and multiplied in turn; a chunk's uniform says which.
 */
const PACKED_WIDTH = 4096;
const PACKED_HEIGHT = 2048;
/**
 * WGSL of the scratch textures' layout: `packedTexel(i)`, the coordinates of linear texel `i`, and
 * the uniform `GemmChunk` that says which rows and columns a packed launch covers.
 *
 * @example
 * ```ts
 * import { PACKED_TEXEL_WGSL } from "./gemm.ts";
 * console.assert(PACKED_TEXEL_WGSL.includes("fn packedTexel(i: u32) -> vec2i"));
 * ```
 */
export const PACKED_TEXEL_WGSL = /* wgsl */ `
struct GemmChunk { r0: u32, nr: u32, c0: u32, nc: u32 } // rows r0.., columns c0.. of C

fn packedTexel(i: u32) -> vec2i {
  return vec2i(i32(i & ${PACKED_WIDTH - 1}u), i32(i >> ${Math.log2(PACKED_WIDTH)}u));
}`;

/**
 * The directive a module whose WGSL rounds to `precision` starts with: `enable f16;` for "f16"
 * (half-precision types need the extension, declared before anything else), else nothing.
 *
 * @example
 * ```ts
 * import { enableWgsl } from "./gemm.ts";
 * console.log(enableWgsl("f16")); // "enable f16;\n"
 * ```
 */
export function enableWgsl(precision?: Precision): string {
  return precision === "f16" ? "enable f16;\n" : "";
}

/**
 * WGSL of the texel `v` (a vec4f) as the packed operands store it: rounded to half precision where
 * `precision` is "f16" (then exact in the rgba32float texel), else as it is.
 *
 * @example
 * ```ts
 * import { roundTexel } from "./gemm.ts";
 * console.log(roundTexel("f16")); // "vec4f(vec4<f16>(v))"
 * ```
 */
export function roundTexel(precision?: Precision): string {
  return precision === "f16" ? "vec4f(vec4<f16>(v))" : "v";
}

/**
 * The "registers" and "textures" strategies: one TM x TN block per invocation, written out as
 * scalar statements (no arrays, no inner loops), so that the compiler keeps it in registers; rows
 * and columns past the edge are clamped for loading and skipped on store. "registers" reads the
 * operands through the loaders, one k at a time, or four with `vectorK` (rounding each to f16
 * where the precision is "f16"); "textures" reads four k per texel from the packed operands.
 */
function blockGemmWgsl(
  t: { kind: string; tm: number; tn: number; threads: number },
  variant: GemmVariant,
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

/**
 * The WGSL of the entry point `main` that packs a chunk of operand A (rows m) or B (columns n)
 * into the rgba32float storage texture `packed`: texel (k / 4) of a row holds elements k..k+3, zero
 * past the depth, each rounded to f16 where `precision` is "f16"; read in one load where the
 * operands define `loadA4` and `loadB4` (`vectorK`). The chunk's uniform is at binding `binding`, the
 * texture at `binding + 1`. One invocation per texel, in the texels' order.
 *
 * @example
 * ```ts
 * import { gemmPackWgsl } from "./gemm.ts";
 * console.assert(gemmPackWgsl("B", 4).includes("loadB(k + 3u, row)"));
 * ```
 */
export function gemmPackWgsl(
  operand: "A" | "B",
  binding: number,
  precision?: Precision,
  vectorK = false,
): string {
  const load = (c: number) => operand === "A" ? `loadA(row, k + ${c}u)` : `loadB(k + ${c}u, row)`;
  const texel = vectorK
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

/** One launch of a GEMM kernel: its label, its resources (the kernel's bindings, in order) and
 * the sizes its `gemmRows`, `gemmCols` and `gemmDepth` return for them. */
export interface GemmCall {
  /** What the launch computes, for errors and profiles. */
  label: string;
  /** The kernel's bindings. */
  resources: Resource[];
  /** Rows of C. */
  rows: number;
  /** Columns of C. */
  cols: number;
  /** The depth k. */
  depth: number;
}

/**
 * Records a GEMM kernel's launches with `tile`: `operands` is its WGSL before the core (bindings,
 * sizes, loaders, epilogue), `bindings` their kinds, `key` names the kernel and its compile-time
 * parameters. With packed operands each call becomes, per chunk of rows and columns that fits the
 * device's scratch textures, up to three launches (pack A, pack B, multiply); the launches of a
 * device share its scratch, which is safe because a queue runs them in order. With `gatherB`
 * (packed operands only), B is not packed: `gatherB`'s launches, recorded first, write texels to
 * the scratch texture B ({@linkcode gemmScratch}) from which the operands' `texelOfB` gathers it
 * (see {@linkcode gemmWgsl}); the columns are still taken in chunks, the rows too. With `vectorK`
 * the operands define the vector loaders (see {@linkcode GemmVariant}). The device's precision
 * ({@linkcode Gpu.precision}) decides what the core multiplies.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { GEMM_TILES, recordGemm } from "./gemm.ts";
 * const gpu = await Gpu.create();
 * const c = gpu.buffer(4 * 6, "c"); // C = A B with A = [[1, 2], [3, 4]], B = [[1, 0, 1], [0, 1, 1]]
 * const operands = `@group(0) @binding(0) var<storage, read_write> c: array<f32>;
 *   fn gemmRows() -> u32 { return 2u; } fn gemmCols() -> u32 { return 3u; }
 *   fn gemmDepth() -> u32 { return 2u; }
 *   fn loadA(m: u32, k: u32) -> f32 { return f32(m * 2u + k + 1u); }
 *   fn loadB(k: u32, n: u32) -> f32 { return select(0.0, 1.0, n == k || n == 2u); }
 *   fn storeC(m: u32, n: u32, v: f32) { c[m * 3u + n] = v; }`;
 * const launch = recordGemm(gpu, { key: "example", operands, bindings: ["read_write"],
 *   tile: GEMM_TILES.packed, calls: [{ label: "c", resources: [c], rows: 2, cols: 3, depth: 2 }] });
 * gpu.run(launch.dispatches);
 * console.log(await gpu.read(c)); // Float32Array [1, 2, 3, 3, 4, 7]
 * for (const b of launch.buffers) b.destroy();
 * gpu.destroy();
 * ```
 */
export function recordGemm(
  gpu: Gpu,
  args: {
    key: string;
    operands: string;
    bindings: readonly BindingKind[];
    tile: GemmTile;
    calls: readonly GemmCall[];
    gatherB?: Launch;
    vectorK?: boolean;
  },
): Launch {
  const { key, operands, bindings, tile, calls, gatherB, vectorK } = args;
  const gathered = gatherB !== undefined;
  if (gathered && tile.kind !== "textures") {
    throw new RangeError(`${key}: B is gathered from texels only with packed operands`);
  }
  const gemmKey = `${key}:${Object.values(tile)}`;
  const { precision } = gpu;
  const enable = enableWgsl(precision);
  if (tile.kind !== "textures") {
    const wgsl = enable + operands + gemmWgsl(tile, { precision, vectorK });
    const pipeline = gpu.pipeline(gemmKey, wgsl, bindings);
    return {
      dispatches: calls.map((c) =>
        gpu.dispatch(c.label, pipeline, c.resources, gemmWorkgroups(c.rows, c.cols, tile))
      ),
      buffers: [],
    };
  }
  const n = bindings.length;
  const pack = (operand: "A" | "B") =>
    gpu.pipeline(
      `${key}:pack${operand}`,
      enable + operands + gemmPackWgsl(operand, n, precision, vectorK),
      [
        ...bindings,
        "uniform",
        "storage_texture",
      ],
    );
  const packA = pack("A"), packB = gathered ? undefined : pack("B");
  const core = gemmWgsl(tile, { binding: n, gatheredB: gathered }); // packing rounded
  const gemm = gpu.pipeline(`${gemmKey}:${gathered}`, operands + core, [
    ...bindings,
    "uniform",
    "texture",
    "texture",
  ]);
  const { a, b, texels: capacity } = gemmScratch(gpu);
  const launch: Launch = {
    dispatches: [...gatherB?.dispatches ?? []],
    buffers: [...gatherB?.buffers ?? []],
  };
  for (const c of calls) {
    const steps = Math.ceil(c.depth / 4);
    if (steps > capacity) {
      throw new PackedTooLarge(`${c.label}: a depth of ${c.depth} is too deep to pack`);
    }
    // As many rows (columns) as the scratch holds, whole blocks where there are several chunks.
    const per = (count: number, block: number) => {
      const fit = Math.floor(capacity / steps);
      return count <= fit ? count : Math.max(1, fit - fit % block);
    };
    const rowsPer = per(c.rows, tile.tm), colsPer = per(c.cols, tile.tn);
    for (let c0 = 0; c0 < c.cols; c0 += colsPer) {
      for (let r0 = 0; r0 < c.rows; r0 += rowsPer) {
        const nr = Math.min(rowsPer, c.rows - r0), nc = Math.min(colsPer, c.cols - c0);
        const chunk = gpu.uniform([r0, nr, c0, nc], `${c.label} chunk`);
        launch.buffers.push(chunk);
        const label = `${c.label} rows ${r0}+${nr} columns ${c0}+${nc}`;
        const texels = (count: number) => Math.ceil(count * steps / 64);
        if (c0 === 0 || rowsPer < c.rows) { // A is packed once unless it takes several chunks
          launch.dispatches.push(
            gpu.dispatch(`${label} pack A`, packA, [...c.resources, chunk, a], texels(nr)),
          );
        }
        if (packB && r0 === 0) {
          launch.dispatches.push(
            gpu.dispatch(`${label} pack B`, packB, [...c.resources, chunk, b], texels(nc)),
          );
        }
        launch.dispatches.push(
          gpu.dispatch(label, gemm, [...c.resources, chunk, a, b], gemmWorkgroups(nr, nc, tile)),
        );
      }
    }
  }
  return launch;
}

// Per device: the two scratch textures packed operands are written to, made at first use.
const scratches = new WeakMap<Gpu, { a: GPUTextureView; b: GPUTextureView; texels: number }>();

/**
 * The device's scratch textures for packed A and B (allocated once, freed with the device) and
 * how many texels each holds: 4096 x 2048, or fewer rows where the limits the code plans for are
 * lowered (how tests make small GEMMs run in chunks). Texel i is at ({@linkcode PACKED_TEXEL_WGSL}'s
 * `packedTexel(i)`).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { gemmScratch } from "./gemm.ts";
 * const gpu = await Gpu.create();
 * console.log(gemmScratch(gpu).texels); // 8388608
 * gpu.destroy();
 * ```
 */
export function gemmScratch(gpu: Gpu): { a: GPUTextureView; b: GPUTextureView; texels: number } {
  let found = scratches.get(gpu);
  if (!found) {
    const height = Math.min(PACKED_HEIGHT, gpu.limits.maxTextureDimension2D);
    const view = (operand: string) =>
      gpu.scratchTexture(PACKED_WIDTH, height, `packed GEMM operand ${operand}`).createView();
    found = { a: view("A"), b: view("B"), texels: PACKED_WIDTH * height };
    scratches.set(gpu, found);
  }
  return found;
}

/** Thrown by {@linkcode recordGemm} for an operand too deep to pack into a scratch texture. */
class PackedTooLarge extends RangeError {}
