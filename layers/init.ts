/**
 * Parameter initialisation, reproducible from a seed: the paper's (weights N(0, 0.01), biases 1 in
 * conv2, conv4, conv5, fc6 and fc7 "to accelerate the early stages of learning", 0 elsewhere) and
 * He et al.'s (weights N(0, 2 / fan-in), biases 0), which trains small networks the paper's
 * initialisation can stall.
 *
 * @module
 */
import type { NamedTensor } from "../io/safetensors.ts";
import { uniformAt } from "../kernels/random.ts";
import type { ModelConfig } from "./models.ts";

/** How parameters are initialised ("none" leaves them zero, for weights loaded next). */
export type InitScheme = "paper" | "he" | "none";

/**
 * A 32-bit seed for one tensor, derived from the run's seed and the tensor's name (FNV-1a).
 *
 * @example
 * ```ts
 * import { tensorSeed } from "./init.ts";
 * console.assert(tensorSeed(1, "conv1.weight") !== tensorSeed(1, "conv2.weight"));
 * ```
 */
export function tensorSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/**
 * `n` samples of N(0, std^2) from the counter-based generator (Box-Muller on pairs).
 *
 * @example
 * ```ts
 * import { normalSamples } from "./init.ts";
 * const x = normalSamples(10000, 0.01, 7);
 * const mean = x.reduce((a, b) => a + b) / x.length;
 * console.assert(Math.abs(mean) < 0.001);
 * ```
 */
export function normalSamples(n: number, std: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniformAt(seed, i), u2 = uniformAt(seed, i + 1); // u1 in (0, 1]
    const r = std * Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * Initial values of one layer's weight and bias.
 *
 * @example
 * ```ts
 * import { initialValues } from "./init.ts";
 * const { weight, bias } = initialValues("paper", "conv2", [256, 48, 5, 5], 1, 1);
 * console.log(weight.length, bias[0]); // 307200 1
 * ```
 */
export function initialValues(
  scheme: Exclude<InitScheme, "none">,
  name: string,
  weightShape: readonly number[],
  paperBias: number,
  seed: number,
): { weight: Float32Array; bias: Float32Array } {
  const out = weightShape[0];
  const fanIn = weightShape.slice(1).reduce((a, b) => a * b, 1);
  const std = scheme === "paper" ? 0.01 : Math.sqrt(2 / fanIn);
  const weight = normalSamples(out * fanIn, std, tensorSeed(seed, `${name}.weight`));
  const bias = new Float32Array(out).fill(scheme === "paper" ? paperBias : 0);
  return { weight, bias };
}

/**
 * The initial parameters of `config` by `scheme` from `seed`, for parameters of `shapes` (by
 * name): the same values whichever devices hold them.
 *
 * @example
 * ```ts
 * import { initialWeights } from "./init.ts";
 * const config = { name: "t", input: [2, 1, 1] as const, classes: 1,
 *   layers: [{ kind: "dense" as const, name: "fc", out: 1, bias: 1 }] };
 * const w = initialWeights(config, new Map([["fc.weight", [1, 2]], ["fc.bias", [1]]]), "paper", 1);
 * console.log(w.get("fc.bias")?.data); // Float32Array [1]
 * ```
 */
export function initialWeights(
  config: ModelConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
  scheme: Exclude<InitScheme, "none">,
  seed: number,
): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const spec of config.layers) {
    if (spec.kind !== "conv" && spec.kind !== "dense") continue;
    const shape = shapes.get(`${spec.name}.weight`)!;
    const values = initialValues(scheme, spec.name, shape, spec.bias ?? 0, seed);
    out.set(`${spec.name}.weight`, { shape: [...shape], data: values.weight });
    out.set(`${spec.name}.bias`, { shape: [shape[0]], data: values.bias });
  }
  return out;
}
