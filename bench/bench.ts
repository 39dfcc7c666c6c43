/**
 * `deno task bench`: per-layer forward and backward times, GFLOP/s and their fraction of this
 * adapter's ceiling (the best rate the GEMM core reached in the same run: probes of a square 1024
 * problem in every candidate tiling, and the layers themselves), and
 * whole-network images/s for inference and training, on this adapter. Each measurement replays
 * the launches `repeats` times in one pass: GPU time from timestamp queries where the adapter has
 * them, otherwise wall time with one wait (whose ~11 ms on CPU adapters the repeats spread).
 * Compile time (kernels compile at their first dispatch) is reported apart.
 *
 * @module
 */
import { encodePng } from "../data/image.ts";
import type { Dataset } from "../data/dataset.ts";
import { BatchLoader } from "../data/loader.ts";
import { storedSize } from "../data/open.ts";
import { colourPca } from "../data/statistics.ts";
import { WorkerPool } from "../data/workers.ts";
import type { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { hasTimestamps } from "../gpu/timing.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { candidateTiles } from "../kernels/gemm/tiles.ts";
import { Conv2d, Dense } from "../layers/conv2d.ts";
import { lrnPoolAt } from "../layers/fusion.ts";
import { recordTraining } from "../layers/plan.ts";
import type { ModelConfig } from "../layers/models.ts";
import type { Network } from "../layers/network.ts";
import { secondsPerCall, timeDispatches } from "./clock.ts";
import { tileName } from "./kernels.ts";

/** One layer's figures. */
export interface LayerBench {
  /** The layer's name. */
  name: string;
  /** Forward milliseconds per batch (0 where the next layer's kernel computes it: `forwardIn`). */
  forwardMs: number;
  /** The layer whose forward kernel computes this one's (an LRN pooled in one kernel). */
  forwardIn?: string;
  /** Backward milliseconds per batch (input and parameter gradients; 0 with `backwardIn`). */
  backwardMs: number;
  /** The layer whose backward kernel computes this one's (max-pooling after an LRN). */
  backwardIn?: string;
  /** Forward GFLOP/s (2 x multiply-adds), for layers that multiply. */
  forwardGflops: number | null;
  /** Backward GFLOP/s (4 x multiply-adds: two GEMMs, the first layer's one). */
  backwardGflops: number | null;
  /** Milliseconds of the first forward and backward beyond a replay: kernel compilation. */
  compileMs: number;
}

/** A whole run's figures. */
export interface BenchResult {
  /** Adapter, backend, runtime and sizes, so that runs can be compared. */
  setup: {
    adapter: string;
    backend: string;
    deno: string;
    model: string;
    /** What the GEMM core multiplies (`GpuOptions.precision`). */
    precision: string;
    batch: number;
    /**
     * The batch of the per-layer figures: `batch`, or the largest micro-batch whose tensors fit
     * the adapter's binding limits (the network runs a larger batch in micro-batches of it).
     */
    layerBatch: number;
    repeats: number;
    /** "gpu" (timestamp queries) or "wall". */
    clock: string;
  };
  /** The best rate the GEMM core reached in the run: what the layers are compared with. */
  ceiling: Ceiling;
  /** Per layer, in order. */
  layers: LayerBench[];
  /** Inference images per second at batch 1 and at `batch`; training at `batch`. */
  network: { inferenceBatch1: number; inference: number; training: number };
  /**
   * The CPU side, images per second with one worker per core: `decode`, a 500x375 PNG read from
   * disk, decoded and preprocessed to the stored size (the paper's 256 for alexnet); `batches`,
   * augmented batches built from stored images (crops, flips, colour noise, mean subtraction).
   */
  loader: { workers: number; decode: number; batches: number };
}

/** Images per second of the data pipeline for `config`'s input at `batch`. */
async function benchLoader(config: ModelConfig, batch: number, repeats: number) {
  const [c, h, w] = config.input, size = storedSize(h);
  const workers = navigator.hardwareConcurrency || 1;
  // A photo-sized PNG of smooth noise, written once and decoded `batch` times.
  const dir = await Deno.makeTempDir();
  const pool = new WorkerPool(workers);
  let decode, batches;
  try {
    const pixels = Uint8Array.from({ length: 500 * 375 * 3 }, (_, i) => (i * 7919) % 251);
    const file = `${dir}/photo.png`;
    await Deno.writeFile(file, encodePng(pixels, { width: 500, height: 375, channels: 3 }));
    const decodeOne = async () => {
      const r = await pool.run<{ error?: string }>({
        kind: "decode",
        path: file,
        channels: c as 1 | 3,
        size,
      });
      if (r.error) throw new Error(`bench: decoding failed: ${r.error}`);
    };
    const decodeAll = () => Promise.all(Array.from({ length: batch }, decodeOne));
    await decodeAll(); // warm up
    let started = performance.now();
    for (let r = 0; r < repeats; r++) await decodeAll();
    decode = batch * repeats / ((performance.now() - started) / 1000);

    const n = 2 * batch, stored = c * size * size;
    const d: Dataset = {
      count: n,
      shape: [c, size, size],
      images: Uint8Array.from({ length: n * stored }, (_, i) => (i * 31) % 256),
      labels: new Int32Array(n),
      classes: [],
    };
    const loader = new BatchLoader(d, workers);
    try {
      const pca = c === 3 ? colourPca(d) : undefined, mean = new Float32Array(stored);
      const indices = Int32Array.from({ length: batch }, (_, i) => i);
      const one = (step: number) =>
        loader.batch(indices, {
          mean,
          crop: [h, w],
          augment: { pad: 0, flip: true, seed: 1, step, pca },
        });
      await one(0);
      started = performance.now();
      // As the trainer runs it: one batch in flight per worker.
      await Promise.all(Array.from({ length: repeats * workers }, (_, r) => one(r + 1)));
      batches = batch * repeats * workers / ((performance.now() - started) / 1000);
    } finally {
      loader.close();
    }
  } finally {
    pool.close();
    await Deno.remove(dir, { recursive: true });
  }
  return { workers, decode, batches };
}

/** The best rate the GEMM core reached in a run, and where. */
export interface Ceiling {
  /** GFLOP/s: the most of any probe and of any layer's forward or backward pass. */
  gflops: number;
  /** What reached it: a probe ("1024^3 dense, registers 16x16") or a layer ("conv3 backward"). */
  source: string;
  /** Each probe with its fastest tiling. */
  probes: { name: string; tile: string; gflops: number }[];
}

/**
 * GFLOP/s of the GEMM core on n x n x n (n a square; 1024 by default) read two ways, each with
 * the fastest of the adapter's candidate tilings: as a dense layer at batch n (vector loads) and as
 * a 1x1 convolution of n channels over a sqrt(n) x sqrt(n) image (the convolutions' operand paths).
 */
async function gemmProbes(gpu: Gpu, repeats: number, n: number): Promise<Ceiling["probes"]> {
  const side = Math.sqrt(n);
  const dense = new Dense(gpu, "probe", [n, 1, 1], { out: n, relu: false });
  const conv = new Conv2d(gpu, "probe", [n, side, side], { out: n, kernel: 1, relu: false });
  const x = Tensor.zeros(gpu, [n, n], "probe input");
  const y = Tensor.zeros(gpu, [n, n], "probe output");
  const probes: Ceiling["probes"] = [];
  try {
    for (const [name, layer, batch] of [["dense", dense, n], ["1x1 conv", conv, 1]] as const) {
      const [weight, bias] = layer.parameters.values();
      let best = { name: `${n}^3 ${name}`, tile: "", gflops: 0 };
      for (const tile of candidateTiles(gpu.family, gpu.limits)) {
        const args = { geometry: layer.geometry, batch, x, weight, bias, y, relu: false, tile };
        const launch = conv2dForward(gpu, args);
        try {
          const { ms } = await timeDispatches(gpu, launch.dispatches, repeats);
          const gflops = (2 * n * n * n) / ms / 1e6;
          if (gflops > best.gflops) best = { ...best, tile: tileName(tile), gflops };
        } finally {
          for (const b of launch.buffers) b.destroy();
        }
      }
      probes.push(best);
    }
    return probes;
  } finally {
    for (const t of [dense, conv, x, y]) t.destroy();
  }
}

/** The ceiling of a run: the best of the probes and of the layers, so no layer exceeds it. */
function ceilingOf(probes: Ceiling["probes"], layers: readonly LayerBench[]): Ceiling {
  const reached = [
    ...probes.map((p) => ({ gflops: p.gflops, source: `${p.name}, ${p.tile}` })),
    ...layers.flatMap((l) => [
      { gflops: l.forwardGflops ?? 0, source: `${l.name} forward` },
      { gflops: l.backwardGflops ?? 0, source: `${l.name} backward` },
    ]),
  ];
  const best = reached.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  return { ...best, probes };
}

/**
 * Measures `net` at `batch`, the ceiling's probes `probe`^3 GEMMs (a square; 1024 by default:
 * small ones only for tests, whose probes would otherwise dominate their time).
 *
 * @example
 * ```ts ignore
 * import { createAlexNet } from "../mod.ts";
 * import { bench } from "./bench.ts";
 * const net = await createAlexNet({ model: "alexnet-small" });
 * console.log(await bench(net, 32, 2));
 * ```
 */
export async function bench(
  net: Network,
  batch: number,
  repeats: number,
  probe = 1024,
): Promise<BenchResult> {
  if (!Number.isInteger(Math.sqrt(probe))) throw new RangeError(`probe ${probe}: not a square`);
  const { config, tower } = net;
  if (!tower) throw new RangeError("bench times the layers of a network on one device");
  const gpu = tower.gpu;
  const layerBatch = Math.min(batch, tower.maxMicroBatch);
  const plan = recordTraining(gpu, tower.layers, config.input, layerBatch);
  plan.loss.set(layerBatch, 1 / layerBatch);
  const layers: LayerBench[] = [];
  for (let i = 0; i < tower.layers.length; i++) {
    const layer = tower.layers[i];
    const forward = await timeDispatches(gpu, plan.forward[i].dispatches, repeats);
    const backward = await timeDispatches(gpu, plan.backwardFirst[i].dispatches, repeats);
    const forwardMs = forward.ms, backwardMs = backward.ms;
    const flops = 2 * layer.macs * layerBatch;
    const gemms = i === 0 ? 1 : 2; // the first layer computes no input gradient
    layers.push({
      name: layer.name,
      forwardMs,
      ...lrnPoolAt(tower.layers, i) ? { forwardIn: tower.layers[i + 1].name } : {},
      ...lrnPoolAt(tower.layers, i - 1)?.backward ? { backwardIn: tower.layers[i - 1].name } : {},
      backwardMs,
      forwardGflops: layer.macs > 0 ? flops / forwardMs / 1e6 : null,
      backwardGflops: layer.macs > 0 ? gemms * flops / backwardMs / 1e6 : null,
      compileMs: forward.compileMs + backward.compileMs,
    });
  }
  const input = new Float32Array(batch * config.input.reduce((a, b) => a * b));
  const labels = new Int32Array(batch);
  const rate = async (n: number, step: () => Promise<unknown>) =>
    n / await secondsPerCall(step, repeats);
  const one = input.subarray(0, input.length / batch);
  const network = {
    inferenceBatch1: await rate(1, () => net.forward(one, 1)),
    inference: await rate(batch, () => net.forward(input, batch)),
    training: await rate(batch, () => net.trainStep(input, labels)),
  };
  for (const t of plan.owned) t.destroy();
  for (const b of plan.buffers) b.destroy();
  const loader = await benchLoader(config, batch, repeats);
  const ceiling = ceilingOf(await gemmProbes(gpu, repeats, probe), layers);
  return {
    setup: {
      adapter: gpu.description,
      backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
      deno: Deno.version.deno,
      model: config.name,
      precision: gpu.precision,
      batch,
      layerBatch,
      repeats,
      clock: hasTimestamps(gpu) ? "gpu" : "wall",
    },
    ceiling,
    layers,
    network,
    loader,
  };
}

/**
 * The figures as a table.
 *
 * @example
 * ```ts ignore
 * console.log(formatBench(await bench(net, 32, 2)));
 * ```
 */
export function formatBench(r: BenchResult, config?: ModelConfig): string {
  const s = r.setup;
  const micro = s.layerBatch < s.batch
    ? [`per layer at batch ${s.layerBatch}: the largest micro-batch within the binding limits`]
    : [];
  const lines = [
    `${s.model}${config ? ` (${config.input.join("x")})` : ""}${
      s.precision === "f16" ? ", f16 operands" : ""
    }, batch ${s.batch}, adapter ${s.adapter}, ` +
    `backend ${s.backend}, Deno ${s.deno}; ${
      s.clock === "gpu" ? "GPU time (timestamp queries)" : "wall time"
    }, ${s.repeats} replays per figure`,
    `ceiling: ${r.ceiling.gflops.toFixed(2)} GFLOP/s, the best of this run (${r.ceiling.source}; ` +
    `probes: ${r.ceiling.probes.map((p) => `${p.name} ${p.gflops.toFixed(2)}`).join(", ")})`,
    ...micro,
    "layer   forward ms  GFLOP/s  of ceiling  backward ms  GFLOP/s  of ceiling  compile ms",
  ];
  const g = (v: number | null) => (v === null ? "" : v.toFixed(2)).padStart(8);
  const c = (v: number | null) =>
    (v === null ? "" : `${(100 * v / r.ceiling.gflops).toFixed(0)}%`).padStart(11);
  for (const l of r.layers) {
    lines.push(
      `${l.name.padEnd(6)} ${
        (l.forwardIn ? `in ${l.forwardIn}` : l.forwardMs.toFixed(1)).padStart(11)
      } ${g(l.forwardGflops)} ` +
        `${c(l.forwardGflops)} ${
          (l.backwardIn ? `in ${l.backwardIn}` : l.backwardMs.toFixed(1)).padStart(12)
        } ${g(l.backwardGflops)} ` +
        `${c(l.backwardGflops)} ${l.compileMs.toFixed(0).padStart(11)}`,
    );
  }
  const n = r.network;
  lines.push(
    `inference: ${n.inferenceBatch1.toFixed(1)} images/s at batch 1, ${
      n.inference.toFixed(1)
    } at batch ${s.batch}; ` +
      `training: ${n.training.toFixed(1)} images/s at batch ${s.batch}`,
  );
  const l = r.loader;
  lines.push(
    `data (${l.workers} workers): ${l.decode.toFixed(1)} images/s decoded and preprocessed ` +
      `(500x375 PNG), ${l.batches.toFixed(1)} images/s of augmented batches`,
  );
  return lines.join("\n");
}

/**
 * Training images/s at `batch` with every layer trained and with `frozen` kept fixed, timed one
 * after the other on the same network: what freezing saves when fine-tuning. The network's own
 * frozen layers are restored after.
 *
 * @example
 * ```ts ignore
 * import { benchFrozen } from "./bench.ts";
 * console.log(await benchFrozen(net, 32, 2, ["conv1", "conv2"])); // { all: ..., frozen: ... }
 * ```
 */
export async function benchFrozen(
  net: Network,
  batch: number,
  repeats: number,
  frozen: readonly string[],
): Promise<{ all: number; frozen: number }> {
  const input = new Float32Array(batch * net.config.input.reduce((a, b) => a * b));
  const labels = new Int32Array(batch), before = net.frozen;
  const rate = async () =>
    batch / await secondsPerCall(() => net.trainStep(input, labels), repeats);
  try {
    await net.freeze([]);
    const all = await rate();
    await net.freeze(frozen);
    return { all, frozen: await rate() };
  } finally {
    await net.freeze(before);
  }
}
