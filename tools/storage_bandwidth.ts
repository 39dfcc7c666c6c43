/**
 * How fast this adapter moves 75.5 MB (4096 x 1152 texels of four floats), four ways: a kernel
 * copying one storage buffer to another, a kernel storing it into an rgba32float texture, kernels
 * summing it (lanes a row apart, lanes adjacent) and `copyBufferToTexture`. On llvmpipe every
 * storage-buffer access is a per-lane load or store, whose cost varies between CPUs: where it is
 * slow, so are the register-block GEMMs and the packing kernels (docs/performance.md).
 *
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/storage_bandwidth.ts
 *
 * @module
 */
import { Gpu } from "../gpu/device.ts";

const WIDTH = 4096, HEIGHT = 1152, TEXELS = WIDTH * HEIGHT, MB = TEXELS * 16 / 1e6;
const gpu = await Gpu.create();
const device = gpu.device;
const source = device.createBuffer({
  size: TEXELS * 16,
  usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
});
const target = device.createBuffer({ size: TEXELS * 16, usage: GPUBufferUsage.STORAGE });
const texture = device.createTexture({
  size: [WIDTH, HEIGHT],
  format: "rgba32float",
  usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
});
const index = "let i = g.x + g.y * 65535u * 64u;";
const kernels: [string, string, [number, number]][] = [
  ["storage buffer to storage buffer", `${index} if (i < ${TEXELS}u) { b[i] = a[i]; }`, [
    65535,
    Math.ceil(TEXELS / 64 / 65535),
  ]],
  [
    "storage buffer to texture",
    `${index} if (i < ${TEXELS}u) { textureStore(t, vec2i(i32(i % ${WIDTH}u), i32(i / ${WIDTH}u)), a[i]); }`,
    [65535, Math.ceil(TEXELS / 64 / 65535)],
  ],
  [
    "sum, neighbouring lanes a row apart",
    `if (g.x >= ${WIDTH}u) { return; } var s = vec4f(0);
  for (var k = 0u; k < ${HEIGHT}u; k++) { s += a[g.x * ${HEIGHT}u + k]; } b[g.x] = s;`,
    [WIDTH / 64, 1],
  ],
  [
    "sum, neighbouring lanes adjacent",
    `if (g.x >= ${WIDTH}u) { return; } var s = vec4f(0);
  for (var k = 0u; k < ${HEIGHT}u; k++) { s += a[k * ${WIDTH}u + g.x]; } b[g.x] = s;`,
    [WIDTH / 64, 1],
  ],
];

/** The fastest of three timed runs of `encode`, after one that warms up (and compiles). */
async function fastest(encode: (encoder: GPUCommandEncoder) => void): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run < 4; run++) {
    const started = performance.now();
    const encoder = device.createCommandEncoder();
    encode(encoder);
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    if (run > 0) times.push(performance.now() - started);
  }
  return Math.min(...times);
}

console.log(`${gpu.description}: ${MB.toFixed(1)} MB, the fastest of 3 runs`);
for (const [name, body, [x, y]] of kernels) {
  const toTexture = name.endsWith("texture");
  const code = `@group(0) @binding(0) var<storage, read> a: array<vec4f>;
${
    toTexture
      ? "@group(0) @binding(1) var t: texture_storage_2d<rgba32float, write>;"
      : "@group(0) @binding(1) var<storage, read_write> b: array<vec4f>;"
  }
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  ${body}
}`;
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: source } },
      { binding: 1, resource: toTexture ? texture.createView() : { buffer: target } },
    ],
  });
  const ms = await fastest((encoder) => {
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    pass.end();
  });
  console.log(`${name.padEnd(38)} ${ms.toFixed(1).padStart(7)} ms ${(MB / ms).toFixed(2)} GB/s`);
}
const copy = await fastest((encoder) =>
  encoder.copyBufferToTexture({ buffer: source, bytesPerRow: WIDTH * 16 }, { texture }, [
    WIDTH,
    HEIGHT,
  ])
);
console.log(
  `${"copyBufferToTexture".padEnd(38)} ${copy.toFixed(1).padStart(7)} ms ${
    (MB / copy).toFixed(2)
  } GB/s`,
);
for (const b of [source, target]) b.destroy();
texture.destroy();
gpu.destroy();
