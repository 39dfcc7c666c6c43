// The network (layers/network.ts) on one device: the whole forward pass against the float64
// reference, the layer tables' totals, micro-batches, weights files, and clear errors on bad input.
import { deepStrictEqual, ok as assert, rejects, strictEqual as assertEquals } from "node:assert";
import { Gpu } from "../../gpu/device.ts";
import { parseSafetensors } from "../../io/safetensors.ts";
import { buildLayers } from "../../layers/build.ts";
import { ALEXNET, ALEXNET_SMALL, TORCHVISION_ALEXNET } from "../../layers/models.ts";
import { createAlexNet, Network } from "../../layers/network.ts";
import { destroyPlan, recordTraining } from "../../layers/plan.ts";
import { assertClose, randomArray, TINY, withGpu, withNetwork } from "../helpers.ts";
import { networkRef } from "../reference.ts";

Deno.test("the layer tables give the paper's totals", () =>
  withGpu(async (gpu) => {
    // The paper's figures; torchvision's parameters are what its own model reports.
    const totals = [
      [ALEXNET, 60_965_224, 724_406_816],
      [ALEXNET_SMALL, 1_132_810, null],
      [TORCHVISION_ALEXNET, 61_100_840, null],
    ] as const;
    for (const [config, parameters, macs] of totals) {
      const net = await Network.create(config, { gpu, init: "none" });
      assertEquals(net.parameterCount, parameters, config.name);
      if (macs !== null) assertEquals(net.macs, macs, config.name);
      await net.destroy();
    }
  }));

for (const config of [ALEXNET_SMALL, ALEXNET]) {
  Deno.test(`${config.name} forward (batch 2) matches the float64 reference`, () =>
    withNetwork(async (net) => {
      const batch = 2;
      const input = randomArray(batch * config.input.reduce((a, b) => a * b), 12);
      const logits = await net.forward(input, batch);
      const want = networkRef(config, await net.weights(), input, batch);
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert(scale > 1e-3, `logits too small to compare (${scale})`);
      // Float32 accumulation through eight layers: 1e-4 of the logits' scale.
      assertClose(logits, want, { atol: 1e-4 * scale, rtol: 1e-3, what: `${config.name} logits` });
    }, { config, seed: 11, init: "he" }));
}

Deno.test("micro-batches and weights in slices (binding limit 2 KiB) give the reference's logits", async () => {
  // One example a launch (conv1's output is 1,536 bytes); fc1's weight, 4,608 bytes, in slices.
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 2048 } });
  try {
    const net = await Network.create(TINY, { gpu, seed: 3, init: "he" });
    assertEquals(net.maxMicroBatch, 1);
    const batch = 5, input = randomArray(batch * 64, 9);
    const want = networkRef(TINY, await net.weights(), input, batch);
    assertClose(await net.forward(input, batch), want, { atol: 1e-5, rtol: 1e-4 });
    const probabilities = await net.forward(input, batch, { softmax: true });
    for (let r = 0; r < batch; r++) {
      const row = probabilities.subarray(r * 4, r * 4 + 4);
      assertClose([row.reduce((a, b) => a + b)], [1], { atol: 1e-6, rtol: 0 });
    }
    await net.destroy();
    await gpu.check();
  } finally {
    gpu.destroy();
  }
});

Deno.test("forward up to a layer returns that layer's output (normalised and pooled maps, fc7)", () =>
  withNetwork(async (net) => {
    const batch = 3, input = randomArray(batch * 784, 5);
    const weights = await net.weights();
    // lrn1 alone, and pool1 pooling lrn1's normalisation in one kernel.
    for (const name of ["lrn1", "pool1", "pool2", "fc7"]) {
      const upTo = ALEXNET_SMALL.layers.findIndex((l) => l.name === name) + 1;
      const truncated = { ...ALEXNET_SMALL, layers: ALEXNET_SMALL.layers.slice(0, upTo) };
      const want = networkRef(truncated, weights, input, batch);
      const got = await net.forward(input, batch, { upTo: name });
      assertEquals(got.length, want.length, name);
      const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assertClose(got, want, { atol: 1e-4 * scale, rtol: 1e-3, what: name });
    }
    await rejects(net.forward(input, batch, { upTo: "fc9" }), /no layer "fc9" in alexnet-small/);
  }, { config: ALEXNET_SMALL, seed: 3, init: "he" }));

Deno.test("a training plan stores no gradient for an LRN whose pooling's kernel computes it", () =>
  withGpu((gpu) => {
    const layers = buildLayers(gpu, TINY.layers, TINY.input);
    const plan = recordTraining(gpu, layers, TINY.input, 2);
    try {
      const labels = plan.owned.map((t) => t.buffer.label);
      assert(labels.some((l) => l.startsWith("pool1 output gradient")), labels.join());
      assert(labels.some((l) => l.startsWith("lrn1 output [")), labels.join()); // forward upTo
      assert(!labels.some((l) => l.startsWith("lrn1 output gradient")), labels.join());
    } finally {
      destroyPlan(plan);
      for (const layer of layers) layer.destroy();
    }
  }));

Deno.test("weights load from a path, a file URL and bytes, and save atomically", () =>
  withGpu(async (gpu) => {
    const dir = await Deno.makeTempDir();
    const [a, b, c] = await Promise.all(
      [1, 2, 3].map((seed) => Network.create(TINY, { gpu, seed })),
    );
    try {
      const path = `${dir}/w.safetensors`;
      await a.saveWeights(path, { note: "mine" });
      deepStrictEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"]);
      const file = parseSafetensors(await Deno.readFile(path));
      assertEquals(file.metadata.note, "mine");
      assertEquals(file.metadata.model, "tiny");
      const want = await a.weights();
      for (const source of [path, new URL(`file://${path}`), await a.weightsBytes()]) {
        await b.setWeights(await c.weights());
        await b.loadWeights(source);
        deepStrictEqual(await b.weights(), want, String(source).slice(0, 40));
      }
    } finally {
      for (const n of [a, b, c]) await n.destroy();
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("bad input and bad weights are refused by name; a destroyed network refuses work", () =>
  withGpu(async (gpu) => {
    const net = await Network.create(TINY, { gpu });
    await rejects(
      net.forward(new Float32Array(10), 1),
      /input has 10 values; 1 examples of \[1,8,8\] need 64/,
    );
    await rejects(net.forward(new Float32Array(64), 0), /batch must be a positive integer/);
    await rejects(
      net.trainStep(new Float32Array(64), new Int32Array([4])),
      /label 4 at 0 is not a class of 0..3/,
    );
    const weights = await net.weights();
    weights.delete("fc2.bias");
    await rejects(net.setWeights(weights), /weights for tiny: missing tensor\(s\) fc2.bias/);
    weights.set("fc2.bias", { shape: [5], data: new Float32Array(5) });
    await rejects(
      net.setWeights(weights),
      /tensor fc2.bias has shape \[5\], the model needs \[4\]/,
    );
    await rejects(net.loadOptimizerState(new Map()), /no velocity of \[6,1,3,3\] for conv1.weight/);
    await net.destroy();
    await rejects(net.forward(new Float32Array(64), 1), /tiny: the network was destroyed/);
    await rejects(net.weights(), /the network was destroyed/);
  }));

Deno.test("configurations that cannot be built are refused by name", () =>
  withGpu(async (gpu) => {
    const build = (config: typeof TINY) => Network.create(config, { gpu });
    await rejects(
      build({ ...TINY, classes: 3 }),
      /the last layer gives \[4,1,1\] per example, not \[3, 1, 1\]/,
    );
    const grouped = { ...TINY.layers[0], groups: 2 } as (typeof TINY.layers)[number];
    await rejects(
      build({ ...TINY, layers: [grouped, ...TINY.layers.slice(1)] }),
      /conv1: convolution channels \(1 in, 6 out\) must divide by groups 2/,
    );
    await rejects(
      build({ ...TINY, layers: [{ kind: "maxpool", name: "p", size: 12, stride: 2 }] }),
      /p: max-pool 12\/2 does not fit a 8x8 map/,
    );
    assertEquals(gpu.lost, false, "a failed build leaves the device it was given");
  }));

Deno.test("createAlexNet builds named models, refuses unknown ones and bad placements", async () => {
  const net = await createAlexNet({ model: "alexnet-small", seed: 2 });
  assertEquals(net.config.name, "alexnet-small");
  assertEquals((await net.forward(new Float32Array(28 * 28), 1)).length, 10);
  const gpu = net.tower!.gpu;
  await net.destroy();
  assert(gpu.lost, "the network's own device is destroyed with it");
  await rejects(
    createAlexNet({ model: "vgg" }),
    /unknown model "vgg" \(known: alexnet, alexnet-small, torchvision\)/,
  );
  // deno-lint-ignore no-explicit-any
  await rejects(createAlexNet({ devices: 3 as any }), /devices must be 1 or 2/);
  await rejects(createAlexNet({ parallel: "data" }), /parallel needs devices: 2/);
  await withGpu(async (gpu) => {
    await rejects(createAlexNet({ devices: 2, gpu }), /acquires its own devices/);
    await rejects(
      createAlexNet({ gpu, precision: "f16" }),
      /precision f16 differs from the given gpu's/,
    );
  });
});

Deno.test("the same seed gives the same parameters; another seed others", () =>
  withGpu(async (gpu) => {
    const nets = await Promise.all([5, 5, 6].map((seed) => Network.create(TINY, { gpu, seed })));
    const [wa, wb, wc] = await Promise.all(nets.map((n) => n.weights()));
    deepStrictEqual(wa, wb);
    assert(wa.get("conv1.weight")!.data[0] !== wc.get("conv1.weight")!.data[0]);
    for (const n of nets) await n.destroy();
  }));

Deno.test("f16: alexnet-small's logits stay within f16's error of f32's, and differ from them", () =>
  withNetwork((full) =>
    withNetwork(async (half) => {
      const input = randomArray(3 * 28 * 28, 6);
      const [want, got] = await Promise.all([full, half].map((n) => n.forward(input, 3)));
      let error = 0, scale = 0;
      want.forEach((
        w,
        i,
      ) => (error = Math.max(error, Math.abs(got[i] - w)), scale = Math.max(scale, Math.abs(w))));
      assert(error > 0 && error / scale < 1e-2, `logits' relative error ${error / scale}`);
    }, { config: ALEXNET_SMALL, seed: 5, init: "he", precision: "f16" }), {
    config: ALEXNET_SMALL,
    seed: 5,
    init: "he",
  }));
