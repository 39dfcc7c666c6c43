// The training statistics (data/statistics.ts): mean image and colour PCA against direct
// computation, and their cache.
import { deepStrictEqual, ok, strictEqual } from "node:assert";
import { meanImage } from "../../data/dataset.ts";
import { colourPca, datasetStatistics, fingerprint } from "../../data/statistics.ts";
import { assertClose, randomDataset } from "../helpers.ts";

Deno.test("mean image and colour PCA against direct computation", () => {
  const d = randomDataset([3, 4, 5], 7, 11);
  const mean = meanImage(d);
  for (let i = 0; i < 60; i++) {
    let s = 0;
    for (let e = 0; e < 7; e++) s += d.images[e * 60 + i] / 255;
    ok(Math.abs(mean[i] - s / 7) < 1e-6);
  }
  // Covariance from every pixel as an RGB triple, then check C p = l p and orthonormality.
  const pixels: number[][] = [];
  for (let e = 0; e < 7; e++) {
    for (let p = 0; p < 20; p++) {
      pixels.push([0, 1, 2].map((c) => d.images[e * 60 + c * 20 + p] / 255));
    }
  }
  const mu = [0, 1, 2].map((c) => pixels.reduce((s, px) => s + px[c], 0) / pixels.length);
  const cov = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) =>
      pixels.reduce((s, px) => s + (px[i] - mu[i]) * (px[j] - mu[j]), 0) / pixels.length
    )
  );
  const { vectors, values } = colourPca(d);
  ok(values[0] >= values[1] && values[1] >= values[2], "eigenvalues sorted");
  for (let k = 0; k < 3; k++) {
    const p = [0, 1, 2].map((c) => vectors[3 * k + c]);
    const cp = [0, 1, 2].map((i) => cov[i].reduce((s, v, j) => s + v * p[j], 0));
    assertClose(cp, p.map((v) => v * values[k]), { atol: 1e-6, rtol: 1e-4, what: `C p${k}` });
    for (let l = 0; l < 3; l++) {
      const dot = [0, 1, 2].reduce((s, c) => s + vectors[3 * k + c] * vectors[3 * l + c], 0);
      ok(Math.abs(dot - (k === l ? 1 : 0)) < 1e-5, `p${k}.p${l} = ${dot}`);
    }
  }
});

Deno.test("statistics are cached by fingerprint and recomputed when the data changes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/a.png`;
    await Deno.writeFile(file, new Uint8Array([1, 2, 3]));
    const d = randomDataset([3, 2, 2], 3, 2), cache = `${dir}/.stats.json`;
    const print = await fingerprint([file], "2x2x3");
    const first = await datasetStatistics(d, cache, print);
    const second = await datasetStatistics(d, cache, print);
    deepStrictEqual([first.cached, second.cached], [false, true]);
    deepStrictEqual(second.stats.mean, first.stats.mean);
    deepStrictEqual(second.stats.pca, first.stats.pca);
    await Deno.writeFile(file, new Uint8Array([1, 2, 3, 4]));
    const changed = await fingerprint([file], "2x2x3");
    ok(changed !== print, "a changed file changes the fingerprint");
    strictEqual((await datasetStatistics(d, cache, changed)).cached, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
