/**
 * The paper's update rule (section 5), on the device:
 *   v <- momentum * v - weightDecay * lr * w - lr * grad,   w <- w + v
 * Tensors larger than one storage binding (fc6's weight) are updated in slices, one launch each,
 * four elements an invocation where a slice holds whole quads; on llvmpipe those read copies of
 * their operands in textures.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel sgd_update` (each layer's weight and bias).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import {
  joinLaunches,
  type Launch,
  texelLoadWgsl,
  type TexelRead,
  textureKind,
  textureWgsl,
  WORKGROUP_INDEX_WGSL,
} from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { readsCopies } from "./gemm/mirror.ts";
import { PACKED_TEXEL_WGSL, PACKED_WIDTH } from "./gemm/pack_wgsl.ts";
import { gemmScratch } from "./gemm/record.ts";

const WORKGROUP = 256;

/**
 * WGSL of the update on elements of type `element`: floats, or vec4s four floats at a time (a
 * storage-buffer load costs llvmpipe per load, not per byte). One invocation per element. With
 * `mirrors` (vec4s only) it reads w, v and g from copies in the GEMM scratch textures, w from texel
 * 0 of `wv`, v from its texel `vTexel`, g from texel 0 of `gm`, and only writes the buffers:
 * llvmpipe reads texels several times faster than storage buffers.
 *
 * @example
 * ```ts
 * import { sgdUpdateWgsl } from "./sgd_update.ts";
 * console.log(sgdUpdateWgsl("vec4f").includes("array<vec4f>")); // true
 * console.log(sgdUpdateWgsl("vec4f", { vTexel: 8 }).includes("packedTexel(i + 8u)")); // true
 * ```
 */
export function sgdUpdateWgsl(
  element: "f32" | "vec4f",
  mirrors?: { vTexel: number; read?: TexelRead },
): string {
  const read = mirrors?.read ?? "sampled";
  const [w, v, g] = mirrors
    ? [
      texelLoadWgsl("wv", "packedTexel(i)", read),
      texelLoadWgsl("wv", `packedTexel(i + ${mirrors.vTexel}u)`, read),
      texelLoadWgsl("gm", "packedTexel(i)", read),
    ]
    : ["w[i]", "v[i]", "g[i]"];
  return /* wgsl */ `
struct Hyper { lr: f32, momentum: f32, weightDecay: f32 }
@group(0) @binding(0) var<storage, read_write> w: array<${element}>;
@group(0) @binding(1) var<storage, read_write> v: array<${element}>;
${
    mirrors
      ? `${textureWgsl("gm", 2, read)} // the gradient's copy
@group(0) @binding(3) var<uniform> hyper: Hyper;
${textureWgsl("wv", 4, read)} // copies of w and of v
@group(0) @binding(5) var<uniform> count: vec4u; // x: elements in the launch
${PACKED_TEXEL_WGSL}`
      : `@group(0) @binding(2) var<storage, read> g: array<${element}>;
@group(0) @binding(3) var<uniform> hyper: Hyper;
@group(0) @binding(4) var<uniform> count: vec4u; // x: elements in the launch`
  }
${WORKGROUP_INDEX_WGSL}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let weight = ${w};
  let velocity = hyper.momentum * ${v} - hyper.weightDecay * hyper.lr * weight - hyper.lr * ${g};
  v[i] = velocity;
  w[i] = weight + velocity;
}`;
}

/**
 * Records the update of `weight` with its `velocity` and `gradient` (same shapes), reading
 * the learning rate, momentum and weight decay from the shared `hyper` uniform. Where `mirrored`
 * (by default on llvmpipe), slices of whole quads are first copied into the GEMM scratch textures,
 * as many elements a launch as half a texture holds, and read from there.
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
  args: {
    weight: Tensor;
    velocity: Tensor;
    gradient: Tensor;
    hyper: GPUBuffer;
    mirrored?: boolean;
  },
): Launch {
  const kinds = ["read_write", "read_write", "read", "uniform", "uniform"] as const;
  // Compiled where a slice needs it: most networks never need the float kernel.
  const floats = () => gpu.pipeline("sgd_update", sgdUpdateWgsl("f32"), kinds);
  const quads = () => gpu.pipeline("sgd_update:vec4", sgdUpdateWgsl("vec4f"), kinds);
  const mirrors = (args.mirrored ?? readsCopies(gpu)) ? updateMirrors(gpu) : undefined;
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const bound = Math.floor(gpu.limits.maxStorageBufferBindingSize / align) * align / 4; // elements
  const slice = mirrors ? Math.min(bound, mirrors.vTexel * 4) : bound;
  const launches: Launch[] = [];
  for (let first = 0; first < args.weight.size; first += slice) {
    const count = Math.min(slice, args.weight.size - first);
    const bind = (t: Tensor) => ({ buffer: t.buffer, offset: first * 4, size: count * 4 });
    const resources = [bind(args.weight), bind(args.velocity), bind(args.gradient), args.hyper];
    const label = `sgd_update ${first}+${count}`;
    // Slices start on whole quads (the offset alignment is a multiple of 16 bytes).
    if (count % 4 !== 0) {
      launches.push(gpu.perElement(label, floats(), resources, count, WORKGROUP));
    } else if (!mirrors) {
      launches.push(gpu.perElement(label, quads(), resources, count / 4, WORKGROUP));
    } else {
      const { wv, gm, vTexel, pipeline } = mirrors;
      const copies = [
        { source: bind(args.weight), texture: wv.texture },
        { source: bind(args.velocity), texture: wv.texture, row: vTexel / PACKED_WIDTH },
        { source: bind(args.gradient), texture: gm.texture },
      ];
      const mirrored = [resources[0], resources[1], gm.view, args.hyper, wv.view];
      launches.push(gpu.perElement(label, pipeline(), mirrored, count / 4, WORKGROUP, copies));
    }
  }
  return joinLaunches(launches);
}

/**
 * The scratch textures a mirrored update reads (w and v in the halves of the first, g in the
 * second) and its pipeline; undefined where a texture has fewer than two rows to halve.
 */
function updateMirrors(gpu: Gpu) {
  const { a, b, textures: [ta, tb], texels } = gemmScratch(gpu);
  const vTexel = Math.floor(texels / PACKED_WIDTH / 2) * PACKED_WIDTH;
  if (vTexel === 0) return undefined;
  const read = gpu.texelRead, texture = textureKind(read);
  const kinds = ["read_write", "read_write", texture, "uniform", texture, "uniform"] as const;
  return {
    wv: { texture: ta, view: a },
    gm: { texture: tb, view: b },
    vTexel,
    pipeline: () =>
      gpu.pipeline(
        `sgd_update:mirrored:${vTexel}`,
        sgdUpdateWgsl("vec4f", { vTexel, read }),
        kinds,
      ),
  };
}
