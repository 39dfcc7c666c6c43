/**
 * jax-js on WebGPU as a peer (`bench --peer jax`): a second WebGPU library that trains, JAX's
 * model in JavaScript (autodiff, `jit`), on the same adapter, the network written from the same
 * table in its NumPy-like API. Used by the bench only; nothing in the library imports jax-js.
 *
 * @module
 */
import { defaultDevice, init, jit, lax, nn, numpy as np, valueAndGrad } from "@jax-js/jax";
import type { LayerSpec, ModelConfig } from "../layers/models.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import { secondsPerCall } from "./clock.ts";
import type { PeerBench } from "./peers.ts";

type Params = Record<string, np.Array>;

// This project's weights: PyTorch's layouts and names, which jax-js's convolution shares.
function toParams(weights: ReadonlyMap<string, NamedTensor>): Params {
  return Object.fromEntries(
    [...weights].map(([name, t]) => [name, np.array(t.data.slice()).reshape([...t.shape])]),
  );
}

// LRN within each group: the paper's sum of squares over `size` neighbouring channels.
function lrn(
  x: np.Array,
  { size, alpha, beta, k, groups }: Extract<LayerSpec, { kind: "lrn" }>["params"],
) {
  const half = (size - 1) / 2, channels = x.shape[1] / groups;
  const squares = np.split(np.square(x.ref), groups, 1).map((part) => {
    const padded = np.pad(part, [[0, 0], [half, half], [0, 0], [0, 0]]);
    const shifted = Array.from({ length: size }, (_, i) => padded.ref.slice([], [i, i + channels]));
    padded.dispose();
    return shifted.reduce((a, b) => a.add(b));
  });
  const sums = groups === 1 ? squares[0] : np.concatenate(squares, 1);
  return x.div(np.power(sums.mul(alpha).add(k), beta));
}

function forward(config: ModelConfig, params: Params, x: np.Array, training: boolean): np.Array {
  for (const l of config.layers) {
    if (l.kind === "conv") {
      const s = l.stride ?? 1, p = l.pad ?? 0;
      x = lax.convGeneralDilated(x, params[`${l.name}.weight`].ref, [s, s], [[p, p], [p, p]], {
        featureGroupCount: l.groups ?? 1,
      }).add(params[`${l.name}.bias`].ref.reshape([1, l.out, 1, 1]));
      if (l.relu !== false) x = nn.relu(x);
    } else if (l.kind === "lrn") {
      x = lrn(x, l.params);
    } else if (l.kind === "maxpool") {
      x = lax.reduceWindow(x, (v: np.Array) => np.max(v), [l.size, l.size], [l.stride, l.stride]);
    } else if (l.kind === "dropout") {
      if (training) x = x.mul(1 / (1 - l.p)); // the scaling; a mask's cost is left out
    } else {
      const flat = x.reshape([x.shape[0], -1]);
      x = np.matmul(flat, params[`${l.name}.weight`].ref.transpose()).add(
        params[`${l.name}.bias`].ref,
      );
      if (l.relu !== false) x = nn.relu(x);
    }
  }
  return x;
}

/** The inference pass of `config`, compiled by `jit`. */
const inference = (config: ModelConfig) =>
  jit((p: Params, x: np.Array) => forward(config, p, x, false));

/** Starts jax-js on WebGPU (once a process), or says why it cannot. */
async function useWebGpu() {
  if (!(await init("webgpu")).includes("webgpu")) throw new Error("jax-js found no WebGPU");
  defaultDevice("webgpu");
}

/**
 * jax-js's logits for `input` [batch, ...config.input] with `weights` (this project's names): the
 * check that the peer runs the same network.
 *
 * @example
 * ```ts ignore
 * import { jaxLogits } from "./jax.ts";
 * console.log(await jaxLogits(net.config, await net.weights(), input, 2)); // Float32Array
 * ```
 */
export async function jaxLogits(
  config: ModelConfig,
  weights: ReadonlyMap<string, NamedTensor>,
  input: Float32Array,
  batch: number,
): Promise<Float32Array> {
  await useWebGpu();
  const params = toParams(weights);
  const x = np.array(input.slice()).reshape([batch, ...config.input]);
  const logits = await inference(config)(refs(params), x).data(); // what the bench times
  for (const p of Object.values(params)) p.dispose();
  return Float32Array.from(logits as Float32Array);
}

/**
 * jax-js's figures on WebGPU for `config` with `weights` at `batch`: inference, and training (the
 * loss's gradient by `valueAndGrad` under `jit`, then SGD with momentum), each after one untimed
 * call.
 *
 * @example
 * ```ts ignore
 * import { benchJax } from "./jax.ts";
 * console.log(await benchJax(net.config, await net.weights(), 32, 2)); // { name: "jax-js ...", ... }
 * ```
 */
export async function benchJax(
  config: ModelConfig,
  weights: ReadonlyMap<string, NamedTensor>,
  batch: number,
  repeats: number,
): Promise<PeerBench> {
  await useWebGpu();
  const params = toParams(weights);
  const size = config.input.reduce((a, b) => a * b, batch);
  const x = np.array(new Float32Array(size)).reshape([batch, ...config.input]);
  const labels = nn.oneHot(
    np.array(Array.from({ length: batch }, (_, i) => i % config.classes), {
      dtype: np.int32,
    }),
    config.classes,
  );
  const infer = inference(config);
  const loss = (p: Params, x: np.Array, y: np.Array) =>
    nn.logSoftmax(forward(config, p, x, true)).mul(y).sum().mul(-1 / batch);
  const gradient = jit(valueAndGrad(loss));
  const velocity: Params = Object.fromEntries(
    Object.entries(params).map(([name, p]) => [name, np.zerosLike(p.ref)]),
  );
  const step = async () => {
    const [value, grads] = gradient(refs(params), x.ref, labels.ref);
    for (const name of Object.keys(params)) {
      velocity[name] = velocity[name].mul(0.9).sub(grads[name].mul(0.01));
      params[name] = params[name].add(velocity[name].ref);
    }
    await value.data();
  };
  try {
    const inference = batch / await secondsPerCall(async () => {
      await infer(refs(params), x.ref).data();
    }, repeats);
    const training = batch / await secondsPerCall(step, repeats);
    return { name: "jax-js 0.1.25 webgpu", inference, training };
  } finally {
    for (const a of [...Object.values(params), ...Object.values(velocity), x, labels]) a.dispose();
  }
}

// A new reference to each parameter: jax-js's functions consume their arguments.
const refs = (p: Params): Params =>
  Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.ref]));
