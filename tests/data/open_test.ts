// Opening data (data/folder.ts, data/open.ts): image folders, IDX folders, held-out halves,
// bad files skipped and counted.
import { deepStrictEqual, rejects, strictEqual } from "node:assert";
import { Image } from "imagescript";
import { loadImageFolder } from "../../data/folder.ts";
import { openDataset } from "../../data/open.ts";
import { encodePng } from "../../data/image.ts";

Deno.test("image folders: classes from folder names, bad files skipped and counted, --strict", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = (v: number) =>
      encodePng(new Uint8Array(30 * 20 * 3).fill(v), { width: 30, height: 20, channels: 3 });
    for (const c of ["dog", "cat", "empty"]) await Deno.mkdir(`${dir}/${c}`);
    await Deno.writeFile(`${dir}/cat/1.png`, png(10));
    await Deno.writeFile(`${dir}/cat/2.jpg`, await new Image(8, 8).fill(0x808080ff).encodeJPEG(95));
    await Deno.writeFile(`${dir}/dog/1.png`, png(200));
    await Deno.writeFile(`${dir}/dog/notes.txt`, new TextEncoder().encode("not an image"));
    await Deno.writeFile(`${dir}/dog/cut.png`, png(1).subarray(0, 40));
    await Deno.writeFile(`${dir}/dog/.hidden.png`, png(1));
    let progress = 0;
    const { dataset, skipped } = await loadImageFolder(dir, {
      channels: 3,
      size: 6,
      onProgress: (n) => (progress = n),
    });
    deepStrictEqual(dataset.classes, ["cat", "dog", "empty"]);
    deepStrictEqual(Array.from(dataset.labels), [0, 0, 1]);
    deepStrictEqual(dataset.shape, [3, 6, 6]);
    deepStrictEqual([dataset.images[0], dataset.images[108], dataset.images[2 * 108]], [
      10,
      128,
      200,
    ]);
    deepStrictEqual(skipped.map((s) => [s.path.slice(dir.length + 1), s.reason.split(":")[0]]), [
      ["empty", "empty class folder"],
      ["dog/cut.png", "ImageError"],
      ["dog/notes.txt", "ImageError"],
    ]);
    strictEqual(progress, 5);
    await rejects(
      loadImageFolder(dir, { channels: 3, size: 6, strict: true }),
      /3 problems .*--strict/,
    );
    await rejects(loadImageFolder(`${dir}/missing`, { channels: 3, size: 6 }), /cannot read/);
    await rejects(loadImageFolder(`${dir}/empty`, { channels: 3, size: 6 }), /no class folders/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openDataset: IDX folders, train/val halves, and every tenth image held out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const png = (v: number) =>
      encodePng(new Uint8Array(12 * 12).fill(v), { width: 12, height: 12, channels: 1 });
    for (const c of ["a", "b"]) {
      await Deno.mkdir(`${dir}/flat/${c}`, { recursive: true });
      for (let i = 0; i < 20; i++) {
        await Deno.writeFile(
          `${dir}/flat/${c}/${String(i).padStart(2, "0")}.png`,
          png(c === "a" ? i : 100 + i),
        );
      }
    }
    const flat = await openDataset(`${dir}/flat`, { input: [1, 8, 8] });
    deepStrictEqual([flat.train.count, flat.test.count, flat.train.shape], [36, 4, [1, 9, 9]]);
    // Held out: the tenth and twentieth of each class (files 09 and 19).
    deepStrictEqual(Array.from({ length: 4 }, (_, e) => flat.test.images[e * 81]), [
      9,
      19,
      109,
      119,
    ]);
    deepStrictEqual(Array.from(flat.test.labels), [0, 0, 1, 1]);
    strictEqual(flat.statsCached, false);
    strictEqual((await openDataset(`${dir}/flat`, { input: [1, 8, 8] })).statsCached, true);

    for (const half of ["train", "val"]) {
      for (const c of half === "train" ? ["a", "b", "c"] : ["c", "a"]) {
        await Deno.mkdir(`${dir}/halves/${half}/${c}`, { recursive: true });
        await Deno.writeFile(`${dir}/halves/${half}/${c}/1.png`, png(7));
      }
    }
    const halves = await openDataset(`${dir}/halves`, { input: [1, 8, 8] });
    deepStrictEqual(halves.test.classes, ["a", "b", "c"]);
    deepStrictEqual(Array.from(halves.test.labels), [0, 2]); // val's "a", "c" in train's numbering
    await Deno.mkdir(`${dir}/halves/val/zebra`);
    await Deno.writeFile(`${dir}/halves/val/zebra/1.png`, png(1));
    await rejects(
      openDataset(`${dir}/halves`, { input: [1, 8, 8] }),
      /classes not in train\/: zebra/,
    );

    const idx = await openDataset(
      new URL("../../data/fashion-mnist-mini", import.meta.url).pathname,
      {
        input: [1, 28, 28],
      },
    );
    deepStrictEqual([idx.train.count, idx.test.count, idx.stats.mean.length], [5000, 1000, 784]);
    await rejects(
      openDataset(new URL("../../data/fashion-mnist-mini", import.meta.url).pathname, {
        input: [3, 227, 227],
      }),
      /takes 3x227x227 inputs; .* holds 1x28x28/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
