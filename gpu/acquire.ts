/**
 * Acquiring a WebGPU device: an adapter, then a device with the largest limits the adapter offers
 * (AlexNet's tensors are large), the features it needs, and clear errors where there is none.
 *
 * @module
 */
import type { TileFamily } from "../kernels/gemm/tiles.ts";
import { GpuError } from "./errors.ts";
import type { TexelRead } from "./launch.ts";

/** The precision of the GEMM core's operands (see `GpuOptions.precision`). */
export type Precision = "f32" | "f16";

/** What {@linkcode acquireDevice} found. */
export interface Acquired {
  /** The device. */
  device: GPUDevice;
  /** The adapter in words. */
  description: string;
  /** A CPU adapter (llvmpipe, lavapipe, SwiftShader): kernels pick CPU tilings. */
  cpu: boolean;
  /** Which tilings suit the adapter. */
  family: TileFamily;
  /** The WebGPU backend Deno was asked for (`DENO_WEBGPU_BACKEND`), or "default". */
  backend: string;
  /** Whether the runtime's WGSL has read-only storage textures. */
  readonlyTextures: boolean;
}

/** The WGSL language feature of read-only (and read-write) storage textures. */
const READONLY_TEXTURES = "readonly_and_readwrite_storage_textures";

/**
 * How kernels on an adapter of `family` read textures by default: as read-only storage textures
 * on llvmpipe, where the WGSL has them (its image loads cost markedly less than its texel
 * fetches: `tools/texel_reads.ts`), else sampled.
 *
 * @example
 * ```ts
 * import { defaultTexelRead } from "./acquire.ts";
 * console.log(defaultTexelRead("gpu", true), defaultTexelRead("llvmpipe", false)); // "sampled" "sampled"
 * ```
 */
export function defaultTexelRead(family: TileFamily, readonlyTextures: boolean): TexelRead {
  return family === "llvmpipe" && readonlyTextures ? "storage" : "sampled";
}

/** The limits requested up to what the adapter offers. */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxStorageBuffersPerShaderStage",
  "maxTextureDimension2D",
] as const;

const HINT = "WebGPU runs on any machine through Mesa's CPU rasteriser: install " +
  "`mesa-vulkan-drivers` (lavapipe) and set DENO_WEBGPU_BACKEND=vulkan, or use " +
  "DENO_WEBGPU_BACKEND=gl (llvmpipe through EGL).";

/**
 * Requests an adapter and a device from it, with timestamp queries where the adapter has them
 * and `shader-f16` for f16 precision. Each call requests a fresh adapter: in Deno an adapter is
 * spent once a device is requested.
 *
 * @example
 * ```ts
 * import { acquireDevice } from "./acquire.ts";
 * const { device, description } = await acquireDevice({}, "f32");
 * console.log(description);
 * device.destroy();
 * ```
 */
export async function acquireDevice(
  options: { powerPreference?: GPUPowerPreference },
  precision: Precision,
): Promise<Acquired> {
  if (!("gpu" in navigator) || !navigator.gpu) {
    throw new GpuError(`navigator.gpu is missing: this runtime has no WebGPU. ${HINT}`);
  }
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: options.powerPreference,
  });
  const backend = backendSetting();
  if (!adapter) {
    throw new GpuError(`no WebGPU adapter found (DENO_WEBGPU_BACKEND=${backend}). ${HINT}`);
  }
  const { info } = adapter;
  // Chromium leaves the description empty and names SwiftShader in the architecture.
  const description = info.description ||
    [info.vendor, info.architecture].filter(Boolean).join(" ") || "unknown adapter";
  if (precision === "f16" && !adapter.features.has("shader-f16")) {
    throw new GpuError(
      `precision f16 needs the adapter feature shader-f16, which ${description} lacks: use f32`,
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
  const cpu = info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(description);
  return {
    device,
    description,
    cpu,
    family: !cpu ? "gpu" : /swiftshader/i.test(description) ? "swiftshader" : "llvmpipe",
    backend: /^(unset|unknown)$/.test(backend) ? "default" : backend,
    readonlyTextures: wgslFeatures().has(READONLY_TEXTURES),
  };
}

/** The WGSL language features of the runtime (Deno's types do not declare them yet). */
function wgslFeatures(): ReadonlySet<string> {
  const gpu = navigator.gpu as GPU & { wgslLanguageFeatures?: ReadonlySet<string> };
  return gpu.wgslLanguageFeatures ?? new Set();
}

/** The backend variable where the environment may be read without a prompt. */
function backendSetting(): string {
  const variable = "DENO_WEBGPU_BACKEND";
  // A browser has no Deno namespace and no backend setting.
  if (!("Deno" in globalThis)) return "unset";
  const state = Deno.permissions.querySync?.({ name: "env", variable }).state;
  return state === "granted" ? Deno.env.get(variable) ?? "unset" : "unknown";
}
