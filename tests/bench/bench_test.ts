// The benchmark (bench/) runs and reports every layer; its figures are measurements, never
// asserted beyond being positive and finite.
import { deepStrictEqual, ok as assert, rejects } from "node:assert";
import { bench, benchFrozen, formatBench } from "../../bench/bench.ts";
import { benchJax, jaxLogits } from "../../bench/jax.ts";
import { benchOrt } from "../../bench/ort.ts";
import { benchPyTorch } from "../../bench/pytorch.ts";
import { Gpu } from "../../gpu/device.ts";
import { Network } from "../../layers/network.ts";
import { assertClose, randomArray, TINY } from "../helpers.ts";

const positive = (v: number) => v > 0 && Number.isFinite(v);

Deno.test("bench reports every layer, the whole network and the data pipeline", async () => {
  // Five examples a launch (1,536 bytes of conv1's output each): a batch of 12 runs in
  // micro-batches, and the layers are timed at the largest that fits.
  const small = await Gpu.create({ limits: { maxStorageBufferBindingSize: 8192 } });
  try {
    const net = await Network.create(TINY, { gpu: small, init: "he" });
    const result = await bench(net, 12, 1, 64); // 64^3 probes: 1024^3 ones take minutes here
    deepStrictEqual([result.setup.batch, result.setup.layerBatch], [12, net.maxMicroBatch]);
    assert(net.maxMicroBatch === 5, `micro-batch ${net.maxMicroBatch}`);
    deepStrictEqual(result.layers.map((l) => l.name), TINY.layers.map((l) => l.name));
    // Every layer runs kernels forward (dropout too: the layers are timed as training runs them),
    // but where one kernel does two layers' work: lrn1 forward in pool1's, pool1 backward in lrn1's.
    const joined = result.layers.map((l) => [l.name, l.forwardIn, l.backwardIn].join(" "));
    deepStrictEqual(joined.filter((j) => j.trim().includes(" ")), ["lrn1 pool1 ", "pool1  lrn1"]);
    for (const l of result.layers) {
      assert(l.forwardIn ? l.forwardMs === 0 : positive(l.forwardMs), `${l.name} forward`);
      assert(l.backwardIn ? l.backwardMs === 0 : positive(l.backwardMs), `${l.name} backward`);
      const multiplies = l.name.startsWith("conv") || l.name.startsWith("fc");
      assert(multiplies ? positive(l.forwardGflops!) : l.forwardGflops === null, l.name);
    }
    assert(Object.values(result.network).every(positive));
    assert(Object.values(result.loader).every(positive));
    assert(positive(result.ceiling.gflops) && result.ceiling.probes.length === 2);
    for (const l of result.layers) {
      assert((l.forwardGflops ?? 0) <= result.ceiling.gflops, `${l.name} above the ceiling`);
      assert((l.backwardGflops ?? 0) <= result.ceiling.gflops, `${l.name} above the ceiling`);
    }
    assert(["gpu", "wall"].includes(result.setup.clock));
    const table = formatBench(result);
    for (
      const text of [
        "conv1",
        "images/s of augmented batches",
        "of ceiling",
        "per layer at batch 5",
        "in pool1",
      ]
    ) {
      assert(table.includes(text), text);
    }
    await net.destroy();
    await small.check();
  } finally {
    small.destroy();
  }
});

Deno.test("the PyTorch peer builds the same network (its parameter count), times it, names its BLAS", async () => {
  // conv1 6 x 1 x 3 x 3, conv2 8 x 3 x 3 x 3 (two groups), fc1 16 x 72, fc2 4 x 16, and biases.
  const parameters = (54 + 6) + (216 + 8) + (1152 + 16) + (64 + 4);
  const torch = await benchPyTorch(TINY, 2, 1, parameters);
  assert(
    /^PyTorch CPU \(\d+ threads, (OpenBLAS|MKL|reference BLAS|its own)/.test(torch.name),
    torch.name,
  );
  assert(torch.inference > 0 && torch.training !== null && torch.training > 0);
  await rejects(benchPyTorch(TINY, 2, 1, parameters + 1), /not the same network/);
});

Deno.test("the ONNX Runtime peer runs the exported network and names its version", async () => {
  const net = await Network.create(TINY, { seed: 1 });
  try {
    const ort = await benchOrt(TINY, await net.weights(), 2, 1);
    assert(/^ONNX Runtime CPU 1\.30\.0 \(\d+ threads\)$/.test(ort.name), ort.name);
    assert(ort.inference > 0 && ort.training === null);
  } finally {
    await net.destroy();
  }
});

Deno.test("benchFrozen times training with and without frozen layers and restores the network's", async () => {
  const net = await Network.create(TINY, { seed: 1 });
  try {
    await net.freeze(["fc1"]);
    const r = await benchFrozen(net, 4, 1, ["conv1", "conv2"]);
    assert(r.all > 0 && r.frozen > 0, JSON.stringify(r));
    deepStrictEqual(net.frozen, ["fc1"]);
  } finally {
    await net.destroy();
  }
});

Deno.test("the jax-js peer runs the same network (its logits are ours) and trains", async () => {
  const net = await Network.create(TINY, { seed: 1 });
  try {
    const input = randomArray(2 * TINY.input.reduce((a, b) => a * b), 5, 1);
    const weights = await net.weights();
    const ours = await net.forward(input, 2);
    assertClose(await jaxLogits(TINY, weights, input, 2), ours, { atol: 1e-5, rtol: 1e-4 });
    const jax = await benchJax(TINY, weights, 2, 1);
    assert(jax.name === "jax-js 0.1.25 webgpu" && jax.inference > 0 && jax.training! > 0);
  } finally {
    await net.destroy();
  }
});
