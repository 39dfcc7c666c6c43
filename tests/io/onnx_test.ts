// ONNX export (io/onnx.ts, `main.ts export`): ONNX Runtime (onnxruntime-node, used by tests only)
// gives this project's logits within 1e-4 for alexnet, alexnet-small and torchvision's variant, and
// the ONNX checker (Debian's python3-onnx) accepts the file with its metadata.
import { deepStrictEqual, strictEqual } from "node:assert";
import * as ort from "onnxruntime-node";
import { encodePreprocess } from "../../data/preprocess.ts";
import { onnxModel } from "../../io/onnx.ts";
import { createAlexNet } from "../../layers/network.ts";
import { assertClose, cli, run } from "../helpers.ts";

/** `check_model` on `path`, then the opset and the metadata's keys, as JSON. */
const CHECK = `import json, sys, onnx
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m)
print(json.dumps({"opset": [o.version for o in m.opset_import],
                  "metadata": sorted(p.key for p in m.metadata_props)}))`;

for (const model of ["alexnet-small", "torchvision", "alexnet"]) {
  Deno.test(`ONNX Runtime runs the exported ${model} to this project's logits`, async () => {
    const net = await createAlexNet({ model, seed: 3 });
    try {
      const bytes = onnxModel(net.config, await net.weights(), { model });
      const batch = 2, n = net.config.input.reduce((a, b) => a * b);
      const x = Float32Array.from({ length: batch * n }, (_, i) => Math.sin(i * 0.37) * 2);
      const ours = await net.forward(x, batch);
      const session = await ort.InferenceSession.create(bytes);
      const input = new ort.Tensor("float32", x, [batch, ...net.config.input]);
      const theirs = (await session.run({ input })).logits.data as Float32Array;
      const scale = Math.max(...ours.map(Math.abs));
      assertClose(theirs, ours, { atol: 1e-4 * scale, rtol: 1e-4, what: `${model} logits` });
      await session.release();
    } finally {
      await net.destroy();
    }
  });
}

Deno.test("export writes a file the ONNX checker accepts, with the class names", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const weights = `${dir}/w.safetensors`, onnx = `${dir}/m.onnx`;
    const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
    const classes = Array.from({ length: 10 }, (_, k) => `class ${k}`);
    const mean = new Float32Array(32 * 32);
    await net.saveWeights(weights, {
      preprocess: encodePreprocess({ classes, shape: [1, 32, 32], mean }),
    });
    await net.destroy();
    const exported = await cli("export", "--weights", weights, "--onnx", onnx);
    strictEqual(exported.code, 0, exported.stderr);
    const checked = await run("/usr/bin/python3", ["-c", CHECK, onnx]);
    strictEqual(checked.code, 0, checked.stderr);
    deepStrictEqual(JSON.parse(checked.stdout), { opset: [13], metadata: ["model", "preprocess"] });
    const missing = await cli("export", "--weights", weights);
    strictEqual(missing.code, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
