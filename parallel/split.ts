/**
 * The paper's two-GPU split, as data: which layers each tower holds and where the towers
 * exchange activations. A layer table's `groups: 2` rows read only their own tower's maps; a
 * convolution or dense layer with one group that reads the towers' maps needs both, so a stage
 * ends before it and the towers swap outputs (conv3, fc6, fc7, fc8 in AlexNet, its Figure 2).
 *
 * @module
 */
import type { NamedTensor } from "../io/safetensors.ts";
import type { LayerSpec, ModelConfig } from "../layers/models.ts";
import type { LayerInfo } from "../layers/tower.ts";

/**
 * Splits a configuration into stages (runs of layers between two exchanges) each of two towers
 * runs: the first reads the image, each later one both towers' outputs of the one before. Every convolution and dense layer
 * gives each tower half its outputs (rows `[t * out / 2, (t + 1) * out / 2)` of its weight and
 * bias); LRN normalises within a tower. Throws where the table cannot split that way.
 *
 * @example
 * ```ts
 * import { ALEXNET } from "../layers/models.ts";
 * import { splitTowers } from "./split.ts";
 * const stages = splitTowers(ALEXNET);
 * console.log(stages.map((s) => s[0].name)); // ["conv1", "conv3", "fc6", "fc7", "fc8"]
 * ```
 */
export function splitTowers(config: ModelConfig): LayerSpec[][] {
  const fail = (name: string, why: string) => {
    throw new RangeError(`${config.name}: cannot split ${name} over two devices: ${why}`);
  };
  const stages: LayerSpec[][] = [];
  let current: LayerSpec[] = [];
  let split = false; // whether the activation so far is divided between the towers
  for (const spec of config.layers) {
    if (spec.kind === "conv" || spec.kind === "dense") {
      const groups = spec.kind === "conv" ? spec.groups ?? 1 : 1;
      if (spec.out % 2 !== 0) fail(spec.name, `${spec.out} outputs do not halve`);
      if (groups !== 1 && groups % 2 !== 0) fail(spec.name, `${groups} groups do not halve`);
      if (!split && groups !== 1) fail(spec.name, "grouped, but reads the whole input");
      if (split && groups === 1) {
        stages.push(current);
        current = [];
      }
      current.push(
        spec.kind === "conv"
          ? { ...spec, out: spec.out / 2, groups: Math.max(1, groups / 2) }
          : { ...spec, out: spec.out / 2 },
      );
      split = true;
    } else if (spec.kind === "lrn") {
      if (split && spec.params.groups % 2 !== 0) {
        fail(spec.name, "it normalises across the towers' boundary (give it groups: 2)");
      }
      current.push(
        split ? { ...spec, params: { ...spec.params, groups: spec.params.groups / 2 } } : spec,
      );
    } else {
      current.push(spec);
    }
  }
  stages.push(current);
  return stages;
}

/**
 * Tower `tower`'s rows of a convolution's or dense layer's weight or bias: the outputs it holds.
 *
 * @example
 * ```ts
 * import { towerRows } from "./split.ts";
 * console.log(towerRows(new Float32Array([1, 2, 3, 4]), 1)); // Float32Array [3, 4]
 * ```
 */
export function towerRows(data: Float32Array, tower: number): Float32Array {
  const half = data.length / 2;
  return data.subarray(tower * half, (tower + 1) * half);
}

/**
 * Joins the towers' channels of each example: [rows, c0, ...] and [rows, c1, ...] (each `width`
 * values per example) into [rows, c0 + c1, ...], as the layer after an exchange reads them.
 *
 * @example
 * ```ts
 * import { joinTowers } from "./split.ts";
 * console.log(joinTowers([new Float32Array([1, 2]), new Float32Array([3, 4])], 2));
 * // Float32Array [1, 3, 2, 4]
 * ```
 */
export function joinTowers(parts: readonly Float32Array[], rows: number): Float32Array {
  const widths = parts.map((p) => p.length / rows);
  const width = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let at = r * width;
    parts.forEach((p, t) => {
      out.set(p.subarray(r * widths[t], (r + 1) * widths[t]), at);
      at += widths[t];
    });
  }
  return out;
}

/**
 * Tower `tower`'s half of each example's values of [rows, width]: the inverse of
 * {@linkcode joinTowers} for two equal towers.
 *
 * @example
 * ```ts
 * import { towerHalf } from "./split.ts";
 * console.log(towerHalf(new Float32Array([1, 3, 2, 4]), 2, 1)); // Float32Array [3, 4]
 * ```
 */
export function towerHalf(values: Float32Array, rows: number, tower: number): Float32Array {
  const width = values.length / rows, half = width / 2;
  const out = new Float32Array(rows * half);
  for (let r = 0; r < rows; r++) {
    out.set(values.subarray(r * width + tower * half, r * width + (tower + 1) * half), r * half);
  }
  return out;
}

/**
 * The whole network's layers from the two towers' halves: where a layer's output is split (from
 * the first convolution or dense layer on), channels, parameters and multiply-adds add up.
 *
 * @example
 * ```ts
 * import { joinLayers } from "./split.ts";
 * const half = { name: "fc", outputShape: [2, 1, 1] as const, parameters: 6, macs: 4 };
 * const config = { name: "t", input: [2, 1, 1] as const, classes: 4,
 *   layers: [{ kind: "dense" as const, name: "fc", out: 4 }] };
 * console.log(joinLayers(config, [half], [half])[0].outputShape); // [4, 1, 1]
 * ```
 */
export function joinLayers(config: ModelConfig, a: LayerInfo[], b: LayerInfo[]): LayerInfo[] {
  let split = false;
  return a.map((l, i) => {
    const kind = config.layers[i].kind;
    split ||= kind === "conv" || kind === "dense";
    if (!split) return l;
    const [c, h, w] = l.outputShape;
    return {
      name: l.name,
      outputShape: [c + b[i].outputShape[0], h, w],
      parameters: l.parameters + b[i].parameters,
      macs: l.macs + b[i].macs,
    };
  });
}

/**
 * Layer `index` of `config` in its model-parallel stages: the stage, its index there, and whether
 * the towers hold halves of its output (from the first convolution or dense layer on) or both
 * compute all of it.
 *
 * @example
 * ```ts
 * import { ALEXNET } from "../layers/models.ts";
 * import { stageOf } from "./split.ts";
 * console.log(stageOf(ALEXNET, 6)); // { stage: 1, layer: 0, split: true }: conv3
 * ```
 */
export function stageOf(
  config: ModelConfig,
  index: number,
): { stage: number; layer: number; split: boolean } {
  const stages = splitTowers(config);
  let first = 0, stage = 0;
  while (index >= first + stages[stage].length) first += stages[stage++].length;
  const split = config.layers.slice(0, index + 1)
    .some((l) => l.kind === "conv" || l.kind === "dense");
  return { stage, layer: index - first, split };
}

/**
 * Whole-network tensors of `shapes` from each device's: rows concatenated where the towers hold
 * halves (`model`), else the first replica's as they are.
 *
 * @example
 * ```ts
 * import { joinTensors } from "./split.ts";
 * const parts = [new Map([["b", new Float32Array([1])]]), new Map([["b", new Float32Array([2])]])];
 * console.log(joinTensors(true, new Map([["b", [2]]]), parts).get("b")?.data); // [1, 2]
 * ```
 */
export function joinTensors(
  model: boolean,
  shapes: ReadonlyMap<string, number[]>,
  parts: readonly Map<string, Float32Array>[],
): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, shape] of shapes) {
    const data = model ? concat(parts.map((p) => p.get(name)!)) : parts[0].get(name)!;
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * Device `tower`'s share of whole-network tensors: its rows where the towers hold halves
 * (`model`), else all of them.
 *
 * @example
 * ```ts
 * import { towerTensors } from "./split.ts";
 * const t = new Map([["b", { shape: [2], data: new Float32Array([1, 2]) }]]);
 * console.log(towerTensors(true, t, 1).get("b")); // Float32Array [2]
 * ```
 */
export function towerTensors(
  model: boolean,
  tensors: ReadonlyMap<string, NamedTensor>,
  tower: number,
): Map<string, Float32Array> {
  return new Map(
    [...tensors].map(([name, t]) => [name, model ? towerRows(t.data, tower) : t.data]),
  );
}

/**
 * `parts` one after another.
 *
 * @example
 * ```ts
 * import { concat } from "./split.ts";
 * console.log(concat([new Float32Array([1]), new Float32Array([2, 3])])); // [1, 2, 3]
 * ```
 */
export function concat(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}
