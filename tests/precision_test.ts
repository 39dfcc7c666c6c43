// f16 precision: the GEMM core rounds every operand to half precision and sums the exact products
// in f32. Against the float64 reference run on operands rounded to f16 (what the core multiplies)
// an f16 device agrees as tightly as an f32 device agrees with the plain reference, in every
// tiling; against f32, the network's logits, losses and gradients stay within f16's error.
import { ok as assert, rejects } from "node:assert";
import { Gpu, type Precision } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { conv2dBackwardInput } from "../kernels/conv2d_backward_input.ts";
import { conv2dBackwardWeight } from "../kernels/conv2d_backward_weight.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { ALEXNET_SMALL, createAlexNet, type ModelConfig, Network } from "../mod.ts";
import {
  assertClose,
  CONV_CASES,
  convCaseData,
  quadrants,
  randomArray,
  TILINGS,
  TINY,
  withGpu,
} from "./helpers.ts";
import { conv2dBackwardRef, conv2dRef } from "./reference.ts";

/** The values rounded to half precision (to nearest, ties to even). */
const half = (v: Float32Array) => v.map(Math.f16round);

for (const [name, g, batch, relu] of CONV_CASES) {
  Deno.test(`f16: convolution forward and backward match the reference on f16 operands: ${name}`, () =>
    withGpu(async (gpu) => {
      const { oh, ow, wShape, xs, ws, bs, dys } = convCaseData(g, batch);
      const x = Tensor.from(gpu, [batch, g.inChannels, g.height, g.width], xs);
      const weight = Tensor.from(gpu, wShape, ws), bias = Tensor.from(gpu, [g.outChannels], bs);
      const dy = Tensor.from(gpu, [batch, g.outChannels, oh, ow], dys);
      // The bias is added in f32 by the epilogue, not multiplied: it is not rounded.
      const want = conv2dRef(g, batch, half(xs), half(ws), bs, relu);
      const wantBackward = conv2dBackwardRef(g, batch, half(xs), half(ws), half(dys));
      const tolerance = { atol: 5e-5, rtol: 1e-4 };
      for (const [tiling, tile] of TILINGS) {
        const y = Tensor.zeros(gpu, [batch, g.outChannels, oh, ow]);
        const dx = Tensor.zeros(gpu, x.shape), dWeight = Tensor.zeros(gpu, wShape);
        const dBias = Tensor.zeros(gpu, [g.outChannels]);
        const common = { geometry: g, batch, tile };
        gpu.run([
          ...conv2dForward(gpu, { ...common, x, weight, bias, y, relu }).dispatches,
          ...conv2dBackwardInput(gpu, { ...common, dy, weight, dx }).dispatches,
          ...conv2dBackwardWeight(gpu, { ...common, dy, x, dWeight, dBias, accumulate: false })
            .dispatches,
        ]);
        const what = (t: string) => `${t}, tiling ${tiling}`;
        assertClose(await y.read(), want, { ...tolerance, what: what("y") });
        assertClose(await dx.read(), wantBackward.dx, { ...tolerance, what: what("dx") });
        assertClose(await dWeight.read(), wantBackward.dw, { ...tolerance, what: what("dw") });
        assertClose(await dBias.read(), wantBackward.db, { ...tolerance, what: what("db") });
        for (const t of [y, dx, dWeight, dBias]) t.destroy();
      }
      for (const t of [x, weight, bias, dy]) t.destroy();
    }, "f16"));
}

Deno.test("a precision other than f32 or f16 is refused by name", async () => {
  await rejects(
    () => Gpu.create({ precision: "bf16" as Precision }),
    /precision must be "f32" or "f16", got "bf16"/,
  );
});

/** max |a - b| over max |b|: the error relative to the values' scale. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let error = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    error = Math.max(error, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return error / scale;
}

/** `config` built from `seed` on the f32 device and on the f16 one, destroyed after `body`. */
function onBoth(
  config: ModelConfig,
  seed: number,
  body: (nets: [Network, Network]) => Promise<void>,
): Promise<void> {
  return withGpu((full) =>
    withGpu(async (half) => {
      const nets: [Network, Network] = [
        Network.create(full, config, { seed, init: "he" }),
        Network.create(half, config, { seed, init: "he" }),
      ];
      try {
        await body(nets);
      } finally {
        for (const n of nets) n.destroy();
      }
    }, "f16")
  );
}

Deno.test("f16: alexnet-small's logits stay within f16's error of f32's, and differ from them", () =>
  onBoth(ALEXNET_SMALL, 5, async (nets) => {
    const input = randomArray(3 * 28 * 28, 6);
    const [want, got] = await Promise.all(nets.map((n) => n.forward(input, 3)));
    const error = relativeError(got, want);
    assert(error > 0 && error < 1e-2, `logits' relative error ${error}`);
  }));

Deno.test("f16: training tracks f32 step by step and learns the problem", () =>
  onBoth(TINY, 7, async (nets) => {
    for (let step = 0; step < 60; step++) {
      const { input, labels } = quadrants(16, 200 + step);
      const [want, got] = await Promise.all(
        nets.map((n) => n.trainStep(input, labels, { lr: 0.05 })),
      );
      assertClose([got.loss], [want.loss], {
        atol: 0.02,
        rtol: 0.05,
        what: `loss at step ${step}`,
      });
      if (step === 0) {
        for (const [param, g] of nets[0].gradients) {
          const error = relativeError(await nets[1].gradients.get(param)!.read(), await g.read());
          assert(error < 1e-2, `${param}'s gradient: relative error ${error}`);
        }
      }
    }
    const test = quadrants(64, 99);
    const { top1 } = await nets[1].evaluate(test.input, test.labels);
    assert(top1 > 0.9, `top-1 accuracy ${top1}`);
  }));

Deno.test("f16 reaches both devices: two f16 devices' logits are f16's, not f32's", () =>
  onBoth(ALEXNET_SMALL, 8, async ([full, half]) => {
    const two = await createAlexNet({
      model: ALEXNET_SMALL,
      seed: 8,
      init: "he",
      devices: 2,
      parallel: "data",
      precision: "f16",
    });
    try {
      const input = randomArray(4 * 28 * 28, 9);
      const [f16, got, f32] = await Promise.all([half, two, full].map((n) => n.forward(input, 4)));
      // Each device runs 2 examples, whose sums run in another order than at batch 4; rounding to
      // f16 turns those last-bit differences into half-precision ones where a value sits near a
      // rounding boundary (one device: 5e-4 between batch 1 and 4, against 7e-7 in f32).
      const error = relativeError(got, f16);
      assert(error < 1e-2, `two f16 devices against one: relative error ${error}`);
      // Two f32 devices give one f32 device's logits to about 1e-6: these are f16's.
      assert(relativeError(got, f32) > 1e-5, "two f16 devices computed in f32");
    } finally {
      await two.destroy();
    }
  }));
