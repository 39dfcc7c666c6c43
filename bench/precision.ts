/**
 * f16 against f32, side by side in one run: the same network with the same initial weights on an
 * f32 device and on an f16 one (`GpuOptions.precision`): inference and training images/s, and how
 * far the f16 device's logits are from the f32 device's.
 *
 * @module
 */
import type { Precision } from "../gpu/device.ts";
import type { ModelConfig } from "../layers/models.ts";
import { Network } from "../layers/network.ts";
import { secondsPerCall } from "./clock.ts";

/** One precision's figures. */
export interface PrecisionBench {
  /** What the GEMM core multiplied. */
  precision: Precision;
  /** Inference images/s at the batch. */
  inference: number;
  /** Training images/s at the batch. */
  training: number;
}

/** Both precisions' figures and the logits' difference. */
export interface PrecisionComparison {
  /** f32, then f16. */
  runs: PrecisionBench[];
  /** max |f16 logit - f32 logit| over max |f32 logit|, on the first batch (same weights). */
  logitsError: number;
}

/**
 * Measures `config` at `batch` in f32 and in f16 (the adapter must have `shader-f16`).
 *
 * @example
 * ```ts ignore
 * import { ALEXNET_SMALL } from "../mod.ts";
 * import { benchPrecision, formatPrecision } from "./precision.ts";
 * console.log(formatPrecision(await benchPrecision(ALEXNET_SMALL, 32, 2), 32));
 * ```
 */
export async function benchPrecision(
  config: ModelConfig,
  batch: number,
  repeats: number,
): Promise<PrecisionComparison> {
  const input = new Float32Array(batch * config.input.reduce((a, b) => a * b));
  for (let i = 0; i < input.length; i++) input[i] = Math.sin(i * 12.9898) * 0.5; // not all equal
  const labels = Int32Array.from({ length: batch }, (_, i) => i % config.classes);
  const runs: PrecisionBench[] = [];
  const logits: Float32Array[] = [];
  for (const precision of ["f32", "f16"] as const) {
    const net = await Network.create(config, { seed: 1, init: "he", precision });
    try {
      logits.push(await net.forward(input, batch)); // before any step: the same weights
      const inference = batch / await secondsPerCall(() => net.forward(input, batch), repeats);
      const training = batch / await secondsPerCall(() => net.trainStep(input, labels), repeats);
      runs.push({ precision, inference, training });
    } finally {
      await net.destroy();
    }
  }
  let error = 0, scale = 0;
  logits[0].forEach((want, i) => {
    error = Math.max(error, Math.abs(logits[1][i] - want));
    scale = Math.max(scale, Math.abs(want));
  });
  return { runs, logitsError: error / scale };
}

/**
 * The figures as lines, with f16's ratios to f32.
 *
 * @example
 * ```ts
 * import { formatPrecision } from "./precision.ts";
 * console.log(formatPrecision({ logitsError: 1e-3, runs: [
 *   { precision: "f32", inference: 100, training: 30 },
 *   { precision: "f16", inference: 90, training: 28 },
 * ] }, 32));
 * ```
 */
export function formatPrecision(r: PrecisionComparison, batch: number): string {
  const [f32, f16] = r.runs;
  const ratio = (a: number, b: number) => `${a.toFixed(1)} (x${(a / b).toFixed(2)})`;
  return [
    `precision at batch ${batch}: f32 inference ${f32.inference.toFixed(1)}, training ${
      f32.training.toFixed(1)
    } images/s; f16 inference ${ratio(f16.inference, f32.inference)}, training ${
      ratio(f16.training, f32.training)
    }`,
    `  f16's logits differ from f32's by ${
      r.logitsError.toExponential(1)
    } of their largest magnitude (same weights)`,
  ].join("\n");
}
