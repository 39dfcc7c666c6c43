/**
 * The command line: `deno run -A main.ts <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { bench, formatBench } from "./bench/bench.ts";
import { type Dataset, makeBatch } from "./data/dataset.ts";
import { DataError } from "./data/folder.ts";
import { decodeImage, encodePng, type Picture } from "./data/image.ts";
import { openDataset, type OpenedDataset, storedSize } from "./data/open.ts";
import { decodePreprocess, type Preprocess } from "./data/preprocess.ts";
import { resizeAndCentreCrop } from "./data/resize.ts";
import { Gpu } from "./gpu/device.ts";
import { parseSafetensors } from "./io/safetensors.ts";
import { fromTorchvision, IMAGENET_NORMALISATION } from "./io/torchvision.ts";
import IMAGENET_CLASSES from "./data/imagenet_classes.json" with { type: "json" };
import { encodePreprocess } from "./data/preprocess.ts";
import { createAlexNet, MODELS, Network } from "./mod.ts";
import { DivergedError, evaluateDataset, type Progress, train } from "./train/trainer.ts";
import { writeFileAtomic } from "./train/checkpoint.ts";
import { filterGrid } from "./viz/filters.ts";
import { interleave } from "./viz/grid.ts";
import { nearestNeighbours, neighbourGrid } from "./viz/neighbors.ts";
import { plotMetrics } from "./viz/plot.ts";

/** The bundled default dataset: 5,000 + 1,000 Fashion-MNIST images (Zalando Research, MIT). */
const BUNDLED_DATA = decodeURIComponent(
  new URL("./data/fashion-mnist-mini", import.meta.url).pathname,
);

/** A bad command line: reported in one line with exit code 2. */
class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;

interface Command {
  help: string;
  options: Record<string, { type: "string" | "boolean" }>;
  /** Whether the command takes operands (file names). */
  positionals?: boolean;
  run: (values: Values, positionals: string[]) => Promise<void>;
}

const USAGE = `AlexNet on WebGPU

usage: deno run -A main.ts <command> [options]

commands:
  info    print a model's layer table: output shapes, parameters, multiply-adds
  train   train a model on the bundled data, an image folder or IDX files
  eval    top-1 and top-5 error of trained weights on a dataset (1 or 10 crops)
  predict the classes of image files, with probabilities
  import  convert torchvision's pretrained AlexNet weights (safetensors) for eval and predict
  filters  the first layer's kernels as a PNG grid (the paper's Figure 3)
  plot     a run's training curves (metrics.jsonl) as an SVG
  neighbors  the training images nearest query images in fc7 feature space, as a PNG grid
           (the paper's Figure 4)
  bench   time every layer forward and backward, and the whole network

Run 'deno run -A main.ts <command> --help' for a command's options.`;

const COMMANDS: Record<string, Command> = {
  info: {
    help: `usage: deno run -A main.ts info [--model NAME]

  --model NAME   ${Object.keys(MODELS).join(" | ")} (default alexnet)`,
    options: { model: { type: "string" } },
    run: (v) => info(String(v.model ?? "alexnet")),
  },
  train: {
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
  --seed N             seed of the initialisation, order, augmentation and dropout (default 1)
  --no-augment         no random crops, flips or colour noise
  --out DIR            checkpoint, weights and metrics.jsonl (default runs/MODEL)
  --resume             continue from DIR/checkpoint.safetensors
  --max-steps N        stop after N steps, with a checkpoint

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
      seed: { type: "string" },
      "no-augment": { type: "boolean" },
      out: { type: "string" },
      resume: { type: "boolean" },
      "max-steps": { type: "string" },
    },
    run: trainCommand,
  },
  eval: {
    help: `usage: deno run -A main.ts eval --weights FILE [options]

  --weights FILE   a weights file written by train (or any with the model's tensors)
  --data DIR       as for train; its validation half is evaluated (default: the bundled data)
  --crops 1|10     1: the centre crop; 10: the paper's test, softmax averaged over the four
                   corners, the centre and their mirrors (default 1)
  --model NAME     the model, when the weights file does not name it
  --batch N        examples per forward pass (default 128)
  --strict         a file that cannot be read is an error, not a skip`,
    options: {
      weights: { type: "string" },
      data: { type: "string" },
      crops: { type: "string" },
      model: { type: "string" },
      batch: { type: "string" },
      strict: { type: "boolean" },
    },
    run: evalCommand,
  },
  predict: {
    help: `usage: deno run -A main.ts predict IMAGE... [options]

  --weights FILE   trained weights (default runs/alexnet-small/weights.safetensors)
  --top K          classes to list per image (default 5)
  --crops 1|10     as for eval (default 1)
  --model NAME     the model, when the weights file does not name it`,
    options: {
      weights: { type: "string" },
      top: { type: "string" },
      crops: { type: "string" },
      model: { type: "string" },
    },
    positionals: true,
    run: predictCommand,
  },
  import: {
    help: `usage: deno run -A main.ts import --from torchvision FILE --out WEIGHTS

  --from torchvision   FILE holds torchvision's AlexNet state dict (features.0.weight, ...,
                       classifier.6.bias) as safetensors; convert a .pth with:
                         python3 -c "import torch, safetensors.torch as s; \\
                           s.save_file(torch.load('alexnet-owt-7be5be79.pth'), 'alexnet.safetensors')"
  --out WEIGHTS        the weights file to write (model "torchvision", with ImageNet's class
                       names and torchvision's preprocessing recorded for eval and predict)`,
    options: { from: { type: "string" }, out: { type: "string" } },
    positionals: true,
    run: importCommand,
  },
  filters: {
    help: `usage: deno run -A main.ts filters --weights FILE --out PNG [--columns N] [--scale N]

  conv1's kernels, each scaled by its largest magnitude (grey is zero), tower A's above tower
  B's; --columns per row (default 16), --scale pixels per weight (default 4)`,
    options: {
      weights: { type: "string" },
      out: { type: "string" },
      columns: { type: "string" },
      scale: { type: "string" },
    },
    run: filtersCommand,
  },
  plot: {
    help: `usage: deno run -A main.ts plot --metrics runs/NAME/metrics.jsonl --out SVG

  loss (training, validation) and error (training top-1, validation top-1 and top-5) per epoch`,
    options: { metrics: { type: "string" }, out: { type: "string" } },
    run: plotCommand,
  },
  neighbors: {
    help: `usage: deno run -A main.ts neighbors IMAGE... --weights FILE --out PNG [options]

  One row per image: the image, then the training images whose last hidden layer's (fc7)
  feature vectors are nearest it.
  --data DIR     the training images to search (default: the bundled data)
  --k N          neighbours per image (default 6)
  --scale N      pixels per image pixel (default: 4 for images under 64 pixels, else 1)`,
    options: {
      weights: { type: "string" },
      out: { type: "string" },
      data: { type: "string" },
      k: { type: "string" },
      scale: { type: "string" },
    },
    positionals: true,
    run: neighborsCommand,
  },
  bench: {
    help: `usage: deno run -A main.ts bench [options]

  --model NAME   ${Object.keys(MODELS).join(" | ")} (default alexnet-small)
  --batch N      examples per batch (default 128)
  --repeats N    replays per figure (default 3)
  --json FILE    also write the figures as JSON

Per layer: forward and backward milliseconds and GFLOP/s; whole network: inference images/s at
batch 1 and N, training images/s at N. Wall time on this adapter.`,
    options: {
      model: { type: "string" },
      batch: { type: "string" },
      repeats: { type: "string" },
      json: { type: "string" },
    },
    run: benchCommand,
  },
};

/** A flag's value as a number, checked: an integer where asked, and above `min`. */
function number(
  v: Values,
  name: string,
  fallback: number,
  { integer = false, min = 0, inclusive = false } = {},
) {
  const raw = v[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const ok = Number.isFinite(value) && (!integer || Number.isInteger(value)) &&
    (inclusive ? value >= min : value > min);
  if (!ok || String(raw).trim() === "") {
    throw new UsageError(
      `--${name} must be ${integer ? "an integer" : "a number"} ${
        inclusive ? ">=" : ">"
      } ${min}, got "${raw}"`,
    );
  }
  return value;
}

function modelName(v: Values, fallback: string): string {
  const name = String(v.model ?? fallback);
  if (!MODELS[name]) {
    throw new UsageError(`unknown model "${name}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  return name;
}

async function info(model: string): Promise<void> {
  const config = MODELS[model];
  if (!config) {
    throw new UsageError(`unknown model "${model}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  const gpu = await Gpu.create();
  const net = Network.create(gpu, config, { init: "none" });
  const count = (n: number) => n.toLocaleString("en-US");
  const rows = net.layers.map((l) => {
    const params = [...l.parameters.values()].reduce((n, t) => n + t.size, 0);
    return [l.name, l.outputShape.join("x"), count(params), count(l.macs)];
  });
  const table = [["layer", "output", "parameters", "multiply-adds"], ...rows, [
    "total",
    "",
    count(net.parameterCount),
    count(net.macs),
  ]];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...table.map((r) => r[i].length)));
  console.log(
    `${config.name}: input ${
      config.input.join("x")
    }, ${config.classes} classes (adapter: ${gpu.description})`,
  );
  for (const row of table) {
    console.log(
      row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "),
    );
  }
  net.destroy();
  gpu.destroy();
}

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

async function trainCommand(v: Values): Promise<void> {
  const model = modelName(v, "alexnet-small");
  const config = MODELS[model];
  const epochs = number(v, "epochs", 10, { integer: true });
  const batch = number(v, "batch", 128, { integer: true });
  const lr = number(v, "lr", 0.01);
  const seed = number(v, "seed", 1, { integer: true, inclusive: true });
  const patience = number(v, "patience", 2, { integer: true });
  const momentum = number(v, "momentum", 0.9, { inclusive: true });
  const weightDecay = number(v, "weight-decay", 5e-4, { inclusive: true });
  const maxSteps = v["max-steps"] === undefined
    ? undefined
    : number(v, "max-steps", 0, { integer: true });
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
  const dataDir = String(v.data ?? BUNDLED_DATA);
  const out = String(v.out ?? `runs/${model}`);
  const data = await openData(dataDir, config.input, v.strict === true);
  if (data.train.classes.length > config.classes) {
    throw new UsageError(
      `${model} has ${config.classes} classes; ${dataDir} has ${data.train.classes.length}`,
    );
  }

  try {
    // Fail before any work when the output folder cannot be written.
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeFile(`${out}/.write-test`, new Uint8Array(1));
    await Deno.remove(`${out}/.write-test`);
  } catch (e) {
    throw new UsageError(`--out ${out}: cannot write there (${(e as Error).message})`);
  }

  const net = await createAlexNet({ model, seed, init });
  const stop = new AbortController();
  const onSignal = () => {
    console.error("\nstopping after this step (a checkpoint follows)...");
    stop.abort();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  console.error(
    `training ${model} (${net.parameterCount.toLocaleString("en-US")} parameters) on ` +
      `${data.description}: ` +
      `${data.train.count} training and ${data.test.count} validation images, batch ${batch}, ` +
      `adapter ${net.gpu.description}; writing ${out}/`,
  );
  try {
    const result = await train(net, data, {
      epochs,
      batch,
      lr,
      lrSteps,
      patience,
      momentum,
      weightDecay,
      seed,
      augment: !v["no-augment"],
      out,
      resume: v.resume === true,
      data: v.data === undefined ? "the bundled sample" : dataDir,
      signal: stop.signal,
      maxSteps,
    }, {
      progress: progressPrinter(),
      epoch: (m) =>
        console.log(
          `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}, validation top-1 error ` +
            `${(100 * m.top1Error).toFixed(2)}%, top-5 error ${(100 * m.top5Error).toFixed(2)}%, ` +
            `${m.seconds.toFixed(0)} s, ${m.imagesPerSecond.toFixed(1)} img/s, lr ${m.lr}`,
        ),
      message: (text) => console.error(text),
    });
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
    net.destroy();
  }
}

/** Opens a dataset for a model's input, reporting progress, skips and cache use on stderr. */
async function openData(
  dir: string,
  input: readonly [number, number, number],
  strict: boolean,
  size?: number,
): Promise<OpenedDataset> {
  let shown = -1;
  const onProgress = (done: number, total: number) => {
    const percent = Math.floor((100 * done) / total);
    if (percent !== shown && (percent % 10 === 0 || done === total)) {
      shown = percent;
      console.error(`decoding images: ${done}/${total}`);
    }
  };
  let data;
  try {
    data = await openDataset(dir, { input, strict, onProgress, size });
  } catch (e) {
    if (e instanceof DataError || e instanceof RangeError) {
      throw new UsageError(`--data ${dir}: ${e.message}`);
    }
    throw e;
  }
  if (data.skipped.length > 0) {
    const first = data.skipped[0];
    console.error(
      `skipped ${data.skipped.length} file(s) or folder(s) that could not be used ` +
        `(first: ${first.path}: ${first.reason}); --strict makes this an error`,
    );
  }
  if (data.statsCached) {
    console.error("training statistics (mean image, colour PCA) read from the cache");
  }
  return data;
}

/** A weights file's tensors, model name and preprocessing (when train wrote it). */
async function readWeights(v: Values, fallback: string) {
  const path = String(v.weights ?? fallback);
  let file;
  try {
    file = parseSafetensors(await Deno.readFile(path));
  } catch (e) {
    throw new UsageError(`--weights ${path}: ${(e as Error).message}`);
  }
  const model = v.model !== undefined ? modelName(v, "") : file.metadata.model;
  if (!model || !MODELS[model]) {
    throw new UsageError(
      `--weights ${path} does not name a known model (${file.metadata.model}): pass --model`,
    );
  }
  let preprocess: Preprocess | undefined;
  if (file.metadata.preprocess !== undefined) {
    try {
      preprocess = decodePreprocess(file.metadata.preprocess);
    } catch (e) {
      throw new UsageError(`--weights ${path}: ${(e as Error).message}`);
    }
  }
  const net = await createAlexNet({ model, init: "none" });
  try {
    net.setWeights(file.tensors);
  } catch (e) {
    net.destroy();
    throw new UsageError(`--weights ${path}: ${(e as Error).message}`);
  }
  return { net, preprocess, path };
}

function crops(v: Values): 1 | 10 {
  const n = v.crops === undefined ? 1 : Number(v.crops);
  if (n !== 1 && n !== 10) throw new UsageError(`--crops must be 1 or 10, got "${v.crops}"`);
  return n;
}

async function evalCommand(v: Values): Promise<void> {
  if (v.weights === undefined) throw new UsageError("eval: --weights FILE is required");
  const views = crops(v);
  const batch = number(v, "batch", 128, { integer: true });
  const { net, preprocess, path } = await readWeights(v, "");
  try {
    const dir = String(v.data ?? BUNDLED_DATA);
    const data = await openData(dir, net.config.input, v.strict === true, preprocess?.shape[1]);
    if (preprocess && preprocess.shape.join() !== data.test.shape.join()) {
      throw new UsageError(
        `${path} was trained on ${preprocess.shape.join("x")} images; ${dir} gives ${
          data.test.shape.join("x")
        }`,
      );
    }
    if (!preprocess) {
      console.error(`${path} has no preprocessing record: using ${dir}'s training mean image`);
    }
    const [, h, w] = net.config.input;
    const started = performance.now();
    const r = await evaluateDataset(net, data.test, {
      mean: preprocess?.mean ?? data.stats.mean,
      std: preprocess?.std,
      crop: [h, w],
      // Stored at the input size (28x28): corners of the image padded by 2, as training's crops.
      viewPad: data.test.shape[1] === h ? 2 : 0,
      batch,
      crops: views,
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${net.config.name} on ${data.test.count} validation images of ${data.description}, ` +
        `${views} crop${views === 1 ? "" : "s"}: top-1 error ${
          (100 * (1 - r.top1)).toFixed(2)
        }%, ` +
        `top-5 error ${(100 * (1 - r.top5)).toFixed(2)}%, loss ${r.loss.toFixed(4)} ` +
        `(${((data.test.count * views) / seconds).toFixed(1)} crops/s)`,
    );
  } finally {
    net.destroy();
  }
}

async function predictCommand(v: Values, images: string[]): Promise<void> {
  if (images.length === 0) throw new UsageError("predict: name one or more image files");
  const views = crops(v);
  const top = number(v, "top", 5, { integer: true });
  const { net, preprocess, path } = await readWeights(v, "runs/alexnet-small/weights.safetensors");
  try {
    const [c, h, w] = net.config.input;
    const size = preprocess?.shape[1] ?? storedSize(h);
    if (!preprocess) console.error(`${path} has no preprocessing record: no mean subtracted`);
    const stored = c * size * size, pictures = new Uint8Array(images.length * stored);
    for (const [i, file] of images.entries()) {
      try {
        const picture = decodeImage(await Deno.readFile(file), c as 1 | 3);
        pictures.set(resizeAndCentreCrop(picture, size).data, i * stored);
      } catch (e) {
        throw new UsageError(`${file}: ${(e as Error).message}`);
      }
    }
    const set: Dataset = {
      count: images.length,
      shape: [c, size, size],
      images: pictures,
      labels: new Int32Array(images.length),
      classes: [],
    };
    const mean = preprocess?.mean ?? new Float32Array(stored);
    const classes = net.config.classes, probabilities = new Float64Array(images.length * classes);
    const indices = images.map((_, i) => i);
    for (let view = views === 1 ? 4 : 0; view < (views === 1 ? 5 : 10); view++) {
      const viewPad = size === h ? 2 : 0;
      const { input } = makeBatch(set, indices, {
        mean,
        std: preprocess?.std,
        crop: [h, w],
        view,
        viewPad,
      });
      const p = await net.forward(input, images.length, { softmax: true });
      for (let i = 0; i < p.length; i++) probabilities[i] += p[i] / views;
    }
    for (const [i, file] of images.entries()) {
      const row = Array.from(probabilities.subarray(i * classes, (i + 1) * classes));
      const ranked = row.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]).slice(0, top);
      console.log(file);
      for (const [p, k] of ranked) {
        console.log(
          `  ${(100 * p).toFixed(2).padStart(6)}%  ${preprocess?.classes[k] ?? `class ${k}`}`,
        );
      }
    }
  } finally {
    net.destroy();
  }
}

async function importCommand(v: Values, files: string[]): Promise<void> {
  if (v.from !== "torchvision") {
    throw new UsageError(`import: --from must be torchvision, got "${v.from ?? ""}"`);
  }
  if (files.length !== 1) throw new UsageError("import: name one safetensors file");
  if (v.out === undefined) throw new UsageError("import: --out WEIGHTS is required");
  let tensors;
  try {
    tensors = fromTorchvision(parseSafetensors(await Deno.readFile(files[0])).tensors);
  } catch (e) {
    throw new UsageError(`${files[0]}: ${(e as Error).message}`);
  }
  const net = await createAlexNet({ model: "torchvision", init: "none" });
  try {
    try {
      net.setWeights(tensors);
    } catch (e) {
      throw new UsageError(`${files[0]}: ${(e as Error).message}`);
    }
    // torchvision's preprocessing as a mean image and per-channel deviations: 256, then 224.
    const plane = 256 * 256, mean = new Float32Array(3 * plane);
    IMAGENET_NORMALISATION.mean.forEach((m, c) => mean.fill(m, c * plane, (c + 1) * plane));
    const preprocess = encodePreprocess({
      classes: IMAGENET_CLASSES,
      shape: [3, 256, 256],
      mean,
      std: [...IMAGENET_NORMALISATION.std],
    });
    await writeFileAtomic(String(v.out), await net.weightsBytes({ preprocess }));
    console.error(
      `wrote ${v.out}: torchvision's AlexNet, ${
        net.parameterCount.toLocaleString("en-US")
      } parameters`,
    );
  } finally {
    net.destroy();
  }
}

function required(v: Values, name: string, command: string): string {
  if (typeof v[name] !== "string") throw new UsageError(`${command}: --${name} is required`);
  return v[name] as string;
}

async function writePng(path: string, picture: Picture): Promise<void> {
  const { width, height, channels } = picture;
  await writeFileAtomic(path, encodePng(interleave(picture), { width, height, channels }));
}

async function filtersCommand(v: Values): Promise<void> {
  const out = required(v, "out", "filters");
  const columns = number(v, "columns", 16, { integer: true });
  const scale = number(v, "scale", 4, { integer: true });
  required(v, "weights", "filters");
  const { net, path } = await readWeights(v, "");
  try {
    const name = net.layers[0].name, weight = (await net.weights()).get(`${name}.weight`)!;
    const picture = filterGrid(weight, { columns, scale });
    await writePng(out, picture);
    console.error(
      `wrote ${out}: ${weight.shape[0]} ${weight.shape.slice(1).join("x")} kernels of ${name} ` +
        `from ${path} (${picture.width}x${picture.height})`,
    );
  } finally {
    net.destroy();
  }
}

async function plotCommand(v: Values): Promise<void> {
  const file = required(v, "metrics", "plot"), out = required(v, "out", "plot");
  let metrics;
  try {
    const text = await Deno.readTextFile(file);
    metrics = text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  } catch (e) {
    throw new UsageError(`--metrics ${file}: ${(e as Error).message}`);
  }
  if (metrics.length === 0) throw new UsageError(`--metrics ${file}: no epochs yet`);
  await writeFileAtomic(out, new TextEncoder().encode(plotMetrics(metrics)));
  console.error(`wrote ${out}: ${metrics.length} epochs`);
}

/** Rows of `layer`'s outputs for every example of `d` (centre crops, the weights' preprocessing). */
async function features(
  net: Network,
  d: Dataset,
  layer: string,
  mean: Float32Array,
  std?: number[],
): Promise<Float32Array> {
  const [, h, w] = net.config.input, batch = 128;
  const parts: Float32Array[] = [];
  for (let first = 0; first < d.count; first += batch) {
    const indices = Array.from({ length: Math.min(batch, d.count - first) }, (_, i) => first + i);
    const { input } = makeBatch(d, indices, { mean, std, crop: [h, w] });
    parts.push(await net.forward(input, indices.length, { upTo: layer }));
  }
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

async function neighborsCommand(v: Values, images: string[]): Promise<void> {
  if (images.length === 0) throw new UsageError("neighbors: name one or more image files");
  const out = required(v, "out", "neighbors");
  const wanted = number(v, "k", 6, { integer: true });
  required(v, "weights", "neighbors");
  const { net, preprocess } = await readWeights(v, "");
  try {
    const dir = String(v.data ?? BUNDLED_DATA);
    const data = await openData(dir, net.config.input, false, preprocess?.shape[1]);
    const [c] = net.config.input, [, size] = data.train.shape;
    const mean = preprocess?.mean ?? data.stats.mean;
    const queries = await Promise.all(images.map(async (file) => {
      try {
        const p = decodeImage(await Deno.readFile(file), c as 1 | 3);
        return resizeAndCentreCrop(p, size);
      } catch (e) {
        throw new UsageError(`${file}: ${(e as Error).message}`);
      }
    }));
    const set: Dataset = {
      count: queries.length,
      shape: data.train.shape,
      images: new Uint8Array(queries.flatMap((q) => [...q.data])),
      labels: new Int32Array(queries.length),
      classes: [],
    };
    // The last hidden layer: the dense layer before the classifier (fc7).
    const dense = net.config.layers.filter((l) => l.kind === "dense");
    const layer = dense[dense.length - 2]?.name ?? net.layers[net.layers.length - 1].name;
    console.error(`computing ${layer} features of ${data.train.count} training images...`);
    const base = await features(net, data.train, layer, mean, preprocess?.std);
    const query = await features(net, set, layer, mean, preprocess?.std);
    const k = Math.min(wanted, data.train.count), dim = base.length / data.train.count;
    const indices = nearestNeighbours(query, base, dim, k);
    const scale = number(v, "scale", size < 64 ? 4 : 1, { integer: true });
    await writePng(out, neighbourGrid(queries, data.train, indices, k, scale));
    for (const [q, file] of images.entries()) {
      const found = [...indices.subarray(q * k, (q + 1) * k)];
      console.log(
        `${file}: ${found.map((i) => data.train.classes[data.train.labels[i]]).join(", ")}`,
      );
    }
    console.error(`wrote ${out}`);
  } finally {
    net.destroy();
  }
}

async function benchCommand(v: Values): Promise<void> {
  const model = modelName(v, "alexnet-small");
  const batch = number(v, "batch", 128, { integer: true });
  const repeats = number(v, "repeats", 3, { integer: true });
  const net = await createAlexNet({ model, init: model === "alexnet" ? "paper" : "he" });
  try {
    const result = await bench(net, batch, repeats);
    console.log(formatBench(result, net.config));
    if (typeof v.json === "string") {
      await Deno.writeTextFile(v.json, JSON.stringify(result, null, 2) + "\n");
    }
  } finally {
    net.destroy();
  }
}

async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const spec = COMMANDS[command];
  try {
    if (!spec) {
      throw new UsageError(
        `unknown command "${command}" (known: ${Object.keys(COMMANDS).join(", ")})`,
      );
    }
    let values: Values, positionals: string[];
    try {
      ({ values, positionals } = parseArgs({
        args: rest,
        options: { ...spec.options, help: { type: "boolean", short: "h" } },
        strict: true,
        allowPositionals: spec.positionals === true,
      }));
    } catch (e) {
      throw new UsageError(`${command}: ${(e as Error).message}`);
    }
    if (values.help) {
      console.log(spec.help);
      return 0;
    }
    await spec.run(values, positionals);
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
