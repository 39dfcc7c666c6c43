// The checks of the three convolution kernels and the GEMM core under them against the float64
// reference, in the tilings helpers.ts names, in f32 and f16.
import { Gpu, type Precision } from "../../gpu/device.ts";
import type { Dispatch } from "../../gpu/launch.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { conv2dBackwardInput, readsVectorGradients } from "../../kernels/conv2d_backward_input.ts";
import { conv2dBackwardWeight } from "../../kernels/conv2d_backward_weight.ts";
import { conv2dForward, readsVectors } from "../../kernels/conv2d_forward.ts";
import {
  type Conv2dGeometry,
  conv2dOutputSize,
  weightLaunches,
} from "../../kernels/conv2d_geometry.ts";
import { GEMM_TILES, type GemmTile } from "../../kernels/gemm/tiles.ts";
import {
  assert,
  assertClose,
  type Check,
  CONV_CASES,
  convCaseData,
  convGeometry,
  PACKED_CASES,
  tilingsOf,
  withGpu,
} from "../helpers.ts";
import { conv2dBackwardRef, conv2dRef } from "../reference.ts";

/** The checks, in order: each is a Deno test (conv2d_test.ts); the browser tests run some in Chromium. */
export const CONV2D_CHECKS: Check[] = [];
const check = (name: string, run: () => Promise<void>) => {
  CONV2D_CHECKS.push([name, run]);
};

type Values = ArrayLike<number>;

/** The values rounded to half precision (to nearest, ties to even). */
const half = (v: Float32Array) => v.map(Math.f16round);

/**
 * Runs the forward pass and both gradients of case `g` in every tiling of `tilings` on `gpu`,
 * against the reference on operands rounded as `precision` rounds them; the weight gradient also
 * accumulates a second time onto the first.
 */
export async function checkConvolution(
  gpu: Gpu,
  [g, batch, relu]: [Conv2dGeometry, number, boolean],
  tilings: [string, GemmTile][],
  precision: Precision,
) {
  const { oh, ow, wShape, xs, ws, bs, dys } = convCaseData(g, batch);
  const round = precision === "f16" ? half : (v: Float32Array) => v;
  const ys = Float32Array.from(conv2dRef(g, batch, round(xs), round(ws), bs, relu));
  // The fused ReLU's mask is the relu_backward kernel's work: dy arrives masked.
  const gy = relu ? dys.map((v, i) => (ys[i] > 0 ? v : 0)) : dys;
  const want = conv2dBackwardRef(g, batch, round(xs), round(ws), round(gy));
  // WGSL lets a conversion to f16 take either neighbour, and lavapipe takes the one toward zero
  // for some texels it loads: mirrored operands are checked within that rounding's bound (each
  // product's relative error at most 2^-9) of the sums of absolute products.
  const abs = (v: Float32Array) => v.map(Math.abs), zeros = bs.map(() => 0);
  const bounds = {
    y: Float32Array.from(conv2dRef(g, batch, abs(xs), abs(ws), zeros, false)),
    ...conv2dBackwardRef(g, batch, abs(xs), abs(ws), abs(gy)),
  };
  const within = (got: Float32Array, want: Values, bound: Values, what: string) => {
    const bad = got.findIndex((v, i) => !(Math.abs(v - want[i]) <= 5e-5 + 2 ** -9 * bound[i]));
    assert(bad < 0, `${what}: ${got[bad]} at ${bad}, want ${want[bad]} within ${bound[bad]} / 512`);
  };
  const x = Tensor.from(gpu, [batch, g.inChannels, g.height, g.width], xs);
  const weight = Tensor.from(gpu, wShape, ws), bias = Tensor.from(gpu, [g.outChannels], bs);
  const dy = Tensor.from(gpu, [batch, g.outChannels, oh, ow], gy);
  const tolerance = { atol: 5e-5, rtol: 1e-4 };
  // Slices of a weight over the binding limit must start on a vec4 for the gradients to read vec4s.
  const vectorGradients = readsVectorGradients(g) &&
    weightLaunches(gpu, g, weight).every((s) => s.oBase % 4 === 0 && s.oCount % 4 === 0);
  for (const [tiling, tile] of tilings) {
    const y = Tensor.zeros(gpu, dy.shape), dx = Tensor.zeros(gpu, x.shape);
    const dWeight = Tensor.zeros(gpu, wShape), dBias = Tensor.zeros(gpu, [g.outChannels]);
    const common = { geometry: g, batch, tile };
    const forward = conv2dForward(gpu, { ...common, x, weight, bias, y, relu });
    const weights = (accumulate: boolean) =>
      conv2dBackwardWeight(gpu, { ...common, dy, x, dWeight, dBias, accumulate });
    const input = conv2dBackwardInput(gpu, { ...common, dy, weight, dx }), first = weights(false);
    for (const [launch, want] of [[forward, readsVectors(g)], [input, vectorGradients]] as const) {
      const vectors = launch.dispatches.some((d) => d.pipeline.key.includes(":vectors"));
      assert(vectors === want, `${launch.dispatches[0].label} reads vectors: ${vectors}`);
    }
    assert(first.dispatches.some((d) => d.pipeline.key.includes(":vectors")) === vectorGradients);
    if (tile.kind === "mirrored") {
      const mirrors = (launch: { dispatches: Dispatch[] }) =>
        launch.dispatches.some((d) => d.copies !== undefined);
      assert(mirrors(forward) === readsVectors(g), "the forward pass mirrors its vec4 operands");
      assert(mirrors(input) === vectorGradients && mirrors(first) === vectorGradients);
    }
    if (SPLIT_CASES.has(g) && tile.kind !== "workgroup") {
      assert(first.dispatches.some((d) => d.label.includes(" split ")), "the depth is not split");
    }
    gpu.run([...forward.dispatches, ...input.dispatches, ...first.dispatches]);
    const what = (t: string) => `${t}, tiling ${tiling}`;
    const close = (got: Float32Array, want: Values, bound: Values, what: string) =>
      precision === "f16" && tile.kind === "mirrored"
        ? within(got, want, bound, what)
        : assertClose(got, want, { ...tolerance, what });
    close(await y.read(), ys, bounds.y, what("y"));
    close(await dx.read(), want.dx, bounds.dx, what("dx"));
    close(await dWeight.read(), want.dw, bounds.dw, what("dw"));
    close(await dBias.read(), want.db, bounds.db, what("db"));
    gpu.run(weights(true).dispatches); // a second micro-batch adds to the first's gradients
    const twice = (v: Values) => Float64Array.from(v, (e) => 2 * e);
    close(await dBias.read(), twice(want.db), twice(bounds.db), what("2 db"));
    close(await dWeight.read(), twice(want.dw), twice(bounds.dw), what("2 dw"));
    for (const t of [y, dx, dWeight, dBias]) t.destroy();
  }
  for (const t of [x, weight, bias, dy]) t.destroy();
}

// The case whose weight gradient has too few blocks for a CPU adapter's cores: its depth is split
// (smaller cases may split too).
const SPLIT_CASES = new Set(
  CONV_CASES.filter(([name]) => name.includes("splits its depth")).map(([, g]) => g),
);

for (const [name, g, batch, relu] of CONV_CASES) {
  check(
    `conv2d forward, input and weight gradients match the reference: ${name}`,
    () => withGpu((gpu) => checkConvolution(gpu, [g, batch, relu], tilingsOf(name), "f32")),
  );
}

// f16 rounds in each kind of core: workgroup tiles hold f16, register blocks round what they load
// (four k at a time with vec4 loads), packed operands round when packed: on a gathered
// convolution and on a dense layer read by vec4s.
const F16_PACKED = new Set([
  "8 and 4 channels a group (packed operands gather B), stride 2, pad 2, 5x5, batch 1",
  "dense in 2 groups of 36 -> 12 channels read four a load, batch 11",
]);
for (const [name, g, batch, relu] of CONV_CASES.filter(([name]) => PACKED_CASES.has(name))) {
  const tilings = tilingsOf(name)
    .filter(([t]) =>
      t !== "blocks" && t !== "narrowBlocks" && t !== "tallPacked" &&
      (t !== "packed" || F16_PACKED.has(name))
    );
  check(
    `f16: conv2d kernels match the reference on f16 operands: ${name}`,
    () => withGpu((gpu) => checkConvolution(gpu, [g, batch, relu], tilings, "f16"), "f16"),
  );
}

// Textures read sampled (where llvmpipe reads them as storage textures by default; GPUs and
// SwiftShader always sample): packed operands gathered, and a dense layer's mirrored operands.
const SAMPLED = new Set([
  ...F16_PACKED,
  "64 channels a group in 2 groups, pad 1 (packed operands gather B a tap at a time), batch 2",
]);
for (const [name, g, batch, relu] of CONV_CASES.filter(([name]) => SAMPLED.has(name))) {
  const tilings = tilingsOf(name).filter(([t]) =>
    ["packed", "mirrored", "thinMirrored"].includes(t)
  );
  check(
    `sampled textures: conv2d kernels match the reference: ${name}`,
    () =>
      withGpu((gpu) => checkConvolution(gpu, [g, batch, relu], tilings, "f32"), "f32", "sampled"),
  );
}

check(
  "weights over the binding limit (512 bytes) run in slices: a conv and a dense layer",
  async () => {
    const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 512 } });
    try {
      // 12 rows of 144 bytes in two groups; then 13 dense rows of 24 weights (96 bytes), each
      // slice starting mid-binding and read four channels a load, in every tiling; then 16 dense
      // rows of 12 in slices of 4 rows starting on vec4s, so that the gradients read vec4s too.
      const conv = convGeometry({ inChannels: 8, outChannels: 12, groups: 2, padH: 1, padW: 1 });
      const dense = convGeometry({
        inChannels: 24,
        height: 1,
        width: 1,
        kernelH: 1,
        kernelW: 1,
        outChannels: 13,
      });
      const aligned = { ...dense, inChannels: 12, outChannels: 16 };
      assert(readsVectorGradients(aligned) && !readsVectorGradients(dense), "which read vec4s");
      // The dense case reads vec4s through every kind of core: a workgroup tile's scalar loaders
      // derived from them, register blocks, and the pack kernel.
      const denseTilings = [...tilingsOf(""), ["packed", GEMM_TILES.packed]] as [
        string,
        GemmTile,
      ][];
      for (
        const [g, batch, tilings] of [
          [conv, 1, tilingsOf("")],
          [dense, 3, denseTilings],
          [aligned, 5, denseTilings],
        ] as const
      ) {
        const { wShape, xs, ws, bs } = convCaseData(g, batch);
        const x = Tensor.from(gpu, [batch, g.inChannels, g.height, g.width], xs);
        const weight = Tensor.from(gpu, wShape, ws), bias = Tensor.from(gpu, [g.outChannels], bs);
        const y = Tensor.zeros(gpu, [batch, g.outChannels, ...conv2dOutputSize(g)]);
        for (const [, tile] of tilings) {
          const common = { geometry: g, batch, x, weight, bias, y, relu: false, tile };
          const launch = conv2dForward(gpu, common);
          const multiplies = launch.dispatches.filter((d) => !d.label.includes(" pack "));
          assert(multiplies.length > 2, `${multiplies.length} launches`);
          if (g !== conv) {
            assert(launch.dispatches.every((d) => d.pipeline.key.includes(":vectors")));
          }
          for (const b of launch.buffers) b.destroy();
        }
        for (const t of [x, weight, bias, y]) t.destroy();
        await checkConvolution(gpu, [g, batch, false], tilings, "f32");
      }
      await gpu.check();
    } finally {
      gpu.destroy();
    }
  },
);

check(
  "dense layers of different sizes share their pipelines (sizes in the uniform)",
  () =>
    withGpu(async (gpu) => {
      const dense = (inChannels: number, outChannels: number) =>
        convGeometry({ inChannels, outChannels, height: 1, width: 1, kernelH: 1, kernelW: 1 });
      const keys = [dense(24, 16), dense(40, 8)].map((g) => {
        const { wShape, xs, ws, bs, dys, oh, ow } = convCaseData(g, 3);
        const x = Tensor.from(gpu, [3, g.inChannels, 1, 1], xs),
          dy = Tensor.from(gpu, [3, g.outChannels, oh, ow], dys);
        const weight = Tensor.from(gpu, wShape, ws), bias = Tensor.from(gpu, [g.outChannels], bs);
        const y = Tensor.zeros(gpu, dy.shape), dx = Tensor.zeros(gpu, x.shape);
        const dWeight = Tensor.zeros(gpu, wShape), dBias = Tensor.zeros(gpu, [g.outChannels]);
        const common = { geometry: g, batch: 3, tile: GEMM_TILES.thinBlocks };
        const launches = [
          conv2dForward(gpu, { ...common, x, weight, bias, y, relu: g.inChannels === 24 }),
          conv2dBackwardInput(gpu, { ...common, dy, weight, dx }),
          conv2dBackwardWeight(gpu, { ...common, dy, x, dWeight, dBias, accumulate: false }),
        ];
        const pipelines = launches.map((l) => l.dispatches[0].pipeline);
        for (const l of launches) for (const b of l.buffers) b.destroy();
        for (const t of [x, dy, weight, bias, y, dx, dWeight, dBias]) t.destroy();
        return pipelines;
      });
      for (let i = 0; i < 3; i++) {
        assert(keys[0][i] === keys[1][i], `${keys[0][i].key} is not shared`);
      }
      await gpu.check();
    }),
);

// [input channels, output channels, size]: the forward pass gathers B from the input packed
// channels last for 17 in (padded to 20) and packs the im2col matrix for 5; 40 out lets the input
// gradient gather from the output gradient, 6 packs it.
check(
  "packed operands in chunks (scratch capped at one texture row) match the reference",
  async () => {
    // 4,096 texels a scratch texture: every GEMM here runs in several chunks of columns, and the
    // weight gradient in several chunks of rows too (A packed again for each).
    const gpu = await Gpu.create({ limits: { maxTextureDimension2D: 1 } });
    try {
      for (const [cin, cout, size] of [[17, 40, 13], [5, 6, 20]]) {
        const g = convGeometry({
          inChannels: cin,
          height: size,
          width: size,
          outChannels: cout,
          padH: 1,
          padW: 1,
        });
        const batch = 2, tile = GEMM_TILES.packed, [oh, ow] = conv2dOutputSize(g);
        const x = Tensor.zeros(gpu, [batch, cin, size, size]), dx = Tensor.zeros(gpu, x.shape);
        const y = Tensor.zeros(gpu, [batch, cout, oh, ow]), dy = Tensor.zeros(gpu, y.shape);
        const weight = Tensor.zeros(gpu, [cout, cin, 3, 3]), bias = Tensor.zeros(gpu, [cout]);
        const dWeight = Tensor.zeros(gpu, weight.shape), dBias = Tensor.zeros(gpu, [cout]);
        const common = { geometry: g, batch, tile };
        const launches = [
          conv2dForward(gpu, { ...common, x, weight, bias, y, relu: false }),
          conv2dBackwardInput(gpu, { ...common, dy, weight, dx }),
          conv2dBackwardWeight(gpu, { ...common, x, dy, dWeight, dBias, accumulate: false }),
        ];
        for (const l of launches) {
          // A chunk's multiply, whether or not its depth is split.
          const chunks = l.dispatches.filter((d) => / columns \d+\+\d+( split \d+)?$/.test(d.label))
            .length;
          assert(chunks > 2, `${cin} -> ${cout}: ${chunks} chunks`);
          for (const b of l.buffers) b.destroy();
        }
        for (const t of [x, dx, y, dy, weight, bias, dWeight, dBias]) t.destroy();
        await checkConvolution(gpu, [g, batch, false], [["packed", tile]], "f32");
      }
      await gpu.check();
    } finally {
      gpu.destroy();
    }
  },
);

check(
  "f16: an operand is rounded to half precision before it multiplies",
  () =>
    withGpu(async (gpu) => {
      // 1 + 2^-12 is 1 in f16 (10 bits of mantissa): an f32 core would give 1.000244.
      const g = convGeometry({
        inChannels: 1,
        height: 1,
        width: 1,
        kernelH: 1,
        kernelW: 1,
        outChannels: 1,
      });
      const x = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1 + 2 ** -12]));
      const weight = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
      const y = Tensor.zeros(gpu, [1, 1, 1, 1]), bias = Tensor.zeros(gpu, [1]);
      gpu.run(
        conv2dForward(gpu, { geometry: g, batch: 1, x, weight, bias, y, relu: false }).dispatches,
      );
      assertClose(await y.read(), [1], { atol: 0, rtol: 0 });
    }, "f16"),
);
