/**
 * What a recorded kernel launch is: a compiled pipeline, its bindings and workgroup counts, and
 * the small buffers a launch owns. Kernels record launches once; plans replay them every step.
 *
 * @module
 */

/**
 * One binding of a kernel, in binding order: a storage buffer read or written, a uniform buffer,
 * a sampled float texture ("texture"), a read-only or a write-only rgba32float storage texture.
 */
export type BindingKind =
  | "read"
  | "read_write"
  | "uniform"
  | "texture"
  | "readonly_texture"
  | "storage_texture";

/**
 * How kernels read the rgba32float textures they only read (the GEMM core's packed and mirrored
 * operands, the copies elementwise kernels read): as sampled textures, or as read-only storage
 * textures, whose loads cost llvmpipe markedly less (`Gpu.texelRead` picks).
 */
export type TexelRead = "sampled" | "storage";

/**
 * The binding kind of a texture read as `read` says.
 *
 * @example
 * ```ts
 * import { textureKind } from "./launch.ts";
 * console.log(textureKind("sampled"), textureKind("storage")); // "texture" "readonly_texture"
 * ```
 */
export function textureKind(read: TexelRead): BindingKind {
  return read === "storage" ? "readonly_texture" : "texture";
}

/**
 * WGSL declaring binding `binding` as `name`, an rgba32float texture read as `read` says.
 *
 * @example
 * ```ts
 * import { textureWgsl } from "./launch.ts";
 * console.log(textureWgsl("a", 1, "storage"));
 * // "@group(0) @binding(1) var a: texture_storage_2d<rgba32float, read>;"
 * ```
 */
export function textureWgsl(name: string, binding: number, read: TexelRead): string {
  const type = read === "storage" ? "texture_storage_2d<rgba32float, read>" : "texture_2d<f32>";
  return `@group(0) @binding(${binding}) var ${name}: ${type};`;
}

/**
 * The WGSL expression of texel `coords` (a vec2i or vec2u) of texture `name`, read as `read` says.
 *
 * @example
 * ```ts
 * import { texelLoadWgsl } from "./launch.ts";
 * console.log(texelLoadWgsl("a", "c", "sampled"), texelLoadWgsl("a", "c", "storage"));
 * // "textureLoad(a, c, 0)" "textureLoad(a, c)"
 * ```
 */
export function texelLoadWgsl(name: string, coords: string, read: TexelRead): string {
  return `textureLoad(${name}, ${coords}${read === "storage" ? "" : ", 0"})`;
}

/** What a dispatch binds: a buffer (whole or a slice) or a texture view. */
export type Resource = GPUBuffer | GPUBufferBinding | GPUTextureView;

/** A compiled compute kernel: its pipeline and the explicit layout its bind groups follow. */
export interface Pipeline {
  /** The cache key (kernel name and compile-time parameters). */
  readonly key: string;
  /** Its WGSL source (what `deno task wgsl` prints). */
  readonly wgsl: string;
  /** The compute pipeline, created at its first read (see `Gpu.pipeline`). */
  readonly pipeline: GPUComputePipeline;
  /** The bind group layout of group 0. */
  readonly layout: GPUBindGroupLayout;
  /** The kinds of its bindings, in binding order (what `layout` was made from). */
  readonly bindings: readonly BindingKind[];
}

/**
 * A copy of a buffer's bytes (a binding's slice) into a texture, texel after texel from the first
 * texel of row `row`, rows of the texture's width: the mirror a kernel then reads with
 * `textureLoad`.
 */
export interface TexelCopy {
  /** The bytes: a whole number of texels, starting on one. */
  readonly source: Required<GPUBufferBinding>;
  /** The rgba32float texture, at least as many texels from `row` on as the bytes hold. */
  readonly texture: GPUTexture;
  /** The texture row the copy starts at (default 0). */
  readonly row?: number;
}

/** One recorded kernel launch: replayed into a compute pass as often as needed. */
export interface Dispatch {
  /** What the launch computes, for error messages and profiles. */
  readonly label: string;
  /** The kernel. */
  readonly pipeline: Pipeline;
  /** Its resources. */
  readonly bindGroup: GPUBindGroup;
  /** Workgroup counts in x and y (x at most the adapter's per-dimension limit). */
  readonly workgroups: readonly [number, number];
  /** Copies made before the kernel runs, outside any compute pass (none by default). */
  readonly copies?: readonly TexelCopy[];
}

/** The launches of one operation and the buffers they own: uniforms, saved indices. */
export interface Launch {
  /** Kernel launches, in order. */
  readonly dispatches: Dispatch[];
  /** Buffers the launches own; destroy them when the launches are dropped. */
  readonly buffers: GPUBuffer[];
}

/**
 * The empty launch of a layer with nothing to do.
 *
 * @example
 * ```ts
 * import { NO_LAUNCH } from "./launch.ts";
 * console.log(NO_LAUNCH.dispatches.length); // 0
 * ```
 */
export const NO_LAUNCH: Launch = Object.freeze({ dispatches: [], buffers: [] });

/**
 * The launches of `launches` as one: their dispatches in order, and every buffer they own.
 *
 * @example
 * ```ts
 * import { joinLaunches, NO_LAUNCH } from "./launch.ts";
 * console.log(joinLaunches([NO_LAUNCH, NO_LAUNCH]).dispatches.length); // 0
 * ```
 */
export function joinLaunches(launches: readonly Launch[]): Launch {
  return {
    dispatches: launches.flatMap((l) => l.dispatches),
    buffers: launches.flatMap((l) => l.buffers),
  };
}

/**
 * The layout entries of a kernel's bindings, in binding order, all visible to compute.
 *
 * @example
 * ```ts
 * import { layoutEntries } from "./launch.ts";
 * console.log(layoutEntries(["read", "uniform"])[1].buffer?.type); // "uniform"
 * ```
 */
export function layoutEntries(bindings: readonly BindingKind[]): GPUBindGroupLayoutEntry[] {
  return bindings.map((kind, binding): GPUBindGroupLayoutEntry => {
    const visibility = GPUShaderStage.COMPUTE;
    if (kind === "texture") {
      return { binding, visibility, texture: { sampleType: "unfilterable-float" } };
    }
    if (kind === "storage_texture" || kind === "readonly_texture") {
      const access = kind === "storage_texture" ? "write-only" : "read-only";
      return { binding, visibility, storageTexture: { access, format: "rgba32float" } };
    }
    const type = kind === "uniform" ? "uniform" : kind === "read" ? "read-only-storage" : "storage";
    return { binding, visibility, buffer: { type } };
  });
}

/**
 * Encodes `dispatches` in order into compute passes described by `descriptor` (e.g. timestamp
 * writes, the first pass's beginning and the last's end): one pass, unless a dispatch copies first
 * (copies end the pass and the next dispatch begins another).
 *
 * @example
 * ```ts ignore
 * const encoder = gpu.device.createCommandEncoder();
 * encodeDispatches(encoder, plan.forward);
 * gpu.device.queue.submit([encoder.finish()]);
 * ```
 */
export function encodeDispatches(
  encoder: GPUCommandEncoder,
  dispatches: readonly Dispatch[],
  descriptor: GPUComputePassDescriptor = {},
): void {
  const { timestampWrites: times, ...rest } = descriptor;
  const runs = passRuns(dispatches);
  runs.forEach((run, i) => {
    for (const c of run[0]?.copies ?? []) copyTexels(encoder, c);
    const timestampWrites = times && {
      querySet: times.querySet,
      ...(i === 0 ? { beginningOfPassWriteIndex: times.beginningOfPassWriteIndex } : {}),
      ...(i === runs.length - 1 ? { endOfPassWriteIndex: times.endOfPassWriteIndex } : {}),
    };
    const pass = encoder.beginComputePass(times ? { ...rest, timestampWrites } : rest);
    for (const d of run) {
      pass.setPipeline(d.pipeline.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
    }
    pass.end();
  });
}

/** `dispatches` cut before each that copies: the runs that share a compute pass (one if none). */
function passRuns(dispatches: readonly Dispatch[]): Dispatch[][] {
  const runs: Dispatch[][] = [[]];
  for (const d of dispatches) {
    if (d.copies?.length && runs.at(-1)!.length > 0) runs.push([]);
    runs.at(-1)!.push(d);
  }
  return runs;
}

/** Encodes `copy`: whole rows of the texture, then the texels of a last partial row. */
function copyTexels(encoder: GPUCommandEncoder, { source, texture, row = 0 }: TexelCopy): void {
  const texels = source.size / 16, rowBytes = texture.width * 16;
  const rows = Math.floor(texels / texture.width), rest = texels % texture.width;
  const from = (r: number) => ({
    buffer: source.buffer,
    offset: source.offset + r * rowBytes,
    bytesPerRow: rowBytes,
  });
  const at = (r: number) => ({ texture, origin: [0, row + r] });
  if (rows > 0) encoder.copyBufferToTexture(from(0), at(0), [texture.width, rows]);
  if (rest > 0) encoder.copyBufferToTexture(from(rows), at(rows), [rest, 1]);
}

/**
 * WGSL helper shared by every kernel: the linear workgroup index of a launch that `Gpu.dispatch`
 * folded into two dimensions (dispatches are limited to 65,535 workgroups per axis).
 *
 * @example
 * ```ts
 * import { WORKGROUP_INDEX_WGSL } from "./launch.ts";
 * console.assert(WORKGROUP_INDEX_WGSL.includes("fn workgroupIndex"));
 * ```
 */
export const WORKGROUP_INDEX_WGSL = /* wgsl */ `
fn workgroupIndex(id: vec3u, count: vec3u) -> u32 {
  return id.x + id.y * count.x;
}`;
