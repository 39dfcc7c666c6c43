/**
 * Two checkouts of this project timed side by side in one process, alternating, so that the
 * host's drift falls on both alike: inference and training images/s of a model at a batch.
 *
 *   git worktree add /tmp/before COMMIT
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/compare.ts /tmp/before . [MODEL] [BATCH] [ROUNDS]
 *
 * Each checkout's `mod.ts` must export `createAlexNet` with `forward` and `trainStep`.
 */
const [before, after, model = "alexnet-small", batch = "32", rounds = "3"] = Deno.args;
if (!before || !after) {
  console.error("usage: tools/compare.ts BEFORE_DIR AFTER_DIR [MODEL] [BATCH] [ROUNDS]");
  Deno.exit(2);
}
const n = Number(batch);

interface Net {
  config: { input: readonly number[]; classes: number };
  forward(input: Float32Array, batch: number): Promise<Float32Array>;
  trainStep(input: Float32Array, labels: Int32Array): Promise<unknown>;
  destroy(): void | Promise<void>;
}

const load = async (dir: string) => {
  const url = new URL("mod.ts", `file://${await Deno.realPath(dir)}/`).href;
  const mod = await import(url);
  const net: Net = await mod.createAlexNet({ model, init: "he", seed: 1 });
  const size = net.config.input.reduce((a, b) => a * b, 1);
  const input = Float32Array.from({ length: n * size }, (_, i) => Math.sin(i * 12.9898) * 0.5);
  const labels = Int32Array.from({ length: n }, (_, i) => i % net.config.classes);
  await net.forward(input, n); // compile
  await net.trainStep(input, labels);
  return { dir, net, input, labels, inference: [] as number[], training: [] as number[] };
};

const sides = [await load(before), await load(after)];
const rate = async (work: () => Promise<unknown>) => {
  const started = performance.now();
  await work();
  return n / ((performance.now() - started) / 1000);
};
for (let r = 0; r < Number(rounds); r++) {
  for (const s of r % 2 === 0 ? sides : [...sides].reverse()) {
    s.inference.push(await rate(() => s.net.forward(s.input, n)));
    s.training.push(await rate(() => s.net.trainStep(s.input, s.labels)));
  }
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
console.log(`${model} at batch ${n}, ${rounds} alternating rounds, median images/s:`);
for (const s of sides) {
  console.log(
    `  ${s.dir}: inference ${median(s.inference).toFixed(2)}, training ${
      median(s.training).toFixed(2)
    }`,
  );
}
const [a, b] = sides;
console.log(
  `  ratio after/before: inference x${(median(b.inference) / median(a.inference)).toFixed(2)}, ` +
    `training x${(median(b.training) / median(a.training)).toFixed(2)}`,
);
for (const s of sides) await s.net.destroy();
