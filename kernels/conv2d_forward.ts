/**
 * Convolution forward as an implicit GEMM, with bias and optional ReLU fused into the epilogue.
 *
 * For each group g: Y[m, n] = sum_k W[m, k] * X'[k, n] + bias[m], where m is an output channel of
 * the group, n runs over (image, output pixel), k over (input channel of the group, kh, kw), and
 * X' is the im2col matrix, gathered on the fly from the NCHW input and never materialised.
 * A workgroup computes a BM x BN tile of Y, staging BK-deep slices of W and X' in workgroup
 * memory; each invocation accumulates a TM x TN block in registers.
 *
 * One kernel serves all five convolutions and the three dense layers: a dense layer is a
 * convolution whose kernel covers its whole input (fc6: 6x6 over 6x6 maps; fc7, fc8: 1x1 over
 * 1x1), and its PyTorch weight [out, in] is the same memory as [out, c, h, w].
 *
 * @module
 */
import { type Dispatch, type Gpu, type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** Geometry of a convolution, independent of the batch size. */
export interface Conv2dGeometry {
  /** Input channels. */
  inChannels: number;
  /** Input height. */
  height: number;
  /** Input width. */
  width: number;
  /** Output channels. */
  outChannels: number;
  /** Kernel height. */
  kernelH: number;
  /** Kernel width. */
  kernelW: number;
  /** Vertical stride. */
  strideH: number;
  /** Horizontal stride. */
  strideW: number;
  /** Zero padding above and below. */
  padH: number;
  /** Zero padding left and right. */
  padW: number;
  /** Channel groups: input and output channels split into this many independent convolutions. */
  groups: number;
}

/** The GEMM tiling of one launch: a parameter of the kernel generator. */
export interface GemmTile {
  /** Output channels per workgroup. */
  bm: number;
  /** Output columns (image x pixel) per workgroup. */
  bn: number;
  /** Reduction depth staged per step. */
  bk: number;
  /** Output channels per invocation. */
  tm: number;
  /** Output columns per invocation. */
  tn: number;
}

/**
 * The output height and width of a convolution (floor division, as PyTorch).
 *
 * @example
 * ```ts
 * import { conv2dOutputSize } from "./conv2d_forward.ts";
 * const g = { inChannels: 3, height: 227, width: 227, outChannels: 96, kernelH: 11, kernelW: 11,
 *   strideH: 4, strideW: 4, padH: 0, padW: 0, groups: 1 };
 * console.log(conv2dOutputSize(g)); // [55, 55]
 * ```
 */
export function conv2dOutputSize(g: Conv2dGeometry): [number, number] {
  const oh = Math.floor((g.height + 2 * g.padH - g.kernelH) / g.strideH) + 1;
  const ow = Math.floor((g.width + 2 * g.padW - g.kernelW) / g.strideW) + 1;
  return [oh, ow];
}

/**
 * Throws a clear error when a geometry cannot be computed (non-positive sizes, channels not
 * divisible by groups, kernel larger than the padded input).
 *
 * @example
 * ```ts
 * import { validateConv2d } from "./conv2d_forward.ts";
 * validateConv2d({ inChannels: 4, height: 5, width: 5, outChannels: 6, kernelH: 3, kernelW: 3,
 *   strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 2 });
 * ```
 */
export function validateConv2d(g: Conv2dGeometry): void {
  for (const [name, value] of Object.entries(g)) {
    const min = name.startsWith("pad") ? 0 : 1;
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(`convolution ${name} must be an integer >= ${min}, got ${value}`);
    }
  }
  if (g.inChannels % g.groups || g.outChannels % g.groups) {
    throw new RangeError(
      `convolution channels (${g.inChannels} in, ${g.outChannels} out) must divide by groups ${g.groups}`,
    );
  }
  const [oh, ow] = conv2dOutputSize(g);
  if (oh < 1 || ow < 1) {
    throw new RangeError(
      `a ${g.kernelH}x${g.kernelW} kernel does not fit a ${g.height}x${g.width} input padded by ${g.padH},${g.padW}`,
    );
  }
}

/**
 * Picks the tiling for a GEMM of `m` rows (output channels per group) and `n` columns: wide
 * tiles for convolutions, narrow ones for dense layers at small batch where n is the batch.
 *
 * @example
 * ```ts
 * import { chooseTile } from "./conv2d_forward.ts";
 * console.log(chooseTile(96, 3025)); // { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 }
 * ```
 */
export function chooseTile(_m: number, n: number): GemmTile {
  if (n <= 16) return { bm: 128, bn: 16, bk: 16, tm: 4, tn: 2 };
  return { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
}

/**
 * Generates the WGSL of the implicit-GEMM convolution for one geometry and tiling.
 * Runtime parameters (uniform): batch size, first output channel of the launch, channel count of
 * the launch, and where that channel's weights start within the bound weight slice (elements).
 *
 * @example
 * ```ts
 * import { conv2dForwardWgsl } from "./conv2d_forward.ts";
 * const wgsl = conv2dForwardWgsl({ inChannels: 1, height: 4, width: 4, outChannels: 2,
 *   kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1 },
 *   { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 }, true);
 * console.assert(wgsl.includes("fn main"));
 * ```
 */
export function conv2dForwardWgsl(g: Conv2dGeometry, t: GemmTile, relu: boolean): string {
  const [oh, ow] = conv2dOutputSize(g);
  const tx = t.bn / t.tn, ty = t.bm / t.tm;
  return /* wgsl */ `
struct Params { batch: u32, oBase: u32, oCount: u32, wOffset: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
${WORKGROUP_INDEX_WGSL}

const CIN = ${g.inChannels}u;
const H = ${g.height}i;
const W = ${g.width}i;
const COUT = ${g.outChannels}u;
const KW = ${g.kernelW}u;
const KHW = ${g.kernelH * g.kernelW}u;
const SH = ${g.strideH}u;
const SW = ${g.strideW}u;
const PH = ${g.padH}i;
const PW = ${g.padW}i;
const OW = ${ow}u;
const P = ${oh * ow}u;             // output pixels per map
const CG = ${g.inChannels / g.groups}u;  // input channels per group
const MG = ${g.outChannels / g.groups}u; // output channels per group
const KG = ${(g.inChannels / g.groups) * g.kernelH * g.kernelW}u; // GEMM depth

const BM = ${t.bm}u;
const BN = ${t.bn}u;
const BK = ${t.bk}u;
const TM = ${t.tm}u;
const TN = ${t.tn}u;
const TX = ${tx}u;  // invocations along n
const TY = ${ty}u;  // invocations along m
const THREADS = ${tx * ty}u;

var<workgroup> tileW: array<f32, ${t.bk * t.bm}>; // [k][m]
var<workgroup> tileX: array<f32, ${t.bk * t.bn}>; // [k][n]

@compute @workgroup_size(${tx * ty})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let columns = params.batch * P;
  let tilesN = (columns + BN - 1u) / BN;
  let tilesM = (params.oCount + BM - 1u) / BM;
  let tile = workgroupIndex(wid, nwg);
  if (tile >= tilesN * tilesM) { return; }
  let n0 = (tile % tilesN) * BN;
  let m0 = (tile / tilesN) * BM;
  let cBase = (params.oBase / MG) * CG; // a launch never spans two groups
  let tx = lid % TX;
  let ty = lid / TX;

  var acc: array<f32, ${t.tm * t.tn}>;
  for (var k0 = 0u; k0 < KG; k0 += BK) {
    // Stage W[m0.., k0..]: consecutive invocations read consecutive k (contiguous rows).
    for (var i = lid; i < BM * BK; i += THREADS) {
      let m = m0 + i / BK;
      let k = k0 + i % BK;
      var v = 0.0;
      if (m < params.oCount && k < KG) { v = w[params.wOffset + m * KG + k]; }
      tileW[(i % BK) * BM + i / BK] = v;
    }
    // Stage X'[k0.., n0..]: consecutive invocations read consecutive output pixels.
    for (var i = lid; i < BK * BN; i += THREADS) {
      let k = k0 + i / BN;
      let n = n0 + i % BN;
      var v = 0.0;
      if (n < columns && k < KG) {
        let c = k / KHW;
        let r = k % KHW;
        let p = n % P;
        let ih = i32((p / OW) * SH + r / KW) - PH;
        let iw = i32((p % OW) * SW + r % KW) - PW;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) {
          v = x[((n / P) * CIN + cBase + c) * u32(H * W) + u32(ih * W + iw)];
        }
      }
      tileX[i] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var a: array<f32, ${t.tm}>;
      var b: array<f32, ${t.tn}>;
      for (var i = 0u; i < TM; i++) { a[i] = tileW[kk * BM + ty + i * TY]; }
      for (var j = 0u; j < TN; j++) { b[j] = tileX[kk * BN + tx + j * TX]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < TM; i++) {
    let m = m0 + ty + i * TY;
    if (m >= params.oCount) { continue; }
    let o = params.oBase + m;
    for (var j = 0u; j < TN; j++) {
      let n = n0 + tx + j * TX;
      if (n >= columns) { continue; }
      let v = acc[i * TN + j] + bias[o];
      y[((n / P) * COUT + o) * P + n % P] = ${relu ? "max(v, 0.0)" : "v"};
    }
  }
}`;
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
  /** Tiling; chosen from the shape when omitted. */
  tile?: GemmTile;
}

/**
 * Records the launches of one convolution: one per group, and more where a group's weights exceed
 * the adapter's per-binding limit (fc6's 151 MB), each binding a slice of the weight buffer.
 * Returns the launches and the uniform buffers they own (destroy them with the plan).
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
): Launch {
  const g = args.geometry;
  validateConv2d(g);
  const [oh, ow] = conv2dOutputSize(g);
  const mg = g.outChannels / g.groups;
  const tile = args.tile ?? chooseTile(mg, args.batch * oh * ow);
  const key = `conv2d_forward:${Object.values(g)}:${Object.values(tile)}:${args.relu}`;
  const pipeline = gpu.pipeline(key, conv2dForwardWgsl(g, tile, args.relu), [
    "read",
    "read",
    "read",
    "read_write",
    "uniform",
  ]);
  const rowBytes = (g.inChannels / g.groups) * g.kernelH * g.kernelW * 4;
  const dispatches: Dispatch[] = [];
  const uniforms: GPUBuffer[] = [];
  const wholeWeight = args.weight.size * 4 <= gpu.limits.maxStorageBufferBindingSize;
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  for (const [oBase, oCount] of launchRanges(g, rowBytes, gpu.limits)) {
    // Bind the whole weight where it fits; otherwise a slice from the aligned byte at or before
    // the launch's first row.
    const first = oBase * rowBytes;
    const start = wholeWeight ? 0 : Math.floor(first / align) * align;
    const weight: GPUBufferBinding = wholeWeight
      ? { buffer: args.weight.buffer }
      : { buffer: args.weight.buffer, offset: start, size: first + oCount * rowBytes - start };
    const uniform = gpu.uniform([args.batch, oBase, oCount, (first - start) / 4], `${key} params`);
    uniforms.push(uniform);
    const tiles = Math.ceil(oCount / tile.bm) * Math.ceil((args.batch * oh * ow) / tile.bn);
    dispatches.push(
      gpu.dispatch(
        `conv2d_forward ${oBase}+${oCount}`,
        pipeline,
        [args.x.buffer, weight, args.bias.buffer, args.y.buffer, uniform],
        tiles,
      ),
    );
  }
  return { dispatches, uniforms };
}

/**
 * Splits the output channels into launches: one per group, each cut further so that its weight
 * rows (plus the alignment slack of a binding offset) fit in one storage binding.
 */
function launchRanges(
  g: Conv2dGeometry,
  rowBytes: number,
  limits: GPUSupportedLimits,
): [number, number][] {
  // A slice starts up to one alignment unit before its first row.
  const slack = limits.minStorageBufferOffsetAlignment;
  const maxRows = Math.floor((limits.maxStorageBufferBindingSize - slack) / rowBytes);
  if (maxRows < 1) {
    throw new RangeError(`one weight row of ${rowBytes} bytes exceeds the binding limit`);
  }
  const mg = g.outChannels / g.groups;
  const ranges: [number, number][] = [];
  for (let group = 0; group < g.groups; group++) {
    const pieces = Math.ceil(mg / maxRows);
    const rows = Math.ceil(mg / pieces);
    for (let first = 0; first < mg; first += rows) {
      ranges.push([group * mg + first, Math.min(rows, mg - first)]);
    }
  }
  return ranges;
}
