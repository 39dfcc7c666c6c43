// PyTorch's checkpoint files read without Python (io/pth.ts, io/pickle.ts): files torch.save
// wrote in both formats read bit-identical, a pickle that would run code is refused by name, and
// seeded damage to a valid file gives only the reader's own errors.
import { ok, strictEqual, throws } from "node:assert";
import { isPth, parsePth, PthError } from "../../io/pth.ts";
import { parseSafetensors } from "../../io/safetensors.ts";
import { createAlexNet } from "../../layers/network.ts";
import { golden, rng } from "../helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "alexnet-pth-" });
const written = golden("pth", dir);

Deno.test("state_dicts torch.save wrote (zip and legacy) read bit-identical, views included", async () => {
  await written;
  const want = parseSafetensors(await Deno.readFile(`${dir}/expected.safetensors`)).tensors;
  for (const file of ["zip.pth", "legacy.pth"]) {
    const bytes = await Deno.readFile(`${dir}/${file}`);
    ok(isPth(bytes), file);
    const got = parsePth(bytes);
    strictEqual([...got.keys()].join(), [...want.keys()].join(), file);
    for (const [name, t] of want) {
      const g = got.get(name)!;
      strictEqual(g.shape.join(), t.shape.join(), `${file} ${name} shape`);
      const same = g.data.every((v, i) => Object.is(v, t.data[i]));
      ok(same && g.data.length === t.data.length, `${file} ${name} differs`);
    }
  }
});

Deno.test("loadWeights reads a .pth of this project's model as its safetensors twin", async () => {
  await written;
  const [a, b] = await Promise.all([1, 2].map(() => createAlexNet({ model: "alexnet-small" })));
  try {
    await a.loadWeights(`${dir}/alexnet_small.pth`);
    await b.loadWeights(`${dir}/alexnet_small.safetensors`);
    const [wa, wb] = [await a.weights(), await b.weights()];
    for (const [name, t] of wb) {
      ok(wa.get(name)!.data.every((v, i) => Object.is(v, t.data[i])), `${name} differs`);
    }
  } finally {
    await a.destroy();
    await b.destroy();
  }
});

Deno.test("a pickle that would run os.system, or hold float64, is refused by name", async () => {
  await written;
  throws(
    () => parsePth(Deno.readFileSync(`${dir}/evil.pth`)),
    (e) => e instanceof PthError && /refused global posix\.system/.test(e.message),
  );
  throws(
    () => parsePth(Deno.readFileSync(`${dir}/double.pth`)),
    (e) => e instanceof PthError && /refused global torch\.DoubleStorage/.test(e.message),
  );
  await Deno.stat(`${dir}/pwned`).then(
    () => ok(false, "the pickle ran"),
    () => {},
  );
});

Deno.test("seeded byte flips and truncations of valid files give only PthError", async () => {
  await written;
  const next = rng(7);
  let cases = 0, refused = 0;
  for (const file of ["zip.pth", "legacy.pth"]) {
    const valid = await Deno.readFile(`${dir}/${file}`);
    for (let n = 0; n < 1500; n++) {
      const bytes = valid.slice(0, next() < 0.3 ? Math.floor(next() * valid.length) : valid.length);
      for (let flips = 1 + Math.floor(next() * 4); flips > 0 && bytes.length > 0; flips--) {
        bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      }
      cases++;
      try {
        parsePth(bytes);
      } catch (e) {
        if (!(e instanceof PthError)) throw new Error(`case ${n} of ${file}: ${e}`);
        refused++;
      }
    }
  }
  ok(refused > cases / 4, `only ${refused} of ${cases} damaged files were refused`);
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
