/**
 * A dense layer's bias gradient: dBias[o] = sum over the batch of dY[b, o] (ReLU mask already
 * applied), added to what is there with `accumulate`. The dense weight gradient's GEMM leaves the
 * bias out, so that its epilogue stores weights only (kernels/conv2d_backward_weight.ts); a
 * convolution's bias stays a column of its weight gradient's GEMM.
 *
 * Reference test: tests/kernels/conv2d_test.ts (the dense cases); timed with the weight gradient
 * by `deno task bench:kernels --kernel conv2d_backward_weight`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { enableWgsl } from "./gemm/core.ts";

const WORKGROUP = 64;

/**
 * WGSL of the sum, one invocation per output channel; with `half`, each dY is rounded to f16 first,
 * as the GEMM cores round what they multiply.
 *
 * @example
 * ```ts
 * import { biasBackwardWgsl } from "./bias_backward.ts";
 * console.assert(biasBackwardWgsl(true).startsWith("enable f16;"));
 * ```
 */
export function biasBackwardWgsl(half: boolean): string {
  return /* wgsl */ `${enableWgsl(half ? "f16" : "f32")}
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dbias: array<f32>;
@group(0) @binding(2) var<uniform> sizes: vec4u; // x: channels, y: batch, z: accumulate
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let o = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (o >= sizes.x) { return; }
  var sum = 0.0;
  for (var b = 0u; b < sizes.y; b++) { sum += ${
    half ? "f32(f16(dy[b * sizes.x + o]))" : "dy[b * sizes.x + o]"
  }; }
  if (sizes.z != 0u) { sum += dbias[o]; } // a uniform branch, once a channel: cheap here
  dbias[o] = sum;
}`;
}

/**
 * Records dBias = the sum over `batch` images of `dy` [batch, channels] (onto dBias with
 * `accumulate`).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { biasBackward } from "./bias_backward.ts";
 * const gpu = await Gpu.create();
 * const dy = Tensor.from(gpu, [2, 3], new Float32Array([1, 2, 3, 10, 20, 30]));
 * const dBias = Tensor.zeros(gpu, [3]);
 * const launch = biasBackward(gpu, { dy, dBias, batch: 2, accumulate: false });
 * gpu.run(launch.dispatches);
 * console.log(await dBias.read()); // Float32Array [11, 22, 33]
 * for (const b of launch.buffers) b.destroy();
 * gpu.destroy();
 * ```
 */
export function biasBackward(
  gpu: Gpu,
  args: { dy: Tensor; dBias: Tensor; batch: number; accumulate: boolean },
): Launch {
  const channels = args.dBias.size;
  const half = gpu.precision === "f16";
  const key = `bias_backward${half ? ":f16" : ""}`;
  const pipeline = gpu.pipeline(key, biasBackwardWgsl(half), ["read", "read_write", "uniform"]);
  const sizes = gpu.uniform([channels, args.batch, args.accumulate ? 1 : 0], `${key} sizes`);
  const workgroups = Math.ceil(channels / WORKGROUP);
  return {
    dispatches: [
      gpu.dispatch(
        "bias_backward",
        pipeline,
        [args.dy.buffer, args.dBias.buffer, sizes],
        workgroups,
      ),
    ],
    buffers: [sizes],
  };
}
