/**
 * Faults a long run must survive with a clear message and nothing lost: a device lost mid-run, a
 * checkpoint that cannot be written, and the debris of a crash during a write.
 */
import { match, ok, strictEqual } from "node:assert";

const root = new URL("../", import.meta.url);
const main = new URL("main.ts", root).pathname;
const run = async (args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), { args }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
};

Deno.test("a device lost mid-run stops training with the step named, and does not hang", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // In a subprocess: destroying a device is final for the process that owns it.
    const script = `
      import { createAlexNet, loadIdxDirectory, train } from "${new URL("mod.ts", root)}";
      const net = await createAlexNet({ model: "alexnet-small", init: "he" });
      const { train: all } = await loadIdxDirectory("${
      new URL("data/fashion-mnist-mini", root).pathname
    }");
      const small = { ...all, count: 32 };
      let steps = 0;
      try {
        await train(net, { train: small, test: small }, {
          epochs: 1, batch: 8, lr: 0.01, lrSteps: [], patience: 2, momentum: 0.9,
          weightDecay: 5e-4, seed: 1, augment: true, out: "${dir}/out", resume: false, workers: 0,
        }, { progress() { if (++steps === 2) net.gpu.destroy(); }, epoch() {}, message() {} });
        console.log("no error");
      } catch (e) {
        console.log(e.name + ": " + e.message);
      }`;
    await Deno.writeTextFile(`${dir}/lost.ts`, script);
    const r = await run(["run", "-A", `${dir}/lost.ts`]);
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
    const r = await run([
      "run",
      "-A",
      main,
      "train",
      "--max-steps",
      "1",
      "--batch",
      "8",
      "--out",
      `${dir}/out`,
    ]);
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
    const args = ["run", "-A", main, "train", "--batch", "8", "--out", `${dir}/out`];
    strictEqual((await run([...args, "--max-steps", "2"])).code, 0);
    // What a kill -9 during a write leaves: a half-written temporary beside the intact file.
    const half = (await Deno.readFile(`${dir}/out/checkpoint.safetensors`)).subarray(0, 1000);
    await Deno.writeFile(`${dir}/out/checkpoint.safetensors.4242.tmp`, half);
    const resumed = await run([...args, "--max-steps", "1", "--resume"]);
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
