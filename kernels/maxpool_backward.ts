/**
 * The gradient of max-pooling, gathered: each input element sums the output gradients of the
 * windows whose maximum it is (the first in row-major order on ties, as the forward pass), found
 * by re-reading each window. No atomics, no stored indices, deterministic.
 *
 * @module
 */
import { type Gpu, type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/device.ts";
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
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
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

// The offset within its map of the first maximum of window (i, j).
fn argmax(map: u32, i: u32, j: u32) -> u32 {
  var best = i * STRIDE * W + j * STRIDE;
  for (var a = 0u; a < SIZE; a++) {
    for (var b = 0u; b < SIZE; b++) {
      let at = (i * STRIDE + a) * W + j * STRIDE + b;
      if (x[map * HW + at] > x[map * HW + best]) { best = at; }
    }
  }
  return best;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let e = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (e >= count.x) { return; }
  let map = e / HW;
  let q = e % HW;
  let r = q / W;
  let c = q % W;
  // Windows (i, j) covering (r, c): i * STRIDE <= r < i * STRIDE + SIZE.
  let iLo = select(0u, (r - SIZE) / STRIDE + 1u, r >= SIZE);
  let jLo = select(0u, (c - SIZE) / STRIDE + 1u, c >= SIZE);
  let iHi = min(r / STRIDE, OH - 1u);
  let jHi = min(c / STRIDE, OW - 1u);
  var sum = 0.0;
  for (var i = iLo; i <= iHi; i++) {
    for (var j = jLo; j <= jHi; j++) {
      if (argmax(map, i, j) == q) { sum += dy[(map * OH + i) * OW + j]; }
    }
  }
  dx[e] = sum;
}`;
}

/**
 * Records the max-pool input gradient `dx` [batch, c, h, w] from the input `x` and the output
 * gradient `dy` [batch, c, oh, ow].
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { maxPoolBackward } from "./maxpool_backward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 2, 2], new Float32Array([1, 5, 2, 0]));
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([3]));
 * const dx = Tensor.zeros(gpu, [1, 1, 2, 2]);
 * gpu.run(maxPoolBackward(gpu, { x, dy, dx, batch: 1, size: 2, stride: 2 }).dispatches);
 * console.log(await dx.read()); // Float32Array [0, 3, 0, 0]
 * gpu.destroy();
 * ```
 */
export function maxPoolBackward(
  gpu: Gpu,
  args: { x: Tensor; dy: Tensor; dx: Tensor; batch: number; size: number; stride: number },
): Launch {
  const [, channels, h, w] = args.x.shape;
  const key = `maxpool_backward:${h}:${w}:${args.size}:${args.stride}`;
  const pipeline = gpu.pipeline(key, maxPoolBackwardWgsl(h, w, args.size, args.stride), [
    "read",
    "read",
    "read_write",
    "uniform",
  ]);
  const count = args.batch * channels * h * w;
  const uniform = gpu.uniform([count], `${key} params`);
  const dispatch = gpu.dispatch(
    "maxpool_backward",
    pipeline,
    [args.x.buffer, args.dy.buffer, args.dx.buffer, uniform],
    Math.ceil(count / WORKGROUP),
  );
  return { dispatches: [dispatch], uniforms: [uniform] };
}
