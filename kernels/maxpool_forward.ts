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
import { type Launch, type TexelRead, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { scalarBufferWgsl } from "./gemm/mirror.ts";
import { PACKED_TEXEL_WGSL } from "./gemm/pack_wgsl.ts";

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
 * WGSL statements that pool a pair of neighbouring outputs in a row from its size x (stride +
 * size) inputs, named `v{row}_{column}`, and store them: `y[out]` and, past it, `y[out + 1]` where
 * `o0 + 1 < OW` (a row's last pair may hold one output); with `saveIndices`, each window's argmax
 * (`origin`, the pair's corner within its map, plus the first maximum's offset in row-major window
 * order) at the same index of `argmax`. With `reluInput` (the inputs are a ReLU's outputs), a
 * window whose maximum is 0 saves `HW`, an offset no input has: its gradient then reaches no input,
 * as the ReLU's mask would zero it there.
 *
 * @example
 * ```ts
 * import { poolPairWgsl } from "./maxpool_forward.ts";
 * console.assert(poolPairWgsl(55, 3, 2, true).includes("argmax[out + 1u]"));
 * ```
 */
export function poolPairWgsl(
  w: number,
  size: number,
  stride: number,
  saveIndices: boolean,
  reluInput = false,
): string {
  const upTo = (n: number) => [...Array(n).keys()];
  const window = upTo(size).flatMap((a) => upTo(size).map((b) => [a, b]));
  const best = (o: number) => [
    `var best${o} = v0_${o * stride};`,
    `var at${o} = 0u;`,
    ...window.slice(1).map(([a, b]) =>
      `if (v${a}_${o * stride + b} > best${o}) { best${o} = v${a}_${o * stride + b}; at${o} = ${
        a * w + b
      }u; }`
    ),
    `y[out + ${o}u] = best${o};`,
    ...(saveIndices
      ? [
        `argmax[out + ${o}u] = ${
          reluInput
            ? `select(HW, origin + ${o * stride}u + at${o}, best${o} > 0.0)`
            : `origin + ${o * stride}u + at${o}`
        };`,
      ]
      : []),
  ];
  return [
    ...best(0).map((line) => `  ${line}`),
    "  if (o0 + 1u < OW) {",
    ...best(1).map((line) => `    ${line}`),
    "  }",
  ].join("\n");
}

/**
 * WGSL shared by the kernels that pool pairs of outputs (this one and lrn_maxpool_forward.ts):
 * their bindings (x, read through `xAt` from a texture where `mirrored`, y, with `saveIndices`
 * argmax, and the count of pairs) and the maps' sizes.
 *
 * @example
 * ```ts
 * import { pairPoolingWgsl } from "./maxpool_forward.ts";
 * console.assert(pairPoolingWgsl(55, 55, 3, 2, true).includes("const PAIRS = 14u;"));
 * ```
 */
export function pairPoolingWgsl(
  h: number,
  w: number,
  size: number,
  stride: number,
  saveIndices: boolean,
  mirror?: TexelRead,
): string {
  const [oh, ow] = maxPoolOutputSize(h, w, size, stride);
  return /* wgsl */ `${mirror ? PACKED_TEXEL_WGSL : ""}
${scalarBufferWgsl("x", 0, mirror)}
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${saveIndices ? "@group(0) @binding(2) var<storage, read_write> argmax: array<u32>;" : ""}
@group(0) @binding(${saveIndices ? 3 : 2}) var<uniform> count: vec4u; // x: pairs in the launch
${WORKGROUP_INDEX_WGSL}

const W = ${w}u;
const OW = ${ow}u;
const PAIRS = ${Math.ceil(ow / 2)}u; // pairs a row
const OP = ${oh * ow}u;
const HW = ${h * w}u;`;
}

/**
 * A pair's inputs in row-major order: each one's name suffix `{row}_{column}` and WGSL for its
 * offset in the map, from the pair's corner `origin` and first output column `o0`. A lone
 * output's second window repeats the row's last input instead of reading past it.
 *
 * @example
 * ```ts
 * import { pairInputs } from "./maxpool_forward.ts";
 * console.log(pairInputs(55, 3, 2)[4]); // ["0_4", "min(origin + 4u, origin + 54u - o0 * 2u) + 0u"]
 * ```
 */
export function pairInputs(w: number, size: number, stride: number): [string, string][] {
  const upTo = (n: number) => [...Array(n).keys()];
  const last = `origin + ${w - 1}u - o0 * ${stride}u`; // the row's last input
  return upTo(size).flatMap((a) =>
    upTo(stride + size).map((b): [string, string] => [
      `${a}_${b}`,
      b < size ? `origin + ${a * w + b}u` : `min(origin + ${b}u, ${last}) + ${a * w}u`,
    ])
  );
}

/**
 * WGSL for max-pooling `h` x `w` maps. One invocation per pair of neighbouring outputs in a row:
 * it loads the pair's size x (stride + size) inputs once, as straight-line code, so that
 * overlapping windows share the columns they overlap in (3/2 pooling: 15 loads for two outputs,
 * not 18); the last pair of an odd row has one output. `reluInput`: see {@linkcode poolPairWgsl}.
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
  reluInput = false,
): string {
  const [oh] = maxPoolOutputSize(h, w, size, stride);
  return /* wgsl */ `
${pairPoolingWgsl(h, w, size, stride, saveIndices)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let pair = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (pair >= count.x) { return; }
  let row = pair / PAIRS; // (map, output row)
  let o0 = (pair % PAIRS) * 2u; // the pair's first output column
  let map = row / ${oh}u;
  let out = map * OP + (row % ${oh}u) * OW + o0;
  let origin = (row % ${oh}u) * ${stride}u * W + o0 * ${stride}u; // the pair's corner in its map
${pairInputs(w, size, stride).map(([v, q]) => `  let v${v} = xAt(map * HW + ${q});`).join("\n")}
${poolPairWgsl(w, size, stride, saveIndices, reluInput)}
}`;
}

/** A recorded pooling launch that saves its argmax indices (training). */
export interface PoolLaunch extends Launch {
  /** Each output's argmax (offset within its map), for the backward pass. */
  indices?: GPUBuffer;
}

/**
 * Records max-pooling of `x` [batch, c, h, w] into `y` [batch, c, oh, ow]; with `saveIndices`,
 * also each window's argmax (a buffer the launch owns), where `reluInput` (x is a ReLU's output)
 * makes the gradient also the ReLU's: zero where x is.
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
    reluInput?: boolean;
  },
): PoolLaunch {
  const [, channels, h, w] = args.x.shape;
  const [oh, ow] = maxPoolOutputSize(h, w, args.size, args.stride);
  const save = args.saveIndices === true, relu = save && args.reluInput === true;
  const key = `maxpool_forward:${h}:${w}:${args.size}:${args.stride}:${save}:${relu}`;
  const pipeline = gpu.pipeline(
    key,
    maxPoolForwardWgsl(h, w, args.size, args.stride, save, relu),
    save ? ["read", "read_write", "read_write", "uniform"] : ["read", "read_write", "uniform"],
  );
  const count = args.batch * channels * oh * ow;
  const indices = save ? gpu.buffer(count * 4, "maxpool argmax") : undefined;
  const resources = [args.x.buffer, args.y.buffer, ...(indices ? [indices] : [])];
  const pairs = args.batch * channels * oh * Math.ceil(ow / 2);
  const launch = gpu.perElement("maxpool_forward", pipeline, resources, pairs, WORKGROUP);
  return { ...launch, buffers: [...launch.buffers, ...(indices ? [indices] : [])], indices };
}
