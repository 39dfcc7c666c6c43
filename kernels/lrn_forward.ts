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
import { lrnWalk, walkWgsl } from "./lrn_walk.ts";

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
 * WGSL for d^-beta of the WGSL expression `d`. The paper's beta 0.75 is
 * inverseSqrt(d) * sqrt(inverseSqrt(d)): two square roots instead of pow's log and exp; other
 * betas use pow. `T` is the WGSL type of d.
 *
 * @example
 * ```ts
 * import { negativePowerWgsl } from "./lrn_forward.ts";
 * console.log(negativePowerWgsl("d", 0.6)); // pow(d, T(-0.6))
 * ```
 */
export function negativePowerWgsl(d: string, beta: number): string {
  if (beta === 0.75) return `(inverseSqrt(${d}) * sqrt(inverseSqrt(${d})))`;
  return `pow(${d}, T(${-beta}))`;
}

/**
 * WGSL for the denominator d = k + alpha * (sum of squares of `window`), the squares added in
 * the window's order (ascending channels), as every LRN kernel adds them, so that they agree to
 * the bit. `T` is the WGSL type of the window's values.
 *
 * @example
 * ```ts
 * import { denominatorWgsl, PAPER_LRN } from "./lrn_forward.ts";
 * console.log(denominatorWgsl(["a", "b"], PAPER_LRN)); // 2 + 0.0001 * fma(b, b, fma(a, a, T(0.0)))
 * ```
 */
export function denominatorWgsl(window: readonly string[], p: LrnParams): string {
  return `${p.k} + ${p.alpha} * ${window.reduce((sum, n) => `fma(${n}, ${n}, ${sum})`, "T(0.0)")}`;
}

/**
 * WGSL for LRN over maps of `channels` x `pixels`. One invocation walks one unit's channels of
 * one group (see lrn_walk.ts), keeping the window's units in registers (a ring shifted by one
 * each channel), so each input is loaded once instead of once per window it falls in; the sums
 * run in the order a per-element window would add, so the result is the same.
 *
 * @example
 * ```ts
 * import { lrnForwardWgsl, PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnForwardWgsl(96, 55 * 55, PAPER_LRN).includes("inverseSqrt"));
 * ```
 */
export function lrnForwardWgsl(channels: number, pixels: number, p: LrnParams): string {
  const half = Math.floor(p.size / 2), width = 2 * half + 1;
  const ring = [...Array(width).keys()];
  return /* wgsl */ `
${walkWgsl(lrnWalk(channels, pixels, p), ["x"])}
@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> y: array<T>;
@group(0) @binding(2) var<uniform> count: vec4u; // x: (image, group, first unit)s
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let g = (i / u32(S)) * u32(Q); // the group's first unit
  let first = i32(i % u32(S));
  // Slot r{j} holds the unit j - HALF channels on from unit m.
${ring.map((j) => `  var r${j} = xUnit(g, first + ${j - half} * S);`).join("\n")}
  for (var m = first; m < Q; m += S) {
    let d = ${denominatorWgsl(ring.map((j) => `r${j}`), p)};
    y[g + u32(m)] = r${half} * ${negativePowerWgsl("d", p.beta)};
${ring.slice(0, -1).map((j) => `    r${j} = r${j + 1};`).join("\n")}
    r${width - 1} = xUnit(g, m + ${half + 1} * S);
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
  const walks = args.batch * args.params.groups * lrnWalk(channels, h * w, args.params).step;
  return gpu.perElement("lrn_forward", pipeline, [args.x.buffer, args.y.buffer], walks, WORKGROUP);
}
