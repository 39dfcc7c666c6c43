/**
 * The gradient of max-pooling, gathered: each input element sums the output gradients of the
 * windows whose saved argmax it is, a stride x stride block of elements to an invocation. No
 * atomics, deterministic, ties as in the forward pass.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel maxpool_backward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { maxPoolOutputSize } from "./maxpool_forward.ts";

const WORKGROUP = 256;

/**
 * WGSL for the max-pool gradient over `h` x `w` maps. One invocation per stride x stride block of
 * input elements: the same ceil(size / stride)^2 windows cover every element of a block, so it
 * loads each window's argmax and gradient once and writes the block's elements.
 *
 * @example
 * ```ts
 * import { maxPoolBackwardWgsl } from "./maxpool_backward.ts";
 * console.assert(maxPoolBackwardWgsl(55, 55, 3, 2).includes("fn main"));
 * ```
 */
export function maxPoolBackwardWgsl(h: number, w: number, size: number, stride: number): string {
  const [oh, ow] = maxPoolOutputSize(h, w, size, stride);
  const [bh, bw] = poolBlocks(h, w, stride);
  const windows = coveringWindows(size, stride);
  const cells = [...Array(stride * stride).keys()].map((n) => [Math.floor(n / stride), n % stride]);
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> argmax: array<u32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> count: vec4u; // x: blocks in the launch
${WORKGROUP_INDEX_WGSL}

const H = ${h}u;
const W = ${w}u;
const HW = ${h * w}u;
const OH = ${oh}u;
const OW = ${ow}u;
const BW = ${bw}u;
const BLOCKS = ${bh * bw}u;
const STRIDE = ${stride}u;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (e >= count.x) { return; }
  let map = e / BLOCKS;
  let bi = (e % BLOCKS) / BW;
  let bj = e % BW;
  // Window (bi - di, bj - dj)'s argmax and gradient; an argmax no element has outside the map.
${
    windows.map(([di, dj]) =>
      `  var m${di}${dj} = HW;
  var g${di}${dj} = 0.0;
  if (${windowInsideWgsl(di, dj)}) {
    let o = map * OH * OW + ${windowOffsetWgsl(di, dj)};
    m${di}${dj} = argmax[o];
    g${di}${dj} = dy[o];
  }`
    ).join("\n")
  }
${
    cells.map(([a, b]) =>
      `  if (bi * STRIDE + ${a}u < H && bj * STRIDE + ${b}u < W) {
    let q = (bi * STRIDE + ${a}u) * W + bj * STRIDE + ${b}u;
    var sum = 0.0;
${windows.map(([di, dj]) => `    if (m${di}${dj} == q) { sum += g${di}${dj}; }`).join("\n")}
    dx[map * HW + q] = sum;
  }`
    ).join("\n")
  }
}`;
}

/**
 * Blocks of stride x stride input elements a map has, down and across (edges partly empty).
 *
 * @example
 * ```ts
 * import { poolBlocks } from "./maxpool_backward.ts";
 * console.log(poolBlocks(55, 55, 2)); // [28, 28]
 * ```
 */
export function poolBlocks(h: number, w: number, stride: number): [number, number] {
  return [Math.ceil(h / stride), Math.ceil(w / stride)];
}

/**
 * The windows that cover a block of stride x stride inputs, as [di, dj]: the window at block row
 * `bi - di` and column `bj - dj`. In ascending order of windows, the order their gradients add.
 *
 * @example
 * ```ts
 * import { coveringWindows } from "./maxpool_backward.ts";
 * console.log(coveringWindows(3, 2)); // [[1, 1], [1, 0], [0, 1], [0, 0]]
 * ```
 */
export function coveringWindows(size: number, stride: number): [number, number][] {
  const span = [...Array(Math.ceil(size / stride)).keys()].reverse();
  return span.flatMap((di) => span.map((dj): [number, number] => [di, dj]));
}

/**
 * WGSL: whether covering window [di, dj] of block (`bi`, `bj`) lies in the pooled map (`OH` x
 * `OW`).
 *
 * @example
 * ```ts
 * import { windowInsideWgsl } from "./maxpool_backward.ts";
 * console.log(windowInsideWgsl(1, 0)); // bi >= 1u && bi - 1u < OH && bj >= 0u && bj - 0u < OW
 * ```
 */
export function windowInsideWgsl(di: number, dj: number): string {
  return `bi >= ${di}u && bi - ${di}u < OH && bj >= ${dj}u && bj - ${dj}u < OW`;
}

/**
 * WGSL: the offset in its pooled map of covering window [di, dj] of block (`bi`, `bj`).
 *
 * @example
 * ```ts
 * import { windowOffsetWgsl } from "./maxpool_backward.ts";
 * console.log(windowOffsetWgsl(1, 0)); // (bi - 1u) * OW + bj - 0u
 * ```
 */
export function windowOffsetWgsl(di: number, dj: number): string {
  return `(bi - ${di}u) * OW + bj - ${dj}u`;
}

/**
 * Records the max-pool input gradient `dx` [batch, c, h, w] from the output gradient `dy`
 * [batch, c, oh, ow] and the argmax indices the training forward pass saved.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { maxPoolBackward } from "./maxpool_backward.ts";
 * import { maxPoolForward } from "./maxpool_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 2, 2], new Float32Array([1, 5, 2, 0]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const forward = maxPoolForward(gpu, { x, y, batch: 1, size: 2, stride: 2, saveIndices: true });
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([3]));
 * const dx = Tensor.zeros(gpu, [1, 1, 2, 2]);
 * const backward = maxPoolBackward(gpu, { indices: forward.indices!, dy, dx, batch: 1, size: 2,
 *   stride: 2 });
 * gpu.run([...forward.dispatches, ...backward.dispatches]);
 * console.log(await dx.read()); // Float32Array [0, 3, 0, 0]
 * gpu.destroy();
 * ```
 */
export function maxPoolBackward(
  gpu: Gpu,
  args: { indices: GPUBuffer; dy: Tensor; dx: Tensor; batch: number; size: number; stride: number },
): Launch {
  const [, channels, h, w] = args.dx.shape;
  const key = `maxpool_backward:${h}:${w}:${args.size}:${args.stride}`;
  const pipeline = gpu.pipeline(key, maxPoolBackwardWgsl(h, w, args.size, args.stride), [
    "read",
    "read",
    "read_write",
    "uniform",
  ]);
  const [bh, bw] = poolBlocks(h, w, args.stride);
  const count = args.batch * channels * bh * bw;
  return gpu.perElement(
    "maxpool_backward",
    pipeline,
    [args.indices, args.dy.buffer, args.dx.buffer],
    count,
    WORKGROUP,
  );
}
