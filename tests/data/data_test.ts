/**
 * The data pipeline: decoding against Pillow's decodes (tools/images.py), resizing against Pillow
 * and a direct float64 reference, statistics against direct computation, crops, flips, the ten
 * test views, colour noise, bad inputs and determinism.
 */
import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert";
import { Image } from "imagescript";
import { type Dataset, makeBatch, meanImage } from "../../data/dataset.ts";
import { loadImageFolder } from "../../data/folder.ts";
import { BatchLoader } from "../../data/loader.ts";
import { openDataset } from "../../data/open.ts";
import { decodeImage, encodePng, ImageError, type Picture } from "../../data/image.ts";
import { resize, resizeAndCentreCrop } from "../../data/resize.ts";
import { colourPca, datasetStatistics, fingerprint } from "../../data/statistics.ts";
import { assertClose, rng } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/images/", import.meta.url);
const fixture = (name: string) => Deno.readFileSync(new URL(name, FIXTURES));
const EXPECTED: Record<string, { width: number; height: number; rgb: number[]; gray: number[] }> =
  JSON.parse(new TextDecoder().decode(fixture("expected.json")));

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

// Pillow's pixels are interleaved (HWC); ours planar (CHW).
const planar = (hwc: number[], channels: number) =>
  Uint8Array.from({ length: hwc.length }, (_, i) => {
    const n = hwc.length / channels, c = Math.floor(i / n), p = i % n;
    return hwc[p * channels + c];
  });

Deno.test("every PNG and JPEG fixture decodes to Pillow's pixels, grey and RGB", () => {
  for (const [name, e] of Object.entries(EXPECTED)) {
    // 16-bit samples may round either way; JPEG decoders differ by a level or two (IDCT, upsampling).
    const atol = name.endsWith(".jpg") ? 2 : name.includes("16") ? 1 : 0;
    const rgb = decodeImage(fixture(name), 3);
    deepStrictEqual([rgb.width, rgb.height, rgb.channels], [e.width, e.height, 3], name);
    assertClose(rgb.data, planar(e.rgb, 3), { atol, rtol: 0, what: `${name} RGB` });
    const grey = decodeImage(fixture(name), 1);
    assertClose(grey.data, Uint8Array.from(e.gray), {
      atol: Math.max(atol, 1),
      rtol: 0,
      what: `${name} grey`,
    });
    if (atol === 0) deepStrictEqual(grey.data, Uint8Array.from(e.gray), `${name} grey exact`);
  }
});

Deno.test("bad files fail with a message naming the reason", () => {
  const cases: [string, RegExp][] = [
    ["empty.png", /empty file/],
    ["not_an_image.png", /not a PNG or JPEG/],
    ["truncated.png", /PNG is truncated/],
    ["bad_crc.png", /chunk IDAT is damaged/],
    ["truncated.jpg", /JPEG is truncated/],
  ];
  for (const [name, message] of cases) {
    throws(
      () => decodeImage(fixture(name)),
      (e: Error) => e instanceof ImageError && message.test(e.message),
      name,
    );
  }
  // A decompression bomb: a valid 8x8 PNG whose header (CRC fixed up) claims 100,000 x 100,000.
  const bomb = encodePng(new Uint8Array(64), { width: 8, height: 8, channels: 1 });
  const header = new DataView(bomb.buffer, bomb.byteOffset);
  header.setUint32(16, 100_000), header.setUint32(20, 100_000);
  header.setUint32(29, crc32(bomb.subarray(12, 29)));
  throws(() => decodeImage(bomb), /PNG is 100000x100000, over 67108864 pixels/);
  // A JPEG frame header we do not decode: 12-bit samples.
  const jpeg = fixture("rgb.jpg").slice();
  const sof = jpeg.findIndex((b, i) => b === 0xff && jpeg[i + 1] === 0xc0);
  const huge = jpeg.slice();
  huge.set([0xff, 0xff, 0xff, 0xff], sof + 5); // 65535 x 65535
  throws(() => decodeImage(huge), /JPEG is 65535x65535, over/);
  jpeg[sof + 4] = 12;
  throws(() => decodeImage(jpeg), /12-bit samples/);
  jpeg[sof + 1] = 0xc3; // lossless
  throws(() => decodeImage(jpeg), /SOF3 .* not supported/);
});

Deno.test("a JPEG written by imagescript decodes close to what was written", async () => {
  const image = new Image(23, 14);
  // Smooth content: JPEG keeps it to a few levels at quality 100.
  for (let y = 0; y < 14; y++) {
    for (let x = 0; x < 23; x++) {
      image.setPixelAt(x + 1, y + 1, Image.rgbaToColor(x * 10, y * 15, 128, 255));
    }
  }
  const p = decodeImage(await image.encodeJPEG(100), 3);
  let worst = 0;
  for (let y = 0; y < 14; y++) {
    for (let x = 0; x < 23; x++) {
      const want = [x * 10, y * 15, 128];
      for (let c = 0; c < 3; c++) {
        worst = Math.max(worst, Math.abs(p.data[(c * 14 + y) * 23 + x] - want[c]));
      }
    }
  }
  ok(worst <= 6, `worst JPEG error ${worst}`);
});

// Antialiased bilinear resampling written directly in 2-D, in float64: the separable
// implementation must agree before rounding.
function resizeReference(p: Picture, width: number, height: number): Float64Array {
  const taps = (source: number, target: number, o: number) => {
    const scale = source / target, support = Math.max(scale, 1), centre = (o + 0.5) * scale;
    const w = Array.from(
      { length: source },
      (_, i) => Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support)),
    );
    const sum = w.reduce((a, b) => a + b);
    return w.map((v) => v / sum);
  };
  const out = new Float64Array(p.channels * width * height);
  for (let c = 0; c < p.channels; c++) {
    for (let y = 0; y < height; y++) {
      const wy = taps(p.height, height, y);
      for (let x = 0; x < width; x++) {
        const wx = taps(p.width, width, x);
        let s = 0;
        for (let sy = 0; sy < p.height; sy++) {
          for (let sx = 0; sx < p.width; sx++) {
            s += wy[sy] * wx[sx] * p.data[(c * p.height + sy) * p.width + sx];
          }
        }
        out[(c * height + y) * width + x] = s;
      }
    }
  }
  return out;
}

Deno.test("resize matches a direct float64 reference and Pillow's BILINEAR", () => {
  const r = JSON.parse(new TextDecoder().decode(fixture("resize.json")));
  const source: Picture = {
    width: r.source.width,
    height: r.source.height,
    channels: 1,
    data: Uint8Array.from(r.source.pixels),
  };
  for (const c of r.cases as { width: number; height: number; pixels: number[] }[]) {
    const got = resize(source, c.width, c.height);
    const want = resizeReference(source, c.width, c.height);
    // Rounding of the same value: at most half a level apart before rounding.
    assertClose(got.data, want, {
      atol: 0.5 + 1e-9,
      rtol: 0,
      what: `${c.width}x${c.height} vs reference`,
    });
    // Pillow rounds between its two passes and uses fixed-point weights: one level.
    assertClose(got.data, Uint8Array.from(c.pixels), {
      atol: 1,
      rtol: 0,
      what: `${c.width}x${c.height} vs Pillow`,
    });
  }
  // Three channels and an upscale in one direction, a downscale in the other.
  const next = rng(3);
  const rgb: Picture = {
    width: 17,
    height: 6,
    channels: 3,
    data: Uint8Array.from({ length: 306 }, () => next() * 256),
  };
  assertClose(resize(rgb, 5, 13).data, resizeReference(rgb, 5, 13), { atol: 0.5 + 1e-9, rtol: 0 });
});

Deno.test("the paper's preprocessing: shorter side to the size, then the centre square", () => {
  // A 9x4 image whose columns count 0..8: scaled to 4 rows it is unchanged in x; the centre 4
  // columns are 2..5 (floor((9 - 4) / 2) = 2).
  const data = Uint8Array.from({ length: 36 }, (_, i) => (i % 9) * 10);
  const q = resizeAndCentreCrop({ width: 9, height: 4, channels: 1, data }, 4);
  deepStrictEqual(Array.from(q.data.subarray(0, 4)), [20, 30, 40, 50]);
  // Portrait, shrinking: 6x12 to 3 keeps the middle of the 3x6 result.
  const tall = resizeAndCentreCrop({
    width: 6,
    height: 12,
    channels: 1,
    data: new Uint8Array(72).fill(9),
  }, 3);
  deepStrictEqual([tall.width, tall.height, tall.data.length], [3, 3, 9]);
});

const tiny = (shape: [number, number, number], count: number, seed: number): Dataset => {
  const next = rng(seed);
  return {
    count,
    shape,
    images: Uint8Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => next() * 256),
    labels: Int32Array.from({ length: count }, (_, i) => i % 3),
    classes: ["a", "b", "c"],
  };
};

Deno.test("mean image and colour PCA against direct computation", () => {
  const d = tiny([3, 4, 5], 7, 11);
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
    const d = tiny([3, 2, 2], 3, 2), cache = `${dir}/.stats.json`;
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
  const d = tiny([3, 3, 3], 2, 4);
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

Deno.test("image folders: classes from folder names, bad files skipped and counted, --strict", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = (v: number) =>
      encodePng(new Uint8Array(30 * 20 * 3).fill(v), { width: 30, height: 20, channels: 3 });
    for (const c of ["dog", "cat", "empty"]) await Deno.mkdir(`${dir}/${c}`);
    await Deno.writeFile(`${dir}/cat/1.png`, png(10));
    await Deno.writeFile(`${dir}/cat/2.jpg`, await new Image(8, 8).fill(0x808080ff).encodeJPEG(95));
    await Deno.writeFile(`${dir}/dog/1.png`, png(200));
    await Deno.writeFile(`${dir}/dog/notes.txt`, new TextEncoder().encode("not an image"));
    await Deno.writeFile(`${dir}/dog/cut.png`, png(1).subarray(0, 40));
    await Deno.writeFile(`${dir}/dog/.hidden.png`, png(1));
    let progress = 0;
    const { dataset, skipped } = await loadImageFolder(dir, {
      channels: 3,
      size: 6,
      onProgress: (n) => (progress = n),
    });
    deepStrictEqual(dataset.classes, ["cat", "dog", "empty"]);
    deepStrictEqual(Array.from(dataset.labels), [0, 0, 1]);
    deepStrictEqual(dataset.shape, [3, 6, 6]);
    deepStrictEqual([dataset.images[0], dataset.images[108], dataset.images[2 * 108]], [
      10,
      128,
      200,
    ]);
    deepStrictEqual(skipped.map((s) => [s.path.slice(dir.length + 1), s.reason.split(":")[0]]), [
      ["empty", "empty class folder"],
      ["dog/cut.png", "ImageError"],
      ["dog/notes.txt", "ImageError"],
    ]);
    strictEqual(progress, 5);
    await rejects(
      loadImageFolder(dir, { channels: 3, size: 6, strict: true }),
      /3 problems .*--strict/,
    );
    await rejects(loadImageFolder(`${dir}/missing`, { channels: 3, size: 6 }), /cannot read/);
    await rejects(loadImageFolder(`${dir}/empty`, { channels: 3, size: 6 }), /no class folders/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("batches built by workers equal batches built on the main thread", async () => {
  const d = tiny([3, 9, 9], 20, 8), pca = colourPca(d), mean = meanImage(d);
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

Deno.test("openDataset: IDX folders, train/val halves, and every tenth image held out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = (v: number) =>
      encodePng(new Uint8Array(12 * 12).fill(v), { width: 12, height: 12, channels: 1 });
    for (const c of ["a", "b"]) {
      await Deno.mkdir(`${dir}/flat/${c}`, { recursive: true });
      for (let i = 0; i < 20; i++) {
        await Deno.writeFile(
          `${dir}/flat/${c}/${String(i).padStart(2, "0")}.png`,
          png(c === "a" ? i : 100 + i),
        );
      }
    }
    const flat = await openDataset(`${dir}/flat`, { input: [1, 8, 8] });
    deepStrictEqual([flat.train.count, flat.test.count, flat.train.shape], [36, 4, [1, 9, 9]]);
    // Held out: the tenth and twentieth of each class (files 09 and 19).
    deepStrictEqual(Array.from({ length: 4 }, (_, e) => flat.test.images[e * 81]), [
      9,
      19,
      109,
      119,
    ]);
    deepStrictEqual(Array.from(flat.test.labels), [0, 0, 1, 1]);
    strictEqual(flat.statsCached, false);
    strictEqual((await openDataset(`${dir}/flat`, { input: [1, 8, 8] })).statsCached, true);

    for (const half of ["train", "val"]) {
      for (const c of half === "train" ? ["a", "b", "c"] : ["c", "a"]) {
        await Deno.mkdir(`${dir}/halves/${half}/${c}`, { recursive: true });
        await Deno.writeFile(`${dir}/halves/${half}/${c}/1.png`, png(7));
      }
    }
    const halves = await openDataset(`${dir}/halves`, { input: [1, 8, 8] });
    deepStrictEqual(halves.test.classes, ["a", "b", "c"]);
    deepStrictEqual(Array.from(halves.test.labels), [0, 2]); // val's "a", "c" in train's numbering
    await Deno.mkdir(`${dir}/halves/val/zebra`);
    await Deno.writeFile(`${dir}/halves/val/zebra/1.png`, png(1));
    await rejects(
      openDataset(`${dir}/halves`, { input: [1, 8, 8] }),
      /classes not in train\/: zebra/,
    );

    const idx = await openDataset(
      new URL("../../data/fashion-mnist-mini", import.meta.url).pathname,
      {
        input: [1, 28, 28],
      },
    );
    deepStrictEqual([idx.train.count, idx.test.count, idx.stats.mean.length], [5000, 1000, 784]);
    await rejects(
      openDataset(new URL("../../data/fashion-mnist-mini", import.meta.url).pathname, {
        input: [3, 227, 227],
      }),
      /takes 3x227x227 inputs; .* holds 1x28x28/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
