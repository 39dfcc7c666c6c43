/**
 * A training run's context: where it stands (the state a checkpoint restores), what its batches
 * need (mean image, crop, padding), and its output folder. Opening a run clears the debris of a
 * crash mid-write and, where asked, resumes from the checkpoint exactly where it stopped.
 *
 * @module
 */
import { cropPadding, type Dataset, meanImage } from "../data/dataset.ts";
import { encodePreprocess } from "../data/preprocess.ts";
import type { Statistics } from "../data/statistics.ts";
import type { Network } from "../layers/network.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { faultGuard } from "./errors.ts";
import type { Reporter, TrainerState, TrainOptions } from "./trainer.ts";

/** A run in progress. */
export interface Run {
  /** The network trained. */
  net: Network;
  /** Its data. */
  data: { train: Dataset; test: Dataset; stats?: Statistics };
  /** How it trains. */
  options: TrainOptions;
  /** Where it reports. */
  report: Reporter;
  /** Where it stands. */
  state: TrainerState;
  /** `out`/checkpoint.safetensors. */
  checkpointPath: string;
  /** Turns a fault into one message naming where and how to resume. */
  guard: <T>(where: string, work: () => Promise<T>) => Promise<T>;
  /** The training set's mean image, subtracted from every input. */
  mean: Float32Array;
  /** The model's input [height, width]. */
  crop: readonly [number, number];
  /** Padding of the stored images that random crops are taken from. */
  pad: number;
  /** The preprocessing recorded in the weights file (class names, image size, mean). */
  preprocess: string;
  /** Steps this run (not counting those before a resume). */
  steps: number;
}

/**
 * Opens a run: the output folder made and cleared of temporary files a crash left, and the
 * checkpoint loaded where `options.resume` asks.
 *
 * @example
 * ```ts ignore
 * const run = await openRun(net, data, options, reporter);
 * ```
 */
export async function openRun(
  net: Network,
  data: Run["data"],
  options: TrainOptions,
  report: Reporter,
): Promise<Run> {
  const checkpointPath = `${options.out}/checkpoint.safetensors`;
  const mean = data.stats?.mean ?? meanImage(data.train);
  const [, h, w] = net.config.input, crop = [h, w] as const;
  const { classes, shape } = data.train;
  const run: Run = {
    net,
    data,
    options,
    report,
    state: {
      model: net.config.name,
      epoch: 0,
      batchInEpoch: 0,
      lr: options.lr,
      bestError: Infinity,
      staleEpochs: 0,
      seed: options.seed,
      batch: options.batch,
      data: options.data,
      frozen: [...net.frozen],
      running: { loss: 0, hits: 0, examples: 0, seconds: 0 },
    },
    checkpointPath,
    guard: faultGuard(checkpointPath),
    mean,
    crop,
    pad: cropPadding(shape, crop),
    preprocess: encodePreprocess({ classes, shape, mean }),
    steps: 0,
  };
  await Deno.mkdir(options.out, { recursive: true });
  // A run killed while writing leaves its temporary file; the renamed-into-place files are whole.
  for await (const entry of Deno.readDir(options.out)) {
    if (/^(checkpoint|weights)\.safetensors\.\d+\.tmp$/.test(entry.name)) {
      await Deno.remove(`${options.out}/${entry.name}`);
    }
  }
  if (options.resume) await resume(run);
  return run;
}

/** Restores weights, velocities, state and step from the run's checkpoint, checking it fits. */
async function resume(run: Run): Promise<void> {
  const { net, options, checkpointPath } = run;
  const saved = await loadCheckpoint<TrainerState>(checkpointPath);
  if (saved.state.model !== net.config.name) {
    throw new RangeError(
      `${checkpointPath} is a checkpoint of ${saved.state.model}, not ${net.config.name}`,
    );
  }
  const data = saved.state.data;
  if (data !== undefined && options.data !== undefined && data !== options.data) {
    throw new RangeError(
      `${checkpointPath} was trained on ${data}, not ${options.data}: pass the same --data`,
    );
  }
  const frozen = saved.state.frozen ?? [];
  if (frozen.join() !== net.frozen.join()) {
    if (net.frozen.length > 0) {
      throw new RangeError(
        `${checkpointPath} froze ${frozen.join(",") || "no layer"}, not ${net.frozen.join(",")}`,
      );
    }
    await net.freeze(frozen);
    run.report.message(`resuming with the checkpoint's frozen layers: ${frozen.join(", ")}`);
  }
  await net.setWeights(saved.weights);
  await net.loadOptimizerState(saved.velocities);
  const state = run.state = saved.state;
  if (state.batch !== options.batch || state.seed !== options.seed) {
    run.report.message(
      `resuming with the checkpoint's batch ${state.batch} and seed ${state.seed}`,
    );
  }
  net.step = state.epoch * Math.ceil(run.data.train.count / state.batch) + state.batchInEpoch;
  run.report.message(
    `resumed ${checkpointPath}: epoch ${state.epoch + 1}, batch ${state.batchInEpoch}`,
  );
}

/**
 * Writes the run's checkpoint (weights, velocities and `at`, the state to resume from), durably.
 *
 * @example
 * ```ts ignore
 * await checkpoint(run, { ...run.state, epoch: run.state.epoch + 1, batchInEpoch: 0 });
 * ```
 */
export function checkpoint(run: Run, at: TrainerState): Promise<void> {
  return run.guard(
    `writing ${run.checkpointPath}`,
    async () =>
      await saveCheckpoint(run.checkpointPath, {
        weights: await run.net.weights(),
        velocities: await run.net.optimizerState(),
        state: at,
      }),
  );
}
