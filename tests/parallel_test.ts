// The two-device scheduler: the same numbers as one device, in both modes, and one weights file.
import { deepStrictEqual, ok as assert, strictEqual as assertEquals, throws } from "node:assert";
import {
  ALEXNET,
  ALEXNET_SMALL,
  createAlexNet,
  joinTowers,
  type ModelConfig,
  type NamedTensor,
  Network,
  type Parallelism,
  ParallelNetwork,
  splitTowers,
  towerHalf,
} from "../mod.ts";
import { assertClose, quadrants, randomArray, rng, TINY, withGpu } from "./helpers.ts";

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

async function read(tensors: Map<string, { read(): Promise<Float32Array> }>) {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of tensors) out.set(name, await t.read());
  return out;
}

function assertSameTensors(
  got: Map<string, NamedTensor>,
  want: Map<string, Float32Array>,
  what: string,
  tolerance = { atol: 1e-6, rtol: 1e-4 },
) {
  deepStrictEqual([...got.keys()], [...want.keys()]);
  for (const [name, t] of got) {
    assertClose(t.data, want.get(name)!, { ...tolerance, what: `${what} ${name}` });
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
    const one = Network.create(gpu, config, { seed: 4, init: "he" });
    const two = await ParallelNetwork.create(config, {
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
        assertSameTensors(await two.gradients(), await read(one.gradients), `step ${i} gradient`);
        assertSameTensors(
          await two.weights(),
          new Map([...await one.weights()].map(([n, t]) => [n, t.data])),
          `step ${i} parameter`,
        );
      }
      // The two-device file loads on one device and gives its logits.
      const back = Network.create(gpu, config, { init: "none" });
      await back.loadWeights(await two.weightsBytes());
      assertClose(await back.forward(input, batch), await two.forward(input, batch), {
        atol: 1e-5,
        what: "reloaded logits",
      });
      back.destroy();
    } finally {
      one.destroy();
      await two.destroy();
    }
  });
}

Deno.test("two devices, model parallel: alexnet-small equals one device (odd batch, micro-batches)", () =>
  // conv1's 32 maps of 28x28 a tower: two examples per call, so batch 5 runs as 2 + 2 + 1,
  // two chunks in flight in their own buffers.
  compareDevices(ALEXNET_SMALL, "model", 5, {
    limits: { maxStorageBufferBindingSize: 2 * 32 * 28 * 28 * 4 + 64 },
  }));

Deno.test("two devices, data parallel: alexnet-small equals one device, dropout masks included", () =>
  compareDevices(ALEXNET_SMALL, "data", 5));

// One step: each device compiles every kernel of its towers, which takes a while on a CPU adapter.
// Without overlap: one chunk of 2 (the path the test above does not take).
Deno.test("two devices, model parallel: alexnet at batch 2 equals one device", () =>
  compareDevices(ALEXNET, "model", 2, { steps: 1, overlap: false }));

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

Deno.test("createAlexNet: devices must be 1 or 2, and two devices acquire their own", async () => {
  // deno-lint-ignore no-explicit-any
  await createAlexNet({ devices: 3 as any }).then(
    () => assert(false),
    (e) => assert(/devices must be 1 or 2/.test(e.message)),
  );
  await withGpu(async (gpu) => {
    await createAlexNet({ devices: 2, gpu }).then(
      () => assert(false),
      (e) => assert(/acquires its own devices/.test(e.message)),
    );
  });
});
