/**
 * GPU time of a compute pass, from timestamp queries, where the adapter has them and they can be
 * trusted; callers use the wall clock otherwise.
 *
 * @module
 */
import type { Gpu } from "./device.ts";
import type { Dispatch } from "./launch.ts";

/**
 * Whether {@linkcode timePass} measures GPU time on `gpu`: it has timestamp queries and is not a
 * CPU adapter (lavapipe's timestamps go wrong once a pass has read textures: a later pass of
 * 450 ms read 0.1 ms; there the wall clock measures the same work).
 *
 * @example
 * ```ts
 * import { Gpu } from "./device.ts";
 * import { hasTimestamps } from "./timing.ts";
 * const gpu = await Gpu.create();
 * console.log(hasTimestamps(gpu)); // false on a CPU adapter
 * gpu.destroy();
 * ```
 */
export function hasTimestamps(gpu: Gpu): boolean {
  return gpu.device.features.has("timestamp-query") && !gpu.cpu;
}

/**
 * GPU milliseconds of one compute pass of `dispatches`, from timestamp queries at its start and
 * end; null where {@linkcode hasTimestamps} says no.
 *
 * @example
 * ```ts
 * import { Gpu } from "./device.ts";
 * import { timePass } from "./timing.ts";
 * const gpu = await Gpu.create();
 * const ms = await timePass(gpu, []);
 * console.log(ms === null || ms >= 0); // true
 * gpu.destroy();
 * ```
 */
export async function timePass(gpu: Gpu, dispatches: readonly Dispatch[]): Promise<number | null> {
  if (!hasTimestamps(gpu)) return null;
  const querySet = gpu.device.createQuerySet({ type: "timestamp", count: 2 });
  const resolved = gpu.buffer(
    16,
    "timestamps",
    GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  );
  try {
    gpu.run(
      dispatches,
      (encoder) => encoder.resolveQuerySet(querySet, 0, 2, resolved, 0),
      { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } },
    );
    const [start, end] = new BigUint64Array((await gpu.read(resolved)).buffer);
    return Number(end - start) / 1e6; // nanoseconds
  } finally {
    querySet.destroy();
    resolved.destroy();
  }
}
