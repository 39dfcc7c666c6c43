/**
 * The command line: `deno run -A main.ts <command> [options]`. Each command lives in `cli/`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { benchCommand } from "./cli/bench.ts";
import { type Command, UsageError, type Values } from "./cli/common.ts";
import { evalCommand, predictCommand } from "./cli/evaluate.ts";
import { exportCommand } from "./cli/export.ts";
import { importCommand } from "./cli/import.ts";
import { infoCommand } from "./cli/info.ts";
import { kernelsCommand, wgslCommand } from "./cli/kernels.ts";
import { filtersCommand, neighborsCommand, plotCommand } from "./cli/pictures.ts";
import { trainCommand } from "./cli/train.ts";

const USAGE = `AlexNet on WebGPU

usage: deno run -A main.ts <command> [options]

commands:
  info    print a model's layer table: output shapes, parameters, multiply-adds
  train   train a model on the bundled data, an image folder or IDX files
  eval    top-1 and top-5 error of trained weights on a dataset (1 or 10 crops)
  predict the classes of image files, with probabilities
  import  convert torchvision's pretrained AlexNet weights (its .pth) for eval and predict
  export  write trained weights as an ONNX model (the inference graph)
  filters  the first layer's kernels as a PNG grid (the paper's Figure 3)
  plot     a run's training curves (metrics.jsonl) as an SVG
  neighbors  the training images nearest query images in fc7 feature space, as a PNG grid
           (the paper's Figure 4)
  bench   time every layer forward and backward, and the whole network
  kernels  time each kernel alone on a model's shapes, its variants (tilings) side by side
  wgsl    print the WGSL a kernel generates for a layer of a model

Run 'deno run -A main.ts <command> --help' for a command's options.`;

const COMMANDS: Record<string, Command> = {
  info: infoCommand,
  train: trainCommand,
  eval: evalCommand,
  predict: predictCommand,
  import: importCommand,
  export: exportCommand,
  filters: filtersCommand,
  plot: plotCommand,
  neighbors: neighborsCommand,
  bench: benchCommand,
  kernels: kernelsCommand,
  wgsl: wgslCommand,
};

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
