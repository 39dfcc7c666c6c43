/**
 * A tower in its own Worker with its own device: two devices driven from one JavaScript thread
 * serialise, so each lives in a worker and answers the requests of `parallel/protocol.ts`,
 * moving result arrays as transferables.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { Gpu } from "../gpu/device.ts";
import { Tuning } from "../kernels/gemm/tuning.ts";
import { Tower } from "../layers/tower.ts";
import { answer, type Reply, type Request, transferables } from "./protocol.ts";

let gpu: Gpu | undefined;
let tower: Tower | undefined;

async function serve(request: Request): Promise<{ result: unknown; ms: number }> {
  switch (request.op) {
    case "create": {
      gpu = await Gpu.create(request.options);
      tower = Tower.create(gpu, request.spec, new Tuning(request.tuning));
      return { result: tower.describe(), ms: 0 };
    }
    case "destroy":
      tower?.destroy();
      gpu?.destroy();
      tower = gpu = undefined;
      return { result: null, ms: 0 };
    default:
      if (!tower) throw new Error("the tower was not built, or was destroyed");
      // deno-lint-ignore no-explicit-any
      return await answer(tower, request.op, request.args as any);
  }
}

self.onmessage = async (event: MessageEvent<Request>) => {
  const { id } = event.data;
  try {
    const { result, ms } = await serve(event.data);
    self.postMessage({ id, result, ms } satisfies Reply, transferables(result));
  } catch (e) {
    const error = e instanceof Error
      ? { name: e.name, message: e.message }
      : { name: "Error", message: String(e) };
    self.postMessage({ id, error } satisfies Reply);
  }
};
