/**
 * The networks as data: a layer table's rows, the builders that write them, and the paper's
 * table (`ALEXNET`) beside the Fashion-MNIST variant and torchvision's. `Network.create` builds
 * any table; `splitTowers` (parallel/split.ts) cuts one over two devices.
 *
 * @module
 */
import { type LrnParams, PAPER_LRN } from "../kernels/lrn_forward.ts";
import type { Shape } from "./layer.ts";

/** One row of a configuration's layer table. */
export type LayerSpec =
  | {
    kind: "conv";
    name: string;
    out: number;
    kernel: number;
    stride?: number;
    pad?: number;
    groups?: number;
    relu?: boolean;
    /** The bias the paper's initialisation gives this layer (0 or 1). */
    bias?: number;
  }
  | { kind: "dense"; name: string; out: number; relu?: boolean; bias?: number }
  | { kind: "lrn"; name: string; params: LrnParams }
  | { kind: "maxpool"; name: string; size: number; stride: number }
  | { kind: "dropout"; name: string; p: number };

/** A whole network: its input, its classes and its layer table. */
export interface ModelConfig {
  /** The configuration's name (`alexnet`, `alexnet-small`, or your own). */
  name: string;
  /** One example's input shape [channels, height, width]. */
  input: Shape;
  /** Number of classes: the last layer's output channels. */
  classes: number;
  /** The layers in order. */
  layers: LayerSpec[];
}

/**
 * A convolution row of a layer table (ReLU fused unless `relu: false`).
 *
 * @example
 * ```ts
 * import { conv } from "./models.ts";
 * console.log(conv("conv1", 96, 11, { stride: 4 }).kind); // "conv"
 * ```
 */
export function conv(
  name: string,
  out: number,
  kernel: number,
  options: { stride?: number; pad?: number; groups?: number; relu?: boolean; bias?: number } = {},
): LayerSpec {
  return { kind: "conv", name, out, kernel, ...options };
}

/**
 * A fully connected row of a layer table (ReLU fused unless `relu: false`).
 *
 * @example
 * ```ts
 * import { dense } from "./models.ts";
 * console.log(dense("fc8", 1000, { relu: false }).kind); // "dense"
 * ```
 */
export function dense(
  name: string,
  out: number,
  options: { relu?: boolean; bias?: number } = {},
): LayerSpec {
  return { kind: "dense", name, out, ...options };
}

/**
 * A local response normalisation row (the paper's constants by default).
 *
 * @example
 * ```ts
 * import { lrn } from "./models.ts";
 * console.log(lrn("lrn1").kind); // "lrn"
 * ```
 */
export function lrn(name: string, params: LrnParams = PAPER_LRN): LayerSpec {
  return { kind: "lrn", name, params };
}

/**
 * A max-pooling row (the paper's overlapping 3x3, stride 2 by default).
 *
 * @example
 * ```ts
 * import { maxPool } from "./models.ts";
 * console.log(maxPool("pool1").kind); // "maxpool"
 * ```
 */
export function maxPool(name: string, size = 3, stride = 2): LayerSpec {
  return { kind: "maxpool", name, size, stride };
}

/**
 * A dropout row (the paper's p = 0.5 by default).
 *
 * @example
 * ```ts
 * import { dropout } from "./models.ts";
 * console.log(dropout("drop6").kind); // "dropout"
 * ```
 */
export function dropout(name: string, p = 0.5): LayerSpec {
  return { kind: "dropout", name, p };
}

/**
 * The paper's network: 227x227x3 in, 1000 classes, 60,965,224 parameters, 724,406,816
 * multiply-adds per image. `groups: 2` is the two-GPU split: conv2, conv4 and conv5 see only
 * their own tower's maps, conv3 and the dense layers see both; LRN normalises within a tower.
 * Biases start at 1 in conv2, conv4, conv5, fc6 and fc7 (the paper's section 5).
 *
 * @example
 * ```ts
 * import { ALEXNET } from "./models.ts";
 * console.log(ALEXNET.layers.filter((l) => l.kind === "conv").length); // 5
 * ```
 */
export const ALEXNET: ModelConfig = {
  name: "alexnet",
  input: [3, 227, 227],
  classes: 1000,
  layers: [
    conv("conv1", 96, 11, { stride: 4 }),
    lrn("lrn1"),
    maxPool("pool1"),
    conv("conv2", 256, 5, { pad: 2, groups: 2, bias: 1 }),
    lrn("lrn2"),
    maxPool("pool2"),
    conv("conv3", 384, 3, { pad: 1 }),
    conv("conv4", 384, 3, { pad: 1, groups: 2, bias: 1 }),
    conv("conv5", 256, 3, { pad: 1, groups: 2, bias: 1 }),
    maxPool("pool5"),
    dense("fc6", 4096, { bias: 1 }),
    dropout("drop6"),
    dense("fc7", 4096, { bias: 1 }),
    dropout("drop7"),
    dense("fc8", 1000, { relu: false }),
  ],
};

/**
 * The same eight-layer shape for 28x28 grey images and 10 classes (Fashion-MNIST):
 * 1,132,810 parameters.
 *
 * @example
 * ```ts
 * import { ALEXNET_SMALL } from "./models.ts";
 * console.log(ALEXNET_SMALL.input); // [1, 28, 28]
 * ```
 */
export const ALEXNET_SMALL: ModelConfig = {
  name: "alexnet-small",
  input: [1, 28, 28],
  classes: 10,
  layers: [
    conv("conv1", 64, 5, { pad: 2 }),
    lrn("lrn1"),
    maxPool("pool1"),
    conv("conv2", 128, 5, { pad: 2, groups: 2, bias: 1 }),
    lrn("lrn2"),
    maxPool("pool2"),
    conv("conv3", 192, 3, { pad: 1 }),
    conv("conv4", 192, 3, { pad: 1, groups: 2, bias: 1 }),
    conv("conv5", 128, 3, { pad: 1, groups: 2, bias: 1 }),
    maxPool("pool5"),
    dense("fc6", 512, { bias: 1 }),
    dropout("drop6"),
    dense("fc7", 512, { bias: 1 }),
    dropout("drop7"),
    dense("fc8", 10, { relu: false }),
  ],
};

/**
 * torchvision's AlexNet (the "one weird trick" variant that torchvision's pretrained ImageNet
 * weights are for): 64-192-384-256-256 maps, no LRN, no groups, 224x224 inputs, dropout before
 * fc6 and fc7. Its adaptive 6x6 average pool is the identity at 224 and is left out.
 *
 * @example
 * ```ts
 * import { TORCHVISION_ALEXNET } from "./models.ts";
 * console.log(TORCHVISION_ALEXNET.layers.map((l) => l.name).join(" "));
 * ```
 */
export const TORCHVISION_ALEXNET: ModelConfig = {
  name: "torchvision",
  input: [3, 224, 224],
  classes: 1000,
  layers: [
    conv("conv1", 64, 11, { stride: 4, pad: 2 }),
    maxPool("pool1"),
    conv("conv2", 192, 5, { pad: 2 }),
    maxPool("pool2"),
    conv("conv3", 384, 3, { pad: 1 }),
    conv("conv4", 256, 3, { pad: 1 }),
    conv("conv5", 256, 3, { pad: 1 }),
    maxPool("pool5"),
    dropout("drop5"),
    dense("fc6", 4096),
    dropout("drop6"),
    dense("fc7", 4096),
    dense("fc8", 1000, { relu: false }),
  ],
};

/**
 * The named configurations.
 *
 * @example
 * ```ts
 * import { MODELS } from "./models.ts";
 * console.log(Object.keys(MODELS)); // ["alexnet", "alexnet-small", "torchvision"]
 * ```
 */
export const MODELS: Readonly<Record<string, ModelConfig>> = {
  "alexnet": ALEXNET,
  "alexnet-small": ALEXNET_SMALL,
  "torchvision": TORCHVISION_ALEXNET,
};

/**
 * The configuration `model` names (one of {@linkcode MODELS}), or `model` itself.
 *
 * @example
 * ```ts
 * import { resolveModel } from "./models.ts";
 * console.log(resolveModel("alexnet-small").classes); // 10
 * ```
 */
export function resolveModel(model: string | ModelConfig): ModelConfig {
  const config = typeof model === "string" ? MODELS[model] : model;
  if (!config) {
    throw new RangeError(`unknown model "${model}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  return config;
}

/**
 * `config` with a classifier for `classes` classes: the last dense layer's outputs replaced (a new
 * head for fine-tuning on other classes; its weights are initialised afresh).
 *
 * @example
 * ```ts
 * import { ALEXNET_SMALL, withClasses } from "./models.ts";
 * const five = withClasses(ALEXNET_SMALL, 5);
 * console.log(five.classes, five.layers.at(-1)); // 5 { kind: "dense", name: "fc8", out: 5, ... }
 * ```
 */
export function withClasses(config: ModelConfig, classes: number): ModelConfig {
  const head = config.layers.at(-1);
  if (head?.kind !== "dense") throw new RangeError(`${config.name} does not end in a dense layer`);
  if (!Number.isInteger(classes) || classes < 1) {
    throw new RangeError(`classes must be a positive integer, got ${classes}`);
  }
  return { ...config, classes, layers: [...config.layers.slice(0, -1), { ...head, out: classes }] };
}

/**
 * The layers `text` names, in table order: a comma list of layer names and ranges (`conv1-conv5`:
 * every layer with parameters from the first to the second).
 *
 * @example
 * ```ts
 * import { ALEXNET, layerList } from "./models.ts";
 * console.log(layerList(ALEXNET, "conv1-conv3,fc6")); // ["conv1", "conv2", "conv3", "fc6"]
 * ```
 */
export function layerList(config: ModelConfig, text: string): string[] {
  const names = config.layers.map((l) => l.name);
  const index = (name: string) => {
    const at = names.indexOf(name);
    if (at < 0) throw new RangeError(`no layer "${name}" in ${config.name} (${names.join(", ")})`);
    return at;
  };
  const picked = new Set<number>();
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [from, to = from] = part.split("-");
    const [a, b] = [index(from), index(to)];
    if (a > b) throw new RangeError(`${part}: ${from} comes after ${to}`);
    for (let i = a; i <= b; i++) {
      const kind = config.layers[i].kind;
      if (kind === "conv" || kind === "dense") picked.add(i);
    }
  }
  return [...picked].sort((x, y) => x - y).map((i) => names[i]);
}
