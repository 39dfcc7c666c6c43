/**
 * The training loop: epochs of seeded, shuffled, augmented batches; the paper's learning-rate
 * rule (divide by 10 when validation error stops improving, or at fixed epochs); validation
 * top-1 and top-5 error after every epoch; a metrics file; checkpoints that let a stopped run
 * continue exactly where it stopped.
 *
 * @module
 */
import {
  type BatchOptions,
  cropPadding,
  type Dataset,
  makeBatch,
  meanImage,
  permutation,
} from "../data/dataset.ts";
import { BatchLoader } from "../data/loader.ts";
import { encodePreprocess } from "../data/preprocess.ts";
import type { Statistics } from "../data/statistics.ts";
import { type Model, scoreLogits } from "../layers/network.ts";
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from "./checkpoint.ts";

/** How to train. */
export interface TrainOptions {
  /** Epochs to train (in all, counting those of a resumed run). */
  epochs: number;
  /** Examples per step. */
  batch: number;
  /** Initial learning rate. */
  lr: number;
  /** Epochs (0-based) at whose start the learning rate is divided by 10; empty: the paper's rule. */
  lrSteps: number[];
  /** With no `lrSteps`: epochs without a better validation error before dividing by 10. */
  patience: number;
  /** Momentum. */
  momentum: number;
  /** Weight decay. */
  weightDecay: number;
  /** Seed of the order, augmentation and dropout. */
  seed: number;
  /** Random crops and horizontal flips, and for RGB data the paper's colour noise. */
  augment: boolean;
  /** Workers that build batches ahead of the device (0: on the main thread; default: one per core). */
  workers?: number;
  /** Output folder: checkpoint.safetensors, weights.safetensors, metrics.jsonl. */
  out: string;
  /** Continue from `out`/checkpoint.safetensors. */
  resume: boolean;
  /** Names the data (a resumed run must use the same). */
  data?: string;
  /** Stop (after the current step, with a checkpoint) when aborted. */
  signal?: AbortSignal;
  /** Steps to run at most (tests and benchmarks); the run stops with a checkpoint after them. */
  maxSteps?: number;
}

/** Where a run stands: what a checkpoint restores. */
export interface TrainerState {
  /** The model's configuration name. */
  model: string;
  /** The epoch in progress (0-based). */
  epoch: number;
  /** Batches of that epoch already done. */
  batchInEpoch: number;
  /** The current learning rate. */
  lr: number;
  /** Best validation top-1 error so far. */
  bestError: number;
  /** Epochs since it improved. */
  staleEpochs: number;
  /** The options the run was started with (seed, batch: they must not change on resume). */
  seed: number;
  /** Examples per step. */
  batch: number;
  /** The data's name, when the run gave one. */
  data?: string;
  /** Sums over the epoch in progress: loss, hits, examples, seconds. */
  running: { loss: number; hits: number; examples: number; seconds: number };
}

/** One epoch's numbers, as written to metrics.jsonl. */
export interface EpochMetrics {
  /** 1-based epoch. */
  epoch: number;
  /** Learning rate used. */
  lr: number;
  /** Mean training loss. */
  trainLoss: number;
  /** Training top-1 accuracy (with dropout and augmentation). */
  trainAccuracy: number;
  /** Validation top-1 error. */
  top1Error: number;
  /** Validation top-5 error. */
  top5Error: number;
  /** Validation loss. */
  validationLoss: number;
  /** Training seconds (without validation). */
  seconds: number;
  /** Training images per second. */
  imagesPerSecond: number;
}

/** Progress within an epoch. */
export interface Progress {
  /** 1-based epoch. */
  epoch: number;
  /** Epochs in all. */
  epochs: number;
  /** Examples done in the epoch. */
  done: number;
  /** Examples in the epoch. */
  total: number;
  /** Running loss over the epoch. */
  loss: number;
  /** Running top-1 accuracy over the epoch. */
  accuracy: number;
  /** Training images per second over the epoch. */
  imagesPerSecond: number;
}

/** What the loop tells its caller. */
export interface Reporter {
  /** After every step. */
  progress(p: Progress): void;
  /** After every epoch. */
  epoch(m: EpochMetrics): void;
  /** Anything else worth a line. */
  message(text: string): void;
}

/** How a run ended. */
export interface TrainResult {
  /** Every finished epoch's metrics (this run's). */
  metrics: EpochMetrics[];
  /** True when stopped early (signal or maxSteps), with a checkpoint written. */
  stopped: boolean;
  /** The state at the end. */
  state: TrainerState;
}

/**
 * A run stopped by a fault (a failed step, a lost device, a failed write): the message names the
 * step and the checkpoint to resume from, which the fault left intact.
 *
 * @example
 * ```ts
 * import { TrainingError } from "./trainer.ts";
 * const e = new TrainingError("step 7 (epoch 1, batch 7) failed: ...");
 * console.log(e instanceof Error); // true
 * ```
 */
export class TrainingError extends Error {
  /**
   * An error with `message`, caused by `cause`.
   *
   * @example
   * ```ts
   * import { TrainingError } from "./trainer.ts";
   * console.log(new TrainingError("step 3 failed").name); // TrainingError
   * ```
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TrainingError";
  }
}

/**
 * A loss that is NaN or infinite: training stops, the last checkpoint stays.
 *
 * @example
 * ```ts
 * import { DivergedError } from "./trainer.ts";
 * console.log(new DivergedError("the loss became NaN at step 3").name); // "DivergedError"
 * ```
 */
export class DivergedError extends Error {
  /** Names the step and the checkpoint to resume from. */
  constructor(message: string) {
    super(message);
    this.name = "DivergedError";
  }
}

/**
 * Trains `net` on `data.train`, validating on `data.test` after every epoch.
 *
 * @example
 * ```ts ignore
 * import { createAlexNet } from "../mod.ts";
 * import { DEBIAN_FASHION_MNIST, loadIdxDirectory } from "../data/dataset.ts";
 * import { train } from "./trainer.ts";
 * const net = await createAlexNet({ model: "alexnet-small", init: "he" });
 * const data = await loadIdxDirectory(DEBIAN_FASHION_MNIST);
 * await train(net, data, { epochs: 1, batch: 128, lr: 0.01, lrSteps: [], patience: 2,
 *   momentum: 0.9, weightDecay: 5e-4, seed: 1, augment: true, out: "runs/x", resume: false },
 *   { progress() {}, epoch: console.log, message: console.log });
 * ```
 */
export async function train(
  net: Model,
  data: { train: Dataset; test: Dataset; stats?: Statistics },
  options: TrainOptions,
  report: Reporter,
): Promise<TrainResult> {
  const loader = new BatchLoader(data.train, options.workers);
  try {
    return await trainLoop(net, data, options, report, loader);
  } finally {
    loader.close();
  }
}

async function trainLoop(
  net: Model,
  data: { train: Dataset; test: Dataset; stats?: Statistics },
  options: TrainOptions,
  report: Reporter,
  loader: BatchLoader,
): Promise<TrainResult> {
  const { train: trainSet, test } = data;
  const checkpointPath = `${options.out}/checkpoint.safetensors`;
  const mean = data.stats?.mean ?? meanImage(trainSet);
  const [, h, w] = net.config.input, crop = [h, w] as const;
  const pad = cropPadding(trainSet.shape, crop);
  const preprocess = encodePreprocess({ classes: trainSet.classes, shape: trainSet.shape, mean });
  let state: TrainerState = {
    model: net.config.name,
    epoch: 0,
    batchInEpoch: 0,
    lr: options.lr,
    bestError: Infinity,
    staleEpochs: 0,
    seed: options.seed,
    batch: options.batch,
    data: options.data,
    running: { loss: 0, hits: 0, examples: 0, seconds: 0 },
  };
  await Deno.mkdir(options.out, { recursive: true });
  // A run killed while writing leaves its temporary file; the renamed-into-place files are whole.
  for await (const entry of Deno.readDir(options.out)) {
    if (/^(checkpoint|weights)\.safetensors\.\d+\.tmp$/.test(entry.name)) {
      await Deno.remove(`${options.out}/${entry.name}`);
    }
  }
  if (options.resume) {
    const saved = await loadCheckpoint<TrainerState>(checkpointPath);
    if (saved.state.model !== net.config.name) {
      throw new RangeError(
        `${checkpointPath} is a checkpoint of ${saved.state.model}, not ${net.config.name}`,
      );
    }
    if (
      saved.state.data !== undefined && options.data !== undefined &&
      saved.state.data !== options.data
    ) {
      throw new RangeError(
        `${checkpointPath} was trained on ${saved.state.data}, not ${options.data}: pass the same --data`,
      );
    }
    await net.setWeights(saved.weights);
    await net.loadOptimizerState(saved.velocities);
    state = saved.state;
    if (state.batch !== options.batch || state.seed !== options.seed) {
      report.message(`resuming with the checkpoint's batch ${state.batch} and seed ${state.seed}`);
    }
    net.step = stepsBefore(state, trainSet.count);
    report.message(
      `resumed ${checkpointPath}: epoch ${state.epoch + 1}, batch ${state.batchInEpoch}`,
    );
  }
  const resumeHint = async () =>
    await Deno.stat(checkpointPath).then(
      () => `the last checkpoint (${checkpointPath}) is intact: resume with --resume`,
      () => "no checkpoint was written yet",
    );
  // Any fault inside a step or a write becomes one message: where, why, and how to go on.
  const guard = async <T>(where: string, work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (e) {
      if (e instanceof DivergedError || e instanceof TrainingError) throw e;
      const message = (e as Error).message;
      const hint = /out of memory|OutOfMemory/i.test(message)
        ? " (the device ran out of memory: try a smaller --batch)"
        : "";
      throw new TrainingError(`${where} failed: ${message}${hint}; ${await resumeHint()}`, {
        cause: e,
      });
    }
  };
  const checkpoint = (at: TrainerState) =>
    guard(`writing ${checkpointPath}`, async () =>
      await saveCheckpoint(checkpointPath, {
        weights: await net.weights(),
        velocities: await net.optimizerState(),
        state: at,
      }));
  const metrics: EpochMetrics[] = [];
  const batchesPerEpoch = Math.ceil(trainSet.count / state.batch);
  let steps = 0;
  for (; state.epoch < options.epochs; state.epoch++, state.batchInEpoch = 0) {
    if (options.lrSteps.length > 0) {
      state.lr = options.lr * 0.1 ** options.lrSteps.filter((e) => e <= state.epoch).length;
    }
    const order = permutation(trainSet.count, state.seed, state.epoch);
    // The batch of position `b` in this epoch, built by a worker; the next one is requested
    // before the device trains on the current one.
    const request = (b: number, step: number) => {
      const first = b * state.batch;
      const indices = order.subarray(first, Math.min(first + state.batch, trainSet.count));
      const augment = options.augment
        ? { pad, flip: true, seed: state.seed, step, pca: data.stats?.pca }
        : undefined;
      const batch = loader.batch(indices, { mean, crop, augment });
      batch.catch(() => {}); // a prefetch abandoned by a failed step must not become unhandled
      return batch;
    };
    let next = state.batchInEpoch < batchesPerEpoch
      ? request(state.batchInEpoch, net.step)
      : undefined;
    for (; state.batchInEpoch < batchesPerEpoch; state.batchInEpoch++) {
      if (
        options.signal?.aborted || (options.maxSteps !== undefined && steps >= options.maxSteps)
      ) {
        await next?.catch(() => {});
        await checkpoint(state);
        report.message(
          `stopped at epoch ${
            state.epoch + 1
          }, batch ${state.batchInEpoch}; checkpoint ${checkpointPath}`,
        );
        return { metrics, stopped: true, state };
      }
      const where = `step ${net.step + 1} (epoch ${state.epoch + 1}, batch ${
        state.batchInEpoch + 1
      })`;
      const { input, labels } = await guard(`building the batch of ${where}`, () => next!);
      next = state.batchInEpoch + 1 < batchesPerEpoch
        ? request(state.batchInEpoch + 1, net.step + 1)
        : undefined;
      const started = performance.now();
      const { loss, accuracy } = await guard(where, () =>
        net.trainStep(input, labels, {
          lr: state.lr,
          momentum: options.momentum,
          weightDecay: options.weightDecay,
        }));
      if (!Number.isFinite(loss)) {
        throw new DivergedError(
          `the loss became ${loss} at step ${net.step} (epoch ${
            state.epoch + 1
          }, batch ${state.batchInEpoch}); ` +
            `try a smaller --lr. The last checkpoint (${checkpointPath}) is intact: resume with --resume`,
        );
      }
      steps++;
      const r = state.running;
      r.seconds += (performance.now() - started) / 1000;
      r.loss += loss * labels.length;
      r.hits += accuracy * labels.length;
      r.examples += labels.length;
      report.progress({
        epoch: state.epoch + 1,
        epochs: options.epochs,
        done: r.examples,
        total: trainSet.count,
        loss: r.loss / r.examples,
        accuracy: r.hits / r.examples,
        imagesPerSecond: r.examples / r.seconds,
      });
    }
    const validation = await guard(
      `validation after epoch ${state.epoch + 1}`,
      () => evaluateDataset(net, test, { mean, crop, batch: options.batch }),
    );
    const r = state.running;
    const m: EpochMetrics = {
      epoch: state.epoch + 1,
      lr: state.lr,
      trainLoss: r.loss / r.examples,
      trainAccuracy: r.hits / r.examples,
      top1Error: 1 - validation.top1,
      top5Error: 1 - validation.top5,
      validationLoss: validation.loss,
      seconds: r.seconds,
      imagesPerSecond: r.examples / r.seconds,
    };
    metrics.push(m);
    report.epoch(m);
    await guard(
      `writing ${options.out}/metrics.jsonl`,
      () =>
        Deno.writeTextFile(`${options.out}/metrics.jsonl`, JSON.stringify(m) + "\n", {
          append: true,
        }),
    );
    if (options.lrSteps.length === 0) {
      if (m.top1Error < state.bestError - 1e-4) {
        state.bestError = m.top1Error;
        state.staleEpochs = 0;
      } else if (++state.staleEpochs >= options.patience) {
        state.lr /= 10;
        state.staleEpochs = 0;
        report.message(`validation error stopped improving: learning rate now ${state.lr}`);
      }
    }
    state.running = { loss: 0, hits: 0, examples: 0, seconds: 0 };
    // The checkpoint points at the next epoch's start: a run resumed from it goes on there.
    await checkpoint({ ...state, epoch: state.epoch + 1, batchInEpoch: 0 });
    await writeFileAtomic(
      `${options.out}/weights.safetensors`,
      await net.weightsBytes({ preprocess }),
    );
  }
  return { metrics, stopped: false, state };
}

/** Steps taken before `state`'s position (dropout masks and augmentation derive from it). */
function stepsBefore(state: TrainerState, count: number): number {
  return state.epoch * Math.ceil(count / state.batch) + state.batchInEpoch;
}

/** How {@linkcode evaluateDataset} reads a dataset. */
export interface EvaluateOptions {
  /** The training set's mean image. */
  mean: Float32Array;
  /** Per-channel standard deviations to divide by (torchvision's weights). */
  std?: readonly number[];
  /** The model's input [height, width] (default: the stored size). */
  crop?: readonly [number, number];
  /** Examples per forward pass. */
  batch: number;
  /** 1: the centre crop; 10: the paper's test, softmax averaged over corners, centre and mirrors. */
  crops?: 1 | 10;
  /** Corners of the image padded by this many pixels (see {@linkcode BatchOptions.viewPad}). */
  viewPad?: number;
}

/**
 * Top-1 and top-5 accuracy and mean loss over a whole dataset (mean-subtracted, not augmented).
 *
 * @example
 * ```ts ignore
 * import { evaluateDataset } from "./trainer.ts";
 * console.log(await evaluateDataset(net, test, { mean, batch: 256, crops: 10 }));
 * ```
 */
export async function evaluateDataset(
  net: Model,
  d: Dataset,
  options: EvaluateOptions,
): Promise<{ top1: number; top5: number; loss: number }> {
  const classes = net.config.classes, views = options.crops === 10 ? 10 : 1;
  let top1 = 0, top5 = 0, loss = 0;
  for (let first = 0; first < d.count; first += options.batch) {
    const indices = Int32Array.from(
      { length: Math.min(options.batch, d.count - first) },
      (_, i) => first + i,
    );
    const batch: BatchOptions = {
      mean: options.mean,
      std: options.std,
      crop: options.crop,
      viewPad: options.viewPad,
    };
    let e;
    if (views === 1) {
      const { input, labels } = makeBatch(d, indices, batch);
      e = await net.evaluate(input, labels);
    } else {
      const sum = new Float64Array(indices.length * classes);
      let labels: Int32Array = new Int32Array(0);
      for (let view = 0; view < views; view++) {
        const b = makeBatch(d, indices, { ...batch, view });
        const p = await net.forward(b.input, indices.length, { softmax: true });
        for (let i = 0; i < sum.length; i++) sum[i] += p[i] / views;
        labels = b.labels;
      }
      // The log of averaged probabilities scores like logits (their softmax is the average).
      e = scoreLogits(Float32Array.from(sum, (p) => Math.log(p)), labels, classes);
    }
    top1 += e.top1 * indices.length;
    top5 += e.top5 * indices.length;
    loss += e.loss * indices.length;
  }
  return { top1: top1 / d.count, top5: top5 / d.count, loss: loss / d.count };
}
