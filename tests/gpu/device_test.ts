// The device (gpu/device.ts, gpu/acquire.ts, gpu/errors.ts): failures surface as clear errors,
// never as zeros or a hang; what it allocates is counted.
import { deepStrictEqual, rejects, throws } from "node:assert";
import { Gpu, type Precision } from "../../gpu/device.ts";
import { GpuError } from "../../gpu/errors.ts";
import { Network } from "../../layers/network.ts";
import { deno, TINY } from "../helpers.ts";

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
