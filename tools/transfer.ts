// Does fine-tuning pay? alexnet-small trained on Fashion-MNIST classes 0-4, then given a fresh head
// and fine-tuned with frozen convolutions on a few images of each of classes 5-9, against the same
// steps from scratch, on held-out images of classes 5-9. The test runs it on the bundled mini set;
// the full-size figures in docs/training.md come from
//   deno run -A tools/transfer.ts --data /usr/share/datasets/fashion-mnist --epochs 3
import { parseArgs } from "node:util";
import { type Dataset, makeBatch, permutation } from "../data/dataset.ts";
import { openDataset } from "../data/open.ts";
import { ALEXNET_SMALL, layerList, withClasses } from "../layers/models.ts";
import { createAlexNet, type Network } from "../layers/network.ts";
import type { NamedTensor } from "../io/safetensors.ts";

/** What the experiment measured: top-1 on the held-out images and the weights before and after. */
export interface TransferResult {
  fineTuned: number;
  fromScratch: number;
  heldOut: number;
  frozen: string[];
  pretrained: Map<string, NamedTensor>;
  tuned: Map<string, NamedTensor>;
}

const FIVE = withClasses(ALEXNET_SMALL, 5);
const BATCH = 50;

/** The images of `d` whose labels are `classes` (at most `each` of each), relabelled 0, 1, ... */
export function subset(d: Dataset, classes: number[], each = Infinity): Dataset {
  const per = d.shape[0] * d.shape[1] * d.shape[2], taken = new Map<number, number>();
  const picked: number[] = [];
  for (let i = 0; i < d.count; i++) {
    const k = classes.indexOf(d.labels[i]), n = taken.get(k) ?? 0;
    if (k >= 0 && n < each) {
      taken.set(k, n + 1);
      picked.push(i);
    }
  }
  const images = new Uint8Array(picked.length * per);
  picked.forEach((i, j) => images.set(d.images.subarray(i * per, (i + 1) * per), j * per));
  return {
    count: picked.length,
    shape: d.shape,
    images,
    labels: Int32Array.from(picked, (i) => classes.indexOf(d.labels[i])),
    classes: classes.map((c) => d.classes[c]),
  };
}

/** `epochs` epochs of SGD on `d` in batches of 50, centre crops (no augmentation). */
async function fit(net: Network, d: Dataset, mean: Float32Array, epochs: number, log = false) {
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(d.count, 3, epoch);
    for (let first = 0; first + BATCH <= d.count; first += BATCH) {
      const batch = makeBatch(d, order.subarray(first, first + BATCH), { mean, crop: [28, 28] });
      const { loss } = await net.trainStep(batch.input, batch.labels, { lr: 0.01 });
      if (log && (first / BATCH) % 100 === 0) {
        console.log(`epoch ${epoch + 1}/${epochs}: ${first}/${d.count} loss ${loss.toFixed(4)}`);
      }
    }
  }
}

/** Top-1 accuracy on all of `d`, in batches of 500. */
async function accuracy(net: Network, d: Dataset, mean: Float32Array): Promise<number> {
  let right = 0;
  for (let first = 0; first < d.count; first += 500) {
    const rows = Int32Array.from({ length: Math.min(500, d.count - first) }, (_, i) => first + i);
    const { input, labels } = makeBatch(d, rows, { mean, crop: [28, 28] });
    right += (await net.evaluate(input, labels)).top1 * rows.length;
  }
  return right / d.count;
}

/**
 * Pretrains on classes 0-4 of `data` for `epochs`, copies everything but the head into a fresh
 * network, freezes conv1-conv5 and fine-tunes on `each` images of each of classes 5-9 for two
 * epochs; the same two epochs from the same fresh network without the copy are the baseline.
 */
export async function transfer(data: string, epochs: number, each = 100, log = false) {
  const opened = await openDataset(data, { input: [1, 28, 28] });
  const mean = opened.stats.mean;
  const first = [0, 1, 2, 3, 4], second = [5, 6, 7, 8, 9];
  const pretrained = await createAlexNet({ model: FIVE, seed: 1, init: "he" });
  const tuned = await createAlexNet({ model: FIVE, seed: 2, init: "he" });
  const scratch = await createAlexNet({ model: FIVE, seed: 2, init: "he" });
  try {
    await fit(pretrained, subset(opened.train, first), mean, epochs, log);
    const start = await tuned.weights(), learned = await pretrained.weights();
    for (const [name, t] of learned) if (!name.startsWith("fc8.")) start.set(name, t);
    await tuned.setWeights(start);
    const frozen = layerList(FIVE, "conv1-conv5");
    await tuned.freeze(frozen);
    const few = subset(opened.train, second, each), heldOut = subset(opened.test, second);
    await fit(tuned, few, mean, 2);
    await fit(scratch, few, mean, 2);
    return {
      fineTuned: await accuracy(tuned, heldOut, mean),
      fromScratch: await accuracy(scratch, heldOut, mean),
      heldOut: heldOut.count,
      frozen,
      pretrained: learned,
      tuned: await tuned.weights(),
    } satisfies TransferResult;
  } finally {
    for (const net of [pretrained, tuned, scratch]) await net.destroy();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { data: { type: "string" }, epochs: { type: "string", default: "3" } },
  });
  if (!values.data) throw new Error("usage: tools/transfer.ts --data DIR [--epochs N]");
  const started = performance.now();
  const r = await transfer(values.data, Number(values.epochs), 100, true);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(
    `held-out top-1 on ${r.heldOut} images of classes 5-9: fine-tuned ${pct(r.fineTuned)}, ` +
      `from scratch ${pct(r.fromScratch)} (${
        ((performance.now() - started) / 60e3).toFixed(1)
      } min)`,
  );
}
