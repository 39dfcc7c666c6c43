/**
 * The autotuner and its choices: a {@linkcode Tuning} holds, by adapter, the tiling measured
 * fastest for each GEMM problem; a network is given one (its own by default) and every kernel it
 * records asks it first. Saving a tuning to disk is the command line's business (`cli/tuning.ts`).
 *
 * @module
 */
import type { Gpu } from "../../gpu/device.ts";
import type { Launch } from "../../gpu/launch.ts";
import { timePass } from "../../gpu/timing.ts";
import { gemmScratch, PackedTooLarge } from "./record.ts";
import {
  candidateTiles,
  chooseTile,
  fitsLimits,
  GEMM_TILES,
  type GemmTile,
  isTile,
} from "./tiles.ts";

/** Tilings by adapter key, then by problem: a tuning file's contents. */
export type TuningTable = Record<string, Record<string, GemmTile>>;

/** One GEMM problem's tuning: the tiling measured fastest and its milliseconds. */
export interface TunedGemm {
  /** The kernel, its geometry and batch. */
  problem: string;
  /** The fastest tiling. */
  tile: GemmTile;
  /** Its time per launch, or null where the tuning had a choice already. */
  ms: number | null;
}

/**
 * The key of an adapter's choices: its description, WebGPU backend and precision (the same
 * adapter tunes differently through another backend, or multiplying in f16).
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { adapterKey } from "./tuning.ts";
 * const gpu = await Gpu.create();
 * console.log(adapterKey(gpu)); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (vulkan)"
 * gpu.destroy();
 * ```
 */
export function adapterKey(gpu: Gpu): string {
  return `${gpu.description} (${gpu.backend})${gpu.precision === "f16" ? " f16" : ""}`;
}

/**
 * Autotuned tilings by adapter and problem. A tuning read from a file keeps only well-formed
 * tilings; one of a kind the adapter does not use (workgroup tiles on a CPU adapter) is ignored.
 *
 * @example
 * ```ts
 * import { GEMM_TILES } from "./tiles.ts";
 * import { Tuning } from "./tuning.ts";
 * const tuning = new Tuning({ "my adapter (vulkan)": { "conv2d_forward:1": GEMM_TILES.blocks } });
 * console.log(tuning.choices("my adapter (vulkan)")); // { "conv2d_forward:1": { kind: "registers", ... } }
 * ```
 */
export class Tuning {
  readonly #table = new Map<string, Map<string, GemmTile>>();

  /** A tuning holding `table`'s well-formed choices (none by default). */
  constructor(table: TuningTable = {}) {
    for (const [adapter, problems] of Object.entries(table)) {
      if (typeof problems !== "object" || problems === null) continue;
      for (const [problem, tile] of Object.entries(problems)) {
        if (isTile(tile)) this.set(adapter, problem, tile);
      }
    }
  }

  /**
   * The tiling chosen for `problem` on `adapter`, if any.
   *
   * @example
   * ```ts
   * import { Tuning } from "./tuning.ts";
   * console.log(new Tuning().get("my adapter", "p")); // undefined
   * ```
   */
  get(adapter: string, problem: string): GemmTile | undefined {
    return this.#table.get(adapter)?.get(problem);
  }

  /**
   * Records `tile` as the choice for `problem` on `adapter`.
   *
   * @example
   * ```ts
   * import { GEMM_TILES } from "./tiles.ts";
   * import { Tuning } from "./tuning.ts";
   * const tuning = new Tuning();
   * tuning.set("my adapter", "p", GEMM_TILES.blocks);
   * console.log(tuning.get("my adapter", "p")?.kind); // "registers"
   * ```
   */
  set(adapter: string, problem: string, tile: GemmTile): void {
    let problems = this.#table.get(adapter);
    if (!problems) this.#table.set(adapter, problems = new Map());
    problems.set(problem, tile);
  }

  /**
   * `adapter`'s choices, by problem.
   *
   * @example
   * ```ts
   * import { Tuning } from "./tuning.ts";
   * console.log(Object.keys(new Tuning().choices("my adapter")).length); // 0
   * ```
   */
  choices(adapter: string): Record<string, GemmTile> {
    return Object.fromEntries(this.#table.get(adapter) ?? []);
  }

  /**
   * Every adapter's choices: what a tuning file holds.
   *
   * @example
   * ```ts
   * import { Tuning } from "./tuning.ts";
   * console.log(JSON.stringify(new Tuning().toJSON())); // "{}"
   * ```
   */
  toJSON(): TuningTable {
    return Object.fromEntries([...this.#table.keys()].map((a) => [a, this.choices(a)]));
  }
}

/**
 * The tiling for a GEMM `problem` of `rows` x `cols` x `depth` on `gpu`: `tuning`'s choice where it
 * has one of a kind this adapter uses, otherwise {@linkcode chooseTile}'s; register blocks instead
 * of packed operands deeper than a scratch texture holds. `vectors`: the operands load four
 * elements at a time (see `GemmVariant`).
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { tileFor } from "./tuning.ts";
 * const gpu = await Gpu.create();
 * console.log(tileFor(gpu, undefined, "never tuned", 96, 3025, 363).kind); // "textures" on a CPU adapter
 * gpu.destroy();
 * ```
 */
export function tileFor(
  gpu: Gpu,
  tuning: Tuning | undefined,
  problem: string,
  rows: number,
  cols: number,
  depth: number,
  vectors = false,
): GemmTile {
  const tile = tunedTile(gpu, tuning, problem) ??
    chooseTile(rows, cols, depth, gpu.family, vectors, gpu.limits);
  if (tile.kind !== "textures" || Math.ceil(depth / 4) <= gemmScratch(gpu).texels) return tile;
  return tile.tn > 4 ? GEMM_TILES.blocks : GEMM_TILES.thinBlocks; // too deep to pack
}

/** `tuning`'s choice for `problem` on `gpu`, where it is of a kind this adapter uses and fits. */
function tunedTile(gpu: Gpu, tuning: Tuning | undefined, problem: string): GemmTile | undefined {
  const tile = tuning?.get(adapterKey(gpu), problem);
  const kinds = new Set(candidateTiles(gpu.family, gpu.limits).map((t) => t.kind));
  return tile && kinds.has(tile.kind) && fitsLimits(tile, gpu.limits) ? tile : undefined;
}

/**
 * Times every candidate tiling of one GEMM problem (GPU time where the adapter has timestamp
 * queries; not mirrored operands where nothing is mirrored) and records the fastest in `tuning`.
 * `build` records the launch with a given tiling; its `problem` names what is tuned. A problem `tuning` already has a choice for is not measured.
 *
 * @example
 * ```ts ignore
 * const best = await autotuneGemm(gpu, tuning, (tile) => conv2dForward(gpu, { ...args, tile }));
 * ```
 */
export async function autotuneGemm(
  gpu: Gpu,
  tuning: Tuning,
  build: (tile: GemmTile) => Launch & { problem: string },
): Promise<TunedGemm> {
  let best: TunedGemm | undefined;
  for (const tile of candidateTiles(gpu.family, gpu.limits)) {
    let launch;
    try {
      launch = build(tile);
    } catch (e) {
      if (e instanceof PackedTooLarge) continue; // this shape cannot pack: not a candidate
      throw e;
    }
    try {
      const known = tunedTile(gpu, tuning, launch.problem);
      if (known) return { problem: launch.problem, tile: known, ms: null };
      // Mirroring nothing, the launch is the register blocks': timed as those.
      if (tile.kind === "mirrored" && !launch.dispatches.some((d) => d.copies)) continue;
      const ms = await timeLaunch(gpu, launch);
      if (!best || ms < best.ms!) best = { problem: launch.problem, tile, ms };
    } finally {
      for (const b of launch.buffers) b.destroy();
    }
  }
  tuning.set(adapterKey(gpu), best!.problem, best!.tile);
  return best!;
}

/** Milliseconds of one run of `launch` after a run that compiles it. */
async function timeLaunch(gpu: Gpu, launch: Launch): Promise<number> {
  gpu.run(launch.dispatches); // compile and warm up
  await gpu.device.queue.onSubmittedWorkDone();
  const ms = await timePass(gpu, launch.dispatches);
  if (ms !== null) return ms;
  const started = performance.now();
  gpu.run(launch.dispatches);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - started;
}
