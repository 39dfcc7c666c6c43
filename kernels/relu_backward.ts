/**
 * ReLU's gradient, in place: dy <- dy where the layer's output y > 0, else 0. Run once before
 * the two backward GEMMs of a convolution or dense layer with fused ReLU, so that each reads one
 * buffer instead of masking every element it loads. On llvmpipe, runs of whole quads are first
 * copied into the GEMM scratch textures and read there, four elements an invocation: llvmpipe reads
 * texels several times faster than storage buffers.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel relu_backward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import {
  joinLaunches,
  type Launch,
  texelLoadWgsl,
  type TexelRead,
  textureKind,
  textureWgsl,
  WORKGROUP_INDEX_WGSL,
} from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { readsCopies } from "./gemm/mirror.ts";
import { PACKED_TEXEL_WGSL } from "./gemm/pack_wgsl.ts";
import { gemmScratch } from "./gemm/record.ts";

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
 * WGSL of the mask four elements an invocation, reading y and dy from copies in textures read as
 * `read` says.
 *
 * @example
 * ```ts
 * import { reluBackwardMirroredWgsl } from "./relu_backward.ts";
 * console.assert(reluBackwardMirroredWgsl("storage").includes("textureLoad(ym, at)"));
 * ```
 */
export const reluBackwardMirroredWgsl = (read: TexelRead): string => /* wgsl */ `
${textureWgsl("ym", 0, read)} // a copy of y
@group(0) @binding(1) var<storage, read_write> dy: array<vec4f>;
${textureWgsl("dym", 2, read)} // a copy of dy
@group(0) @binding(3) var<uniform> count: vec4u; // x: quads in the launch
${PACKED_TEXEL_WGSL}
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let at = packedTexel(i);
  dy[i] = select(vec4f(0.0), ${texelLoadWgsl("dym", "at", read)}, ${
  texelLoadWgsl("ym", "at", read)
} > vec4f(0.0));
}`;

/**
 * Records the masking of the first `count` elements of `dy` by `y > 0`: in launches of as many
 * quads as a scratch texture holds where `mirrored` (by default on llvmpipe, where `count` is whole
 * quads), else one launch of one element an invocation.
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
export function reluBackward(
  gpu: Gpu,
  args: { y: Tensor; dy: Tensor; count: number; mirrored?: boolean },
): Launch {
  const { y, dy, count } = args;
  if (!(args.mirrored ?? readsCopies(gpu)) || count % 4 !== 0) {
    const pipeline = gpu.pipeline("relu_backward", RELU_BACKWARD_WGSL, [
      "read",
      "read_write",
      "uniform",
    ]);
    return gpu.perElement("relu_backward", pipeline, [y.buffer, dy.buffer], count, WORKGROUP);
  }
  const read = gpu.texelRead, texture = textureKind(read);
  const pipeline = gpu.pipeline(
    "relu_backward:mirrored",
    reluBackwardMirroredWgsl(read),
    [texture, "read_write", texture, "uniform"],
  );
  const { a, b, textures: [ta, tb], texels } = gemmScratch(gpu);
  const align = gpu.limits.minStorageBufferOffsetAlignment / 16;
  const bound = Math.floor(gpu.limits.maxStorageBufferBindingSize / 16 / align) * align;
  const slice = Math.min(texels, bound); // quads a launch
  const launches: Launch[] = [];
  for (let first = 0; first < count / 4; first += slice) {
    const quads = Math.min(slice, count / 4 - first);
    const at = (t: Tensor) => ({ buffer: t.buffer, offset: first * 16, size: quads * 16 });
    const copies = [{ source: at(y), texture: ta }, { source: at(dy), texture: tb }];
    const label = `relu_backward ${4 * first}+${4 * quads}`;
    launches.push(gpu.perElement(label, pipeline, [a, at(dy), b], quads, WORKGROUP, copies));
  }
  return joinLaunches(launches);
}
