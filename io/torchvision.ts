/**
 * torchvision's AlexNet checkpoints: its tensor names (`features.0.weight`, ...,
 * `classifier.6.bias`) mapped to this project's (`conv1.weight`, ..., `fc8.bias`), and the
 * preprocessing its pretrained weights expect (shorter side 256, centre 224x224, ImageNet's
 * per-channel mean and standard deviation).
 *
 * @module
 */
import type { NamedTensor } from "./safetensors.ts";

/**
 * torchvision's module paths and this project's layer names.
 *
 * @example
 * ```ts
 * import { TORCHVISION_NAMES } from "./torchvision.ts";
 * console.log(TORCHVISION_NAMES["classifier.1"]); // "fc6"
 * ```
 */
export const TORCHVISION_NAMES: Readonly<Record<string, string>> = {
  "features.0": "conv1",
  "features.3": "conv2",
  "features.6": "conv3",
  "features.8": "conv4",
  "features.10": "conv5",
  "classifier.1": "fc6",
  "classifier.4": "fc7",
  "classifier.6": "fc8",
};

/**
 * ImageNet's per-channel mean and standard deviation of RGB values in [0, 1], as torchvision uses.
 *
 * @example
 * ```ts
 * import { IMAGENET_NORMALISATION } from "./torchvision.ts";
 * console.log(IMAGENET_NORMALISATION.mean[0]); // 0.485
 * ```
 */
export const IMAGENET_NORMALISATION = {
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
} as const;

/**
 * Renames a torchvision AlexNet state dict to this project's names, refusing any tensor it does
 * not know (so that a file of another network fails here, by name).
 *
 * @example
 * ```ts
 * import { fromTorchvision } from "./torchvision.ts";
 * const t = new Map([["classifier.6.bias", { shape: [1000], data: new Float32Array(1000) }]]);
 * console.log([...fromTorchvision(t).keys()]); // ["fc8.bias"]
 * ```
 */
export function fromTorchvision(
  tensors: ReadonlyMap<string, NamedTensor>,
): Map<string, NamedTensor> {
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of tensors) {
    const dot = name.lastIndexOf(".");
    const layer = TORCHVISION_NAMES[name.slice(0, dot)];
    if (!layer) throw new RangeError(`${name} is not a tensor of torchvision's AlexNet`);
    out.set(`${layer}${name.slice(dot)}`, t);
  }
  return out;
}
