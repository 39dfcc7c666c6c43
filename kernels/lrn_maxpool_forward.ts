/**
 * LRN and the max-pooling after it in one pass (the paper's conv1 and conv2 blocks): each
 * invocation pools a pair of neighbouring outputs in a row from the LRN of their inputs, computed
 * in registers as it walks the group's channels, so LRN's output is never stored nor read back.
 * The results equal LRN's kernel followed by pooling's, to the bit.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel lrn_maxpool_forward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type TexelRead, textureKind } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { readsCopies, scalarMirror } from "./gemm/mirror.ts";
import { gemmScratch } from "./gemm/record.ts";
import { denominatorWgsl, type LrnParams, negativePowerWgsl } from "./lrn_forward.ts";
import {
  maxPoolOutputSize,
  pairInputs,
  pairPoolingWgsl,
  type PoolLaunch,
  poolPairWgsl,
} from "./maxpool_forward.ts";

const WORKGROUP = 256;

/**
 * WGSL for pooling the LRN of `channels` maps of `h` x `w`. One invocation per pair of outputs
 * in a row of one group of one image: for each of the pair's inputs it keeps the window's
 * channels in a register ring (shifted by one each channel, loading only the channel that
 * enters), normalises the window's centre as LRN's kernel does and pools the pair.
 *
 * @example
 * ```ts
 * import { lrnMaxPoolForwardWgsl } from "./lrn_maxpool_forward.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnMaxPoolForwardWgsl(96, 55, 55, PAPER_LRN, 3, 2, true).includes("argmax"));
 * ```
 */
export function lrnMaxPoolForwardWgsl(
  channels: number,
  h: number,
  w: number,
  p: LrnParams,
  size: number,
  stride: number,
  saveIndices = false,
  mirror?: TexelRead,
): string {
  const [oh] = maxPoolOutputSize(h, w, size, stride);
  const half = Math.floor(p.size / 2), width = 2 * half + 1;
  const ring = [...Array(width).keys()];
  const inputs = pairInputs(w, size, stride);
  // Ring slot j holds channel c - HALF + j of every input.
  const load = (j: number, c: string, declare = "") =>
    inputs.map(([v]) => `${declare}r${j}_${v} = channelAt(${c}, q${v});`).join("\n    ");
  return /* wgsl */ `
alias T = f32;
${pairPoolingWgsl(h, w, size, stride, saveIndices, mirror)}
const CG = ${channels / p.groups}; // channels a group

var<private> base: u32; // the group's first element

// Channel c of the group at offset q of its map, or 0 outside the group (the towers apart).
fn channelAt(c: i32, q: u32) -> f32 {
  return select(0.0, xAt(base + u32(clamp(c, 0, CG - 1)) * HW + q), c >= 0 && c < CG);
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let pair = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (pair >= count.x) { return; }
  let row = pair / PAIRS; // (image, group, output row)
  let o0 = (pair % PAIRS) * 2u; // the pair's first output column
  let walk = row / ${oh}u; // (image, group)
  base = walk * u32(CG) * HW;
  let origin = (row % ${oh}u) * ${stride}u * W + o0 * ${stride}u; // the pair's corner in its map
${inputs.map(([v, q]) => `  let q${v} = ${q};`).join("\n")}
${ring.map((j) => `  ${load(j, `${j - half}`, "var ").replaceAll("\n  ", "\n")}`).join("\n")}
  for (var c = 0; c < CG; c++) {
    let out = (walk * u32(CG) + u32(c)) * OP + (row % ${oh}u) * OW + o0;
${
    inputs.map(([v]) =>
      `    let d${v} = ${denominatorWgsl(ring.map((j) => `r${j}_${v}`), p)};
    let v${v} = r${half}_${v} * ${negativePowerWgsl(`d${v}`, p.beta)};`
    ).join("\n")
  }
${poolPairWgsl(w, size, stride, saveIndices).replaceAll(/^/gm, "  ")}
${
    ring.slice(0, -1).map((j) => inputs.map(([v]) => `    r${j}_${v} = r${j + 1}_${v};`).join("\n"))
      .join("\n")
  }
    ${load(width - 1, `c + ${half + 1}`)}
  }
}`;
}

/**
 * Records max-pooling of the LRN of `x` [batch, channels, h, w] into `y` [batch, channels, oh,
 * ow]; with `saveIndices`, also each window's argmax (a buffer the launch owns), as
 * {@linkcode maxPoolForward} saves it.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { lrnMaxPoolForward } from "./lrn_maxpool_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 2, 2], new Float32Array([2, 1, 1, 1]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const params = { size: 1, alpha: 1, beta: 1, k: 0, groups: 1 }; // a / a^2: 1 / a
 * gpu.run(lrnMaxPoolForward(gpu, { x, y, batch: 1, params, size: 2, stride: 2 }).dispatches);
 * console.log(await y.read()); // Float32Array [1]: the largest of 1/2, 1, 1, 1
 * gpu.destroy();
 * ```
 */
export function lrnMaxPoolForward(
  gpu: Gpu,
  args: {
    x: Tensor;
    y: Tensor;
    batch: number;
    params: LrnParams;
    size: number;
    stride: number;
    saveIndices?: boolean;
  },
): PoolLaunch {
  const [, channels, h, w] = args.x.shape;
  const { params, size, stride } = args;
  if (channels % params.groups) {
    throw new RangeError(`LRN: ${channels} channels do not divide into ${params.groups} groups`);
  }
  const [oh, ow] = maxPoolOutputSize(h, w, size, stride);
  const save = args.saveIndices === true;
  // On llvmpipe x is read from a copy in scratch texture A, where it fits.
  const scratch = readsCopies(gpu) ? gemmScratch(gpu) : undefined;
  const copy = scratch && scalarMirror(args.x.buffer, args.x.size, scratch.textures[0]);
  const key = `lrn_maxpool_forward:${channels}:${h}:${w}:${
    Object.values(params)
  }:${size}:${stride}:${save}${copy ? ":mirrored" : ""}`;
  const x = copy ? textureKind(gpu.texelRead) : "read";
  const pipeline = gpu.pipeline(
    key,
    lrnMaxPoolForwardWgsl(channels, h, w, params, size, stride, save, copy && gpu.texelRead),
    save ? [x, "read_write", "read_write", "uniform"] : [x, "read_write", "uniform"],
  );
  const indices = save
    ? gpu.buffer(args.batch * channels * oh * ow * 4, "maxpool argmax")
    : undefined;
  const source = copy ? scratch!.a : args.x.buffer;
  const resources = [source, args.y.buffer, ...(indices ? [indices] : [])];
  const pairs = args.batch * params.groups * oh * Math.ceil(ow / 2);
  const copies = copy ? [copy] : [];
  const launch = gpu.perElement(
    "lrn_maxpool_forward",
    pipeline,
    resources,
    pairs,
    WORKGROUP,
    copies,
  );
  return { ...launch, buffers: [...launch.buffers, ...(indices ? [indices] : [])], indices };
}
