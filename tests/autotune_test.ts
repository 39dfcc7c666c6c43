/** The autotuner: it measures the candidate tilings, keeps the fastest, and changes no result. */
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import {
  autotuneGemm,
  chooseTile,
  GEMM_CANDIDATES,
  gemmTile,
  loadTuning,
  saveTuning,
} from "../kernels/gemm.ts";
import { type ModelConfig, Network } from "../mod.ts";
import { assertClose, randomArray, withGpu } from "./helpers.ts";

Deno.test("autotuneGemm keeps one of the candidates for exactly the problem it timed", () =>
  withGpu(async (gpu) => {
    const geometry = {
      inChannels: 6,
      height: 11,
      width: 9,
      outChannels: 10,
      kernelH: 3,
      kernelW: 3,
      strideH: 2,
      strideW: 1,
      padH: 1,
      padW: 0,
      groups: 2,
    };
    const batch = 3;
    const x = Tensor.from(gpu, [batch, 6, 11, 9], randomArray(batch * 594, 1));
    const weight = Tensor.from(gpu, [10, 3, 3, 3], randomArray(270, 2));
    const bias = Tensor.from(gpu, [10], randomArray(10, 3));
    const y = Tensor.zeros(gpu, [batch, 10, 6, 7]);
    try {
      const seen: unknown[] = [];
      const best = await autotuneGemm(gpu, (tile) => {
        seen.push(tile);
        return conv2dForward(gpu, { geometry, batch, x, weight, bias, y, relu: true, tile });
      });
      deepStrictEqual(seen, [...(gpu.cpu ? GEMM_CANDIDATES.cpu : GEMM_CANDIDATES.gpu)]);
      ok(seen.includes(best.tile) && best.ms !== null && best.ms > 0, `${JSON.stringify(best)}`);
      strictEqual(gemmTile(gpu, best.problem, 5, 126, 27), best.tile);
      strictEqual(
        gemmTile(gpu, `${best.problem} (another batch)`, 5, 126, 27),
        chooseTile(5, 126, 27, gpu.cpu),
      );
      // A launch recorded without a tiling now uses the tuned one.
      const launch = conv2dForward(gpu, { geometry, batch, x, weight, bias, y, relu: true });
      strictEqual(launch.problem, best.problem);
      for (const b of launch.buffers) b.destroy();
    } finally {
      for (const t of [x, weight, bias, y]) t.destroy();
    }
  }));

// One grouped convolution and one dense layer: every kind of GEMM problem, few kernels to compile.
const TUNED: ModelConfig = {
  name: "tuned",
  input: [4, 7, 7],
  classes: 7,
  layers: [
    { kind: "conv", name: "conv1", out: 6, kernel: 3, groups: 2 },
    { kind: "dense", name: "fc1", out: 7, relu: false },
  ],
};

Deno.test("Network.tune covers every GEMM of every layer and leaves logits and steps unchanged", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TUNED, { seed: 3, init: "he" });
    try {
      const batch = 5, input = randomArray(batch * 196, 4);
      const labels = Int32Array.from([0, 3, 6, 2, 1]);
      const before = await net.forward(input, batch);
      const tuned = await net.tune(batch);
      deepStrictEqual(tuned.map((t) => t.layer), ["conv1", "conv1", "conv1", "fc1", "fc1", "fc1"]);
      assertClose(await net.forward(input, batch), before, {
        atol: 1e-5,
        rtol: 1e-4,
        what: "logits after tuning",
      });
      const { loss } = await net.trainStep(input, labels, { dropout: false });
      ok(Number.isFinite(loss));
    } finally {
      net.destroy();
    }
  }));

Deno.test("saved tunings: a new device adopts its adapter's choices and measures nothing again", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/cache/gemm-tuning.json`;
  try {
    let tuned: Awaited<ReturnType<Network["tune"]>> = [];
    await withGpu(async (gpu) => {
      const net = Network.create(gpu, TUNED, { seed: 3, init: "he" });
      tuned = await net.tune(4);
      ok(tuned.every((t) => t.ms !== null), "a first tuning measures every problem");
      await saveTuning(gpu, path);
      net.destroy();
    });
    const saved = JSON.parse(await Deno.readTextFile(path));
    const fresh = await Gpu.create(); // a device that has measured nothing
    try {
      // Everything the first device chose (the earlier tests' problems too: withGpu shares one).
      strictEqual(await loadTuning(fresh, path), Object.keys(Object.values(saved)[0]!).length);
      for (const t of tuned) deepStrictEqual(gemmTile(fresh, t.problem, 1, 1, 1), t.tile);
      const net = Network.create(fresh, TUNED, { seed: 3, init: "he" });
      const again = await net.tune(4);
      ok(again.every((t) => t.ms === null), "saved choices are not measured again");
      deepStrictEqual(again.map((t) => t.tile), tuned.map((t) => t.tile));
      net.destroy();
    } finally {
      fresh.destroy();
    }
    // Another adapter's choices, malformed tilings and unreadable files are not adopted.
    const file = JSON.parse(await Deno.readTextFile(path));
    const [key] = Object.keys(file);
    const problem = tuned[0].problem;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        "another adapter (vulkan)": file[key],
        [key]: { [problem]: { kind: "registers", tm: 0, tn: 4, threads: 64 } },
      }),
    );
    await withGpu(async (gpu) => {
      strictEqual(await loadTuning(gpu, path), 0);
      await Deno.writeTextFile(path, "{ not json");
      strictEqual(await loadTuning(gpu, path), 0);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
