/**
 * `deno task bench`: per-layer forward and backward times and GFLOP/s, and whole-network
 * images/s for inference and training, on this adapter. Wall time: each measurement replays the
 * launches `repeats` times in one submit and waits once, so the ~11 ms cost of a wait on CPU
 * adapters is spread over the repeats.
 *
 * @module
 */
import type { Dispatch, Gpu } from "../gpu/device.ts";
import { recordTraining } from "../layers/plan.ts";
import type { ModelConfig, Network } from "../layers/network.ts";

/** One layer's figures. */
export interface LayerBench {
  /** The layer's name. */
  name: string;
  /** Forward milliseconds per batch. */
  forwardMs: number;
  /** Backward milliseconds per batch (input and parameter gradients). */
  backwardMs: number;
  /** Forward GFLOP/s (2 x multiply-adds), for layers that multiply. */
  forwardGflops: number | null;
  /** Backward GFLOP/s (4 x multiply-adds: two GEMMs, the first layer's one). */
  backwardGflops: number | null;
}

/** A whole run's figures. */
export interface BenchResult {
  /** Adapter, backend, runtime and sizes, so that runs can be compared. */
  setup: {
    adapter: string;
    backend: string;
    deno: string;
    model: string;
    batch: number;
    repeats: number;
  };
  /** Per layer, in order. */
  layers: LayerBench[];
  /** Inference images per second at batch 1 and at `batch`; training at `batch`. */
  network: { inferenceBatch1: number; inference: number; training: number };
}

/** Milliseconds per replay of `dispatches`, replayed `repeats` times in one submit. */
async function time(gpu: Gpu, dispatches: Dispatch[], repeats: number): Promise<number> {
  if (dispatches.length === 0) return 0;
  gpu.run(dispatches); // compile and warm up
  await gpu.device.queue.onSubmittedWorkDone();
  const all = Array.from({ length: repeats }, () => dispatches).flat();
  const started = performance.now();
  gpu.run(all);
  await gpu.device.queue.onSubmittedWorkDone();
  return (performance.now() - started) / repeats;
}

/**
 * Measures `net` at `batch`.
 *
 * @example
 * ```ts ignore
 * import { createAlexNet } from "../mod.ts";
 * import { bench } from "./bench.ts";
 * const net = await createAlexNet({ model: "alexnet-small" });
 * console.log(await bench(net, 32, 2));
 * ```
 */
export async function bench(net: Network, batch: number, repeats: number): Promise<BenchResult> {
  const { gpu, config } = net;
  const plan = recordTraining(gpu, net.layers, config.input, batch);
  plan.loss.set(batch, 1 / batch);
  const layers: LayerBench[] = [];
  for (let i = 0; i < net.layers.length; i++) {
    const layer = net.layers[i];
    const forwardMs = await time(gpu, plan.forward[i].dispatches, repeats);
    const backwardMs = await time(gpu, plan.backwardFirst[i].dispatches, repeats);
    const flops = 2 * layer.macs * batch;
    const gemms = i === 0 ? 1 : 2; // the first layer computes no input gradient
    layers.push({
      name: layer.name,
      forwardMs,
      backwardMs,
      forwardGflops: layer.macs > 0 ? flops / forwardMs / 1e6 : null,
      backwardGflops: layer.macs > 0 ? gemms * flops / backwardMs / 1e6 : null,
    });
  }
  const input = new Float32Array(batch * config.input.reduce((a, b) => a * b));
  const labels = new Int32Array(batch);
  const rate = async (n: number, step: () => Promise<unknown>) => {
    await step(); // compile
    const started = performance.now();
    for (let i = 0; i < repeats; i++) await step();
    return n * repeats / ((performance.now() - started) / 1000);
  };
  const one = input.subarray(0, input.length / batch);
  const network = {
    inferenceBatch1: await rate(1, () => net.forward(one, 1)),
    inference: await rate(batch, () => net.forward(input, batch)),
    training: await rate(batch, () => net.trainStep(input, labels)),
  };
  for (const t of plan.owned) t.destroy();
  for (const b of plan.buffers) b.destroy();
  return {
    setup: {
      adapter: gpu.description,
      backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default",
      deno: Deno.version.deno,
      model: config.name,
      batch,
      repeats,
    },
    layers,
    network,
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
  const lines = [
    `${s.model}${
      config ? ` (${config.input.join("x")})` : ""
    }, batch ${s.batch}, adapter ${s.adapter}, ` +
    `backend ${s.backend}, Deno ${s.deno}; wall time, ${s.repeats} replays per figure`,
    "layer   forward ms  GFLOP/s  backward ms  GFLOP/s",
  ];
  const g = (v: number | null) => (v === null ? "" : v.toFixed(2)).padStart(8);
  for (const l of r.layers) {
    lines.push(
      `${l.name.padEnd(6)} ${l.forwardMs.toFixed(1).padStart(11)} ${g(l.forwardGflops)} ` +
        `${l.backwardMs.toFixed(1).padStart(12)} ${g(l.backwardGflops)}`,
    );
  }
  const n = r.network;
  lines.push(
    `inference: ${n.inferenceBatch1.toFixed(1)} images/s at batch 1, ${
      n.inference.toFixed(1)
    } at batch ${s.batch}; ` +
      `training: ${n.training.toFixed(1)} images/s at batch ${s.batch}`,
  );
  return lines.join("\n");
}
