/**
 * The convolution's input gradient as an implicit GEMM on the shared core: per group,
 * dX[c, (b, ih, iw)] = sum over (o, kh, kw) of W[o, c, kh, kw] * dY[b, o, oh, ow], where
 * oh = (ih + pad - kh) / stride when that divides exactly (a transposed convolution, gathered:
 * no atomics, no scatter). A fused ReLU's mask is applied to dY beforehand
 * (kernels/relu_backward.ts). Launches over slices of a large weight add into dX.
 *
 * Reference test: tests/kernels/conv2d_test.ts; timed by
 * `deno task bench:kernels --kernel conv2d_backward_input`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { Launch } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  conv2dConstantsWgsl,
  type Conv2dGeometry,
  conv2dOutputSize,
  LAUNCH_WGSL,
  launchValues,
  validateConv2d,
  weightLaunches,
} from "./conv2d_geometry.ts";
import { type KeptMirror, recordGemm } from "./gemm/record.ts";
import type { GemmTile } from "./gemm/tiles.ts";
import { tileFor, type Tuning } from "./gemm/tuning.ts";
import { readsVectors } from "./conv2d_forward.ts";
import { canGather, packTransposed, tapsToGather } from "./pack_transposed.ts";

/**
 * How the input gradient reads its operands: "elements", one at a time through the transposed
 * weights; "gathered" (packed operands, a launch's output channels a multiple of 4), k running
 * over (tap, output channel) and B gathered from the output gradient packed channels last, as the
 * forward pass does (kernels/conv2d_forward.ts); "vectors", for a dense layer (see
 * {@linkcode readsVectorGradients}), the weights four input channels a load (A along its rows)
 * and the output gradient four output channels (B along k).
 */
export type BackwardInputRead = "elements" | "gathered" | "vectors";

/**
 * The WGSL of the input gradient's operands for the GEMM core: bindings, sizes, loaders (the
 * output gradient gathered through the transposed weights) and the epilogue, read as `read` says.
 *
 * @example
 * ```ts
 * import { conv2dBackwardInputOperandsWgsl } from "./conv2d_backward_input.ts";
 * const wgsl = conv2dBackwardInputOperandsWgsl({ inChannels: 1, height: 4, width: 4,
 *   outChannels: 2, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, groups: 1 });
 * console.assert(wgsl.includes("fn storeC"));
 * ```
 */
export function conv2dBackwardInputOperandsWgsl(
  g: Conv2dGeometry,
  read: BackwardInputRead = "elements",
): string {
  if (read === "vectors") return DENSE_WGSL;
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> launch: Launch;
${conv2dConstantsWgsl(g)}

fn gemmRows() -> u32 { return CG; }
fn gemmCols() -> u32 { return launch.batch * H * W; }
fn gemmDepth() -> u32 { return launch.oCount * KHW; }
${read === "gathered" ? GATHERED_WGSL : ELEMENTS_WGSL}
fn storeC(c: u32, n: u32, v: f32) {
  let i = ((n / (H * W)) * CIN + (launch.oBase / MG) * CG + c) * H * W + n % (H * W);
  var sum = v;
  if (launch.accumulate != 0u) { sum += dx[i]; } // uniform: a launch that overwrites reads nothing
  dx[i] = sum;
}
`;
}

/** The output pixel that input column n reads through tap r, or P where there is none. */
const OUTPUT_PIXEL_WGSL = /* wgsl */ `
fn outputPixel(r: u32, n: u32) -> u32 {
  let q = n % (H * W);
  let th = q / W + PH; // padded input row; the output row is (th - kh) / SH
  let tw = q % W + PW;
  let kh = r / KW;
  let kw = r % KW;
  if (th < kh || tw < kw || (th - kh) % SH != 0u || (tw - kw) % SW != 0u) { return P; }
  let oh = (th - kh) / SH;
  let ow = (tw - kw) / SW;
  if (oh >= OH || ow >= OW) { return P; }
  return oh * OW + ow;
}`;

const ELEMENTS_WGSL = /* wgsl */ `${OUTPUT_PIXEL_WGSL}
fn loadA(c: u32, k: u32) -> f32 { return w[launch.wOffset + ((k / KHW) * CG + c) * KHW + k % KHW]; }
fn loadB(k: u32, n: u32) -> f32 {
  let p = outputPixel(k % KHW, n);
  if (p == P) { return 0.0; }
  return dy[((n / (H * W)) * COUT + launch.oBase + k / KHW) * P + p];
}`;

const GATHERED_WGSL = /* wgsl */ `${OUTPUT_PIXEL_WGSL}
fn loadA(c: u32, k: u32) -> f32 {
  let o = k % launch.oCount;
  return w[launch.wOffset + (o * CG + c) * KHW + k / launch.oCount];
}
fn quadsPerTap() -> u32 { return launch.oCount / 4u; }
fn tapOfB(tap: u32, n: u32) -> vec2u { // the tap's first output quad, and the step to the next
  let p = outputPixel(tap, n);
  if (p == P) { return vec2u(0u); } // texel 0, zeros, for every quad
  return vec2u(2u + ((n / (H * W)) * P + p) * (COUT / 4u) + launch.oBase / 4u, 1u);
}`;

// A dense layer, its sizes in the launch's uniform (one pipeline serves every dense layer): row c
// of A is input channel c of the group, column n image n, k output channel o of the launch. The
// vector buffers dy (binding 0) and w (binding 1) are read by dy4 and w4.
const DENSE_WGSL = /* wgsl */ `
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> launch: Launch;
${LAUNCH_WGSL}

fn gemmRows() -> u32 { return launch.cg; }
fn gemmCols() -> u32 { return launch.batch; }
fn gemmDepth() -> u32 { return launch.oCount; }
fn loadA4m(c4: u32, o: u32) -> vec4f { return w4((launch.wOffset + o * launch.cg) / 4u + c4); }
fn loadB4(o4: u32, n: u32) -> vec4f { return dy4((n * launch.cout + launch.oBase) / 4u + o4); }
fn storeC(c: u32, n: u32, v: f32) {
  let i = n * launch.cin + launch.cBase + c;
  var sum = v;
  if (launch.accumulate != 0u) { sum += dx[i]; } // uniform: a launch that overwrites reads nothing
  dx[i] = sum;
}
`;

/**
 * Whether a convolution's gradients read their operands four channels a load: a dense layer
 * whose forward pass does (see `readsVectors`) and whose groups' output channels are a multiple of
 * 4, so that every row of the output gradient and its slices start on a vec4.
 *
 * @example
 * ```ts
 * import { readsVectorGradients } from "./conv2d_backward_input.ts";
 * const fc7 = { inChannels: 4096, height: 1, width: 1, outChannels: 4096, kernelH: 1,
 *   kernelW: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 };
 * console.log(readsVectorGradients(fc7), readsVectorGradients({ ...fc7, outChannels: 10 })); // true false
 * ```
 */
export function readsVectorGradients(g: Conv2dGeometry): boolean {
  return readsVectors(g) && (g.outChannels / g.groups) % 4 === 0;
}

/**
 * Records the input gradient `dx` [batch, inChannels, h, w] of a convolution from its output
 * gradient `dy` [batch, outChannels, oh, ow] (ReLU mask already applied).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { conv2dBackwardInput } from "./conv2d_backward_input.ts";
 * const gpu = await Gpu.create();
 * const geometry = { inChannels: 1, height: 2, width: 2, outChannels: 1, kernelH: 2, kernelW: 2,
 *   strideH: 1, strideW: 1, padH: 0, padW: 0, groups: 1 };
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([3]));
 * const weight = Tensor.from(gpu, [1, 1, 2, 2], new Float32Array([1, 2, 3, 4]));
 * const dx = Tensor.zeros(gpu, [1, 1, 2, 2]);
 * gpu.run(conv2dBackwardInput(gpu, { geometry, batch: 1, dy, weight, dx }).dispatches);
 * console.log(await dx.read()); // Float32Array [3, 6, 9, 12]
 * gpu.destroy();
 * ```
 */
export function conv2dBackwardInput(
  gpu: Gpu,
  args: {
    geometry: Conv2dGeometry;
    batch: number;
    dy: Tensor;
    weight: Tensor;
    dx: Tensor;
    /** Tiling; chosen from the shape (and `tuning`) when omitted. */
    tile?: GemmTile;
    /** The autotuner's choices to prefer (see `gemm/tuning.ts`). */
    tuning?: Tuning;
    /** A dense layer's weights, slice by slice, where its forward pass copied them to a texture. */
    weightCopy?: (slice: GPUBufferBinding) => KeptMirror | undefined;
  },
): Launch & { problem: string; tile: GemmTile } {
  const g = args.geometry;
  validateConv2d(g);
  const [oh, ow] = conv2dOutputSize(g);
  const cols = args.batch * g.height * g.width;
  const mgKhw = (g.outChannels / g.groups) * g.kernelH * g.kernelW; // the deepest launch's depth
  // The GEMM this launch solves: the autotuner's key.
  const problem = `conv2d_backward_input:${Object.values(g)}:${args.batch}`;
  const buffers: GPUBuffer[] = [];
  const mg = g.outChannels / g.groups;
  const slices = weightLaunches(gpu, g, args.weight);
  const quads = slices.every((s) => s.oBase % 4 === 0 && s.oCount % 4 === 0);
  const vectors = readsVectorGradients(g) && quads && slices.every((s) => s.wOffset % 4 === 0);
  const tile = args.tile ??
    tileFor(gpu, args.tuning, problem, g.inChannels / g.groups, cols, mgKhw, vectors);
  const view = { outer: args.batch, rows: g.outChannels, cols: oh * ow }; // channels last
  const read: BackwardInputRead = vectors
    ? "vectors"
    : quads && canGather(gpu, tile, view)
    ? "gathered"
    : "elements";
  // Dense layers share their pipelines: their sizes are in the launch's uniform.
  const key = `conv2d_backward_input:${vectors ? "dense" : Object.values(g).join()}:${read}`;
  const calls = slices.map(({ oBase, oCount, binding, wOffset }) => {
    const accumulate = oBase % mg !== 0; // later slices of a group add to the first
    const values = launchValues(g, { batch: args.batch, oBase, oCount, wOffset, accumulate });
    const uniform = gpu.uniform(values, `${key} launch`);
    buffers.push(uniform);
    return {
      label: `conv2d_backward_input ${oBase}+${oCount}`,
      resources: [args.dy.buffer, binding, args.dx.buffer, uniform],
      rows: g.inChannels / g.groups,
      cols,
      depth: oCount * g.kernelH * g.kernelW,
      kept: vectors && tile.kind === "mirrored" ? args.weightCopy?.(binding) : undefined,
    };
  });
  const launch = recordGemm(gpu, {
    key,
    operands: conv2dBackwardInputOperandsWgsl(g, read),
    bindings: ["read", "read", "read_write", "uniform"],
    tile,
    calls,
    gatherB: read === "gathered" ? packTransposed(gpu, { x: args.dy, view }) : undefined,
    gatherTaps: read === "gathered"
      ? tapsToGather(g.kernelH * g.kernelW, Math.min(...slices.map((s) => s.oCount)) / 4)
      : undefined,
    // Eight lanes then read 128 consecutive columns of a row of W a step, not 64 of two rows.
    vectors: { vectorK: vectors, vectorM: vectors, adjacentRows: vectors },
    vectorBuffers: vectors ? { dy: 0, w: 1 } : undefined,
  });
  return { ...launch, buffers: [...buffers, ...launch.buffers], problem, tile };
}
