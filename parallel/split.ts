/**
 * The paper's two-GPU split, as data: which layers each tower holds and where the towers
 * exchange activations. A layer table's `groups: 2` rows read only their own tower's maps; a
 * convolution or dense layer with one group that reads the towers' maps needs both, so a stage
 * ends before it and the towers swap outputs (conv3, fc6, fc7, fc8 in AlexNet, its Figure 2).
 *
 * @module
 */
import type { LayerSpec, ModelConfig } from "../layers/models.ts";

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
