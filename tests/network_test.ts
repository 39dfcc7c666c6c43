// The whole forward pass against the float64 reference, the layer tables' totals, and the
// network's handling of batches, weights files and bad input.
import { ok as assert, rejects, strictEqual as assertEquals, throws } from "node:assert";
import {
  ALEXNET,
  ALEXNET_SMALL,
  createAlexNet,
  type ModelConfig,
  Network,
  TORCHVISION_ALEXNET,
} from "../mod.ts";
import { Gpu } from "../gpu/device.ts";
import { assertClose, randomArray, withGpu } from "./helpers.ts";
import { networkRef } from "./reference.ts";

Deno.test("the layer tables give the paper's totals", () =>
  withGpu((gpu) => {
    const alexnet = Network.create(gpu, ALEXNET, { init: "none" });
    assertEquals(alexnet.parameterCount, 60_965_224);
    assertEquals(alexnet.macs, 724_406_816);
    alexnet.destroy();
    const small = Network.create(gpu, ALEXNET_SMALL, { init: "none" });
    assertEquals(small.parameterCount, 1_132_810);
    small.destroy();
    // torchvision's AlexNet: the figure torchvision's own model reports.
    const torchvision = Network.create(gpu, TORCHVISION_ALEXNET, { init: "none" });
    assertEquals(torchvision.parameterCount, 61_100_840);
    torchvision.destroy();
  }));

for (const config of [ALEXNET_SMALL, ALEXNET]) {
  Deno.test(`${config.name} forward (batch 2) matches the float64 reference`, () =>
    withGpu(async (gpu) => {
      const net = Network.create(gpu, config, { seed: 11, init: "he" });
      const batch = 2;
      const input = randomArray(batch * config.input.reduce((a, b) => a * b), 12);
      const logits = await net.forward(input, batch);
      const want = networkRef(config, await net.weights(), input, batch);
      const scale = Math.max(...want.map(Math.abs));
      assert(scale > 1e-3, `logits too small to compare (${scale})`);
      // Float32 accumulation through eight layers: 1e-4 of the logits' scale.
      assertClose(logits, want, { atol: 1e-4 * scale, rtol: 1e-3, what: `${config.name} logits` });
      net.destroy();
    }));
}

const TINY: ModelConfig = {
  name: "tiny",
  input: [3, 9, 9],
  classes: 5,
  layers: [
    { kind: "conv", name: "conv1", out: 8, kernel: 3, stride: 2, pad: 1 },
    { kind: "lrn", name: "lrn1", params: { size: 3, alpha: 0.01, beta: 0.75, k: 2, groups: 2 } },
    { kind: "maxpool", name: "pool1", size: 3, stride: 2 },
    { kind: "dense", name: "fc1", out: 6 },
    { kind: "dropout", name: "drop1", p: 0.5 },
    { kind: "dense", name: "fc2", out: 5, relu: false },
  ],
};

Deno.test("large batches split into micro-batches give the same logits as one by one", async () => {
  // A binding limit of 1 KiB forces micro-batches of a few examples.
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 1024 } });
  try {
    const net = Network.create(gpu, TINY, { seed: 3, init: "he" });
    assert(net.maxMicroBatch < 4, `micro-batch ${net.maxMicroBatch}`);
    const batch = 7, size = 3 * 9 * 9;
    const input = randomArray(batch * size, 9);
    const all = await net.forward(input, batch);
    const want = networkRef(TINY, await net.weights(), input, batch);
    assertClose(all, want, { atol: 1e-5, rtol: 1e-4 });
    const probabilities = await net.forward(input, batch, { softmax: true });
    for (let r = 0; r < batch; r++) {
      const row = probabilities.subarray(r * 5, r * 5 + 5);
      assertClose([row.reduce((a, b) => a + b)], [1], { atol: 1e-6, rtol: 0 });
    }
    net.destroy();
    await gpu.check();
  } finally {
    gpu.destroy();
  }
});

Deno.test("dense weights over the binding limit are split across launches", async () => {
  // conv1's weight (8 x 27 floats = 864 bytes) exceeds a 512-byte binding: two launches.
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 512 } });
  try {
    const config: ModelConfig = {
      ...TINY,
      input: [3, 5, 5],
      layers: TINY.layers.filter((l) => l.kind !== "lrn"),
    };
    const net = Network.create(gpu, config, { seed: 4, init: "he" });
    const input = randomArray(2 * 75, 10);
    assertClose(await net.forward(input, 2), networkRef(config, await net.weights(), input, 2), {
      atol: 1e-5,
      rtol: 1e-4,
    });
    net.destroy();
    await gpu.check();
  } finally {
    gpu.destroy();
  }
});

Deno.test("forward rejects bad input with a clear error; a destroyed network refuses work", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY);
    await rejects(
      net.forward(new Float32Array(10), 1),
      /input has 10 values; 1 examples of \[3,9,9\] need 243/,
    );
    await rejects(net.forward(new Float32Array(243), 0), /batch must be a positive integer/);
    net.destroy();
    await rejects(net.forward(new Float32Array(243), 1), /network was destroyed/);
  }));

Deno.test("configurations that cannot be built are refused by name", () =>
  withGpu((gpu) => {
    throws(
      () => Network.create(gpu, { ...TINY, classes: 4 }),
      /the last layer gives \[5,1,1\] per example, not \[4, 1, 1\]/,
    );
    throws(
      () =>
        Network.create(gpu, {
          ...TINY,
          layers: [
            { kind: "conv", name: "conv1", out: 8, kernel: 3, groups: 2 },
            ...TINY.layers.slice(1),
          ],
        }),
      /conv1: convolution channels \(3 in, 8 out\) must divide by groups 2/,
    );
    throws(
      () =>
        Network.create(gpu, {
          ...TINY,
          layers: [{ kind: "maxpool", name: "p", size: 12, stride: 2 }],
        }),
      /p: max-pool 12\/2 does not fit a 9x9 map/,
    );
  }));

Deno.test("createAlexNet builds named models and refuses unknown ones", async () => {
  const net = await createAlexNet({ model: "alexnet-small", seed: 2 });
  assertEquals(net.config.name, "alexnet-small");
  assertEquals((await net.forward(new Float32Array(28 * 28), 1)).length, 10);
  net.destroy();
  assert(net.gpu.lost, "the network's own device is destroyed with it");
  await rejects(
    createAlexNet({ model: "vgg" }),
    /unknown model "vgg" \(known: alexnet, alexnet-small, torchvision\)/,
  );
});

Deno.test("the same seed gives the same parameters; another seed others", () =>
  withGpu(async (gpu) => {
    const a = Network.create(gpu, TINY, { seed: 5 }), b = Network.create(gpu, TINY, { seed: 5 });
    const c = Network.create(gpu, TINY, { seed: 6 });
    const [wa, wb, wc] = [await a.weights(), await b.weights(), await c.weights()];
    assertClose(wa.get("conv1.weight")!.data, wb.get("conv1.weight")!.data, { atol: 0, rtol: 0 });
    assert(wa.get("conv1.weight")!.data[0] !== wc.get("conv1.weight")!.data[0]);
    for (const n of [a, b, c]) n.destroy();
  }));

Deno.test("a lost device is a clear error, never a hang", async () => {
  const gpu = await Gpu.create();
  const net = Network.create(gpu, TINY);
  gpu.device.destroy(); // as when the driver resets
  await new Promise((r) => setTimeout(r, 50));
  await rejects(net.forward(new Float32Array(243), 1), /GPU device/);
  gpu.destroy();
});

Deno.test("WebGPU validation errors surface at the next readback, naming the problem", async () => {
  const gpu = await Gpu.create();
  try {
    gpu.pipeline(
      "broken",
      "@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }",
      [],
    );
    await rejects(gpu.check(), /WebGPU error: [\s\S]*undefined_name/);
  } finally {
    gpu.destroy();
  }
});

Deno.test("no adapter: the error names the backend and how to get a CPU adapter", async () => {
  const run = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { Gpu } from "${new URL("../gpu/device.ts", import.meta.url)}";
      try { await Gpu.create(); } catch (e) { console.log(e.name + ": " + e.message); }`,
    ],
    env: { DENO_WEBGPU_BACKEND: "dx12" }, // no such backend on Linux
  }).output();
  const out = new TextDecoder().decode(run.stdout);
  if (
    !/GpuError: no WebGPU adapter found \(DENO_WEBGPU_BACKEND=dx12\)[\s\S]*mesa-vulkan-drivers/
      .test(out)
  ) {
    throw new Error(`unexpected output: ${out}`);
  }
});

Deno.test("forward up to a layer returns that layer's output (fc7 features, pooled maps)", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, ALEXNET_SMALL, { seed: 3, init: "he" });
    try {
      const batch = 3, input = randomArray(batch * 784, 5);
      const weights = await net.weights();
      for (const name of ["pool2", "fc7"]) {
        const upTo = ALEXNET_SMALL.layers.findIndex((l) => l.name === name) + 1;
        const truncated = { ...ALEXNET_SMALL, layers: ALEXNET_SMALL.layers.slice(0, upTo) };
        const want = networkRef(truncated, weights, input, batch);
        const got = await net.forward(input, batch, { upTo: name });
        assertEquals(got.length, want.length, name);
        const scale = Math.max(...want.map(Math.abs));
        assertClose(got, want, { atol: 1e-4 * scale, rtol: 1e-3, what: name });
      }
      await rejects(net.forward(input, batch, { upTo: "fc9" }), /no layer "fc9" in alexnet-small/);
    } finally {
      net.destroy();
    }
  }));
