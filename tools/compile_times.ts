/**
 * Compile time per pipeline (not part of CI): every kernel a model's training step runs, in the
 * adapter's tilings, each pipeline's first dispatch alone less a replay of it. lavapipe compiles
 * a pipeline at its first dispatch; disable Mesa's shader cache to see a fresh machine's times:
 *
 *   MESA_SHADER_CACHE_DISABLE=true DENO_WEBGPU_BACKEND=vulkan \
 *     deno run -A tools/compile_times.ts [MODEL=alexnet-small] [BATCH=128] [LAYERS=all]
 *
 * Prints the pipelines slowest first, then their total.
 */
import { kernelCases } from "../bench/kernels.ts";
import { Gpu } from "../gpu/device.ts";
import type { Dispatch } from "../gpu/launch.ts";
import { MODELS } from "../layers/models.ts";

const [model = "alexnet-small", batch = "128", layers] = Deno.args;
const config = MODELS[model];
if (!config) throw new Error(`no model ${model}: ${Object.keys(MODELS).join(", ")}`);
const gpu = await Gpu.create();
const { cases, free } = kernelCases(gpu, config, Number(batch), {
  tiles: [undefined],
  layers: layers?.split(","),
});

/** Milliseconds `d` takes to run alone, waited for. */
async function runAlone(d: Dispatch): Promise<number> {
  const start = performance.now();
  gpu.run([d]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - start;
}

const rows: { ms: number; layer: string; key: string }[] = [];
const seen = new Set<string>();
for (const c of cases.filter((c) => c.variant !== "alone")) { // "alone": not in a step
  for (const d of c.launch.dispatches.filter((d) => !seen.has(d.pipeline.key))) {
    seen.add(d.pipeline.key);
    const first = await runAlone(d);
    rows.push({ ms: Math.max(0, first - await runAlone(d)), layer: c.layer, key: d.pipeline.key });
  }
}
free();
gpu.destroy();
rows.sort((a, b) => b.ms - a.ms);
for (const r of rows) {
  console.log(`${r.ms.toFixed(0).padStart(7)} ms  ${r.layer.padEnd(6)} ${r.key}`);
}
const total = rows.reduce((sum, r) => sum + r.ms, 0);
console.log(
  `${(total / 1000).toFixed(1)} s over ${rows.length} pipelines (${model}, batch ${batch})`,
);
