// The per-kernel benchmark (bench/kernels.ts) and the WGSL printer (`main.ts wgsl`): every kernel
// of the layers asked for, each GEMM in every candidate tiling, timed side by side.
import { deepStrictEqual, match, ok as assert, strictEqual } from "node:assert";
import { benchKernels, formatKernels } from "../../bench/kernels.ts";
import { candidateTiles } from "../../kernels/gemm/tiles.ts";
import { cli, TINY, withGpu } from "../helpers.ts";

Deno.test("benchKernels times each kernel of the layers asked for, GEMMs in every candidate tiling", () =>
  withGpu(async (gpu) => {
    const layers = ["conv2", "lrn1", "pool1", "drop1"];
    const { batch, rows } = await benchKernels(gpu, TINY, 2, 1, { layers });
    strictEqual(batch, 2);
    const candidates = candidateTiles(gpu.family, gpu.limits).length;
    const count = (layer: string, kernel: string) =>
      rows.filter((r) => r.layer === layer && r.kernel === kernel).length;
    for (const kernel of ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]) {
      strictEqual(count("conv2", kernel), 1 + candidates, kernel); // the adapter's pick, then each
    }
    deepStrictEqual(
      [
        count("conv2", "relu_backward"),
        count("conv2", "sgd_update"),
        count("lrn1", "lrn_forward"),
        count("lrn1", "lrn_backward"),
        count("lrn1", "sgd_update"),
      ],
      [1, 1, 1, 1, 0],
    );
    // pool1 and lrn1 run as one kernel each way, as training runs them; their own kernels alone.
    deepStrictEqual(
      [
        count("pool1", "lrn_maxpool_forward"),
        count("pool1", "lrn_maxpool_backward"),
        count("pool1", "maxpool_forward"),
        count("pool1", "maxpool_backward"),
        count("drop1", "dropout_forward"),
      ],
      [1, 1, 0, 1, 2],
    );
    const alone = rows.filter((r) => r.variant === "alone").map((r) => `${r.layer} ${r.kernel}`);
    deepStrictEqual(alone, ["lrn1 lrn_forward", "lrn1 lrn_backward", "pool1 maxpool_backward"]);
    for (const r of rows) {
      assert(r.ms > 0 && Number.isFinite(r.ms), `${r.layer} ${r.kernel} ${r.variant}: ${r.ms} ms`);
      const multiplies = r.kernel.startsWith("conv2d");
      assert(multiplies ? r.gflops! > 0 : r.gflops === null, `${r.kernel} GFLOP/s`);
    }
    assert(rows.some((r) => r.variant.startsWith("chosen (")), "the adapter's pick is named");
    const table = formatKernels("tiny", batch, rows);
    strictEqual(table.split("\n").length, rows.length + 2);
  }));

Deno.test("wgsl prints a kernel's pipelines for a layer; a bad kernel or layer is a usage error", async () => {
  const out = await cli(
    "wgsl",
    "conv2d_forward",
    "--model",
    "alexnet-small",
    "--layer",
    "conv2",
    "--tile",
    "packed",
  );
  strictEqual(out.code, 0, out.stderr);
  match(out.stdout, /^\/\/ conv2d_forward of alexnet-small conv2, textures 16x16/);
  // conv2 gathers its input packed channels last: the packing kernel, then the core on texels.
  match(out.stdout, /\/\/ pipeline pack_transposed:[\s\S]*fn tapOfB[\s\S]*textureLoad\(packedA/);
  const chosen = await cli("wgsl", "lrn_maxpool_backward", "--model", "alexnet-small");
  strictEqual(chosen.code, 0, chosen.stderr);
  match(chosen.stdout, /lrn_maxpool_backward of alexnet-small pool1, backward[\s\S]*@compute/);
  for (
    const [args, message] of [
      [["wgsl", "conv3d"], /unknown kernel "conv3d"/],
      [["wgsl", "conv2d_forward", "--layer", "conv9"], /alexnet has no layer "conv9"/],
      [["wgsl", "conv2d_forward", "--tile", "huge"], /--tile must name wide, /],
      [["kernels", "--kernel", "gemm"], /unknown kernel "gemm"/],
    ] as const
  ) {
    const bad = await cli(...args);
    strictEqual(bad.code, 2, bad.stderr);
    match(bad.stderr, message);
  }
});
