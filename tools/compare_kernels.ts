/**
 * Kernels of several checkouts of this project (e.g. git worktrees) timed side by side in one
 * process, alternating rounds, each checkout on its own device: on a noisy host, side by side beats
 * runs minutes apart. Prints each kernel's fastest round per checkout and their sum, less the
 * variants "alone" (an LRN's own kernel, which a training step does not run: the pooling after
 * it normalises).
 *
 *   git worktree add /tmp/before COMMIT
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/compare_kernels.ts --model alexnet --batch 32 \
 *     --kernel lrn_forward,lrn_backward,maxpool_forward,maxpool_backward,relu_backward \
 *     [--rounds 6] [--repeats 3] /tmp/before .
 *
 * Each checkout's bench/kernels.ts must export `kernelCases` and bench/clock.ts `timeDispatches`.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values, positionals: trees } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    model: { type: "string", default: "alexnet" },
    batch: { type: "string", default: "32" },
    kernel: { type: "string" },
    layer: { type: "string" },
    rounds: { type: "string", default: "6" },
    repeats: { type: "string", default: "3" },
  },
});
if (trees.length === 0) {
  console.error("usage: tools/compare_kernels.ts [--model M] [--batch N] [--kernel K,...] TREE...");
  Deno.exit(2);
}

interface Side {
  tree: string;
  gpu: { destroy(): void };
  cases: { layer: string; kernel: string; variant: string; launch: { dispatches: unknown[] } }[];
  time: (dispatches: unknown[]) => Promise<number>;
  free: () => void;
  ms: Map<string, number>;
}

const open = async (tree: string): Promise<Side> => {
  const root = `file://${await Deno.realPath(tree)}/`;
  const { Gpu } = await import(new URL("gpu/device.ts", root).href);
  const { MODELS } = await import(new URL("layers/models.ts", root).href);
  const { kernelCases } = await import(new URL("bench/kernels.ts", root).href);
  const { timeDispatches } = await import(new URL("bench/clock.ts", root).href);
  const gpu = await Gpu.create();
  const filter = {
    kernels: values.kernel?.split(","),
    layers: values.layer?.split(","),
    tiles: [undefined], // the adapter's pick only
  };
  const { cases, free } = kernelCases(gpu, MODELS[values.model!], Number(values.batch), filter);
  const repeats = Number(values.repeats);
  const time = async (d: unknown[]) => (await timeDispatches(gpu, d, repeats)).ms;
  return { tree, gpu, cases, time, free, ms: new Map() };
};

const sides: Side[] = [];
for (const tree of trees) sides.push(await open(tree));
for (let round = 0; round < Number(values.rounds); round++) {
  for (const side of round % 2 ? [...sides].reverse() : sides) {
    for (const c of side.cases) {
      const key = `${c.layer} ${c.kernel} ${c.variant}`.trim();
      const ms = await side.time(c.launch.dispatches);
      side.ms.set(key, Math.min(ms, side.ms.get(key) ?? Infinity));
    }
  }
}
console.log(
  `${values.model} at batch ${values.batch}: the fastest of ${values.rounds} alternating rounds, ms`,
);
const keys = [...new Set(sides.flatMap((s) => [...s.ms.keys()]))];
console.log(["kernel".padEnd(36), ...sides.map((s) => s.tree.padStart(14))].join(" "));
for (const key of keys) {
  const cells = sides.map((s) => (s.ms.get(key)?.toFixed(1) ?? "-").padStart(14));
  console.log([key.padEnd(36), ...cells].join(" "));
}
const sums = sides.map((s) =>
  [...s.ms].reduce((sum, [key, ms]) => key.endsWith(" alone") ? sum : sum + ms, 0)
);
console.log(
  ["sum (less alone)".padEnd(36), ...sums.map((v) => v.toFixed(1).padStart(14))].join(" "),
);
console.log(
  `ratio to the first: ${sums.map((v) => `x${(v / sums[0]).toFixed(2)}`).join(" ")}`,
);
for (const side of sides) {
  side.free();
  side.gpu.destroy();
}
