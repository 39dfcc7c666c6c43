/**
 * The benchmarks' clocks: a replayed pass of launches, and a call repeated.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { Dispatch } from "../gpu/launch.ts";
import { timePass } from "../gpu/timing.ts";

/**
 * Seconds per call of `step` over `repeats` calls, after one untimed call that compiles.
 *
 * @example
 * ```ts
 * import { secondsPerCall } from "./clock.ts";
 * console.log(await secondsPerCall(() => Promise.resolve(), 3) < 1); // true
 * ```
 */
export async function secondsPerCall(
  step: () => Promise<unknown>,
  repeats: number,
): Promise<number> {
  await step(); // compile
  const started = performance.now();
  for (let i = 0; i < repeats; i++) await step();
  return (performance.now() - started) / 1000 / repeats;
}

/**
 * Milliseconds per replay of `dispatches` (replayed `repeats` times in one pass: GPU time where
 * the adapter's timestamps can be trusted, else wall time with one wait), and the first run's
 * extra, which is compilation.
 *
 * @example
 * ```ts ignore
 * const { ms, compileMs } = await timeDispatches(gpu, launch.dispatches, 3);
 * ```
 */
export async function timeDispatches(
  gpu: Gpu,
  dispatches: Dispatch[],
  repeats: number,
): Promise<{ ms: number; compileMs: number }> {
  if (dispatches.length === 0) return { ms: 0, compileMs: 0 };
  let started = performance.now();
  gpu.run(dispatches); // compiles what is new
  await gpu.device.queue.onSubmittedWorkDone();
  const first = performance.now() - started;
  const all = Array.from({ length: repeats }, () => dispatches).flat();
  const gpuMs = await timePass(gpu, all);
  let ms: number;
  if (gpuMs !== null) {
    ms = gpuMs / repeats;
  } else {
    started = performance.now();
    gpu.run(all);
    await gpu.device.queue.onSubmittedWorkDone();
    ms = (performance.now() - started) / repeats;
  }
  return { ms, compileMs: Math.max(0, first - ms) };
}
