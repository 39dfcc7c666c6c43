/**
 * Soak test (not part of CI): trains alexnet-small on the bundled data for many steps and samples
 * the process's resident memory and the device's live buffers, to show that nothing grows after
 * warm-up.
 *
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/soak.ts [STEPS=20000] [BATCH=8] [EVERY=500]
 *
 * Prints one JSON line per sample, then the growth between the first sample after warm-up (the
 * first epoch, whose validation records the inference plan) and the last.
 */
import { loadIdxDirectory } from "../data/dataset.ts";
import { createAlexNet, train } from "../mod.ts";

const [steps = 20000, batch = 8, every = 500] = Deno.args.map(Number);
const data = await loadIdxDirectory(
  new URL("../data/fashion-mnist-mini", import.meta.url).pathname,
);
const net = await createAlexNet({ model: "alexnet-small", init: "he" });
const out = await Deno.makeTempDir();
const samples: {
  step: number;
  rssMiB: number;
  heapMiB: number;
  buffers: number;
  bufferMiB: number;
}[] = [];
const started = performance.now();
try {
  await train(net, data, {
    epochs: 1_000_000,
    batch,
    lr: 0.01,
    lrSteps: [],
    patience: 1_000_000,
    momentum: 0.9,
    weightDecay: 5e-4,
    seed: 1,
    augment: true,
    out,
    resume: false,
    maxSteps: steps,
  }, {
    progress() {
      if (net.step % every !== 0) return;
      const m = Deno.memoryUsage(), live = net.tower!.gpu.live;
      const sample = {
        step: net.step,
        rssMiB: Math.round(m.rss / 2 ** 20),
        heapMiB: Math.round(m.heapUsed / 2 ** 20),
        buffers: live.buffers,
        bufferMiB: Math.round(live.bytes / 2 ** 20),
      };
      samples.push(sample);
      console.log(
        JSON.stringify({ ...sample, seconds: Math.round((performance.now() - started) / 1000) }),
      );
    },
    epoch() {},
    message() {},
  });
} finally {
  await net.destroy();
  await Deno.remove(out, { recursive: true });
}
// Warm-up ends after the first epoch, whose validation records the inference plan once.
const epochSteps = Math.ceil(data.train.count / batch);
const first = samples.find((s) => s.step > epochSteps) ?? samples[0],
  last = samples[samples.length - 1];
console.log(
  `from step ${first.step} to ${last.step}: resident ${first.rssMiB} -> ${last.rssMiB} MiB, ` +
    `JS heap ${first.heapMiB} -> ${last.heapMiB} MiB, live GPU buffers ${first.buffers} -> ${last.buffers} ` +
    `(${first.bufferMiB} -> ${last.bufferMiB} MiB)`,
);
