/**
 * ONNX Runtime's CPU inference as a peer (`bench --peer ort`): the fastest CPU inference a
 * JavaScript user can install, running this project's own network exported by `io/onnx.ts` with
 * the same weights. Used by the bench only; nothing in the library imports onnxruntime-node.
 *
 * @module
 */
import * as ort from "onnxruntime-node";
import { onnxModel } from "../io/onnx.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import type { ModelConfig } from "../layers/models.ts";
import { secondsPerCall } from "./clock.ts";
import type { PeerBench } from "./peers.ts";

/**
 * ONNX Runtime's inference images/s for `config` with `weights` at `batch` (each of `repeats`
 * calls after one untimed call), on every core; it does not train.
 *
 * @example
 * ```ts ignore
 * import { benchOrt } from "./ort.ts";
 * console.log(await benchOrt(net.config, await net.weights(), 32, 2)); // { name: "ONNX Runtime CPU ..." }
 * ```
 */
export async function benchOrt(
  config: ModelConfig,
  weights: ReadonlyMap<string, NamedTensor>,
  batch: number,
  repeats: number,
): Promise<PeerBench> {
  const threads = navigator.hardwareConcurrency;
  const session = await ort.InferenceSession.create(onnxModel(config, weights), {
    intraOpNumThreads: threads,
  });
  try {
    const size = config.input.reduce((a, b) => a * b, batch);
    const input = new ort.Tensor("float32", new Float32Array(size), [batch, ...config.input]);
    const seconds = await secondsPerCall(() => session.run({ input }), repeats);
    return {
      name: `ONNX Runtime CPU ${ort.env.versions.common} (${threads} threads)`,
      inference: batch / seconds,
      training: null,
    };
  } finally {
    await session.release();
  }
}
