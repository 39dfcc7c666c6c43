// `train --from W --freeze LAYERS`: a .pth written by PyTorch fine-tunes on an image folder with
// other classes (a new head, said so), frozen layers stay bit-identical through a checkpoint, and
// --resume adopts the checkpoint's frozen layers and refuses others.
import { match, ok, strictEqual } from "node:assert";
import { encodePng } from "../../data/image.ts";
import { parsePth } from "../../io/pth.ts";
import { loadCheckpoint } from "../../train/checkpoint.ts";
import { cli, golden } from "../helpers.ts";

/** An image folder of three classes (bright, mid, dark 36x36 grey PNGs), 10 images each. */
async function folder(dir: string): Promise<string> {
  for (const [name, level] of [["bright", 200], ["mid", 120], ["dark", 30]] as const) {
    await Deno.mkdir(`${dir}/data/${name}`, { recursive: true });
    for (let i = 0; i < 10; i++) {
      const px = Uint8Array.from({ length: 36 * 36 }, (_, p) => level + ((p * 7 + i * 13) % 40));
      await Deno.writeFile(
        `${dir}/data/${name}/${i}.png`,
        encodePng(px, { width: 36, height: 36, channels: 1 }),
      );
    }
  }
  return `${dir}/data`;
}

Deno.test("train --from a .pth with --freeze fine-tunes on new classes; resume keeps it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await golden("pth", dir); // alexnet_small.pth: PyTorch's alexnet-small, 10 classes
    const data = await folder(dir), from = `${dir}/alexnet_small.pth`;
    const common = ["train", "--from", from, "--data", data, "--batch", "9", "--out", `${dir}/run`];
    const first = await cli(...common, "--freeze", "conv1-conv5", "--max-steps", "2");
    strictEqual(first.code, 0, first.stderr);
    match(first.stderr, /fc8 starts afresh for the data's 3 classes \(bright, dark, mid\)/);
    match(first.stderr, /frozen: conv1, conv2, conv3, conv4, conv5/);

    const pretrained = parsePth(await Deno.readFile(from));
    const check = async (when: string) => {
      const { weights, state } = await loadCheckpoint<{ frozen?: string[] }>(
        `${dir}/run/checkpoint.safetensors`,
      );
      strictEqual(state.frozen?.join(), "conv1,conv2,conv3,conv4,conv5", when);
      for (const [name, t] of weights) {
        const was = pretrained.get(name)!;
        const still = t.data.every((v, i) => Object.is(v, was.data[i]));
        if (name.startsWith("conv")) ok(still, `${when}: ${name} moved`);
        if (name.startsWith("fc6") || name.startsWith("fc7")) ok(!still, `${when}: ${name} fixed`);
      }
      strictEqual(weights.get("fc8.bias")!.shape[0], 3);
    };
    await check("after two steps");

    const resumed = await cli(...common, "--resume", "--max-steps", "4");
    strictEqual(resumed.code, 0, resumed.stderr);
    match(resumed.stderr, /resuming with the checkpoint's frozen layers: conv1, conv2/);
    await check("after resuming");

    const other = await cli(...common, "--resume", "--freeze", "conv1", "--max-steps", "5");
    strictEqual(other.code, 2, other.stderr);
    match(other.stderr, /froze conv1,conv2,conv3,conv4,conv5, not conv1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("torchvision's AlexNet fine-tunes from its .pth on an image folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = await folder(dir);
    await golden("torchvision", `${data}/bright/0.png`, dir); // torchvision.pth, random weights
    const run = await cli(
      "train",
      "--from",
      `${dir}/torchvision.pth`,
      "--data",
      data,
      "--freeze",
      "conv1-conv5",
      "--batch",
      "4",
      "--max-steps",
      "1",
      "--out",
      `${dir}/run`,
    );
    strictEqual(run.code, 0, run.stderr);
    match(run.stderr, /fc8 starts afresh for the data's 3 classes/);
    match(run.stderr, /training torchvision \(/);
    const { weights } = await loadCheckpoint(`${dir}/run/checkpoint.safetensors`);
    strictEqual(weights.get("fc8.weight")!.shape.join(), "3,4096");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
