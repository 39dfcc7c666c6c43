/** The pictures: Figure 3's kernel grid, the training curves, Figure 4's nearest neighbours. */
import { deepStrictEqual, ok, strictEqual, throws } from "node:assert";
import type { Dataset } from "../../data/dataset.ts";
import { filterGrid } from "../../viz/filters.ts";
import { nearestNeighbours, neighbourGrid } from "../../viz/neighbors.ts";
import { plotMetrics } from "../../viz/plot.ts";
import { rng } from "../helpers.ts";

Deno.test("filterGrid: 96 RGB kernels in two towers, zero as grey, each scaled to its peak", () => {
  const next = rng(1), data = Float32Array.from({ length: 96 * 363 }, () => next() - 0.5);
  data.fill(0, 0, 363); // kernel 0: all zero
  data[363] = 2, data[364] = -2; // kernel 1 peaks at +-2
  const p = filterGrid({ shape: [96, 3, 11, 11], data }, { columns: 16, scale: 1 });
  // 16 tiles of 11 + 17 one-pixel gaps across; 3 rows per tower, a 3-pixel break between towers.
  deepStrictEqual([p.width, p.height, p.channels], [1 + 16 * 12, 1 + 6 * 12 + 3, 3]);
  const at = (x: number, y: number, c: number) => p.data[(c * p.height + y) * p.width + x];
  strictEqual(at(1, 1, 0), 128, "a zero weight is mid-grey");
  deepStrictEqual([at(13, 1, 0), at(14, 1, 0)], [255, 0], "kernel 1's peaks: white and black");
  // The gap between the towers is background, and tower B starts with kernel 48.
  const towerB = 1 + 3 * 12 + 3;
  for (let x = 0; x < p.width; x++) strictEqual(at(x, towerB - 2, 1), 255);
  const k48 = data.subarray(48 * 363, 49 * 363), peak = Math.max(...k48.map(Math.abs));
  strictEqual(
    at(1, towerB, 2),
    Math.round(127.5 + 127.5 * k48[2 * 121] / peak),
    "blue of kernel 48",
  );
  throws(() => filterGrid({ shape: [4, 2, 3, 3], data: new Float32Array(72) }), /1 or 3/);
});

Deno.test("plotMetrics: two panels, five curves with one point per epoch", () => {
  const epochs = Array.from({ length: 7 }, (_, i) => ({
    epoch: i + 1,
    lr: 0.01,
    trainLoss: 1 / (i + 1),
    trainAccuracy: 0.5 + i / 20,
    top1Error: 0.4 - i / 30,
    top5Error: 0.05,
    validationLoss: 0.9 / (i + 1),
    seconds: 10,
    imagesPerSecond: 100,
  }));
  const svg = plotMetrics(epochs);
  ok(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
  const curves = [...svg.matchAll(/<polyline class="series"[^>]*points="([^"]*)"/g)];
  strictEqual(curves.length, 5);
  for (const c of curves) strictEqual(c[1].split(" ").length, 7);
  for (const label of ["loss", "error", "validation top-5", "epoch"]) {
    ok(svg.includes(`>${label}<`), label);
  }
  throws(() => plotMetrics([]), /no epochs/);
});

Deno.test("nearestNeighbours against brute force; neighbourGrid rows hold the right images", () => {
  const next = rng(9), dim = 5;
  const base = Float32Array.from({ length: 40 * dim }, () => next());
  const queries = Float32Array.from({ length: 3 * dim }, () => next());
  const found = nearestNeighbours(queries, base, dim, 4);
  for (let q = 0; q < 3; q++) {
    const d = (b: number) =>
      base.subarray(b * dim, (b + 1) * dim).reduce(
        (s, v, i) => s + (v - queries[q * dim + i]) ** 2,
        0,
      );
    const want = Array.from({ length: 40 }, (_, i) => i).sort((a, b) => d(a) - d(b)).slice(0, 4);
    deepStrictEqual(Array.from(found.subarray(q * 4, q * 4 + 4)), want);
  }
  const d: Dataset = {
    count: 3,
    shape: [1, 2, 2],
    images: Uint8Array.from([10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30]),
    labels: new Int32Array(3),
    classes: [],
  };
  const query = { width: 2, height: 2, channels: 1 as const, data: new Uint8Array(4).fill(99) };
  const grid = neighbourGrid([query], d, Int32Array.from([2, 0]), 2);
  const row = [1, 4, 7].map((x) => grid.data[1 * grid.width + x]);
  deepStrictEqual(row, [99, 30, 10]);
  throws(() => nearestNeighbours(queries, base, dim, 41), /41 neighbours of 40 rows/);
});
