/**
 * Softmax with cross-entropy in one numerically stable kernel: for each row, the loss
 * log(sum exp z) - z[label] (with the row maximum subtracted first) and the logits' gradient
 * (softmax(z) - onehot(label)) * scale, where scale is 1 / (the whole batch), so micro-batches
 * add up to the mean over the batch. Rows past `valid` (padding of a last, partial micro-batch)
 * get zero loss and zero gradient. Each row's top-1 hit (1 or 0) follows the losses, for the
 * running accuracy of a training epoch.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel softmax_cross_entropy`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { softmaxRowWgsl } from "./softmax_forward.ts";

const WORKGROUP = 64;

/**
 * WGSL for rows of `classes` logits; one invocation per row.
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropyWgsl } from "./softmax_cross_entropy.ts";
 * console.assert(softmaxCrossEntropyWgsl(10).includes("log"));
 * ```
 */
export function softmaxCrossEntropyWgsl(classes: number): string {
  return /* wgsl */ `
struct Params { valid: u32, rows: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>; // logits
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>; // [rows] losses, then [rows] hits
@group(0) @binding(4) var<uniform> params: Params;
${WORKGROUP_INDEX_WGSL}

${softmaxRowWgsl(classes)}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let r = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (r >= params.rows) { return; }
  let base = r * CLASSES;
  if (r >= params.valid) {
    for (var j = 0u; j < CLASSES; j++) { dz[base + j] = 0.0; }
    losses[r] = 0.0;
    losses[params.rows + r] = 0.0;
    return;
  }
  let label = u32(labels[r]);
  let stats = rowStats(base);
  losses[r] = stats.x + log(stats.y) - x[base + label];
  losses[params.rows + r] = select(0.0, 1.0, x[base + label] >= stats.x); // top-1 hit (ties count)
  for (var j = 0u; j < CLASSES; j++) {
    let p = exp(x[base + j] - stats.x) / stats.y;
    dz[base + j] = (p - select(0.0, 1.0, j == label)) * params.scale;
  }
}`;
}

/** A recorded loss launch and how to set its per-step parameters. */
export interface CrossEntropyLaunch extends Launch {
  /** Sets the valid rows of the next run and the gradient scale (1 / whole batch). */
  set(valid: number, scale: number): void;
}

/**
 * Records the loss and logits' gradient of `rows` rows of `z` [rows, classes] against `labels`
 * (an i32 buffer of at least `rows` class indices); `losses` [2 * rows] receives the losses, then
 * the top-1 hits.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { softmaxCrossEntropy } from "./softmax_cross_entropy.ts";
 * const gpu = await Gpu.create();
 * const z = Tensor.from(gpu, [1, 2], new Float32Array([0, 0]));
 * const labels = gpu.buffer(4, "labels");
 * gpu.write(labels, new Int32Array([1]));
 * const dz = Tensor.zeros(gpu, [1, 2]), losses = Tensor.zeros(gpu, [2]);
 * const ce = softmaxCrossEntropy(gpu, { z, labels, dz, losses, rows: 1 });
 * ce.set(1, 1);
 * gpu.run(ce.dispatches);
 * console.log(await losses.read(), await dz.read()); // [0.693..., 1] [0.5, -0.5]
 * gpu.destroy();
 * ```
 */
export function softmaxCrossEntropy(
  gpu: Gpu,
  args: { z: Tensor; labels: GPUBuffer; dz: Tensor; losses: Tensor; rows: number },
): CrossEntropyLaunch {
  const classes = args.z.size / args.z.shape[0];
  const key = `softmax_cross_entropy:${classes}`;
  const pipeline = gpu.pipeline(key, softmaxCrossEntropyWgsl(classes), [
    "read",
    "read",
    "read_write",
    "read_write",
    "uniform",
  ]);
  const uniform = gpu.uniform([args.rows, args.rows, 0], `${key} params`);
  const dispatch = gpu.dispatch(
    "softmax_cross_entropy",
    pipeline,
    [args.z.buffer, args.labels, args.dz.buffer, args.losses.buffer, uniform],
    Math.ceil(args.rows / WORKGROUP),
  );
  const params = new DataView(new ArrayBuffer(16));
  return {
    dispatches: [dispatch],
    buffers: [uniform],
    set(valid, scale) {
      params.setUint32(0, valid, true);
      params.setUint32(4, args.rows, true);
      params.setFloat32(8, scale, true);
      gpu.write(uniform, new Uint32Array(params.buffer));
    },
  };
}
