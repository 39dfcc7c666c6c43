// The kernel reference checks sized for Chromium on SwiftShader: bundled for the browser by
// browser_test.ts and run in the page. Every kernel and each tiling strategy (workgroup tiles,
// register blocks, packed operands) once, through the same checks the Deno tests run.
import { GEMM_TILES, type GemmTile } from "../../kernels/gemm/tiles.ts";
import { CONV_CASES, withGpu } from "../helpers.ts";
import { checkConvolution } from "../kernels/conv2d_checks.ts";
import { ELEMENTWISE_CHECKS } from "../kernels/elementwise_checks.ts";

/** Convolution cases run in the browser: a gathered operand with groups, and vec4 dense reads. */
const CASES = [
  "8 and 4 channels a group (packed operands gather B), stride 2, pad 2, 5x5, batch 1",
  "dense in 2 groups of 36 -> 12 channels read four a load, batch 11",
];

/** One tiling of each strategy, each compiling in about a second on SwiftShader. */
const TILINGS: [string, GemmTile][] = [
  ["wide", GEMM_TILES.wide],
  ["thinBlocks", GEMM_TILES.thinBlocks],
  ["thinPacked", GEMM_TILES.thinPacked],
];

/** A check's outcome in the page. */
export interface Outcome {
  name: string;
  ms: number;
  error?: string;
}

/** Runs every check and reports each, failures included. */
export async function runKernelChecks(): Promise<Outcome[]> {
  const convolutions = CONV_CASES.filter(([name]) => CASES.includes(name)).map((
    [name, g, batch, relu],
  ) =>
    [
      `conv2d forward and gradients: ${name}`,
      () => withGpu((gpu) => checkConvolution(gpu, [g, batch, relu], TILINGS, "f32")),
    ] as const
  );
  const outcomes: Outcome[] = [];
  for (const [name, run] of [...convolutions, ...ELEMENTWISE_CHECKS]) {
    const started = performance.now();
    try {
      await run();
      outcomes.push({ name, ms: performance.now() - started });
    } catch (e) {
      outcomes.push({ name, ms: performance.now() - started, error: String(e) });
    }
  }
  return outcomes;
}
