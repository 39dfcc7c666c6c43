// Two devices (parallel/): the paper's split as data, and the network on two devices giving one
// device's numbers in both modes, through the same calls, with the same weights files and errors.
import {
  deepStrictEqual,
  ok as assert,
  rejects,
  strictEqual as assertEquals,
  throws,
} from "node:assert";
import type { NamedTensor } from "../../io/safetensors.ts";
import { ALEXNET, ALEXNET_SMALL, type ModelConfig } from "../../layers/models.ts";
import { createAlexNet, Network, type Parallelism } from "../../layers/network.ts";
import { joinTowers, splitTowers, towerHalf } from "../../parallel/split.ts";
import { assertClose, quadrants, randomArray, rng, TINY, TUNED, withGpu } from "../helpers.ts";

Deno.test("splitTowers cuts AlexNet where the paper's GPUs talked, each tower half of each layer", () => {
  const stages = splitTowers(ALEXNET);
  deepStrictEqual(stages.map((s) => s.map((l) => l.name)), [
    ["conv1", "lrn1", "pool1", "conv2", "lrn2", "pool2"],
    ["conv3", "conv4", "conv5", "pool5"],
    ["fc6", "drop6"],
    ["fc7", "drop7"],
    ["fc8"],
  ]);
  const rows = stages.flat();
  const outs = rows.map((l) => l.kind === "conv" || l.kind === "dense" ? l.out : null)
    .filter((o) => o !== null);
  deepStrictEqual(outs, [48, 128, 192, 192, 128, 2048, 2048, 500]);
  for (const l of rows) {
    if (l.kind === "conv") assertEquals(l.groups, 1); // a tower's grouped layer sees only its maps
    if (l.kind === "lrn") assertEquals(l.params.groups, 1);
  }
});

Deno.test("splitTowers refuses tables that do not split in two, naming the layer", () => {
  const base = ALEXNET_SMALL.layers;
  const odd: ModelConfig = {
    ...ALEXNET_SMALL,
    layers: [{ ...base[0], out: 63 } as typeof base[0]],
  };
  throws(() => splitTowers(odd), /cannot split conv1 over two devices: 63 outputs do not halve/);
  const across: ModelConfig = {
    ...ALEXNET_SMALL,
    layers: [base[0], {
      kind: "lrn",
      name: "lrn1",
      params: { size: 5, alpha: 1, beta: 1, k: 1, groups: 1 },
    }],
  };
  throws(
    () => splitTowers(across),
    /cannot split lrn1 over two devices: it normalises across the towers/,
  );
  const grouped: ModelConfig = { ...ALEXNET_SMALL, layers: [{ ...base[3] }] };
  throws(
    () => splitTowers(grouped),
    /cannot split conv2 over two devices: grouped, but reads the whole input/,
  );
});

Deno.test("joinTowers and towerHalf: each example's channels, tower by tower", () => {
  const rows = 3, a = randomArray(rows * 4, 1), b = randomArray(rows * 4, 2);
  const joined = joinTowers([a, b], rows);
  deepStrictEqual([...joined.subarray(8, 12)], [...a.subarray(4, 8)]); // example 1 starts with a's
  deepStrictEqual(towerHalf(joined, rows, 0), a);
  deepStrictEqual(towerHalf(joined, rows, 1), b);
});

function assertSameTensors(
  got: Map<string, NamedTensor>,
  want: Map<string, NamedTensor>,
  what: string,
  tolerance = { atol: 1e-6, rtol: 1e-4 },
) {
  deepStrictEqual([...got.keys()], [...want.keys()]);
  for (const [name, t] of got) {
    deepStrictEqual(t.shape, want.get(name)!.shape);
    assertClose(t.data, want.get(name)!.data, { ...tolerance, what: `${what} ${name}` });
  }
}

/**
 * SGD steps on one device and on two: logits, loss, accuracy, every gradient and every parameter
 * after each step. Two steps by default (the second adds momentum; with data parallelism, dropout
 * too, whose masks agree), one for the large network.
 */
async function compareDevices(
  config: ModelConfig,
  parallel: Parallelism,
  batch: number,
  { limits, steps = 2, overlap }: {
    limits?: Partial<GPUSupportedLimits>;
    steps?: number;
    overlap?: boolean;
  } = {},
) {
  await withGpu(async (gpu) => {
    const one = await Network.create(config, { gpu, seed: 4, init: "he" });
    const two = await Network.create(config, {
      devices: 2,
      parallel,
      seed: 4,
      init: "he",
      limits,
      overlap,
    });
    try {
      // The same seed gives the same parameters, bit for bit, whatever the device count.
      deepStrictEqual(await two.weights(), await one.weights());
      const per = config.input.reduce((a, b) => a * b, 1);
      const input = randomArray(batch * per, 7);
      const next = rng(3);
      const labels = Int32Array.from({ length: batch }, () => Math.floor(next() * config.classes));
      assertClose(await two.forward(input, batch), await one.forward(input, batch), {
        atol: 1e-5,
        what: "logits",
      });
      // Data parallel replicas draw one device's dropout masks; model towers draw their own.
      for (let i = 0; i < steps; i++) {
        const dropout = parallel === "data" && i > 0;
        const a = await one.trainStep(input, labels, { lr: 0.01, dropout });
        const b = await two.trainStep(input, labels, { lr: 0.01, dropout });
        assertClose([b.loss, b.accuracy], [a.loss, a.accuracy], {
          atol: 1e-6,
          what: `step ${i} loss`,
        });
        assertSameTensors(await two.gradients(), await one.gradients(), `step ${i} gradient`);
        assertSameTensors(await two.weights(), await one.weights(), `step ${i} parameter`);
        assertSameTensors(
          await two.optimizerState(),
          await one.optimizerState(),
          `step ${i} velocity`,
        );
      }
      // The two-device file loads on one device and gives its logits, and the other way round.
      const back = await Network.create(config, { gpu, init: "none" });
      await back.loadWeights(await two.weightsBytes());
      assertClose(await back.forward(input, batch), await two.forward(input, batch), {
        atol: 1e-5,
        what: "reloaded logits",
      });
      await two.loadWeights(await one.weightsBytes());
      await two.loadOptimizerState(await one.optimizerState());
      assertSameTensors(await two.weights(), await one.weights(), "loaded", { atol: 0, rtol: 0 });
      assertSameTensors(await two.optimizerState(), await one.optimizerState(), "loaded velocity", {
        atol: 0,
        rtol: 0,
      });
      await back.destroy();
    } finally {
      await one.destroy();
      await two.destroy();
    }
  });
}

Deno.test("two devices, model parallel: the tiny network equals one device (odd batch, micro-batches)", () =>
  // conv1's 3 maps of 8x8 a tower (768 bytes): two examples per call, so batch 5 runs as
  // 2 + 2 + 1, two chunks in flight in their own buffers.
  compareDevices(TINY, "model", 5, { limits: { maxStorageBufferBindingSize: 2 * 768 + 64 } }));

Deno.test("two devices, model parallel without overlap: one chunk at a time", () =>
  compareDevices(TINY, "model", 4, { overlap: false, steps: 1 }));

Deno.test("two devices, data parallel: the tiny network equals one device, dropout masks included", () =>
  compareDevices(TINY, "data", 5));

// The paper's network at its real size, forward: each tower compiles its half of every layer,
// which takes minutes on a CPU adapter, so its backward passes are left to the tiny network's
// towers, whose stages are the same code. The file written on two devices loads on one.
Deno.test("two devices, model parallel: alexnet's logits and features equal one device's", () =>
  withGpu(async (gpu) => {
    const one = await Network.create(ALEXNET, { gpu, seed: 4, init: "he" });
    const two = await Network.create(ALEXNET, { devices: 2, seed: 4, init: "he" });
    try {
      deepStrictEqual(await two.weights(), await one.weights());
      const input = randomArray(2 * 3 * 227 * 227, 7);
      for (const upTo of [undefined, "pool2"]) {
        const [a, b] = [
          await one.forward(input, 2, { upTo }),
          await two.forward(input, 2, { upTo }),
        ];
        const scale = Math.max(...a.map(Math.abs));
        assertClose(b, a, { atol: 1e-5 * scale, rtol: 1e-4, what: upTo ?? "logits" });
      }
    } finally {
      await one.destroy();
      await two.destroy();
    }
  }));

Deno.test("two hundred steps on two devices track one device's losses, both modes", async () => {
  const losses = async (devices: 1 | 2, parallel?: Parallelism) => {
    // TINY without its dropout: model-parallel towers draw their own masks.
    const model = { ...TINY, layers: TINY.layers.filter((l) => l.kind !== "dropout") };
    const net = await createAlexNet({ model, seed: 5, init: "he", devices, parallel });
    const out: number[] = [];
    for (let step = 0; step < 200; step++) {
      const { input, labels } = quadrants(16, step);
      out.push((await net.trainStep(input, labels, { lr: 0.05, dropout: false })).loss);
    }
    await net.destroy();
    return out;
  };
  const one = await losses(1);
  assert(one[199] < 0.5 * one[0], `one device: loss ${one[0]} -> ${one[199]}`);
  for (const parallel of ["model", "data"] as const) {
    assertClose(await losses(2, parallel), one, {
      atol: 1e-4,
      rtol: 1e-3,
      what: `${parallel} losses`,
    });
  }
});

Deno.test("two devices answer the same calls as one: features, saved weights, errors", async () => {
  const dir = await Deno.makeTempDir();
  const one = await createAlexNet({ model: TINY, seed: 6, init: "he" });
  try {
    const input = randomArray(3 * 64, 8);
    for (const parallel of ["model", "data"] as const) {
      const two = await createAlexNet({ model: TINY, seed: 6, init: "he", devices: 2, parallel });
      // Features of a layer the towers split (pool1), and of one after an exchange (fc1).
      for (const upTo of ["pool1", "fc1"]) {
        assertClose(await two.forward(input, 3, { upTo }), await one.forward(input, 3, { upTo }), {
          atol: 1e-6,
          what: `${parallel} ${upTo}`,
        });
      }
      assertClose(
        await two.forward(input, 3, { softmax: true }),
        await one.forward(input, 3, { softmax: true }),
        { atol: 1e-6, what: `${parallel} probabilities` },
      );
      await two.saveWeights(`${dir}/${parallel}.safetensors`);
      deepStrictEqual(
        await Deno.readFile(`${dir}/${parallel}.safetensors`),
        await one.weightsBytes(),
        "the same file, byte for byte",
      );
      await rejects(two.forward(new Float32Array(10), 1), /input has 10 values/);
      await rejects(two.forward(input, 3, { upTo: "fc9" }), /no layer "fc9" in tiny/);
      await rejects(two.setWeights(new Map()), /weights for tiny: missing tensor/);
      await two.destroy();
      await rejects(two.trainStep(input, new Int32Array(3)), /tiny: the network was destroyed/);
    }
  } finally {
    await one.destroy();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("f16 reaches both devices: two f16 devices' logits are f16's, not f32's", () =>
  withGpu((full) =>
    withGpu(async (half) => {
      const build = (gpu: typeof full) =>
        Network.create(ALEXNET_SMALL, { gpu, seed: 8, init: "he" });
      const [f32, f16] = [await build(full), await build(half)];
      const two = await createAlexNet({
        model: ALEXNET_SMALL,
        seed: 8,
        init: "he",
        devices: 2,
        parallel: "data",
        precision: "f16",
      });
      try {
        const input = randomArray(4 * 28 * 28, 9);
        const [want, got, plain] = await Promise.all(
          [f16, two, f32].map((n) => n.forward(input, 4)),
        );
        const relative = (a: Float32Array, b: Float32Array) => {
          let error = 0, scale = 0;
          b.forEach((
            v,
            i,
          ) => (error = Math.max(error, Math.abs(a[i] - v)), scale = Math.max(scale, Math.abs(v))));
          return error / scale;
        };
        // Each device runs 2 examples, whose sums run in another order than at batch 4; rounding
        // to f16 turns those last-bit differences into half-precision ones near a rounding edge.
        assert(relative(got, want) < 1e-2, `two f16 devices against one: ${relative(got, want)}`);
        // Two f32 devices give one f32 device's logits to about 1e-6: these are f16's.
        assert(relative(got, plain) > 1e-5, "two f16 devices computed in f32");
      } finally {
        for (const n of [f32, f16, two]) await n.destroy();
      }
    }, "f16")
  ));

Deno.test("tune on two devices: the second adopts the first's choices, results unchanged", async () => {
  const two = await createAlexNet({
    model: TUNED,
    seed: 2,
    init: "he",
    devices: 2,
    parallel: "data",
  });
  try {
    const input = randomArray(4 * 54, 3);
    const before = await two.forward(input, 4);
    const tuned = await two.tune(4);
    assert(tuned.length === 6 && tuned.every((t) => t.ms !== null), `${tuned.length} measured`);
    assertEquals(Object.keys(two.tuning.toJSON()).length, 1, "one adapter's choices");
    assertClose(await two.forward(input, 4), before, { atol: 1e-5, rtol: 1e-4 });
  } finally {
    await two.destroy();
  }
});
