/**
 * Writes the bundled default dataset, data/fashion-mnist-mini/: the first 500 training and 100
 * test images of every class of Fashion-MNIST (Zalando Research, MIT licence), taken from
 * Debian's dataset-fashion-mnist package, as gzipped IDX files in the original layout; and, for
 * the README's `predict` example, three test images outside that sample as PNGs in
 * data/examples/.
 *
 *   deno run -A tools/bundle_fashion.ts [SOURCE_DIR] [OUT_DIR]
 */
import { encodePng } from "../data/image.ts";
import { DEBIAN_FASHION_MNIST, loadIdxDirectory } from "../data/dataset.ts";
import type { Dataset } from "../data/dataset.ts";
import { encodeIdx } from "../data/idx.ts";

const [source = DEBIAN_FASHION_MNIST, out = "data/fashion-mnist-mini"] = Deno.args;

function firstPerClass(d: Dataset, perClass: number): number[] {
  const taken = new Array(d.classes.length).fill(0), picked: number[] = [];
  for (let i = 0; i < d.count; i++) {
    if (taken[d.labels[i]] < perClass) (taken[d.labels[i]]++, picked.push(i));
  }
  return picked;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const data = await loadIdxDirectory(source);
await Deno.mkdir(out, { recursive: true });
for (
  const [prefix, d, perClass] of [["train", data.train, 500], ["t10k", data.test, 100]] as const
) {
  const picked = firstPerClass(d, perClass), [, h, w] = d.shape;
  const images = new Uint8Array(picked.length * h * w);
  picked.forEach((i, k) => images.set(d.images.subarray(i * h * w, (i + 1) * h * w), k * h * w));
  const labels = Uint8Array.from(picked, (i) => d.labels[i]);
  await Deno.writeFile(
    `${out}/${prefix}-images-idx3-ubyte.gz`,
    await gzip(encodeIdx([picked.length, h, w], images)),
  );
  await Deno.writeFile(
    `${out}/${prefix}-labels-idx1-ubyte.gz`,
    await gzip(encodeIdx([picked.length], labels)),
  );
  console.log(`${prefix}: ${picked.length} images`);
}

// The 200th test image of three classes: not in the bundled sample's first 100.
await Deno.mkdir("data/examples", { recursive: true });
for (const [label, name] of [[1, "trouser"], [7, "sneaker"], [8, "bag"]] as const) {
  let seen = 0, i = 0;
  for (; i < data.test.count; i++) if (data.test.labels[i] === label && ++seen === 200) break;
  const pixels = data.test.images.subarray(i * 784, (i + 1) * 784);
  await Deno.writeFile(
    `data/examples/${name}.png`,
    encodePng(pixels, { width: 28, height: 28, channels: 1 }),
  );
}
