/**
 * AlexNet (Krizhevsky, Sutskever and Hinton, 2012) in hand-written WGSL compute kernels on
 * WebGPU: the network on one device or two, its layer tables, the data pipeline, the training
 * loop, safetensors weights and the paper's pictures. Everything else is importable by path
 * (kernels/, layers/, gpu/) but is not this module's API. `deno task bundle` builds the same
 * exports as one ES module for browsers (`web/dist/mod.js`).
 *
 * ```ts
 * import { createAlexNet } from "./mod.ts";
 * const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
 * const logits = await net.forward(new Float32Array(2 * 28 * 28), 2); // 2 x 10 logits
 * console.log(logits.length); // 20
 * await net.destroy();
 * ```
 *
 * @module
 */

// The network and its options.
export {
  createAlexNet,
  type ForwardOptions,
  Network,
  type NetworkOptions,
  type Parallelism,
  type TrainStepOptions,
} from "./layers/network.ts";
export type { Evaluation } from "./layers/scoring.ts";
export type { InitScheme } from "./layers/init.ts";
export type { SgdHyper } from "./layers/sgd.ts";
export type { LayerInfo } from "./layers/tower.ts";
export type { GemmTile } from "./kernels/gemm/tiles.ts";
export type { TunedGemm } from "./kernels/gemm/tuning.ts";
export type { Precision } from "./gpu/acquire.ts";
export { GpuError } from "./gpu/errors.ts";

// The layer tables.
export {
  ALEXNET,
  ALEXNET_SMALL,
  conv,
  dense,
  dropout,
  layerList,
  type LayerSpec,
  lrn,
  maxPool,
  type ModelConfig,
  MODELS,
  TORCHVISION_ALEXNET,
  withClasses,
} from "./layers/models.ts";

export type { Shape } from "./layers/layer.ts";
export type { LrnParams } from "./kernels/lrn_forward.ts";

// Data.
export type { ColourPca, Dataset } from "./data/dataset.ts";
export { openDataset, type OpenedDataset, type OpenOptions } from "./data/open.ts";
export { DataError, type Skipped } from "./data/folder.ts";
export type { Statistics } from "./data/statistics.ts";
export { decodeImage, encodePng, ImageError, type Picture } from "./data/image.ts";
export { resizeAndCentreCrop } from "./data/resize.ts";

// Training.
export {
  DivergedError,
  type EpochMetrics,
  type Progress,
  type Reporter,
  train,
  type TrainerState,
  TrainingError,
  type TrainOptions,
  type TrainResult,
} from "./train/trainer.ts";
export { evaluateDataset, type EvaluateOptions } from "./train/evaluate.ts";

// Prediction on image files.
export {
  imageInput,
  type OpenedWeights,
  openWeights,
  predict,
  type PredictOptions,
  type Preprocess,
  type Ranked,
  readImages,
  readWeightsFile,
  type WeightsFile,
} from "./train/predict.ts";

// Weights files.
export {
  type NamedTensor,
  parseSafetensors,
  type Safetensors,
  SafetensorsError,
  serializeSafetensors,
} from "./io/safetensors.ts";
export { parsePth, PthError } from "./io/pth.ts";
export { parseWeightsFile } from "./io/weights_file.ts";
export { fromTorchvision } from "./io/torchvision.ts";

// The paper's pictures.
export { filterGrid } from "./viz/filters.ts";
export { neighbourGrid } from "./viz/neighbors.ts";
export { plotMetrics } from "./viz/plot.ts";
