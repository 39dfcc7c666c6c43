/**
 * `eval` and `predict`: trained weights on a dataset, or on image files.
 *
 * @module
 */
import { cropPadding } from "../data/dataset.ts";
import { evaluateDataset } from "../train/evaluate.ts";
import { predict } from "../train/predict.ts";
import {
  BUNDLED_DATA,
  type Command,
  crops,
  number,
  openData,
  readImageFile,
  readWeights,
  UsageError,
  type Values,
} from "./common.ts";

/** `eval`. */
export const evalCommand: Command = {
  help: `usage: deno run -A main.ts eval --weights FILE [options]

  --weights FILE   a weights file written by train (or any with the model's tensors)
  --data DIR       as for train; its validation half is evaluated (default: the bundled data)
  --crops 1|10     1: the centre crop; 10: the paper's test, softmax averaged over the four
                   corners, the centre and their mirrors (default 1)
  --model NAME     the model, when the weights file does not name it
  --batch N        examples per forward pass (default 128)
  --strict         a file that cannot be read is an error, not a skip
  --precision f32|f16  as for train (default f32)`,
  options: {
    weights: { type: "string" },
    data: { type: "string" },
    crops: { type: "string" },
    model: { type: "string" },
    batch: { type: "string" },
    strict: { type: "boolean" },
    precision: { type: "string" },
  },
  run: runEval,
};

/** `predict`. */
export const predictCommand: Command = {
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
  run: runPredict,
};

async function runEval(v: Values): Promise<void> {
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
      viewPad: cropPadding(data.test.shape, [h, w]),
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
    await net.destroy();
  }
}

async function runPredict(v: Values, images: string[]): Promise<void> {
  if (images.length === 0) throw new UsageError("predict: name one or more image files");
  const views = crops(v);
  const top = number(v, "top", 5, { integer: true });
  const { net, preprocess, path } = await readWeights(v, "runs/alexnet-small/weights.safetensors");
  try {
    if (!preprocess) console.error(`${path} has no preprocessing record: no mean subtracted`);
    const files = await Promise.all(images.map(readImageFile));
    let ranked;
    try {
      ranked = await predict(net, files, { preprocess, crops: views, top, names: images });
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(e.message);
      throw e;
    }
    for (const [i, file] of images.entries()) {
      console.log(file);
      for (const { probability, name } of ranked[i]) {
        console.log(`  ${(100 * probability).toFixed(2).padStart(6)}%  ${name}`);
      }
    }
  } finally {
    await net.destroy();
  }
}
