/**
 * The kernels one at a time, on a model's shapes, in the spirit of llm.c's dev/cuda: each layer's
 * kernels recorded alone (the GEMM kernels once with the tiling the adapter picks and once with
 * each candidate tiling, side by side), then timed ({@linkcode benchKernels}, `deno task
 * bench:kernels`) or printed as WGSL (`deno task wgsl`).
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { joinLaunches, type Launch } from "../gpu/launch.ts";
import { Tensor } from "../gpu/tensor.ts";
import { conv2dBackwardInput } from "../kernels/conv2d_backward_input.ts";
import { conv2dBackwardWeight } from "../kernels/conv2d_backward_weight.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { reluBackward } from "../kernels/relu_backward.ts";
import { sgdUpdate } from "../kernels/sgd_update.ts";
import { softmaxCrossEntropy } from "../kernels/softmax_cross_entropy.ts";
import { candidateTiles, type GemmTile } from "../kernels/gemm/tiles.ts";
import { buildLayers, microBatchLimit } from "../layers/build.ts";
import { Conv2d } from "../layers/conv2d.ts";
import type { Layer } from "../layers/layer.ts";
import { lrnPoolAt } from "../layers/fusion.ts";
import type { ModelConfig } from "../layers/models.ts";
import { timeDispatches } from "./clock.ts";

/** One kernel of one layer, recorded in one variant. */
export interface KernelCase {
  /** The layer's name (or "loss" for the softmax cross-entropy after the last layer). */
  layer: string;
  /** The kernel: its file's name under kernels/ (conv2d_forward, lrn_backward, ...). */
  kernel: string;
  /** The variant: the tiling, as "kind TMxTN" ("chosen" marks the adapter's pick); else the pass. */
  variant: string;
  /** Its launches. */
  launch: Launch;
  /** Floating-point operations of the launch, where it multiplies. */
  flops: number | null;
}

/** Which kernels {@linkcode kernelCases} records. */
export interface KernelFilter {
  /** Only these layers (names), or every layer. */
  layers?: readonly string[];
  /** Only these kernels (names), or every kernel. */
  kernels?: readonly string[];
  /**
   * The tilings of GEMM kernels: the adapter's pick and every candidate (default), or these
   * (`undefined` standing for the adapter's pick).
   */
  tiles?: readonly (GemmTile | undefined)[];
}

/**
 * A tiling in words.
 *
 * @example
 * ```ts
 * import { tileName } from "./kernels.ts";
 * console.log(tileName({ kind: "textures", tm: 16, tn: 16, threads: 64 })); // "textures 16x16"
 * ```
 */
export function tileName(tile: GemmTile): string {
  return tile.kind === "workgroup"
    ? `workgroup ${tile.bm}x${tile.bn} (${tile.tm}x${tile.tn})`
    : `${tile.kind} ${tile.tm}x${tile.tn}`;
}

/**
 * Records the kernels of `config`'s layers for `batch` examples (at most a micro-batch) on `gpu`,
 * on tensors of seeded values; runs once the forward launches whose saved state (pooling's
 * argmax) a kept backward kernel reads. Call `free` when done.
 *
 * @example
 * ```ts ignore
 * const { cases, free } = kernelCases(gpu, ALEXNET, 8, { layers: ["conv2"] });
 * ```
 */
export function kernelCases(
  gpu: Gpu,
  config: ModelConfig,
  batch: number,
  filter: KernelFilter = {},
): { batch: number; cases: KernelCase[]; free: () => void } {
  const layers = buildLayers(gpu, config.layers, config.input);
  const shapes = [config.input, ...layers.map((l) => l.outputShape)];
  const micro = Math.min(batch, microBatchLimit(gpu, config.name, shapes));
  const tensors: Tensor[] = [], cases: KernelCase[] = [], setup: Launch[] = [];
  const own = (t: Tensor) => {
    tensors.push(t); // freed with the cases
    return t;
  };
  const tensor = (shape: readonly number[], seed: number) =>
    own(Tensor.from(gpu, [micro, ...shape], seeded(micro * shape.reduce((a, b) => a * b), seed)));
  const wanted = (kernel: string) => filter.kernels?.includes(kernel) ?? true;
  layers.forEach((layer, i) => {
    if (filter.layers && !filter.layers.includes(layer.name)) return;
    const io = {
      x: tensor(layer.inputShape, 2 * i),
      y: tensor(layer.outputShape, 2 * i + 1),
      dy: tensor(layer.outputShape, 2 * i + 7),
      dx: i === 0 ? null : tensor(layer.inputShape, 2 * i + 9),
    };
    const recorded = layer instanceof Conv2d
      ? multiplyCases(gpu, layer, { ...io, own }, micro, filter.tiles)
      : elementwiseCases(layers, i, io, micro);
    const kept = recorded.filter((c) => wanted(c.kernel));
    cases.push(...kept);
    for (const c of recorded.filter((c) => !wanted(c.kernel))) {
      // A backward kernel reads what its forward launch saved (pooling's argmax).
      if (c.variant === "forward" && kept.length > 0) setup.push(c.launch);
      else free(c.launch);
    }
  });
  if (!filter.layers && wanted("softmax_cross_entropy")) {
    cases.push(lossCase(gpu, config, micro, tensor));
  }
  gpu.run(setup.flatMap((l) => l.dispatches));
  return {
    batch: micro,
    cases,
    free: () => {
      for (const l of setup) free(l);
      for (const c of cases) free(c.launch);
      for (const t of tensors) t.destroy();
      for (const l of layers) l.destroy();
    },
  };
}

interface LayerTensors {
  x: Tensor;
  y: Tensor;
  dy: Tensor;
  dx: Tensor | null;
}

/** A convolution's or dense layer's three GEMMs in each tiling, and its ReLU mask. */
function multiplyCases(
  gpu: Gpu,
  layer: Conv2d,
  { x, y, dy, dx, own }: LayerTensors & { own: (t: Tensor) => Tensor },
  batch: number,
  tiles?: readonly (GemmTile | undefined)[],
): KernelCase[] {
  const weight = layer.parameters.get(`${layer.name}.weight`)!;
  const bias = layer.parameters.get(`${layer.name}.bias`)!;
  const dWeight = own(Tensor.zeros(gpu, weight.shape)), dBias = own(Tensor.zeros(gpu, bias.shape));
  const common = { geometry: layer.geometry, batch };
  const flops = 2 * layer.macs * batch;
  const kernels = {
    conv2d_forward: (tile?: GemmTile) =>
      conv2dForward(gpu, { ...common, x, weight, bias, y, relu: layer.relu, tile }),
    conv2d_backward_input: (tile?: GemmTile) =>
      dx ? conv2dBackwardInput(gpu, { ...common, dy, weight, dx, tile }) : undefined,
    conv2d_backward_weight: (tile?: GemmTile) =>
      conv2dBackwardWeight(gpu, { ...common, x, dy, dWeight, dBias, accumulate: false, tile }),
  };
  const candidates = tiles ?? [undefined, ...candidateTiles(gpu.family, gpu.limits)];
  const cases: KernelCase[] = [];
  for (const [kernel, record] of Object.entries(kernels)) {
    for (const tile of candidates) {
      const launch = record(tile);
      if (!launch) continue;
      const variant = tile ? tileName(tile) : `chosen (${tileName(launch.tile)})`;
      cases.push({ layer: layer.name, kernel, variant, launch, flops });
    }
  }
  if (layer.relu && !layer.reluMaskedAfter) { // else the layer after it masks the gradient
    const launch = reluBackward(gpu, { y, dy, count: dy.size });
    cases.push({ layer: layer.name, kernel: "relu_backward", variant: "", launch, flops: null });
  }
  cases.push({
    layer: layer.name,
    kernel: "sgd_update",
    variant: "",
    launch: update(),
    flops: null,
  });
  return cases;

  // The step's update of the weight and bias; a zero learning rate and momentum leave them as they are.
  function update(): Launch {
    const hyper = gpu.buffer(16, "bench hyper", GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const launches = [[weight, dWeight], [bias, dBias]].map(([parameter, gradient]) => {
      const velocity = own(Tensor.zeros(gpu, parameter.shape));
      return sgdUpdate(gpu, { weight: parameter, velocity, gradient, hyper });
    });
    const joined = joinLaunches(launches);
    return { dispatches: joined.dispatches, buffers: [...joined.buffers, hyper] };
  }
}

/**
 * A layer without parameters: its forward kernel and its backward kernel, as training runs them.
 * An LRN followed by max-pooling runs in the pooling's kernels (see layers/fusion.ts): its own
 * kernels, and the pooling's own backward kernel where the LRN's takes it, are variants "alone".
 */
function elementwiseCases(layers: readonly Layer[], i: number, io: LayerTensors, batch: number) {
  const layer = layers[i];
  const y = layer.inPlace ? io.x : io.y, dx = layer.inPlace ? io.dy : io.dx;
  const args = { x: io.x, y, dy: io.dy, dx, batch, accumulate: false };
  const named = (launch: Launch, variant: string): KernelCase => {
    const kernel = launch.dispatches[0]?.pipeline.key.split(":")[0] ?? "";
    return { layer: layer.name, kernel, variant, launch, flops: null };
  };
  const pair = lrnPoolAt(layers, i), after = lrnPoolAt(layers, i - 1);
  const forward = after
    ? after.pool.forwardAfter(after.lrn, io.x, y, batch, true)
    : layer.forward(io.x, y, batch, true);
  const cases = [
    named(forward, pair ? "alone" : "forward"),
    named(
      layer.backward({ ...args, forward }),
      pair?.backward || after?.backward ? "alone" : "backward",
    ),
    ...after?.backward
      ? [named(after.lrn.backwardThrough(after.pool, { ...args, forward }), "backward")]
      : [],
  ];
  return cases.filter((c) => c.launch.dispatches.length > 0);
}

/** The softmax cross-entropy after the last layer. */
function lossCase(
  gpu: Gpu,
  config: ModelConfig,
  batch: number,
  tensor: (shape: readonly number[], seed: number) => Tensor,
): KernelCase {
  const z = tensor([config.classes], 90), dz = tensor([config.classes], 91);
  const losses = tensor([2], 92), labels = gpu.buffer(batch * 4, "labels");
  const launch = softmaxCrossEntropy(gpu, { z, labels, dz, losses, rows: batch });
  launch.set(batch, 1 / batch);
  launch.buffers.push(labels);
  return { layer: "loss", kernel: "softmax_cross_entropy", variant: "", launch, flops: null };
}

function free(launch: Launch): void {
  for (const b of launch.buffers) b.destroy();
}

/** `n` values in [-1, 1) from `seed`, spread so that pools and masks see distinct values. */
function seeded(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin((i + 1) * 12.9898 + seed * 78.233) % 1;
  return out;
}

/** One kernel's figures. */
export interface KernelBench {
  /** The layer. */
  layer: string;
  /** The kernel. */
  kernel: string;
  /** Its variant ("" where it has one). */
  variant: string;
  /** Milliseconds per launch. */
  ms: number;
  /** GFLOP/s where it multiplies. */
  gflops: number | null;
  /** Milliseconds of its first run beyond a replay: compilation. */
  compileMs: number;
}

/**
 * Times each kernel of `config` at `batch` (at most a micro-batch), variants side by side, each
 * replayed `repeats` times in one pass.
 *
 * @example
 * ```ts ignore
 * console.log(formatKernels(await benchKernels(gpu, ALEXNET, 8, 3, { layers: ["fc6"] })));
 * ```
 */
export async function benchKernels(
  gpu: Gpu,
  config: ModelConfig,
  batch: number,
  repeats: number,
  filter: KernelFilter = {},
): Promise<{ batch: number; rows: KernelBench[] }> {
  const { batch: micro, cases, free } = kernelCases(gpu, config, batch, filter);
  try {
    const rows: KernelBench[] = [];
    for (const c of cases) {
      const { ms, compileMs } = await timeDispatches(gpu, c.launch.dispatches, repeats);
      const gflops = c.flops === null ? null : c.flops / ms / 1e6;
      rows.push({ layer: c.layer, kernel: c.kernel, variant: c.variant, ms, gflops, compileMs });
    }
    return { batch: micro, rows };
  } finally {
    free();
  }
}

/**
 * The figures as a table.
 *
 * @example
 * ```ts
 * import { formatKernels } from "./kernels.ts";
 * console.log(formatKernels("alexnet", 8, [{ layer: "fc6", kernel: "conv2d_forward",
 *   variant: "registers 16x8", ms: 30, gflops: 10, compileMs: 5000 }]));
 * ```
 */
export function formatKernels(model: string, batch: number, rows: readonly KernelBench[]): string {
  const width = Math.max(...rows.map((r) => r.variant.length), 7);
  const kernelWidth = Math.max(...rows.map((r) => r.kernel.length), 6);
  const lines = [
    `${model} at batch ${batch}: each kernel alone, variants side by side`,
    `layer  ${"kernel".padEnd(kernelWidth)}  ${
      "variant".padEnd(width)
    }  ms/launch   GFLOP/s  compile ms`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.layer.padEnd(6)} ${r.kernel.padEnd(kernelWidth)}  ${r.variant.padEnd(width)}  ` +
        `${r.ms.toFixed(2).padStart(9)} ${
          (r.gflops === null ? "" : r.gflops.toFixed(2)).padStart(9)
        } ` +
        `${r.compileMs.toFixed(0).padStart(11)}`,
    );
  }
  return lines.join("\n");
}
