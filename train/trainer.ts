/**
 * The training loop: epochs of seeded, shuffled, augmented batches; the paper's learning-rate
 * rule (divide by 10 when validation error stops improving, or at fixed epochs); validation
 * top-1 and top-5 error after every epoch; a metrics file; checkpoints that let a stopped run
 * continue exactly where it stopped. The run's context is in `run.ts`, an epoch in `epoch.ts`,
 * the schedule in `schedule.ts`.
 *
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import { BatchLoader } from "../data/loader.ts";
import type { Statistics } from "../data/statistics.ts";
import type { Network } from "../layers/network.ts";
import { finishEpoch, trainEpoch } from "./epoch.ts";
import { openRun } from "./run.ts";

export { DivergedError, TrainingError } from "./errors.ts";

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
  /** The layers kept fixed (fine-tuning), when any were. */
  frozen?: string[];
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
 * Trains `net` on `data.train`, validating on `data.test` after every epoch.
 *
 * @example
 * ```ts ignore
 * import { createAlexNet, openDataset, train } from "../mod.ts";
 * const net = await createAlexNet({ model: "alexnet-small", init: "he" });
 * const data = await openDataset("data/fashion-mnist-mini", { input: net.config.input });
 * await train(net, data, { epochs: 1, batch: 128, lr: 0.01, lrSteps: [], patience: 2,
 *   momentum: 0.9, weightDecay: 5e-4, seed: 1, augment: true, out: "runs/x", resume: false },
 *   { progress() {}, epoch: console.log, message: console.log });
 * ```
 */
export async function train(
  net: Network,
  data: { train: Dataset; test: Dataset; stats?: Statistics },
  options: TrainOptions,
  report: Reporter,
): Promise<TrainResult> {
  const loader = new BatchLoader(data.train, options.workers);
  try {
    const run = await openRun(net, data, options, report);
    const metrics: EpochMetrics[] = [];
    for (; run.state.epoch < options.epochs; run.state.epoch++, run.state.batchInEpoch = 0) {
      if (!await trainEpoch(run, loader)) return { metrics, stopped: true, state: run.state };
      metrics.push(await finishEpoch(run));
    }
    return { metrics, stopped: false, state: run.state };
  } finally {
    loader.close();
  }
}
