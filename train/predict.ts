/**
 * Trained weights on image files: a network and its preprocessing from a weights file, the files'
 * bytes as a batch the way the network was trained, and the top classes with probabilities. The
 * command line's `predict` and the browser page both run these, on file bytes.
 *
 * @module
 */
import { cropPadding, type Dataset, makeBatch } from "../data/dataset.ts";
import { decodeImage } from "../data/image.ts";
import { storedSize } from "../data/open.ts";
import { decodePreprocess, type Preprocess } from "../data/preprocess.ts";
import { resizeAndCentreCrop } from "../data/resize.ts";
import { readBytes } from "../io/files.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import { fromTorchvision } from "../io/torchvision.ts";
import { parseWeightsFile } from "../io/weights_file.ts";
import type { Precision } from "../gpu/acquire.ts";
import { MODELS, withClasses } from "../layers/models.ts";
import { createAlexNet, type Network } from "../layers/network.ts";

export type { Preprocess } from "../data/preprocess.ts";

/** A network made from a weights file, with the preprocessing recorded in it (if any). */
export interface OpenedWeights {
  /** The network, holding the file's tensors. */
  net: Network;
  /** The class names, stored size and mean image the network was trained with. */
  preprocess?: Preprocess;
}

/** What a weights file holds, under this project's names. */
export interface WeightsFile {
  /** The model it is for. */
  model: string;
  /** Its tensors (torchvision's names mapped to this project's). */
  tensors: Map<string, NamedTensor>;
  /** The class names, stored size and mean image it was trained with, where recorded. */
  preprocess?: Preprocess;
}

/**
 * A weights file's bytes (safetensors or `.pth`) read for a model: the one the file names, else
 * torchvision's where its tensors have torchvision's names, else `model` (which must agree with a
 * named one), else `fallback`.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "../io/safetensors.ts";
 * import { readWeightsFile } from "./predict.ts";
 * const bytes = serializeSafetensors({ "fc8.bias": { shape: [1], data: new Float32Array(1) } }, {
 *   model: "alexnet-small",
 * });
 * console.log(readWeightsFile(bytes).model); // "alexnet-small"
 * ```
 */
export function readWeightsFile(
  bytes: Uint8Array,
  options: { model?: string; fallback?: string } = {},
): WeightsFile {
  const file = parseWeightsFile(bytes);
  const torchvision = file.tensors.has("features.0.weight");
  const named = file.metadata.model ?? (torchvision ? "torchvision" : undefined);
  if (named && options.model && named !== options.model) {
    throw new RangeError(`the weights are ${named}'s, not ${options.model}'s`);
  }
  const model = named ?? options.model ?? options.fallback;
  if (!model || !MODELS[model]) {
    throw new RangeError(
      `the weights do not name a known model (${file.metadata.model}): name one of ${
        Object.keys(MODELS).join(", ")
      }`,
    );
  }
  const { preprocess } = file.metadata;
  return {
    model,
    tensors: torchvision ? fromTorchvision(file.tensors) : file.tensors,
    preprocess: preprocess === undefined ? undefined : decodePreprocess(preprocess),
  };
}

/**
 * Makes the network a weights file is for ({@linkcode readWeightsFile}: `model` where the file
 * names none) and loads the file's tensors into it: safetensors or `.pth` (torchvision's too), as
 * a path, a URL, a `Blob` (a browser's `File`) or the bytes.
 *
 * @example
 * ```ts
 * import { createAlexNet } from "../layers/network.ts";
 * import { openWeights } from "./predict.ts";
 * const trained = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * const { net } = await openWeights(await trained.weightsBytes());
 * console.log(net.config.name); // "alexnet-small"
 * await net.destroy();
 * await trained.destroy();
 * ```
 */
export async function openWeights(
  source: string | URL | Uint8Array | Blob,
  options: { model?: string; precision?: Precision } = {},
): Promise<OpenedWeights> {
  const { model, tensors, preprocess } = readWeightsFile(await readBytes(source), options);
  // A fine-tuned network keeps its model's name with a head for its own classes.
  const config = MODELS[model], head = config.layers.at(-1)!.name;
  const classes = tensors.get(`${head}.bias`)?.shape[0] ?? config.classes;
  const net = await createAlexNet({
    model: classes === config.classes ? config : withClasses(config, classes),
    init: "none",
    precision: options.precision,
  });
  try {
    await net.setWeights(tensors);
  } catch (e) {
    await net.destroy();
    throw e;
  }
  return { net, preprocess };
}

/**
 * Image files' bytes (PNG or JPEG) decoded, resized and centre-cropped to `size` pixels square:
 * a dataset of unlabelled images. `names` name the files in errors.
 *
 * @example
 * ```ts
 * import { encodePng } from "../data/image.ts";
 * import { readImages } from "./predict.ts";
 * const png = encodePng(new Uint8Array(4 * 4), { width: 4, height: 4, channels: 1 });
 * console.log(readImages([png], 1, 2).shape); // [1, 2, 2]
 * ```
 */
export function readImages(
  files: readonly Uint8Array[],
  channels: 1 | 3,
  size: number,
  names: readonly string[] = files.map((_, i) => `image ${i + 1}`),
): Dataset {
  const stored = channels * size * size, images = new Uint8Array(files.length * stored);
  for (const [i, bytes] of files.entries()) {
    try {
      images.set(resizeAndCentreCrop(decodeImage(bytes, channels), size).data, i * stored);
    } catch (e) {
      throw new RangeError(`${names[i]}: ${(e as Error).message}`);
    }
  }
  return {
    count: files.length,
    shape: [channels, size, size],
    images,
    labels: new Int32Array(files.length),
    classes: [],
  };
}

/** One class of a {@linkcode predict} answer. */
export interface Ranked {
  /** Its index among the network's outputs. */
  index: number;
  /** Its name from the preprocessing record, or "class N". */
  name: string;
  /** Its softmax probability (averaged over the views). */
  probability: number;
}

/** Options of {@linkcode predict}. */
export interface PredictOptions {
  /** What the network was trained with; without it, nothing is subtracted. */
  preprocess?: Preprocess;
  /** 1: the centre crop (default); 10: the paper's ten views, softmax averaged. */
  crops?: 1 | 10;
  /** Classes to keep per image (default 5). */
  top?: number;
}

/**
 * The top classes of each image file (bytes, PNG or JPEG), read as the network was trained.
 *
 * @example
 * ```ts
 * import { encodePng } from "../data/image.ts";
 * import { createAlexNet } from "../layers/network.ts";
 * import { predict } from "./predict.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * const png = encodePng(new Uint8Array(32 * 32), { width: 32, height: 32, channels: 1 });
 * const [ranked] = await predict(net, [png], { top: 3 });
 * console.log(ranked.length, ranked[0].name); // 3 "class ..."
 * await net.destroy();
 * ```
 */
export async function predict(
  net: Network,
  files: readonly Uint8Array[],
  options: PredictOptions & { names?: readonly string[] } = {},
): Promise<Ranked[][]> {
  const probabilities = await classProbabilities(net, files, options);
  const classes = net.config.classes, top = options.top ?? 5;
  return files.map((_, i) =>
    Array.from(probabilities.subarray(i * classes, (i + 1) * classes), (probability, index) => ({
      index,
      name: options.preprocess?.classes[index] ?? `class ${index}`,
      probability,
    })).sort((a, b) => b.probability - a.probability).slice(0, top)
  );
}

/**
 * The network's input for image files (bytes) at one of the ten views (4, the centre, by
 * default): decoded, resized and cropped, less the mean image, over the deviations where recorded.
 *
 * @example
 * ```ts
 * import { encodePng } from "../data/image.ts";
 * import { createAlexNet } from "../layers/network.ts";
 * import { imageInput } from "./predict.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * const png = encodePng(new Uint8Array(32 * 32), { width: 32, height: 32, channels: 1 });
 * console.log(imageInput(net, [png]).length); // 784: one 28 x 28 crop
 * await net.destroy();
 * ```
 */
export function imageInput(
  net: Network,
  files: readonly Uint8Array[],
  options: { preprocess?: Preprocess; view?: number; names?: readonly string[] } = {},
): Float32Array {
  const [c, h, w] = net.config.input;
  const size = options.preprocess?.shape[1] ?? storedSize(h);
  const set = readImages(files, c as 1 | 3, size, options.names);
  return makeBatch(set, files.map((_, i) => i), {
    mean: options.preprocess?.mean ?? new Float32Array(c * size * size),
    std: options.preprocess?.std,
    crop: [h, w],
    view: options.view ?? 4,
    viewPad: cropPadding(set.shape, [h, w]),
  }).input;
}

/** Every class's probability for each file, [files, classes], averaged over the views. */
async function classProbabilities(
  net: Network,
  files: readonly Uint8Array[],
  options: PredictOptions & { names?: readonly string[] },
): Promise<Float64Array> {
  const crops = options.crops ?? 1;
  if (crops !== 1 && crops !== 10) throw new RangeError(`crops must be 1 or 10, got ${crops}`);
  const probabilities = new Float64Array(files.length * net.config.classes);
  for (let view = crops === 1 ? 4 : 0; view < (crops === 1 ? 5 : 10); view++) {
    const input = imageInput(net, files, { ...options, view });
    const p = await net.forward(input, files.length, { softmax: true });
    for (let i = 0; i < p.length; i++) probabilities[i] += p[i] / crops;
  }
  return probabilities;
}
