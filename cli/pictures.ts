/**
 * `filters`, `plot` and `neighbors`: the paper's figures from your models.
 *
 * @module
 */
import { type Dataset, makeBatch } from "../data/dataset.ts";
import type { Network } from "../mod.ts";
import { writeFileAtomic } from "../io/files.ts";
import { filterGrid } from "../viz/filters.ts";
import { nearestNeighbours, neighbourGrid } from "../viz/neighbors.ts";
import { plotMetrics } from "../viz/plot.ts";
import {
  BUNDLED_DATA,
  type Command,
  number,
  openData,
  readPictures,
  readWeights,
  required,
  UsageError,
  type Values,
  writePng,
} from "./common.ts";

/** `filters`. */
export const filtersCommand: Command = {
  help: `usage: deno run -A main.ts filters --weights FILE --out PNG [--columns N] [--scale N]

  conv1's kernels, each scaled by its largest magnitude (grey is zero), tower A's above tower
  B's; --columns per row (default 16), --scale pixels per weight (default 4)`,
  options: {
    weights: { type: "string" },
    out: { type: "string" },
    columns: { type: "string" },
    scale: { type: "string" },
  },
  run: runFilters,
};

/** `plot`. */
export const plotCommand: Command = {
  help: `usage: deno run -A main.ts plot --metrics runs/NAME/metrics.jsonl --out SVG

  loss (training, validation) and error (training top-1, validation top-1 and top-5) per epoch`,
  options: { metrics: { type: "string" }, out: { type: "string" } },
  run: runPlot,
};

/** `neighbors`. */
export const neighborsCommand: Command = {
  help: `usage: deno run -A main.ts neighbors IMAGE... --weights FILE --out PNG [options]

  One row per image: the image, then the training images whose last hidden layer's (fc7)
  feature vectors are nearest it.
  --data DIR     the training images to search (default: the bundled data)
  --k N          neighbours per image (default 6)
  --scale N      pixels per image pixel (default: 4 for images under 64 pixels, else 1)`,
  options: {
    weights: { type: "string" },
    out: { type: "string" },
    data: { type: "string" },
    k: { type: "string" },
    scale: { type: "string" },
  },
  positionals: true,
  run: runNeighbors,
};

async function runFilters(v: Values): Promise<void> {
  const out = required(v, "out", "filters");
  const columns = number(v, "columns", 16, { integer: true });
  const scale = number(v, "scale", 4, { integer: true });
  required(v, "weights", "filters");
  const { net, path } = await readWeights(v, "");
  try {
    const name = net.layers[0].name, weight = (await net.weights()).get(`${name}.weight`)!;
    const picture = filterGrid(weight, { columns, scale });
    await writePng(out, picture);
    console.error(
      `wrote ${out}: ${weight.shape[0]} ${weight.shape.slice(1).join("x")} kernels of ${name} ` +
        `from ${path} (${picture.width}x${picture.height})`,
    );
  } finally {
    await net.destroy();
  }
}

async function runPlot(v: Values): Promise<void> {
  const file = required(v, "metrics", "plot"), out = required(v, "out", "plot");
  let metrics;
  try {
    const text = await Deno.readTextFile(file);
    metrics = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  } catch (e) {
    throw new UsageError(`--metrics ${file}: ${(e as Error).message}`);
  }
  if (metrics.length === 0) throw new UsageError(`--metrics ${file}: no epochs yet`);
  await writeFileAtomic(out, new TextEncoder().encode(plotMetrics(metrics)));
  console.error(`wrote ${out}: ${metrics.length} epochs`);
}

/** Rows of `layer`'s outputs for every example of `d` (centre crops, the weights' preprocessing). */
async function features(
  net: Network,
  d: Dataset,
  layer: string,
  mean: Float32Array,
  std?: number[],
): Promise<Float32Array> {
  const [, h, w] = net.config.input, batch = 128;
  const parts: Float32Array[] = [];
  for (let first = 0; first < d.count; first += batch) {
    const indices = Array.from({ length: Math.min(batch, d.count - first) }, (_, i) => first + i);
    const { input } = makeBatch(d, indices, { mean, std, crop: [h, w] });
    parts.push(await net.forward(input, indices.length, { upTo: layer }));
  }
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

async function runNeighbors(v: Values, images: string[]): Promise<void> {
  if (images.length === 0) throw new UsageError("neighbors: name one or more image files");
  const out = required(v, "out", "neighbors");
  const wanted = number(v, "k", 6, { integer: true });
  required(v, "weights", "neighbors");
  const { net, preprocess } = await readWeights(v, "");
  try {
    const dir = String(v.data ?? BUNDLED_DATA);
    const data = await openData(dir, net.config.input, false, preprocess?.shape[1]);
    const [c] = net.config.input, [, size] = data.train.shape;
    const mean = preprocess?.mean ?? data.stats.mean;
    const set = await readPictures(images, c as 1 | 3, size);
    const stored = c * size * size;
    const queries = Array.from({ length: set.count }, (_, i) => ({
      width: size,
      height: size,
      channels: c as 1 | 3,
      data: set.images.subarray(i * stored, (i + 1) * stored),
    }));
    // The last hidden layer: the dense layer before the classifier (fc7).
    const dense = net.config.layers.filter((l) => l.kind === "dense");
    const layer = dense[dense.length - 2]?.name ?? net.layers[net.layers.length - 1].name;
    console.error(`computing ${layer} features of ${data.train.count} training images...`);
    const base = await features(net, data.train, layer, mean, preprocess?.std);
    const query = await features(net, set, layer, mean, preprocess?.std);
    const k = Math.min(wanted, data.train.count), dim = base.length / data.train.count;
    const indices = nearestNeighbours(query, base, dim, k);
    const scale = number(v, "scale", size < 64 ? 4 : 1, { integer: true });
    await writePng(out, neighbourGrid(queries, data.train, indices, k, scale));
    for (const [q, file] of images.entries()) {
      const found = [...indices.subarray(q * k, (q + 1) * k)];
      console.log(
        `${file}: ${found.map((i) => data.train.classes[data.train.labels[i]]).join(", ")}`,
      );
    }
    console.error(`wrote ${out}`);
  } finally {
    await net.destroy();
  }
}
