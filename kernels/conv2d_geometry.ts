/**
 * What the three convolution kernels (forward, input gradient, weight gradient) share: the
 * geometry, its WGSL constants, and how a weight too large for one storage binding is cut into
 * launches over ranges of output channels, each binding a slice of the weight buffer.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
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

/**
 * The output height and width of a convolution (floor division, as PyTorch).
 *
 * @example
 * ```ts
 * import { conv2dOutputSize } from "./conv2d_geometry.ts";
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
 * import { validateConv2d } from "./conv2d_geometry.ts";
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
 * The uniform every launch of the three kernels gets: the batch, the launch's output channels
 * [oBase, oBase + oCount) (within one group), where channel oBase's weights start in the bound
 * slice, whether to add to the destination, and what a dense layer's kernels read from it rather
 * than from constants, so that one pipeline serves every dense layer: input and output channels,
 * input channels per group (a weight row), the first input channel of oBase's group, and whether
 * the forward pass applies ReLU.
 */
export const LAUNCH_WGSL = /* wgsl */ `
struct Launch {
  batch: u32, oBase: u32, oCount: u32, wOffset: u32, accumulate: u32,
  cin: u32, cout: u32, cg: u32, cBase: u32, relu: u32,
}`;

/**
 * The values of {@linkcode LAUNCH_WGSL}'s uniform for a launch of `g` over output channels
 * [oBase, oBase + oCount) whose weights start at `wOffset` in the bound slice.
 *
 * @example
 * ```ts
 * import { launchValues } from "./conv2d_geometry.ts";
 * const g = { inChannels: 8, height: 1, width: 1, outChannels: 6, kernelH: 1, kernelW: 1,
 *   strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 2 };
 * console.log(launchValues(g, { batch: 2, oBase: 3, oCount: 3, wOffset: 12, accumulate: false }));
 * // [2, 3, 3, 12, 0, 8, 6, 4, 4, 0]
 * ```
 */
export function launchValues(
  g: Conv2dGeometry,
  l: {
    batch: number;
    oBase: number;
    oCount: number;
    wOffset: number;
    accumulate: boolean;
    relu?: boolean;
  },
): number[] {
  const cg = g.inChannels / g.groups, group = Math.floor(l.oBase / (g.outChannels / g.groups));
  return [
    ...[l.batch, l.oBase, l.oCount, l.wOffset, l.accumulate ? 1 : 0],
    ...[g.inChannels, g.outChannels, cg, group * cg, l.relu ? 1 : 0],
  ];
}

/**
 * WGSL constants of a geometry, shared by the three kernels, after {@linkcode LAUNCH_WGSL}.
 *
 * @example
 * ```ts
 * import { conv2dConstantsWgsl } from "./conv2d_geometry.ts";
 * const g = { inChannels: 4, height: 5, width: 5, outChannels: 6, kernelH: 3, kernelW: 3,
 *   strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 2 };
 * console.assert(conv2dConstantsWgsl(g).includes("const KG = 18u;"));
 * ```
 */
export function conv2dConstantsWgsl(g: Conv2dGeometry): string {
  const [oh, ow] = conv2dOutputSize(g);
  return /* wgsl */ `${LAUNCH_WGSL}
const CIN = ${g.inChannels}u;
const H = ${g.height}u;
const W = ${g.width}u;
const COUT = ${g.outChannels}u;
const KH = ${g.kernelH}u;
const KW = ${g.kernelW}u;
const KHW = ${g.kernelH * g.kernelW}u;
const SH = ${g.strideH}u;
const SW = ${g.strideW}u;
const PH = ${g.padH}u;
const PW = ${g.padW}u;
const OH = ${oh}u;
const OW = ${ow}u;
const P = ${oh * ow}u;             // output pixels per map
const CG = ${g.inChannels / g.groups}u;  // input channels per group
const MG = ${g.outChannels / g.groups}u; // output channels per group
const KG = ${(g.inChannels / g.groups) * g.kernelH * g.kernelW}u; // weights per output channel
`;
}

/**
 * WGSL `inputPixel(r, p)`: the input pixel (row-major in a map, H x W) that output pixel p reads
 * through kernel tap r, or H * W in the padding; and `im2col(b, c, r, p)`: that element of input
 * channel c of image b (binding `x`), or 0 in the padding: the im2col matrix, read in place.
 */
export const IM2COL_WGSL = /* wgsl */ `
fn inputPixel(r: u32, p: u32) -> u32 {
  let ih = (p / OW) * SH + r / KW; // padded coordinates: unsigned, compared against the pad
  let iw = (p % OW) * SW + r % KW;
  if (ih < PH || ih >= H + PH || iw < PW || iw >= W + PW) { return H * W; }
  return (ih - PH) * W + iw - PW;
}
fn im2col(b: u32, c: u32, r: u32, p: u32) -> f32 {
  let q = inputPixel(r, p);
  if (q == H * W) { return 0.0; }
  return x[(b * CIN + c) * H * W + q];
}`;

/** One launch over a range of output channels and the weight binding it uses. */
export interface WeightLaunch {
  /** First output channel. */
  oBase: number;
  /** Output channels in the launch (all within one group). */
  oCount: number;
  /** The weight binding: the whole buffer, or a slice from an aligned offset. */
  binding: GPUBufferBinding;
  /** Where channel `oBase`'s weights start within the binding, in elements. */
  wOffset: number;
}

/**
 * Cuts the output channels into launches: one per group, each cut further so that its weight
 * rows (plus up to one alignment unit of slack before the first) fit one storage binding.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { weightLaunches } from "./conv2d_geometry.ts";
 * const gpu = await Gpu.create();
 * const g = { inChannels: 4, height: 5, width: 5, outChannels: 6, kernelH: 3, kernelW: 3,
 *   strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 2 };
 * const w = Tensor.zeros(gpu, [6, 2, 3, 3]);
 * console.log(weightLaunches(gpu, g, w).map((l) => [l.oBase, l.oCount])); // [[0, 3], [3, 3]]
 * gpu.destroy();
 * ```
 */
export function weightLaunches(gpu: Gpu, g: Conv2dGeometry, weight: Tensor): WeightLaunch[] {
  const limit = gpu.limits.maxStorageBufferBindingSize;
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const rowBytes = (g.inChannels / g.groups) * g.kernelH * g.kernelW * 4;
  const whole = weight.size * 4 <= limit;
  const maxRows = whole ? Infinity : Math.floor((limit - align) / rowBytes);
  if (maxRows < 1) {
    throw new RangeError(`one weight row of ${rowBytes} bytes exceeds the binding limit`);
  }
  const mg = g.outChannels / g.groups;
  const launches: WeightLaunch[] = [];
  for (let group = 0; group < g.groups; group++) {
    const pieces = Math.ceil(mg / maxRows);
    const rows = Math.ceil(mg / pieces);
    for (let first = 0; first < mg; first += rows) {
      const oBase = group * mg + first, oCount = Math.min(rows, mg - first);
      const firstByte = oBase * rowBytes;
      const start = whole ? 0 : Math.floor(firstByte / align) * align;
      const binding = whole
        ? { buffer: weight.buffer }
        : { buffer: weight.buffer, offset: start, size: firstByte + oCount * rowBytes - start };
      launches.push({ oBase, oCount, binding, wOffset: (firstByte - start) / 4 });
    }
  }
  return launches;
}
