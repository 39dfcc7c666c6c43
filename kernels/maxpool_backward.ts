/**
 * The gradient of max-pooling, gathered: each input element sums the output gradients of the
 * windows whose saved argmax it is. No atomics, deterministic, ties as in the forward pass.
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
 * WGSL for the max-pool gradient over `h` x `w` maps; one invocation per input element.
 *
 * @example
 * ```ts
 * import { maxPoolBackwardWgsl } from "./maxpool_backward.ts";
 * console.assert(maxPoolBackwardWgsl(55, 55, 3, 2).includes("fn main"));
 * ```
 */
export function maxPoolBackwardWgsl(h: number, w: number, size: number, stride: number): string {
  const [oh, ow] = maxPoolOutputSize(h, w, size, stride);
  const span = [...Array(Math.ceil(size / stride)).keys()].reverse(); // windows covering a row
  const windows = span.flatMap((di) => span.map((dj) => [di, dj]));
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> argmax: array<u32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> count: vec4u; // x: input elements in the launch
${WORKGROUP_INDEX_WGSL}

const W = ${w}u;
const HW = ${h * w}u;
const OH = ${oh}u;
const OW = ${ow}u;
const SIZE = ${size}u;
const STRIDE = ${stride}u;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (e >= count.x) { return; }
  let map = e / HW;
  let q = e % HW;
  let r = q / W;
  let c = q % W;
  // The windows covering (r, c) are the last SPAN rows and columns of windows up to (iHi, jHi)
  // that still reach it, written out in ascending order (no loops whose bounds vary by lane).
  let iHi = min(r / STRIDE, OH - 1u);
  let jHi = min(c / STRIDE, OW - 1u);
  var sum = 0.0;
${
    windows.map(([di, dj]) =>
      `  if (${di}u <= iHi && ${dj}u <= jHi && r < (iHi - ${di}u) * STRIDE + SIZE &&
      c < (jHi - ${dj}u) * STRIDE + SIZE) {
    let o = (map * OH + iHi - ${di}u) * OW + jHi - ${dj}u;
    if (argmax[o] == q) { sum += dy[o]; }
  }`
    ).join("\n")
  }
  dx[e] = sum;
}`;
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
  const count = args.batch * channels * h * w;
  return gpu.perElement(
    "maxpool_backward",
    pipeline,
    [args.indices, args.dy.buffer, args.dx.buffer],
    count,
    WORKGROUP,
  );
}
