// Bundled for the browser by tools/browser_tilings.ts: alexnet-small's conv2 forward at batch 4 in
// each tiling given, timed in the page (first run, compile included, then the mean of three).
import { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { conv2dForward } from "../kernels/conv2d_forward.ts";
import type { Conv2dGeometry } from "../kernels/conv2d_geometry.ts";
import type { GemmTile } from "../kernels/gemm/tiles.ts";

/** One tiling's times. */
export interface TilingTime {
  tile: GemmTile;
  firstMs: number;
  ms: number;
  gflops: number;
}

const CONV2: Conv2dGeometry = {
  inChannels: 64,
  height: 13,
  width: 13,
  outChannels: 128,
  kernelH: 5,
  kernelW: 5,
  strideH: 1,
  strideW: 1,
  padH: 2,
  padW: 2,
  groups: 2,
};

/** Times each of `tiles` in turn on a fresh device. */
export async function timeTilings(tiles: GemmTile[]): Promise<TilingTime[]> {
  const gpu = await Gpu.create(), batch = 4, g = CONV2;
  const x = Tensor.zeros(gpu, [batch, g.inChannels, g.height, g.width]);
  const weight = Tensor.zeros(gpu, [g.outChannels, g.inChannels / g.groups, g.kernelH, g.kernelW]);
  const bias = Tensor.zeros(gpu, [g.outChannels]);
  const y = Tensor.zeros(gpu, [batch, g.outChannels, g.height, g.width]);
  const flops = 2 * batch * g.outChannels * g.height * g.width * (g.inChannels / g.groups) * 25;
  const out: TilingTime[] = [];
  try {
    for (const tile of tiles) {
      const launch = conv2dForward(gpu, {
        geometry: g,
        batch,
        x,
        weight,
        bias,
        y,
        relu: false,
        tile,
      });
      let started = performance.now();
      gpu.run(launch.dispatches);
      await y.read();
      const firstMs = performance.now() - started;
      started = performance.now();
      for (let i = 0; i < 3; i++) gpu.run(launch.dispatches);
      await y.read();
      const ms = (performance.now() - started) / 3;
      out.push({ tile, firstMs, ms, gflops: flops / ms / 1e6 });
      for (const b of launch.buffers) b.destroy();
    }
  } finally {
    gpu.destroy();
  }
  return out;
}
