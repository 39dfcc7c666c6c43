/**
 * `export`: trained weights as an ONNX model another runtime runs.
 *
 * @module
 */
import { encodePreprocess } from "../data/preprocess.ts";
import { onnxModel } from "../io/onnx.ts";
import { writeFileAtomic } from "../io/files.ts";
import { type Command, readWeights, UsageError, type Values } from "./common.ts";

/** `export`. */
export const exportCommand: Command = {
  help: `usage: deno run -A main.ts export --weights FILE --onnx OUT.onnx

  --weights FILE   trained weights (safetensors or .pth, as for eval)
  --onnx OUT       the ONNX model to write (opset 13): the inference graph, input "input"
                   [batch, C, H, W], output "logits"; class names and preprocessing in its
                   metadata
  --model NAME     the model, when the weights file does not name it`,
  options: { weights: { type: "string" }, onnx: { type: "string" }, model: { type: "string" } },
  run: runExport,
};

async function runExport(v: Values): Promise<void> {
  if (v.weights === undefined) throw new UsageError("export: --weights FILE is required");
  if (v.onnx === undefined) throw new UsageError("export: --onnx OUT is required");
  const { net, preprocess } = await readWeights(v, "");
  try {
    const metadata: Record<string, string> = { model: net.config.name };
    if (preprocess) metadata.preprocess = encodePreprocess(preprocess);
    const bytes = onnxModel(net.config, await net.weights(), metadata);
    await writeFileAtomic(String(v.onnx), bytes);
    console.error(
      `wrote ${v.onnx}: ${net.config.name}, ${(bytes.length / 2 ** 20).toFixed(1)} MiB`,
    );
  } finally {
    await net.destroy();
  }
}
