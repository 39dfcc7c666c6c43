/**
 * One device's share of a network split over several: its layers, in stages that each end where
 * the devices exchange activations, with launches recorded per stage and batch and replayed.
 * A tower is driven by messages from the scheduler (see `tower_worker.ts`), one call per stage
 * forward or backward, each returning the values that cross to the other device.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { NamedTensor } from "../io/safetensors.ts";
import { tensorSeed } from "../layers/init.ts";
import { type Layer, type Shape, shapeSize } from "../layers/layer.ts";
import { buildLayer, type LayerSpec, microBatchLimit } from "../layers/network.ts";
import { destroyPlan, recordStage, type StagePlan } from "../layers/plan.ts";
import { Sgd, type SgdHyper } from "../layers/sgd.ts";

/** How a tower is built: its stages' layer rows and whose dropout masks it draws. */
export interface TowerSpec {
  /** One example's input to the first stage. */
  input: Shape;
  /** Layer rows per stage; a later stage reads both towers' outputs of the one before. */
  stages: LayerSpec[][];
  /** Seed of the dropout masks. */
  seed: number;
  /**
   * Which model-parallel tower this is (0 or 1), or null for a full replica (data parallelism),
   * whose masks are then the ones one device draws for the same examples.
   */
  tower: number | null;
}

/** Where a forward call's examples sit in the step, for its dropout masks. */
export interface ForwardCall {
  /** Apply dropout (a training step with dropout on). */
  dropout: boolean;
  /** The step number. */
  step: number;
  /** The index of the call's first example in the step's batch. */
  first: number;
  /**
   * Which of two sets of buffers to use (default 0): two chunks of a batch in flight at once,
   * one computing while the other's results cross, each keep their own activations.
   */
  slot?: number;
}

const PLANS_PER_STAGE = 3;

/**
 * A device's stages of layers.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tower } from "./tower.ts";
 * const gpu = await Gpu.create();
 * const tower = Tower.create(gpu, { input: [2, 1, 1], seed: 1, tower: 0,
 *   stages: [[{ kind: "dense", name: "fc", out: 1, relu: false }]] });
 * tower.setWeights(new Map([["fc.weight", new Float32Array([1, 2])], ["fc.bias", new Float32Array([0.5])]]));
 * const y = await tower.forward(0, new Float32Array([3, 4]), 1, { dropout: false, step: 0, first: 0 });
 * console.log(y); // Float32Array [11.5]
 * tower.destroy();
 * gpu.destroy();
 * ```
 */
export class Tower {
  /** The device. */
  readonly gpu: Gpu;
  /** Each stage's layers and one example's input shape. */
  readonly stages: readonly { input: Shape; layers: readonly Layer[] }[];
  /** Examples per call: the largest batch whose every activation fits one storage binding. */
  readonly maxMicroBatch: number;
  readonly #spec: TowerSpec;
  readonly #plans = new Map<string, StagePlan>();
  #sgd: Sgd | undefined;
  #gathered: GPUBuffer | undefined;

  private constructor(
    gpu: Gpu,
    spec: TowerSpec,
    stages: { input: Shape; layers: Layer[] }[],
    maxMicroBatch: number,
  ) {
    this.gpu = gpu;
    this.#spec = spec;
    this.stages = stages;
    this.maxMicroBatch = maxMicroBatch;
  }

  /**
   * Builds the stages' layers on `gpu` (parameters zero until {@linkcode Tower.setWeights}).
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Tower } from "./tower.ts";
   * const gpu = await Gpu.create();
   * const tower = Tower.create(gpu, { input: [1, 4, 4], seed: 1, tower: null,
   *   stages: [[{ kind: "conv", name: "conv1", out: 2, kernel: 3 }]] });
   * console.log([...tower.shapes().keys()]); // ["conv1.weight", "conv1.bias"]
   * tower.destroy();
   * gpu.destroy();
   * ```
   */
  static create(gpu: Gpu, spec: TowerSpec): Tower {
    const stages: { input: Shape; layers: Layer[] }[] = [];
    let input = spec.input;
    try {
      for (const rows of spec.stages) {
        const layers: Layer[] = [];
        stages.push({ input, layers });
        let shape = input;
        for (const row of rows) {
          const layer = buildLayer(gpu, row, shape);
          layers.push(layer);
          shape = layer.outputShape;
        }
        // The next stage reads both towers' outputs (a replica's single stage has no next).
        input = [2 * shape[0], shape[1], shape[2]];
      }
      const shapes = stages.flatMap((s) => [s.input, ...s.layers.map((l) => l.outputShape)]);
      return new Tower(gpu, spec, stages, microBatchLimit(gpu, "tower", shapes));
    } catch (e) {
      for (const s of stages) for (const layer of s.layers) layer.destroy();
      throw e;
    }
  }

  /** Every parameter's shape, by name, in layer order. */
  shapes(): Map<string, number[]> {
    return new Map(this.#parameters().map(([name, t]) => [name, [...t.shape]]));
  }

  /**
   * Runs stage `stage` forward on `batch` examples and returns its output [batch, ...].
   * With dropout on, the saved activations are the ones {@linkcode Tower.backward} uses.
   */
  async forward(
    stage: number,
    input: Float32Array,
    batch: number,
    call: ForwardCall,
  ): Promise<Float32Array> {
    const plan = this.#plan(stage, batch, call.slot ?? 0);
    plan.input.write(input);
    const offset = this.stages.slice(0, stage).reduce((n, s) => n + s.layers.length, 0);
    for (const [i, launch] of plan.dropouts) {
      const layer = this.stages[stage].layers[i];
      const owner = this.#spec.tower === null ? "" : ` tower ${this.#spec.tower}`;
      const seed = tensorSeed(this.#spec.seed, `dropout ${call.step} ${offset + i}${owner}`);
      launch.setSeed(seed, call.first * shapeSize(layer.inputShape));
    }
    this.gpu.run(
      plan.forward.flatMap((l, i) => call.dropout || !plan.dropouts.has(i) ? l.dispatches : []),
    );
    return await this.gpu.read(plan.output.buffer, 0, plan.output.size * 4);
  }

  /**
   * Runs stage `stage` backward from the gradient of its output (after a forward of the same
   * batch) into its parameters' gradients (added to them with `accumulate`), and returns the
   * gradient of its input, or null for the first stage (nobody needs the image's gradient).
   */
  async backward(
    stage: number,
    outputGradient: Float32Array,
    batch: number,
    options: { accumulate: boolean; dropout: boolean; slot?: number },
  ): Promise<Float32Array | null> {
    const plan = this.#plan(stage, batch, options.slot ?? 0);
    plan.outputGradient.write(outputGradient);
    const launches = options.accumulate ? plan.backwardRest : plan.backwardFirst;
    this.gpu.run(
      launches.toReversed().flatMap((l, r) => {
        const i = launches.length - 1 - r;
        return options.dropout || !plan.dropouts.has(i) ? l.dispatches : [];
      }),
    );
    const dx = plan.inputGradient;
    if (dx) return await this.gpu.read(dx.buffer, 0, dx.size * 4);
    // Nothing crosses back from the first stage; wait anyway, so the call's time is its work's.
    await this.gpu.device.queue.onSubmittedWorkDone();
    await this.gpu.check();
    return null;
  }

  /** Applies the SGD update to every parameter from its gradient. */
  async update(hyper: SgdHyper): Promise<void> {
    const sgd = this.#optimizer();
    sgd.setHyper(hyper);
    this.gpu.run(sgd.dispatches);
    await this.gpu.check();
  }

  /**
   * The gradients of the last backward passes, by parameter name: copied into one buffer and
   * read back with one wait, not one per tensor.
   */
  async gradients(): Promise<Map<string, Float32Array>> {
    this.#optimizer();
    const gradients = this.stages.flatMap((s) => s.layers.flatMap((l) => [...l.gradients]));
    const total = gradients.reduce((n, [, g]) => n + g.size, 0);
    if (!this.#gathered || this.#gathered.size < total * 4) {
      this.#gathered?.destroy();
      this.#gathered = this.gpu.buffer(total * 4, "gathered gradients");
    }
    const gathered = this.#gathered;
    this.gpu.run([], (encoder) => {
      let at = 0;
      for (const [, g] of gradients) {
        encoder.copyBufferToBuffer(g.buffer, 0, gathered, at * 4, g.size * 4);
        at += g.size;
      }
    });
    const all = await this.gpu.read(gathered, 0, total * 4);
    let at = 0;
    return new Map(gradients.map(([name, g]) => [name, all.subarray(at, at += g.size)]));
  }

  /** Replaces the gradients (the averaged ones of data parallelism), by parameter name. */
  setGradients(values: ReadonlyMap<string, Float32Array>): void {
    this.#optimizer();
    for (const s of this.stages) {
      for (const layer of s.layers) {
        for (const [name, g] of layer.gradients) g.write(values.get(name)!);
      }
    }
  }

  /** Reads the parameters back, by name. */
  async weights(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.#parameters()) out.set(name, await t.read());
    return out;
  }

  /** Replaces the parameters (every one, the shapes {@linkcode Tower.shapes} gives). */
  setWeights(values: ReadonlyMap<string, Float32Array>): void {
    for (const [name, t] of this.#parameters()) t.write(values.get(name)!);
  }

  /** The SGD velocities, by parameter name. */
  async optimizerState(): Promise<Map<string, Float32Array>> {
    const state = await this.#optimizer().state();
    return new Map([...state].map(([name, t]) => [name, t.data]));
  }

  /** Replaces the SGD velocities, by parameter name. */
  loadOptimizerState(values: ReadonlyMap<string, Float32Array>): void {
    const state = new Map<string, NamedTensor>();
    for (const [name, shape] of this.shapes()) state.set(name, { shape, data: values.get(name)! });
    this.#optimizer().load(state);
  }

  /** Frees every buffer (not the device). */
  destroy(): void {
    for (const plan of this.#plans.values()) destroyPlan(plan);
    this.#plans.clear();
    this.#sgd?.destroy();
    this.#gathered?.destroy();
    for (const s of this.stages) for (const layer of s.layers) layer.destroy();
  }

  #parameters() {
    return this.stages.flatMap((s) => s.layers.flatMap((l) => [...l.parameters]));
  }

  /** The optimizer, built once the layers' gradients exist (they appear with a recorded plan). */
  #optimizer(): Sgd {
    if (!this.#sgd) {
      this.stages.forEach((_, stage) => this.#plan(stage, 1));
      const gradients = new Map(
        this.stages.flatMap((s) => s.layers.flatMap((l) => [...l.gradients])),
      );
      this.#sgd = new Sgd(this.gpu, new Map(this.#parameters()), gradients);
    }
    return this.#sgd;
  }

  /**
   * Stage `stage`'s launches for `batch` examples in buffer set `slot`, recorded once and kept
   * (the few latest).
   */
  #plan(stage: number, batch: number, slot = 0): StagePlan {
    const key = `${stage} ${slot} ${batch}`;
    let plan = this.#plans.get(key);
    if (plan) {
      this.#plans.delete(key); // re-inserted below: most recently used last
    } else {
      const same = [...this.#plans.keys()].filter((k) => k.startsWith(`${stage} ${slot} `));
      if (same.length >= PLANS_PER_STAGE) {
        destroyPlan(this.#plans.get(same[0])!);
        this.#plans.delete(same[0]);
      }
      const { input, layers } = this.stages[stage];
      plan = recordStage(this.gpu, layers, input, batch, stage > 0);
    }
    this.#plans.set(key, plan);
    return plan;
  }
}
