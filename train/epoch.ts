/**
 * One epoch of a run: its batches in the seeded order, each built by a worker while the device
 * trains on the one before; then validation, the epoch's metrics, the learning-rate rule, a
 * checkpoint and the weights file.
 *
 * @module
 */
import { permutation } from "../data/dataset.ts";
import type { BatchLoader } from "../data/loader.ts";
import { writeFileAtomic } from "../io/files.ts";
import { DivergedError } from "./errors.ts";
import { evaluateDataset } from "./evaluate.ts";
import { checkpoint, type Run } from "./run.ts";
import { afterValidation, rateAtEpoch } from "./schedule.ts";
import type { EpochMetrics } from "./trainer.ts";

type Batch = Promise<{ input: Float32Array; labels: Int32Array }>;

/**
 * Trains the rest of the epoch the run stands in. Returns false where it stopped early (the
 * signal, or `maxSteps`), after writing a checkpoint at the batch it stopped before.
 *
 * @example
 * ```ts ignore
 * if (!await trainEpoch(run, loader)) return; // stopped, checkpointed
 * ```
 */
export async function trainEpoch(run: Run, loader: BatchLoader): Promise<boolean> {
  const { state, options, net } = run;
  state.lr = rateAtEpoch(options, state.lr, state.epoch);
  const batches = Math.ceil(run.data.train.count / state.batch);
  const order = permutation(run.data.train.count, state.seed, state.epoch);
  const request = (b: number) => b < batches ? requestBatch(run, loader, order, b) : undefined;
  let next = request(state.batchInEpoch);
  for (; state.batchInEpoch < batches; state.batchInEpoch++) {
    const stop = options.signal?.aborted ||
      (options.maxSteps !== undefined && run.steps >= options.maxSteps);
    if (stop) {
      await next?.catch(() => {});
      await checkpoint(run, state);
      run.report.message(
        `stopped at epoch ${
          state.epoch + 1
        }, batch ${state.batchInEpoch}; checkpoint ${run.checkpointPath}`,
      );
      return false;
    }
    const where = `step ${net.step + 1} (epoch ${state.epoch + 1}, batch ${
      state.batchInEpoch + 1
    })`;
    const { input, labels } = await run.guard(`building the batch of ${where}`, () => next!);
    next = request(state.batchInEpoch + 1);
    await step(run, input, labels, where);
  }
  return true;
}

/** The batch of position `b` in the epoch, requested from a worker; augmented from its step. */
function requestBatch(run: Run, loader: BatchLoader, order: Int32Array, b: number): Batch {
  const { state, options } = run, count = run.data.train.count;
  const first = b * state.batch;
  const indices = order.subarray(first, Math.min(first + state.batch, count));
  const step = run.net.step + (b - state.batchInEpoch);
  const augment = options.augment
    ? { pad: run.pad, flip: true, seed: state.seed, step, pca: run.data.stats?.pca }
    : undefined;
  const batch = loader.batch(indices, { mean: run.mean, crop: run.crop, augment });
  batch.catch(() => {}); // a prefetch abandoned by a failed step must not become unhandled
  return batch;
}

/** One training step, its numbers added to the epoch's and reported. */
async function step(run: Run, input: Float32Array, labels: Int32Array, where: string) {
  const { state, options, net } = run;
  const started = performance.now();
  const { loss, accuracy } = await run.guard(where, () =>
    net.trainStep(input, labels, {
      lr: state.lr,
      momentum: options.momentum,
      weightDecay: options.weightDecay,
    }));
  if (!Number.isFinite(loss)) {
    throw new DivergedError(
      `the loss became ${loss} at step ${net.step} (epoch ${state.epoch + 1}, batch ${
        state.batchInEpoch + 1
      }); try a smaller --lr. The last checkpoint (${run.checkpointPath}) is intact: resume with --resume`,
    );
  }
  run.steps++;
  const r = state.running;
  r.seconds += (performance.now() - started) / 1000;
  r.loss += loss * labels.length;
  r.hits += accuracy * labels.length;
  r.examples += labels.length;
  run.report.progress({
    epoch: state.epoch + 1,
    epochs: options.epochs,
    done: r.examples,
    total: run.data.train.count,
    loss: r.loss / r.examples,
    accuracy: r.hits / r.examples,
    imagesPerSecond: r.examples / r.seconds,
  });
}

/**
 * Ends the epoch: validation, its metrics (reported and appended to metrics.jsonl), the paper's
 * learning-rate rule, then a checkpoint at the next epoch's start and the weights file.
 *
 * @example
 * ```ts ignore
 * const metrics = await finishEpoch(run);
 * ```
 */
export async function finishEpoch(run: Run): Promise<EpochMetrics> {
  const { state, options, net } = run;
  const validation = await run.guard(
    `validation after epoch ${state.epoch + 1}`,
    () =>
      evaluateDataset(net, run.data.test, { mean: run.mean, crop: run.crop, batch: options.batch }),
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
  run.report.epoch(m);
  const metrics = `${options.out}/metrics.jsonl`;
  await run.guard(
    `writing ${metrics}`,
    () => Deno.writeTextFile(metrics, JSON.stringify(m) + "\n", { append: true }),
  );
  const lowered = afterValidation(options, state, m.top1Error);
  if (lowered !== undefined) {
    run.report.message(`validation error stopped improving: learning rate now ${lowered}`);
  }
  state.running = { loss: 0, hits: 0, examples: 0, seconds: 0 };
  // The checkpoint points at the next epoch's start: a run resumed from it goes on there.
  await checkpoint(run, { ...state, epoch: state.epoch + 1, batchInEpoch: 0 });
  await writeFileAtomic(
    `${options.out}/weights.safetensors`,
    await net.weightsBytes({ preprocess: run.preprocess }),
  );
  return m;
}
