import { conv2dForward } from "../kernels/conv2d_forward.ts";
import { type Conv2dGeometry, conv2dOutputSize } from "../kernels/conv2d_geometry.ts";
import { Tensor } from "../gpu/tensor.ts";
import { assertClose, convGeometry as geometry, randomArray, TILINGS, withGpu } from "./helpers.ts";
import { conv2dRef } from "./reference.ts";

// Odd shapes: none is a multiple of a tile; batch 1 and >1; stride, padding, groups, rectangles.
const CASES: [string, Conv2dGeometry, number, boolean][] = [
  ["1x1 kernel, batch 1", geometry({ kernelH: 1, kernelW: 1 }), 1, false],
  ["3x3 pad 1, batch 3, relu", geometry({ padH: 1, padW: 1 }), 3, true],
  [
    "stride 4, 11x11 (conv1-like)",
    geometry({ height: 31, width: 29, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4 }),
    2,
    true,
  ],
  [
    "groups 2, pad 2, 5x5 (conv2-like)",
    geometry({
      inChannels: 6,
      outChannels: 10,
      kernelH: 5,
      kernelW: 5,
      padH: 2,
      padW: 2,
      groups: 2,
    }),
    2,
    true,
  ],
  [
    "groups 3, rectangular kernel and stride",
    geometry({
      inChannels: 9,
      outChannels: 6,
      height: 9,
      width: 8,
      kernelH: 3,
      kernelW: 2,
      strideH: 2,
      strideW: 1,
      padH: 1,
      padW: 0,
      groups: 3,
    }),
    1,
    false,
  ],
  [
    "dense as a whole-input convolution (fc-like, batch 3)",
    geometry({ inChannels: 7, height: 3, width: 3, outChannels: 130 }),
    3,
    true,
  ],
  [
    "many output channels and columns (several tiles each way)",
    geometry({ inChannels: 17, height: 13, width: 13, outChannels: 70, padH: 1, padW: 1 }),
    2,
    false,
  ],
];

for (const [name, g, batch, relu] of CASES) {
  Deno.test(`conv2dForward matches the float64 reference: ${name}`, () =>
    withGpu(async (gpu) => {
      const [oh, ow] = conv2dOutputSize(g);
      const xs = randomArray(batch * g.inChannels * g.height * g.width, 1);
      const ws = randomArray(g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW, 2);
      const bs = randomArray(g.outChannels, 3);
      const x = Tensor.from(gpu, [batch, g.inChannels, g.height, g.width], xs);
      const weight = Tensor.from(gpu, [
        g.outChannels,
        g.inChannels / g.groups,
        g.kernelH,
        g.kernelW,
      ], ws);
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
