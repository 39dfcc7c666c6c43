/**
 * The convolution's weight and bias gradients as one implicit GEMM on the shared core: per
 * group, dW[o, k] = sum over (b, p) of dY[b, o, p] * X'[k, (b, p)], with the bias as the weight
 * of an extra im2col row of ones, so dBias[o] = sum of dY[b, o, p] comes out of the same tiles
 * (a dense layer's bias is summed apart: kernels/bias_backward.ts). A fused ReLU's mask is
 * applied to dY beforehand (kernels/relu_backward.ts). With `accumulate`, gradients add to what is
 * there (micro-batches of one batch).
 *
 * Reference test: tests/kernels/conv2d_test.ts; timed by
 * `deno task bench:kernels --kernel conv2d_backward_weight`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, NO_LAUNCH } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  conv2dConstantsWgsl,
  type Conv2dGeometry,
  conv2dOutputSize,
  IM2COL_WGSL,
  LAUNCH_WGSL,
  launchValues,
  validateConv2d,
  weightLaunches,
} from "./conv2d_geometry.ts";
import { recordGemm } from "./gemm/record.ts";
import type { GemmTile } from "./gemm/tiles.ts";
import { tileFor, type Tuning } from "./gemm/tuning.ts";
import { readsVectorGradients } from "./conv2d_backward_input.ts";
import { canGather, packTransposed, tapsToGather } from "./pack_transposed.ts";
import { biasBackward } from "./bias_backward.ts";

/**
 * How the weight gradient reads its operands: "elements", the output gradient and the im2col
 * matrix one element at a time; "gathered" (packed operands), the depth running over (pixel,
 * image) instead of (image, pixel), images padded with zeros to a multiple of 4, so that four
 * consecutive depths are one texel of the input packed images last (kernels/pack_transposed.ts),
 * which the core gathers B from (`tapOfB`) instead of packing the im2col matrix; "vectors", for
 * a dense layer (see `readsVectorGradients`), the batch's outer products four output channels (A
 * along its rows) by four input channels (B along its columns) a load.
 */
export type BackwardWeightRead = "elements" | "gathered" | "vectors";

/**
 * The WGSL of the weight and bias gradient's operands for the GEMM core: bindings, sizes, loaders
 * and the epilogue (the bias is one more column of B, all ones), read as `read` says. Dense
 * operands ("vectors") leave the bias out and add to the weight gradient where `accumulate` says,
 * others read whether to add from the launch's uniform.
 *
 * @example
 * ```ts
 * import { conv2dBackwardWeightOperandsWgsl } from "./conv2d_backward_weight.ts";
 * const wgsl = conv2dBackwardWeightOperandsWgsl({ inChannels: 1, height: 4, width: 4,
 *   outChannels: 2, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1 });
 * console.assert(wgsl.includes("fn storeC"));
 * ```
 */
export function conv2dBackwardWeightOperandsWgsl(
  g: Conv2dGeometry,
  read: BackwardWeightRead = "elements",
  accumulate = false,
): string {
  if (read === "vectors") return denseWgsl(accumulate);
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(4) var<uniform> launch: Launch;
${conv2dConstantsWgsl(g)}
${IM2COL_WGSL}

fn gemmRows() -> u32 { return launch.oCount; }
fn gemmCols() -> u32 { return KG + 1u; } // the last column is the bias
${read === "gathered" ? GATHERED_WGSL : ELEMENTS_WGSL}
fn storeC(m: u32, k: u32, value: f32) {
  let add = launch.accumulate != 0u; // uniform: a launch that overwrites reads nothing
  var v = value;
  if (k == KG) {
    let o = launch.oBase + m;
    if (add) { v += dbias[o]; }
    dbias[o] = v;
  } else {
    let i = launch.wOffset + m * KG + k;
    if (add) { v += dw[i]; }
    dw[i] = v;
  }
}
`;
}

const ELEMENTS_WGSL = /* wgsl */ `
fn gemmDepth() -> u32 { return launch.batch * P; }
fn loadA(m: u32, d: u32) -> f32 { return dy[((d / P) * COUT + launch.oBase + m) * P + d % P]; }
fn loadB(d: u32, k: u32) -> f32 {
  if (k == KG) { return 1.0; }
  return im2col(d / P, (launch.oBase / MG) * CG + k / KHW, k % KHW, d % P);
}`;

const GATHERED_WGSL = /* wgsl */ `
fn images4() -> u32 { return (launch.batch + 3u) / 4u; }
fn gemmDepth() -> u32 { return P * images4() * 4u; }
fn loadA(m: u32, d: u32) -> f32 {
  let b = d % (images4() * 4u);
  if (b >= launch.batch) { return 0.0; } // a padding image
  return dy[(b * COUT + launch.oBase + m) * P + d / (images4() * 4u)];
}
fn quadsPerTap() -> u32 { return images4(); } // a tap: an output pixel, over the images' quads
fn tapOfB(p: u32, k: u32) -> vec2u { // the pixel's first image quad, and the step to the next
  if (k == KG) { return vec2u(1u, 0u); } // texel 1, ones, for every quad
  let q = inputPixel(k % KHW, p);
  if (q == H * W) { return vec2u(0u); } // texel 0, zeros, for every quad
  let c = (launch.oBase / MG) * CG + k / KHW;
  return vec2u(2u + (c * H * W + q) * images4(), 1u);
}`;

// A dense layer, its sizes in the launch's uniform (one pipeline serves every dense layer, two
// with micro-batches): the depth is the batch, row m output channel oBase + m, column k input
// channel k of the group. The vector buffers x (binding 0) and dy (binding 1) are read by x4 and
// dy4. Its output is as large as its work, so its epilogue stores vec4s and holds no branch:
// llvmpipe runs both sides of a branch masked (the uniform `accumulate` one too). Hence adding
// to dw is compiled in, and the bias is summed apart (kernels/bias_backward.ts).
function denseWgsl(accumulate: boolean): string {
  return /* wgsl */ `
@group(0) @binding(2) var<storage, read_write> dw: array<vec4f>;
@group(0) @binding(3) var<uniform> launch: Launch;
${LAUNCH_WGSL}

fn gemmRows() -> u32 { return launch.oCount; }
fn gemmCols() -> u32 { return launch.cg; }
fn gemmDepth() -> u32 { return launch.batch; }
fn loadA4m(m4: u32, b: u32) -> vec4f { return dy4((b * launch.cout + launch.oBase) / 4u + m4); }
fn loadB4n(b: u32, k4: u32) -> vec4f { return x4((b * launch.cin + launch.cBase) / 4u + k4); }
fn storeC(m: u32, k: u32, value: f32) {
  let i = launch.wOffset + m * launch.cg + k;
  dw[i / 4u][i % 4u] ${accumulate ? "+=" : "="} value;
}
fn storeC4(m: u32, k4: u32, value: vec4f) {
  dw[(launch.wOffset + m * launch.cg) / 4u + k4] ${accumulate ? "+=" : "="} value;
}
`;
}

/**
 * Records the gradients of a convolution's weight [outChannels, inChannels / groups, kh, kw]
 * and bias [outChannels] from its input `x` and output gradient `dy` (ReLU mask already applied).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { conv2dBackwardWeight } from "./conv2d_backward_weight.ts";
 * const gpu = await Gpu.create();
 * const geometry = { inChannels: 1, height: 2, width: 2, outChannels: 1, kernelH: 2, kernelW: 2,
 *   strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 };
 * const x = Tensor.from(gpu, [1, 1, 2, 2], new Float32Array([1, 2, 3, 4]));
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([2]));
 * const dWeight = Tensor.zeros(gpu, [1, 1, 2, 2]), dBias = Tensor.zeros(gpu, [1]);
 * gpu.run(conv2dBackwardWeight(gpu, { geometry, batch: 1, x, dy, dWeight, dBias,
 *   accumulate: false }).dispatches);
 * console.log(await dWeight.read(), await dBias.read()); // [2, 4, 6, 8] [2]
 * gpu.destroy();
 * ```
 */
export function conv2dBackwardWeight(
  gpu: Gpu,
  args: {
    geometry: Conv2dGeometry;
    batch: number;
    x: Tensor;
    dy: Tensor;
    dWeight: Tensor;
    dBias: Tensor;
    accumulate: boolean;
    /** Tiling; chosen from the shape (and `tuning`) when omitted. */
    tile?: GemmTile;
    /** The autotuner's choices to prefer (see `gemm/tuning.ts`). */
    tuning?: Tuning;
  },
): Launch & { problem: string; tile: GemmTile } {
  const g = args.geometry;
  validateConv2d(g);
  const kg = (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  // The GEMM this launch solves: the autotuner's key.
  const problem = `conv2d_backward_weight:${Object.values(g)}:${args.batch}`;
  const [oh, ow] = conv2dOutputSize(g);
  const slices = weightLaunches(gpu, g, args.dWeight);
  const vectors = readsVectorGradients(g) &&
    slices.every((s) => s.oBase % 4 === 0 && s.oCount % 4 === 0);
  const cols = vectors ? kg : kg + 1; // a dense layer's bias is summed apart
  const tile = args.tile ??
    tileFor(
      gpu,
      args.tuning,
      problem,
      g.outChannels / g.groups,
      cols,
      args.batch * oh * ow,
      vectors,
    );
  const view = { outer: 1, rows: args.batch, cols: g.inChannels * g.height * g.width }; // images last
  const read: BackwardWeightRead = vectors
    ? "vectors"
    : canGather(gpu, tile, view)
    ? "gathered"
    : "elements";
  const depth = read === "gathered"
    ? oh * ow * Math.ceil(args.batch / 4) * 4
    : args.batch * oh * ow;
  // Dense layers share their pipelines: their sizes are in the launch's uniform.
  const key = vectors
    ? `conv2d_backward_weight:dense:${read}${args.accumulate ? ":accumulate" : ""}`
    : `conv2d_backward_weight:${Object.values(g).join()}:${read}`;
  const buffers: GPUBuffer[] = [];
  const calls = slices.map(({ oBase, oCount, binding, wOffset }) => {
    const values = launchValues(g, {
      batch: args.batch,
      oBase,
      oCount,
      wOffset,
      accumulate: args.accumulate,
    });
    const uniform = gpu.uniform(values, `${key} launch`);
    buffers.push(uniform);
    const outputs = vectors ? [binding] : [binding, args.dBias.buffer];
    return {
      label: `conv2d_backward_weight ${oBase}+${oCount}`,
      resources: [args.x.buffer, args.dy.buffer, ...outputs, uniform],
      rows: oCount,
      cols,
      depth,
    };
  });
  const launch = recordGemm(gpu, {
    key,
    operands: conv2dBackwardWeightOperandsWgsl(g, read, args.accumulate),
    bindings: vectors
      ? ["read", "read", "read_write", "uniform"]
      : ["read", "read", "read_write", "read_write", "uniform"],
    tile,
    calls,
    gatherB: read === "gathered" ? packTransposed(gpu, { x: args.x, view }) : undefined,
    gatherTaps: read === "gathered" ? tapsToGather(oh * ow, Math.ceil(args.batch / 4)) : undefined,
    vectors: { vectorM: vectors, vectorN: vectors, vectorStores: vectors },
    vectorBuffers: vectors ? { x: 0, dy: 1 } : undefined,
  });
  const bias = vectors ? biasBackward(gpu, args) : NO_LAUNCH;
  return {
    dispatches: [...launch.dispatches, ...bias.dispatches],
    buffers: [...buffers, ...launch.buffers, ...bias.buffers],
    problem,
    tile,
  };
}
