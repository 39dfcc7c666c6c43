/**
 * Training checkpoints: one safetensors file holding the parameters (PyTorch names), the
 * optimizer's velocities (`velocity.NAME`) and, in its metadata, the trainer's state as JSON.
 * Written durably and atomically (a synced temporary file renamed over the old one): a crash at
 * any point leaves the previous checkpoint or the new one, never half of one.
 *
 * @module
 */
import type { NamedTensor } from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/files.ts";
import { parseSafetensors, serializeSafetensors } from "../io/safetensors.ts";

/** A checkpoint's contents. */
export interface Checkpoint<State> {
  /** Parameters by name. */
  weights: Map<string, NamedTensor>;
  /** Optimizer velocities by parameter name. */
  velocities: Map<string, NamedTensor>;
  /** The trainer's state (JSON-serialisable). */
  state: State;
}

const PREFIX = "velocity.";

/**
 * Saves a checkpoint to `path`.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const path = await Deno.makeTempFile();
 * const w = new Map([["fc.bias", { shape: [1], data: new Float32Array([2]) }]]);
 * await saveCheckpoint(path, { weights: w, velocities: w, state: { epoch: 3 } });
 * console.log((await loadCheckpoint<{ epoch: number }>(path)).state.epoch); // 3
 * ```
 */
export async function saveCheckpoint<State>(path: string, c: Checkpoint<State>): Promise<void> {
  const tensors = new Map(c.weights);
  for (const [name, t] of c.velocities) tensors.set(PREFIX + name, t);
  const bytes = serializeSafetensors(tensors, { format: "pt", trainer: JSON.stringify(c.state) });
  await writeFileAtomic(path, bytes);
}

/**
 * Loads a checkpoint written by {@linkcode saveCheckpoint}.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "./checkpoint.ts";
 * try {
 *   await loadCheckpoint("/nonexistent/checkpoint.safetensors");
 * } catch (e) {
 *   console.log((e as Error).name); // NotFound
 * }
 * ```
 */
export async function loadCheckpoint<State>(path: string): Promise<Checkpoint<State>> {
  const { tensors, metadata } = parseSafetensors(await Deno.readFile(path));
  if (metadata.trainer === undefined) {
    throw new RangeError(`${path}: not a training checkpoint (no trainer state)`);
  }
  const weights = new Map<string, NamedTensor>(), velocities = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) {
    if (name.startsWith(PREFIX)) velocities.set(name.slice(PREFIX.length), t);
    else weights.set(name, t);
  }
  return { weights, velocities, state: JSON.parse(metadata.trainer) as State };
}
