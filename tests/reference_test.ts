// The float64 reference's backward passes against central finite differences of its forward
// passes: f = sum(forward(inputs) * R) for a random R, so the gradient is backward(dy = R).
import { type Conv2dGeometry, conv2dOutputSize } from "../kernels/conv2d_geometry.ts";
import { assertClose, randomArray } from "./helpers.ts";
import {
  conv2dBackwardRef,
  conv2dRef,
  lrnBackwardRef,
  lrnRef,
  maxPoolBackwardRef,
  maxPoolRef,
  softmaxCrossEntropyRef,
} from "./reference.ts";

const EPS = 1e-6;

/** Central differences of `f` with respect to every element of `v` (changed and restored). */
function numericGradient(v: Float64Array, f: () => number): Float64Array {
  const grad = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + EPS;
    const up = f();
    v[i] = keep - EPS;
    const down = f();
    v[i] = keep;
    grad[i] = (up - down) / (2 * EPS);
  }
  return grad;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const f64 = (n: number, seed: number, scale = 1) => Float64Array.from(randomArray(n, seed, scale));

const CONV_CASES: [string, Conv2dGeometry, number][] = [
  ["stride 2, pad 1, groups 2", {
    inChannels: 4,
    height: 6,
    width: 5,
    outChannels: 6,
    kernelH: 3,
    kernelW: 3,
    strideH: 2,
    strideW: 2,
    padH: 1,
    padW: 1,
    groups: 2,
  }, 2],
  ["rectangular kernel, stride (1, 3)", {
    inChannels: 3,
    height: 5,
    width: 8,
    outChannels: 2,
    kernelH: 2,
    kernelW: 3,
    strideH: 1,
    strideW: 3,
    padH: 0,
    padW: 2,
    groups: 1,
  }, 1],
];
for (const [name, g, batch] of CONV_CASES) {
  Deno.test(`reference conv2d backward matches finite differences, with ReLU: ${name}`, () => {
    const [oh, ow] = conv2dOutputSize(g);
    const x = f64(batch * g.inChannels * g.height * g.width, 1);
    const w = f64(g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW, 2);
    const bias = f64(g.outChannels, 3);
    const r = f64(batch * g.outChannels * oh * ow, 4);
    const f = () => dot(conv2dRef(g, batch, x, w, bias, true), r);
    const y = conv2dRef(g, batch, x, w, bias, true);
    const gy = r.map((v, i) => (y[i] > 0 ? v : 0)); // the ReLU mask, as the kernels apply it
    const { dx, dw, db } = conv2dBackwardRef(g, batch, x, w, gy);
    assertClose(dx, numericGradient(x, f), { atol: 1e-7, rtol: 1e-6, what: "dx" });
    assertClose(dw, numericGradient(w, f), { atol: 1e-7, rtol: 1e-6, what: "dw" });
    assertClose(db, numericGradient(bias, f), { atol: 1e-7, rtol: 1e-6, what: "db" });
  });
}

Deno.test("reference LRN backward matches finite differences (two groups, large activations)", () => {
  const shape = [2, 6, 2, 3] as const,
    params = { size: 5, alpha: 1e-3, beta: 0.75, k: 2, groups: 2 };
  const x = f64(72, 5, 20), r = f64(72, 6);
  const dx = lrnBackwardRef(shape, x, r, params);
  assertClose(dx, numericGradient(x, () => dot(lrnRef(shape, x, params), r)), {
    atol: 1e-8,
    rtol: 1e-6,
  });
});

Deno.test("reference max-pool backward matches finite differences", () => {
  const shape = [2, 2, 7, 6] as const;
  const x = f64(168, 7), r = f64(2 * 2 * 3 * 2, 8);
  const dx = maxPoolBackwardRef(shape, x, r, 3, 2);
  assertClose(dx, numericGradient(x, () => dot(maxPoolRef(shape, x, 3, 2), r)), {
    atol: 1e-8,
    rtol: 1e-6,
  });
});

Deno.test("reference softmax cross-entropy gradient matches finite differences", () => {
  const rows = 3, classes = 7, labels = [2, 0, 6];
  const z = f64(rows * classes, 9, 3);
  const { dz } = softmaxCrossEntropyRef(rows, classes, z, labels);
  const numeric = numericGradient(z, () => softmaxCrossEntropyRef(rows, classes, z, labels).loss);
  assertClose(dz, numeric, { atol: 1e-8, rtol: 1e-6 });
});
