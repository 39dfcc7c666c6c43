/**
 * `train`: the training loop from the command line, with progress, signals and clear errors.
 *
 * @module
 */
import type { NamedTensor } from "../io/safetensors.ts";
import { layerList, type ModelConfig, withClasses } from "../layers/models.ts";
import { createAlexNet, MODELS, type Network } from "../mod.ts";
import { readWeightsFile } from "../train/predict.ts";
import { DivergedError, type Progress, type Reporter, train } from "../train/trainer.ts";
import { applyTuning, defaultTuningPath, readTuning } from "./tuning.ts";
import {
  BUNDLED_DATA,
  type Command,
  deviceChoice,
  modelName,
  number,
  openData,
  precisionChoice,
  UsageError,
  type Values,
} from "./common.ts";

/** `train`. */
export const trainCommand: Command = {
  help: `usage: deno run -A main.ts train [options]

  --model NAME         ${Object.keys(MODELS).join(" | ")} (default alexnet-small)
  --data DIR           an image folder (one subfolder per class, PNG or JPEG; with train/ and
                       val/ halves, or every tenth image held out) or IDX files
                       (train-images-idx3-ubyte[.gz], ...); default: the bundled
                       Fashion-MNIST sample, data/fashion-mnist-mini
  --strict             a file that cannot be read is an error, not a skip
  --epochs N           epochs in all (default 10)
  --batch N            examples per step (default 128)
  --lr X               initial learning rate (default 0.01)
  --lr-steps A,B       divide the learning rate by 10 at the start of these epochs (1-based);
                       default: the paper's rule, when validation error stops improving
  --patience N         epochs without improvement before dividing (default 2)
  --momentum X         (default 0.9)
  --weight-decay X     (default 0.0005)
  --init paper|he      initialisation (default: paper for alexnet, he for alexnet-small)
  --from WEIGHTS       start from trained weights (.safetensors or .pth; torchvision's names
                       are mapped): fine-tuning. Where the data's classes differ from the
                       weights', the last layer starts afresh for the data's classes
  --freeze LAYERS      keep these layers fixed: names and ranges, e.g. conv1-conv5 or
                       conv1,conv2 (no gradients, no update; a frozen prefix runs no backward)
  --seed N             seed of the initialisation, order, augmentation and dropout (default 1)
  --no-augment         no random crops, flips or colour noise
  --out DIR            checkpoint, weights and metrics.jsonl (default runs/MODEL)
  --resume             continue from DIR/checkpoint.safetensors
  --max-steps N        stop after N steps, with a checkpoint
  --tune               first time every candidate GEMM tiling on this adapter and keep the
                       fastest (takes a while: each candidate compiles); the choices are
                       saved (~/.cache/alexnet-webgpu) and later runs use them
  --devices 1|2        GPU devices (default 1); 2 splits the network over two, each driven
                       from its own worker (two adapters where there are two)
  --parallel model|data  with two devices: the paper's towers (default) or replicas each
                       training on half the batch
  --precision f32|f16  what the convolutions and dense layers multiply (default f32): f16
                       rounds their operands to half precision and sums in f32 (adapters
                       with shader-f16)

Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits 0.`,
  options: {
    model: { type: "string" },
    data: { type: "string" },
    strict: { type: "boolean" },
    epochs: { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    "lr-steps": { type: "string" },
    patience: { type: "string" },
    momentum: { type: "string" },
    "weight-decay": { type: "string" },
    init: { type: "string" },
    from: { type: "string" },
    freeze: { type: "string" },
    seed: { type: "string" },
    "no-augment": { type: "boolean" },
    out: { type: "string" },
    resume: { type: "boolean" },
    "max-steps": { type: "string" },
    tune: { type: "boolean" },
    devices: { type: "string" },
    parallel: { type: "string" },
    precision: { type: "string" },
  },
  run: runTrain,
};

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return `${h > 0 ? `${h}:${String(m).padStart(2, "0")}` : m}:${String(s % 60).padStart(2, "0")}`;
}

/** A progress line, redrawn in place on a terminal and printed every 10% elsewhere. */
function progressPrinter(): (p: Progress) => void {
  const tty = Deno.stderr.isTerminal();
  let lastDecile = -1;
  const encoder = new TextEncoder();
  return (p) => {
    const fraction = p.done / p.total;
    const width = 24, filled = Math.round(fraction * width);
    const bar = "=".repeat(filled) + " ".repeat(width - filled);
    const left = (p.total - p.done) / p.imagesPerSecond;
    const line =
      `epoch ${p.epoch}/${p.epochs} [${bar}] ${p.done}/${p.total} loss ${p.loss.toFixed(4)} ` +
      `acc ${(100 * p.accuracy).toFixed(1)}% ${p.imagesPerSecond.toFixed(1)} img/s left ${
        duration(left)
      }`;
    if (tty) {
      Deno.stderr.writeSync(encoder.encode(`\r${line}\x1b[K${p.done === p.total ? "\n" : ""}`));
    } else if (Math.floor(fraction * 10) !== lastDecile || p.done === p.total) {
      lastDecile = Math.floor(fraction * 10);
      console.error(line);
    }
  };
}

/** The flags of `train`, checked: what the loop, the network and the data need. */
function trainFlags(v: Values) {
  const model = modelName(v, "alexnet-small");
  const lrSteps = v["lr-steps"] === undefined ? [] : String(v["lr-steps"]).split(",").map((s) => {
    const e = Number(s);
    if (!Number.isInteger(e) || e < 1) {
      throw new UsageError(`--lr-steps must list epochs >= 1, got "${v["lr-steps"]}"`);
    }
    return e - 1;
  });
  const init = String(v.init ?? (model === "alexnet" ? "paper" : "he"));
  if (init !== "paper" && init !== "he") {
    throw new UsageError(`--init must be paper or he, got "${init}"`);
  }
  const options = {
    epochs: number(v, "epochs", 10, { integer: true }),
    batch: number(v, "batch", 128, { integer: true }),
    lr: number(v, "lr", 0.01),
    lrSteps,
    patience: number(v, "patience", 2, { integer: true }),
    momentum: number(v, "momentum", 0.9, { inclusive: true }),
    weightDecay: number(v, "weight-decay", 5e-4, { inclusive: true }),
    seed: number(v, "seed", 1, { integer: true, inclusive: true }),
    augment: !v["no-augment"],
    out: String(v.out ?? `runs/${model}`),
    resume: v.resume === true,
    maxSteps: v["max-steps"] === undefined
      ? undefined
      : number(v, "max-steps", 0, { integer: true }),
  };
  const scheme: "paper" | "he" = init;
  return { model, init: scheme, options, ...deviceChoice(v), precision: precisionChoice(v) };
}

/** Weights to start from (`--from`): their tensors under this project's names, and their model. */
interface Start {
  path: string;
  model: string;
  tensors: Map<string, NamedTensor>;
  /** The class names the weights were trained on, where the file records them. */
  classes?: string[];
}

async function readStart(path: string, v: Values): Promise<Start> {
  try {
    const model = v.model === undefined ? undefined : modelName(v, "");
    const file = readWeightsFile(await Deno.readFile(path), { model, fallback: "alexnet-small" });
    return { path, model: file.model, tensors: file.tensors, classes: file.preprocess?.classes };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--from ${path}: ${(e as Error).message}`);
  }
}

/** `config` with a new head where `classes` (the data's) differ from the weights'. */
function fineTuned(config: ModelConfig, from: Start, classes: readonly string[]): ModelConfig {
  const head = config.layers.at(-1)!.name;
  const had = from.tensors.get(`${head}.bias`)?.shape[0] ?? config.classes;
  const same = had === classes.length &&
    (from.classes === undefined || from.classes.join("\n") === classes.join("\n"));
  if (same) return config.classes === had ? config : withClasses(config, had);
  console.error(
    `${head} starts afresh for the data's ${classes.length} classes (${
      classes.slice(0, 5).join(", ")
    }${classes.length > 5 ? ", ..." : ""}); ${from.path} had ${had}`,
  );
  from.tensors.delete(`${head}.weight`);
  from.tensors.delete(`${head}.bias`);
  return withClasses(config, classes.length);
}

/** Replaces the network's initial weights with `tensors` (all but a new head). */
async function startFrom(net: Network, tensors: ReadonlyMap<string, NamedTensor>): Promise<void> {
  const weights = await net.weights();
  for (const [name, t] of tensors) {
    if (!weights.has(name)) {
      throw new UsageError(`--from: ${name} is not a tensor of ${net.config.name}`);
    }
    weights.set(name, t);
  }
  try {
    await net.setWeights(weights);
  } catch (e) {
    throw new UsageError(`--from: ${(e as Error).message}`);
  }
}

async function freezeLayers(net: Network, text: string): Promise<void> {
  let layers;
  try {
    layers = layerList(net.config, text);
    await net.freeze(layers);
  } catch (e) {
    throw new UsageError(`--freeze: ${(e as Error).message}`);
  }
  console.error(`frozen: ${layers.join(", ")}`);
}

/** Fails before any work when the output folder cannot be written. */
async function checkWritable(out: string): Promise<void> {
  try {
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeFile(`${out}/.write-test`, new Uint8Array(1));
    await Deno.remove(`${out}/.write-test`);
  } catch (e) {
    throw new UsageError(`--out ${out}: cannot write there (${(e as Error).message})`);
  }
}

/** What the loop reports, on stdout (epochs) and stderr (progress and messages). */
const REPORTER: Reporter = {
  progress: progressPrinter(),
  epoch: (m) =>
    console.log(
      `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}, validation top-1 error ` +
        `${(100 * m.top1Error).toFixed(2)}%, top-5 error ${(100 * m.top5Error).toFixed(2)}%, ` +
        `${m.seconds.toFixed(0)} s, ${m.imagesPerSecond.toFixed(1)} img/s, lr ${m.lr}`,
    ),
  message: (text) => console.error(text),
};

async function runTrain(v: Values): Promise<void> {
  const { model, init, options, devices, parallel, precision } = trainFlags(v);
  const dataDir = String(v.data ?? BUNDLED_DATA);
  const from = v.from === undefined ? undefined : await readStart(String(v.from), v);
  let config = MODELS[from?.model ?? model];
  // The weights name the model: runs/torchvision, not the default's folder, unless --out says.
  if (v.out === undefined) options.out = `runs/${config.name}`;
  const out = options.out;
  const data = await openData(dataDir, config.input, v.strict === true);
  if (from) config = fineTuned(config, from, data.train.classes);
  if (data.train.classes.length > config.classes) {
    throw new UsageError(
      `${config.name} has ${config.classes} classes; ${dataDir} has ${data.train.classes.length}`,
    );
  }
  await checkWritable(out);
  const tuningPath = defaultTuningPath();
  const net = await createAlexNet({
    model: config,
    seed: options.seed,
    init,
    precision,
    tuning: await readTuning(tuningPath),
    ...devices === 2 ? { devices, parallel } : {},
  });
  try {
    if (from) await startFrom(net, from.tensors);
    if (v.freeze !== undefined) await freezeLayers(net, String(v.freeze));
  } catch (e) {
    await net.destroy();
    throw e;
  }
  await applyTuning(net, tuningPath, options.batch, v.tune === true);
  net.tower?.compileAhead(options.batch); // a second thread compiles while the first step runs
  const stop = new AbortController();
  const onSignal = () => {
    console.error("\nstopping after this step (a checkpoint follows)...");
    stop.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  console.error(
    `training ${config.name} (${net.parameterCount.toLocaleString("en-US")} parameters) on ` +
      `${data.description}: ${data.train.count} training and ${data.test.count} validation ` +
      `images, batch ${options.batch}, ${devices === 2 ? "" : "adapter "}${net.description}; ` +
      `writing ${out}/`,
  );
  try {
    const named = v.data === undefined ? "the bundled sample" : dataDir;
    const result = await train(
      net,
      data,
      { ...options, data: named, signal: stop.signal },
      REPORTER,
    );
    if (!result.stopped) {
      console.error(`done: weights in ${out}/weights.safetensors, metrics in ${out}/metrics.jsonl`);
    }
  } catch (e) {
    if (e instanceof DivergedError) throw e;
    if (e instanceof RangeError && v.resume) throw new UsageError(`--resume: ${e.message}`);
    if (e instanceof Deno.errors.NotFound && v.resume) {
      throw new UsageError(`--resume: no checkpoint at ${out}/checkpoint.safetensors`);
    }
    throw e;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    await net.destroy();
  }
}
