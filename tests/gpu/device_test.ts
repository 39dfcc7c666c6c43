// The device (gpu/device.ts, gpu/acquire.ts, gpu/errors.ts): failures surface as clear errors,
// never as zeros or a hang; what it allocates is counted.
import { deepStrictEqual, rejects, throws } from "node:assert";
import { Gpu, type Precision } from "../../gpu/device.ts";
import { GpuError } from "../../gpu/errors.ts";
import { Network } from "../../layers/network.ts";
import { GEMM_TILES } from "../../kernels/gemm/tiles.ts";
import { recordGemm } from "../../kernels/gemm/record.ts";
import { assert, deno, TINY } from "../helpers.ts";

Deno.test("a lost device is a clear error, never a hang", async () => {
  const gpu = await Gpu.create();
  const net = await Network.create(TINY, { gpu });
  gpu.device.destroy(); // as when the driver resets
  await new Promise((r) => setTimeout(r, 50));
  await rejects(net.forward(new Float32Array(64), 1), /tiny: its GPU device is gone/);
  await net.destroy();
  gpu.destroy();
});

Deno.test("WebGPU validation errors surface at the next check, naming the problem", async () => {
  const gpu = await Gpu.create();
  try {
    gpu.pipeline(
      "broken",
      "@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }",
      [],
    );
    await rejects(gpu.check(), (e) => e instanceof GpuError && /undefined_name/.test(e.message));
  } finally {
    gpu.destroy();
  }
});

Deno.test("a kernel over the adapter's storage-buffer or invocation limits is refused by name", async () => {
  const gpu = await Gpu.create({
    limits: { maxStorageBuffersPerShaderStage: 2, maxComputeInvocationsPerWorkgroup: 128 },
  });
  try {
    const three = `@group(0) @binding(0) var<storage, read> a: array<f32>;
      @group(0) @binding(1) var<storage, read> b: array<f32>;
      @group(0) @binding(2) var<storage, read_write> c: array<f32>;
      @compute @workgroup_size(1) fn main() { c[0] = a[0] + b[0]; }`;
    throws(
      () => gpu.pipeline("three", three, ["read", "read", "read_write"]),
      (e) => e instanceof GpuError && /three binds 3 storage buffers; .* allows 2/.test(e.message),
    );
    const wide = `@group(0) @binding(0) var<storage, read_write> c: array<f32>;
      @compute @workgroup_size(16, 16) fn main() { c[0] = 1.0; }`;
    throws(
      () => gpu.pipeline("wide", wide, ["read_write"]),
      (e) =>
        e instanceof GpuError && /wide runs 256 invocations a workgroup; .* 128/.test(e.message),
    );
  } finally {
    gpu.destroy();
  }
});

Deno.test("buffers are counted until destroyed, and a destroyed device refuses work", async () => {
  const gpu = await Gpu.create();
  const before = gpu.live;
  const a = gpu.buffer(10, "a"), b = gpu.uniform([1, 2, 3], "b");
  deepStrictEqual(gpu.live, { buffers: before.buffers + 2, bytes: before.bytes + 12 + 16 });
  a.destroy();
  a.destroy(); // twice counts once
  b.destroy();
  deepStrictEqual(gpu.live, before);
  gpu.destroy();
  throws(() => gpu.buffer(4, "after"), /the GPU device was destroyed/);
});

Deno.test("llvmpipe reads textures as read-only storage textures, and the GEMM core follows", async () => {
  const gpu = await Gpu.create(), sampled = await Gpu.create({ texelRead: "sampled" });
  try {
    assert(gpu.family !== "llvmpipe" || gpu.texelRead === "storage", gpu.texelRead);
    const c = gpu.buffer(4 * 4, "c"), s = sampled.buffer(4 * 4, "c");
    const operands = `@group(0) @binding(0) var<storage, read_write> c: array<f32>;
fn gemmRows() -> u32 { return 2u; }
fn gemmCols() -> u32 { return 2u; }
fn gemmDepth() -> u32 { return 3u; }
fn loadA(m: u32, k: u32) -> f32 { return f32(m + k); }
fn loadB(k: u32, n: u32) -> f32 { return f32(k * n + 1u); }
fn storeC(m: u32, n: u32, v: f32) { c[m * 2u + n] = v; }`;
    const wgslOf = (g: Gpu, buffer: GPUBuffer) => {
      const launch = recordGemm(g, {
        key: "texel read",
        operands,
        bindings: ["read_write"],
        tile: GEMM_TILES.packed,
        calls: [{ label: "c", resources: [buffer], rows: 2, cols: 2, depth: 3 }],
      });
      g.run(launch.dispatches);
      for (const b of launch.buffers) b.destroy();
      return launch.dispatches.map((d) => d.pipeline.wgsl).join();
    };
    const storage = "texture_storage_2d<rgba32float, read>";
    assert(wgslOf(gpu, c).includes(storage) === (gpu.texelRead === "storage"));
    assert(!wgslOf(sampled, s).includes(storage));
    // C = A B with A[m][k] = m + k, B[k][n] = k n + 1: both reads give the same products.
    deepStrictEqual([...await gpu.read(c)], [3, 8, 6, 14]);
    deepStrictEqual([...await sampled.read(s)], [3, 8, 6, 14]);
    await gpu.check();
    await sampled.check();
  } finally {
    gpu.destroy();
    sampled.destroy();
  }
});

Deno.test("a texel read other than sampled or storage is refused by name", async () => {
  await rejects(
    Gpu.create({ texelRead: "mipmapped" as "sampled" }),
    (e) => e instanceof RangeError && /texelRead must be "sampled" or "storage"/.test(e.message),
  );
});

Deno.test("a precision other than f32 or f16 is refused by name", async () => {
  await rejects(
    () => Gpu.create({ precision: "bf16" as Precision }),
    /precision must be "f32" or "f16", got "bf16"/,
  );
});

Deno.test("no adapter: the error names the backend and how to get a CPU adapter", async () => {
  const out = await deno([
    "eval",
    `import { Gpu } from "${new URL("../../gpu/device.ts", import.meta.url)}";
    try { await Gpu.create(); } catch (e) { console.log(e.name + ": " + e.message); }`,
  ], { env: { DENO_WEBGPU_BACKEND: "dx12" } }); // no such backend on Linux
  const want =
    /GpuError: no WebGPU adapter found \(DENO_WEBGPU_BACKEND=dx12\)[\s\S]*mesa-vulkan-drivers/;
  if (!want.test(out.stdout)) throw new Error(`unexpected output: ${out.stdout}${out.stderr}`);
});
