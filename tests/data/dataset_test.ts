// Batches (data/dataset.ts, data/loader.ts): crops, flips, the ten test views, colour noise,
// and workers building what the main thread builds.
import { deepStrictEqual, ok, throws } from "node:assert";
import { type Dataset, makeBatch, meanImage } from "../../data/dataset.ts";
import { BatchLoader } from "../../data/loader.ts";
import { colourPca } from "../../data/statistics.ts";
import { randomDataset } from "../helpers.ts";

Deno.test("crops, flips and the ten test views take the right pixels", () => {
  // One 1x4x5 image whose value is 10 * row + column.
  const d: Dataset = {
    count: 1,
    shape: [1, 4, 5],
    images: Uint8Array.from({ length: 20 }, (_, i) => 10 * Math.floor(i / 5) + (i % 5)),
    labels: new Int32Array([2]),
    classes: [],
  };
  const mean = new Float32Array(20);
  const view = (v: number) =>
    Array.from(
      makeBatch(d, [0], { mean, crop: [2, 3], view: v }).input,
      (x) => Math.round(x * 255),
    );
  deepStrictEqual(view(0), [0, 1, 2, 10, 11, 12]); // top left
  deepStrictEqual(view(1), [2, 3, 4, 12, 13, 14]); // top right
  deepStrictEqual(view(2), [20, 21, 22, 30, 31, 32]); // bottom left
  deepStrictEqual(view(3), [22, 23, 24, 32, 33, 34]); // bottom right
  deepStrictEqual(view(4), [11, 12, 13, 21, 22, 23]); // centre
  deepStrictEqual(view(9), [13, 12, 11, 23, 22, 21]); // centre, mirrored
  deepStrictEqual(view(5), [2, 1, 0, 12, 11, 10]); // top left, mirrored
  // Stored at the crop's size, the corners come from the image padded by viewPad (mean padding).
  const padded = (v: number) =>
    Array.from(
      makeBatch(d, [0], { mean, crop: [4, 5], view: v, viewPad: 1 }).input,
      (x) => Math.round(x * 255),
    );
  deepStrictEqual(padded(0).slice(0, 7), [0, 0, 0, 0, 0, 0, 0]);
  deepStrictEqual(padded(3).slice(0, 5), [11, 12, 13, 14, 0]);
  deepStrictEqual(padded(4), Array.from(d.images));
  throws(() => makeBatch(d, [0], { mean, crop: [5, 3] }), /crop/);
  throws(() => makeBatch(d, [0], { mean, view: 10 }), /view 10/);

  // Random crops: every training crop is a window of the image (or of its mean padding), the
  // same for the same (seed, step) and different across steps.
  const seen = new Set<string>();
  for (let step = 0; step < 40; step++) {
    const augment = { pad: 1, flip: true, seed: 9, step };
    const a = makeBatch(d, [0], { mean, crop: [2, 3], augment }).input;
    deepStrictEqual(a, makeBatch(d, [0], { mean, crop: [2, 3], augment }).input);
    const px = Array.from(a, (x) => Math.round(x * 255));
    let found = false;
    for (let oy = -1; oy <= 3; oy++) {
      for (let ox = -1; ox <= 3; ox++) {
        for (const flip of [false, true]) {
          const want = [0, 1].flatMap((y) =>
            [0, 1, 2].map((x) => {
              const sy = y + oy, sx = (flip ? 2 - x : x) + ox;
              return sy >= 0 && sy < 4 && sx >= 0 && sx < 5 ? 10 * sy + sx : 0;
            })
          );
          found ||= want.every((v, i) => v === px[i]);
        }
      }
    }
    ok(found, `step ${step}: ${px} is no window of the image`);
    seen.add(px.join());
  }
  ok(seen.size > 10, `only ${seen.size} distinct crops in 40 steps`);
});

Deno.test("colour noise adds one RGB shift per image along the principal components", () => {
  const d = randomDataset([3, 3, 3], 2, 4);
  const mean = meanImage(d), pca = colourPca(d);
  const plain =
    makeBatch(d, [0, 1], { mean, augment: { pad: 0, flip: false, seed: 1, step: 0 } }).input;
  const noisy =
    makeBatch(d, [0, 1], { mean, augment: { pad: 0, flip: false, seed: 1, step: 0, pca } }).input;
  for (let e = 0; e < 2; e++) {
    const shift = [0, 1, 2].map((c) => noisy[e * 27 + c * 9] - plain[e * 27 + c * 9]);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 9; p++) {
        ok(Math.abs(noisy[e * 27 + c * 9 + p] - plain[e * 27 + c * 9 + p] - shift[c]) < 1e-6);
      }
    }
    // The shift lies in the span of p_i scaled by l_i: solve for a_i and check it is plausible.
    const alpha = [0, 1, 2].map((i) =>
      [0, 1, 2].reduce((s, c) => s + pca.vectors[3 * i + c] * shift[c], 0) / pca.values[i]
    );
    ok(alpha.every((a) => Math.abs(a) < 0.6), `a = ${alpha} is not N(0, 0.1)-sized`);
    ok(alpha.some((a) => a !== 0), "no noise added");
  }
});

Deno.test("batches built by workers equal batches built on the main thread", async () => {
  const d = randomDataset([3, 9, 9], 20, 8), pca = colourPca(d), mean = meanImage(d);
  const loader = new BatchLoader(d, 2);
  try {
    for (let step = 0; step < 4; step++) {
      const indices = [step, 19 - step, 7];
      const options = {
        mean,
        crop: [7, 7] as const,
        augment: { pad: 0, flip: true, seed: 3, step, pca },
      };
      const [a, b] = await Promise.all([
        loader.batch(indices, options),
        loader.batch(indices, options),
      ]);
      deepStrictEqual(a, makeBatch(d, indices, options));
      deepStrictEqual(b, a);
    }
  } finally {
    loader.close();
  }
});
