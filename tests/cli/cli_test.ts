// The command line as a user runs it: a subprocess on small IDX data that the test writes.
import { deepStrictEqual, match, ok as assert, strictEqual as assertEquals } from "node:assert";

import { encodeIdx } from "../../data/idx.ts";
import { parseSafetensors } from "../../io/safetensors.ts";

import { cli, spawnCli } from "../helpers.ts";

/** A ten-class 28x28 dataset: class k lights the k-th band of rows. */
async function writeDataset(dir: string, train: number, test: number): Promise<void> {
  for (const [prefix, n] of [["train", train], ["t10k", test]] as const) {
    const images = new Uint8Array(n * 784), labels = new Uint8Array(n);
    for (let e = 0; e < n; e++) {
      labels[e] = e % 10;
      for (let p = 0; p < 784; p++) {
        images[e * 784 + p] = Math.floor(p / 28 / 2.8) === labels[e] ? 200 : (e * 31 + p * 7) % 50;
      }
    }
    await Deno.writeFile(`${dir}/${prefix}-images-idx3-ubyte`, encodeIdx([n, 28, 28], images));
    await Deno.writeFile(`${dir}/${prefix}-labels-idx1-ubyte`, encodeIdx([n], labels));
  }
}

Deno.test("train, stopped and resumed (also from two devices to one), ends with an uninterrupted run's parameters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeDataset(dir, 40, 16);
    const common = ["train", "--data", dir, "--epochs", "2", "--batch", "16", "--seed", "5"];
    const straight = await cli(...common, "--out", `${dir}/a`);
    assertEquals(straight.code, 0, straight.stderr);
    match(
      straight.stdout,
      /epoch 1: train loss [\d.]+, validation top-1 error [\d.]+%, top-5 error [\d.]+%/,
    );
    match(straight.stdout, /epoch 2: /);
    const metrics = (await Deno.readTextFile(`${dir}/a/metrics.jsonl`)).trim().split("\n").map((
      l,
    ) => JSON.parse(l));
    deepStrictEqual(metrics.map((m) => m.epoch), [1, 2]);

    const first = await cli(...common, "--out", `${dir}/b`, "--max-steps", "4"); // into epoch 2
    assertEquals(first.code, 0, first.stderr);
    match(first.stderr, /stopped at epoch 2, batch 1; checkpoint/);
    const second = await cli(...common, "--out", `${dir}/b`, "--resume");
    assertEquals(second.code, 0, second.stderr);
    match(second.stderr, /resumed .*checkpoint.safetensors: epoch 2, batch 1/);
    deepStrictEqual(
      await Deno.readFile(`${dir}/b/weights.safetensors`),
      await Deno.readFile(`${dir}/a/weights.safetensors`),
    );

    // Started on two devices (data parallel), resumed on one: the same file format throughout.
    const two = await cli(
      ...common,
      "--out",
      `${dir}/c`,
      "--max-steps",
      "4",
      "--devices",
      "2",
      "--parallel",
      "data",
    );
    assertEquals(two.code, 0, two.stderr);
    match(two.stderr, /2 devices \(data parallel\): .*; .*; writing/);
    const one = await cli(...common, "--out", `${dir}/c`, "--resume");
    assertEquals(one.code, 0, one.stderr);
    // Replicas draw one device's dropout masks: the runs differ only by float rounding.
    const a = parseSafetensors(await Deno.readFile(`${dir}/a/weights.safetensors`)).tensors;
    const b = parseSafetensors(await Deno.readFile(`${dir}/c/weights.safetensors`)).tensors;
    deepStrictEqual([...b.keys()], [...a.keys()]);
    for (const [name, t] of a) {
      const got = b.get(name)!.data;
      t.data.forEach((v, i) =>
        assert(Math.abs(got[i] - v) <= 1e-5 + 1e-3 * Math.abs(v), `${name}[${i}]`)
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a diverging loss stops training with the step named and the checkpoint kept", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeDataset(dir, 32, 16);
    const run = await cli(
      "train",
      "--data",
      dir,
      "--epochs",
      "3",
      "--batch",
      "16",
      "--lr",
      "1e30",
      "--out",
      `${dir}/o`,
    );
    assertEquals(run.code, 1);
    match(
      run.stderr,
      /error: the loss became (NaN|Infinity) at step \d+ \(epoch \d, batch \d\); try a smaller --lr/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad command lines exit with code 2 and one clear line", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /error: unknown command "frobnicate"/],
    [["info", "--bogus"], /error: info: Unknown option '--bogus'/],
    [["info", "--model", "vgg"], /error: unknown model "vgg"/],
    [["train", "--epochs", "0"], /error: --epochs must be an integer > 0, got "0"/],
    [["train", "--batch", "abc"], /error: --batch must be an integer > 0, got "abc"/],
    [["train", "--lr=-1"], /error: --lr must be a number > 0, got "-1"/],
    [["train", "--init", "xavier"], /error: --init must be paper or he/],
    [["train", "--data", "/nonexistent"], /error: --data \/nonexistent: cannot read/],
    [["eval", "--weights", "x.safetensors", "--crops", "3"], /error: --crops must be 1 or 10/],
    [["eval", "--weights", "/nonexistent.safetensors"], /error: --weights \/nonexistent/],
    [["predict"], /error: predict: name one or more image files/],
    [["train", "--out", "/proc/forbidden"], /error: --out \/proc\/forbidden: cannot write there/],
    [["train", "--lr", "-1"], /error: train: Option .--lr. argument is ambiguous/],
    [["train", "--devices", "3"], /error: --devices must be 1 or 2, got "3"/],
    [["train", "--parallel", "data"], /error: --parallel needs --devices 2/],
    [["train", "--devices", "2", "--parallel", "pipe"], /error: --parallel must be model or data/],
    [["train", "--precision", "f8"], /error: --precision must be f32 or f16, got "f8"/],
    [["bench", "--precision", "bf16"], /error: --precision must be f32 or f16, got "bf16"/],
    [
      ["bench", "--peer", "onnx"],
      /error: --peer must name webgpu, wasm, pytorch, ort, jax, got "onnx"/,
    ],
  ];
  for (const [args, message] of cases) {
    const run = await cli(...args);
    assertEquals(run.code, 2, `${args.join(" ")}: exit ${run.code}\n${run.stderr}`);
    match(run.stderr, message);
  }
  const help = await cli("train", "--help");
  assertEquals(help.code, 0);
  assert(help.stdout.includes("--lr-steps"));
});

Deno.test("--resume without a checkpoint says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeDataset(dir, 16, 8);
    const run = await cli("train", "--data", dir, "--out", `${dir}/none`, "--resume");
    assertEquals(run.code, 2);
    match(run.stderr, /--resume: no checkpoint at .*none\/checkpoint.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`${signal} finishes the step, writes a checkpoint and exits 0`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await writeDataset(dir, 400, 8);
      const run = spawnCli("train", "--data", dir, "--batch", "8", "--out", `${dir}/o`);
      await run.until(1); // the first progress line: the run is inside its loop
      run.child.kill(signal);
      const seen = await run.rest();
      const status = await run.close();
      assertEquals(status.code, 0, seen);
      match(seen, /stopping after this step[\s\S]*stopped at epoch 1, batch \d+; checkpoint/);
      assert((await Deno.stat(`${dir}/o/checkpoint.safetensors`)).size > 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("kill -9 at many points, then --resume, ends with an uninterrupted run's parameters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeDataset(dir, 48, 8);
    const common = ["train", "--data", dir, "--epochs", "3", "--batch", "8", "--seed", "7"];
    const straight = await cli(...common, "--out", `${dir}/a`);
    assertEquals(straight.code, 0, straight.stderr);

    // Each run is killed after its n-th progress line (a step done; past the 6th, the first
    // epoch's validation and checkpoint write), then restarted from whatever checkpoint is on disk.
    const out = `${dir}/b`;
    const hasCheckpoint = () =>
      Deno.stat(`${out}/checkpoint.safetensors`).then(() => true, () => false);
    let kills = 0, resumes = 0;
    for (const n of [3, 8, 2, 6, 7, 1]) {
      const resume = await hasCheckpoint();
      if (resume) resumes++;
      const run = spawnCli(...common, "--out", out, ...(resume ? ["--resume"] : []));
      await run.until(n);
      try {
        run.child.kill("SIGKILL");
        kills++;
      } catch { /* it had finished */ }
      await run.close();
    }
    const last = await cli(...common, "--out", out, ...(await hasCheckpoint() ? ["--resume"] : []));
    assertEquals(last.code, 0, last.stderr);
    assert(kills >= 4 && resumes >= 3, `${kills} runs killed, ${resumes} resumed`);
    deepStrictEqual(
      await Deno.readFile(`${out}/weights.safetensors`),
      await Deno.readFile(`${dir}/a/weights.safetensors`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an image folder: train, then eval with 1 and 10 crops, then predict", async () => {
  const { encodePng } = await import("../../data/image.ts");
  const dir = await Deno.makeTempDir();
  try {
    // Two classes told apart by brightness; 30x40 RGB PNGs, one non-image, one class per half.
    for (const half of ["train", "val"]) {
      for (const [name, level] of [["bright", 200], ["dark", 30]] as const) {
        await Deno.mkdir(`${dir}/data/${half}/${name}`, { recursive: true });
        for (let i = 0; i < (half === "train" ? 12 : 4); i++) {
          const px = Uint8Array.from(
            { length: 40 * 30 * 3 },
            (_, p) => level + ((p * 7 + i * 13) % 40),
          );
          await Deno.writeFile(
            `${dir}/data/${half}/${name}/${i}.png`,
            encodePng(px, { width: 40, height: 30, channels: 3 }),
          );
        }
      }
    }
    await Deno.writeTextFile(`${dir}/data/train/dark/notes.txt`, "not an image");
    const data = `${dir}/data`;
    const strict = await cli("train", "--data", data, "--strict", "--out", `${dir}/s`);
    assertEquals(strict.code, 2, strict.stderr);
    match(strict.stderr, /1 problems .*--strict[\s\S]*notes.txt/);

    const trained = await cli(
      "train",
      "--data",
      data,
      "--epochs",
      "2",
      "--batch",
      "8",
      "--lr",
      "0.003",
      "--out",
      `${dir}/run`,
    );
    assertEquals(trained.code, 0, trained.stderr);
    match(trained.stderr, /image folders .*train and .*val: 24 training and 8 validation images/);
    match(trained.stderr, /skipped 1 file\(s\).*notes.txt/);

    const weights = `${dir}/run/weights.safetensors`;
    const losses = [];
    for (const crops of ["1", "10"]) {
      const e = await cli("eval", "--weights", weights, "--data", data, "--crops", crops);
      assertEquals(e.code, 0, e.stderr);
      match(
        e.stdout,
        new RegExp(`alexnet-small on 8 validation images .* ${crops} crops?: top-1 error [\\d.]+%`),
      );
      match(e.stderr, /read from the cache/); // the statistics train computed
      losses.push(Number(e.stdout.match(/loss ([\d.]+)/)![1]));
    }
    // The same evaluation multiplying in f16: the loss within f16's error of f32's.
    const half = await cli("eval", "--weights", weights, "--data", data, "--precision", "f16");
    assertEquals(half.code, 0, half.stderr);
    const halfLoss = Number(half.stdout.match(/loss ([\d.]+)/)![1]);
    assert(Math.abs(halfLoss - losses[0]) <= 0.01 * losses[0] + 1e-3, `${halfLoss} vs ${losses}`);
    const p = await cli("predict", `${data}/val/dark/0.png`, "--weights", weights, "--top", "2");
    assertEquals(p.code, 0, p.stderr);
    match(p.stdout, /val\/dark\/0.png\n +[\d.]+% {2}(dark|bright)\n +[\d.]+% {2}(dark|bright)\n$/);

    // The pictures, from the same weights.
    const filters = await cli("filters", "--weights", weights, "--out", `${dir}/filters.png`);
    assertEquals(filters.code, 0, filters.stderr);
    match(filters.stderr, /64 1x5x5 kernels of conv1/);
    const plot = await cli(
      "plot",
      "--metrics",
      `${dir}/run/metrics.jsonl`,
      "--out",
      `${dir}/curves.svg`,
    );
    assertEquals(plot.code, 0, plot.stderr);
    assert((await Deno.readTextFile(`${dir}/curves.svg`)).includes("<polyline"));
    const near = await cli(
      "neighbors",
      `${data}/val/dark/0.png`,
      "--weights",
      weights,
      "--data",
      data,
      "--k",
      "3",
      "--out",
      `${dir}/nn.png`,
    );
    assertEquals(near.code, 0, near.stderr);
    match(near.stdout, /val\/dark\/0.png: (dark|bright), (dark|bright), (dark|bright)\n/);
    for (const png of ["filters.png", "nn.png"]) {
      const bytes = await Deno.readFile(`${dir}/${png}`);
      assertEquals(bytes[1], 0x50, `${png} is a PNG`);
    }

    const bad = await cli("predict", `${data}/train/dark/notes.txt`, "--weights", weights);
    assertEquals(bad.code, 2);
    match(bad.stderr, /notes.txt: not a PNG or JPEG file/);
    const other = await cli("train", "--epochs", "3", "--out", `${dir}/run`, "--resume");
    assertEquals(other.code, 2);
    match(other.stderr, /was trained on .*data, not the bundled sample/);
    const noWeights = await cli("eval", "--data", data);
    assertEquals(noWeights.code, 2);
    match(noWeights.stderr, /--weights FILE is required/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
