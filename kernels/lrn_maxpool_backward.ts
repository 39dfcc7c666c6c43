/**
 * The gradients of max-pooling and of the LRN before it in one pass: the LRN gradient's walk
 * (lrn_backward.ts) over 2 x 2 blocks of pixels, a vec4 a block, whose gradient at LRN's output
 * is gathered from the pooled gradient where each covering window's saved argmax points, as
 * max-pooling's gradient kernel gathers it. The gradient at LRN's output is never stored nor
 * read back. The result equals the pooling gradient's kernel then LRN's, to the bit.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel lrn_maxpool_backward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import {
  type Launch,
  type TexelCopy,
  type TexelRead,
  textureKind,
  WORKGROUP_INDEX_WGSL,
} from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { readsCopies, scalarBufferWgsl, scalarMirror } from "./gemm/mirror.ts";
import { PACKED_TEXEL_WGSL } from "./gemm/pack_wgsl.ts";
import { gemmScratch } from "./gemm/record.ts";
import { lrnGradientWalkWgsl } from "./lrn_backward.ts";
import type { LrnParams } from "./lrn_forward.ts";
import {
  coveringWindows,
  poolBlocks,
  windowInsideWgsl,
  windowOffsetWgsl,
} from "./maxpool_backward.ts";
import { maxPoolOutputSize } from "./maxpool_forward.ts";

const WORKGROUP = 256;

/**
 * The pooling stride whose blocks of stride x stride pixels fill a vec4: the one this kernel takes.
 *
 * @example
 * ```ts
 * import { FUSED_POOL_STRIDE } from "./lrn_maxpool_backward.ts";
 * console.log(FUSED_POOL_STRIDE ** 2); // 4
 * ```
 */
export const FUSED_POOL_STRIDE = 2;

/**
 * WGSL for the LRN gradient through the max-pooling after it, over `channels` maps of `h` x `w`.
 * One invocation walks one 2 x 2 block's channels of one group: the pooling windows covering a
 * block are the same for its four pixels and every channel.
 *
 * @example
 * ```ts
 * import { lrnMaxPoolBackwardWgsl } from "./lrn_maxpool_backward.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnMaxPoolBackwardWgsl(96, 55, 55, PAPER_LRN, 3, true, "storage").includes("argmax"));
 * ```
 */
export function lrnMaxPoolBackwardWgsl(
  channels: number,
  h: number,
  w: number,
  p: LrnParams,
  size: number,
  reluInput = false,
  mirror?: TexelRead,
): string {
  const stride = FUSED_POOL_STRIDE;
  const [oh, ow] = maxPoolOutputSize(h, w, size, stride);
  const [bh, bw] = poolBlocks(h, w, stride);
  const windows = coveringWindows(size, stride); // in max-pooling's gradient order
  return /* wgsl */ `
alias T = vec4f; // a block's pixels, row-major
${mirror ? PACKED_TEXEL_WGSL : ""}
${scalarBufferWgsl("x", 0, mirror)}
@group(0) @binding(1) var<storage, read> argmax: array<u32>;
${scalarBufferWgsl("dy", 2, mirror)} // the pooled gradient
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> count: vec4u; // x: (image, group, block)s
${WORKGROUP_INDEX_WGSL}

const H = ${h}u;
const W = ${w}u;
const HW = ${h * w}u;
const OH = ${oh}u;
const OW = ${ow}u;
const OP = ${oh * ow}u;
const BW = ${bw}u;
const CG = ${channels / p.groups}u; // channels a group
const S = ${bh * bw}; // units (blocks) a map
const Q = ${channels / p.groups * bh * bw}; // units a group

// The block's pixels in the map. One past the map's edge repeats the last inside, whose loads,
// gradient and store it then repeats too.
var<private> q: vec4u;
var<private> pooled: u32; // the group's first pooled element
${
    windows.map(([di, dj]) =>
      `var<private> w${di}${dj}: u32; // window ${di}${dj} in the pooled map
var<private> has${di}${dj}: bool;`
    ).join("\n")
  }

fn xUnit(g: u32, m: i32) -> T {
  let at = g + u32(clamp(m, 0, Q - 1) / S) * HW;
  return select(T(0.0), T(xAt(at + q.x), xAt(at + q.y), xAt(at + q.z), xAt(at + q.w)), m >= 0 && m < Q);
}

// The gradient at LRN's output: each covering window's, where its argmax is the pixel.
fn dyUnit(g: u32, m: i32) -> T {
  let o = pooled + u32(clamp(m, 0, Q - 1) / S) * OP;
  var sum = T(0.0);
${
    windows.map(([di, dj]) => {
      const [w, has] = [`w${di}${dj}`, `has${di}${dj}`];
      const [g, at] = [
        `select(0.0, dyAt(o + ${w}), ${has})`,
        `select(HW, argmax[o + ${w}], ${has})`,
      ];
      return `  sum += select(T(0.0), T(${g}), vec4u(${at}) == q);`;
    }).join("\n")
  }
  return select(T(0.0), sum, m >= 0 && m < Q);
}

fn dxStore(g: u32, m: i32, value: T) {
  let at = g + u32(m / S) * HW;
  dx[at + q.x] = value.x;
  dx[at + q.y] = value.y;
  dx[at + q.z] = value.z;
  dx[at + q.w] = value.w;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let walk = i / u32(S); // (image, group)
  let g = walk * CG * HW; // the group's first element
  pooled = walk * CG * OP;
  let first = i32(i % u32(S)); // the block: unit m = channel * S + block
  let bi = u32(first) / BW;
  let bj = u32(first) % BW;
  let rows = vec4u(2u * bi, 2u * bi, 2u * bi + 1u, 2u * bi + 1u);
  let cols = vec4u(2u * bj, 2u * bj + 1u, 2u * bj, 2u * bj + 1u);
  q = min(rows, vec4u(H - 1u)) * W + min(cols, vec4u(W - 1u));
${
    windows.map(([di, dj]) =>
      `  has${di}${dj} = ${windowInsideWgsl(di, dj)};
  w${di}${dj} = select(0u, ${windowOffsetWgsl(di, dj)}, has${di}${dj});`
    ).join("\n")
  }
${lrnGradientWalkWgsl(p, reluInput)}
}`;
}

/**
 * Records the LRN input gradient `dx` [batch, channels, h, w] through the max-pooling after the
 * LRN: from the LRN's input `x`, the pooled gradient `dy` [batch, channels, oh, ow] and the argmax
 * `indices` the pooling's training forward pass saved. Pooling at stride 2 only
 * ({@linkcode FUSED_POOL_STRIDE}). With `reluInput`, also the mask of the ReLU before the LRN.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { lrnMaxPoolBackward } from "./lrn_maxpool_backward.ts";
 * import { lrnMaxPoolForward } from "./lrn_maxpool_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 2, 2], new Float32Array([0.5, 3, 0.25, 0]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const params = { size: 1, alpha: 1, beta: 1, k: 1, groups: 1 }; // a / (1 + a^2)
 * const pool = { batch: 1, params, size: 2, stride: 2 };
 * const forward = lrnMaxPoolForward(gpu, { x, y, ...pool, saveIndices: true });
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const dx = Tensor.zeros(gpu, [1, 1, 2, 2]);
 * const backward = lrnMaxPoolBackward(gpu, { x, dy, dx, indices: forward.indices!, ...pool });
 * gpu.run([...forward.dispatches, ...backward.dispatches]);
 * // b = 0.4, 0.3, 0.24, 0: the gradient reaches a = 0.5 alone, (1 - a^2) / (1 + a^2)^2 there
 * console.log(await dx.read()); // Float32Array [0.48000001907348633, 0, 0, 0]
 * gpu.destroy();
 * ```
 */
export function lrnMaxPoolBackward(
  gpu: Gpu,
  args: {
    x: Tensor;
    dy: Tensor;
    dx: Tensor;
    indices: GPUBuffer;
    batch: number;
    params: LrnParams;
    size: number;
    stride: number;
    reluInput?: boolean;
  },
): Launch {
  const [, channels, h, w] = args.x.shape;
  const { params, size, stride } = args;
  if (stride !== FUSED_POOL_STRIDE) {
    throw new RangeError(`LRN through max-pooling: stride ${stride}, not ${FUSED_POOL_STRIDE}`);
  }
  const relu = args.reluInput === true;
  // On llvmpipe x and dy are read from copies in scratch textures A and B, where they fit.
  const scratch = readsCopies(gpu) ? gemmScratch(gpu) : undefined;
  const copies = scratch && [
    scalarMirror(args.x.buffer, args.x.size, scratch.textures[0]),
    scalarMirror(args.dy.buffer, args.dy.size, scratch.textures[1]),
  ];
  const mirrored = copies?.every((c) => c !== undefined) === true;
  const key = `lrn_maxpool_backward:${channels}:${h}:${w}:${Object.values(params)}:${size}:${relu}${
    mirrored ? ":mirrored" : ""
  }`;
  const read = mirrored ? textureKind(gpu.texelRead) : "read";
  const pipeline = gpu.pipeline(
    key,
    lrnMaxPoolBackwardWgsl(
      channels,
      h,
      w,
      params,
      size,
      relu,
      mirrored ? gpu.texelRead : undefined,
    ),
    [read, "read", read, "read_write", "uniform"],
  );
  const [bh, bw] = poolBlocks(h, w, stride);
  const [x, dy] = mirrored ? [scratch!.a, scratch!.b] : [args.x.buffer, args.dy.buffer];
  return gpu.perElement(
    "lrn_maxpool_backward",
    pipeline,
    [x, args.indices, dy, args.dx.buffer],
    args.batch * params.groups * bh * bw,
    WORKGROUP,
    mirrored ? copies as TexelCopy[] : [],
  );
}
