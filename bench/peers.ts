/**
 * The alternative a JavaScript user would pick: the same network in TensorFlow.js, on its
 * `webgpu` backend (the same adapter, inference and training) and its `wasm` backend (inference:
 * it has no convolution backward pass), timed at the same batch. Used by `bench --peers` only;
 * nothing in the library imports TensorFlow.js.
 *
 * @module
 */
// The whole package, not tfjs-core alone: only it registers the gradients training needs.
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import type { ModelConfig } from "../layers/models.ts";
import type { BenchResult } from "./bench.ts";
import { secondsPerCall } from "./clock.ts";

/** One peer's figures (images per second; null where the backend cannot do it). */
export interface PeerBench {
  /** Library and backend. */
  name: string;
  /** Inference images/s at the batch. */
  inference: number;
  /** Training images/s at the batch (SGD with momentum), or null. */
  training: number | null;
}

type Params = Map<string, tf.Variable>;

// Weights in TensorFlow's layouts: conv [k, k, in / groups, out / groups] per group, dense [in, out].
function createParams(config: ModelConfig): Params {
  const params: Params = new Map();
  let [c, h, w] = config.input;
  const he = (shape: number[], fanIn: number) =>
    tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn)));
  for (const l of config.layers) {
    if (l.kind === "conv") {
      const g = l.groups ?? 1, pad = l.pad ?? 0, stride = l.stride ?? 1;
      for (let t = 0; t < g; t++) {
        params.set(
          `${l.name}.w${t}`,
          he([l.kernel, l.kernel, c / g, l.out / g], l.kernel ** 2 * c / g),
        );
      }
      params.set(`${l.name}.b`, tf.variable(tf.zeros([l.out])));
      c = l.out;
      h = Math.floor((h + 2 * pad - l.kernel) / stride) + 1;
      w = Math.floor((w + 2 * pad - l.kernel) / stride) + 1;
    } else if (l.kind === "maxpool") {
      h = Math.floor((h - l.size) / l.stride) + 1;
      w = Math.floor((w - l.size) / l.stride) + 1;
    } else if (l.kind === "dense") {
      const fanIn = c * h * w;
      params.set(`${l.name}.w`, he([fanIn, l.out], fanIn));
      params.set(`${l.name}.b`, tf.variable(tf.zeros([l.out])));
      [c, h, w] = [l.out, 1, 1];
    }
  }
  return params;
}

// The forward pass in NHWC, layer by layer as the table says.
function forward(
  config: ModelConfig,
  params: Params,
  x: tf.Tensor4D,
  training: boolean,
): tf.Tensor2D {
  let y: tf.Tensor = x;
  for (const l of config.layers) {
    if (l.kind === "conv") {
      const g = l.groups ?? 1;
      const parts = (g === 1 ? [y] : tf.split(y, g, 3)) as tf.Tensor4D[];
      const outs = parts.map((p, t) =>
        tf.conv2d(p, params.get(`${l.name}.w${t}`)! as tf.Tensor4D, l.stride ?? 1, l.pad ?? 0)
      );
      y = tf.add(g === 1 ? outs[0] : tf.concat(outs, 3), params.get(`${l.name}.b`)!);
      if (l.relu !== false) y = tf.relu(y);
    } else if (l.kind === "lrn") {
      const { size, alpha, beta, k, groups } = l.params;
      // TensorFlow's alpha multiplies the plain sum, as the paper's does.
      const parts = (groups === 1 ? [y] : tf.split(y, groups, 3)) as tf.Tensor4D[];
      const outs = parts.map((p) =>
        tf.localResponseNormalization(p, (size - 1) / 2, k, alpha, beta)
      );
      y = groups === 1 ? outs[0] : tf.concat(outs, 3);
    } else if (l.kind === "maxpool") {
      y = tf.maxPool(y as tf.Tensor4D, l.size, l.stride, "valid");
    } else if (l.kind === "dropout") {
      if (training) y = tf.dropout(y, l.p);
    } else {
      const flat = tf.reshape(y, [y.shape[0], -1]);
      y = tf.add(
        tf.matMul(flat as tf.Tensor2D, params.get(`${l.name}.w`)! as tf.Tensor2D),
        params.get(`${l.name}.b`)!,
      );
      if (l.relu !== false) y = tf.relu(y);
    }
  }
  return y as tf.Tensor2D;
}

const rate = async (batch: number, repeats: number, step: () => Promise<unknown>) =>
  batch / await secondsPerCall(step, repeats);

async function measure(
  config: ModelConfig,
  batch: number,
  repeats: number,
  train: boolean,
): Promise<{ inference: number; training: number | null }> {
  const [c, h, w] = config.input;
  const params = createParams(config);
  const x = tf.randomNormal([batch, h, w, c]) as tf.Tensor4D;
  const labels = tf.oneHot(
    tf.tensor1d(Array.from({ length: batch }, (_, i) => i % config.classes), "int32"),
    config.classes,
  );
  try {
    const inference = await rate(batch, repeats, async () => {
      const logits = tf.tidy(() => forward(config, params, x, false));
      await logits.data();
      logits.dispose();
    });
    let training = null;
    if (train) {
      const optimizer = tf.train.momentum(0.01, 0.9);
      training = await rate(batch, repeats, async () => {
        const cost = optimizer.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(labels, forward(config, params, x, true)) as tf.Scalar,
          true,
          [...params.values()],
        )!;
        await cost.data();
        cost.dispose();
      });
      optimizer.dispose();
    }
    return { inference, training };
  } finally {
    for (const p of params.values()) p.dispose();
    x.dispose();
    labels.dispose();
  }
}

// The wasm backend loads its binaries by URL: point it at Deno's npm cache, read with file://.
async function wasmPaths(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const cache = JSON.parse(new TextDecoder().decode(out.stdout)).npmCache as string;
  const version = tf.version_core;
  return `file://${cache}/registry.npmjs.org/@tensorflow/tfjs-backend-wasm/${version}/dist/`;
}

/** The TensorFlow.js backends {@linkcode benchPeers} runs. */
export const PEERS = ["webgpu", "wasm"] as const;

/**
 * TensorFlow.js's figures for `config` at `batch` on the `backends` named (default both): webgpu
 * (inference and training), wasm (inference).
 *
 * @example
 * ```ts ignore
 * import { ALEXNET_SMALL } from "../mod.ts";
 * import { benchPeers } from "./peers.ts";
 * console.log(await benchPeers(ALEXNET_SMALL, 32, 2));
 * ```
 */
export async function benchPeers(
  config: ModelConfig,
  batch: number,
  repeats: number,
  backends: readonly (typeof PEERS)[number][] = PEERS,
): Promise<PeerBench[]> {
  const results: PeerBench[] = [];
  if (backends.includes("webgpu")) {
    await tf.setBackend("webgpu");
    await tf.ready();
    results.push({
      name: "TensorFlow.js webgpu",
      ...(await measure(config, batch, repeats, true)),
    });
    tf.removeBackend("webgpu");
  }
  if (!backends.includes("wasm")) return results;
  setWasmPaths(await wasmPaths());
  await tf.setBackend("wasm");
  await tf.ready();
  results.push({ name: "TensorFlow.js wasm", ...(await measure(config, batch, repeats, false)) });
  return results;
}

/**
 * The peers' figures beside ours, as ratios (ours / theirs; above 1: we are faster).
 *
 * @example
 * ```ts ignore
 * console.log(formatPeers(await bench(net, 32, 2), await benchPeers(net.config, 32, 2)));
 * ```
 */
export function formatPeers(ours: BenchResult, peers: PeerBench[]): string {
  const n = ours.network, b = ours.setup.batch;
  const width = Math.max(20, ...peers.map((p) => p.name.length));
  const lines = [`peers at batch ${b} (images/s; ratio = ours / theirs):`];
  lines.push(
    `  ${"this project".padEnd(width)} inference ${n.inference.toFixed(1)}, training ${
      n.training.toFixed(1)
    }`,
  );
  for (const p of peers) {
    const train = p.training === null
      ? "training: cannot (no backward pass)"
      : `training ${p.training.toFixed(1)} (ours x${(n.training / p.training).toFixed(1)})`;
    lines.push(
      `  ${p.name.padEnd(width)} inference ${p.inference.toFixed(1)} (ours x${
        (n.inference / p.inference).toFixed(1)
      }), ${train}`,
    );
  }
  return lines.join("\n");
}
