/**
 * The training loop (train/): faults a long run must survive with a clear message and nothing
 * lost (a device lost mid-run, a checkpoint that cannot be written, the debris of a crash during
 * a write), and the learning-rate schedule.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { afterValidation, rateAtEpoch } from "../../train/schedule.ts";
import { assertClose, cli, deno } from "../helpers.ts";

const root = new URL("../../", import.meta.url);

Deno.test("a device lost mid-run stops training with the step named, and does not hang", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // In a subprocess: destroying a device is final for the process that owns it.
    const script = `
      import { loadIdxDirectory } from "${new URL("data/dataset.ts", root)}";
      import { Gpu } from "${new URL("gpu/device.ts", root)}";
      import { ALEXNET_SMALL, Network, train } from "${new URL("mod.ts", root)}";
      const gpu = await Gpu.create();
      const net = await Network.create(ALEXNET_SMALL, { gpu, init: "he" });
      const { train: all } = await loadIdxDirectory("${
      new URL("data/fashion-mnist-mini", root).pathname
    }");
      const small = { ...all, count: 32 };
      let steps = 0;
      try {
        await train(net, { train: small, test: small }, {
          epochs: 1, batch: 8, lr: 0.01, lrSteps: [], patience: 2, momentum: 0.9,
          weightDecay: 5e-4, seed: 1, augment: true, out: "${dir}/out", resume: false, workers: 0,
        }, { progress() { if (++steps === 2) gpu.destroy(); }, epoch() {}, message() {} });
        console.log("no error");
      } catch (e) {
        console.log(e.name + ": " + e.message);
      }`;
    await Deno.writeTextFile(`${dir}/lost.ts`, script);
    const r = await deno(["run", "-A", `${dir}/lost.ts`]);
    match(
      r.stdout,
      /TrainingError: step 3 \(epoch 1, batch 3\) failed: .*device is gone; no checkpoint/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a checkpoint that cannot be written is a clear error, with no temporary file left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A directory where the checkpoint goes: every write of it fails, as on a full disk.
    await Deno.mkdir(`${dir}/out/checkpoint.safetensors`, { recursive: true });
    await Deno.writeTextFile(`${dir}/out/checkpoint.safetensors/occupied`, "");
    const r = await cli(
      "train",
      "--max-steps",
      "1",
      "--batch",
      "8",
      "--out",
      `${dir}/out`,
    );
    strictEqual(r.code, 1, r.stderr);
    match(r.stderr, /error: writing .*checkpoint.safetensors failed: .*; the last checkpoint/);
    const left = [...Deno.readDirSync(`${dir}/out`)].map((e) => e.name).filter((n) =>
      n.endsWith(".tmp")
    );
    strictEqual(left.length, 0, `left behind: ${left}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a temporary file left by a crash mid-write is removed, and the run resumes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = ["train", "--batch", "8", "--out", `${dir}/out`];
    strictEqual((await cli(...args, "--max-steps", "2")).code, 0);
    // What a kill -9 during a write leaves: a half-written temporary beside the intact file.
    const half = (await Deno.readFile(`${dir}/out/checkpoint.safetensors`)).subarray(0, 1000);
    await Deno.writeFile(`${dir}/out/checkpoint.safetensors.4242.tmp`, half);
    const resumed = await cli(...args, "--max-steps", "1", "--resume");
    strictEqual(resumed.code, 0, resumed.stderr);
    match(resumed.stderr, /resumed .*: epoch 1, batch 2/);
    ok(
      !(await Deno.stat(`${dir}/out/checkpoint.safetensors.4242.tmp`).then(
        () => true,
        () => false,
      )),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the learning rate: fixed steps, or divided after `patience` epochs without progress", () => {
  const fixed = { lr: 0.01, lrSteps: [2, 4], patience: 2 };
  const rates = [0, 2, 3, 4].map((e) => rateAtEpoch(fixed, 0.01, e));
  assertClose(rates, [0.01, 0.001, 0.001, 1e-4], { atol: 0, rtol: 1e-12 });
  const paper = { lr: 0.01, lrSteps: [], patience: 2 };
  const state = { lr: 0.01, bestError: Infinity, staleEpochs: 0 };
  const lowered = [0.5, 0.4, 0.4, 0.45, 0.3, 0.3, 0.3].map((e) => afterValidation(paper, state, e));
  deepStrictEqual(lowered.map((l) => l !== undefined), [
    false,
    false,
    false,
    true,
    false,
    false,
    true,
  ]);
  assertClose([lowered[3]!, lowered[6]!], [0.001, 1e-4], { atol: 0, rtol: 1e-12 });
  strictEqual(rateAtEpoch(paper, state.lr, 9), state.lr, "the paper's rule keeps the current rate");
  strictEqual(afterValidation(fixed, { ...state }, 0.9), undefined);
});
