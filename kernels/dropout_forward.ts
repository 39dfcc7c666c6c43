/**
 * Dropout (the paper's section 4.2), inverted: in training each element is zeroed with
 * probability p and the survivors are scaled by 1 / (1 - p), so inference is the identity, which
 * is equivalent to the paper's halving of the outputs at test time. The mask comes from
 * {@linkcode uniformAt}(seed, i): one seed reproduces it, which is how the backward pass applies
 * the same mask to the gradient (by running this kernel on the gradient with the same seed).
 * Works in place.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel dropout_forward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { RANDOM_WGSL } from "./random.ts";

const WORKGROUP = 256;

/**
 * WGSL for dropout with probability `p`.
 *
 * @example
 * ```ts
 * import { dropoutForwardWgsl } from "./dropout_forward.ts";
 * console.assert(dropoutForwardWgsl(0.5).includes("uniformAt"));
 * ```
 */
export function dropoutForwardWgsl(p: number): string {
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> params: vec4u; // x: elements, y: seed, z: index offset
${WORKGROUP_INDEX_WGSL}
${RANDOM_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= params.x) { return; }
  let keep = uniformAt(params.y, params.z + i) >= ${p};
  x[i] = select(0.0, x[i] * ${1 / (1 - p)}, keep);
}`;
}

/** A recorded dropout launch and the uniform that carries its seed. */
export interface DropoutLaunch extends Launch {
  /**
   * Sets the seed for the next run (a queue write, ordered with submits), and the index of the
   * launch's first element in the whole batch, so that micro-batches draw the whole batch's mask.
   */
  setSeed(seed: number, offset?: number): void;
}

/**
 * Records dropout of the first `count` elements of `x`, in place. With `params` (another
 * dropout launch's uniform), the launch uses that launch's seed and does not own the uniform.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { dropoutForward } from "./dropout_forward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [8], new Float32Array(8).fill(1));
 * const drop = dropoutForward(gpu, { x, count: 8, p: 0.5 });
 * drop.setSeed(42);
 * gpu.run(drop.dispatches);
 * console.log(await x.read()); // each element 0 or 2
 * gpu.destroy();
 * ```
 */
export function dropoutForward(
  gpu: Gpu,
  args: { x: Tensor; count: number; p: number; params?: GPUBuffer },
): DropoutLaunch {
  if (!(args.p >= 0 && args.p < 1)) {
    throw new RangeError(`dropout probability must be in [0, 1), got ${args.p}`);
  }
  const key = `dropout_forward:${args.p}`;
  const pipeline = gpu.pipeline(key, dropoutForwardWgsl(args.p), ["read_write", "uniform"]);
  // A launch sharing another's uniform (the backward pass) shares its seed, hence its mask.
  const shared = args.params !== undefined;
  const uniform = args.params ?? gpu.uniform([args.count, 0], `${key} params`);
  const dispatch = gpu.dispatch(
    "dropout_forward",
    pipeline,
    [args.x.buffer, uniform],
    Math.ceil(args.count / WORKGROUP),
  );
  return {
    dispatches: [dispatch],
    buffers: shared ? [] : [uniform],
    setSeed: (seed, offset = 0) =>
      gpu.write(uniform, new Uint32Array([args.count, seed >>> 0, offset])),
  };
}
