// LRN, max-pool, dropout and softmax against the float64 reference on awkward shapes.
import { ok as assert, strictEqual as assertEquals } from "node:assert";
import { Tensor } from "../gpu/tensor.ts";
import { dropoutForward } from "../kernels/dropout_forward.ts";
import { lrnForward, PAPER_LRN } from "../kernels/lrn_forward.ts";
import { maxPoolForward, maxPoolOutputSize } from "../kernels/maxpool_forward.ts";
import { uniformAt } from "../kernels/random.ts";
import { softmaxForward } from "../kernels/softmax_forward.ts";
import { assertClose, randomArray, withGpu } from "./helpers.ts";
import { lrnRef, maxPoolRef, softmaxRef } from "./reference.ts";

const LRN_CASES: [string, [number, number, number, number], typeof PAPER_LRN][] = [
  ["paper constants, two towers, batch 2", [2, 10, 3, 5], PAPER_LRN],
  ["one group, batch 1, large activations", [1, 7, 4, 3], { ...PAPER_LRN, groups: 1 }],
  ["wide window, strong alpha", [3, 9, 2, 2], { size: 7, alpha: 0.5, beta: 0.6, k: 1, groups: 3 }],
];
for (const [name, shape, params] of LRN_CASES) {
  Deno.test(`lrnForward matches the reference: ${name}`, () =>
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
  Deno.test(`maxPoolForward matches the reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const xs = randomArray(shape.reduce((a, b) => a * b), 5);
      const [oh, ow] = maxPoolOutputSize(shape[2], shape[3], size, stride);
      const x = Tensor.from(gpu, shape, xs), y = Tensor.zeros(gpu, [shape[0], shape[1], oh, ow]);
      gpu.run(maxPoolForward(gpu, { x, y, batch: shape[0], size, stride }).dispatches);
      assertClose(await y.read(), maxPoolRef(shape, xs, size, stride), { atol: 0, rtol: 0 });
    }));
}

Deno.test("dropoutForward: the seed decides the mask, which the CPU twin reproduces", () =>
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
  }));

Deno.test("dropoutForward: p = 0.25 keeps about 3/4 scaled by 4/3", () =>
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

Deno.test("softmaxForward matches the reference, including large logits", () =>
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
