/**
 * Packs an NCHW tensor into rgba32float texels, channels last: texel
 * 1 + ((b * H + h) * W + w) * C / 4 + c / 4 holds channels c..c+3 of pixel (h, w) of image b, and
 * texel 0 holds zeros, which is what the padding reads. A convolution's GEMM then gathers its im2col
 * operand from these texels in place, four channels per fetch, instead of packing the im2col
 * matrix: the input is written once, not once per kernel tap (25 times for a 5x5 kernel).
 *
 * @module
 */
import { type Gpu, type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { PACKED_TEXEL_WGSL } from "./gemm.ts";

const WORKGROUP = 64;

/**
 * The texels {@linkcode packChannelsLast} writes for `batch` images of `channels` x `pixels`.
 *
 * @example
 * ```ts
 * import { channelsLastTexels } from "./pack_channels_last.ts";
 * console.log(channelsLastTexels(2, 8, 9)); // 37: one zero texel, then 2 * 9 pixels of 2 texels
 * ```
 */
export function channelsLastTexels(batch: number, channels: number, pixels: number): number {
  return 1 + batch * pixels * channels / 4;
}

/**
 * WGSL of the packing kernel for maps of `channels` (a multiple of 4) x `pixels`.
 *
 * @example
 * ```ts
 * import { packChannelsLastWgsl } from "./pack_channels_last.ts";
 * console.assert(packChannelsLastWgsl(8, 9).includes("textureStore"));
 * ```
 */
export function packChannelsLastWgsl(channels: number, pixels: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var packed: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> count: vec4u; // x: texels
${PACKED_TEXEL_WGSL}
${WORKGROUP_INDEX_WGSL}
const C4 = ${channels / 4}u;
const P = ${pixels}u;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  var v = vec4f(0.0);
  if (i > 0u) {
    let pixel = (i - 1u) / C4; // image * P + pixel within the map
    let first = ((pixel / P) * C4 * 4u + ((i - 1u) % C4) * 4u) * P + pixel % P;
    v = vec4f(x[first], x[first + P], x[first + 2u * P], x[first + 3u * P]);
  }
  textureStore(packed, packedTexel(i), v);
}`;
}

/**
 * Records the packing of `x`, read as [batch, channels, pixels] whatever its shape (a dense layer
 * reads [batch, 128, 2, 2] as 512 channels of one pixel), into the texels of `target`, a
 * rgba32float storage texture laid out as the GEMM's scratch textures are. `channels` is a
 * multiple of 4.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { gemmScratch } from "./gemm.ts";
 * import { packChannelsLast } from "./pack_channels_last.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 4, 1, 2], new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
 * const { dispatches } = packChannelsLast(gpu, {
 *   x, batch: 1, channels: 4, pixels: 2, target: gemmScratch(gpu).b });
 * gpu.run(dispatches); // texel 1 holds [1, 3, 5, 7] (pixel 0), texel 2 [2, 4, 6, 8] (pixel 1)
 * gpu.destroy();
 * ```
 */
export function packChannelsLast(
  gpu: Gpu,
  args: { x: Tensor; batch: number; channels: number; pixels: number; target: GPUTextureView },
): Launch {
  const { channels, pixels } = args;
  if (channels % 4) throw new RangeError(`packChannelsLast: ${channels} channels, not 4k`);
  const pipeline = gpu.pipeline(
    `pack_channels_last:${channels}:${pixels}`,
    packChannelsLastWgsl(channels, pixels),
    ["read", "storage_texture", "uniform"],
  );
  const texels = channelsLastTexels(args.batch, channels, pixels);
  return gpu.perElement(
    "pack_channels_last",
    pipeline,
    [args.x.buffer, args.target],
    texels,
    WORKGROUP,
  );
}
