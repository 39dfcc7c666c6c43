// The checks of the kernels around the convolutions (LRN, max-pool, dropout, ReLU's mask, softmax,
// softmax cross-entropy, the SGD update) against the float64 reference on awkward shapes.
import { Gpu } from "../../gpu/device.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { dropoutForward } from "../../kernels/dropout_forward.ts";
import { lrnBackward } from "../../kernels/lrn_backward.ts";
import { lrnForward, type LrnParams, PAPER_LRN } from "../../kernels/lrn_forward.ts";
import { FUSED_POOL_STRIDE, lrnMaxPoolBackward } from "../../kernels/lrn_maxpool_backward.ts";
import { lrnMaxPoolForward } from "../../kernels/lrn_maxpool_forward.ts";
import { maxPoolBackward } from "../../kernels/maxpool_backward.ts";
import {
  maxPoolForward,
  maxPoolOutputSize,
  type PoolLaunch,
} from "../../kernels/maxpool_forward.ts";
import { uniformAt } from "../../kernels/random.ts";
import { reluBackward } from "../../kernels/relu_backward.ts";
import { sgdUpdate } from "../../kernels/sgd_update.ts";
import { softmaxCrossEntropy } from "../../kernels/softmax_cross_entropy.ts";
import { softmaxForward } from "../../kernels/softmax_forward.ts";
import { assert, assertClose, assertEquals, type Check, randomArray, withGpu } from "../helpers.ts";
import {
  lrnBackwardRef,
  lrnRef,
  maxPoolBackwardRef,
  maxPoolRef,
  softmaxCrossEntropyRef,
  softmaxRef,
} from "../reference.ts";

/** The checks, in order: each is a Deno test (elementwise_test.ts); the browser tests run some in Chromium. */
export const ELEMENTWISE_CHECKS: Check[] = [];
const check = (name: string, run: () => Promise<void>) => {
  ELEMENTWISE_CHECKS.push([name, run]);
};

// Maps whose pixels are no multiple of 4: walks of single pixels.
const LRN_ODD_MAP_CASES: [string, [number, number, number, number], typeof PAPER_LRN][] = [
  ["wide window, maps of 6", [2, 12, 2, 3], { size: 7, alpha: 0.01, beta: 0.6, k: 1, groups: 2 }],
  ["one group, maps of 3", [2, 8, 3, 1], { ...PAPER_LRN, groups: 1 }],
  ["paper constants, 11 x 11 maps (conv1-like)", [2, 8, 11, 11], PAPER_LRN],
];
const LRN_CASES: [string, [number, number, number, number], typeof PAPER_LRN][] = [
  ["paper constants, two towers, batch 2", [2, 10, 3, 5], PAPER_LRN],
  ["one group, batch 1, large activations", [1, 7, 4, 3], { ...PAPER_LRN, groups: 1 }],
  ["wide window, strong alpha", [3, 9, 2, 2], { size: 7, alpha: 0.5, beta: 0.6, k: 1, groups: 3 }],
  ["paper constants, maps of 4-pixel quads (vec4 loads)", [2, 12, 2, 4], PAPER_LRN],
  ...LRN_ODD_MAP_CASES,
];
for (const [name, shape, params] of LRN_CASES) {
  check(`lrnForward matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      // Activations of magnitude ~30 make the sum of squares matter against k.
      const xs = randomArray(shape.reduce((a, b) => a * b), 4, 30);
      const x = Tensor.from(gpu, shape, xs), y = Tensor.zeros(gpu, shape);
      gpu.run(lrnForward(gpu, { x, y, batch: shape[0], params }).dispatches);
      assertClose(await y.read(), lrnRef(shape, xs, params), { atol: 1e-5, rtol: 1e-5 });
    }));
}

const POOL_CASES: [string, [number, number, number, number], number, number][] = [
  ["overlapping 3/2 on an odd map (conv1-like)", [2, 3, 13, 11], 3, 2],
  ["non-overlapping 2/2, batch 1", [1, 4, 6, 7], 2, 2],
  ["window equals map", [3, 2, 3, 3], 3, 2],
];
for (const [name, shape, size, stride] of POOL_CASES) {
  check(`maxPoolForward matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const xs = randomArray(shape.reduce((a, b) => a * b), 5);
      const [oh, ow] = maxPoolOutputSize(shape[2], shape[3], size, stride);
      const x = Tensor.from(gpu, shape, xs), y = Tensor.zeros(gpu, [shape[0], shape[1], oh, ow]);
      gpu.run(maxPoolForward(gpu, { x, y, batch: shape[0], size, stride }).dispatches);
      assertClose(await y.read(), maxPoolRef(shape, xs, size, stride), { atol: 0, rtol: 0 });
    }));
}

// LRN pooled in one kernel: against the reference, and to the bit against LRN's kernel followed
// by pooling's (the plans switch between the two where a pass stops at the LRN).
const LRN_POOL_CASES: [string, [number, number, number, number], LrnParams, number, number][] = [
  ["paper constants, overlapping 3/2 on odd maps", [2, 6, 13, 11], PAPER_LRN, 3, 2],
  [
    "wide window, one group, 2/2 with a ragged edge",
    [1, 9, 7, 6],
    {
      size: 7,
      alpha: 0.01,
      beta: 0.6,
      k: 1,
      groups: 1,
    },
    2,
    2,
  ],
  [
    "three groups, gapped 2/3",
    [2, 9, 7, 8],
    { ...PAPER_LRN, size: 3, alpha: 0.5, groups: 3 },
    2,
    3,
  ],
  ["window equals map: one lone output", [1, 4, 3, 3], PAPER_LRN, 3, 2],
];
// The default texel read (storage textures on llvmpipe), and sampled textures on one case.
const LRN_POOL_RUNS = [
  ...LRN_POOL_CASES.map((c) => [c, undefined] as const),
  [LRN_POOL_CASES[0], "sampled"] as const,
];
for (const [[name, shape, params, size, stride], texelRead] of LRN_POOL_RUNS) {
  check(
    `LRN and max-pooling as one kernel each way equal their two and the reference: ${name}${
      texelRead ? `, textures ${texelRead}` : ""
    }`,
    () =>
      withGpu(
        async (gpu) => {
          const xs = randomArray(shape.reduce((a, b) => a * b), 14, 30); // some < 0: ReLU's mask
          const [oh, ow] = maxPoolOutputSize(shape[2], shape[3], size, stride);
          const pooled = [shape[0], shape[1], oh, ow];
          const dys = randomArray(pooled.reduce((a, b) => a * b), 15);
          const x = Tensor.from(gpu, shape, xs), dy = Tensor.from(gpu, pooled, dys);
          const [normalised, gradient, dxApart, dxFused] = [0, 1, 2, 3].map(() =>
            Tensor.zeros(gpu, shape)
          );
          const [apart, fused] = [Tensor.zeros(gpu, pooled), Tensor.zeros(gpu, pooled)];
          const batch = shape[0], saveIndices = true, reluInput = true;
          const pool = { batch, size, stride };
          const launches = [
            lrnForward(gpu, { x, y: normalised, batch, params }),
            maxPoolForward(gpu, { x: normalised, y: apart, ...pool, saveIndices }),
            lrnMaxPoolForward(gpu, { x, y: fused, params, ...pool, saveIndices }),
          ];
          const [, separate, both] = launches as PoolLaunch[];
          // On llvmpipe, x whole texels: read from its copy in a texture.
          const mirrored = gpu.family === "llvmpipe" && xs.length % 4 === 0;
          const key = both.dispatches[0].pipeline.key;
          assert(key.endsWith(":mirrored") === mirrored, key);
          launches.push(
            maxPoolBackward(gpu, { indices: both.indices!, dy, dx: gradient, ...pool }),
          );
          launches.push(
            lrnBackward(gpu, { x, dy: gradient, dx: dxApart, batch, params, reluInput }),
          );
          if (stride === FUSED_POOL_STRIDE) {
            const indices = both.indices!;
            launches.push(
              lrnMaxPoolBackward(gpu, { x, dy, dx: dxFused, indices, params, ...pool, reluInput }),
            );
          }
          gpu.run(launches.flatMap((l) => l.dispatches));
          const exact = { atol: 0, rtol: 0 };
          const normalisedRef = lrnRef(shape, xs, params);
          const got = await fused.read();
          assertClose(got, maxPoolRef(shape, normalisedRef, size, stride), {
            atol: 1e-5,
            rtol: 1e-5,
          });
          assertClose(got, await apart.read(), {
            ...exact,
            what: "forward against the two kernels",
          });
          const indices = async (l: PoolLaunch) =>
            new Uint32Array((await gpu.read(l.indices!)).buffer);
          assertClose(await indices(both), await indices(separate), { ...exact, what: "argmax" });
          // The argmax routes the gradient back to where the normalised maximum was.
          const gradientRef = maxPoolBackwardRef(shape, normalisedRef, dys, size, stride);
          assertClose(await gradient.read(), gradientRef, { atol: 1e-6, rtol: 1e-6 });
          const dxRef = lrnBackwardRef(shape, xs, gradientRef, params).map((v, i) =>
            xs[i] > 0 ? v : 0
          );
          const dx = await dxApart.read();
          assertClose(dx, dxRef, { atol: 1e-6, rtol: 1e-4, what: "LRN's gradient" });
          if (stride === FUSED_POOL_STRIDE) {
            assertClose(await dxFused.read(), dx, {
              ...exact,
              what: "backward against the two kernels",
            });
          }
        },
        "f32",
        texelRead,
      ),
  );
}

check(
  "dropoutForward: the seed decides the mask, which the CPU twin reproduces",
  () =>
    withGpu(async (gpu) => {
      const n = 10007, p = 0.5;
      const xs = randomArray(n, 6);
      const x = Tensor.from(gpu, [n], xs);
      const drop = dropoutForward(gpu, { x, count: n, p });
      drop.setSeed(1234);
      gpu.run(drop.dispatches);
      const got = await x.read();
      const want = xs.map((v, i) => uniformAt(1234, i) >= p ? v * 2 : 0);
      assertClose(got, want, { atol: 0, rtol: 1e-7 });
      const dropped = got.filter((v) => v === 0).length / n;
      assert(Math.abs(dropped - p) < 0.02, `dropped fraction ${dropped}, expected about ${p}`);
      // Another seed, another mask: most positions differ.
      x.write(xs);
      drop.setSeed(1235);
      gpu.run(drop.dispatches);
      const other = await x.read();
      const same = got.filter((v, i) => (v === 0) === (other[i] === 0)).length / n;
      assert(same < 0.6, `masks of seeds 1234 and 1235 agree on ${same} of positions`);
    }),
);

check("dropoutForward: p = 0.25 keeps about 3/4 scaled by 4/3", () =>
  withGpu(async (gpu) => {
    const n = 20000;
    const x = Tensor.from(gpu, [n], new Float32Array(n).fill(3));
    const drop = dropoutForward(gpu, { x, count: n, p: 0.25 });
    drop.setSeed(7);
    gpu.run(drop.dispatches);
    const got = await x.read();
    const kept = got.filter((v) => v !== 0);
    assert(Math.abs(kept.length / n - 0.75) < 0.02, `kept ${kept.length / n}`);
    assertClose(kept, new Float32Array(kept.length).fill(4), { atol: 0, rtol: 1e-6 });
  }));

check("softmaxForward matches the reference, including large logits", () =>
  withGpu(async (gpu) => {
    const rows = 67, classes = 1000;
    const xs = randomArray(rows * classes, 7, 50);
    xs[5] = 1e4; // would overflow exp() without subtracting the row maximum
    const x = Tensor.from(gpu, [rows, classes], xs), y = Tensor.zeros(gpu, [rows, classes]);
    gpu.run(softmaxForward(gpu, { x, y, rows }).dispatches);
    const got = await y.read();
    assertClose(got, softmaxRef(rows, classes, xs), { atol: 1e-7, rtol: 1e-4 });
    assertEquals(got[5], 1);
  }));

const LRN_BACKWARD_CASES: [string, [number, number, number, number], typeof PAPER_LRN][] = [
  ["paper constants, two towers", [2, 10, 3, 5], PAPER_LRN],
  ["paper constants, maps of 4-pixel quads (vec4 loads)", [2, 12, 2, 4], PAPER_LRN],
  ["a window of one channel", [1, 4, 2, 3], { size: 1, alpha: 0.05, beta: 0.75, k: 1, groups: 1 }],
  ["paper constants, one group of 13 (rings past their start)", [2, 13, 3, 3], {
    ...PAPER_LRN,
    groups: 1,
  }],
  ["wide window, strong alpha, three groups", [1, 9, 2, 2], {
    size: 7,
    alpha: 0.01,
    beta: 0.6,
    k: 1,
    groups: 3,
  }],
];
for (const [name, shape, params] of [...LRN_BACKWARD_CASES, ...LRN_ODD_MAP_CASES]) {
  check(`lrnBackward matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const n = shape.reduce((a, b) => a * b);
      const xs = randomArray(n, 8, 30), dys = randomArray(n, 9);
      const x = Tensor.from(gpu, shape, xs),
        dy = Tensor.from(gpu, shape, dys),
        dx = Tensor.zeros(gpu, shape);
      gpu.run(lrnBackward(gpu, { x, dy, dx, batch: shape[0], params }).dispatches);
      assertClose(await dx.read(), lrnBackwardRef(shape, xs, dys, params), {
        atol: 1e-6,
        rtol: 1e-4,
      });
    }));
}

for (
  const shape of [[2, 10, 3, 5], [2, 10, 2, 4], [2, 8, 5, 5]] as [number, number, number, number][]
) {
  check(
    `lrnBackward with reluInput also applies the ReLU's mask, zero where x is: ${shape}`,
    () =>
      withGpu(async (gpu) => {
        const n = shape.reduce((a, b) => a * b);
        const xs = randomArray(n, 10, 30).map((v) => Math.max(v, 0)), dys = randomArray(n, 11);
        assert(xs.some((v) => v === 0) && xs.some((v) => v > 0));
        const x = Tensor.from(gpu, shape, xs),
          dy = Tensor.from(gpu, shape, dys),
          dx = Tensor.zeros(gpu, shape);
        const args = { x, dy, dx, batch: shape[0], params: PAPER_LRN, reluInput: true };
        gpu.run(lrnBackward(gpu, args).dispatches);
        const masked = lrnBackwardRef(shape, xs, dys, PAPER_LRN).map((v, i) => xs[i] > 0 ? v : 0);
        assertClose(await dx.read(), masked, { atol: 1e-6, rtol: 1e-4 });
      }),
  );
}

const POOL_BACKWARD_CASES: [string, [number, number, number, number], number, number][] = [
  ["overlapping 3/2 on an odd map", [2, 3, 13, 11], 3, 2],
  ["non-overlapping 2/2 with a ragged edge", [1, 2, 7, 6], 2, 2],
  ["overlapping 3/2, a last row and column no window reaches", [2, 2, 8, 10], 3, 2],
  ["gapped 2/3 (windows smaller than their step)", [1, 2, 7, 8], 2, 3],
];
// With reluInput, windows of zeros (most of them, the inputs mostly clipped) route nothing.
for (const [name, shape, size, stride] of POOL_BACKWARD_CASES) {
  for (const reluInput of [false, true]) {
    check(
      `maxPoolBackward matches the reference${reluInput ? ", ReLU's mask" : ""}: ${name}`,
      () =>
        withGpu(async (gpu) => {
          const n = shape.reduce((a, b) => a * b), batch = shape[0];
          const [oh, ow] = maxPoolOutputSize(shape[2], shape[3], size, stride);
          const xs = randomArray(n, 10).map((v) => reluInput ? Math.max(0, v - 0.6) : v);
          const dys = randomArray(shape[0] * shape[1] * oh * ow, 11);
          const x = Tensor.from(gpu, shape, xs),
            dy = Tensor.from(gpu, [shape[0], shape[1], oh, ow], dys);
          const dx = Tensor.zeros(gpu, shape), y = Tensor.zeros(gpu, dy.shape);
          const pool = { batch, size, stride };
          const forward = maxPoolForward(gpu, { x, y, ...pool, saveIndices: true, reluInput });
          const backward = maxPoolBackward(gpu, { indices: forward.indices!, dy, dx, ...pool });
          gpu.run([...forward.dispatches, ...backward.dispatches]);
          const unmasked = maxPoolBackwardRef(shape, xs, dys, size, stride);
          const want = unmasked.map((v, i) => reluInput && xs[i] <= 0 ? 0 : v);
          const masks = unmasked.some((v, i) => v !== 0 && xs[i] <= 0);
          assert(!reluInput || masks, "a window of zeros would send its gradient to a zero");
          assertClose(await dx.read(), want, { atol: 1e-6, rtol: 1e-6 });
        }),
    );
  }
}

check(
  "max-pool forward saves the first maximum on ties, and backward follows it",
  () =>
    withGpu(async (gpu) => {
      const x = Tensor.from(gpu, [1, 1, 3, 3], new Float32Array(9).fill(1)); // all equal
      const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([5])),
        dx = Tensor.zeros(gpu, [1, 1, 3, 3]);
      const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
      const forward = maxPoolForward(gpu, {
        x,
        y,
        batch: 1,
        size: 3,
        stride: 2,
        saveIndices: true,
      });
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
    }),
);

check(
  "max-pool forward: both windows of a pair keep their own first maximum on ties",
  () =>
    withGpu(async (gpu) => {
      const x = Tensor.from(gpu, [1, 1, 3, 5], new Float32Array(15).fill(1)); // two windows
      const y = Tensor.zeros(gpu, [1, 1, 1, 2]);
      const forward = maxPoolForward(gpu, {
        x,
        y,
        batch: 1,
        size: 3,
        stride: 2,
        saveIndices: true,
      });
      gpu.run(forward.dispatches);
      const at = new Uint32Array((await gpu.read(forward.indices!)).buffer);
      assertClose([...at], [0, 2], { atol: 0, rtol: 0 }); // each window's own corner
    }),
);

check("dropout backward applies the forward mask to the gradient", () =>
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

check(
  "softmaxCrossEntropy matches the reference; padding rows give nothing",
  () =>
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
    }),
);

/** Three steps of `sgdUpdate` on `n` parameters against the float64 rule; its pipelines' keys. */
async function checkSgd(gpu: Gpu, n: number, mirrored: boolean): Promise<string[]> {
  const w0 = randomArray(n, 14), g0 = randomArray(n, 15);
  const w = Tensor.from(gpu, [n], w0),
    v = Tensor.zeros(gpu, [n]),
    g = Tensor.from(gpu, [n], g0);
  const hyper = gpu.buffer(16, "hyper", GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  const update = sgdUpdate(gpu, { weight: w, velocity: v, gradient: g, hyper, mirrored });
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
  return update.dispatches.map((d) => d.pipeline.key);
}

check(
  "sgdUpdate follows the paper's rule over three steps, in slices past the binding limit",
  async () => {
    const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 256 } });
    try {
      // 600 bytes: 64 and 64 elements four at a time, then the last 22 one at a time.
      const keys = await checkSgd(gpu, 150, false);
      assert(keys.join() === "sgd_update:vec4,sgd_update:vec4,sgd_update", keys.join());
    } finally {
      gpu.destroy();
    }
  },
);

for (const texelRead of [undefined, "sampled"] as const) {
  check(
    `sgdUpdate reading copies in textures follows the rule, in slices of half a texture${
      texelRead ? `, textures ${texelRead}` : ""
    }`,
    async () => {
      // Scratch textures of two rows: 16384 elements a launch.
      const gpu = await Gpu.create({ limits: { maxTextureDimension2D: 2 }, texelRead });
      try {
        const keys = await checkSgd(gpu, 2 * 16384 + 148, true);
        assert(keys.join() === Array(3).fill("sgd_update:mirrored:4096").join(), keys.join());
        const tail = await checkSgd(gpu, 16384 + 6, true); // the last 6 are not whole quads
        assert(tail.join() === "sgd_update:mirrored:4096,sgd_update", tail.join());
      } finally {
        gpu.destroy();
      }
    },
  );
}

for (const texelRead of [undefined, "sampled"] as const) {
  check(
    `reluBackward reading copies in textures zeroes the same, in launches of a texture's quads${
      texelRead ? `, textures ${texelRead}` : ""
    }`,
    async () => {
      // Scratch textures of one row: 16384 elements a launch.
      const gpu = await Gpu.create({ limits: { maxTextureDimension2D: 1 }, texelRead });
      try {
        const n = 16384 + 1004;
        const ys = randomArray(n, 18).map((v) => Math.max(v, 0)), gs = randomArray(n, 19);
        const y = Tensor.from(gpu, [n], ys), dy = Tensor.from(gpu, [n], gs);
        const launch = reluBackward(gpu, { y, dy, count: n, mirrored: true });
        const keys = launch.dispatches.map((d) => d.pipeline.key).join();
        assert(keys === "relu_backward:mirrored,relu_backward:mirrored", keys);
        gpu.run(launch.dispatches);
        assertClose(await dy.read(), gs.map((v, i) => (ys[i] > 0 ? v : 0)), { atol: 0, rtol: 0 });
        await gpu.check();
      } finally {
        gpu.destroy();
      }
    },
  );
}

check(
  "reluBackward zeroes the gradient where the output is not positive",
  () =>
    withGpu(async (gpu) => {
      const n = 1001;
      const ys = randomArray(n, 16).map((v) => Math.max(v, 0)), gs = randomArray(n, 17);
      const y = Tensor.from(gpu, [n], ys), dy = Tensor.from(gpu, [n], gs);
      gpu.run(reluBackward(gpu, { y, dy, count: n }).dispatches);
      assertClose(await dy.read(), gs.map((v, i) => (ys[i] > 0 ? v : 0)), { atol: 0, rtol: 0 });
    }),
);
