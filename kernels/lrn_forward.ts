/**
 * Local response normalisation across channels (the paper's section 3.3):
 * b[c] = a[c] / (k + alpha * sum of a[j]^2 for j within size/2 of c, in c's group)^beta.
 * The paper's constants: k = 2, size = 5, alpha = 1e-4, beta = 0.75; alpha is not divided by
 * size (PyTorch's `LocalResponseNorm` divides it, so parity there needs alpha * size).
 * Groups keep each tower's maps apart, as each of the paper's GPUs normalised only its own maps.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel lrn_forward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** Constants of local response normalisation. */
export interface LrnParams {
  /** Channels summed over, centred on the output channel (odd). */
  size: number;
  /** Scale of the sum of squares. */
  alpha: number;
  /** Exponent. */
  beta: number;
  /** Additive constant. */
  k: number;
  /** Channel groups that never see each other (the towers). */
  groups: number;
}

/**
 * The paper's constants, normalising within each of two towers.
 *
 * @example
 * ```ts
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.log(PAPER_LRN.k, PAPER_LRN.size, PAPER_LRN.alpha, PAPER_LRN.beta); // 2 5 0.0001 0.75
 * ```
 */
export const PAPER_LRN: LrnParams = { size: 5, alpha: 1e-4, beta: 0.75, k: 2, groups: 2 };

const WORKGROUP = 256;

/**
 * WGSL shared by LRN's forward and backward kernels: the sizes they walk, P pixels a map and CG
 * channels a group (a window never crosses a group: the paper's towers normalised apart).
 *
 * @example
 * ```ts
 * import { lrnSizesWgsl, PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnSizesWgsl(96, 3025, PAPER_LRN).includes("const CG = 48u"));
 * ```
 */
export function lrnSizesWgsl(channels: number, pixels: number, p: LrnParams): string {
  const lanes = lrnLanes(pixels);
  return /* wgsl */ `
alias T = ${
    lanes === 4 ? "vec4f" : "f32"
  }; // the pixels an invocation walks: four where maps hold quads
const P = ${pixels / lanes}u; // of T a map
const CG = ${channels / p.groups}u;`;
}

/**
 * The pixels one LRN invocation walks side by side: four (vec4 loads and stores, a quarter of the
 * accesses, each a per-lane loop on llvmpipe) where a map's pixels are a multiple of 4, else one.
 *
 * @example
 * ```ts
 * import { lrnLanes } from "./lrn_forward.ts";
 * console.log(lrnLanes(28 * 28), lrnLanes(13 * 13)); // 4 1
 * ```
 */
export function lrnLanes(pixels: number): 1 | 4 {
  return pixels % 4 === 0 ? 4 : 1;
}

/**
 * WGSL for LRN over maps of `channels` x `pixels`. One invocation walks one pixel's channels of
 * one group, keeping the window's values in registers (a ring shifted by one each channel), so
 * each input is loaded once instead of once per window it falls in; the sums run in the same
 * order as a per-element window would, so the result is the same.
 *
 * @example
 * ```ts
 * import { lrnForwardWgsl, PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnForwardWgsl(96, 55 * 55, PAPER_LRN).includes("pow"));
 * ```
 */
export function lrnForwardWgsl(channels: number, pixels: number, p: LrnParams): string {
  const half = Math.floor(p.size / 2), width = 2 * half + 1;
  const ring = [...Array(width).keys()];
  return /* wgsl */ `
${lrnSizesWgsl(channels, pixels, p)}
@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> y: array<T>;
@group(0) @binding(2) var<uniform> count: vec4u; // x: (image, group, pixel)s
${WORKGROUP_INDEX_WGSL}

// Channel c of this invocation's group, or 0 outside it.
fn at(base: u32, c: i32) -> T {
  if (c < 0 || c >= i32(CG)) { return T(0.0); }
  return x[base + u32(c) * P];
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let base = (i / P) * CG * P + i % P; // element (image, group's first channel, pixel)
  // r{j} holds channel c - HALF + j.
${ring.map((j) => `  var r${j} = at(base, ${j - half});`).join("\n")}
  for (var c = 0u; c < CG; c++) {
    var sum = T(0.0);
${ring.map((j) => `    sum = fma(r${j}, r${j}, sum);`).join("\n")}
    let d = ${p.k} + ${p.alpha} * sum;
    let o = base + c * P;
    y[o] = r${half} / pow(d, T(${p.beta}));
${ring.slice(0, -1).map((j) => `    r${j} = r${j + 1};`).join("\n")}
    r${width - 1} = at(base, i32(c) + ${half + 1});
  }
}`;
}

/**
 * Records LRN of `x` [batch, channels, h, w] into `y` (same shape). Training saves nothing: the
 * backward pass recomputes the denominators from `x`, which it reads anyway.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { lrnForward } from "./lrn_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([2]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const params = { size: 5, alpha: 1, beta: 1, k: 0, groups: 1 };
 * const { dispatches } = lrnForward(gpu, { x, y, batch: 1, params });
 * gpu.run(dispatches);
 * console.log(await y.read()); // Float32Array [0.5]: 2 / (0 + 1 * 2^2)^1
 * gpu.destroy();
 * ```
 */
export function lrnForward(
  gpu: Gpu,
  args: { x: Tensor; y: Tensor; batch: number; params: LrnParams },
): Launch {
  const [, channels, h, w] = args.x.shape;
  if (channels % args.params.groups) {
    throw new RangeError(
      `LRN: ${channels} channels do not divide into ${args.params.groups} groups`,
    );
  }
  const key = `lrn_forward:${channels}:${h * w}:${Object.values(args.params)}`;
  const pipeline = gpu.pipeline(key, lrnForwardWgsl(channels, h * w, args.params), [
    "read",
    "read_write",
    "uniform",
  ]);
  const walks = args.batch * args.params.groups * h * w / lrnLanes(h * w); // (image, group, pixel)s
  return gpu.perElement("lrn_forward", pipeline, [args.x.buffer, args.y.buffer], walks, WORKGROUP);
}
