// The benchmark runs and reports every layer (its figures are measurements, never asserted).
import { deepStrictEqual, ok as assert, rejects } from "node:assert";
import { bench, formatBench } from "../bench/bench.ts";
import { benchPyTorch } from "../bench/pytorch.ts";
import { type ModelConfig, Network } from "../mod.ts";
import { Gpu } from "../gpu/device.ts";
import { withGpu } from "./helpers.ts";

const TINY: ModelConfig = {
  name: "tiny",
  input: [1, 8, 8],
  classes: 3,
  layers: [
    { kind: "conv", name: "conv1", out: 4, kernel: 3, pad: 1 },
    { kind: "maxpool", name: "pool1", size: 2, stride: 2 },
    { kind: "dense", name: "fc", out: 3, relu: false },
  ],
};

Deno.test("bench reports every layer, the whole network and the data pipeline", () =>
  withGpu(async (gpu) => {
    const net = Network.create(gpu, TINY, { init: "he" });
    const result = await bench(net, 4, 1);
    deepStrictEqual(result.layers.map((l) => l.name), ["conv1", "pool1", "fc"]);
    assert(result.layers.every((l) => l.forwardMs >= 0 && l.backwardMs >= 0));
    assert(result.layers[1].forwardGflops === null, "pooling does no multiply-adds");
    assert(Object.values(result.network).every((v) => v > 0 && Number.isFinite(v)));
    assert(Object.values(result.loader).every((v) => v > 0 && Number.isFinite(v)));
    assert(result.ceilingGflops > 0 && Number.isFinite(result.ceilingGflops));
    assert(result.layers.every((l) => l.compileMs >= 0));
    assert(["gpu", "wall"].includes(result.setup.clock));
    assert(formatBench(result).includes("conv1"));
    assert(formatBench(result).includes("images/s of augmented batches"));
    assert(formatBench(result).includes("of ceiling"));
    net.destroy();
  }));

Deno.test("bench times layers at the largest micro-batch that fits when the batch does not", async () => {
  const small = await Gpu.create({ limits: { maxStorageBufferBindingSize: 8192 } });
  try {
    const net = Network.create(small, TINY, { init: "he" });
    assert(net.maxMicroBatch < 12, `micro-batch ${net.maxMicroBatch}`);
    const result = await bench(net, 12, 1);
    assert(result.setup.layerBatch === net.maxMicroBatch && result.setup.batch === 12);
    assert(Object.values(result.network).every((v) => v > 0 && Number.isFinite(v)));
    assert(formatBench(result).includes(`per layer at batch ${net.maxMicroBatch}`));
    net.destroy();
    await small.check();
  } finally {
    small.destroy();
  }
});

Deno.test("the PyTorch peer builds the same network (its parameter count) and times it", async () => {
  const parameters = 4 * 9 + 4 + 4 * 4 * 4 * 3 + 3; // conv1, then fc over 4 x 4 x 4
  const torch = await benchPyTorch(TINY, 2, 1, parameters);
  assert(torch.name.startsWith("PyTorch CPU"));
  assert(torch.inference > 0 && torch.training !== null && torch.training > 0);
  await rejects(benchPyTorch(TINY, 2, 1, parameters + 1), /not the same network/);
});
