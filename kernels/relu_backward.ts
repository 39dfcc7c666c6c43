/**
 * ReLU's gradient, in place: dy <- dy where the layer's output y > 0, else 0. Run once before
 * the two backward GEMMs of a convolution or dense layer with fused ReLU, so that each reads one
 * buffer instead of masking every element it loads.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel relu_backward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";

const WORKGROUP = 256;

/** WGSL of the mask; one invocation per element. */
export const RELU_BACKWARD_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<uniform> count: vec4u; // x: elements in the launch
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  dy[i] = select(0.0, dy[i], y[i] > 0.0);
}`;

/**
 * Records the masking of the first `count` elements of `dy` by `y > 0`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { reluBackward } from "./relu_backward.ts";
 * const gpu = await Gpu.create();
 * const y = Tensor.from(gpu, [3], new Float32Array([0, 2, 0]));
 * const dy = Tensor.from(gpu, [3], new Float32Array([5, 6, 7]));
 * gpu.run(reluBackward(gpu, { y, dy, count: 3 }).dispatches);
 * console.log(await dy.read()); // Float32Array [0, 6, 0]
 * gpu.destroy();
 * ```
 */
export function reluBackward(gpu: Gpu, args: { y: Tensor; dy: Tensor; count: number }): Launch {
  const pipeline = gpu.pipeline("relu_backward", RELU_BACKWARD_WGSL, [
    "read",
    "read_write",
    "uniform",
  ]);
  return gpu.perElement(
    "relu_backward",
    pipeline,
    [args.y.buffer, args.dy.buffer],
    args.count,
    WORKGROUP,
  );
}
