/**
 * The GEMM core's tilings: what a tiling is, the ones the kernels pick from, the adapter-dependent
 * default choice, and how many workgroups a launch needs. The tuned choice is in `tuning.ts`.
 *
 * @module
 */

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
 *   element costs a bounds-checked scalar load per invocation: two to three times faster there;
 * - "mirrored": register blocks whose operands read four elements a load (a dense layer's) from
 *   textures that hold a copy of their buffers, byte for byte (`mirror.ts`): a texture's reads at
 *   the price of a memory copy, with no pack kernel. Other GEMMs read in place, as "registers".
 */
export type GemmTile =
  | { kind: "workgroup"; bm: number; bn: number; bk: number; tm: number; tn: number }
  | { kind: "registers" | "textures" | "mirrored"; tm: number; tn: number; threads: number };

/**
 * Which tilings suit an adapter: a GPU (workgroup tiles), Mesa's llvmpipe (large register blocks
 * and packed operands) or SwiftShader, Chromium's CPU adapter, whose compiler takes minutes over a
 * 16 x 16 block and whose GPU process is killed meanwhile (blocks four columns wide compile in a
 * second there).
 */
export type TileFamily = "gpu" | "llvmpipe" | "swiftshader";

/**
 * The tilings {@linkcode chooseTile} picks from: each is checked by the same tests.
 *
 * @example
 * ```ts
 * import { GEMM_TILES } from "./tiles.ts";
 * console.log(GEMM_TILES.packed.kind); // "textures"
 * ```
 */
export const GEMM_TILES = {
  wide: { kind: "workgroup", bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 },
  tall: { kind: "workgroup", bm: 128, bn: 16, bk: 16, tm: 4, tn: 2 },
  flat: { kind: "workgroup", bm: 16, bn: 128, bk: 16, tm: 2, tn: 4 },
  blocks: { kind: "registers", tm: 16, tn: 16, threads: 64 },
  narrowBlocks: { kind: "registers", tm: 16, tn: 8, threads: 64 },
  thinBlocks: { kind: "registers", tm: 16, tn: 4, threads: 64 },
  packed: { kind: "textures", tm: 16, tn: 16, threads: 64 },
  tallPacked: { kind: "textures", tm: 32, tn: 16, threads: 64 },
  thinPacked: { kind: "textures", tm: 16, tn: 4, threads: 64 },
  mirrored: { kind: "mirrored", tm: 16, tn: 16, threads: 64 },
  thinMirrored: { kind: "mirrored", tm: 16, tn: 4, threads: 64 },
} as const satisfies Record<string, GemmTile>;

/**
 * The tilings the autotuner times, by family of adapter. Larger register blocks are left out on
 * llvmpipe (their unrolled kernels take minutes to compile) and all but four-column ones on
 * SwiftShader (see docs/performance.md).
 *
 * @example
 * ```ts
 * import { GEMM_CANDIDATES } from "./tiles.ts";
 * console.log(GEMM_CANDIDATES.llvmpipe.length); // 7
 * ```
 */
export const GEMM_CANDIDATES: Readonly<Record<TileFamily, readonly GemmTile[]>> = {
  llvmpipe: [
    GEMM_TILES.packed,
    GEMM_TILES.tallPacked,
    GEMM_TILES.blocks,
    GEMM_TILES.narrowBlocks,
    GEMM_TILES.thinBlocks,
    GEMM_TILES.mirrored,
    GEMM_TILES.thinMirrored,
  ],
  swiftshader: [GEMM_TILES.thinPacked, GEMM_TILES.thinBlocks],
  gpu: [GEMM_TILES.wide, GEMM_TILES.tall, GEMM_TILES.flat],
};

/** The device limits a tiling must fit. */
export type TileLimits = Pick<
  GPUSupportedLimits,
  | "maxComputeInvocationsPerWorkgroup"
  | "maxComputeWorkgroupSizeX"
  | "maxComputeWorkgroupStorageSize"
>;

/**
 * Whether `tile`'s workgroup fits `limits`: its invocations, its width and the workgroup memory
 * its staged tiles take.
 *
 * @example
 * ```ts
 * import { fitsLimits, GEMM_TILES } from "./tiles.ts";
 * const limits = {
 *   maxComputeInvocationsPerWorkgroup: 128,
 *   maxComputeWorkgroupSizeX: 128,
 *   maxComputeWorkgroupStorageSize: 16384,
 * };
 * console.log(fitsLimits(GEMM_TILES.wide, limits)); // false: 256 invocations
 * console.log(fitsLimits(GEMM_TILES.blocks, limits)); // true: 64
 * ```
 */
export function fitsLimits(tile: GemmTile, limits: TileLimits): boolean {
  const threads = tile.kind === "workgroup"
    ? (tile.bm / tile.tm) * (tile.bn / tile.tn)
    : tile.threads;
  const shared = tile.kind === "workgroup" ? (tile.bm + tile.bn) * tile.bk * 4 : 0;
  return threads <= limits.maxComputeInvocationsPerWorkgroup &&
    threads <= limits.maxComputeWorkgroupSizeX && shared <= limits.maxComputeWorkgroupStorageSize;
}

/**
 * The candidates of `family` that fit `limits`; register blocks where none does (64 invocations
 * and no workgroup memory fit every WebGPU device).
 *
 * @example
 * ```ts
 * import { candidateTiles } from "./tiles.ts";
 * const limits = {
 *   maxComputeInvocationsPerWorkgroup: 128,
 *   maxComputeWorkgroupSizeX: 128,
 *   maxComputeWorkgroupStorageSize: 16384,
 * };
 * console.log(candidateTiles("gpu", limits).map((t) => t.kind)); // ["registers"]
 * ```
 */
export function candidateTiles(family: TileFamily, limits: TileLimits): readonly GemmTile[] {
  const fitting = GEMM_CANDIDATES[family].filter((t) => fitsLimits(t, limits));
  return fitting.length > 0 ? fitting : [GEMM_TILES.thinBlocks];
}

/**
 * Picks the tiling for `rows` x `cols` x `depth` on an adapter of `family` whose workgroups are
 * bounded by `limits` (a pick that does not fit gives way to the family's first candidate that
 * does). On CPU adapters: packed operands for GEMMs of at least 2^25 multiply-adds that reuse each
 * packed element at least 24 times (32-row blocks where the rows are a multiple of 32, else 16),
 * register blocks below (packing pays for its two passes and its kernels' compile time only
 * there); on llvmpipe, mirrored operands where the operands load four elements at a time
 * (`vectors`: a dense layer's), four columns a block for eight columns or fewer (small batches),
 * and narrow register blocks for eight columns or fewer and thin ones for four or fewer; on
 * SwiftShader, four columns always, and register blocks for vectors (nothing to pack). On GPUs, wide workgroup
 * tiles by default, tall narrow ones when there are few columns (dense layers at small batch,
 * where the columns are the batch) and flat ones when there are few rows.
 *
 * @example
 * ```ts
 * import { chooseTile } from "./tiles.ts";
 * console.log(chooseTile(96, 3025, 363, "gpu").kind); // "workgroup"
 * console.log(chooseTile(96, 3025, 363, "llvmpipe").kind); // "textures"
 * console.log(chooseTile(4096, 32, 9216, "llvmpipe", true).kind); // "mirrored"
 * ```
 */
export function chooseTile(
  rows: number,
  cols: number,
  depth: number,
  family: TileFamily,
  vectors = false,
  limits?: TileLimits,
): GemmTile {
  const pick = preferredTile(rows, cols, depth, family, vectors);
  return !limits || fitsLimits(pick, limits) ? pick : candidateTiles(family, limits)[0];
}

/** {@linkcode chooseTile}'s pick before the limits. */
function preferredTile(
  rows: number,
  cols: number,
  depth: number,
  family: TileFamily,
  vectors: boolean,
): GemmTile {
  // Packing pays on large GEMMs whose blocks reuse each packed element (about rows * cols /
  // (rows + cols) multiply-adds apiece): not on alexnet-small conv1's 64 x 26 weight gradient.
  const large = rows * cols * depth >= 2 ** 25 && rows * cols >= 24 * (rows + cols) && !vectors;
  if (family === "swiftshader") return large ? GEMM_TILES.thinPacked : GEMM_TILES.thinBlocks;
  if (family === "llvmpipe") {
    if (vectors) return cols <= 8 ? GEMM_TILES.thinMirrored : GEMM_TILES.mirrored;
    if (cols <= 8) return cols <= 4 ? GEMM_TILES.thinBlocks : GEMM_TILES.narrowBlocks;
    // Packed blocks of 32 rows where the rows are whole blocks of them (x1.1-1.2 over 16 rows).
    if (large) return rows % 32 === 0 ? GEMM_TILES.tallPacked : GEMM_TILES.packed;
    return GEMM_TILES.blocks;
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
 * import { gemmWorkgroups } from "./tiles.ts";
 * const tile = { kind: "workgroup", bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 } as const;
 * console.log(gemmWorkgroups(100, 100, tile)); // 4
 * ```
 */
export function gemmWorkgroups(rows: number, cols: number, tile: GemmTile): number {
  if (tile.kind !== "workgroup") return Math.ceil(registerBlocks(rows, cols, tile) / tile.threads);
  return Math.ceil(rows / tile.bm) * Math.ceil(cols / tile.bn);
}

/**
 * The TM x TN blocks (one an invocation) of a `rows` x `cols` launch with register blocks or
 * packed operands.
 *
 * @example
 * ```ts
 * import { registerBlocks } from "./tiles.ts";
 * console.log(registerBlocks(64, 26, { tm: 16, tn: 16 })); // 8
 * ```
 */
export function registerBlocks(rows: number, cols: number, tile: { tm: number; tn: number }) {
  return Math.ceil(rows / tile.tm) * Math.ceil(cols / tile.tn);
}

/**
 * Whether a value (read from a file) is a tiling the generator accepts.
 *
 * @example
 * ```ts
 * import { isTile } from "./tiles.ts";
 * console.log(isTile({ kind: "registers", tm: 0, tn: 4, threads: 64 })); // false
 * ```
 */
export function isTile(t: unknown): t is GemmTile {
  if (typeof t !== "object" || t === null) return false;
  const v = t as Record<string, unknown>;
  const whole = (...keys: string[]) =>
    keys.every((k) => Number.isInteger(v[k]) && (v[k] as number) > 0);
  if (v.kind === "registers" || v.kind === "textures" || v.kind === "mirrored") {
    return whole("tm", "tn", "threads");
  }
  return v.kind === "workgroup" && whole("bm", "bn", "bk", "tm", "tn") &&
    (v.bm as number) % (v.tm as number) === 0 && (v.bn as number) % (v.tn as number) === 0;
}
