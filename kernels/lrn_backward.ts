/**
 * The gradient of local response normalisation. With d[i] = k + alpha * sum of a[j]^2 over
 * i's window and b[i] = a[i] * d[i]^-beta:
 *
 *   da[j] = g[j] * d[j]^-beta - 2 * alpha * beta * a[j] * sum over i whose window holds j of
 *           g[i] * a[i] * d[i]^(-beta - 1)
 *
 * Windows are symmetric (i's window holds j exactly when j's holds i, groups included), so the
 * sum runs over j's own window. d is recomputed from the input rather than stored.
 *
 * @module
 */
import { type Gpu, type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/device.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { LrnParams } from "./lrn_forward.ts";

const WORKGROUP = 256;

/**
 * WGSL for the LRN gradient over maps of `channels` x `pixels`; one invocation per element.
 *
 * @example
 * ```ts
 * import { lrnBackwardWgsl } from "./lrn_backward.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnBackwardWgsl(96, 55 * 55, PAPER_LRN).includes("pow"));
 * ```
 */
export function lrnBackwardWgsl(channels: number, pixels: number, p: LrnParams): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> count: vec4u; // x: elements in the launch
${WORKGROUP_INDEX_WGSL}

const C = ${channels}u;
const P = ${pixels}u;
const CG = ${channels / p.groups}u;
const HALF = ${Math.floor(p.size / 2)}u;
const ALPHA = ${p.alpha};
const BETA = ${p.beta};
const K = ${p.k};

// The window [lo, hi] of channel c, clipped to c's group.
fn window(c: u32) -> vec2u {
  let first = (c / CG) * CG;
  return vec2u(max(c, first + HALF) - HALF, min(c + HALF, first + CG - 1u));
}

// d at channel c of the map whose channel 0 is at base.
fn denominator(base: u32, c: u32) -> f32 {
  let span = window(c);
  var sum = 0.0;
  for (var j = span.x; j <= span.y; j++) {
    let a = x[base + j * P];
    sum = fma(a, a, sum);
  }
  return K + ALPHA * sum;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let c = (i / P) % C;
  let base = i - c * P;
  let span = window(c);
  var cross = 0.0;
  for (var j = span.x; j <= span.y; j++) {
    let d = denominator(base, j);
    cross += dy[base + j * P] * x[base + j * P] * pow(d, -BETA - 1.0);
  }
  dx[i] = dy[i] * pow(denominator(base, c), -BETA) - 2.0 * ALPHA * BETA * x[i] * cross;
}`;
}

/**
 * Records the LRN input gradient `dx` from the input `x` and output gradient `dy`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { lrnBackward } from "./lrn_backward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const dx = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const params = { size: 1, alpha: 1, beta: 1, k: 1, groups: 1 }; // b = a / (1 + a^2)
 * gpu.run(lrnBackward(gpu, { x, dy, dx, batch: 1, params }).dispatches);
 * console.log(await dx.read()); // Float32Array [0]: (1 - a^2) / (1 + a^2)^2 at a = 1
 * gpu.destroy();
 * ```
 */
export function lrnBackward(
  gpu: Gpu,
  args: { x: Tensor; dy: Tensor; dx: Tensor; batch: number; params: LrnParams },
): Launch {
  const [, channels, h, w] = args.x.shape;
  const key = `lrn_backward:${channels}:${h * w}:${Object.values(args.params)}`;
  const pipeline = gpu.pipeline(key, lrnBackwardWgsl(channels, h * w, args.params), [
    "read",
    "read",
    "read_write",
    "uniform",
  ]);
  const count = args.batch * channels * h * w;
  const uniform = gpu.uniform([count], `${key} params`);
  const dispatch = gpu.dispatch(
    "lrn_backward",
    pipeline,
    [args.x.buffer, args.dy.buffer, args.dx.buffer, uniform],
    Math.ceil(count / WORKGROUP),
  );
  return { dispatches: [dispatch], buffers: [uniform] };
}
