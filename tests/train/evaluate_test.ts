// Accuracy over a dataset (train/evaluate.ts): the centre crop, and the paper's ten crops.
import { type Dataset, makeBatch } from "../../data/dataset.ts";
import { evaluateDataset } from "../../train/evaluate.ts";
import { assertClose, rng, withNetwork } from "../helpers.ts";

Deno.test("10-crop evaluation averages the softmax of the ten views", () =>
  withNetwork(async (net) => {
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
  }, { seed: 4, init: "he" }));
