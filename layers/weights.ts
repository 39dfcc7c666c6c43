/**
 * What every network checks and writes, whatever its devices: a batch's input and labels, a set of
 * weights against the network's parameters, and the safetensors file of its weights.
 *
 * @module
 */
import { type NamedTensor, serializeSafetensors } from "../io/safetensors.ts";
import { shapeSize } from "./layer.ts";
import type { ModelConfig } from "./models.ts";

/**
 * A weights file's bytes: `tensors` by PyTorch name, the model's name and `metadata` in its
 * header (what every network's `weightsBytes` writes, on one device or two).
 *
 * @example
 * ```ts
 * import { weightsFile } from "./weights.ts";
 * const t = new Map([["fc.bias", { shape: [1], data: new Float32Array([1]) }]]);
 * console.log(weightsFile("t", t).length > 8); // true
 * ```
 */
export function weightsFile(
  model: string,
  tensors: Map<string, NamedTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  return serializeSafetensors(tensors, { ...metadata, format: "pt", model });
}

/**
 * Throws a clear error unless `input` holds `batch` examples of `config`'s input shape (and
 * `labels`, where given, are classes of it): the checks every network's entry points share.
 *
 * @example
 * ```ts
 * import { ALEXNET_SMALL } from "./models.ts";
 * import { checkBatch } from "./weights.ts";
 * checkBatch(ALEXNET_SMALL, "forward", new Float32Array(784), 1, new Int32Array([9]));
 * ```
 */
export function checkBatch(
  config: ModelConfig,
  what: string,
  input: Float32Array,
  batch: number,
  labels?: Int32Array,
): void {
  const perExample = shapeSize(config.input);
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`${what}: batch must be a positive integer, got ${batch}`);
  }
  if (input.length !== batch * perExample) {
    throw new RangeError(
      `${what}: input has ${input.length} values; ${batch} examples of [${config.input}] ` +
        `need ${batch * perExample}`,
    );
  }
  labels?.forEach((label, i) => {
    if (!(label >= 0 && label < config.classes)) {
      throw new RangeError(
        `${what}: label ${label} at ${i} is not a class of 0..${config.classes - 1}`,
      );
    }
  });
}

/**
 * Throws a clear error unless `tensors` holds exactly the parameters `shapes` names, with those
 * shapes: the first missing, extra or misshapen tensor is named.
 *
 * @example
 * ```ts
 * import { checkWeights } from "./weights.ts";
 * const shapes = new Map([["fc.bias", [2]]]);
 * checkWeights("t", shapes, new Map([["fc.bias", { shape: [2], data: new Float32Array(2) }]]));
 * ```
 */
export function checkWeights(
  model: string,
  shapes: ReadonlyMap<string, readonly number[]>,
  tensors: ReadonlyMap<string, NamedTensor>,
): void {
  const missing = [...shapes.keys()].filter((name) => !tensors.has(name));
  if (missing.length > 0) {
    throw new RangeError(`weights for ${model}: missing tensor(s) ${missing.join(", ")}`);
  }
  const extra = [...tensors.keys()].filter((name) => !shapes.has(name));
  if (extra.length > 0) {
    throw new RangeError(
      `weights for ${model}: tensor(s) ${extra.join(", ")} are not in this model`,
    );
  }
  for (const [name, shape] of shapes) {
    const loaded = tensors.get(name)!;
    if (loaded.shape.join() !== shape.join()) {
      throw new RangeError(
        `weights for ${model}: tensor ${name} has shape [${loaded.shape}], the model needs [${shape}]`,
      );
    }
  }
}
