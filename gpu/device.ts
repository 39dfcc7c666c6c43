/**
 * The WebGPU device every kernel runs on: buffers, a pipeline cache, recorded launches, submits
 * and readbacks, with errors captured (`errors.ts`) so that validation errors, out-of-memory and
 * device loss surface as clear exceptions at the next readback instead of zeros or a hang.
 * Acquisition is in `acquire.ts`, what a launch is in `launch.ts`.
 *
 * @module
 */
import type { TileFamily } from "../kernels/gemm/tiles.ts";
import { type Acquired, acquireDevice, defaultTexelRead, type Precision } from "./acquire.ts";
import { ErrorCapture, GpuError } from "./errors.ts";
import {
  type BindingKind,
  type Dispatch,
  encodeDispatches,
  type Launch,
  layoutEntries,
  type Pipeline,
  type Resource,
  type TexelCopy,
  type TexelRead,
} from "./launch.ts";

export type { Precision } from "./acquire.ts";

/** Options for {@linkcode Gpu.create}. */
export interface GpuOptions {
  /** Passed to `navigator.gpu.requestAdapter`. */
  powerPreference?: GPUPowerPreference;
  /**
   * Caps on the limits the code plans for (buffers split and batches chunked to fit them), below
   * what the device allows: how tests exercise the splitting paths with small tensors.
   */
  limits?: Partial<GPUSupportedLimits>;
  /**
   * What the GEMM core multiplies (default "f32"): "f16" rounds every operand of every matrix
   * product (convolutions and dense layers, forward and backward) to half precision and sums the
   * exact products in f32, as tensor cores do; activations, gradients and weights stay f32 in
   * memory. Needs the adapter feature `shader-f16`.
   */
  precision?: Precision;
  /** How kernels read textures (default: `defaultTexelRead` in `acquire.ts`); tests pin it. */
  texelRead?: TexelRead;
}

/**
 * A WebGPU device with a pipeline cache and error capture.
 *
 * @example
 * ```ts
 * import { Gpu } from "./device.ts";
 * const gpu = await Gpu.create();
 * console.log(gpu.description);
 * gpu.destroy();
 * ```
 */
export class Gpu {
  /** The underlying device. */
  readonly device: GPUDevice;
  /** A human-readable name of the adapter (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"). */
  readonly description: string;
  /** True on a CPU adapter (Mesa's llvmpipe/lavapipe, SwiftShader): kernels pick CPU tilings. */
  readonly cpu: boolean;
  /** Which GEMM tilings suit the adapter (see `kernels/gemm/tiles.ts`). */
  readonly family: TileFamily;
  /** The limits the code plans for: the device's, lowered by `GpuOptions.limits`. */
  readonly limits: GPUSupportedLimits;
  /** The precision of the GEMM core's operands on this device (`GpuOptions.precision`). */
  readonly precision: Precision;
  /** The WebGPU backend Deno was asked for (`DENO_WEBGPU_BACKEND`), or "default". */
  readonly backend: string;
  /** How kernels read the textures they only read (see `TexelRead` in `launch.ts`). */
  readonly texelRead: TexelRead;
  readonly #pipelines = new Map<string, Pipeline>();
  readonly #kept = new Map<string, unknown>();
  readonly #errors: ErrorCapture;
  #live = { buffers: 0, bytes: 0 };
  #staging: GPUBuffer[] = [];
  #destroyed = false;

  private constructor(found: Acquired, options: GpuOptions, precision: Precision) {
    const {
      limits: caps = {},
      texelRead = defaultTexelRead(found.family, found.readonlyTextures),
    } = options;
    this.device = found.device;
    this.description = found.description;
    this.cpu = found.cpu;
    this.family = found.family;
    this.backend = found.backend;
    this.precision = precision;
    this.texelRead = texelRead;
    const capped: Record<string, number | undefined> = caps;
    this.limits = new Proxy(found.device.limits, {
      get: (target, key) => capped[key as string] ?? target[key as keyof GPUSupportedLimits],
    });
    this.#errors = new ErrorCapture(found.device, () => this.#destroyed);
  }

  /**
   * Acquires an adapter and a device with the largest storage limits the adapter offers.
   * Each call acquires a fresh adapter: in Deno an adapter is spent once a device is requested.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * console.log(gpu.limits.maxStorageBufferBindingSize);
   * gpu.destroy();
   * ```
   */
  static async create(options: GpuOptions = {}): Promise<Gpu> {
    const precision = options.precision ?? "f32";
    if (precision !== "f32" && precision !== "f16") {
      throw new RangeError(`precision must be "f32" or "f16", got ${JSON.stringify(precision)}`);
    }
    if (options.texelRead !== undefined && !["sampled", "storage"].includes(options.texelRead)) {
      throw new RangeError(`texelRead must be "sampled" or "storage", got ${options.texelRead}`);
    }
    const found = await acquireDevice(options, precision);
    if (options.texelRead === "storage" && !found.readonlyTextures) {
      found.device.destroy();
      throw new GpuError("texelRead storage needs WGSL's read-only storage textures");
    }
    return new Gpu(found, options, precision);
  }

  /**
   * A kernel, cached by key; later calls with the same key return the cache (a key asked for with
   * other WGSL is a bug in its kernel's naming, and throws). Its shader module and pipeline are
   * created when a launch is first encoded (or at {@linkcode Gpu.check}): recording a plan is
   * then quick, so that a Worker compiling ahead starts while this thread still has the modules
   * to translate.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const wgsl = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
   *   @compute @workgroup_size(1) fn main() { a[0] = 1.0; }`;
   * const p = gpu.pipeline("one", wgsl, ["read_write"]);
   * console.assert(p === gpu.pipeline("one", wgsl, ["read_write"]));
   * gpu.destroy();
   * ```
   */
  pipeline(key: string, wgsl: string, bindings: readonly BindingKind[]): Pipeline {
    const cached = this.#pipelines.get(key);
    if (cached && cached.wgsl !== wgsl) throw new GpuError(`kernel ${key}: two sources, one key`);
    if (cached) return cached;
    this.#assertUsable();
    this.#assertFits(key, wgsl, bindings);
    const layout = this.device.createBindGroupLayout({
      label: key,
      entries: layoutEntries(bindings),
    });
    let pipeline: GPUComputePipeline | undefined;
    const create = () =>
      pipeline ??= this.#errors.scoped(() =>
        this.device.createComputePipeline({
          label: key,
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module: this.device.createShaderModule({ label: key, code: wgsl }) },
        })
      );
    const compiled = {
      key,
      wgsl,
      layout,
      bindings: [...bindings],
      get pipeline() {
        return create();
      },
    };
    this.#pipelines.set(key, compiled);
    return compiled;
  }

  /** Refuses a kernel that binds more storage buffers or runs more invocations than allowed. */
  #assertFits(key: string, wgsl: string, bindings: readonly BindingKind[]): void {
    const storage = bindings.filter((b) => b === "read" || b === "read_write").length;
    const allowed = this.limits.maxStorageBuffersPerShaderStage;
    if (storage > allowed) {
      throw new GpuError(
        `kernel ${key} binds ${storage} storage buffers; ${this.description} allows ${allowed}`,
      );
    }
    const size = wgsl.match(/@workgroup_size\(([^)]*)\)/)?.[1].split(",").map(Number) ?? [1];
    const invocations = size.reduce((a, b) => a * b, 1);
    const most = this.limits.maxComputeInvocationsPerWorkgroup;
    if (invocations > most || size[0] > this.limits.maxComputeWorkgroupSizeX) {
      throw new GpuError(
        `kernel ${key} runs ${invocations} invocations a workgroup; ${this.description} allows ${most}`,
      );
    }
  }

  /**
   * Records one launch of `pipeline` over `workgroups` workgroups (any count: it is folded into
   * two dimensions; kernels recover the linear index with {@linkcode WORKGROUP_INDEX_WGSL}), after
   * `copies` (the textures it reads as mirrors of buffers; none by default).
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { WORKGROUP_INDEX_WGSL } from "./launch.ts";
   * const gpu = await Gpu.create();
   * const wgsl = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
   *   ${WORKGROUP_INDEX_WGSL}
   *   @compute @workgroup_size(1) fn main(@builtin(workgroup_id) w: vec3u,
   *     @builtin(num_workgroups) n: vec3u) { a[workgroupIndex(w, n)] = 1.0; }`;
   * const buffer = gpu.buffer(16, "a");
   * const d = gpu.dispatch("ones", gpu.pipeline("ones", wgsl, ["read_write"]), [buffer], 4);
   * gpu.run([d]);
   * console.log(await gpu.read(buffer)); // Float32Array [1, 1, 1, 1]
   * gpu.destroy();
   * ```
   */
  dispatch(
    label: string,
    pipeline: Pipeline,
    resources: readonly Resource[],
    workgroups: number,
    copies: readonly TexelCopy[] = [],
  ): Dispatch {
    this.#assertUsable();
    const maxX = this.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(Math.max(workgroups, 1), maxX);
    const y = Math.ceil(Math.max(workgroups, 1) / x);
    if (y > maxX) throw new GpuError(`${label}: ${workgroups} workgroups is too many to dispatch`);
    const bindGroup = this.#errors.scoped(() =>
      this.device.createBindGroup({
        label,
        layout: pipeline.layout,
        entries: resources.map((resource, binding) => ({
          binding,
          resource: resource instanceof GPUBuffer ? { buffer: resource } : resource,
        })),
      })
    );
    return { label, pipeline, bindGroup, workgroups: [x, y], ...copies.length ? { copies } : {} };
  }

  /**
   * Records a launch of one invocation per element: `count` goes into a uniform (a `vec4u`
   * whose x is read) bound after `resources`, and enough workgroups of `workgroupSize` are
   * dispatched to cover it, after `copies` (see {@linkcode Gpu.dispatch}). The launch owns the
   * uniform.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { WORKGROUP_INDEX_WGSL } from "./launch.ts";
   * const gpu = await Gpu.create();
   * const wgsl = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
   *   @group(0) @binding(1) var<uniform> count: vec4u;
   *   ${WORKGROUP_INDEX_WGSL}
   *   @compute @workgroup_size(64) fn main(@builtin(workgroup_id) w: vec3u,
   *     @builtin(num_workgroups) n: vec3u, @builtin(local_invocation_index) l: u32) {
   *     let i = workgroupIndex(w, n) * 64u + l;
   *     if (i < count.x) { a[i] = f32(i); } }`;
   * const buffer = gpu.buffer(12, "a");
   * const pipeline = gpu.pipeline("iota", wgsl, ["read_write", "uniform"]);
   * gpu.run(gpu.perElement("iota", pipeline, [buffer], 3, 64).dispatches);
   * console.log(await gpu.read(buffer)); // Float32Array [0, 1, 2]
   * gpu.destroy();
   * ```
   */
  perElement(
    label: string,
    pipeline: Pipeline,
    resources: readonly Resource[],
    count: number,
    workgroupSize: number,
    copies: readonly TexelCopy[] = [],
  ): Launch {
    const uniform = this.uniform([count], `${label} count`);
    const workgroups = Math.ceil(count / workgroupSize);
    return {
      dispatches: [this.dispatch(label, pipeline, [...resources, uniform], workgroups, copies)],
      buffers: [uniform],
    };
  }

  /**
   * Allocates a storage buffer of `bytes` bytes (rounded up to 4), zero-filled.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const b = gpu.buffer(10, "ten bytes");
   * console.assert(b.size === 12);
   * gpu.destroy();
   * ```
   */
  buffer(bytes: number, label: string, usage = 0): GPUBuffer {
    this.#assertUsable();
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    if (size > this.limits.maxBufferSize) {
      throw new GpuError(
        `${label}: ${size} bytes is over this adapter's maxBufferSize ` +
          `(${this.limits.maxBufferSize}); use a smaller batch`,
      );
    }
    const buffer = this.#errors.scoped(() =>
      this.device.createBuffer({
        label,
        size,
        usage: usage || GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      })
    );
    // Count live buffers, so that tests and long runs can prove nothing leaks.
    this.#live.buffers++;
    this.#live.bytes += size;
    const destroy = buffer.destroy.bind(buffer);
    let destroyed = false;
    buffer.destroy = () => {
      if (!destroyed) {
        destroyed = true;
        this.#live.buffers--;
        this.#live.bytes -= size;
      }
      destroy();
    };
    return buffer;
  }

  /**
   * Allocates a `width` x `height` rgba32float texture that kernels write as a storage texture (or
   * copies fill) and read with `textureLoad`: scratch space a kernel keeps for the device's
   * lifetime (the GEMM core's packed or mirrored operands). It is freed with the device and not
   * counted in {@linkcode Gpu.live}.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const t = gpu.scratchTexture(3, 2, "packed");
   * console.log(t.width, t.height); // 3 2
   * gpu.destroy();
   * ```
   */
  scratchTexture(width: number, height: number, label: string): GPUTexture {
    this.#assertUsable();
    return this.#errors.scoped(() =>
      this.device.createTexture({
        label,
        size: [width, height],
        format: "rgba32float",
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING |
          GPUTextureUsage.COPY_DST,
      })
    );
  }

  /**
   * A value kept for the device's lifetime (a kernel's scratch textures), made by `make` at the
   * first call with `key`.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const made = gpu.keep("answer", () => ({ value: 42 }));
   * console.log(gpu.keep("answer", () => ({ value: 0 })) === made); // true
   * gpu.destroy();
   * ```
   */
  keep<T>(key: string, make: () => T): T {
    if (!this.#kept.has(key)) this.#kept.set(key, make());
    return this.#kept.get(key) as T;
  }

  /**
   * Buffers allocated through {@linkcode Gpu.buffer} and not yet destroyed, and their bytes (the
   * readback pool and scratch textures, which the device keeps for its lifetime, are not counted).
   */
  get live(): { buffers: number; bytes: number } {
    return { ...this.#live };
  }

  /**
   * Creates a uniform buffer holding `values` as 32-bit unsigned integers.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const u = gpu.uniform([1, 2, 3], "params");
   * console.assert(u.size === 16);
   * gpu.destroy();
   * ```
   */
  uniform(values: readonly number[], label: string): GPUBuffer {
    const data = new Uint32Array(Math.ceil(values.length / 4) * 4);
    data.set(values);
    const buffer = this.buffer(
      data.byteLength,
      label,
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    );
    this.device.queue.writeBuffer(buffer, 0, data);
    return buffer;
  }

  /**
   * Encodes `dispatches` into compute passes (described by `descriptor`, e.g. its timestamp
   * writes; see {@linkcode encodeDispatches}), then `after` (copies), and submits once.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * gpu.run([]); // an empty pass is valid
   * gpu.destroy();
   * ```
   */
  run(
    dispatches: readonly Dispatch[],
    after?: (encoder: GPUCommandEncoder) => void,
    descriptor?: GPUComputePassDescriptor,
  ): void {
    this.#assertUsable();
    this.#errors.scoped(() => {
      const encoder = this.device.createCommandEncoder();
      if (dispatches.length > 0 || descriptor) encodeDispatches(encoder, dispatches, descriptor);
      after?.(encoder);
      this.device.queue.submit([encoder.finish()]);
    });
  }

  /**
   * Writes `data` into `buffer` at `byteOffset` through the queue (ordered with submits).
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const b = gpu.buffer(8, "b");
   * gpu.write(b, new Float32Array([1, 2]));
   * console.log(await gpu.read(b)); // Float32Array [1, 2]
   * gpu.destroy();
   * ```
   */
  write(buffer: GPUBuffer, data: Float32Array | Uint32Array | Int32Array, byteOffset = 0): void {
    this.#assertUsable();
    this.#errors.scoped(() =>
      this.device.queue.writeBuffer(buffer, byteOffset, data as BufferSource)
    );
  }

  /**
   * Copies `byteLength` bytes of `buffer` from `byteOffset` back to the CPU after all submitted
   * work, and throws the first error any earlier call raised on the device.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const b = gpu.buffer(4, "b");
   * console.log(await gpu.read(b)); // Float32Array [0]
   * gpu.destroy();
   * ```
   */
  async read(
    buffer: GPUBuffer,
    byteOffset = 0,
    byteLength: number = buffer.size - byteOffset,
  ): Promise<Float32Array> {
    this.#assertUsable();
    // Staging buffers are pooled: a training loop reads every step and allocates nothing.
    const index = this.#staging.findIndex((b) => b.size >= byteLength);
    // Pooled staging buffers are the device's own, like its scratch: not counted in `live`.
    const staging = index >= 0
      ? this.#staging.splice(index, 1)[0]
      : this.#errors.scoped(() =>
        this.device.createBuffer({
          label: "readback",
          size: Math.max(4, Math.ceil(byteLength / 4) * 4),
          usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        })
      );
    let reusable = false;
    try {
      this.run(
        [],
        (encoder) => encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, byteLength),
      );
      await this.#errors.guard(staging.mapAsync(GPUMapMode.READ, 0, byteLength));
      await this.check();
      const data = new Float32Array(staging.getMappedRange(0, byteLength).slice(0));
      staging.unmap(); // the mapped range must not outlive the mapping
      reusable = true;
      return data;
    } finally {
      if (reusable && this.#staging.length < 4) this.#staging.push(staging);
      else staging.destroy();
    }
  }

  /**
   * Throws the first error the device reported since the last check (validation, out-of-memory,
   * internal, uncaptured, or loss). It waits for the error scopes of the calls made since, which
   * settle when the calls are validated, not when the submitted work has run: to wait for that,
   * await `device.queue.onSubmittedWorkDone()` (or a readback).
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * await gpu.check(); // nothing went wrong
   * gpu.destroy();
   * ```
   */
  check(): Promise<void> {
    for (const p of this.#pipelines.values()) void p.pipeline; // created now if unused: their errors count
    return this.#errors.check();
  }

  /** True once the device was lost or destroyed. */
  get lost(): boolean {
    return this.#errors.lost !== null || this.#destroyed;
  }

  /**
   * Destroys the device and every buffer on it. Idempotent.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * gpu.destroy();
   * console.assert(gpu.lost);
   * ```
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#pipelines.clear();
    this.#kept.clear();
    for (const staging of this.#staging.splice(0)) staging.destroy();
    this.device.destroy();
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new GpuError("the GPU device was destroyed");
    const lost = this.#errors.lost;
    if (lost !== null) throw new GpuError(`the GPU device was lost: ${lost}`);
  }
}
