// On a machine with a real GPU (run by tools/gpu_check.sh): the kernel reference tests, then the
// bench of both models, printing the adapter, every figure, and the best layer's and the ceiling's
// fraction of that GPU's fp32 peak. Figures for docs/performance.md; never part of `deno task test`.
import type { BenchResult } from "../bench/bench.ts";

/** fp32 peaks (TFLOP/s, dense, no tensor cores, boost clock) of GPUs by name, from vendor sheets. */
const FP32_PEAK_TFLOPS: [RegExp, number][] = [
  [/H200|H100.*(SXM|HBM3)/i, 67],
  [/H100/i, 51],
  [/A100/i, 19.5],
  [/L40S/i, 91.6],
  [/L4\b/i, 30.3],
  [/RTX 4090/i, 82.6],
  [/T4\b/i, 8.1],
  [/V100/i, 15.7],
];

/** Runs a command, streaming its output; throws when it fails. */
async function run(args: string[], env: Record<string, string> = {}) {
  console.log(`$ ${args.join(" ")}`);
  const { code } = await new Deno.Command(args[0], { args: args.slice(1), env }).spawn().status;
  if (code !== 0) throw new Error(`${args.join(" ")} exited with ${code}`);
}

const started = performance.now();
const deno = Deno.execPath();
const kernels = ["conv2d_test.ts", "elementwise_test.ts", "gemm_test.ts"]
  .map((f) => `tests/kernels/${f}`);
await run([deno, "test", "-A", "--parallel", ...kernels]);
const dir = await Deno.makeTempDir();
for (const model of ["alexnet", "alexnet-small"]) {
  // --tune: the GPU's tilings come from the autotuner, not from defaults chosen on CPUs.
  const json = `${dir}/${model}.json`;
  await run([deno, "run", "-A", "main.ts", "bench", "--model", model, "--tune", "--json", json]);
  const r: BenchResult = JSON.parse(await Deno.readTextFile(json));
  const peak = FP32_PEAK_TFLOPS.find(([name]) => name.test(r.setup.adapter))?.[1];
  const rates = r.layers.flatMap((l) => [l.forwardGflops ?? 0, l.backwardGflops ?? 0]);
  const percent = (gflops: number) => `${(gflops / peak! / 10).toFixed(1)}%`;
  console.log(
    peak === undefined
      ? `fp32 peak of "${r.setup.adapter}" unknown: add it to tools/gpu_check.ts`
      : `${model} of the fp32 peak (${peak} TFLOP/s): ceiling ${percent(r.ceiling.gflops)}, ` +
        `best layer ${percent(Math.max(...rates))}`,
  );
}
await Deno.remove(dir, { recursive: true });
console.log(`gpu_check: ${((performance.now() - started) / 1000).toFixed(0)} s`);
