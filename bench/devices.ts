/**
 * One device against two, in both modes, measured side by side in one run: inference and
 * training images/s, and the part of a training step spent in exchanges between the devices.
 *
 * @module
 */
import type { ModelConfig } from "../layers/models.ts";
import { createAlexNet, type Network, type Parallelism } from "../layers/network.ts";
import { secondsPerCall } from "./clock.ts";

/** One device setup's figures. */
export interface DevicesBench {
  /** "1 device", "2 devices, model parallel" (with and without overlap) or "..., data parallel". */
  setup: string;
  /** Inference images/s at the batch. */
  inference: number;
  /** Training images/s at the batch. */
  training: number;
  /** Milliseconds per training step outside the slower device's work (null on one device). */
  exchangeMs: number | null;
  /** Milliseconds per training step. */
  stepMs: number;
}

/**
 * Measures `config` at `batch` on one device and on two in each mode.
 *
 * @example
 * ```ts ignore
 * import { ALEXNET_SMALL } from "../mod.ts";
 * import { benchDevices, formatDevices } from "./devices.ts";
 * console.log(formatDevices(await benchDevices(ALEXNET_SMALL, 32, 2), 32));
 * ```
 */
export async function benchDevices(
  config: ModelConfig,
  batch: number,
  repeats: number,
): Promise<DevicesBench[]> {
  const two = (parallel: Parallelism, overlap = true) => () =>
    createAlexNet({ model: config, init: "he", devices: 2, parallel, overlap });
  const setups: { setup: string; create: () => Promise<Network> }[] = [
    { setup: "1 device", create: () => createAlexNet({ model: config, init: "he" }) },
    { setup: "2 devices, model parallel", create: two("model") },
    { setup: "  the same, no overlap", create: two("model", false) },
    { setup: "2 devices, data parallel", create: two("data") },
  ];
  const input = new Float32Array(batch * config.input.reduce((a, b) => a * b));
  const labels = new Int32Array(batch);
  const results: DevicesBench[] = [];
  for (const { setup, create } of setups) {
    const net = await create();
    try {
      const seconds = (step: () => Promise<unknown>) => secondsPerCall(step, repeats);
      const inference = batch / await seconds(() => net.forward(input, batch));
      await net.trainStep(input, labels); // compile the backward kernels
      const before = net.stats.exchangeMs;
      const step = await seconds(() => net.trainStep(input, labels));
      results.push({
        setup,
        inference,
        training: batch / step,
        exchangeMs: net.parallel ? (net.stats.exchangeMs - before) / repeats : null,
        stepMs: 1000 * step,
      });
    } finally {
      await net.destroy();
    }
  }
  return results;
}

/**
 * The figures as a table, with each setup's ratio to one device.
 *
 * @example
 * ```ts
 * import { formatDevices } from "./devices.ts";
 * console.log(formatDevices([{ setup: "1 device", inference: 10, training: 5, exchangeMs: null,
 *   stepMs: 200 }], 8));
 * ```
 */
export function formatDevices(rows: readonly DevicesBench[], batch: number): string {
  const base = rows[0];
  const lines = [
    `devices at batch ${batch}       inference img/s      training img/s    exchange ms/step`,
  ];
  for (const r of rows) {
    const ratio = (v: number, b: number) => `${v.toFixed(1)} (x${(v / b).toFixed(2)})`.padStart(20);
    const exchange = r.exchangeMs === null
      ? ""
      : `${r.exchangeMs.toFixed(0)} (${(100 * r.exchangeMs / r.stepMs).toFixed(0)}%)`;
    lines.push(
      `${r.setup.padEnd(26)}${ratio(r.inference, base.inference)}${
        ratio(r.training, base.training)
      }${exchange.padStart(20)}`,
    );
  }
  return lines.join("\n");
}
