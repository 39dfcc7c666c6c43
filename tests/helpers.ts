/**
 * Shared test helpers: the device every test of a process shares, seeded data, tolerance checks,
 * the one tiny test network and the one way to run a subprocess.
 */
import type { Dataset } from "../data/dataset.ts";
import { Gpu, type Precision } from "../gpu/device.ts";
import type { TexelRead } from "../gpu/launch.ts";
import { type Conv2dGeometry, conv2dOutputSize } from "../kernels/conv2d_geometry.ts";
import { GEMM_TILES, type GemmTile } from "../kernels/gemm/tiles.ts";
import type { ModelConfig } from "../layers/models.ts";
import { Network, type NetworkOptions } from "../layers/network.ts";

const shared = new Map<string, Gpu>();

/** Throws `message` unless `condition` (node:assert's `ok`, without node: for the browser). */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new Error(message);
}

/** Throws unless `actual` is `expected` (Object.is). */
export function assertEquals<T>(actual: T, expected: T, what = "value"): void {
  if (!Object.is(actual, expected)) throw new Error(`${what}: got ${actual}, expected ${expected}`);
}

/** A named check: Deno's tests register it, and the browser tests run some in Chromium. */
export type Check = readonly [name: string, run: () => Promise<void>];

/**
 * Runs `body` on the test process's device of `precision` (reading textures as `texelRead` says;
 * by default as the adapter's default does), failing on any WebGPU error it raised. One device
 * (per precision and texel read) serves every test of a process: with a device per test, Deno crashed
 * at exit, after the tests had passed, in 2 of 12 runs here (heap corruption in the driver's
 * teardown).
 */
export async function withGpu(
  body: (gpu: Gpu) => Promise<void> | void,
  precision: Precision = "f32",
  texelRead?: TexelRead,
): Promise<void> {
  const key = `${precision}:${texelRead}`;
  let gpu = shared.get(key);
  if (!gpu) shared.set(key, gpu = await Gpu.create({ precision, texelRead }));
  await body(gpu);
  await gpu.check();
}

/** A seeded uniform generator on [0, 1) (mulberry32): tests are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` seeded random images of `shape`, labelled 0, 1, 2, 0, ... of three classes. */
export function randomDataset(
  shape: [number, number, number],
  count: number,
  seed: number,
): Dataset {
  const next = rng(seed);
  return {
    count,
    shape,
    images: Uint8Array.from({ length: count * shape[0] * shape[1] * shape[2] }, () => next() * 256),
    labels: Int32Array.from({ length: count }, (_, i) => i % 3),
    classes: ["a", "b", "c"],
  };
}

/** `n` values uniform in [-scale, scale) from `seed`. */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

/**
 * Asserts |got - want| <= atol + rtol * |want| elementwise, naming the first failing index and
 * the worst error.
 */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4, what = "values" } = {},
): void {
  if (got.length !== want.length) {
    throw new Error(`${what}: length ${got.length} != expected ${want.length}`);
  }
  let worst = 0, worstAt = -1, bad = 0, firstBad = -1;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const ok = err <= atol + rtol * Math.abs(want[i]);
    if (!ok || Number.isNaN(got[i])) {
      bad++;
      if (firstBad < 0) firstBad = i;
    }
    if (err > worst || Number.isNaN(err)) {
      worst = err;
      worstAt = i;
    }
  }
  if (bad > 0) {
    throw new Error(
      `${what}: ${bad}/${got.length} outside atol ${atol} + rtol ${rtol}; first at ${firstBad} ` +
        `(got ${got[firstBad]}, want ${want[firstBad]}); worst at ${worstAt} (error ${worst})`,
    );
  }
}

/** Seeded operands of a convolution case (input, weight, bias, output gradient) and its shapes. */
export function convCaseData(g: Conv2dGeometry, batch: number) {
  const [oh, ow] = conv2dOutputSize(g);
  const wShape = [g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW];
  return {
    oh,
    ow,
    wShape,
    xs: randomArray(batch * g.inChannels * g.height * g.width, 1),
    ws: randomArray(wShape.reduce((a, b) => a * b), 2),
    bs: randomArray(g.outChannels, 3),
    dys: randomArray(batch * g.outChannels * oh * ow, 4),
  };
}

/** A small 3-to-5-channel 3x3 convolution of a 7x7 input, with `partial` overriding. */
export function convGeometry(partial: Partial<Conv2dGeometry>): Conv2dGeometry {
  return {
    inChannels: 3,
    height: 7,
    width: 7,
    outChannels: 5,
    kernelH: 3,
    kernelW: 3,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    groups: 1,
    ...partial,
  };
}

/**
 * The convolution shapes every convolution kernel is tested on: none a multiple of a tile;
 * batch 1 and more; stride, padding, groups, rectangles; a dense layer as a 1x1 convolution.
 * Each is [name, geometry, batch, fused ReLU]; {@linkcode tilingsOf} says in which tilings.
 */
export const CONV_CASES: [string, Conv2dGeometry, number, boolean][] = [
  ["1x1 kernel, batch 1", convGeometry({ kernelH: 1, kernelW: 1 }), 1, false],
  ["3x3 pad 1, batch 3, ReLU", convGeometry({ padH: 1, padW: 1 }), 3, true],
  [
    "stride 4, 11x11 (conv1-like)",
    convGeometry({ height: 31, width: 29, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4 }),
    2,
    true,
  ],
  [
    "groups 2, pad 2, 5x5 (conv2-like)",
    convGeometry({
      inChannels: 6,
      outChannels: 10,
      kernelH: 5,
      kernelW: 5,
      padH: 2,
      padW: 2,
      groups: 2,
    }),
    2,
    true,
  ],
  [
    "groups 3, rectangular kernel and stride",
    convGeometry({
      inChannels: 9,
      outChannels: 6,
      height: 9,
      width: 8,
      kernelH: 3,
      kernelW: 2,
      strideH: 2,
      strideW: 1,
      padH: 1,
      groups: 3,
    }),
    3,
    false,
  ],
  [
    "8 and 4 channels a group (packed operands gather B), stride 2, pad 2, 5x5, batch 1",
    convGeometry({
      inChannels: 16,
      outChannels: 8,
      height: 11,
      width: 9,
      kernelH: 5,
      kernelW: 5,
      strideH: 2,
      strideW: 2,
      padH: 2,
      padW: 2,
      groups: 2,
    }),
    1,
    true,
  ],
  [
    "64 channels a group in 2 groups, pad 1 (packed operands gather B a tap at a time), batch 2",
    convGeometry({ inChannels: 128, outChannels: 64, width: 6, padH: 1, padW: 1, groups: 2 }),
    2,
    true,
  ],
  [
    "33 channels padded to 36, stride 2 (B gathered a tap at a time), batch 3",
    convGeometry({ inChannels: 33, outChannels: 6, height: 8, strideH: 2, strideW: 2, padW: 1 }),
    3,
    false,
  ],
  [
    "batch 30, 4 -> 8 channels (the weight gradient gathers B a pixel at a time, images to 32)",
    convGeometry({ inChannels: 4, outChannels: 8, height: 5, width: 6, padH: 1, padW: 1 }),
    30,
    true,
  ],
  [
    "batch 5, 4 -> 8 channels (packed operands gather B; images pad to 8 in the weight gradient)",
    convGeometry({ inChannels: 4, outChannels: 8, padH: 1, padW: 1 }),
    5,
    true,
  ],
  [
    "dense as 1x1 over a flattened input (batch 3)",
    convGeometry({ inChannels: 70, height: 1, width: 1, kernelH: 1, kernelW: 1, outChannels: 130 }),
    3,
    true,
  ],
  [
    "dense read four channels a load, 72 -> 37, batch 1",
    convGeometry({ inChannels: 72, height: 1, width: 1, kernelH: 1, kernelW: 1, outChannels: 37 }),
    1,
    true,
  ],
  [
    "dense in 2 groups of 36 -> 12 channels read four a load, batch 11",
    convGeometry({
      inChannels: 72,
      height: 1,
      width: 1,
      kernelH: 1,
      kernelW: 1,
      outChannels: 24,
      groups: 2,
    }),
    11,
    false,
  ],
  [
    "few outputs summed over many pixels (the weight gradient splits its depth)",
    convGeometry({ inChannels: 1, outChannels: 8, height: 40, width: 40 }),
    3,
    true,
  ],
  [
    "many output channels and columns (several tiles each way)",
    convGeometry({ inChannels: 17, height: 13, width: 13, outChannels: 70, padH: 1, padW: 1 }),
    2,
    false,
  ],
];

/**
 * The tilings a convolution case runs with. Every case runs every workgroup tiling and the thin
 * register blocks, which compile in about a second: the operands' WGSL (loaders and epilogue, the
 * part that depends on the geometry) is the same whatever the tiling, so every geometry is checked
 * through both kinds of core. The 16-row blocks and packed operands take 5 to 15 s a kernel to
 * compile on llvmpipe, so they run on the cases that stress them: packed operands on every
 * geometry whose operands they gather in place (a padded input, groups, stride and padding, a
 * batch padded to whole texels, vec4 loads), the wider blocks across several blocks each way and
 * with vec4 loads, and mirrored operands on the dense layers that read vec4s.
 */
export function tilingsOf(name: string): [string, GemmTile][] {
  const names: (keyof typeof GEMM_TILES)[] = ["wide", "tall", "flat", "thinBlocks"];
  if (PACKED_CASES.has(name)) names.push("packed", "tallPacked", "thinPacked");
  if (BLOCK_CASES.has(name)) names.push("blocks", "narrowBlocks");
  if (MIRRORED_CASES.has(name)) names.push("mirrored", "thinMirrored");
  return names.map((n) => [n, GEMM_TILES[n]]);
}

/** The cases run with packed operands (see {@linkcode tilingsOf}). */
export const PACKED_CASES: ReadonlySet<string> = new Set([
  "stride 4, 11x11 (conv1-like)",
  "8 and 4 channels a group (packed operands gather B), stride 2, pad 2, 5x5, batch 1",
  "64 channels a group in 2 groups, pad 1 (packed operands gather B a tap at a time), batch 2",
  "33 channels padded to 36, stride 2 (B gathered a tap at a time), batch 3",
  "batch 30, 4 -> 8 channels (the weight gradient gathers B a pixel at a time, images to 32)",
  "batch 5, 4 -> 8 channels (packed operands gather B; images pad to 8 in the weight gradient)",
  "dense in 2 groups of 36 -> 12 channels read four a load, batch 11",
  "few outputs summed over many pixels (the weight gradient splits its depth)",
  "many output channels and columns (several tiles each way)",
]);

/** The cases run with mirrored operands: dense layers read as vectors (see {@linkcode tilingsOf}). */
export const MIRRORED_CASES: ReadonlySet<string> = new Set([
  "dense read four channels a load, 72 -> 37, batch 1",
  "dense in 2 groups of 36 -> 12 channels read four a load, batch 11",
]);

/** The cases run with 16 x 16 and 16 x 8 register blocks (see {@linkcode tilingsOf}). */
export const BLOCK_CASES: ReadonlySet<string> = new Set([
  "dense in 2 groups of 36 -> 12 channels read four a load, batch 11",
  "few outputs summed over many pixels (the weight gradient splits its depth)",
  "many output channels and columns (several tiles each way)",
]);

/**
 * The tiny test network: every kind of layer, and both towers' shapes (a grouped conv2, LRN in
 * two groups), so that it splits over two devices.
 */
export const TINY: ModelConfig = {
  name: "tiny",
  input: [1, 8, 8],
  classes: 4,
  layers: [
    { kind: "conv", name: "conv1", out: 6, kernel: 3, pad: 1 },
    { kind: "lrn", name: "lrn1", params: { size: 3, alpha: 1e-4, beta: 0.75, k: 2, groups: 2 } },
    { kind: "maxpool", name: "pool1", size: 3, stride: 2 },
    { kind: "conv", name: "conv2", out: 8, kernel: 3, pad: 1, groups: 2 },
    { kind: "dense", name: "fc1", out: 16 },
    { kind: "dropout", name: "drop1", p: 0.5 },
    { kind: "dense", name: "fc2", out: 4, relu: false },
  ],
};

/**
 * Two of the tiny network's layers, conv2 and fc1 (a grouped convolution and a dense layer read
 * four channels a load): what autotuning tests tune, half the kernels to compile per candidate.
 */
export const TUNED: ModelConfig = {
  name: "tuned",
  input: [6, 3, 3],
  classes: 16,
  layers: TINY.layers.filter((l) => l.name === "conv2" || l.name === "fc1"),
};

/** Four classes of 8x8 images for {@linkcode TINY}: a bright quadrant, plus noise. */
export function quadrants(n: number, seed: number): { input: Float32Array; labels: Int32Array } {
  const next = rng(seed);
  const input = new Float32Array(n * 64), labels = new Int32Array(n);
  for (let e = 0; e < n; e++) {
    const label = Math.floor(next() * 4);
    labels[e] = label;
    for (let p = 0; p < 64; p++) {
      const r = p >> 3, c = p & 7;
      const inside = (r < 4) === (label < 2) && (c < 4) === (label % 2 === 0);
      input[e * 64 + p] = (inside ? 1 : 0) + 0.3 * (next() - 0.5);
    }
  }
  return { input, labels };
}

/**
 * `config` (by default {@linkcode TINY}) built on the test process's device of the precision asked
 * (f32 by default), and destroyed after `body`.
 */
export function withNetwork(
  body: (net: Network, gpu: Gpu) => Promise<void>,
  options: NetworkOptions & { config?: ModelConfig } = {},
): Promise<void> {
  const { config = TINY, precision, ...rest } = options;
  return withGpu(async (gpu) => {
    const net = await Network.create(config, { ...rest, gpu });
    try {
      await body(net, gpu);
    } finally {
      await net.destroy();
    }
  }, precision);
}

/** What a subprocess printed, and how it ended. */
export interface Output {
  code: number;
  /** The signal that ended the process, if one did (a crash prints nothing of its own). */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Runs `deno` with `args` (and `options`) to the end and decodes what it printed. */
export async function deno(
  args: string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Promise<Output> {
  return await run(Deno.execPath(), args, options);
}

/** Runs `command` with `args` to the end and decodes what it printed. */
export async function run(
  command: string | URL,
  args: string[],
  options: Omit<Deno.CommandOptions, "args"> = {},
): Promise<Output> {
  const out = await new Deno.Command(command, { ...options, args }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    signal: out.signal,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
  };
}

/** `deno run -A main.ts ...args`: the command line as a user runs it. */
export function cli(...args: string[]): Promise<Output> {
  return deno(["run", "-A", new URL("../main.ts", import.meta.url).pathname, ...args]);
}

/**
 * `tools/golden.py COMMAND ...args` with Debian's python3 (PyTorch, torchvision): the reference
 * runs; a failure throws with what it printed.
 */
export async function golden(...args: string[]): Promise<string> {
  const script = new URL("../tools/golden.py", import.meta.url).pathname;
  const out = await run("/usr/bin/python3", [script, ...args]);
  if (out.code !== 0) {
    throw new Error(`tools/golden.py ${args[0]} failed (python3-torch installed?):\n${out.stderr}`);
  }
  return out.stdout;
}

/**
 * `deno run -A main.ts ...args` started, not awaited: `until(n)` reads its stderr until `n`
 * progress lines have come (or it ended), `rest()` reads the remainder, `child` signals it.
 */
export function spawnCli(...args: string[]) {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, ...args],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const read = async (enough: () => boolean) => {
    while (!enough()) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    return text;
  };
  return {
    child,
    until: (lines: number) => read(() => (text.match(/img\/s/g) ?? []).length >= lines),
    rest: () => read(() => false),
    close: async () => {
      await reader.cancel();
      return await child.status;
    },
  };
}
