/**
 * The plain float64 CPU reference every kernel is tested against: direct loops, written for
 * clarity, no tiling, no shared code with the kernels beyond the geometry types.
 */
import { type Conv2dGeometry, conv2dOutputSize } from "../kernels/conv2d_geometry.ts";
import type { ModelConfig } from "../layers/models.ts";

/** Direct convolution: y[b, o, i, j] = bias[o] + sum over the group's c, kh, kw. */
export function conv2dRef(
  g: Conv2dGeometry,
  batch: number,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number>,
  relu: boolean,
): Float64Array {
  const [oh, ow] = conv2dOutputSize(g);
  const cg = g.inChannels / g.groups, mg = g.outChannels / g.groups;
  const y = new Float64Array(batch * g.outChannels * oh * ow);
  for (let b = 0; b < batch; b++) {
    for (let o = 0; o < g.outChannels; o++) {
      const group = Math.floor(o / mg);
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          let sum = bias[o];
          for (let c = 0; c < cg; c++) {
            for (let kh = 0; kh < g.kernelH; kh++) {
              const ih = i * g.strideH - g.padH + kh;
              if (ih < 0 || ih >= g.height) continue;
              for (let kw = 0; kw < g.kernelW; kw++) {
                const iw = j * g.strideW - g.padW + kw;
                if (iw < 0 || iw >= g.width) continue;
                const xi = ((b * g.inChannels + group * cg + c) * g.height + ih) * g.width + iw;
                const wi = ((o * cg + c) * g.kernelH + kh) * g.kernelW + kw;
                sum += x[xi] * w[wi];
              }
            }
          }
          y[((b * g.outChannels + o) * oh + i) * ow + j] = relu ? Math.max(sum, 0) : sum;
        }
      }
    }
  }
  return y;
}

/** Parameters of local response normalisation (the paper's section 3.3). */
export interface LrnRefParams {
  size: number;
  alpha: number;
  beta: number;
  k: number;
  groups: number;
}

/** b = a / (k + alpha * sum of a^2 over `size` neighbouring channels of the same group)^beta. */
export function lrnRef(
  shape: readonly [number, number, number, number],
  x: ArrayLike<number>,
  p: LrnRefParams,
): Float64Array {
  const [n, c, h, w] = shape;
  const hw = h * w, cg = c / p.groups, half = Math.floor(p.size / 2);
  const y = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const first = Math.floor(ch / cg) * cg;
      const lo = Math.max(first, ch - half), hi = Math.min(first + cg - 1, ch + half);
      for (let s = 0; s < hw; s++) {
        let sum = 0;
        for (let j = lo; j <= hi; j++) sum += x[(b * c + j) * hw + s] ** 2;
        const i = (b * c + ch) * hw + s;
        y[i] = x[i] / (p.k + p.alpha * sum) ** p.beta;
      }
    }
  }
  return y;
}

/** Max over size x size windows at `stride` (no padding, floor mode). */
export function maxPoolRef(
  shape: readonly [number, number, number, number],
  x: ArrayLike<number>,
  size: number,
  stride: number,
): Float64Array {
  const [n, c, h, w] = shape;
  const oh = Math.floor((h - size) / stride) + 1, ow = Math.floor((w - size) / stride) + 1;
  const y = new Float64Array(n * c * oh * ow);
  for (let m = 0; m < n * c; m++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let best = -Infinity;
        for (let a = 0; a < size; a++) {
          for (let b = 0; b < size; b++) {
            best = Math.max(best, x[(m * h + i * stride + a) * w + j * stride + b]);
          }
        }
        y[(m * oh + i) * ow + j] = best;
      }
    }
  }
  return y;
}

/** Row-wise softmax of a [rows, classes] matrix. */
export function softmaxRef(rows: number, classes: number, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < classes; j++) max = Math.max(max, x[r * classes + j]);
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(x[r * classes + j] - max);
    for (let j = 0; j < classes; j++) y[r * classes + j] = Math.exp(x[r * classes + j] - max) / sum;
  }
  return y;
}

/** The whole network's logits in float64, layer by layer, from weights by PyTorch name. */
export function networkRef(
  config: ModelConfig,
  weights: Map<string, { data: ArrayLike<number> }>,
  input: ArrayLike<number>,
  batch: number,
): Float64Array {
  let x: ArrayLike<number> = input;
  let [c, h, w] = config.input;
  for (const spec of config.layers) {
    if (spec.kind === "conv" || spec.kind === "dense") {
      const dense = spec.kind === "dense";
      const k = dense ? h : spec.kernel;
      const g: Conv2dGeometry = {
        inChannels: c,
        height: h,
        width: w,
        outChannels: spec.out,
        kernelH: k,
        kernelW: dense ? w : k,
        strideH: dense ? 1 : spec.stride ?? 1,
        strideW: dense ? 1 : spec.stride ?? 1,
        padH: dense ? 0 : spec.pad ?? 0,
        padW: dense ? 0 : spec.pad ?? 0,
        groups: dense ? 1 : spec.groups ?? 1,
      };
      const weight = weights.get(`${spec.name}.weight`)!.data;
      const bias = weights.get(`${spec.name}.bias`)!.data;
      x = conv2dRef(g, batch, x, weight, bias, spec.relu ?? true);
      [c, h, w] = [spec.out, ...conv2dOutputSize(g)];
    } else if (spec.kind === "lrn") {
      x = lrnRef([batch, c, h, w], x, spec.params);
    } else if (spec.kind === "maxpool") {
      x = maxPoolRef([batch, c, h, w], x, spec.size, spec.stride);
      [h, w] = [
        Math.floor((h - spec.size) / spec.stride) + 1,
        Math.floor((w - spec.size) / spec.stride) + 1,
      ];
    } // dropout: the identity in inference
  }
  return Float64Array.from(x);
}

/**
 * Gradients of a convolution (before any ReLU: mask `gy` first) by the chain rule on the direct
 * loops: every output gradient flows to its bias, its weights and its inputs.
 */
export function conv2dBackwardRef(
  g: Conv2dGeometry,
  batch: number,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  gy: ArrayLike<number>,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const [oh, ow] = conv2dOutputSize(g);
  const cg = g.inChannels / g.groups, mg = g.outChannels / g.groups;
  const dx = new Float64Array(batch * g.inChannels * g.height * g.width);
  const dw = new Float64Array(g.outChannels * cg * g.kernelH * g.kernelW);
  const db = new Float64Array(g.outChannels);
  for (let b = 0; b < batch; b++) {
    for (let o = 0; o < g.outChannels; o++) {
      const group = Math.floor(o / mg);
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const grad = gy[((b * g.outChannels + o) * oh + i) * ow + j];
          db[o] += grad;
          for (let c = 0; c < cg; c++) {
            for (let kh = 0; kh < g.kernelH; kh++) {
              const ih = i * g.strideH - g.padH + kh;
              if (ih < 0 || ih >= g.height) continue;
              for (let kw = 0; kw < g.kernelW; kw++) {
                const iw = j * g.strideW - g.padW + kw;
                if (iw < 0 || iw >= g.width) continue;
                const xi = ((b * g.inChannels + group * cg + c) * g.height + ih) * g.width + iw;
                const wi = ((o * cg + c) * g.kernelH + kh) * g.kernelW + kw;
                dw[wi] += grad * x[xi];
                dx[xi] += grad * w[wi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, db };
}

/** LRN's input gradient: for each output i, d b_i / d a_j over i's window, summed. */
export function lrnBackwardRef(
  shape: readonly [number, number, number, number],
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  p: LrnRefParams,
): Float64Array {
  const [n, c, h, w] = shape;
  const hw = h * w, cg = c / p.groups, half = Math.floor(p.size / 2);
  const dx = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const first = Math.floor(ch / cg) * cg;
      const lo = Math.max(first, ch - half), hi = Math.min(first + cg - 1, ch + half);
      for (let s = 0; s < hw; s++) {
        const i = (b * c + ch) * hw + s;
        let sum = 0;
        for (let j = lo; j <= hi; j++) sum += x[(b * c + j) * hw + s] ** 2;
        const d = p.k + p.alpha * sum;
        dx[i] += dy[i] * d ** -p.beta;
        for (let j = lo; j <= hi; j++) {
          const at = (b * c + j) * hw + s;
          dx[at] -= dy[i] * 2 * p.alpha * p.beta * x[i] * x[at] * d ** (-p.beta - 1);
        }
      }
    }
  }
  return dx;
}

/** Max-pool's input gradient: each window's gradient goes to its first maximum. */
export function maxPoolBackwardRef(
  shape: readonly [number, number, number, number],
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  size: number,
  stride: number,
): Float64Array {
  const [n, c, h, w] = shape;
  const oh = Math.floor((h - size) / stride) + 1, ow = Math.floor((w - size) / stride) + 1;
  const dx = new Float64Array(n * c * h * w);
  for (let m = 0; m < n * c; m++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let best = -1;
        for (let a = 0; a < size; a++) {
          for (let b = 0; b < size; b++) {
            const at = (m * h + i * stride + a) * w + j * stride + b;
            if (best < 0 || x[at] > x[best]) best = at;
          }
        }
        dx[best] += dy[(m * oh + i) * ow + j];
      }
    }
  }
  return dx;
}

/** Mean cross-entropy of softmax(z) against labels, and its gradient with respect to z. */
export function softmaxCrossEntropyRef(
  rows: number,
  classes: number,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
): { loss: number; dz: Float64Array } {
  const p = softmaxRef(rows, classes, z);
  let loss = 0;
  const dz = new Float64Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    loss -= Math.log(p[r * classes + labels[r]]) / rows;
    for (let j = 0; j < classes; j++) {
      dz[r * classes + j] = (p[r * classes + j] - (j === labels[r] ? 1 : 0)) / rows;
    }
  }
  return { loss, dz };
}
