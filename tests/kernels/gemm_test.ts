// The GEMM core's tiling choice (kernels/gemm/tiles.ts) and the autotuner (kernels/gemm/tuning.ts):
// it measures the candidates, keeps the fastest in the network's own tuning, changes no result,
// and a tuning saved by the command line (cli/tuning.ts) is adopted without measuring again.
import { deepStrictEqual, notStrictEqual, ok, strictEqual } from "node:assert";
import { defaultTuningPath, readTuning, writeTuning } from "../../cli/tuning.ts";
import { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { conv2dForward } from "../../kernels/conv2d_forward.ts";
import {
  candidateTiles,
  chooseTile,
  fitsLimits,
  GEMM_CANDIDATES,
  GEMM_TILES,
  isTile,
} from "../../kernels/gemm/tiles.ts";
import { adapterKey, autotuneGemm, tileFor, Tuning } from "../../kernels/gemm/tuning.ts";
import { Network } from "../../layers/network.ts";
import { assertClose, convGeometry, randomArray, rng, TUNED, withGpu } from "../helpers.ts";

/** `n` examples of {@linkcode TUNED}'s input and labels. */
function examples(n: number) {
  const next = rng(4);
  const input = randomArray(n * 54, 3);
  return { input, labels: Int32Array.from({ length: n }, () => Math.floor(next() * 16)) };
}

Deno.test("chooseTile: packed operands for large GEMMs on a CPU adapter, mirrored ones for dense layers", () => {
  strictEqual(chooseTile(96, 3025 * 8, 363, "llvmpipe"), GEMM_TILES.tallPacked); // conv1, batch 8
  strictEqual(chooseTile(48, 729 * 8, 2400, "llvmpipe"), GEMM_TILES.packed); // conv2's dx, batch 8
  strictEqual(chooseTile(96, 300, 363, "llvmpipe"), GEMM_TILES.blocks);
  strictEqual(chooseTile(64, 26, 100352, "llvmpipe"), GEMM_TILES.blocks); // little reuse to pack for
  strictEqual(chooseTile(4096, 8, 9216, "llvmpipe", true), GEMM_TILES.thinMirrored); // fc6, batch 8
  strictEqual(chooseTile(4096, 32, 9216, "llvmpipe", true), GEMM_TILES.mirrored);
  strictEqual(chooseTile(64, 8, 100, "llvmpipe"), GEMM_TILES.narrowBlocks);
  strictEqual(chooseTile(64, 3, 100, "llvmpipe"), GEMM_TILES.thinBlocks);
  strictEqual(chooseTile(4096, 8, 9216, "swiftshader", true), GEMM_TILES.thinBlocks);
  strictEqual(chooseTile(4096, 8, 9216, "gpu"), GEMM_TILES.tall);
  strictEqual(chooseTile(8, 3025, 363, "gpu"), GEMM_TILES.flat);
  // SwiftShader: four columns a block whatever the shape (wider ones compile for minutes).
  strictEqual(chooseTile(96, 3025 * 8, 363, "swiftshader"), GEMM_TILES.thinPacked);
  strictEqual(chooseTile(96, 300, 363, "swiftshader"), GEMM_TILES.thinBlocks);
  ok(GEMM_CANDIDATES.swiftshader.every((t) => t.kind !== "workgroup" && t.tn <= 4));
  ok(!isTile({ kind: "workgroup", bm: 60, bn: 64, bk: 16, tm: 8, tn: 4 }), "bm % tm");
  ok(!isTile({ kind: "textures", tm: 16, tn: "16", threads: 64 }));
});

Deno.test("tilings that do not fit the adapter's workgroup limits are never chosen or timed", async () => {
  const small = {
    maxComputeInvocationsPerWorkgroup: 128,
    maxComputeWorkgroupSizeX: 128,
    maxComputeWorkgroupStorageSize: 16384,
  };
  ok(!fitsLimits(GEMM_TILES.wide, small) && fitsLimits(GEMM_TILES.blocks, small));
  ok(!fitsLimits(GEMM_TILES.wide, { ...small, maxComputeInvocationsPerWorkgroup: 256 })); // X 128
  ok(!fitsLimits(GEMM_TILES.wide, { ...small, maxComputeWorkgroupStorageSize: 4096 })); // 8 KiB
  deepStrictEqual(candidateTiles("gpu", small), [GEMM_TILES.thinBlocks]);
  strictEqual(chooseTile(96, 3025, 363, "gpu", false, small), GEMM_TILES.thinBlocks);
  // A device capped at 128 invocations picks and times only tilings that fit it.
  const gpu = await Gpu.create({ limits: small });
  try {
    ok(candidateTiles(gpu.family, gpu.limits).every((t) => fitsLimits(t, small)));
    ok(fitsLimits(tileFor(gpu, undefined, "p", 96, 3025, 363), small));
  } finally {
    gpu.destroy();
  }
});

Deno.test("autotuneGemm keeps one of the candidates for exactly the problem it timed", () =>
  withGpu(async (gpu) => {
    const geometry = convGeometry({
      inChannels: 6,
      height: 11,
      width: 9,
      outChannels: 10,
      strideH: 2,
      padH: 1,
      groups: 2,
    });
    const batch = 3;
    const x = Tensor.from(gpu, [batch, 6, 11, 9], randomArray(batch * 594, 1));
    const weight = Tensor.from(gpu, [10, 3, 3, 3], randomArray(270, 2));
    const bias = Tensor.from(gpu, [10], randomArray(10, 3));
    const y = Tensor.zeros(gpu, [batch, 10, 6, 7]);
    const tuning = new Tuning();
    try {
      const seen: unknown[] = [];
      const args = { geometry, batch, x, weight, bias, y, relu: true, tuning };
      const best = await autotuneGemm(gpu, tuning, (tile) => {
        seen.push(tile);
        return conv2dForward(gpu, { ...args, tile });
      });
      deepStrictEqual(seen, [...GEMM_CANDIDATES[gpu.family]]);
      ok(seen.includes(best.tile) && best.ms !== null && best.ms > 0, `${JSON.stringify(best)}`);
      strictEqual(tileFor(gpu, tuning, best.problem, 5, 126, 27), best.tile);
      deepStrictEqual(Object.keys(tuning.choices(adapterKey(gpu))), [best.problem]);
      strictEqual(
        tileFor(gpu, tuning, `${best.problem} (another batch)`, 5, 126, 27),
        chooseTile(5, 126, 27, gpu.family),
      );
      strictEqual(
        tileFor(gpu, new Tuning(), best.problem, 5, 126, 27),
        chooseTile(5, 126, 27, gpu.family),
      );
      // A launch recorded with the tuning but no tiling uses the tuned one; again, none is timed.
      const launch = conv2dForward(gpu, args);
      strictEqual(launch.problem, best.problem);
      for (const b of launch.buffers) b.destroy();
      const again = await autotuneGemm(
        gpu,
        tuning,
        (tile) => conv2dForward(gpu, { ...args, tile }),
      );
      deepStrictEqual(again, { problem: best.problem, tile: best.tile, ms: null });
    } finally {
      for (const t of [x, weight, bias, y]) t.destroy();
    }
  }));

Deno.test("Network.tune covers every GEMM of every layer; logits and a step are unchanged", () =>
  withGpu(async (gpu) => {
    const { input, labels } = examples(5);
    const build = (tuning: Tuning) => Network.create(TUNED, { gpu, seed: 3, init: "he", tuning });
    const plain = await build(new Tuning()), tuned = await build(new Tuning());
    try {
      const before = await tuned.forward(input, 5);
      const choices = await tuned.tune(5);
      const names = ["conv2", "conv2", "conv2", "fc1", "fc1", "fc1"];
      deepStrictEqual(choices.map((t) => t.layer), names);
      ok(choices.every((t) => t.ms !== null), "a first tuning measures every problem");
      deepStrictEqual(
        Object.keys(tuned.tuning.choices(adapterKey(gpu))),
        choices.map((t) => t.problem),
      );
      strictEqual(
        Object.keys(plain.tuning.choices(adapterKey(gpu))).length,
        0,
        "its own tuning only",
      );
      const tolerance = { atol: 1e-5, rtol: 1e-4 };
      assertClose(await tuned.forward(input, 5), before, {
        ...tolerance,
        what: "logits after tuning",
      });
      const steps = [await plain.trainStep(input, labels), await tuned.trainStep(input, labels)];
      assertClose([steps[1].loss], [steps[0].loss], { ...tolerance, what: "loss" });
      const [a, b] = [await plain.weights(), await tuned.weights()];
      for (const [name, t] of a) {
        assertClose(b.get(name)!.data, t.data, { ...tolerance, what: name });
      }
    } finally {
      await plain.destroy();
      await tuned.destroy();
    }
  }));

Deno.test("a saved tuning: a new device adopts its adapter's choices and measures nothing again", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/cache/gemm-tuning.json`;
  try {
    deepStrictEqual((await readTuning(path)).toJSON(), {}, "a missing file holds none");
    let first: Awaited<ReturnType<Network["tune"]>> = [];
    await withGpu(async (gpu) => {
      const net = await Network.create(TUNED, { gpu, seed: 3, init: "he" });
      first = await net.tune(4);
      await writeTuning(path, net.tuning);
      await net.destroy();
    });
    const fresh = await Gpu.create(); // a device that has measured nothing
    try {
      const tuning = await readTuning(path);
      strictEqual(Object.keys(tuning.choices(adapterKey(fresh))).length, first.length);
      const net = await Network.create(TUNED, { gpu: fresh, seed: 3, init: "he", tuning });
      const again = await net.tune(4);
      ok(again.every((t) => t.ms === null), "saved choices are not measured again");
      deepStrictEqual(again.map((t) => t.tile), first.map((t) => t.tile));
      await net.destroy();
    } finally {
      fresh.destroy();
    }
    // Another adapter's choices are kept on save; malformed tilings and bad files are not read.
    const key = Object.keys(JSON.parse(await Deno.readTextFile(path)))[0];
    const problem = first[0].problem;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        "another adapter (vulkan)": { [problem]: GEMM_TILES.wide },
        [key]: { [problem]: { kind: "registers", tm: 0, tn: 4, threads: 64 } },
      }),
    );
    deepStrictEqual((await readTuning(path)).choices(key), {});
    await writeTuning(path, new Tuning({ [key]: { [problem]: GEMM_TILES.blocks } }));
    const both = JSON.parse(await Deno.readTextFile(path));
    deepStrictEqual(Object.keys(both).sort(), ["another adapter (vulkan)", key].sort());
    await Deno.writeTextFile(path, "{ not json");
    deepStrictEqual((await readTuning(path)).toJSON(), {});
    notStrictEqual(defaultTuningPath(), path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
