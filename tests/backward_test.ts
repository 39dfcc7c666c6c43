// Every backward kernel against the float64 reference backward (itself checked against finite
// differences in reference_test.ts), on awkward shapes.
import { ok as assert } from "node:assert";
import { Tensor } from "../gpu/tensor.ts";
import { conv2dBackwardInput } from "../kernels/conv2d_backward_input.ts";
import { conv2dBackwardWeight } from "../kernels/conv2d_backward_weight.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { conv2dOutputSize } from "../kernels/conv2d_geometry.ts";
import { dropoutForward } from "../kernels/dropout_forward.ts";
import { GEMM_TILES } from "../kernels/gemm.ts";
import { lrnBackward } from "../kernels/lrn_backward.ts";
import { lrnForward, PAPER_LRN } from "../kernels/lrn_forward.ts";
import { maxPoolBackward } from "../kernels/maxpool_backward.ts";
import { maxPoolForward } from "../kernels/maxpool_forward.ts";
import { reluBackward } from "../kernels/relu_backward.ts";
import { softmaxCrossEntropy } from "../kernels/softmax_cross_entropy.ts";
import { sgdUpdate } from "../kernels/sgd_update.ts";
import { Gpu } from "../gpu/device.ts";
import {
  assertClose,
  CONV_CASES,
  convCaseData,
  convGeometry as geometry,
  randomArray,
  TILINGS,
  withGpu,
} from "./helpers.ts";
import {
  conv2dBackwardRef,
  conv2dRef,
  lrnBackwardRef,
  maxPoolBackwardRef,
  softmaxCrossEntropyRef,
} from "./reference.ts";

for (const [name, g, batch, relu] of CONV_CASES) {
  Deno.test(`conv2d backward (input, weight, bias) matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const { oh, ow, wShape, xs, ws, bs, dys } = convCaseData(g, batch);
      const ys = Float32Array.from(conv2dRef(g, batch, xs, ws, bs, relu));
      const x = Tensor.from(gpu, [batch, g.inChannels, g.height, g.width], xs);
      // The fused ReLU's mask is the relu_backward kernel's work (tested below): dy arrives masked.
      const gy = relu ? dys.map((v, i) => (ys[i] > 0 ? v : 0)) : dys;
      const dy = Tensor.from(gpu, [batch, g.outChannels, oh, ow], gy);
      const weight = Tensor.from(gpu, wShape, ws);
      const want = conv2dBackwardRef(g, batch, xs, ws, gy);
      const tolerance = { atol: 5e-5, rtol: 1e-4 };
      for (const [tiling, tile] of TILINGS) {
        const dx = Tensor.zeros(gpu, x.shape), dWeight = Tensor.zeros(gpu, wShape);
        const dBias = Tensor.zeros(gpu, [g.outChannels]);
        const common = { geometry: g, batch, dy, tile };
        gpu.run([
          ...conv2dBackwardInput(gpu, { ...common, weight, dx }).dispatches,
          ...conv2dBackwardWeight(gpu, { ...common, x, dWeight, dBias, accumulate: false })
            .dispatches,
        ]);
        assertClose(await dx.read(), want.dx, { ...tolerance, what: `dx, tiling ${tiling}` });
        assertClose(await dWeight.read(), want.dw, { ...tolerance, what: `dw, tiling ${tiling}` });
        assertClose(await dBias.read(), want.db, { ...tolerance, what: `db, tiling ${tiling}` });
        // accumulate adds a second batch's gradients onto the first's.
        gpu.run(
          conv2dBackwardWeight(gpu, { ...common, x, dWeight, dBias, accumulate: true }).dispatches,
        );
        assertClose(await dBias.read(), want.db.map((v) => 2 * v), {
          ...tolerance,
          what: `accumulated db, ${tiling}`,
        });
      }
    }));
}

Deno.test("conv2d backward over weight slices (binding limit 512 bytes) matches the reference", async () => {
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 512 } });
  try {
    const g = geometry({ inChannels: 8, outChannels: 12, groups: 2, padH: 1, padW: 1 }); // 12 rows of 144 bytes
    const batch = 1, [oh, ow] = conv2dOutputSize(g);
    const wShape = [12, 4, 3, 3];
    const xs = randomArray(8 * 49, 5),
      ws = randomArray(12 * 36, 6),
      dys = randomArray(12 * oh * ow, 7);
    const x = Tensor.from(gpu, [1, 8, 7, 7], xs), dy = Tensor.from(gpu, [1, 12, oh, ow], dys);
    const weight = Tensor.from(gpu, wShape, ws);
    const dx = Tensor.zeros(gpu, x.shape),
      dWeight = Tensor.zeros(gpu, wShape),
      dBias = Tensor.zeros(gpu, [12]);
    const common = { geometry: g, batch, dy };
    const input = conv2dBackwardInput(gpu, { ...common, weight, dx });
    assert(input.dispatches.length > 2, `${input.dispatches.length} launches`);
    gpu.run([
      ...input.dispatches,
      ...conv2dBackwardWeight(gpu, { ...common, x, dWeight, dBias, accumulate: false }).dispatches,
    ]);
    const want = conv2dBackwardRef(g, batch, xs, ws, dys);
    assertClose(await dx.read(), want.dx, { atol: 5e-5, rtol: 1e-4, what: "dx" });
    assertClose(await dWeight.read(), want.dw, { atol: 5e-5, rtol: 1e-4, what: "dw" });
    await gpu.check();
  } finally {
    gpu.destroy();
  }
});

// [input channels, output channels, size]: the forward pass gathers B from the input packed
// channels last for 16 in and for 17 (padded to 20), and packs the im2col matrix for 5; 40 out lets
// the input gradient gather from the output gradient, 70 and 6 pack it.
for (const [cin, cout, size] of [[16, 70, 13], [17, 40, 13], [5, 6, 20]]) {
  Deno.test(`packed operands in chunks (scratch capped at one texture row) match the reference: ${cin} -> ${cout} channels`, async () => {
    // 4,096 texels a scratch texture: every GEMM here runs in several chunks of columns, and the
    // weight gradient in several chunks of rows too (A packed again for each).
    const gpu = await Gpu.create({ limits: { maxTextureDimension2D: 1 } });
    try {
      const g = geometry({
        inChannels: cin,
        height: size,
        width: size,
        outChannels: cout,
        padH: 1,
        padW: 1,
      });
      const batch = 2, [oh, ow] = conv2dOutputSize(g), tile = GEMM_TILES.packed;
      const wShape = [cout, cin, 3, 3];
      const xs = randomArray(batch * cin * size ** 2, 11), ws = randomArray(cout * cin * 9, 12);
      const bs = randomArray(cout, 13), dys = randomArray(batch * cout * oh * ow, 14);
      const x = Tensor.from(gpu, [batch, cin, size, size], xs);
      const weight = Tensor.from(gpu, wShape, ws);
      const bias = Tensor.from(gpu, [cout], bs), dy = Tensor.from(gpu, [batch, cout, oh, ow], dys);
      const y = Tensor.zeros(gpu, dy.shape), dx = Tensor.zeros(gpu, x.shape);
      const dWeight = Tensor.zeros(gpu, wShape), dBias = Tensor.zeros(gpu, [cout]);
      const launches = [
        conv2dForward(gpu, { geometry: g, batch, x, weight, bias, y, relu: false, tile }),
        conv2dBackwardInput(gpu, { geometry: g, batch, dy, weight, dx, tile }),
        conv2dBackwardWeight(gpu, {
          geometry: g,
          batch,
          x,
          dy,
          dWeight,
          dBias,
          accumulate: false,
          tile,
        }),
      ];
      for (const l of launches) {
        const chunks = l.dispatches.filter((d) => / columns \d+\+\d+$/.test(d.label)).length;
        assert(chunks > 2, `${chunks} chunks`);
      }
      gpu.run(launches.flatMap((l) => l.dispatches));
      const tolerance = { atol: 5e-5, rtol: 1e-4 };
      assertClose(await y.read(), conv2dRef(g, batch, xs, ws, bs, false), {
        ...tolerance,
        what: "y",
      });
      const want = conv2dBackwardRef(g, batch, xs, ws, dys);
      assertClose(await dx.read(), want.dx, { ...tolerance, what: "dx" });
      assertClose(await dWeight.read(), want.dw, { ...tolerance, what: "dw" });
      assertClose(await dBias.read(), want.db, { ...tolerance, what: "db" });
      await gpu.check();
    } finally {
      gpu.destroy();
    }
  });
}

const LRN_CASES: [string, [number, number, number, number], typeof PAPER_LRN][] = [
  ["paper constants, two towers", [2, 10, 3, 5], PAPER_LRN],
  ["wide window, strong alpha, three groups", [1, 9, 2, 2], {
    size: 7,
    alpha: 0.01,
    beta: 0.6,
    k: 1,
    groups: 3,
  }],
];
for (const [name, shape, params] of LRN_CASES) {
  Deno.test(`lrnBackward matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const n = shape.reduce((a, b) => a * b);
      const xs = randomArray(n, 8, 30), dys = randomArray(n, 9);
      const x = Tensor.from(gpu, shape, xs),
        dy = Tensor.from(gpu, shape, dys),
        dx = Tensor.zeros(gpu, shape);
      const y = Tensor.zeros(gpu, shape);
      const forward = lrnForward(gpu, { x, y, batch: shape[0], params, saveScale: true });
      const backward = lrnBackward(gpu, {
        x,
        y,
        scale: forward.scale!,
        dy,
        dx,
        batch: shape[0],
        params,
      });
      gpu.run([...forward.dispatches, ...backward.dispatches]);
      assertClose(await dx.read(), lrnBackwardRef(shape, xs, dys, params), {
        atol: 1e-6,
        rtol: 1e-4,
      });
    }));
}

const POOL_CASES: [string, [number, number, number, number], number, number][] = [
  ["overlapping 3/2 on an odd map", [2, 3, 13, 11], 3, 2],
  ["non-overlapping 2/2 with a ragged edge", [1, 2, 7, 6], 2, 2],
];
for (const [name, shape, size, stride] of POOL_CASES) {
  Deno.test(`maxPoolBackward matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const n = shape.reduce((a, b) => a * b);
      const oh = Math.floor((shape[2] - size) / stride) + 1,
        ow = Math.floor((shape[3] - size) / stride) + 1;
      const xs = randomArray(n, 10), dys = randomArray(shape[0] * shape[1] * oh * ow, 11);
      const x = Tensor.from(gpu, shape, xs),
        dy = Tensor.from(gpu, [shape[0], shape[1], oh, ow], dys);
      const dx = Tensor.zeros(gpu, shape), y = Tensor.zeros(gpu, dy.shape);
      const forward = maxPoolForward(gpu, {
        x,
        y,
        batch: shape[0],
        size,
        stride,
        saveIndices: true,
      });
      const backward = maxPoolBackward(gpu, {
        indices: forward.indices!,
        dy,
        dx,
        batch: shape[0],
        size,
        stride,
      });
      gpu.run([...forward.dispatches, ...backward.dispatches]);
      assertClose(await dx.read(), maxPoolBackwardRef(shape, xs, dys, size, stride), {
        atol: 1e-6,
        rtol: 1e-6,
      });
    }));
}

Deno.test("max-pool forward saves the first maximum on ties, and backward follows it", () =>
  withGpu(async (gpu) => {
    const x = Tensor.from(gpu, [1, 1, 3, 3], new Float32Array(9).fill(1)); // all equal
    const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([5])),
      dx = Tensor.zeros(gpu, [1, 1, 3, 3]);
    const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
    const forward = maxPoolForward(gpu, { x, y, batch: 1, size: 3, stride: 2, saveIndices: true });
    const backward = maxPoolBackward(gpu, {
      indices: forward.indices!,
      dy,
      dx,
      batch: 1,
      size: 3,
      stride: 2,
    });
    gpu.run([...forward.dispatches, ...backward.dispatches]);
    assertClose(await dx.read(), [5, 0, 0, 0, 0, 0, 0, 0, 0], { atol: 0, rtol: 0 });
  }));

Deno.test("dropout backward applies the forward mask to the gradient", () =>
  withGpu(async (gpu) => {
    const n = 1000;
    const x = Tensor.from(gpu, [n], new Float32Array(n).fill(1)),
      g = Tensor.from(gpu, [n], randomArray(n, 12));
    const forward = dropoutForward(gpu, { x, count: n, p: 0.5 });
    const backward = dropoutForward(gpu, { x: g, count: n, p: 0.5, params: forward.buffers[0] });
    forward.setSeed(99);
    gpu.run([...forward.dispatches, ...backward.dispatches]);
    const [mask, grad] = [await x.read(), await g.read()];
    const want = randomArray(n, 12).map((v, i) => v * mask[i]); // mask is 0 or 2
    assertClose(grad, want, { atol: 0, rtol: 1e-7 });
  }));

Deno.test("softmaxCrossEntropy matches the reference; padding rows give nothing", () =>
  withGpu(async (gpu) => {
    const rows = 5, valid = 3, classes = 1000;
    const zs = randomArray(rows * classes, 13, 20), labels = [5, 999, 0, 5, 5];
    zs[5] = 100; // row 0: its label scores highest, a hit
    const z = Tensor.from(gpu, [rows, classes], zs), dz = Tensor.zeros(gpu, [rows, classes]);
    const losses = Tensor.zeros(gpu, [2 * rows]), labelBuffer = gpu.buffer(rows * 4, "labels");
    gpu.write(labelBuffer, new Int32Array(labels));
    const ce = softmaxCrossEntropy(gpu, { z, labels: labelBuffer, dz, losses, rows });
    ce.set(valid, 1 / valid);
    gpu.run(ce.dispatches);
    const want = softmaxCrossEntropyRef(valid, classes, zs.subarray(0, valid * classes), labels);
    const got = await losses.read();
    assertClose([got.subarray(0, valid).reduce((a, b) => a + b) / valid], [want.loss], {
      atol: 1e-5,
      rtol: 1e-5,
    });
    const grads = await dz.read();
    assertClose(grads.subarray(0, valid * classes), want.dz, { atol: 1e-7, rtol: 1e-4 });
    assertClose(grads.subarray(valid * classes), new Float32Array((rows - valid) * classes), {
      atol: 0,
      rtol: 0,
    });
    assertClose(got.subarray(valid, rows), [0, 0], { atol: 0, rtol: 0 });
    const hits = labels.slice(0, valid).map((label, r) => {
      const row = zs.subarray(r * classes, (r + 1) * classes);
      return row[label] >= Math.max(...row) ? 1 : 0;
    });
    assertClose(got.subarray(rows), [...hits, 0, 0], { atol: 0, rtol: 0, what: "hits" });
  }));

Deno.test("sgdUpdate follows the paper's rule over three steps, in slices past the binding limit", async () => {
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 256 } });
  try {
    const n = 150; // 600 bytes: three slices
    const w0 = randomArray(n, 14), g0 = randomArray(n, 15);
    const w = Tensor.from(gpu, [n], w0), v = Tensor.zeros(gpu, [n]), g = Tensor.from(gpu, [n], g0);
    const hyper = gpu.buffer(16, "hyper", GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const update = sgdUpdate(gpu, { weight: w, velocity: v, gradient: g, hyper });
    assert(update.dispatches.length === 3);
    const [lr, momentum, decay] = [0.01, 0.9, 5e-4];
    const wr = Float64Array.from(w0), vr = new Float64Array(n);
    for (let step = 0; step < 3; step++) {
      gpu.write(hyper, new Float32Array([lr, momentum, decay]));
      gpu.run(update.dispatches);
      for (let i = 0; i < n; i++) {
        vr[i] = momentum * vr[i] - decay * lr * wr[i] - lr * g0[i];
        wr[i] += vr[i];
      }
    }
    assertClose(await w.read(), wr, { atol: 1e-7, rtol: 1e-6, what: "weights" });
    assertClose(await v.read(), vr, { atol: 1e-8, rtol: 1e-5, what: "velocities" });
    await gpu.check();
  } finally {
    gpu.destroy();
  }
});

Deno.test("reluBackward zeroes the gradient where the output is not positive", () =>
  withGpu(async (gpu) => {
    const n = 1001;
    const ys = randomArray(n, 16).map((v) => Math.max(v, 0)), gs = randomArray(n, 17);
    const y = Tensor.from(gpu, [n], ys), dy = Tensor.from(gpu, [n], gs);
    gpu.run(reluBackward(gpu, { y, dy, count: n }).dispatches);
    assertClose(await dy.read(), gs.map((v, i) => (ys[i] > 0 ? v : 0)), { atol: 0, rtol: 0 });
  }));
