/**
 * Compiling pipelines in a second thread before they are needed. lavapipe compiles a pipeline at
 * its first dispatch, on the queue's one thread, so a first training step waits for each of its
 * kernels in turn while the other core idles. A Worker with a device of its own compiles them too
 * (`compile_worker.ts`), last needed first, by dispatching each once over placeholder resources:
 * Mesa's shader cache then holds those this thread's device reaches later, and two cores compile.
 *
 * @module
 */
import type { Gpu, Precision } from "./device.ts";
import type { BindingKind, Dispatch } from "./launch.ts";

/** What the worker compiles: a pipeline's key, source and binding kinds. */
export interface PipelineSource {
  /** The cache key. */
  readonly key: string;
  /** The WGSL source. */
  readonly wgsl: string;
  /** Its bindings' kinds, in binding order. */
  readonly bindings: readonly BindingKind[];
}

/** A running compile: settles when the worker is through, or is stopped. */
export interface CompileAhead {
  /** The pipelines' keys, in the order the worker compiles them. */
  readonly keys: readonly string[];
  /** Resolves when every pipeline was compiled (or the run was stopped); rejects on an error. */
  readonly done: Promise<void>;
  /**
   * Asks the worker to end after the pipeline in hand; resolves (never rejects) once it has and
   * its device is gone. Await it before the process may exit: lavapipe crashes an exit that
   * finds a compile running.
   */
  stop(): Promise<void>;
}

/**
 * Whether compiling ahead pays on `gpu`: on llvmpipe (a GPU driver compiles at pipeline creation)
 * with Mesa's shader cache on, through which the two devices meet.
 *
 * @example
 * ```ts
 * import { Gpu } from "./device.ts";
 * import { compilesAhead } from "./compile_ahead.ts";
 * const gpu = await Gpu.create();
 * console.log(typeof compilesAhead(gpu)); // "boolean"
 * gpu.destroy();
 * ```
 */
export function compilesAhead(gpu: Gpu): boolean {
  return gpu.family === "llvmpipe" &&
    !/^(1|true|yes)$/i.test(environment("MESA_SHADER_CACHE_DISABLE"));
}

/** An environment variable, or "" where there is none or no permission to read it (a page). */
function environment(name: string): string {
  try {
    return (globalThis as { Deno?: typeof Deno }).Deno?.env.get(name) ?? "";
  } catch {
    return "";
  }
}

/**
 * The distinct pipelines of `dispatches`, last dispatched first: the order a second thread
 * compiles them in, so that it meets this thread's first dispatches midway.
 *
 * @example
 * ```ts
 * import { lastFirst } from "./compile_ahead.ts";
 * const d = (key: string) => ({ pipeline: { key, wgsl: "", bindings: [] } });
 * console.log(lastFirst([d("a"), d("b"), d("a"), d("c")]).map((p) => p.key)); // ["c", "b", "a"]
 * ```
 */
export function lastFirst(
  dispatches: readonly Pick<Dispatch, "pipeline">[] | readonly { pipeline: PipelineSource }[],
): PipelineSource[] {
  const seen = new Map<string, PipelineSource>();
  for (const { pipeline } of dispatches) {
    if (!seen.has(pipeline.key)) {
      seen.set(pipeline.key, {
        key: pipeline.key,
        wgsl: pipeline.wgsl,
        bindings: pipeline.bindings,
      });
    }
  }
  return [...seen.values()].reverse();
}

/**
 * Starts compiling `pipelines`, in order, on a device of a Worker's own (rounding as `precision`
 * says, which decides the features its device needs).
 *
 * @example
 * ```ts
 * import { compileAhead } from "./compile_ahead.ts";
 * const wgsl = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
 *   @compute @workgroup_size(1) fn main() { a[0] = 1.0; }`;
 * const run = compileAhead([{ key: "one", wgsl, bindings: ["read_write"] }]);
 * await run.done;
 * ```
 */
export function compileAhead(
  pipelines: readonly PipelineSource[],
  precision: Precision = "f32",
): CompileAhead {
  const url = new URL("./compile_worker.ts", import.meta.url).href;
  const worker = new Worker(url, { type: "module" });
  let settle = (_error?: string) => {}, ended = false;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => {
      settle = () => {};
      ended = true;
      worker.terminate();
      error === undefined ? resolve() : reject(new Error(`compiling ahead: ${error}`));
    };
  });
  worker.onmessage = ({ data }: MessageEvent<{ error?: string }>) => settle(data.error);
  worker.onerror = (e) => {
    e.preventDefault();
    settle(e.message);
  };
  worker.postMessage({ pipelines, precision });
  const stop = () => {
    if (!ended) worker.postMessage({ stop: true });
    return done.catch(() => {});
  };
  return { keys: pipelines.map((p) => p.key), done, stop };
}
