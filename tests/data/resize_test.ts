// Resizing (data/resize.ts) against a direct float64 reference and Pillow; the paper's
// preprocessing.
import { deepStrictEqual } from "node:assert";
import type { Picture } from "../../data/image.ts";
import { resize, resizeAndCentreCrop } from "../../data/resize.ts";
import { assertClose, rng } from "../helpers.ts";

const fixture = (name: string) =>
  Deno.readFileSync(new URL(name, new URL("../fixtures/images/", import.meta.url)));

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
