/**
 * Vector buffers and their mirrors. A GEMM's operands that read four elements a load (a dense
 * layer's input, weights and output gradient) name the storage buffers they read, and read them
 * through `fn NAME4(i: u32) -> vec4f`, vec4 `i` of the buffer, which this module declares. With the
 * "mirrored" tiling each such buffer is first copied byte for byte into a scratch texture, and
 * `NAME4` reads texel `i` of the copy: llvmpipe reads texels several times faster than storage
 * buffers, and a copy moves memory several times faster than a kernel (docs/performance.md).
 *
 * @module
 */
import type { Gpu } from "../../gpu/device.ts";
import {
  type BindingKind,
  type Resource,
  type TexelCopy,
  texelLoadWgsl,
  type TexelRead,
  textureKind,
  textureWgsl,
} from "../../gpu/launch.ts";
import { PACKED_TEXEL_WGSL } from "./pack_wgsl.ts";

/** The storage buffers an operand reads as vec4s: by name, the index of its binding. */
export type VectorBuffers = Readonly<Record<string, number>>;

/**
 * The WGSL that declares `buffers` and their readers `NAME4(i)`: read in place as arrays of vec4,
 * or where mirrored, from textures laid out as the scratch textures are (`packedTexel`), read as
 * `mirrors` says.
 *
 * @example
 * ```ts
 * import { vectorBuffersWgsl } from "./mirror.ts";
 * console.log(vectorBuffersWgsl({ w: 1 }).includes("fn w4(i: u32) -> vec4f { return w[i]; }")); // true
 * console.log(vectorBuffersWgsl({ w: 1 }, "sampled").includes("textureLoad(w, packedTexel(i), 0)")); // true
 * ```
 */
export function vectorBuffersWgsl(buffers: VectorBuffers, mirrors?: TexelRead): string {
  const entries = Object.entries(buffers);
  if (entries.length === 0) return "";
  return (mirrors ? PACKED_TEXEL_WGSL : "") + entries.map(([name, binding]) =>
    mirrors
      ? `
${textureWgsl(name, binding, mirrors)} // a mirror of the buffer
fn ${name}4(i: u32) -> vec4f { return ${texelLoadWgsl(name, "packedTexel(i)", mirrors)}; }`
      : `
@group(0) @binding(${binding}) var<storage, read> ${name}: array<vec4f>;
fn ${name}4(i: u32) -> vec4f { return ${name}[i]; }`
  ).join("") + "\n";
}

/**
 * The binding kinds of a mirrored launch: `bindings` with `buffers`' turned into textures read as
 * `read` says.
 *
 * @example
 * ```ts
 * import { mirroredBindings } from "./mirror.ts";
 * console.log(mirroredBindings(["read", "read", "uniform"], { x: 0 }, "sampled")); // ["texture", "read", "uniform"]
 * ```
 */
export function mirroredBindings(
  bindings: readonly BindingKind[],
  buffers: VectorBuffers,
  read: TexelRead,
): BindingKind[] {
  const mirrored = new Set(Object.values(buffers));
  return bindings.map((kind, i) => mirrored.has(i) ? textureKind(read) : kind);
}

/**
 * The copies that mirror `buffers` among a call's `resources` into the textures of `targets` (the
 * first buffer, by binding, into the first), and the resources with the targets' views in their
 * place; undefined where a buffer's slice is not whole texels or is larger than its texture.
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { mirrorCall } from "./mirror.ts";
 * const gpu = await Gpu.create();
 * const target = (width: number) => {
 *   const texture = gpu.scratchTexture(width, 2, "mirror");
 *   return { texture, view: texture.createView() };
 * };
 * const w = gpu.buffer(64, "w"), y = gpu.buffer(16, "y");
 * const call = mirrorCall([w, y], { w: 0 }, [target(4)]);
 * console.log(call?.copies[0].source.size, call?.resources[1] === y); // 64 true
 * console.log(mirrorCall([w, y], { w: 0 }, [target(1)])); // undefined
 * gpu.destroy();
 * ```
 */
export function mirrorCall(
  resources: readonly Resource[],
  buffers: VectorBuffers,
  targets: readonly { texture: GPUTexture; view: GPUTextureView }[],
): { copies: TexelCopy[]; resources: Resource[] } | undefined {
  const bindings = Object.values(buffers).sort((a, b) => a - b);
  if (bindings.length > targets.length) return undefined;
  const copies: TexelCopy[] = [], mirrored = [...resources];
  for (const [i, binding] of bindings.entries()) {
    const resource = resources[binding], { texture, view } = targets[i];
    const slice = resource instanceof GPUBuffer ? { buffer: resource } : resource;
    if (!("buffer" in slice)) return undefined;
    const offset = slice.offset ?? 0, size = slice.size ?? slice.buffer.size - offset;
    if (offset % 16 !== 0 || size % 16 !== 0 || size / 16 > texture.width * texture.height) {
      return undefined;
    }
    copies.push({ source: { buffer: slice.buffer, offset, size }, texture });
    mirrored[binding] = view;
  }
  return { copies, resources: mirrored };
}

/**
 * Whether kernels on `gpu` read their large buffers from copies in the scratch textures: on
 * llvmpipe, whose texel reads are several times faster than its storage-buffer reads (on a GPU the
 * copy would be waste). The update, ReLU's gradient and the fused LRN and pooling ask it.
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { readsCopies } from "./mirror.ts";
 * const gpu = await Gpu.create();
 * console.log(readsCopies(gpu) === (gpu.family === "llvmpipe")); // true
 * gpu.destroy();
 * ```
 */
export function readsCopies(gpu: Gpu): boolean {
  return gpu.family === "llvmpipe";
}

/**
 * WGSL declaring binding `binding` as `name`, an array of f32 read through `fn NAMEAt(e: u32) ->
 * f32`: in place, or where mirrored, from a texture holding a copy of the buffer's bytes (element
 * e in component e % 4 of texel e / 4, in `packedTexel` order) read as `mirror` says. Elementwise
 * kernels read scalars this way: llvmpipe reads even single components of texels faster than
 * storage buffers.
 *
 * @example
 * ```ts
 * import { scalarBufferWgsl } from "./mirror.ts";
 * console.log(scalarBufferWgsl("x", 0).includes("fn xAt(e: u32) -> f32 { return x[e]; }")); // true
 * console.log(scalarBufferWgsl("x", 0, "sampled").includes("texture_2d<f32>")); // true
 * ```
 */
export function scalarBufferWgsl(name: string, binding: number, mirror?: TexelRead): string {
  return mirror
    ? `${textureWgsl(name, binding, mirror)} // a copy of the buffer
fn ${name}At(e: u32) -> f32 { return ${
      texelLoadWgsl(name, "packedTexel(e >> 2u)", mirror)
    }[e & 3u]; }`
    : `@group(0) @binding(${binding}) var<storage, read> ${name}: array<f32>;
fn ${name}At(e: u32) -> f32 { return ${name}[e]; }`;
}

/**
 * The copy that mirrors the first `size` floats of `buffer` into `texture` for
 * {@linkcode scalarBufferWgsl}; undefined where they are not whole texels or do not fit.
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { scalarMirror } from "./mirror.ts";
 * const gpu = await Gpu.create();
 * const texture = gpu.scratchTexture(4, 1, "mirror"), buffer = gpu.buffer(64, "x");
 * console.log(scalarMirror(buffer, 16, texture)?.source.size, scalarMirror(buffer, 15, texture)); // 64 undefined
 * gpu.destroy();
 * ```
 */
export function scalarMirror(
  buffer: GPUBuffer,
  size: number,
  texture: GPUTexture,
): TexelCopy | undefined {
  if (size % 4 !== 0 || size / 4 > texture.width * texture.height) return undefined;
  return { source: { buffer, offset: 0, size: size * 4 }, texture };
}
