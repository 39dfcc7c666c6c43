/**
 * LRN's forward and backward kernels of several trees (e.g. git worktrees), timed alternately in
 * one process, 8 rounds, each tree on its own device: on a noisy host, side by side beats runs
 * minutes apart. `deno run -A tools/compare_lrn.ts CHANNELS SIDE TREE...` (alexnet's lrn1 is
 * 96 55, lrn2 128 27), batch 32.
 *
 * @module
 */
import { Gpu } from "../gpu/device.ts";
import { Tensor } from "../gpu/tensor.ts";
import { PAPER_LRN } from "../kernels/lrn_forward.ts";
import { timeDispatches } from "../bench/clock.ts";

const [C, H] = [Number(Deno.args[0] ?? 96), Number(Deno.args[1] ?? 55)];
const trees = Deno.args.slice(2);
const B = 32, P = H * H, n = B * C * P;
const rnd = () => Float32Array.from({ length: n }, () => Math.random());
const xs = rnd(), dys = rnd();
const launches: [string, ReturnType<Gpu["perElement"]>, Gpu][] = [];
for (const tree of trees) {
  const gpu = await Gpu.create();
  const x = Tensor.from(gpu, [B, C, H, H], xs), dy = Tensor.from(gpu, [B, C, H, H], dys);
  const y = Tensor.zeros(gpu, [B, C, H, H]);
  const f = await import(`${tree}/kernels/lrn_forward.ts`);
  const b = await import(`${tree}/kernels/lrn_backward.ts`);
  launches.push([`${tree} fwd`, f.lrnForward(gpu, { x, y, batch: B, params: PAPER_LRN }), gpu]);
  launches.push([
    `${tree} bwd`,
    b.lrnBackward(gpu, { x, dy, dx: y, batch: B, params: PAPER_LRN }),
    gpu,
  ]);
}
const times: Record<string, number[]> = {};
for (let r = 0; r < 8; r++) {
  for (const [name, l, gpu] of launches) {
    (times[name] ??= []).push((await timeDispatches(gpu, l.dispatches, 4)).ms);
  }
}
for (const [k, t] of Object.entries(times)) {
  console.log(
    k.padEnd(30),
    t.map((v) => v.toFixed(1)).join(" "),
    " min",
    Math.min(...t).toFixed(1),
  );
}
