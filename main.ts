/**
 * The command line: `deno run -A main.ts <command> [options]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MODELS, Network } from "./mod.ts";
import { Gpu } from "./gpu/device.ts";

/** A bad command line: reported in one line with exit code 2. */
class UsageError extends Error {}

const USAGE = `AlexNet on WebGPU

usage: deno run -A main.ts <command> [options]

commands:
  info    print a model's layer table: output shapes, parameters, multiply-adds
  train   train a model (not yet available)
  bench   benchmark kernels and the network (not yet available)

Run 'deno run -A main.ts <command> --help' for a command's options.`;

const COMMANDS: Record<
  string,
  {
    help: string;
    options: Record<string, { type: "string" | "boolean" }>;
    run: (values: Record<string, unknown>) => Promise<void>;
  }
> = {
  info: {
    help: `usage: deno run -A main.ts info [--model NAME]

  --model NAME   ${Object.keys(MODELS).join(" | ")} (default alexnet)`,
    options: { model: { type: "string" } },
    run: (values) => info(String(values.model ?? "alexnet")),
  },
  train: {
    help: "usage: deno run -A main.ts train (training lands with the training issue)",
    options: {},
    run: () => Promise.reject(new UsageError("train is not available yet")),
  },
  bench: {
    help: "usage: deno run -A main.ts bench (the benchmark lands with the performance issue)",
    options: {},
    run: () => Promise.reject(new UsageError("bench is not available yet")),
  },
};

async function info(model: string): Promise<void> {
  const config = MODELS[model];
  if (!config) {
    throw new UsageError(`unknown model "${model}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  const gpu = await Gpu.create();
  const net = Network.create(gpu, config, { init: "none" });
  const rows = net.layers.map((l) => {
    const params = [...l.parameters.values()].reduce((n, t) => n + t.size, 0);
    return [
      l.name,
      l.outputShape.join("x"),
      params.toLocaleString("en-US"),
      l.macs.toLocaleString("en-US"),
    ];
  });
  const total = [
    "total",
    "",
    net.parameterCount.toLocaleString("en-US"),
    net.macs.toLocaleString("en-US"),
  ];
  const table = [["layer", "output", "parameters", "multiply-adds"], ...rows, total];
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
    let values: Record<string, unknown>;
    try {
      ({ values } = parseArgs({
        args: rest,
        options: { ...spec.options, help: { type: "boolean", short: "h" } },
        strict: true,
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
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
