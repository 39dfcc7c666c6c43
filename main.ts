/**
 * The command line: `deno run -A main.ts <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { bench, formatBench } from "./bench/bench.ts";
import { DEBIAN_FASHION_MNIST, loadIdxDirectory } from "./data/dataset.ts";
import { Gpu } from "./gpu/device.ts";
import { createAlexNet, MODELS, Network } from "./mod.ts";
import { DivergedError, type Progress, train } from "./train/trainer.ts";

/** A bad command line: reported in one line with exit code 2. */
class UsageError extends Error {}

type Values = Record<string, string | boolean | undefined>;

interface Command {
  help: string;
  options: Record<string, { type: "string" | "boolean" }>;
  run: (values: Values) => Promise<void>;
}

const USAGE = `AlexNet on WebGPU

usage: deno run -A main.ts <command> [options]

commands:
  info    print a model's layer table: output shapes, parameters, multiply-adds
  train   train a model on Fashion-MNIST or an IDX dataset, with checkpoints and metrics
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
  --data DIR           IDX files (train-images-idx3-ubyte[.gz], ...; default ${DEBIAN_FASHION_MNIST},
                       from Debian's dataset-fashion-mnist package)
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
  --no-augment         no random crops and flips
  --out DIR            checkpoint, weights and metrics.jsonl (default runs/MODEL)
  --resume             continue from DIR/checkpoint.safetensors
  --max-steps N        stop after N steps, with a checkpoint

Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits 0.`,
    options: {
      model: { type: "string" },
      data: { type: "string" },
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
  const dataDir = String(v.data ?? DEBIAN_FASHION_MNIST);
  const out = String(v.out ?? `runs/${model}`);

  let data;
  try {
    data = await loadIdxDirectory(dataDir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound && v.data === undefined) {
      throw new UsageError(
        `no data at ${dataDir}: install Debian's dataset-fashion-mnist package or pass --data DIR`,
      );
    }
    throw new UsageError(`--data ${dataDir}: ${(e as Error).message}`);
  }
  if (data.train.shape.join() !== config.input.join()) {
    throw new UsageError(
      `${model} takes ${config.input.join("x")} inputs; ${dataDir} holds ${
        data.train.shape.join("x")
      } images`,
    );
  }
  const labels = Math.max(...data.train.labels) + 1;
  if (labels > config.classes) {
    throw new UsageError(`${model} has ${config.classes} classes; the data has ${labels}`);
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
    `training ${model} (${net.parameterCount.toLocaleString("en-US")} parameters) on ${dataDir}: ` +
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
    if (e instanceof Deno.errors.NotFound && v.resume) {
      throw new UsageError(`--resume: no checkpoint at ${out}/checkpoint.safetensors`);
    }
    throw e;
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
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
    let values: Values;
    try {
      ({ values } = parseArgs({
        args: rest,
        options: { ...spec.options, help: { type: "boolean", short: "h" } },
        strict: true,
        allowPositionals: false,
      }));
    } catch (e) {
      throw new UsageError(`${command}: ${(e as Error).message}`);
    }
    if (values.help) {
      console.log(spec.help);
      return 0;
    }
    await spec.run(values);
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
