// Decoding (data/image.ts) against Pillow's decodes (tools/images.py); bad files fail by name.
import { deepStrictEqual, ok, throws } from "node:assert";
import { Image } from "imagescript";
import { decodeImage, encodePng, ImageError } from "../../data/image.ts";
import { assertClose } from "../helpers.ts";

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
