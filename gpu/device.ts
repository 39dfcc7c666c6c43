/**
 * The WebGPU device every kernel runs on: acquisition with the limits AlexNet needs, a pipeline
 * cache, and error capture so that validation errors, out-of-memory and device loss surface as
 * clear exceptions at the next readback instead of silently producing zeros or hanging.
 *
 * @module
 */

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
}

/** The precision of the GEMM core's operands (see {@linkcode GpuOptions.precision}). */
export type Precision = "f32" | "f16";

/**
 * One binding of a kernel, in binding order: a storage buffer read or written, a uniform buffer,
 * a sampled float texture ("texture") or a write-only rgba32float storage texture.
 */
export type BindingKind = "read" | "read_write" | "uniform" | "texture" | "storage_texture";

/** What a dispatch binds: a buffer (whole or a slice) or a texture view. */
export type Resource = GPUBuffer | GPUBufferBinding | GPUTextureView;

/** A compiled compute kernel: its pipeline and the explicit layout its bind groups follow. */
export interface Pipeline {
  /** The cache key (kernel name and compile-time parameters). */
  readonly key: string;
  /** The compute pipeline. */
  readonly pipeline: GPUComputePipeline;
  /** The bind group layout of group 0. */
  readonly layout: GPUBindGroupLayout;
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
}

/** The launches of one operation and the buffers they own: uniforms, saved indices. */
export interface Launch {
  /** Kernel launches, in order. */
  readonly dispatches: Dispatch[];
  /** Buffers the launches own; destroy them when the launches are dropped. */
  readonly buffers: GPUBuffer[];
}

/** The limits requested up to what the adapter offers: AlexNet's tensors are large. */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxStorageBuffersPerShaderStage",
  "maxTextureDimension2D",
] as const;

/**
 * Error thrown for any failure of the WebGPU device: validation, memory, loss, missing adapter.
 *
 * @example
 * ```ts
 * import { Gpu, GpuError } from "./device.ts";
 * const gpu = await Gpu.create();
 * gpu.destroy();
 * try {
 *   gpu.buffer(4, "after destroy");
 * } catch (e) {
 *   console.log(e instanceof GpuError); // true
 * }
 * ```
 */
export class GpuError extends Error {
  /**
   * Wraps a message.
   *
   * @example
   * ```ts
   * import { GpuError } from "./device.ts";
   * const e = new GpuError("device lost");
   * console.assert(e.name === "GpuError");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
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
  /** The limits the code plans for: the device's, lowered by `GpuOptions.limits`. */
  readonly limits: GPUSupportedLimits;
  /** The precision of the GEMM core's operands on this device (`GpuOptions.precision`). */
  readonly precision: Precision;
  #pipelines = new Map<string, Pipeline>();
  #live = { buffers: 0, bytes: 0 };
  #staging: GPUBuffer[] = [];
  #scopes: Promise<GPUError | null>[] = [];
  #uncaptured: string[] = [];
  #lost: string | null = null;
  #lostPromise: Promise<never>;
  #destroyed = false;

  private constructor(
    device: GPUDevice,
    description: string,
    cpu: boolean,
    caps: GpuOptions["limits"] = {},
    precision: Precision = "f32",
  ) {
    this.device = device;
    this.description = description;
    this.cpu = cpu;
    this.precision = precision;
    const capped: Record<string, number | undefined> = caps;
    this.limits = new Proxy(device.limits, {
      get: (target, key) => capped[key as string] ?? target[key as keyof GPUSupportedLimits],
    });
    device.addEventListener("uncapturederror", (event) => {
      this.#uncaptured.push((event as GPUUncapturedErrorEvent).error.message);
    });
    this.#lostPromise = device.lost.then((info) => {
      this.#lost = info.message || String(info.reason);
      throw new GpuError(
        this.#destroyed ? "the GPU device was destroyed" : `the GPU device was lost: ${this.#lost}`,
      );
    });
    this.#lostPromise.catch(() => {}); // observed through guard(); never an unhandled rejection
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
    const hint = "WebGPU runs on any machine through Mesa's CPU rasteriser: install " +
      "`mesa-vulkan-drivers` (lavapipe) and set DENO_WEBGPU_BACKEND=vulkan, or use " +
      "DENO_WEBGPU_BACKEND=gl (llvmpipe through EGL).";
    if (!("gpu" in navigator) || !navigator.gpu) {
      throw new GpuError(`navigator.gpu is missing: this runtime has no WebGPU. ${hint}`);
    }
    const adapter = await navigator.gpu.requestAdapter({
      powerPreference: options.powerPreference,
    });
    if (!adapter) {
      throw new GpuError(
        `no WebGPU adapter found (DENO_WEBGPU_BACKEND=${backendSetting()}). ${hint}`,
      );
    }
    const precision = options.precision ?? "f32";
    if (precision !== "f32" && precision !== "f16") {
      throw new RangeError(`precision must be "f32" or "f16", got ${JSON.stringify(precision)}`);
    }
    if (precision === "f16" && !adapter.features.has("shader-f16")) {
      throw new GpuError(
        `precision f16 needs the adapter feature shader-f16, which ${
          adapter.info.description || "this adapter"
        } lacks: use f32`,
      );
    }
    const requiredLimits: Record<string, number> = {};
    for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
    // Timestamp queries, where the adapter has them, give the benchmark GPU time.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has("timestamp-query")
      ? ["timestamp-query"]
      : [];
    if (precision === "f16") requiredFeatures.push("shader-f16");
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    const description = adapter.info.description || adapter.info.vendor || "unknown adapter";
    const cpu = adapter.info.isFallbackAdapter ||
      /llvmpipe|lavapipe|swiftshader/i.test(description);
    return new Gpu(device, description, cpu, options.limits, precision);
  }

  /**
   * Compiles a kernel once and caches it by key; later calls with the same key return the cache.
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
    if (cached) return cached;
    this.#assertUsable();
    const layout = this.device.createBindGroupLayout({
      label: key,
      entries: bindings.map((kind, binding): GPUBindGroupLayoutEntry => {
        const visibility = GPUShaderStage.COMPUTE;
        if (kind === "texture") {
          return { binding, visibility, texture: { sampleType: "unfilterable-float" } };
        }
        if (kind === "storage_texture") {
          return {
            binding,
            visibility,
            storageTexture: { access: "write-only", format: "rgba32float" },
          };
        }
        const type = kind === "uniform"
          ? "uniform"
          : kind === "read"
          ? "read-only-storage"
          : "storage";
        return { binding, visibility, buffer: { type } };
      }),
    });
    const pipeline = this.#scoped(() =>
      this.device.createComputePipeline({
        label: key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: this.device.createShaderModule({ label: key, code: wgsl }) },
      })
    );
    const compiled = { key, pipeline, layout };
    this.#pipelines.set(key, compiled);
    return compiled;
  }

  /**
   * Records one launch of `pipeline` over `workgroups` workgroups (any count: it is folded into
   * two dimensions; kernels recover the linear index with {@linkcode WORKGROUP_INDEX_WGSL}).
   *
   * @example
   * ```ts
   * import { Gpu, WORKGROUP_INDEX_WGSL } from "./device.ts";
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
  ): Dispatch {
    this.#assertUsable();
    const maxX = this.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(Math.max(workgroups, 1), maxX);
    const y = Math.ceil(Math.max(workgroups, 1) / x);
    if (y > maxX) throw new GpuError(`${label}: ${workgroups} workgroups is too many to dispatch`);
    const bindGroup = this.#scoped(() =>
      this.device.createBindGroup({
        label,
        layout: pipeline.layout,
        entries: resources.map((resource, binding) => ({
          binding,
          resource: resource instanceof GPUBuffer ? { buffer: resource } : resource,
        })),
      })
    );
    return { label, pipeline, bindGroup, workgroups: [x, y] };
  }

  /**
   * Records a launch of one invocation per element: `count` goes into a uniform (a `vec4u`
   * whose x is read) bound after `resources`, and enough workgroups of `workgroupSize` are
   * dispatched to cover it. The launch owns the uniform.
   *
   * @example
   * ```ts
   * import { Gpu, WORKGROUP_INDEX_WGSL } from "./device.ts";
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
  ): Launch {
    const uniform = this.uniform([count], `${label} count`);
    const workgroups = Math.ceil(count / workgroupSize);
    return {
      dispatches: [this.dispatch(label, pipeline, [...resources, uniform], workgroups)],
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
    const buffer = this.#scoped(() =>
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
   * Allocates a `width` x `height` rgba32float texture that kernels write as a storage texture and
   * read with `textureLoad`: scratch space a kernel keeps for the device's lifetime (the GEMM
   * core's packed operands). It is freed with the device and not counted in {@linkcode Gpu.live}.
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
    return this.#scoped(() =>
      this.device.createTexture({
        label,
        size: [width, height],
        format: "rgba32float",
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING,
      })
    );
  }

  /** Buffers allocated through {@linkcode Gpu.buffer} and not yet destroyed, and their bytes. */
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
   * Encodes `dispatches` into one compute pass, then `after` (copies), and submits once.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * gpu.run([]); // an empty pass is valid
   * gpu.destroy();
   * ```
   */
  run(dispatches: readonly Dispatch[], after?: (encoder: GPUCommandEncoder) => void): void {
    this.#assertUsable();
    this.#scoped(() => {
      const encoder = this.device.createCommandEncoder();
      if (dispatches.length > 0) {
        const pass = encoder.beginComputePass();
        for (const d of dispatches) {
          pass.setPipeline(d.pipeline.pipeline);
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
        }
        pass.end();
      }
      after?.(encoder);
      this.device.queue.submit([encoder.finish()]);
    });
  }

  /**
   * GPU milliseconds of one compute pass of `dispatches`, from timestamp queries at its start and
   * end; null where the device has no timestamp queries, or is a CPU adapter (measure wall time
   * instead): lavapipe's timestamps go wrong once a pass has read textures (a later pass of
   * 450 ms read 0.1 ms), and there the wall clock measures the same work.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * const gpu = await Gpu.create();
   * const ms = await gpu.timePass([]);
   * console.log(ms === null || ms >= 0); // true
   * gpu.destroy();
   * ```
   */
  async timePass(dispatches: readonly Dispatch[]): Promise<number | null> {
    this.#assertUsable();
    if (!this.timestamps) return null;
    const querySet = this.device.createQuerySet({ type: "timestamp", count: 2 });
    const resolved = this.buffer(
      16,
      "timestamps",
      GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    );
    try {
      this.#scoped(() => {
        const encoder = this.device.createCommandEncoder();
        const pass = encoder.beginComputePass({
          timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
        });
        for (const d of dispatches) {
          pass.setPipeline(d.pipeline.pipeline);
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1]);
        }
        pass.end();
        encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
        this.device.queue.submit([encoder.finish()]);
      });
      const [start, end] = new BigUint64Array((await this.read(resolved)).buffer);
      return Number(end - start) / 1e6; // nanoseconds
    } finally {
      querySet.destroy();
      resolved.destroy();
    }
  }

  /** Whether {@linkcode Gpu.timePass} measures GPU time here (else callers use the wall clock). */
  get timestamps(): boolean {
    return this.device.features.has("timestamp-query") && !this.cpu;
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
    this.#scoped(() => this.device.queue.writeBuffer(buffer, byteOffset, data as BufferSource));
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
    const staging = index >= 0 ? this.#staging.splice(index, 1)[0] : this.buffer(
      byteLength,
      "readback",
      GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    );
    let reusable = false;
    try {
      this.run(
        [],
        (encoder) => encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, byteLength),
      );
      await this.#guard(staging.mapAsync(GPUMapMode.READ, 0, byteLength));
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
  async check(): Promise<void> {
    const scopes = this.#scopes;
    this.#scopes = [];
    const errors = await this.#guard(Promise.all(scopes));
    const messages = errors.filter((e) => e !== null).map((e) => e!.message);
    messages.push(...this.#uncaptured.splice(0));
    if (messages.length > 0) throw new GpuError(`WebGPU error: ${messages.join("\n")}`);
  }

  /** True once the device was lost or destroyed. */
  get lost(): boolean {
    return this.#lost !== null || this.#destroyed;
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
    for (const staging of this.#staging.splice(0)) staging.destroy();
    this.device.destroy();
  }

  /** Runs `body` inside validation, out-of-memory and internal error scopes, popped lazily. */
  #scoped<T>(body: () => T): T {
    this.device.pushErrorScope("internal");
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
    try {
      return body();
    } finally {
      for (let i = 0; i < 3; i++) this.#scopes.push(this.device.popErrorScope());
    }
  }

  /** Races `promise` with device loss, so that no wait hangs on a lost device. */
  #guard<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.#lostPromise]);
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new GpuError("the GPU device was destroyed");
    if (this.#lost !== null) throw new GpuError(`the GPU device was lost: ${this.#lost}`);
  }
}

/** The backend variable where the environment may be read without a prompt, for messages. */
function backendSetting(): string {
  const variable = "DENO_WEBGPU_BACKEND";
  const state = Deno.permissions.querySync?.({ name: "env", variable }).state;
  return state === "granted" ? Deno.env.get(variable) ?? "unset" : "unknown";
}

/**
 * WGSL helper shared by every kernel: the linear workgroup index of a launch that
 * {@linkcode Gpu.dispatch} folded into two dimensions (dispatches are limited to 65,535 per axis).
 */
export const WORKGROUP_INDEX_WGSL = /* wgsl */ `
fn workgroupIndex(id: vec3u, count: vec3u) -> u32 {
  return id.x + id.y * count.x;
}`;
