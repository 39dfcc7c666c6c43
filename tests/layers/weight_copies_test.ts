// A dense layer's copy of its weights kept from its training forward pass to its input gradient
// (layers/weight_copies.ts): the input gradient reads it without copying the weights again, slice
// by slice where the weights exceed a binding, and still matches the float64 reference; after an
// inference forward pass (no kept copy) it copies them itself.
import { Gpu } from "../../gpu/device.ts";
import type { Launch } from "../../gpu/launch.ts";
import { Tensor } from "../../gpu/tensor.ts";
import { readsCopies } from "../../kernels/gemm/mirror.ts";
import { Dense } from "../../layers/conv2d.ts";
import { assert, assertClose, randomArray } from "../helpers.ts";

const IN = 72, OUT = 48, BATCH = 3;

/** dX = dY W in float64. */
function inputGradientRef(dy: Float32Array, w: Float32Array): Float64Array {
  const dx = new Float64Array(BATCH * IN);
  for (let b = 0; b < BATCH; b++) {
    for (let o = 0; o < OUT; o++) {
      for (let i = 0; i < IN; i++) dx[b * IN + i] += dy[b * OUT + o] * w[o * IN + i];
    }
  }
  return dx;
}

/** The buffers a launch's input-gradient dispatches copy from. */
function copiedByInputGradient(launch: Launch): GPUBuffer[] {
  return launch.dispatches.filter((d) => d.label.startsWith("conv2d_backward_input"))
    .flatMap((d) => (d.copies ?? []).map((c) => c.source.buffer));
}

async function check(gpu: Gpu, slices: number): Promise<void> {
  const fc = new Dense(gpu, "fc", [IN, 1, 1], { out: OUT, relu: false });
  const ws = randomArray(OUT * IN, 3),
    xs = randomArray(BATCH * IN, 4),
    dys = randomArray(BATCH * OUT, 5);
  const weight = fc.parameters.get("fc.weight")!;
  gpu.write(weight.buffer, ws);
  const x = Tensor.from(gpu, [BATCH, IN, 1, 1], xs), y = Tensor.zeros(gpu, [BATCH, OUT, 1, 1]);
  const dy = Tensor.from(gpu, [BATCH, OUT, 1, 1], dys), dx = Tensor.zeros(gpu, [BATCH, IN, 1, 1]);
  const want = inputGradientRef(dys, ws);
  try {
    for (const training of [true, false]) {
      const forward = fc.forward(x, y, BATCH, training);
      const backward = fc.backward({ x, y, dy, dx, batch: BATCH, accumulate: false, forward });
      const inputs = backward.dispatches.filter((d) => d.label.startsWith("conv2d_backward_input"));
      assert(inputs.length === slices, `${inputs.length} input-gradient launches`);
      const kept = training && readsCopies(gpu);
      const copied = copiedByInputGradient(backward).filter((b) => b === weight.buffer).length;
      assert(copied === (kept ? 0 : slices), `training ${training}: ${copied} copies of W`);
      gpu.run([...forward.dispatches, ...backward.dispatches]);
      assertClose(await dx.read(), want, {
        atol: 1e-5,
        rtol: 1e-5,
        what: `dx, training ${training}`,
      });
      for (const b of [...forward.buffers, ...backward.buffers]) b.destroy();
    }
    await gpu.check();
  } finally {
    for (const t of [x, y, dy, dx]) t.destroy();
    fc.destroy();
  }
}

Deno.test("a dense layer's input gradient reads the weights' copy its training forward kept", async () => {
  const gpu = await Gpu.create();
  try {
    await check(gpu, 1);
  } finally {
    gpu.destroy();
  }
});

Deno.test("kept weight copies, slice by slice where the weights exceed a binding", async () => {
  // 4096-byte bindings hold 13 rows of 288 bytes: four slices of 12 output channels.
  const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 4096 } });
  try {
    await check(gpu, 4);
  } finally {
    gpu.destroy();
  }
});
