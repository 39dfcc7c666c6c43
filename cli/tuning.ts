/**
 * The autotuner's cache on disk: `--tune` measures the GEMM tilings of a network on this adapter
 * and keeps the fastest in `$XDG_CACHE_HOME/alexnet-webgpu/gemm-tuning.json` (else
 * `~/.cache/...`), by adapter; later runs read it before building their network.
 *
 * @module
 */
import { writeFileAtomic } from "../io/files.ts";
import { Tuning, type TuningTable } from "../kernels/gemm/tuning.ts";
import type { Network } from "../layers/network.ts";

/**
 * Where the autotuner's choices are kept between runs.
 *
 * @example
 * ```ts
 * import { defaultTuningPath } from "./tuning.ts";
 * console.log(defaultTuningPath().endsWith("alexnet-webgpu/gemm-tuning.json")); // true
 * ```
 */
export function defaultTuningPath(): string {
  const home = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`;
  return `${home}/alexnet-webgpu/gemm-tuning.json`;
}

/**
 * The tuning saved at `path`: every adapter's well-formed choices. A missing or unreadable file
 * holds none.
 *
 * @example
 * ```ts
 * import { readTuning } from "./tuning.ts";
 * console.log((await readTuning("/nonexistent/gemm-tuning.json")).toJSON()); // {}
 * ```
 */
export async function readTuning(path: string): Promise<Tuning> {
  try {
    return new Tuning(JSON.parse(await Deno.readTextFile(path)) as TuningTable);
  } catch {
    return new Tuning();
  }
}

/**
 * Saves `tuning` to `path` (atomically), keeping the choices of adapters it does not hold.
 *
 * @example
 * ```ts
 * import { Tuning } from "../kernels/gemm/tuning.ts";
 * import { writeTuning } from "./tuning.ts";
 * await writeTuning(`${await Deno.makeTempDir()}/cache/gemm-tuning.json`, new Tuning());
 * ```
 */
export async function writeTuning(path: string, tuning: Tuning): Promise<void> {
  const saved = (await readTuning(path)).toJSON();
  const merged = { ...saved };
  for (const [adapter, choices] of Object.entries(tuning.toJSON())) {
    merged[adapter] = { ...saved[adapter], ...choices };
  }
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || ".", { recursive: true });
  await writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(merged, null, 1) + "\n"));
}

/**
 * Reports the saved tilings `net` uses; with `tune`, first measures those not saved yet at
 * `batch`, saves them to `path`, and reports each layer's choices on stderr.
 *
 * @example
 * ```ts ignore
 * const tuning = await readTuning(path);
 * const net = await createAlexNet({ model, tuning });
 * await applyTuning(net, path, 128, true);
 * ```
 */
export async function applyTuning(
  net: Network,
  path: string,
  batch: number,
  tune: boolean,
): Promise<void> {
  const saved = net.tuningKeys.reduce((n, a) => n + Object.keys(net.tuning.choices(a)).length, 0);
  if (!tune) {
    if (saved > 0) console.error(`using ${saved} GEMM tilings tuned for this adapter (${path})`);
    return;
  }
  console.error(`tuning the GEMM tilings of ${net.config.name} at batch ${batch}...`);
  const started = performance.now();
  const tuned = await net.tune(batch);
  for (const layer of new Set(tuned.map((t) => t.layer))) {
    const tiles = tuned.filter((t) => t.layer === layer).map((t) =>
      `${t.tile.kind} ` +
      (t.tile.kind === "workgroup" ? `${t.tile.bm}x${t.tile.bn}` : `${t.tile.tm}x${t.tile.tn}`) +
      (t.ms === null ? " (saved)" : "")
    );
    console.error(
      `  ${layer}: forward ${tiles[0]}, input gradient ${tiles[1]}, weight gradient ${tiles[2]}`,
    );
  }
  await writeTuning(path, net.tuning);
  console.error(
    `tuned in ${((performance.now() - started) / 1000).toFixed(0)} s; saved to ${path}`,
  );
}
