/**
 * Max-pooling over size x size windows at a stride (the paper's overlapping pooling: 3x3,
 * stride 2). No padding; output size floor((h - size) / stride) + 1, as PyTorch's default.
 * Ties keep the first maximum in row-major window order. In training, each window's argmax
 * (its offset within the map) is saved for the backward pass.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel maxpool_forward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";

const WORKGROUP = 256;

/**
 * The pooled height and width.
 *
 * @example
 * ```ts
 * import { maxPoolOutputSize } from "./maxpool_forward.ts";
 * console.log(maxPoolOutputSize(55, 55, 3, 2)); // [27, 27]
 * ```
 */
export function maxPoolOutputSize(
  h: number,
  w: number,
  size: number,
  stride: number,
): [number, number] {
  if (size > h || size > w || size < 1 || stride < 1) {
    throw new RangeError(`max-pool ${size}/${stride} does not fit a ${h}x${w} map`);
  }
  return [Math.floor((h - size) / stride) + 1, Math.floor((w - size) / stride) + 1];
}

/**
 * WGSL for max-pooling `h` x `w` maps; one invocation per output element.
 *
 * @example
 * ```ts
 * import { maxPoolForwardWgsl } from "./maxpool_forward.ts";
 * console.assert(maxPoolForwardWgsl(55, 55, 3, 2, true).includes("argmax"));
 * ```
 */
export function maxPoolForwardWgsl(
  h: number,
  w: number,
  size: number,
  stride: number,
  saveIndices = false,
): string {
  const [oh, ow] = maxPoolOutputSize(h, w, size, stride);
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${saveIndices ? "@group(0) @binding(2) var<storage, read_write> argmax: array<u32>;" : ""}
@group(0) @binding(${
    saveIndices ? 3 : 2
  }) var<uniform> count: vec4u; // x: output elements in the launch
${WORKGROUP_INDEX_WGSL}

const W = ${w}u;
const OW = ${ow}u;
const OP = ${oh * ow}u;
const HW = ${h * w}u;
const SIZE = ${size}u;
const STRIDE = ${stride}u;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let map = i / OP;
  let p = i % OP;
  let corner = map * HW + (p / OW) * STRIDE * W + (p % OW) * STRIDE;
  var best = x[corner];
  var at = 0u;
  for (var a = 0u; a < SIZE; a++) {
    for (var b = 0u; b < SIZE; b++) {
      let v = x[corner + a * W + b];
      if (v > best) {
        best = v;
        at = a * W + b;
      }
    }
  }
  y[i] = best;
  ${saveIndices ? "argmax[i] = corner % HW + at;" : ""}
}`;
}

/** A recorded pooling launch that saves its argmax indices (training). */
export interface PoolLaunch extends Launch {
  /** Each output's argmax (offset within its map), for the backward pass. */
  indices?: GPUBuffer;
}

/**
 * Records max-pooling of `x` [batch, c, h, w] into `y` [batch, c, oh, ow]; with `saveIndices`,
 * also each window's argmax (a buffer the launch owns).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { maxPoolForward } from "./maxpool_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 3, 3], new Float32Array([1, 5, 2, 0, 3, 4, 9, 1, 1]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * gpu.run(maxPoolForward(gpu, { x, y, batch: 1, size: 3, stride: 2 }).dispatches);
 * console.log(await y.read()); // Float32Array [9]
 * gpu.destroy();
 * ```
 */
export function maxPoolForward(
  gpu: Gpu,
  args: {
    x: Tensor;
    y: Tensor;
    batch: number;
    size: number;
    stride: number;
    saveIndices?: boolean;
  },
): PoolLaunch {
  const [, channels, h, w] = args.x.shape;
  const [oh, ow] = maxPoolOutputSize(h, w, args.size, args.stride);
  const save = args.saveIndices === true;
  const key = `maxpool_forward:${h}:${w}:${args.size}:${args.stride}:${save}`;
  const pipeline = gpu.pipeline(
    key,
    maxPoolForwardWgsl(h, w, args.size, args.stride, save),
    save ? ["read", "read_write", "read_write", "uniform"] : ["read", "read_write", "uniform"],
  );
  const count = args.batch * channels * oh * ow;
  const indices = save ? gpu.buffer(count * 4, "maxpool argmax") : undefined;
  const resources = [args.x.buffer, args.y.buffer, ...(indices ? [indices] : [])];
  const launch = gpu.perElement("maxpool_forward", pipeline, resources, count, WORKGROUP);
  return { ...launch, buffers: [...launch.buffers, ...(indices ? [indices] : [])], indices };
}
