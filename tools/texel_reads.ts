/**
 * The GEMM core's packed multiply (`kernels/gemm/block_wgsl.ts`) reading its textures sampled and
 * as read-only storage textures (`Gpu.texelRead`), side by side: each tiling on a device of each
 * kind, alternating rounds, the fastest of each. On llvmpipe the texel fetches bound these
 * kernels, so how a texture is read decides their rate (docs/performance.md).
 *
 *   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/texel_reads.ts [ROWS,COLS,DEPTH] [ROUNDS]
 *
 * With MESA_SHADER_CACHE_DISABLE=true its compile column is a fresh machine's compile time.
 *
 * The default shape is conv3's forward GEMM at batch 32 (384 x 5408 x 2304).
 *
 * @module
 */
import { Gpu } from "../gpu/device.ts";
import { type Dispatch, type TexelRead, textureKind } from "../gpu/launch.ts";
import { gemmWgsl } from "../kernels/gemm/core.ts";
import { PACKED_WIDTH } from "../kernels/gemm/pack_wgsl.ts";
import { GEMM_TILES, type GemmTile, gemmWorkgroups } from "../kernels/gemm/tiles.ts";

const [rows, cols, depth] = (Deno.args[0] ?? "384,5408,2304").split(",").map(Number);
const rounds = Number(Deno.args[1] ?? 3);
if (![rows, cols, depth].every((n) => Number.isInteger(n) && n > 0) || depth % 4) {
  console.error("usage: tools/texel_reads.ts [ROWS,COLS,DEPTH (a multiple of 4)] [ROUNDS]");
  Deno.exit(2);
}
const steps = depth / 4;
const TILES: [string, Exclude<GemmTile, { kind: "workgroup" }>][] = [
  ["8x8", { kind: "textures", tm: 8, tn: 8, threads: 64 }],
  ["16x16 (packed)", GEMM_TILES.packed],
  ["32x16 (tallPacked)", GEMM_TILES.tallPacked],
];

// C[m, n] into a buffer; the sizes the core asks for. The chunk is the whole GEMM.
const OPERANDS = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> c: array<f32>;
fn gemmRows() -> u32 { return ${rows}u; }
fn gemmCols() -> u32 { return ${cols}u; }
fn gemmDepth() -> u32 { return ${depth}u; }
fn storeC(m: u32, n: u32, v: f32) { c[m * ${cols}u + n] = v; }
`;

/** A device reading textures as `read`, with random packed operands and a launch per tiling. */
async function setUp(read: TexelRead) {
  const gpu = await Gpu.create({ texelRead: read });
  const texture = (lines: number) => {
    const height = Math.ceil(lines * steps / PACKED_WIDTH);
    const t = gpu.scratchTexture(PACKED_WIDTH, height, "operand");
    const data = Float32Array.from({ length: PACKED_WIDTH * height * 4 }, () => Math.random());
    gpu.device.queue.writeTexture({ texture: t }, data, { bytesPerRow: PACKED_WIDTH * 16 }, [
      PACKED_WIDTH,
      height,
    ]);
    return t;
  };
  const [a, b] = [texture(rows), texture(cols)];
  const c = gpu.buffer(rows * cols * 4, "C");
  const chunk = gpu.uniform([0, rows, 0, cols], "chunk");
  const kinds = ["read_write", "uniform", textureKind(read), textureKind(read)] as const;
  const dispatches = TILES.map(([name, tile]) => {
    const wgsl = OPERANDS + gemmWgsl(tile, { binding: 1, texelRead: read });
    const pipeline = gpu.pipeline(`texel reads ${name}`, wgsl, kinds);
    const resources = [c, chunk, a.createView(), b.createView()];
    return gpu.dispatch(name, pipeline, resources, gemmWorkgroups(rows, cols, tile));
  });
  // lavapipe compiles at the first dispatch: that one's time less a replay's is the compile.
  const compileMs = [];
  for (const d of dispatches) {
    const first = await timed(gpu, [d]), replay = await timed(gpu, [d]);
    compileMs.push(first - replay);
  }
  await gpu.check();
  return { gpu, dispatches, compileMs };
}

/** Milliseconds `dispatches` take, waited for. */
async function timed(gpu: Gpu, dispatches: Dispatch[]): Promise<number> {
  const started = performance.now();
  gpu.run(dispatches);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - started;
}

const devices = [await setUp("sampled"), await setUp("storage")];
const best = devices.map(() => TILES.map(() => Infinity));
for (let round = 0; round < rounds; round++) {
  for (const [i, { gpu, dispatches }] of devices.entries()) {
    for (const [j, d] of dispatches.entries()) {
      best[i][j] = Math.min(best[i][j], await timed(gpu, [d, d]) / 2);
    }
  }
}
const rate = (ms: number) => (2 * rows * cols * depth / ms / 1e6).toFixed(2);
console.log(
  `${devices[0].gpu.description}: ${rows} x ${cols} x ${depth}, fastest of ${rounds} rounds`,
);
console.log(
  "tiling               sampled ms  GFLOP/s  compile ms   storage ms  GFLOP/s  compile ms",
);
for (const [j, [name]] of TILES.entries()) {
  const cells = devices.map(({ compileMs }, i) =>
    `${best[i][j].toFixed(1).padStart(12)} ${rate(best[i][j]).padStart(8)} ${
      compileMs[j].toFixed(0).padStart(11)
    }`
  );
  console.log(`${name.padEnd(18)} ${cells.join(" ")}`);
}
for (const { gpu } of devices) gpu.destroy();
