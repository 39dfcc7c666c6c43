import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { Tensor } from "../gpu/tensor.ts";
import { assertClose, CONV_CASES, convCaseData, TILINGS, withGpu } from "./helpers.ts";
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
        gpu.run(dispatches);
        // Float32 accumulation over up to 363 products of magnitude <= 1.
        assertClose(await y.read(), want, { atol: 2e-5, rtol: 1e-4, what: `tiling ${tiling}` });
      }
    }));
}
