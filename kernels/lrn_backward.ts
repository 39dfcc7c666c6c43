/**
 * The gradient of local response normalisation. With d[i] = k + alpha * sum of a[j]^2 over
 * i's window and b[i] = a[i] * d[i]^-beta:
 *
 *   da[j] = g[j] * d[j]^-beta - 2 * alpha * beta * a[j] * sum over i whose window holds j of
 *           g[i] * a[i] * d[i]^-beta / d[i]
 *
 * Windows are symmetric (i's window holds j exactly when j's holds i, groups included), so the
 * sum runs over j's own window. d was saved by the forward pass; b = a d^-beta is recomputed rather
 * than read (one stream fewer: lrn1 of alexnet-small at batch 128, 63.8 -> 46.8 ms).
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel lrn_backward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type LrnParams, lrnSizesWgsl } from "./lrn_forward.ts";

const WORKGROUP = 256;

/**
 * WGSL for the LRN gradient over maps of `channels` x `pixels`. As in the forward kernel, one
 * invocation walks one pixel's channels of one group with the window's terms g * b / d in
 * registers, each computed once; the sums run in a per-element window's order.
 *
 * @example
 * ```ts
 * import { lrnBackwardWgsl } from "./lrn_backward.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnBackwardWgsl(96, 55 * 55, PAPER_LRN).includes("pow"));
 * ```
 */
export function lrnBackwardWgsl(channels: number, pixels: number, p: LrnParams): string {
  const half = Math.floor(p.size / 2), width = 2 * half + 1;
  const ring = [...Array(width).keys()];
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> scale: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> count: vec4u; // x: (image, group, pixel)s
${WORKGROUP_INDEX_WGSL}

${lrnSizesWgsl(channels, pixels, p)}

// g * b / d = g * a * d^-beta / d at channel c of this invocation's group, or 0 outside it.
fn term(base: u32, c: i32) -> f32 {
  if (c < 0 || c >= i32(CG)) { return 0.0; }
  let o = base + u32(c) * P;
  let d = scale[o];
  return dy[o] * x[o] * pow(d, -${p.beta}) / d;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let base = (i / P) * CG * P + i % P; // element (image, group's first channel, pixel)
  // t{j} holds the term of channel c - HALF + j.
${ring.map((j) => `  var t${j} = term(base, ${j - half});`).join("\n")}
  for (var c = 0u; c < CG; c++) {
    var cross = 0.0;
${ring.map((j) => `    cross += t${j};`).join("\n")}
    let o = base + c * P;
    dx[o] = dy[o] * pow(scale[o], -${p.beta}) - ${2 * p.alpha * p.beta} * x[o] * cross;
${ring.slice(0, -1).map((j) => `    t${j} = t${j + 1};`).join("\n")}
    t${width - 1} = term(base, i32(c) + ${half + 1});
  }
}`;
}

/**
 * Records the LRN input gradient `dx` from the input `x`, the denominators `scale`
 * the training forward pass saved, and the output gradient `dy`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { lrnBackward } from "./lrn_backward.ts";
 * import { lrnForward } from "./lrn_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const y = Tensor.zeros(gpu, [1, 1, 1, 1]), dx = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const params = { size: 1, alpha: 1, beta: 1, k: 1, groups: 1 }; // b = a / (1 + a^2)
 * const forward = lrnForward(gpu, { x, y, batch: 1, params, saveScale: true });
 * const backward = lrnBackward(gpu, { x, scale: forward.scale!, dy, dx, batch: 1, params });
 * gpu.run([...forward.dispatches, ...backward.dispatches]);
 * console.log(await dx.read()); // Float32Array [0]: (1 - a^2) / (1 + a^2)^2 at a = 1
 * gpu.destroy();
 * ```
 */
export function lrnBackward(
  gpu: Gpu,
  args: {
    x: Tensor;
    scale: GPUBuffer;
    dy: Tensor;
    dx: Tensor;
    batch: number;
    params: LrnParams;
  },
): Launch {
  const [, channels, h, w] = args.x.shape;
  const key = `lrn_backward:${channels}:${h * w}:${Object.values(args.params)}`;
  const pipeline = gpu.pipeline(key, lrnBackwardWgsl(channels, h * w, args.params), [
    "read",
    "read",
    "read",
    "read_write",
    "uniform",
  ]);
  const walks = args.batch * args.params.groups * h * w; // one per (image, group, pixel)
  return gpu.perElement(
    "lrn_backward",
    pipeline,
    [args.x.buffer, args.scale, args.dy.buffer, args.dx.buffer],
    walks,
    WORKGROUP,
  );
}
