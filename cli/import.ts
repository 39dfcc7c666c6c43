/**
 * `import`: torchvision's pretrained AlexNet as this project's weights file.
 *
 * @module
 */
import IMAGENET_CLASSES from "../data/imagenet_classes.json" with { type: "json" };
import { encodePreprocess } from "../data/preprocess.ts";
import { IMAGENET_NORMALISATION } from "../io/torchvision.ts";
import { readWeightsFile } from "../train/predict.ts";
import { createAlexNet } from "../mod.ts";
import { type Command, UsageError, type Values } from "./common.ts";

/** `import`. */
export const importCommand: Command = {
  help: `usage: deno run -A main.ts import --from torchvision FILE --out WEIGHTS

  --from torchvision   FILE holds torchvision's AlexNet state dict (features.0.weight, ...,
                       classifier.6.bias): its .pth as downloaded (alexnet-owt-7be5be79.pth,
                       read without Python and without running its pickle) or safetensors
  --out WEIGHTS        the weights file to write (model "torchvision", with ImageNet's class
                       names and torchvision's preprocessing recorded for eval and predict)`,
  options: { from: { type: "string" }, out: { type: "string" } },
  positionals: true,
  run: runImport,
};

async function runImport(v: Values, files: string[]): Promise<void> {
  if (v.from !== "torchvision") {
    throw new UsageError(`import: --from must be torchvision, got "${v.from ?? ""}"`);
  }
  if (files.length !== 1) {
    throw new UsageError("import: name one weights file (.pth or safetensors)");
  }
  if (v.out === undefined) throw new UsageError("import: --out WEIGHTS is required");
  let tensors;
  try {
    tensors = readWeightsFile(await Deno.readFile(files[0]), { model: "torchvision" }).tensors;
  } catch (e) {
    throw new UsageError(`${files[0]}: ${(e as Error).message}`);
  }
  const net = await createAlexNet({ model: "torchvision", init: "none" });
  try {
    try {
      await net.setWeights(tensors);
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
    await net.saveWeights(String(v.out), { preprocess });
    console.error(
      `wrote ${v.out}: torchvision's AlexNet, ${
        net.parameterCount.toLocaleString("en-US")
      } parameters`,
    );
  } finally {
    await net.destroy();
  }
}
