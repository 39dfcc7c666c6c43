/**
 * The Worker of `compile_ahead.ts`: compiles each pipeline it is sent by dispatching one workgroup
 * of it over placeholder resources (zero uniforms, so that every kernel returns at once), then
 * posts `{}`, or `{ error }` on the first failure. A `{ stop: true }` message ends the run after
 * the pipeline in hand; the device is destroyed before the reply, so that nothing of lavapipe's
 * is still running when the process may exit.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { PipelineSource } from "./compile_ahead.ts";
import { Gpu, type Precision } from "./device.ts";
import type { BindingKind, Resource } from "./launch.ts";

let stopping = false;

self.onmessage = async (
  { data }: MessageEvent<{ pipelines: PipelineSource[]; precision: Precision } | { stop: true }>,
) => {
  if ("stop" in data) {
    stopping = true;
    return;
  }
  let gpu: Gpu | undefined;
  let reply: { error?: string } = {};
  try {
    gpu = await Gpu.create({ precision: data.precision });
    for (const { key, wgsl, bindings } of data.pipelines) {
      if (stopping) break;
      const owned: (GPUBuffer | GPUTexture)[] = [];
      const resources = bindings.map((kind) => placeholder(gpu!, kind, owned));
      gpu.run([gpu.dispatch(key, gpu.pipeline(key, wgsl, bindings), resources, 1)]);
      await gpu.device.queue.onSubmittedWorkDone();
      for (const r of owned) r.destroy();
    }
    await gpu.check();
  } catch (e) {
    reply = { error: e instanceof Error ? e.message : String(e) };
  }
  gpu?.destroy();
  self.postMessage(reply);
};

/** A resource of `kind` that any kernel may bind there (small, zero-filled), kept in `owned`. */
function placeholder(gpu: Gpu, kind: BindingKind, owned: (GPUBuffer | GPUTexture)[]): Resource {
  if (kind === "texture" || kind === "readonly_texture" || kind === "storage_texture") {
    const texture = gpu.scratchTexture(1, 1, "placeholder");
    owned.push(texture);
    return texture.createView();
  }
  const usage = kind === "uniform" ? GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST : undefined;
  const buffer = gpu.buffer(1024, "placeholder", usage);
  owned.push(buffer);
  return buffer;
}
