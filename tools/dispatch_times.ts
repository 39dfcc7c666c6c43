/**
 * Each dispatch of one kernel's launch timed alone (packing, multiply, split sums, ...), for a
 * layer of a model in one tiling: where a GEMM's time goes.
 *
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/dispatch_times.ts LAYER KERNEL [TILE] [BATCH]
 *     [MODEL]
 *
 * e.g. `fc6 conv2d_forward tallPacked 32 alexnet`; TILE names one of GEMM_TILES (default: the
 * adapter's pick).
 *
 * @module
 */
import { kernelCases } from "../bench/kernels.ts";
import { Gpu } from "../gpu/device.ts";
import { GEMM_TILES } from "../kernels/gemm/tiles.ts";
import { MODELS } from "../layers/models.ts";

const [layer, kernel, tile, batch = "32", model = "alexnet"] = Deno.args;
if (!layer || !kernel) {
  console.error("usage: tools/dispatch_times.ts LAYER KERNEL [TILE] [BATCH] [MODEL]");
  Deno.exit(2);
}
const gpu = await Gpu.create();
const tiles = [tile ? GEMM_TILES[tile as keyof typeof GEMM_TILES] : undefined];
const { cases, free } = kernelCases(gpu, MODELS[model], Number(batch), {
  layers: [layer],
  kernels: [kernel],
  tiles,
});
for (const c of cases) {
  for (const d of c.launch.dispatches) gpu.run([d]); // compile, and what later dispatches read
  await gpu.device.queue.onSubmittedWorkDone();
  for (const d of c.launch.dispatches) {
    const started = performance.now();
    gpu.run([d, d]);
    await gpu.device.queue.onSubmittedWorkDone();
    console.log(`${((performance.now() - started) / 2).toFixed(1).padStart(8)} ms  ${d.label}`);
  }
}
free();
gpu.destroy();
