/**
 * A tower in its own Worker with its own device: two devices driven from one JavaScript thread
 * serialise, so each lives in a worker and answers the scheduler's calls (`{ id, op, args }`)
 * with `{ id, result }` or `{ id, error }`, moving arrays as transferables.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { Gpu, type GpuOptions } from "../gpu/device.ts";
import { Tower, type TowerSpec } from "./tower.ts";

let gpu: Gpu | undefined;
let tower: Tower | undefined;

/** The calls a tower answers; `create` first. */
const calls: Record<string, (...args: never[]) => unknown> = {
  async create(spec: TowerSpec, options: GpuOptions) {
    gpu = await Gpu.create(options);
    tower = Tower.create(gpu, spec);
    return {
      description: gpu.description,
      maxMicroBatch: tower.maxMicroBatch,
      shapes: tower.shapes(),
    };
  },
  forward: (...a: Parameters<Tower["forward"]>) => tower!.forward(...a),
  backward: (...a: Parameters<Tower["backward"]>) => tower!.backward(...a),
  update: (...a: Parameters<Tower["update"]>) => tower!.update(...a),
  gradients: () => tower!.gradients(),
  setGradients: (...a: Parameters<Tower["setGradients"]>) => tower!.setGradients(...a),
  weights: () => tower!.weights(),
  setWeights: (...a: Parameters<Tower["setWeights"]>) => tower!.setWeights(...a),
  optimizerState: () => tower!.optimizerState(),
  loadOptimizerState: (...a: Parameters<Tower["loadOptimizerState"]>) =>
    tower!.loadOptimizerState(...a),
  destroy() {
    tower?.destroy();
    gpu?.destroy();
    tower = gpu = undefined;
  },
};

/** The array buffers of a result, moved rather than copied. */
function transferables(result: unknown): ArrayBuffer[] {
  if (result instanceof Float32Array) return [result.buffer as ArrayBuffer];
  if (result instanceof Map) {
    // Views of one buffer (the gathered gradients) share it: move it once.
    return [...new Set([...result.values()].flatMap(transferables))];
  }
  return [];
}

self.onmessage = async (event: MessageEvent<{ id: number; op: string; args: never[] }>) => {
  const { id, op, args } = event.data;
  try {
    const started = performance.now();
    const result = await calls[op](...args);
    const ms = performance.now() - started;
    self.postMessage({ id, result, ms }, transferables(result));
  } catch (e) {
    const error = e instanceof Error
      ? { name: e.name, message: e.message }
      : { message: String(e) };
    self.postMessage({ id, error });
  }
};
