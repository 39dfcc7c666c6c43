/**
 * `bench`: the benchmark from the command line.
 *
 * @module
 */
import { bench, benchFrozen, formatBench } from "../bench/bench.ts";
import { layerList } from "../layers/models.ts";
import { benchDevices, formatDevices } from "../bench/devices.ts";
import { benchPrecision, formatPrecision } from "../bench/precision.ts";
import { benchPyTorch } from "../bench/pytorch.ts";
import { createAlexNet, MODELS } from "../mod.ts";
import { applyTuning, defaultTuningPath, readTuning } from "./tuning.ts";
import {
  type Command,
  modelName,
  number,
  precisionChoice,
  UsageError,
  type Values,
} from "./common.ts";

// The peers `--peer` names (literals: importing bench/peers.ts would load TensorFlow.js).
const TFJS_PEERS = ["webgpu", "wasm"] as const;
// The peers' modules by name, not literal, so that Deno fetches their npm packages (600 MB)
// only when a bench asks for them, never for `train` (with "npm-lazy-caching" in deno.json).
const PEERS = "../bench/peers.ts", ORT = "../bench/ort.ts", JAX = "../bench/jax.ts";
const PEER_NAMES: readonly string[] = [...TFJS_PEERS, "pytorch", "ort", "jax"];

/** `bench`. */
export const benchCommand: Command = {
  help: `usage: deno run -A main.ts bench [options]

  --model NAME   ${Object.keys(MODELS).join(" | ")} (default alexnet-small)
  --batch N      examples per batch (default 128)
  --repeats N    replays per figure (default 3)
  --json FILE    also write the figures as JSON
  --tune         first let the autotuner pick each GEMM's tiling (see train --tune); tilings
                 saved by an earlier --tune are used either way
  --peers        also run the same network in TensorFlow.js (webgpu: inference and training on
                 the same adapter; wasm: inference) and print the ratios
  --peer NAMES   the peers to run, comma-separated: webgpu, wasm (TensorFlow.js webgpu trains
                 alexnet at under 1 image/s here, so a batch of 128 takes many minutes a step),
                 pytorch (PyTorch on the CPU, Debian's python3-torch: the reference point for
                 running AlexNet on this machine's cores), ort (ONNX Runtime's CPU inference on
                 this network exported to ONNX: the fastest a JavaScript user can install), jax
                 (jax-js on WebGPU, the same adapter: a second WebGPU library that trains)
  --devices      also run the network on one device and on two (model and data parallel),
                 each device in its own worker: images/s and the exchanges' time per step
  --precision f32|f16  what the GEMM core multiplies in the figures above (default f32)
  --f16          also run the network in f32 and in f16, side by side: images/s and how far
                 f16's logits are from f32's (adapters with shader-f16)
  --freeze LAYERS  also time a training step with LAYERS kept fixed (as train --freeze),
                 beside one training every layer

Per layer: forward and backward milliseconds, GFLOP/s, the fraction of the GEMM core's ceiling
and compile time; whole network: inference images/s at batch 1 and N, training images/s at N;
the data pipeline's images/s. GPU time from timestamp queries where the adapter has them.`,
  options: {
    model: { type: "string" },
    batch: { type: "string" },
    repeats: { type: "string" },
    json: { type: "string" },
    peers: { type: "boolean" },
    peer: { type: "string" },
    tune: { type: "boolean" },
    devices: { type: "boolean" },
    precision: { type: "string" },
    f16: { type: "boolean" },
    freeze: { type: "string" },
  },
  run: runBench,
};

async function runBench(v: Values): Promise<void> {
  const model = modelName(v, "alexnet-small");
  const batch = number(v, "batch", 128, { integer: true });
  const repeats = number(v, "repeats", 3, { integer: true });
  const named = v.peer === undefined ? [] : String(v.peer).split(",");
  for (const name of named) {
    if (!PEER_NAMES.includes(name)) {
      throw new UsageError(`--peer must name ${PEER_NAMES.join(", ")}, got "${name}"`);
    }
  }
  const peerNames = new Set([...v.peers ? TFJS_PEERS : [], ...named]);
  const tfjs = TFJS_PEERS.filter((n) => peerNames.has(n));
  const tuningPath = defaultTuningPath();
  const net = await createAlexNet({
    model,
    init: model === "alexnet" ? "paper" : "he",
    precision: precisionChoice(v),
    tuning: await readTuning(tuningPath),
  });
  try {
    await applyTuning(net, tuningPath, batch, v.tune === true);
    const result = await bench(net, batch, repeats);
    console.log(formatBench(result, net.config));
    let peers;
    if (peerNames.size > 0) {
      // Loaded only here: TensorFlow.js is the benchmark's, never the library's.
      const { benchPeers, formatPeers }: typeof import("../bench/peers.ts") = await import(PEERS);
      peers = tfjs.length > 0 ? await benchPeers(net.config, batch, repeats, tfjs) : [];
      if (peerNames.has("pytorch")) {
        peers.push(await benchPyTorch(net.config, batch, repeats, net.parameterCount));
      }
      if (peerNames.has("ort")) {
        const { benchOrt }: typeof import("../bench/ort.ts") = await import(ORT);
        peers.push(await benchOrt(net.config, await net.weights(), batch, repeats));
      }
      if (peerNames.has("jax")) {
        const { benchJax }: typeof import("../bench/jax.ts") = await import(JAX);
        peers.push(await benchJax(net.config, await net.weights(), batch, repeats));
      }
      console.log(formatPeers(result, peers));
    }
    let frozen;
    if (v.freeze !== undefined) {
      let layers;
      try {
        layers = layerList(net.config, String(v.freeze));
      } catch (e) {
        throw new UsageError(`--freeze: ${(e as Error).message}`);
      }
      frozen = { layers, ...await benchFrozen(net, batch, repeats, layers) };
      console.log(
        `training at batch ${batch}: every layer ${frozen.all.toFixed(1)} images/s, with ` +
          `${layers.join(", ")} frozen ${frozen.frozen.toFixed(1)} (x${
            (frozen.frozen / frozen.all).toFixed(2)
          })`,
      );
    }
    let devices;
    if (v.devices) {
      devices = await benchDevices(net.config, batch, repeats);
      console.log(formatDevices(devices, batch));
    }
    let precision;
    if (v.f16) {
      precision = await benchPrecision(net.config, batch, repeats);
      console.log(formatPrecision(precision, batch));
    }
    if (typeof v.json === "string") {
      const json = { ...result, peers, frozen, devices, precision };
      await Deno.writeTextFile(v.json, JSON.stringify(json, null, 2) + "\n");
    }
  } finally {
    await net.destroy();
  }
}
