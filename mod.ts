/**
 * AlexNet (Krizhevsky, Sutskever and Hinton, 2012) in hand-written WGSL compute kernels on
 * WebGPU. This module holds the layer graph (the paper's table, as data) and re-exports the
 * library.
 *
 * ```ts
 * import { createAlexNet } from "./mod.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * const logits = await net.forward(new Float32Array(2 * 28 * 28), 2); // 2 x 10 logits
 * console.log(logits.length); // 20
 * net.destroy();
 * ```
 *
 * @module
 */
import { Gpu, type Precision } from "./gpu/device.ts";
import type { LrnParams } from "./kernels/lrn_forward.ts";
import { PAPER_LRN } from "./kernels/lrn_forward.ts";
import type { InitScheme } from "./layers/init.ts";
import { type LayerSpec, type Model, type ModelConfig, Network } from "./layers/network.ts";
import { type Parallelism, ParallelNetwork } from "./parallel/scheduler.ts";

export {
  type BatchOptions,
  type ColourPca,
  type Dataset,
  FASHION_MNIST_CLASSES,
  loadIdxDirectory,
  makeBatch,
  meanImage,
  permutation,
} from "./data/dataset.ts";
export { DataError, type FolderOptions, loadImageFolder, type Skipped } from "./data/folder.ts";
export { decodeImage, encodePng, ImageError, type Picture } from "./data/image.ts";
export { BatchLoader } from "./data/loader.ts";
export { openDataset, type OpenedDataset, type OpenOptions, storedSize } from "./data/open.ts";
export { decodePreprocess, encodePreprocess, type Preprocess } from "./data/preprocess.ts";
export { resize, resizeAndCentreCrop } from "./data/resize.ts";
export { colourPca, type Statistics } from "./data/statistics.ts";
export { type Job, WorkerPool } from "./data/workers.ts";
export { Gpu, GpuError } from "./gpu/device.ts";
export type {
  BindingKind,
  Dispatch,
  GpuOptions,
  Launch,
  Pipeline,
  Precision,
  Resource,
} from "./gpu/device.ts";
export { numel, Tensor } from "./gpu/tensor.ts";
export {
  type Dtype,
  type NamedTensor,
  parseSafetensors,
  type Safetensors,
  SafetensorsError,
  serializeSafetensors,
} from "./io/safetensors.ts";
export { type LrnParams, PAPER_LRN } from "./kernels/lrn_forward.ts";
export type { InitScheme } from "./layers/init.ts";
export type { BackwardArgs, GemmTuning, Layer, Shape } from "./layers/layer.ts";
export {
  defaultTuningPath,
  GEMM_CANDIDATES,
  GEMM_TILES,
  type GemmTile,
  loadTuning,
  saveTuning,
} from "./kernels/gemm.ts";
export {
  checkBatch,
  checkWeights,
  type Evaluation,
  type ForwardOptions,
  initialWeights,
  type LayerSpec,
  microBatchLimit,
  type Model,
  type ModelConfig,
  Network,
  type NetworkOptions,
  scoreLogits,
  type TrainStepOptions,
  weightsFile,
} from "./layers/network.ts";
export type { SgdHyper } from "./layers/sgd.ts";
export {
  type ExchangeStats,
  type Parallelism,
  ParallelNetwork,
  type ParallelOptions,
} from "./parallel/scheduler.ts";
export { joinTowers, splitTowers, towerHalf, towerRows } from "./parallel/split.ts";
export { type ForwardCall, Tower, type TowerSpec } from "./parallel/tower.ts";
export { fromTorchvision, IMAGENET_NORMALISATION, TORCHVISION_NAMES } from "./io/torchvision.ts";
export { filterGrid } from "./viz/filters.ts";
export { type GridOptions, interleave, tileGrid } from "./viz/grid.ts";
export { nearestNeighbours, neighbourGrid } from "./viz/neighbors.ts";
export { plotMetrics } from "./viz/plot.ts";
export {
  DivergedError,
  type EpochMetrics,
  evaluateDataset,
  type EvaluateOptions,
  type Progress,
  type Reporter,
  train,
  type TrainerState,
  TrainingError,
  type TrainOptions,
  type TrainResult,
} from "./train/trainer.ts";

/**
 * A convolution row of a layer table (ReLU fused unless `relu: false`).
 *
 * @example
 * ```ts
 * import { conv } from "./mod.ts";
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
 * import { dense } from "./mod.ts";
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
 * import { lrn } from "./mod.ts";
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
 * import { maxPool } from "./mod.ts";
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
 * import { dropout } from "./mod.ts";
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
 * import { ALEXNET } from "./mod.ts";
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
 * import { ALEXNET_SMALL } from "./mod.ts";
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
 * import { TORCHVISION_ALEXNET } from "./mod.ts";
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
 * import { MODELS } from "./mod.ts";
 * console.log(Object.keys(MODELS)); // ["alexnet", "alexnet-small", "torchvision"]
 * ```
 */
export const MODELS: Readonly<Record<string, ModelConfig>> = {
  "alexnet": ALEXNET,
  "alexnet-small": ALEXNET_SMALL,
  "torchvision": TORCHVISION_ALEXNET,
};

/** Options of {@linkcode createAlexNet}. */
export interface AlexNetOptions {
  /** A configuration name (`alexnet`, `alexnet-small`) or your own table (default `alexnet`). */
  model?: string | ModelConfig;
  /**
   * GPU devices to run on (default 1): 2 splits the network over two devices, each in its own
   * Worker, as `parallel` says.
   */
  devices?: 1 | 2;
  /** With two devices: `model` (the paper's towers, default) or `data` (replicas). */
  parallel?: Parallelism;
  /** Seed of the initial parameters (default 1). */
  seed?: number;
  /** Initialisation scheme (default "paper"). */
  init?: InitScheme;
  /** A device to build on; by default one is acquired and destroyed with the network. */
  gpu?: Gpu;
  /**
   * The GEMM core's precision on the devices acquired (default "f32"): "f16" multiplies operands
   * rounded to half precision, summing in f32 (adapters with `shader-f16`; see
   * `GpuOptions.precision`). A `gpu` given brings its own.
   */
  precision?: Precision;
}

/**
 * Acquires a device (or two) and builds a network on it, initialised from the seed: the same
 * parameters whatever the device count.
 *
 * @example
 * ```ts
 * import { createAlexNet } from "./mod.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * console.log(net.parameterCount); // 1132810
 * net.destroy();
 * const two = await createAlexNet({ model: "alexnet-small", seed: 1, devices: 2 });
 * console.log(two.description); // "2 devices (model parallel): ..."
 * await two.destroy();
 * ```
 */
export function createAlexNet(options?: AlexNetOptions & { devices?: 1 }): Promise<Network>;
/** Two devices: a {@linkcode ParallelNetwork}. */
export function createAlexNet(options: AlexNetOptions & { devices: 2 }): Promise<ParallelNetwork>;
/** One device or two, as `devices` says. */
export function createAlexNet(options?: AlexNetOptions): Promise<Model>;
export async function createAlexNet(options: AlexNetOptions = {}): Promise<Model> {
  const model = options.model ?? "alexnet";
  const config = typeof model === "string" ? MODELS[model] : model;
  if (!config) {
    throw new RangeError(`unknown model "${model}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  const devices = options.devices ?? 1;
  if (devices === 2) {
    if (options.gpu) throw new RangeError("devices: 2 acquires its own devices; leave out gpu");
    const { seed, init, parallel, precision } = options;
    return await ParallelNetwork.create(config, { seed, init, parallel, precision });
  }
  if (devices !== 1) throw new RangeError(`devices must be 1 or 2, got ${devices}`);
  if (options.gpu && options.precision && options.precision !== options.gpu.precision) {
    throw new RangeError(`precision ${options.precision} differs from the given gpu's`);
  }
  const gpu = options.gpu ?? await Gpu.create({ precision: options.precision });
  try {
    return Network.create(gpu, config, {
      seed: options.seed,
      init: options.init,
      ownsDevice: !options.gpu,
    });
  } catch (e) {
    if (!options.gpu) gpu.destroy();
    throw e;
  }
}
