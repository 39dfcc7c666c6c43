// safetensors: round trip, other dtypes, and every malformed case rejected with its message.
import { deepStrictEqual, rejects, strictEqual as assertEquals, throws } from "node:assert";
import { parseSafetensors, SafetensorsError, serializeSafetensors } from "../../io/safetensors.ts";
import { rng, withNetwork } from "../helpers.ts";

/** A file with a hand-written header and data, to build malformed cases. */
function file(header: unknown, data = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("safetensors round trip keeps names, order, shapes, values and metadata", () => {
  const tensors = new Map([
    ["b", { shape: [2, 3], data: new Float32Array([1, -2, 3.5, 4, 5, 6]) }],
    ["a", { shape: [], data: new Float32Array([7]) }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const bytes = serializeSafetensors(tensors, { format: "pt" });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + headerLength) % 8, 0, "data starts 8-byte aligned");
  const parsed = parseSafetensors(bytes);
  deepStrictEqual([...parsed.tensors.keys()], ["b", "a", "empty"]);
  deepStrictEqual(parsed.tensors.get("b"), tensors.get("b"));
  deepStrictEqual(parsed.tensors.get("a"), tensors.get("a"));
  deepStrictEqual(parsed.metadata, { format: "pt" });
});

Deno.test("safetensors reads F16, BF16 and F64 as float32", () => {
  const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001]).buffer); // 1, -2, ~1/3, 2^-24
  const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0x4049]).buffer); // 1, 3.140625
  const f64 = new Uint8Array(new Float64Array([0.1, -1e30]).buffer);
  const data = new Uint8Array([...f16, ...bf16, ...f64]);
  const parsed = parseSafetensors(file({
    h: { dtype: "F16", shape: [4], data_offsets: [0, 8] },
    bf: { dtype: "BF16", shape: [2], data_offsets: [8, 12] },
    d: { dtype: "F64", shape: [2], data_offsets: [12, 28] },
  }, data));
  deepStrictEqual([...parsed.tensors.get("h")!.data], [
    1,
    -2,
    Math.fround(0.333251953125),
    Math.fround(2 ** -24),
  ]);
  deepStrictEqual([...parsed.tensors.get("bf")!.data], [1, 3.140625]);
  deepStrictEqual([...parsed.tensors.get("d")!.data], [Math.fround(0.1), Math.fround(-1e30)]);
});

const f32x2 = new Uint8Array(8);
const MALFORMED: [string, Uint8Array, RegExp][] = [
  [
    "shorter than the length field",
    new Uint8Array(5),
    /the file is 5 bytes; a safetensors file starts with an 8-byte header length/,
  ],
  [
    "header longer than the file",
    file({}, new Uint8Array(0), 100n),
    /the header length 100 overruns the file \(10 bytes\)/,
  ],
  [
    "header length 2^63",
    file({}, new Uint8Array(0), 2n ** 63n),
    /the header length 9223372036854775808 overruns the file/,
  ],
  [
    "non-UTF-8 header",
    file("", new Uint8Array(0), 2n).map((b, i) => (i >= 8 ? 0xff : b)).slice(0, 10),
    /overruns|not valid UTF-8/,
  ],
  ["non-JSON header", file("{nope"), /the header is not JSON/],
  ["JSON that is not an object", file("[1, 2]"), /the header is not a JSON object/],
  [
    "unsupported dtype",
    file({ t: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, f32x2),
    /tensor "t": dtype "I64" is not supported/,
  ],
  [
    "missing dtype",
    file({ t: { shape: [1], data_offsets: [0, 4] } }, f32x2),
    /tensor "t": dtype undefined is not supported/,
  ],
  [
    "negative dimension",
    file({ t: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, f32x2),
    /tensor "t": shape \[-1\] is not a list of sizes/,
  ],
  [
    "offsets out of range",
    file({ t: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32x2),
    /tensor "t": bytes 0..16 lie past the end of the data \(8 bytes\)/,
  ],
  [
    "reversed offsets",
    file({ t: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, f32x2),
    /tensor "t": data_offsets \[4,0\] is not a \[begin, end\] byte range/,
  ],
  [
    "size not matching the shape",
    file({ t: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, f32x2),
    /tensor "t": 8 bytes of data for shape \[3\] of F32 \(12 expected\)/,
  ],
  [
    "overlapping tensors",
    file({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, f32x2),
    /tensors "a" and "b" overlap/,
  ],
  [
    "metadata that is not a string map",
    file({ __metadata__: { n: 1 } }),
    /__metadata__ entry "n" is not a string/,
  ],
];
for (const [name, bytes, message] of MALFORMED) {
  Deno.test(`safetensors rejects a file with ${name}`, () => {
    throws(
      () => parseSafetensors(bytes),
      (e: unknown) => e instanceof SafetensorsError && message.test(e.message),
    );
  });
}

Deno.test("safetensors: a header that is not UTF-8 is named as such", () => {
  const bytes = file("{}");
  bytes[8] = 0xff;
  throws(() => parseSafetensors(bytes), /the header is not valid UTF-8/);
});

Deno.test("loadWeights names missing, extra and mis-shaped tensors, and damaged files", () =>
  withNetwork(async (net) => {
    const weights = Object.fromEntries(await net.weights());
    const { "fc2.bias": bias, ...missing } = weights;
    await rejects(net.loadWeights(serializeSafetensors(missing)), /missing tensor\(s\) fc2.bias/);
    await rejects(
      net.loadWeights(serializeSafetensors({ ...weights, "fc9.bias": bias })),
      /tensor\(s\) fc9.bias are not in this model/,
    );
    const transposed = { shape: [72, 16], data: weights["fc1.weight"].data };
    await rejects(
      net.loadWeights(serializeSafetensors({ ...weights, "fc1.weight": transposed })),
      /tensor fc1.weight has shape \[72,16\], the model needs \[16,72\]/,
    );
    await rejects(net.loadWeights(new Uint8Array(3)), SafetensorsError);
    await rejects(net.loadWeights("/nonexistent/weights.safetensors"), Deno.errors.NotFound);
  }));

Deno.test("fuzz: flipped bytes and truncations never throw anything but SafetensorsError", () => {
  const valid = serializeSafetensors({
    "conv.weight": { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    "conv.bias": { shape: [2], data: new Float32Array([7, 8]) },
  }, { format: "pt" });
  const next = rng(2026);
  let rejected = 0;
  for (let i = 0; i < 3000; i++) {
    let bytes = valid.slice();
    if (next() < 0.3) bytes = bytes.subarray(0, Math.floor(next() * bytes.length));
    const flips = 1 + Math.floor(next() * 4);
    for (let f = 0; f < flips && bytes.length > 0; f++) {
      bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
    }
    try {
      const parsed = parseSafetensors(bytes);
      // What parses holds no more data than the file.
      const held = [...parsed.tensors.values()].reduce((n, t) => n + t.data.byteLength, 0);
      if (held > bytes.length) {
        throw new Error(`case ${i}: ${held} bytes of tensors from a ${bytes.length}-byte file`);
      }
    } catch (e) {
      if (!(e instanceof SafetensorsError)) {
        throw new Error(`case ${i}: ${(e as Error).name}: ${(e as Error).message}`);
      }
      rejected++;
    }
  }
  if (rejected < 1000) throw new Error(`only ${rejected} of 3000 damaged files were rejected`);
});
