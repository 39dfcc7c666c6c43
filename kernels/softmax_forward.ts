/**
 * Row-wise softmax of a [rows, classes] matrix, numerically stable (the row maximum is
 * subtracted before exponentiating). One invocation per row: rows are few (the batch).
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * the whole-network figures of `deno task bench`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";

const WORKGROUP = 64;

/**
 * WGSL shared by the softmax kernels: `CLASSES` and `rowStats(base)`, the maximum of the row of
 * logits `x` starting at `base` and the sum of exp(x - maximum): stable, whatever the logits.
 *
 * @example
 * ```ts
 * import { softmaxRowWgsl } from "./softmax_forward.ts";
 * console.assert(softmaxRowWgsl(10).includes("fn rowStats"));
 * ```
 */
export function softmaxRowWgsl(classes: number): string {
  return /* wgsl */ `
const CLASSES = ${classes}u;
fn rowStats(base: u32) -> vec2f {
  var m = x[base];
  for (var j = 1u; j < CLASSES; j++) { m = max(m, x[base + j]); }
  var sum = 0.0;
  for (var j = 0u; j < CLASSES; j++) { sum += exp(x[base + j] - m); }
  return vec2f(m, sum);
}`;
}

/**
 * WGSL for softmax over rows of `classes` values.
 *
 * @example
 * ```ts
 * import { softmaxForwardWgsl } from "./softmax_forward.ts";
 * console.assert(softmaxForwardWgsl(1000).includes("exp"));
 * ```
 */
export function softmaxForwardWgsl(classes: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> rows: vec4u; // x: rows in the launch
${WORKGROUP_INDEX_WGSL}

${softmaxRowWgsl(classes)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let r = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (r >= rows.x) { return; }
  let base = r * CLASSES;
  let stats = rowStats(base);
  for (var j = 0u; j < CLASSES; j++) { y[base + j] = exp(x[base + j] - stats.x) / stats.y; }
}`;
}

/**
 * Records softmax of `x` [rows, classes] into `y` (same shape).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { softmaxForward } from "./softmax_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 2], new Float32Array([0, 0]));
 * const y = Tensor.zeros(gpu, [1, 2]);
 * gpu.run(softmaxForward(gpu, { x, y, rows: 1 }).dispatches);
 * console.log(await y.read()); // Float32Array [0.5, 0.5]
 * gpu.destroy();
 * ```
 */
export function softmaxForward(
  gpu: Gpu,
  args: { x: Tensor; y: Tensor; rows: number },
): Launch {
  const classes = args.x.size / args.x.shape[0];
  const key = `softmax_forward:${classes}`;
  const pipeline = gpu.pipeline(key, softmaxForwardWgsl(classes), [
    "read",
    "read_write",
    "uniform",
  ]);
  return gpu.perElement(
    "softmax_forward",
    pipeline,
    [args.x.buffer, args.y.buffer],
    args.rows,
    WORKGROUP,
  );
}
