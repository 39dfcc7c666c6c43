/**
 * How fast this adapter moves 75.5 MB (4096 x 1152 texels of four floats): kernels copying it
 * between storage buffers and rgba32float textures each way, kernels summing it from a storage
 * buffer and from a texture (lanes a row apart, lanes adjacent), and `copyBufferToTexture`. On
 * llvmpipe every storage-buffer access is a per-lane load or store, whose cost varies between CPUs:
 * where it is slow, so are kernels that read their operands from storage buffers, and mirrored
 * operands pay (docs/performance.md).
 *
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/storage_bandwidth.ts
 *
 * @module
 */
import { Gpu } from "../gpu/device.ts";

const WIDTH = 4096, HEIGHT = 1152, TEXELS = WIDTH * HEIGHT, MB = TEXELS * 16 / 1e6;
const gpu = await Gpu.create();
const device = gpu.device;
const buffers = [0, 1].map(() =>
  device.createBuffer({
    size: TEXELS * 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
  })
);
const textures = [0, 1].map(() =>
  device.createTexture({
    size: [WIDTH, HEIGHT],
    format: "rgba32float",
    usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING |
      GPUTextureUsage.COPY_DST,
  })
);

type Kind = "buffer" | "texture";
const declare: Record<Kind, [string, string]> = {
  buffer: [
    "@group(0) @binding(0) var<storage, read> a: array<vec4f>;",
    "@group(0) @binding(1) var<storage, read_write> b: array<vec4f>;",
  ],
  texture: [
    "@group(0) @binding(0) var a: texture_2d<f32>;",
    "@group(0) @binding(1) var b: texture_storage_2d<rgba32float, write>;",
  ],
};
const read: Record<Kind, (i: string) => string> = {
  buffer: (i) => `a[${i}]`,
  texture: (i) => `textureLoad(a, vec2i(i32((${i}) % ${WIDTH}u), i32((${i}) / ${WIDTH}u)), 0)`,
};
const write: Record<Kind, (i: string, v: string) => string> = {
  buffer: (i, v) => `b[${i}] = ${v};`,
  texture: (i, v) => `textureStore(b, vec2i(i32(${i} % ${WIDTH}u), i32(${i} / ${WIDTH}u)), ${v});`,
};
const every: [number, number] = [65535, Math.ceil(TEXELS / 64 / 65535)]; // an invocation a texel
const copy = (from: Kind, to: Kind) => ({
  name: `${from} to ${to}`,
  from,
  to,
  body: `let i = g.x + g.y * 65535u * 64u; if (i < ${TEXELS}u) { ${
    write[to]("i", read[from]("i"))
  } }`,
  groups: every,
});
// WIDTH sums of HEIGHT texels, an invocation each; the sums land in a buffer.
const sum = (from: Kind, lanes: "a row apart" | "adjacent") => ({
  name: `sum ${from}, neighbouring lanes ${lanes}`,
  from,
  to: "buffer" as const,
  body: `if (g.x >= ${WIDTH}u) { return; } var s = vec4f(0);
  for (var k = 0u; k < ${HEIGHT}u; k++) {
    s += ${read[from](lanes === "adjacent" ? `k * ${WIDTH}u + g.x` : `g.x * ${HEIGHT}u + k`)};
  }
  b[g.x] = s;`,
  groups: [WIDTH / 64, 1] as [number, number],
});
const kernels = [
  copy("buffer", "buffer"),
  copy("buffer", "texture"),
  copy("texture", "buffer"),
  copy("texture", "texture"),
  sum("buffer", "a row apart"),
  sum("buffer", "adjacent"),
  sum("texture", "a row apart"),
  sum("texture", "adjacent"),
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

const report = (name: string, ms: number) =>
  console.log(`${name.padEnd(44)} ${ms.toFixed(1).padStart(7)} ms ${(MB / ms).toFixed(2)} GB/s`);

console.log(`${gpu.description}: ${MB.toFixed(1)} MB, the fastest of 3 runs`);
for (const { name, from, to, body, groups } of kernels) {
  const code = `${declare[from][0]}\n${declare[to][1]}
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
      {
        binding: 0,
        resource: from === "buffer" ? { buffer: buffers[0] } : textures[0].createView(),
      },
      { binding: 1, resource: to === "buffer" ? { buffer: buffers[1] } : textures[1].createView() },
    ],
  });
  report(
    name,
    await fastest((encoder) => {
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...groups);
      pass.end();
    }),
  );
}
report(
  "copyBufferToTexture",
  await fastest((encoder) =>
    encoder.copyBufferToTexture({ buffer: buffers[0], bytesPerRow: WIDTH * 16 }, {
      texture: textures[0],
    }, [WIDTH, HEIGHT])
  ),
);
for (const b of buffers) b.destroy();
for (const t of textures) t.destroy();
gpu.destroy();
