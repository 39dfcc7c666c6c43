/**
 * The paper's update rule (section 5), on the device:
 *   v <- momentum * v - weightDecay * lr * w - lr * grad,   w <- w + v
 * Tensors larger than one storage binding (fc6's weight) are updated in slices, one launch each,
 * four elements an invocation where a slice holds whole quads.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel sgd_update` (each layer's weight and bias).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { joinLaunches, type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";

const WORKGROUP = 256;

/**
 * WGSL of the update on elements of type `element`: floats, or vec4s four floats at a time (a
 * storage-buffer load costs llvmpipe per load, not per byte). One invocation per element.
 *
 * @example
 * ```ts
 * import { sgdUpdateWgsl } from "./sgd_update.ts";
 * console.log(sgdUpdateWgsl("vec4f").includes("array<vec4f>")); // true
 * ```
 */
export function sgdUpdateWgsl(element: "f32" | "vec4f"): string {
  return /* wgsl */ `
struct Hyper { lr: f32, momentum: f32, weightDecay: f32 }
@group(0) @binding(0) var<storage, read_write> w: array<${element}>;
@group(0) @binding(1) var<storage, read_write> v: array<${element}>;
@group(0) @binding(2) var<storage, read> g: array<${element}>;
@group(0) @binding(3) var<uniform> hyper: Hyper;
@group(0) @binding(4) var<uniform> count: vec4u; // x: elements in the launch
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let weight = w[i];
  let velocity = hyper.momentum * v[i] - hyper.weightDecay * hyper.lr * weight - hyper.lr * g[i];
  v[i] = velocity;
  w[i] = weight + velocity;
}`;
}

/**
 * Records the update of `weight` with its `velocity` and `gradient` (same shapes), reading
 * the learning rate, momentum and weight decay from the shared `hyper` uniform.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { sgdUpdate } from "./sgd_update.ts";
 * const gpu = await Gpu.create();
 * const w = Tensor.from(gpu, [1], new Float32Array([1]));
 * const v = Tensor.zeros(gpu, [1]), g = Tensor.from(gpu, [1], new Float32Array([2]));
 * const hyper = gpu.buffer(16, "hyper", GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
 * gpu.write(hyper, new Float32Array([0.1, 0.9, 0]));
 * gpu.run(sgdUpdate(gpu, { weight: w, velocity: v, gradient: g, hyper }).dispatches);
 * console.log(await w.read()); // Float32Array [0.8]
 * gpu.destroy();
 * ```
 */
export function sgdUpdate(
  gpu: Gpu,
  args: { weight: Tensor; velocity: Tensor; gradient: Tensor; hyper: GPUBuffer },
): Launch {
  const kinds = ["read_write", "read_write", "read", "uniform", "uniform"] as const;
  // Compiled where a slice needs it: most networks never need the float kernel.
  const floats = () => gpu.pipeline("sgd_update", sgdUpdateWgsl("f32"), kinds);
  const quads = () => gpu.pipeline("sgd_update:vec4", sgdUpdateWgsl("vec4f"), kinds);
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const slice = Math.floor(gpu.limits.maxStorageBufferBindingSize / align) * align / 4; // elements
  const launches: Launch[] = [];
  for (let first = 0; first < args.weight.size; first += slice) {
    const count = Math.min(slice, args.weight.size - first);
    const bind = (t: Tensor) => ({ buffer: t.buffer, offset: first * 4, size: count * 4 });
    const resources = [bind(args.weight), bind(args.velocity), bind(args.gradient), args.hyper];
    const label = `sgd_update ${first}+${count}`;
    // Slices start on whole quads (the offset alignment is a multiple of 16 bytes).
    launches.push(
      count % 4 === 0
        ? gpu.perElement(label, quads(), resources, count / 4, WORKGROUP)
        : gpu.perElement(label, floats(), resources, count, WORKGROUP),
    );
  }
  return joinLaunches(launches);
}
