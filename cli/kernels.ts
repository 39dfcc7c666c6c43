/**
 * `kernels` and `wgsl`: each kernel alone on a model's shapes, timed with its variants side by
 * side (`deno task bench:kernels`), or the WGSL a kernel configuration generates (`deno task
 * wgsl`).
 *
 * @module
 */
import { benchKernels, formatKernels, kernelCases } from "../bench/kernels.ts";
import { Gpu } from "../gpu/device.ts";
import { GEMM_TILES, type GemmTile } from "../kernels/gemm/tiles.ts";
import { MODELS } from "../layers/models.ts";
import {
  type Command,
  modelName,
  number,
  precisionChoice,
  UsageError,
  type Values,
} from "./common.ts";

const KERNELS = [
  "conv2d_forward",
  "conv2d_backward_input",
  "conv2d_backward_weight",
  "relu_backward",
  "lrn_forward",
  "lrn_backward",
  "lrn_maxpool_forward",
  "lrn_maxpool_backward",
  "maxpool_forward",
  "maxpool_backward",
  "dropout_forward",
  "softmax_cross_entropy",
  "sgd_update",
];

const SHARED_HELP = `  --model NAME     ${Object.keys(MODELS).join(" | ")} (default alexnet)
  --layer NAMES    the layers (comma-separated, e.g. conv2,fc6); default every layer
  --tile NAMES     GEMM kernels' tilings: ${Object.keys(GEMM_TILES).join(", ")}; default
                   the adapter's pick and each of its candidates
  --batch N        examples (default 8; at most what one launch holds)
  --precision f32|f16`;

/** `kernels`. */
export const kernelsCommand: Command = {
  help: `usage: deno run -A main.ts kernels [options]

Times each kernel of a model's layers alone, replayed in one pass, its variants side by side:
the three GEMM kernels of every convolution and dense layer in each tiling, the kernels around
them forward and backward.

${SHARED_HELP}
  --kernel NAMES   only these kernels: ${KERNELS.join(", ")}
  --repeats N      replays per figure (default 3)
  --json FILE      also write the figures as JSON`,
  options: {
    model: { type: "string" },
    layer: { type: "string" },
    kernel: { type: "string" },
    tile: { type: "string" },
    batch: { type: "string" },
    repeats: { type: "string" },
    precision: { type: "string" },
    json: { type: "string" },
  },
  run: runKernels,
};

/** `wgsl`. */
export const wgslCommand: Command = {
  help: `usage: deno run -A main.ts wgsl KERNEL [options]

Prints the WGSL that KERNEL (${KERNELS.join(", ")}) generates for a layer: each
distinct pipeline of its launch, in order (packing kernels first), with its cache key.

${SHARED_HELP}`,
  options: {
    model: { type: "string" },
    layer: { type: "string" },
    tile: { type: "string" },
    batch: { type: "string" },
    precision: { type: "string" },
  },
  positionals: true,
  run: runWgsl,
};

/** The shared flags: model, layers, tiles, batch, precision. */
function selection(v: Values) {
  const model = MODELS[modelName(v, "alexnet")];
  const list = (name: string) =>
    typeof v[name] === "string" ? String(v[name]).split(",") : undefined;
  const layers = list("layer");
  for (const layer of layers ?? []) {
    if (!model.layers.some((l) => l.name === layer)) {
      throw new UsageError(
        `--layer: ${model.name} has no layer "${layer}" (${
          model.layers.map((l) => l.name).join(", ")
        })`,
      );
    }
  }
  const tiles = list("tile")?.map((name): GemmTile => {
    const tile = GEMM_TILES[name as keyof typeof GEMM_TILES];
    if (!tile) {
      throw new UsageError(`--tile must name ${Object.keys(GEMM_TILES).join(", ")}, got "${name}"`);
    }
    return tile;
  });
  const batch = number(v, "batch", 8, { integer: true });
  return { model, layers, tiles, batch, precision: precisionChoice(v) };
}

function checkKernels(names: readonly string[]): void {
  for (const name of names) {
    if (!KERNELS.includes(name)) {
      throw new UsageError(`unknown kernel "${name}" (known: ${KERNELS.join(", ")})`);
    }
  }
}

async function runKernels(v: Values): Promise<void> {
  const { model, layers, tiles, batch, precision } = selection(v);
  const kernels = typeof v.kernel === "string" ? String(v.kernel).split(",") : undefined;
  checkKernels(kernels ?? []);
  const repeats = number(v, "repeats", 3, { integer: true });
  const gpu = await Gpu.create({ precision });
  try {
    const result = await benchKernels(gpu, model, batch, repeats, { layers, kernels, tiles });
    const title = `${model.name}${precision === "f16" ? " (f16)" : ""}, adapter ${gpu.description}`;
    console.log(formatKernels(title, result.batch, result.rows));
    if (typeof v.json === "string") {
      const setup = { model: model.name, adapter: gpu.description, precision, batch: result.batch };
      await Deno.writeTextFile(
        v.json,
        JSON.stringify({ setup, rows: result.rows }, null, 2) + "\n",
      );
    }
  } finally {
    gpu.destroy();
  }
}

async function runWgsl(v: Values, positionals: string[]): Promise<void> {
  const kernel = positionals[0];
  if (kernel === undefined || positionals.length > 1) {
    throw new UsageError(`wgsl: name one kernel (${KERNELS.join(", ")})`);
  }
  checkKernels([kernel]);
  const { model, layers, tiles, batch, precision } = selection(v);
  const gpu = await Gpu.create({ precision });
  const { cases, free } = kernelCases(gpu, model, batch, {
    layers,
    kernels: [kernel],
    tiles: tiles ?? [undefined], // without --tile, the adapter's pick
  });
  try {
    const first = cases[0];
    if (!first) throw new UsageError(`wgsl: ${model.name} runs no ${kernel} in those layers`);
    const seen = new Set<string>();
    console.log(
      `// ${kernel} of ${model.name} ${first.layer}, ${first.variant || "its only variant"}`,
    );
    for (const d of first.launch.dispatches) {
      if (seen.has(d.pipeline.key)) continue;
      seen.add(d.pipeline.key);
      console.log(`\n// pipeline ${d.pipeline.key}\n${d.pipeline.wgsl.trim()}`);
    }
  } finally {
    free();
    gpu.destroy();
  }
}
