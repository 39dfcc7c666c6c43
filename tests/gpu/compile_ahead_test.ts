// Compiling ahead in a Worker (gpu/compile_ahead.ts): every binding kind gets a placeholder its
// device accepts, a kernel that fails to compile is reported, and a tower's run compiles the
// pipelines of the step it will take.
import { rejects } from "node:assert";
import { compileAhead, lastFirst } from "../../gpu/compile_ahead.ts";
import { Network } from "../../layers/network.ts";
import { assert, TINY } from "../helpers.ts";

const EVERY_KIND = /* wgsl */ `
struct Sizes { n: u32, m: u32 }
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> sizes: Sizes;
@group(0) @binding(3) var t: texture_2d<f32>;
@group(0) @binding(4) var s: texture_storage_2d<rgba32float, write>;
@group(0) @binding(5) var r: texture_storage_2d<rgba32float, read>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x >= sizes.n) { return; }
  y[id.x] = x[id.x].x + textureLoad(t, vec2i(0), 0).x + textureLoad(r, vec2i(0)).x;
  textureStore(s, vec2i(0), vec4f(y[id.x]));
}`;

Deno.test("compileAhead compiles a kernel binding every kind of resource", async () => {
  const run = compileAhead([
    {
      key: "every kind",
      wgsl: EVERY_KIND,
      bindings: ["read", "read_write", "uniform", "texture", "storage_texture", "readonly_texture"],
    },
  ]);
  await run.done;
});

Deno.test("compileAhead reports a kernel that does not compile, and stops", async () => {
  const broken = "@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }";
  await rejects(
    compileAhead([{ key: "broken", wgsl: broken, bindings: [] }]).done,
    /compiling ahead: .*undefined_name/s,
  );
  const stopped = compileAhead([{ key: "every kind", wgsl: EVERY_KIND, bindings: [] }]);
  await stopped.stop(); // before the worker could fail on the layout
  await stopped.done; // settled, not rejected
});

Deno.test("a tower compiles ahead every pipeline of its training step, the update first", async () => {
  const net = await Network.create(TINY);
  try {
    const run = net.tower!.compileAhead(3);
    assert(run !== undefined, "llvmpipe compiles ahead");
    const { keys } = run;
    assert(new Set(keys).size === keys.length, `each pipeline once: ${keys.join()}`);
    assert(keys[0].startsWith("sgd_update"), `the update first: ${keys.join()}`);
    const loss = keys.findIndex((k) => k.startsWith("softmax_cross_entropy"));
    const mask = keys.findIndex((k) => k.startsWith("relu_backward"));
    assert(mask >= 0 && loss > mask, `backward before the loss: ${keys.join()}`);
    assert(keys.some((k) => k.startsWith("lrn_maxpool_backward")), keys.join());
    assert(
      keys.at(-1)!.startsWith("conv2d_forward") || keys.at(-1)!.startsWith("pack"),
      keys.at(-1)!,
    );
    assert(net.tower!.compileAhead(3) === undefined, "started once");
    await run.done; // the worker bound placeholders every real kernel accepts
    await net.trainStep(new Float32Array(3 * 64), new Int32Array([0, 1, 2]));
  } finally {
    await net.destroy();
  }
});

Deno.test("lastFirst lists each pipeline once, the last dispatched first", () => {
  const d = (key: string) => ({ pipeline: { key, wgsl: "", bindings: [] } });
  const order = lastFirst([d("forward"), d("loss"), d("forward"), d("update")]);
  assert(order.map((p) => p.key).join() === "update,loss,forward", "last first");
});
