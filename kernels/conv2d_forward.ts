/**
 * Convolution forward as an implicit GEMM on the shared core ({@linkcode gemmWgsl}), with bias
 * and optional ReLU fused into the epilogue. Per group: Y[o, n] = sum_k W[o, k] * X'[k, n] +
 * bias[o], where n runs over (image, output pixel), k over (input channel, kh, kw), and X' is
 * the im2col matrix gathered from the NCHW input on the fly, never materialised.
 *
 * One kernel serves all five convolutions and the three dense layers: a dense layer is a 1x1
 * convolution over its flattened input, and PyTorch's [out, in] weight is the same memory.
 *
 * Reference test: tests/kernels/conv2d_test.ts; timed by
 * `deno task bench:kernels --kernel conv2d_forward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { Launch } from "../gpu/launch.ts";
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
import { type KeptMirror, recordGemm } from "./gemm/record.ts";
import type { GemmTile } from "./gemm/tiles.ts";
import { tileFor, type Tuning } from "./gemm/tuning.ts";
import { canGather, packTransposed, tapsToGather } from "./pack_transposed.ts";

/**
 * How the forward pass reads B, the input: "im2col", element by element through the im2col
 * matrix; "gathered", texels of the input packed channels last (see {@linkcode gathersInput});
 * "rows", texels of the input's rows, four pixels each (see {@linkcode gathersRows}); "vectors",
 * four channels a load, for a dense layer (see {@linkcode readsVectors}).
 */
export type ForwardInput = "im2col" | "gathered" | "rows" | "vectors";

/**
 * The WGSL of the forward convolution's operands for the GEMM core: bindings, sizes, loaders and
 * the bias (+ ReLU) epilogue, for B read as `input` says. "gathered" (packed operands only): k runs
 * over (tap, channel) instead of (channel, tap), the channels padded with zero weights to a
 * multiple of 4, so that four consecutive k are one texel of the input packed channels last
 * (kernels/pack_transposed.ts), which the core gathers B from (`tapOfB`) instead of packing
 * the im2col matrix. "rows" (packed operands only): k runs over (channel, kernel row, kernel
 * column), the columns padded to a multiple of 4, four consecutive k one texel of the input packed
 * as rows of pixel quads. "vectors": the weights and the input bound as vec4 arrays, read by the
 * core's vector loaders `loadA4` and `loadB4`.
 *
 * @example
 * ```ts
 * import { conv2dForwardOperandsWgsl } from "./conv2d_forward.ts";
 * const wgsl = conv2dForwardOperandsWgsl({ inChannels: 1, height: 4, width: 4, outChannels: 2,
 *   kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1 }, true);
 * console.assert(wgsl.includes("fn storeC"));
 * ```
 */
export function conv2dForwardOperandsWgsl(
  g: Conv2dGeometry,
  relu: boolean,
  input: ForwardInput = "im2col",
): string {
  if (input === "vectors") return denseForwardWgsl();
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> launch: Launch;
${conv2dConstantsWgsl(g)}

fn gemmRows() -> u32 { return launch.oCount; }
fn gemmCols() -> u32 { return launch.batch * P; }
${
    {
      im2col: /* wgsl */ `${IM2COL_WGSL}
fn gemmDepth() -> u32 { return KG; }
fn loadA(m: u32, k: u32) -> f32 { return w[launch.wOffset + m * KG + k]; }
fn loadB(k: u32, n: u32) -> f32 {
  return im2col(n / P, (launch.oBase / MG) * CG + k / KHW, k % KHW, n % P);
}`,
      gathered: /* wgsl */ `${IM2COL_WGSL}
const CG4 = ${Math.ceil(g.inChannels / g.groups / 4)}u; // texels of a group's channels
const CIN4 = ${Math.ceil(g.inChannels / 4)}u; // texels of a pixel's channels
fn gemmDepth() -> u32 { return KHW * CG4 * 4u; }
fn loadA(m: u32, k: u32) -> f32 {
  let c = k % (CG4 * 4u);
  if (c >= CG) { return 0.0; } // a padding channel
  return w[launch.wOffset + m * KG + c * KHW + k / (CG4 * 4u)];
}
fn quadsPerTap() -> u32 { return CG4; }
fn tapOfB(tap: u32, n: u32) -> vec2u { // the tap's first channel quad, and the step to the next
  let q = inputPixel(tap, n % P);
  if (q == H * W) { return vec2u(0u); } // texel 0, zeros, for every quad
  return vec2u(2u + ((n / P) * H * W + q) * CIN4 + (launch.oBase / MG) * CG4, 1u);
}`,
      rows: ROWS_WGSL(g),
    }[input]
  }
fn storeC(m: u32, n: u32, value: f32) {
  let o = launch.oBase + m;
  let v = value + bias[o];
  y[((n / P) * COUT + o) * P + n % P] = ${relu ? "max(v, 0.0)" : "v"};
}
`;
}

// "rows": k runs over (channel, kernel row, kernel column), the columns padded to a multiple of 4
// with zero weights; at a stride of 4 (and no padding) an output pixel's four kernel columns
// 4q..4q+3 read one texel, pixel quad ox + q of the input row, of the input packed as rows of pixel
// quads. A tap is a (channel, kernel row), its texels consecutive.
const ROWS_WGSL = (g: Conv2dGeometry) => /* wgsl */ `
const KW4 = ${Math.ceil(g.kernelW / 4)}u; // texels of a kernel row
const W4 = ${Math.ceil(g.width / 4)}u; // texels of an input row
fn gemmDepth() -> u32 { return CG * KH * KW4 * 4u; }
fn loadA(m: u32, k: u32) -> f32 {
  let kx = k % (KW4 * 4u);
  if (kx >= KW) { return 0.0; } // a padding column
  return w[launch.wOffset + m * KG + (k / (KW4 * 4u)) * KW + kx];
}
fn quadsPerTap() -> u32 { return KW4; }
fn tapOfB(tap: u32, n: u32) -> vec2u { // the tap's first pixel quad, and the step to the next
  let p = n % P;
  let ih = (p / OW) * SH + tap % KH; // padded: unsigned, compared against the pad
  if (ih < PH || ih >= H + PH) { return vec2u(0u); } // texel 0, zeros, for every quad
  let c = (launch.oBase / MG) * CG + tap / KH;
  return vec2u(2u + (((n / P) * CIN + c) * H + ih - PH) * W4 + (p % OW) * (SW / 4u), 1u);
}`;

/**
 * A dense layer's operands (`vectors`), its sizes and ReLU read from the launch's uniform so that
 * one pipeline serves every dense layer: column n is image n, k its channel in the group. The
 * input x (binding 0) and weights w (binding 1) are vector buffers, read by `x4` and `w4`.
 */
function denseForwardWgsl(): string {
  return /* wgsl */ `
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> launch: Launch;
${LAUNCH_WGSL}

fn gemmRows() -> u32 { return launch.oCount; }
fn gemmCols() -> u32 { return launch.batch; }
fn gemmDepth() -> u32 { return launch.cg; }
fn loadA4(m: u32, k4: u32) -> vec4f { return w4((launch.wOffset + m * launch.cg) / 4u + k4); }
fn loadB4(k4: u32, n: u32) -> vec4f { return x4((n * launch.cin + launch.cBase) / 4u + k4); }
fn storeC(m: u32, n: u32, value: f32) {
  let o = launch.oBase + m;
  let v = value + bias[o];
  y[n * launch.cout + o] = select(v, max(v, 0.0), launch.relu != 0u);
}
`;
}

/**
 * Whether the forward pass reads its operands four channels a load: a dense layer (a 1x1
 * convolution of 1x1 images, so that an image's channels and a weight row are contiguous) whose
 * group's channels are a multiple of 4. A storage-buffer load of a vec4 costs llvmpipe about what
 * one of a float does; on GPUs the loads are wider.
 *
 * @example
 * ```ts
 * import { readsVectors } from "./conv2d_forward.ts";
 * const fc6 = { inChannels: 9216, height: 1, width: 1, outChannels: 4096, kernelH: 1,
 *   kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 };
 * console.log(readsVectors(fc6), readsVectors({ ...fc6, inChannels: 70 })); // true false
 * ```
 */
export function readsVectors(g: Conv2dGeometry): boolean {
  const [oh, ow] = conv2dOutputSize(g);
  return g.height * g.width * g.kernelH * g.kernelW * oh * ow === 1 &&
    (g.inChannels / g.groups) % 4 === 0;
}

/**
 * Whether the forward pass gathers B from its input packed channels last rather than packing the
 * im2col matrix: a group's channels start on a texel (one group, or a multiple of 4 a group), and
 * padding them to a multiple of 4 adds at most a third to the depth (3 channels: 4, though
 * alexnet's conv1 gathers rows, see {@linkcode gathersRows}; not alexnet-small's 1, which would
 * multiply 4 times the work to save a cheap pack).
 *
 * @example
 * ```ts
 * import { gathersInput } from "./conv2d_forward.ts";
 * console.log(gathersInput(3, 1), gathersInput(1, 1), gathersInput(48, 2)); // true false true
 * ```
 */
export function gathersInput(inChannels: number, groups: number): boolean {
  const perGroup = inChannels / groups;
  return (groups === 1 || perGroup % 4 === 0) && Math.ceil(perGroup / 4) * 4 * 3 <= perGroup * 4;
}

/**
 * Whether the forward pass gathers B from the input's rows packed four pixels a texel: a stride
 * across of a multiple of 4 and no padding across, so that an output pixel's kernel columns start
 * on a texel; padding the kernel columns to a multiple of 4 adds at most a third to the depth, and
 * less than gathering channels would (alexnet's conv1: 3 x 11 x 12 = 396, not 4 x 121 = 484).
 *
 * @example
 * ```ts
 * import { gathersRows } from "./conv2d_forward.ts";
 * const conv1 = { inChannels: 3, height: 227, width: 227, outChannels: 96, kernelH: 11,
 *   kernelW: 11, strideH: 4, strideW: 4, padH: 0, padW: 0, groups: 1 };
 * console.log(gathersRows(conv1), gathersRows({ ...conv1, strideW: 2 })); // true false
 * console.log(gathersRows({ ...conv1, kernelH: 1, kernelW: 1 })); // false: 4 times the depth
 * ```
 */
export function gathersRows(g: Conv2dGeometry): boolean {
  const [, ow] = conv2dOutputSize(g);
  const cg = g.inChannels / g.groups, kw4 = Math.ceil(g.kernelW / 4);
  const channels = gathersInput(g.inChannels, g.groups)
    ? Math.ceil(cg / 4) * 4 * g.kernelW
    : Infinity;
  // The last pixel's last texel stays in its row (past the row, zero weights; past the data, none).
  const inRow = ((ow - 1) * g.strideW) / 4 + kw4 <= Math.ceil(g.width / 4);
  return g.strideW % 4 === 0 && g.padW === 0 && inRow && kw4 * 4 * 3 <= g.kernelW * 4 &&
    cg * kw4 * 4 < channels;
}

/** Arguments of {@linkcode conv2dForward}. */
export interface Conv2dForwardArgs {
  /** Geometry of the convolution. */
  geometry: Conv2dGeometry;
  /** Images in the launch (the input holds at least this many). */
  batch: number;
  /** Input [batch, inChannels, height, width]. */
  x: Tensor;
  /** Weight [outChannels, inChannels / groups, kernelH, kernelW]. */
  weight: Tensor;
  /** Bias [outChannels]. */
  bias: Tensor;
  /** Output [batch, outChannels, oh, ow]. */
  y: Tensor;
  /** Apply ReLU in the epilogue. */
  relu: boolean;
  /** Tiling; chosen from the shape (and `tuning`) when omitted. */
  tile?: GemmTile;
  /** The autotuner's choices to prefer (see `gemm/tuning.ts`). */
  tuning?: Tuning;
  /**
   * Where a dense layer's mirrored weights are copied, slice by slice (a texture the layer keeps
   * for its input gradient: `layers/weight_copies.ts`); a scratch texture where undefined.
   */
  weightCopy?: (slice: GPUBufferBinding) => KeptMirror | undefined;
}

/**
 * Records the launches of one convolution: one per group, and more where a group's weights exceed
 * the adapter's per-binding limit (fc6's 151 MB), each binding a slice of the weight buffer.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { conv2dForward } from "./conv2d_forward.ts";
 * const gpu = await Gpu.create();
 * const geometry = { inChannels: 1, height: 3, width: 3, outChannels: 1, kernelH: 3, kernelW: 3,
 *   strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 };
 * const x = Tensor.from(gpu, [1, 1, 3, 3], new Float32Array(9).fill(1));
 * const weight = Tensor.from(gpu, [1, 1, 3, 3], new Float32Array(9).fill(2));
 * const bias = Tensor.from(gpu, [1], new Float32Array([1]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const { dispatches } = conv2dForward(gpu, { geometry, batch: 1, x, weight, bias, y, relu: true });
 * gpu.run(dispatches);
 * console.log(await y.read()); // Float32Array [19]
 * gpu.destroy();
 * ```
 */
export function conv2dForward(
  gpu: Gpu,
  args: Conv2dForwardArgs,
): Launch & { problem: string; tile: GemmTile } {
  const g = args.geometry;
  validateConv2d(g);
  const [oh, ow] = conv2dOutputSize(g);
  const cols = args.batch * oh * ow;
  const kg = (g.inChannels / g.groups) * g.kernelH * g.kernelW;
  // The GEMM this launch solves: the autotuner's key.
  const problem = `conv2d_forward:${Object.values(g)}:${args.batch}`;
  const weights = weightLaunches(gpu, g, args.weight);
  // A weight slice starts on a vec4 where rows are whole vec4s, unless a capped alignment forbids.
  const vectors = readsVectors(g) && weights.every((l) => l.wOffset % 4 === 0);
  const tile = args.tile ??
    tileFor(gpu, args.tuning, problem, g.outChannels / g.groups, cols, kg, vectors);
  const view = { outer: args.batch, rows: g.inChannels, cols: g.height * g.width }; // channels last
  const rowView = { outer: args.batch * g.inChannels * g.height, rows: g.width, cols: 1 };
  const input: ForwardInput = vectors
    ? "vectors"
    : gathersRows(g) && canGather(gpu, tile, rowView)
    ? "rows"
    : gathersInput(g.inChannels, g.groups) && canGather(gpu, tile, view)
    ? "gathered"
    : "im2col";
  const cg = g.inChannels / g.groups, kw4 = Math.ceil(g.kernelW / 4);
  // The gathered depths run over padded channels or kernel columns.
  const depth = {
    gathered: Math.ceil(cg / 4) * 4 * g.kernelH * g.kernelW,
    rows: cg * g.kernelH * kw4 * 4,
    im2col: kg,
    vectors: kg,
  }[input];
  // Dense layers share their pipelines: their sizes and ReLU are in the launch's uniform.
  const key = input === "vectors"
    ? "conv2d_forward:dense:vectors"
    : `conv2d_forward:${Object.values(g)}:${args.relu}:${input}`;
  const buffers: GPUBuffer[] = [];
  const calls = weights.map(({ oBase, oCount, binding, wOffset }) => {
    const { batch, relu } = args;
    const values = launchValues(g, { batch, oBase, oCount, wOffset, accumulate: false, relu });
    const uniform = gpu.uniform(values, `${key} launch`);
    buffers.push(uniform);
    return {
      label: `conv2d_forward ${oBase}+${oCount}`,
      resources: [args.x.buffer, binding, args.bias.buffer, args.y.buffer, uniform],
      rows: oCount,
      cols,
      depth,
      kept: vectors && tile.kind === "mirrored" ? args.weightCopy?.(binding) : undefined,
    };
  });
  const launch = recordGemm(gpu, {
    key,
    operands: conv2dForwardOperandsWgsl(g, args.relu, input),
    bindings: ["read", "read", "read", "read_write", "uniform"],
    tile,
    calls,
    gatherB: input === "gathered" || input === "rows"
      ? packTransposed(gpu, { x: args.x, view: input === "rows" ? rowView : view })
      : undefined,
    // Rows' taps hold a few texels: gathered a texel at a time (see tapsToGather).
    gatherTaps: input === "gathered"
      ? tapsToGather(g.kernelH * g.kernelW, Math.ceil(cg / 4))
      : undefined,
    vectors: { vectorK: vectors },
    vectorBuffers: vectors ? { x: 0, w: 1 } : undefined,
  });
  return { ...launch, buffers: [...buffers, ...launch.buffers], problem, tile };
}
