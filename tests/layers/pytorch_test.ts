// Parity with PyTorch (Debian's python3-torch): files PyTorch writes load here and give PyTorch's
// logits; files this project writes load in PyTorch and give this project's logits.
import { parseSafetensors, serializeSafetensors } from "../../io/safetensors.ts";
import { ALEXNET_SMALL } from "../../layers/models.ts";
import { Network } from "../../layers/network.ts";
import { assertClose, golden, randomArray, withGpu } from "../helpers.ts";

const fixtures = new URL("../fixtures/", import.meta.url);

Deno.test("alexnet-small with PyTorch's weights gives PyTorch's logits", () =>
  withGpu(async (gpu) => {
    const net = await Network.create(ALEXNET_SMALL, { gpu });
    await net.loadWeights(new URL("alexnet_small_weights.safetensors", fixtures));
    const { tensors } = parseSafetensors(
      await Deno.readFile(new URL("alexnet_small_golden.safetensors", fixtures)),
    );
    const input = tensors.get("input")!, want = tensors.get("logits")!;
    const got = await net.forward(input.data, input.shape[0]);
    assertClose(got, want.data, { atol: 1e-5, rtol: 1e-4, what: "logits vs PyTorch" });
    await net.destroy();
  }));

Deno.test("weights saved here load in PyTorch and give the same logits", () =>
  withGpu(async (gpu) => {
    const net = await Network.create(ALEXNET_SMALL, { gpu, seed: 7, init: "he" });
    const dir = await Deno.makeTempDir();
    try {
      await net.saveWeights(`${dir}/w.safetensors`);
      const batch = 3;
      const input = randomArray(batch * 28 * 28, 8, 40); // large enough that LRN matters
      await Deno.writeFile(
        `${dir}/x.safetensors`,
        serializeSafetensors({ input: { shape: [batch, 1, 28, 28], data: input } }),
      );
      await golden(
        "forward",
        `${dir}/w.safetensors`,
        `${dir}/x.safetensors`,
        `${dir}/y.safetensors`,
      );
      const want = parseSafetensors(await Deno.readFile(`${dir}/y.safetensors`)).tensors.get(
        "logits",
      )!;
      assertClose(await net.forward(input, batch), want.data, {
        atol: 1e-5,
        rtol: 1e-4,
        what: "logits vs PyTorch",
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
      await net.destroy();
    }
  }));

Deno.test("one training step equals PyTorch's: loss, every gradient, every updated parameter", () =>
  withGpu(async (gpu) => {
    const net = await Network.create(ALEXNET_SMALL, { gpu, seed: 9, init: "he" });
    const dir = await Deno.makeTempDir();
    try {
      await net.saveWeights(`${dir}/w.safetensors`);
      const batch = 6;
      const input = randomArray(batch * 28 * 28, 10, 40);
      const labels = new Int32Array([3, 1, 4, 1, 5, 9]);
      await Deno.writeFile(
        `${dir}/batch.safetensors`,
        serializeSafetensors({
          input: { shape: [batch, 1, 28, 28], data: input },
          labels: { shape: [batch], data: Float32Array.from(labels) },
        }),
      );
      const files = ["w", "batch", "out"].map((f) => `${dir}/${f}.safetensors`);
      await golden("step", ...files);
      const want = parseSafetensors(await Deno.readFile(`${dir}/out.safetensors`)).tensors;
      const { loss } = await net.trainStep(input, labels, {
        lr: 0.01,
        momentum: 0.9,
        weightDecay: 5e-4,
        dropout: false,
      });
      assertClose([loss], want.get("loss")!.data, { atol: 1e-5, rtol: 1e-5, what: "loss" });
      const grads = await net.gradients();
      const params = await net.weights();
      for (const [name, param] of params) {
        const g = want.get(`grad.${name}`)!.data;
        const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(grads.get(name)!.data, g, {
          atol: 1e-4 * scale,
          rtol: 1e-3,
          what: `gradient of ${name}`,
        });
        assertClose(param.data, want.get(`param.${name}`)!.data, {
          atol: 1e-6,
          rtol: 1e-5,
          what: `${name} after the step`,
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
      await net.destroy();
    }
  }));
