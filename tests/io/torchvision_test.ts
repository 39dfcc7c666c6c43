/**
 * torchvision's AlexNet (Debian's python3-torchvision): its weights imported by `main.ts import`
 * (from its .pth, either format, or safetensors) give its logits, and an image preprocessed here equals torchvision's Resize(256),
 * CenterCrop(224), ToTensor and Normalize.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert";
import { makeBatch } from "../../data/dataset.ts";
import { decodeImage, encodePng } from "../../data/image.ts";
import { decodePreprocess } from "../../data/preprocess.ts";
import { resizeAndCentreCrop } from "../../data/resize.ts";
import { parseSafetensors } from "../../io/safetensors.ts";
import { TORCHVISION_ALEXNET } from "../../layers/models.ts";
import { Network } from "../../layers/network.ts";
import { assertClose, cli, golden, rng, withGpu } from "../helpers.ts";

Deno.test("torchvision's AlexNet: imported weights give its logits; preprocessing matches", () =>
  withGpu(async (gpu) => {
    const dir = await Deno.makeTempDir();
    try {
      // A 400x300 photo-like image: smooth colour gradients with texture.
      const next = rng(21), w = 400, h = 300;
      const px = new Uint8Array(w * h * 3);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const at = 3 * (y * w + x);
          px[at] = (x * 255) / w;
          px[at + 1] = (y * 255) / h;
          px[at + 2] = 128 + 100 * Math.sin(x / 9) * Math.cos(y / 7) * next();
        }
      }
      const image = `${dir}/photo.png`;
      await Deno.writeFile(image, encodePng(px, { width: w, height: h, channels: 3 }));
      await golden("torchvision", image, dir);
      // torch.save's .pth as downloaded (zip format), read without Python; the legacy format and
      // a safetensors conversion import to the same bytes.
      for (
        const [from, out] of [["torchvision.pth", "w"], ["torchvision_legacy.pth", "legacy"], [
          "torchvision.safetensors",
          "converted",
        ]]
      ) {
        const imported = await cli(
          "import",
          "--from",
          "torchvision",
          `${dir}/${from}`,
          "--out",
          `${dir}/${out}.safetensors`,
        );
        strictEqual(imported.code, 0, imported.stderr);
      }
      const bytes = (f: string) => Deno.readFile(`${dir}/${f}.safetensors`);
      const [zip, legacy, converted] = await Promise.all(["w", "legacy", "converted"].map(bytes));
      ok(zip.length === legacy.length && zip.length === converted.length, "the imports differ");
      ok(zip.every((b, i) => b === legacy[i] && b === converted[i]), "the three imports differ");

      const { tensors } = parseSafetensors(await Deno.readFile(`${dir}/golden.safetensors`));
      const input = tensors.get("input")!, logits = tensors.get("logits")!;
      const file = parseSafetensors(await Deno.readFile(`${dir}/w.safetensors`));
      strictEqual(file.metadata.model, "torchvision");
      const pre = decodePreprocess(file.metadata.preprocess);
      deepStrictEqual([pre.classes.length, pre.classes[0], pre.shape], [1000, "tench", [
        3,
        256,
        256,
      ]]);

      // Preprocessing: one grey level apart at most (Pillow's fixed-point resampling), scaled by 1/std.
      const picture = resizeAndCentreCrop(decodeImage(await Deno.readFile(image), 3), 256);
      const stored = {
        count: 1,
        shape: [3, 256, 256] as [number, number, number],
        images: picture.data,
        labels: new Int32Array(1),
        classes: [],
      };
      const ours = makeBatch(stored, [0], { mean: pre.mean, std: pre.std, crop: [224, 224] }).input;
      assertClose(ours, input.data, {
        atol: 1.01 / 255 / 0.224,
        rtol: 0,
        what: "input vs torchvision",
      });
      const meanError = ours.reduce((s, v, i) => s + Math.abs(v - input.data[i]), 0) / ours.length;
      ok(meanError < 0.005, `mean preprocessing difference ${meanError}`);

      const net = await Network.create(TORCHVISION_ALEXNET, { gpu, init: "none" });
      try {
        await net.loadWeights(`${dir}/w.safetensors`);
        const got = await net.forward(input.data, 1);
        assertClose(got, logits.data, { atol: 1e-5, rtol: 1e-3, what: "logits vs torchvision" });
      } finally {
        await net.destroy();
      }

      const predicted = await cli(
        "predict",
        image,
        "--weights",
        `${dir}/w.safetensors`,
        "--top",
        "1",
      );
      strictEqual(predicted.code, 0, predicted.stderr);
      const best = logits.data.indexOf(Math.max(...logits.data));
      match(
        predicted.stdout,
        new RegExp(`photo.png\\n +[\\d.]+% {2}${pre.classes[best].replace(/[()]/g, ".")}\\n`),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));
