// Training on the device: learning, micro-batches equal to the whole batch, resumption, no leaks.
import { deepStrictEqual, ok as assert, rejects, strictEqual as assertEquals } from "node:assert";
import { Gpu } from "../gpu/device.ts";
import { type Dataset, evaluateDataset, makeBatch, type ModelConfig, Network } from "../mod.ts";
import { assertClose, quadrants, rng, TINY, withGpu } from "./helpers.ts";

Deno.test("a few steps on a small synthetic problem drive the loss down and learn it", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY, { seed: 1, init: "he" });
    const test = quadrants(64, 99);
    const first =
      (await net.trainStep(quadrants(16, 0).input, quadrants(16, 0).labels, { lr: 0.05 })).loss;
    let last = first;
    for (let step = 1; step < 60; step++) {
      const { input, labels } = quadrants(16, step);
      last = (await net.trainStep(input, labels, { lr: 0.05 })).loss;
    }
    assert(last < first * 0.5, `loss went from ${first} to ${last}`);
    const { top1 } = await net.evaluate(test.input, test.labels);
    assert(top1 > 0.9, `top-1 accuracy ${top1}`);
    net.destroy();
  }));

Deno.test("a batch split into micro-batches trains exactly like the whole batch", async () => {
  const small = await Gpu.create({ limits: { maxStorageBufferBindingSize: 4096 } }); // 2 examples a launch
  try {
    await withGpu(async (gpu) => {
      const whole = Network.create(gpu, TINY, { seed: 2, init: "he" });
      const split = Network.create(small, TINY, { seed: 2, init: "he" });
      assert(split.maxMicroBatch < 7 && whole.maxMicroBatch >= 7);
      for (let step = 0; step < 3; step++) {
        const { input, labels } = quadrants(7, 10 + step);
        const a = await whole.trainStep(input, labels, { lr: 0.05 });
        const b = await split.trainStep(input, labels, { lr: 0.05 });
        assertClose([b.loss], [a.loss], { atol: 1e-6, rtol: 1e-5, what: `loss at step ${step}` });
      }
      const [wa, wb] = [await whole.weights(), await split.weights()];
      for (const [name, t] of wa) {
        assertClose(wb.get(name)!.data, t.data, { atol: 1e-6, rtol: 1e-4, what: name });
      }
      whole.destroy();
      split.destroy();
    });
    await small.check();
  } finally {
    small.destroy();
  }
});

Deno.test("resuming from saved weights, optimizer state and step equals an uninterrupted run", () =>
  withGpu(async (gpu) => {
    const batches = [0, 1, 2, 3].map((s) => quadrants(8, 20 + s));
    const straight = Network.create(gpu, TINY, { seed: 3, init: "he" });
    for (const b of batches) await straight.trainStep(b.input, b.labels, { lr: 0.05 });

    const first = Network.create(gpu, TINY, { seed: 3, init: "he" });
    for (const b of batches.slice(0, 2)) await first.trainStep(b.input, b.labels, { lr: 0.05 });
    const saved = {
      weights: await first.weightsBytes(),
      state: await first.optimizerState(),
      step: first.step,
    };
    first.destroy();

    const resumed = Network.create(gpu, TINY, { seed: 3, init: "none" });
    await resumed.loadWeights(saved.weights);
    resumed.loadOptimizerState(saved.state);
    resumed.step = saved.step;
    for (const b of batches.slice(2)) await resumed.trainStep(b.input, b.labels, { lr: 0.05 });
    deepStrictEqual(await resumed.weights(), await straight.weights());
    straight.destroy();
    resumed.destroy();
  }));

Deno.test("dropout masks follow the seed and step: same seed same result, dropout off differs", () =>
  withGpu(async (gpu) => {
    const { input, labels } = quadrants(8, 30);
    const losses = [];
    for (const dropout of [true, true, false]) {
      const net = Network.create(gpu, TINY, { seed: 4, init: "he" });
      losses.push((await net.trainStep(input, labels, { dropout })).loss);
      net.destroy();
    }
    assertEquals(losses[0], losses[1]);
    assert(losses[0] !== losses[2], `dropout on and off gave the same loss ${losses[0]}`);
  }));

Deno.test("many steps allocate nothing after the first", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY, { seed: 5, init: "he" });
    const { input, labels } = quadrants(8, 40);
    await net.trainStep(input, labels);
    await net.evaluate(input, labels);
    const after = gpu.live;
    for (let i = 0; i < 30; i++) {
      await net.trainStep(input, labels);
      await net.evaluate(input, labels);
    }
    deepStrictEqual(gpu.live, after);
    net.destroy();
  }));

Deno.test("destroy frees every buffer the network allocated", () =>
  withGpu(async (gpu) => {
    const before = gpu.live;
    const net = Network.create(gpu, TINY, { seed: 6 });
    const { input, labels } = quadrants(4, 50);
    await net.trainStep(input, labels);
    await net.forward(input, 4, { softmax: true });
    net.destroy();
    deepStrictEqual(gpu.live, before);
  }));

Deno.test("trainStep rejects labels outside the classes and mismatched input", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY);
    await rejects(
      net.trainStep(new Float32Array(64), new Int32Array([4])),
      /label 4 at 0 is not a class of 0..3/,
    );
    await rejects(net.trainStep(new Float32Array(60), new Int32Array([1])), /input has 60 values/);
    net.destroy();
  }));

Deno.test("the paper's initialisation: N(0, 0.01) weights, biases 1 where the table says", () =>
  withGpu(async (gpu) => {
    const config: ModelConfig = {
      ...TINY,
      layers: TINY.layers.map((l) =>
        l.kind === "conv" && l.name === "conv2" ? { ...l, bias: 1 } : l
      ),
    };
    const net = Network.create(gpu, config, { seed: 7 });
    const w = await net.weights();
    const fc1 = w.get("fc1.weight")!.data;
    const std = Math.sqrt(fc1.reduce((s, v) => s + v * v, 0) / fc1.length);
    assert(Math.abs(std - 0.01) < 0.001, `std ${std}`);
    deepStrictEqual([...w.get("conv2.bias")!.data], new Array(8).fill(1));
    deepStrictEqual([...w.get("conv1.bias")!.data], new Array(6).fill(0));
    net.destroy();
  }));

Deno.test("an epoch's last, partial batch reuses the full batches' plan (nothing allocated)", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY, { seed: 8, init: "he" });
    const full = quadrants(8, 60), part = quadrants(5, 61);
    await net.trainStep(full.input, full.labels);
    await net.evaluate(full.input, full.labels);
    const before = gpu.live;
    const { loss } = await net.trainStep(part.input, part.labels);
    await net.evaluate(part.input, part.labels);
    assert(Number.isFinite(loss));
    deepStrictEqual(gpu.live, before);
    net.destroy();
  }));

Deno.test("10-crop evaluation averages the softmax of the ten views", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY, { seed: 4, init: "he" });
    try {
      // Stored 10x10, crops 8x8: the ten views differ.
      const next = rng(12);
      const d: Dataset = {
        count: 5,
        shape: [1, 10, 10],
        images: Uint8Array.from({ length: 500 }, () => next() * 256),
        labels: Int32Array.from([0, 1, 2, 3, 1]),
        classes: ["a", "b", "c", "d"],
      };
      const mean = new Float32Array(100).fill(0.5);
      const average = new Float64Array(5 * 4);
      for (let view = 0; view < 10; view++) {
        const { input } = makeBatch(d, [0, 1, 2, 3, 4], { mean, crop: [8, 8], view });
        const p = await net.forward(input, 5, { softmax: true });
        p.forEach((v, i) => (average[i] += v / 10));
      }
      let hits = 0, loss = 0;
      for (let e = 0; e < 5; e++) {
        const row = Array.from(average.subarray(4 * e, 4 * e + 4));
        hits += row.indexOf(Math.max(...row)) === d.labels[e] ? 1 : 0;
        loss -= Math.log(row[d.labels[e]]) / 5;
      }
      // Batches of 2 and 3: the split must not matter.
      const got = await evaluateDataset(net, d, { mean, crop: [8, 8], batch: 2, crops: 10 });
      assertClose([got.top1, got.loss], [hits / 5, loss], { atol: 1e-5, rtol: 1e-4 });
      const centre = await evaluateDataset(net, d, { mean, crop: [8, 8], batch: 5 });
      const { input } = makeBatch(d, [0, 1, 2, 3, 4], { mean, crop: [8, 8] });
      assertClose([centre.loss], [(await net.evaluate(input, d.labels)).loss], { atol: 1e-6 });
    } finally {
      net.destroy();
    }
  }));
