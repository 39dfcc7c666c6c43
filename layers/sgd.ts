/**
 * Stochastic gradient descent with momentum and weight decay (the paper's section 5), its state
 * (one velocity per parameter) on the device.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, joinLaunches } from "../gpu/launch.ts";
import { Tensor } from "../gpu/tensor.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import { sgdUpdate } from "../kernels/sgd_update.ts";

/** Hyper-parameters of one update. */
export interface SgdHyper {
  /** Learning rate (the paper: 0.01, divided by 10 when validation error stops improving). */
  lr: number;
  /** Momentum (the paper: 0.9). */
  momentum: number;
  /** Weight decay (the paper: 0.0005). */
  weightDecay: number;
}

/**
 * Velocities for `parameters` and the recorded launches that update them from `gradients`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { Sgd } from "./sgd.ts";
 * const gpu = await Gpu.create();
 * const w = Tensor.from(gpu, [1], new Float32Array([1])), g = Tensor.from(gpu, [1], new Float32Array([1]));
 * const sgd = new Sgd(gpu, new Map([["w", w]]), new Map([["w", g]]));
 * sgd.setHyper({ lr: 0.5, momentum: 0.9, weightDecay: 0 });
 * gpu.run(sgd.dispatchesExcept(new Set()));
 * console.log(await w.read()); // Float32Array [0.5]
 * sgd.destroy();
 * gpu.destroy();
 * ```
 */
export class Sgd {
  /** Velocities by parameter name. */
  readonly velocities: ReadonlyMap<string, Tensor>;
  readonly #gpu: Gpu;
  readonly #hyper: GPUBuffer;
  readonly #buffers: GPUBuffer[];
  readonly #byParameter: Map<string, Dispatch[]>;

  /** Zero velocities for every parameter; `gradients` has the same names and shapes. */
  constructor(
    gpu: Gpu,
    parameters: ReadonlyMap<string, Tensor>,
    gradients: ReadonlyMap<string, Tensor>,
  ) {
    this.#gpu = gpu;
    this.#hyper = gpu.buffer(
      16,
      "sgd hyper-parameters",
      GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    );
    const velocities = new Map<string, Tensor>();
    const launches = [...parameters].map(([name, weight]) => {
      const gradient = gradients.get(name);
      if (!gradient) throw new Error(`sgd: no gradient for ${name}`);
      const velocity = Tensor.zeros(gpu, weight.shape, `${name} velocity`);
      velocities.set(name, velocity);
      return [name, sgdUpdate(gpu, { weight, velocity, gradient, hyper: this.#hyper })] as const;
    });
    this.velocities = velocities;
    this.#byParameter = new Map(launches.map(([name, l]) => [name, l.dispatches]));
    this.#buffers = joinLaunches(launches.map(([, l]) => l)).buffers;
  }

  /** The update launches of every parameter but those in `fixed` (a frozen layer's). */
  dispatchesExcept(fixed: ReadonlySet<string>): Dispatch[] {
    return [...this.#byParameter].flatMap(([name, d]) => fixed.has(name) ? [] : d);
  }

  /** Sets the hyper-parameters of the next runs (a queue write, ordered with submits). */
  setHyper(h: SgdHyper): void {
    this.#gpu.write(this.#hyper, new Float32Array([h.lr, h.momentum, h.weightDecay]));
  }

  /** Reads the velocities back, by parameter name. */
  async state(): Promise<Map<string, NamedTensor>> {
    const out = new Map<string, NamedTensor>();
    for (const [name, v] of this.velocities) {
      out.set(name, { shape: [...v.shape], data: await v.read() });
    }
    return out;
  }

  /** Replaces the velocities (same names and shapes as {@linkcode Sgd.state} returns). */
  load(state: ReadonlyMap<string, NamedTensor>): void {
    for (const [name, v] of this.velocities) {
      const t = state.get(name);
      if (!t || t.data.length !== v.size) {
        throw new RangeError(`optimizer state: no velocity of [${v.shape}] for ${name}`);
      }
    }
    for (const [name, v] of this.velocities) v.write(state.get(name)!.data);
  }

  /** Frees the velocities and launches' buffers. */
  destroy(): void {
    for (const v of this.velocities.values()) v.destroy();
    for (const u of this.#buffers) u.destroy();
    this.#hyper.destroy();
  }
}
