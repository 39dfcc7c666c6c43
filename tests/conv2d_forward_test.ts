import { ok as assert } from "node:assert";
import { conv2dForward, readsVectors } from "../kernels/conv2d_forward.ts";
import { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import {
  assertClose,
  CONV_CASES,
  convCaseData,
  convGeometry,
  TILINGS,
  withGpu,
} from "./helpers.ts";
import { conv2dRef } from "./reference.ts";

for (const [name, g, batch, relu] of CONV_CASES) {
  Deno.test(`conv2dForward matches the float64 reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const { oh, ow, wShape, xs, ws, bs } = convCaseData(g, batch);
      const x = Tensor.from(gpu, [batch, g.inChannels, g.height, g.width], xs);
      const weight = Tensor.from(gpu, wShape, ws);
      const bias = Tensor.from(gpu, [g.outChannels], bs);
      const want = conv2dRef(g, batch, xs, ws, bs, relu);
      for (const [tiling, tile] of TILINGS) {
        const y = Tensor.zeros(gpu, [batch, g.outChannels, oh, ow]);
        const { dispatches } = conv2dForward(gpu, {
          geometry: g,
          batch,
          x,
          weight,
          bias,
          y,
          relu,
          tile,
        });
        const vectors = dispatches.some((d) => d.pipeline.key.includes(":vectors"));
        assert(vectors === readsVectors(g), `reads vectors: ${vectors}`);
        gpu.run(dispatches);
        // Float32 accumulation over up to 363 products of magnitude <= 1.
        assertClose(await y.read(), want, { atol: 2e-5, rtol: 1e-4, what: `tiling ${tiling}` });
      }
    }));
}

Deno.test("a dense layer's weight slices (binding limit 512 bytes) are read four channels a load", async () => {
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 512 } });
  try {
    // 13 rows of 24 weights (96 bytes) in slices of a few rows, each starting mid-binding.
    const geometry = convGeometry({
      inChannels: 24,
      height: 1,
      width: 1,
      kernelH: 1,
      kernelW: 1,
      outChannels: 13,
    });
    const batch = 3, { wShape, xs, ws, bs } = convCaseData(geometry, batch);
    const x = Tensor.from(gpu, [batch, 24, 1, 1], xs), weight = Tensor.from(gpu, wShape, ws);
    const bias = Tensor.from(gpu, [13], bs), y = Tensor.zeros(gpu, [batch, 13, 1, 1]);
    for (const [tiling, tile] of TILINGS) {
      const { dispatches } = conv2dForward(gpu, {
        geometry,
        batch,
        x,
        weight,
        bias,
        y,
        relu: false,
        tile,
      });
      const multiplies = dispatches.filter((d) => !d.label.includes(" pack "));
      assert(multiplies.length > 2, `${multiplies.length} launches`);
      assert(dispatches.every((d) => d.pipeline.key.includes(":vectors")), "reads vectors");
      gpu.run(dispatches);
      const want = conv2dRef(geometry, batch, xs, ws, bs, false);
      assertClose(await y.read(), want, { atol: 2e-5, rtol: 1e-4, what: `tiling ${tiling}` });
    }
    await gpu.check();
  } finally {
    gpu.destroy();
  }
});
