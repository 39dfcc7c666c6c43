// Training on one device (layers/network.ts, layers/tower.ts): learning, micro-batches equal to the
// whole batch, resumption, dropout masks, initialisation, f16, and no leaks.
import { deepStrictEqual, ok as assert, strictEqual as assertEquals } from "node:assert";
import { Gpu } from "../../gpu/device.ts";
import type { ModelConfig } from "../../layers/models.ts";
import { Network } from "../../layers/network.ts";
import { assertClose, quadrants, TINY, withGpu, withNetwork } from "../helpers.ts";

Deno.test("a few steps on a small synthetic problem drive the loss down and learn it", () =>
  withNetwork(async (net) => {
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
  }, { seed: 1, init: "he" }));

Deno.test("a batch split into micro-batches trains exactly like the whole batch", async () => {
  const small = await Gpu.create({ limits: { maxStorageBufferBindingSize: 4096 } }); // 2 examples a launch
  try {
    await withGpu(async (gpu) => {
      const whole = await Network.create(TINY, { gpu, seed: 2, init: "he" });
      const split = await Network.create(TINY, { gpu: small, seed: 2, init: "he" });
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
      await whole.destroy();
      await split.destroy();
    });
    await small.check();
  } finally {
    small.destroy();
  }
});

Deno.test("resuming from saved weights, optimizer state and step equals an uninterrupted run", () =>
  withGpu(async (gpu) => {
    const batches = [0, 1, 2, 3].map((s) => quadrants(8, 20 + s));
    const straight = await Network.create(TINY, { gpu, seed: 3, init: "he" });
    for (const b of batches) await straight.trainStep(b.input, b.labels, { lr: 0.05 });

    const first = await Network.create(TINY, { gpu, seed: 3, init: "he" });
    for (const b of batches.slice(0, 2)) await first.trainStep(b.input, b.labels, { lr: 0.05 });
    const saved = {
      weights: await first.weightsBytes(),
      state: await first.optimizerState(),
      step: first.step,
    };
    await first.destroy();

    const resumed = await Network.create(TINY, { gpu, seed: 3, init: "none" });
    await resumed.loadWeights(saved.weights);
    await resumed.loadOptimizerState(saved.state);
    resumed.step = saved.step;
    for (const b of batches.slice(2)) await resumed.trainStep(b.input, b.labels, { lr: 0.05 });
    deepStrictEqual(await resumed.weights(), await straight.weights());
    await straight.destroy();
    await resumed.destroy();
  }));

Deno.test("dropout masks follow the seed and step: same seed same result, dropout off differs", () =>
  withGpu(async (gpu) => {
    const { input, labels } = quadrants(8, 30);
    const losses = [];
    for (const dropout of [true, true, false]) {
      const net = await Network.create(TINY, { gpu, seed: 4, init: "he" });
      losses.push((await net.trainStep(input, labels, { dropout })).loss);
      await net.destroy();
    }
    assertEquals(losses[0], losses[1]);
    assert(losses[0] !== losses[2], `dropout on and off gave the same loss ${losses[0]}`);
  }));

Deno.test("many steps allocate nothing after the first", () =>
  withNetwork(async (net, gpu) => {
    const { input, labels } = quadrants(8, 40);
    await net.trainStep(input, labels);
    await net.evaluate(input, labels);
    const after = gpu.live;
    for (let i = 0; i < 30; i++) {
      await net.trainStep(input, labels);
      await net.evaluate(input, labels);
    }
    deepStrictEqual(gpu.live, after);
  }, { seed: 5, init: "he" }));

Deno.test("destroy frees every buffer the network allocated", () =>
  withGpu(async (gpu) => {
    const before = gpu.live;
    const net = await Network.create(TINY, { gpu, seed: 6 });
    const { input, labels } = quadrants(4, 50);
    await net.trainStep(input, labels);
    await net.forward(input, 4, { softmax: true });
    await net.forward(input, 4, { upTo: "pool1" });
    await net.gradients();
    await net.loadOptimizerState(await net.optimizerState());
    await net.destroy();
    deepStrictEqual(gpu.live, before);
  }));

Deno.test("the paper's initialisation: N(0, 0.01) weights, biases 1 where the table says", () =>
  withGpu(async (gpu) => {
    const config: ModelConfig = {
      ...TINY,
      layers: TINY.layers.map((l) =>
        l.kind === "conv" && l.name === "conv2" ? { ...l, bias: 1 } : l
      ),
    };
    const net = await Network.create(config, { gpu, seed: 7 });
    const w = await net.weights();
    const fc1 = w.get("fc1.weight")!.data;
    const std = Math.sqrt(fc1.reduce((s, v) => s + v * v, 0) / fc1.length);
    assert(Math.abs(std - 0.01) < 0.001, `std ${std}`);
    deepStrictEqual([...w.get("conv2.bias")!.data], new Array(8).fill(1));
    deepStrictEqual([...w.get("conv1.bias")!.data], new Array(6).fill(0));
    await net.destroy();
  }));

Deno.test("an epoch's last, partial batch reuses the full batches' plan (nothing allocated)", () =>
  withNetwork(async (net, gpu) => {
    const full = quadrants(8, 60), part = quadrants(5, 61);
    await net.trainStep(full.input, full.labels);
    await net.evaluate(full.input, full.labels);
    const before = gpu.live;
    const { loss } = await net.trainStep(part.input, part.labels);
    await net.evaluate(part.input, part.labels);
    assert(Number.isFinite(loss));
    deepStrictEqual(gpu.live, before);
  }, { seed: 8, init: "he" }));

Deno.test("f16: training tracks f32 step by step and learns the problem", () =>
  withNetwork((full) =>
    withNetwork(async (half) => {
      for (let step = 0; step < 60; step++) {
        const { input, labels } = quadrants(16, 200 + step);
        const [want, got] = await Promise.all(
          [full, half].map((n) => n.trainStep(input, labels, { lr: 0.05 })),
        );
        assertClose([got.loss], [want.loss], { atol: 0.02, rtol: 0.05, what: `loss at ${step}` });
        if (step === 0) {
          const [a, b] = [await full.gradients(), await half.gradients()];
          for (const [name, g] of a) {
            const scale = g.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            assertClose(b.get(name)!.data, g.data, { atol: 1e-2 * scale, rtol: 0, what: name });
          }
        }
      }
      const test = quadrants(64, 99);
      const { top1 } = await half.evaluate(test.input, test.labels);
      assert(top1 > 0.9, `top-1 accuracy ${top1}`);
    }, { seed: 7, init: "he", precision: "f16" }), { seed: 7, init: "he" }));
