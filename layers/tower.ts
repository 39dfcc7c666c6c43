/**
 * A tower: one device's share of a network, its layers in stages. Every network is towers: one
 * device runs one tower holding the whole table in one stage; data parallelism runs such a tower
 * on each device; the paper's model parallelism gives each device half of every layer, in stages
 * that end where the devices exchange activations (`parallel/split.ts`). A tower records each
 * batch size's launches once (a plan, kept in its one {@linkcode PlanCache}) and replays them.
 *
 * A tower that holds the whole network runs a training step's micro-batches (forward, the loss on
 * the device, backward) with one submit each and one readback ({@linkcode Tower.learn}); a stage
 * runs forward or backward alone and returns what crosses to the other device.
 *
 * @module
 */
import { type CompileAhead, compileAhead, compilesAhead, lastFirst } from "../gpu/compile_ahead.ts";
import { GpuError } from "../gpu/errors.ts";
import type { Gpu } from "../gpu/device.ts";
import type { Dispatch } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { DropoutLaunch } from "../kernels/dropout_forward.ts";
import { adapterKey, type TunedGemm, Tuning, type TuningTable } from "../kernels/gemm/tuning.ts";
import { buildLayers, microBatchLimit } from "./build.ts";
import { dropoutSeed } from "./dropout.ts";
import { type Layer, type Shape, shapeSize } from "./layer.ts";
import type { LayerSpec } from "./models.ts";
import { PlanCache } from "./plan_cache.ts";
import {
  destroyPlan,
  forwardDispatches,
  type InferencePlan,
  recordInference,
  recordStage,
  recordTraining,
  type StagePlan,
  type TrainingPlan,
} from "./plan.ts";
import { Sgd, type SgdHyper } from "./sgd.ts";

/** How a tower is built: its stages' layer rows and whose dropout masks it draws. */
export interface TowerSpec {
  /** The model's name, for errors. */
  name: string;
  /** One example's input to the first stage. */
  input: Shape;
  /** Layer rows per stage; a later stage reads both towers' outputs of the one before. */
  stages: LayerSpec[][];
  /** Seed of the dropout masks. */
  seed: number;
  /** Which model-parallel tower this is (0 or 1), or null for one holding the whole network. */
  tower: number | null;
}

/** One layer of a tower, in numbers. */
export interface LayerInfo {
  /** Its name in the table. */
  name: string;
  /** One example's output shape. */
  outputShape: Shape;
  /** Learned values. */
  parameters: number;
  /** Multiply-adds per example. */
  macs: number;
}

/** What a tower reports once built. */
export interface TowerInfo {
  /** The adapter, in words. */
  description: string;
  /** The key of its tuning choices (see `kernels/gemm/tuning.ts`). */
  adapter: string;
  /** Examples per launch. */
  maxMicroBatch: number;
  /** Each parameter's shape, by name, in layer order. */
  shapes: Map<string, number[]>;
  /** Its layers in order, all stages. */
  layers: LayerInfo[];
}

/** Where a stage's forward call sits in the step. */
export interface StageCall {
  /** Apply dropout (a training step with dropout on). */
  dropout: boolean;
  /** The step number (dropout masks derive from it). */
  step: number;
  /** The index of the call's first example in the step's batch. */
  first: number;
  /** Which buffer set to use (default 0): two chunks in flight keep their own activations. */
  slot?: number;
  /** Stop after this layer of the stage (by index) and return its output. */
  upTo?: number;
}

/** How {@linkcode Tower.learn} runs a share of a training step. */
export interface LearnOptions {
  /** The index of the first example in the step's batch. */
  first: number;
  /** The loss gradient's scale: 1 / the whole batch. */
  scale: number;
  /** The step number (dropout masks derive from it). */
  step: number;
  /** Apply dropout. */
  dropout: boolean;
  /** Apply this SGD update after the backward passes, before the readback. */
  update?: SgdHyper;
}

type Plan = InferencePlan | TrainingPlan | StagePlan;

const PLANS_PER_KIND = 3;

/**
 * A device's stages of layers.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tower } from "./tower.ts";
 * const gpu = await Gpu.create();
 * const tower = Tower.create(gpu, { name: "t", input: [2, 1, 1], seed: 1, tower: null,
 *   stages: [[{ kind: "dense", name: "fc", out: 1, relu: false }]] });
 * tower.setWeights(new Map([["fc.weight", new Float32Array([1, 2])], ["fc.bias", new Float32Array([0.5])]]));
 * console.log(await tower.infer(new Float32Array([3, 4]), 1)); // Float32Array [11.5]
 * tower.destroy();
 * gpu.destroy();
 * ```
 */
export class Tower {
  /** The device. */
  readonly gpu: Gpu;
  /** Each stage's layers and one example's input shape. */
  readonly stages: readonly { input: Shape; layers: readonly Layer[] }[];
  /** Every layer, all stages, in order. */
  readonly layers: readonly Layer[];
  /** Examples per launch: the largest batch whose every activation fits one storage binding. */
  readonly maxMicroBatch: number;
  /** The autotuner's choices its kernels use. */
  readonly tuning: Tuning;
  readonly #spec: TowerSpec;
  readonly #plans = new PlanCache<Plan>(PLANS_PER_KIND, destroyPlan);
  #frozen: ReadonlySet<string> = new Set();
  /** The SGD launches of the parameters not frozen (derived once per freeze). */
  #updates: Dispatch[] | undefined;
  #sgd: Sgd | undefined;
  #gathered: GPUBuffer | undefined;
  #ahead: CompileAhead | undefined;
  #destroyed = false;

  private constructor(
    gpu: Gpu,
    spec: TowerSpec,
    stages: { input: Shape; layers: Layer[] }[],
    tuning: Tuning,
  ) {
    this.gpu = gpu;
    this.#spec = spec;
    this.stages = stages;
    this.layers = stages.flatMap((s) => s.layers);
    this.tuning = tuning;
    const shapes = stages.flatMap((s) => [s.input, ...s.layers.map((l) => l.outputShape)]);
    this.maxMicroBatch = microBatchLimit(gpu, spec.name, shapes);
  }

  /**
   * Builds the stages' layers on `gpu` (parameters zero until {@linkcode Tower.setWeights}), their
   * kernels recorded with `tuning`'s choices.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Tower } from "./tower.ts";
   * const gpu = await Gpu.create();
   * const tower = Tower.create(gpu, { name: "t", input: [1, 4, 4], seed: 1, tower: null,
   *   stages: [[{ kind: "conv", name: "conv1", out: 2, kernel: 3 }]] });
   * console.log([...tower.describe().shapes.keys()]); // ["conv1.weight", "conv1.bias"]
   * tower.destroy();
   * gpu.destroy();
   * ```
   */
  static create(gpu: Gpu, spec: TowerSpec, tuning: Tuning = new Tuning()): Tower {
    const stages: { input: Shape; layers: Layer[] }[] = [];
    let input = spec.input;
    try {
      for (const rows of spec.stages) {
        const layers = buildLayers(gpu, rows, input, tuning);
        stages.push({ input, layers });
        const [c, h, w] = layers.at(-1)?.outputShape ?? input;
        input = [2 * c, h, w]; // a later stage reads both towers' outputs
      }
      return new Tower(gpu, spec, stages, tuning);
    } catch (e) {
      for (const layer of stages.flatMap((s) => s.layers)) layer.destroy();
      throw e;
    }
  }

  /** The adapter, the micro-batch, the parameters' shapes and the layers, in numbers. */
  describe(): TowerInfo {
    return {
      description: this.gpu.description,
      adapter: adapterKey(this.gpu),
      maxMicroBatch: this.maxMicroBatch,
      shapes: new Map(this.#parameters().map(([name, t]) => [name, [...t.shape]])),
      layers: this.layers.map((l) => ({
        name: l.name,
        outputShape: l.outputShape,
        parameters: [...l.parameters.values()].reduce((n, t) => n + t.size, 0),
        macs: l.macs,
      })),
    };
  }

  /**
   * A whole tower's outputs for `batch` examples: logits (or probabilities, or layer `upTo`'s
   * output), [batch, ...]. Batches past {@linkcode Tower.maxMicroBatch} run as several launches
   * whose results meet in one buffer, read back once.
   */
  async infer(
    input: Float32Array,
    batch: number,
    options: { softmax?: boolean; upTo?: number } = {},
  ): Promise<Float32Array> {
    this.#assertUsable();
    const chunks = Math.ceil(batch / this.maxMicroBatch);
    const plan = this.#wholePlan("inference", batch) as InferencePlan;
    let result = options.softmax ? plan.probabilities : plan.logits;
    let dispatches = [...forwardDispatches(plan), ...options.softmax ? plan.softmax : []];
    if (options.upTo !== undefined) {
      result = plan.outputs[options.upTo];
      dispatches = forwardDispatches(plan, options.upTo);
    }
    const width = result.size / plan.batch, perExample = shapeSize(this.#spec.input);
    if (chunks === 1) {
      plan.input.write(input);
      this.gpu.run(dispatches);
      return await this.gpu.read(result.buffer, 0, batch * width * 4);
    }
    const gathered = this.#gather(batch * width * 4);
    for (let first = 0; first < batch; first += plan.batch) {
      const rows = Math.min(plan.batch, batch - first);
      plan.input.write(input.subarray(first * perExample, (first + rows) * perExample));
      this.gpu.run(
        dispatches,
        (encoder) =>
          encoder.copyBufferToBuffer(
            result.buffer,
            0,
            gathered,
            first * width * 4,
            rows * width * 4,
          ),
      );
    }
    return await this.gpu.read(gathered, 0, batch * width * 4);
  }

  /**
   * A whole tower's share of a training step on labelled examples: forward (with dropout), softmax
   * cross-entropy scaled by `scale`, backward into the parameters' gradients (written by the
   * first micro-batch, added to by the rest), and the update where asked; one submit per
   * micro-batch, one readback. Returns the summed loss and top-1 hits, before the update.
   */
  async learn(
    input: Float32Array,
    labels: Int32Array,
    options: LearnOptions,
  ): Promise<{ loss: number; hits: number }> {
    this.#assertUsable();
    const batch = labels.length, perExample = shapeSize(this.#spec.input);
    const plan = this.#wholePlan("training", batch) as TrainingPlan;
    const sgd = this.#optimizer();
    const gathered = this.#gather(2 * batch * 4);
    const active = (i: number) => options.dropout || !plan.dropouts.has(i);
    const forward = forwardDispatches(plan, undefined, active);
    for (let first = 0; first < batch; first += plan.batch) {
      const rows = Math.min(plan.batch, batch - first);
      plan.input.write(input.subarray(first * perExample, (first + rows) * perExample));
      this.gpu.write(plan.labels, labels.subarray(first, first + rows));
      plan.loss.set(rows, options.scale);
      this.#seedDropouts(plan.dropouts, 0, options.step, options.first + first);
      const launches = first === 0 ? plan.backwardFirst : plan.backwardRest;
      const backward = launches.toReversed()
        .flatMap((l, r) => active(launches.length - 1 - r) ? l.dispatches : []);
      this.gpu.run([...forward, ...plan.loss.dispatches, ...backward], (encoder) => {
        encoder.copyBufferToBuffer(plan.losses.buffer, 0, gathered, first * 4, rows * 4);
        const hits = plan.batch * 4;
        encoder.copyBufferToBuffer(
          plan.losses.buffer,
          hits,
          gathered,
          (batch + first) * 4,
          rows * 4,
        );
      });
    }
    if (options.update) {
      sgd.setHyper(options.update);
      this.gpu.run(this.#updateDispatches());
    }
    const results = await this.gpu.read(gathered, 0, 2 * batch * 4);
    const sum = (from: number) => results.subarray(from, from + batch).reduce((a, b) => a + b, 0);
    return { loss: sum(0), hits: sum(batch) };
  }

  /**
   * Runs stage `stage` forward on `batch` examples and returns its output [batch, ...] (or layer
   * `call.upTo`'s). With dropout on, the saved activations are the ones
   * {@linkcode Tower.backward} uses.
   */
  async forward(
    stage: number,
    input: Float32Array,
    batch: number,
    call: StageCall,
  ): Promise<Float32Array> {
    this.#assertUsable();
    const plan = this.#stagePlan(stage, batch, call.slot ?? 0);
    plan.input.write(input);
    this.#seedDropouts(plan.dropouts, stage, call.step, call.first);
    const last = call.upTo ?? plan.forward.length - 1;
    this.gpu.run(forwardDispatches(plan, last, (i) => call.dropout || !plan.dropouts.has(i)));
    const output = plan.outputs[last];
    return await this.gpu.read(output.buffer, 0, output.size * 4);
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
    this.#assertUsable();
    const plan = this.#stagePlan(stage, batch, options.slot ?? 0);
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
    this.#assertUsable();
    const sgd = this.#optimizer();
    sgd.setHyper(hyper);
    this.gpu.run(this.#updateDispatches());
    await this.gpu.check();
  }

  /**
   * Keeps the layers named in `layers` fixed from now on (this tower's of them): their parameter
   * gradients are not computed and no update, weight decay included, touches them; plans are
   * recorded again without them.
   */
  freeze(layers: readonly string[]): void {
    this.#assertUsable();
    this.#frozen = new Set(layers);
    this.#updates = undefined;
    this.#plans.clear();
  }

  /**
   * The gradients of the last backward passes, by parameter name: copied into one buffer and
   * read back with one wait, not one per tensor.
   */
  async gradients(): Promise<Map<string, Float32Array>> {
    this.#assertUsable();
    this.#optimizer();
    const gradients = this.layers.flatMap((l) => [...l.gradients]);
    const total = gradients.reduce((n, [, g]) => n + g.size, 0);
    const gathered = this.#gather(total * 4);
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

  /** Replaces the gradients (the summed ones of data parallelism), by parameter name. */
  setGradients(values: ReadonlyMap<string, Float32Array>): void {
    this.#assertUsable();
    this.#optimizer();
    for (const layer of this.layers) {
      for (const [name, g] of layer.gradients) g.write(values.get(name)!);
    }
  }

  /** Reads the parameters back, by name. */
  async weights(): Promise<Map<string, Float32Array>> {
    this.#assertUsable();
    const out = new Map<string, Float32Array>();
    for (const [name, t] of this.#parameters()) out.set(name, await t.read());
    return out;
  }

  /** Replaces the parameters (every one, the shapes {@linkcode Tower.describe} gives). */
  setWeights(values: ReadonlyMap<string, Float32Array>): void {
    this.#assertUsable();
    for (const [name, t] of this.#parameters()) t.write(values.get(name)!);
  }

  /** The SGD velocities, by parameter name (zero before the first step). */
  async optimizerState(): Promise<Map<string, Float32Array>> {
    this.#assertUsable();
    const state = await this.#optimizer().state();
    return new Map([...state].map(([name, t]) => [name, t.data]));
  }

  /** Replaces the SGD velocities, by parameter name. */
  loadOptimizerState(values: ReadonlyMap<string, Float32Array>): void {
    this.#assertUsable();
    const sgd = this.#optimizer();
    sgd.load(
      new Map([...sgd.velocities].map(([name, v]) => [name, {
        shape: [...v.shape],
        data: values.get(name) ?? new Float32Array(0),
      }])),
    );
  }

  /**
   * Times every candidate tiling of every layer's GEMMs for the micro-batches `batch` examples run
   * as and keeps the fastest in {@linkcode Tower.tuning} (first adopting `known`'s choices for
   * this adapter, which are not measured again); plans are recorded again with them.
   */
  async tune(
    batch: number,
    known: TuningTable = {},
  ): Promise<(TunedGemm & { layer: string; adapter: string })[]> {
    this.#assertUsable();
    const adapter = adapterKey(this.gpu);
    for (const [problem, tile] of Object.entries(new Tuning(known).choices(adapter))) {
      this.tuning.set(adapter, problem, tile);
    }
    const results = [];
    for (const layer of this.layers) {
      for (const t of (await layer.tune?.(this.microBatch(batch))) ?? []) {
        results.push({ layer: layer.name, adapter, ...t });
      }
    }
    this.#plans.clear();
    return results;
  }

  /** Examples per launch for `batch` examples: equal micro-batches, each at most a launch. */
  microBatch(batch: number): number {
    return Math.ceil(batch / Math.ceil(batch / this.maxMicroBatch));
  }

  /**
   * Starts compiling a training step's pipelines for `batch` examples in a Worker, last needed
   * first, where that pays (`gpu/compile_ahead.ts`): the first step then compiles about half of
   * them itself. It only saves time, so its errors are dropped; it stops with the tower (await
   * {@linkcode Tower.close} before the process may exit). Returns the run (undefined where it does
   * not pay, or one was started before).
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Tower } from "./tower.ts";
   * const gpu = await Gpu.create();
   * const tower = Tower.create(gpu, { name: "t", input: [2, 1, 1], seed: 1, tower: null,
   *   stages: [[{ kind: "dense", name: "fc", out: 2, relu: false }]] });
   * const run = tower.compileAhead(4); // undefined off llvmpipe
   * console.log(run === undefined || run.keys.length > 0); // true
   * await tower.close();
   * gpu.destroy();
   * ```
   */
  compileAhead(batch: number): CompileAhead | undefined {
    this.#assertUsable();
    if (this.#ahead || !compilesAhead(this.gpu)) return undefined;
    const plan = this.#wholePlan("training", batch) as TrainingPlan;
    const backward = plan.backwardFirst.toReversed().flatMap((l) => l.dispatches);
    const step = [...forwardDispatches(plan), ...plan.loss.dispatches, ...backward];
    this.#ahead = compileAhead(
      lastFirst([...step, ...this.#updateDispatches()]),
      this.gpu.precision,
    );
    this.#ahead.done.catch(() => {});
    return this.#ahead;
  }

  /**
   * {@linkcode Tower.destroy}, once a compile ahead has stopped.
   *
   * @example
   * ```ts
   * import { Gpu } from "../gpu/device.ts";
   * import { Tower } from "./tower.ts";
   * const gpu = await Gpu.create();
   * const tower = Tower.create(gpu, { name: "t", input: [2, 1, 1], seed: 1, tower: null,
   *   stages: [[{ kind: "dense", name: "fc", out: 2, relu: false }]] });
   * tower.compileAhead(4);
   * await tower.close();
   * gpu.destroy();
   * ```
   */
  async close(): Promise<void> {
    await this.#ahead?.stop();
    this.destroy();
  }

  /** Frees every buffer of the tower (not the device). Later calls throw. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    void this.#ahead?.stop(); // the worker ends after the pipeline in hand (close awaits it)
    this.#plans.clear();
    this.#sgd?.destroy();
    this.#gathered?.destroy();
    for (const layer of this.layers) layer.destroy();
  }

  /** The update launches of every parameter outside the frozen layers. */
  #updateDispatches(): Dispatch[] {
    const frozen = this.layers.filter((l) => this.#frozen.has(l.name));
    const fixed = new Set(frozen.flatMap((l) => [...l.parameters.keys()]));
    return this.#updates ??= this.#optimizer().dispatchesExcept(fixed);
  }

  #parameters(): [string, Tensor][] {
    return this.layers.flatMap((l) => [...l.parameters]);
  }

  /**
   * A whole tower's plan of `kind` for the micro-batches a batch of `batch` runs as (equal ones,
   * each at most a launch); a kept plan up to twice as large serves, its extra rows ignored.
   */
  #wholePlan(kind: "inference" | "training", batch: number): Plan {
    const micro = this.microBatch(batch);
    return this.#plans.get(
      kind,
      micro,
      2,
      (b) =>
        kind === "inference"
          ? recordInference(this.gpu, this.layers, this.#spec.input, b)
          : recordTraining(this.gpu, this.layers, this.#spec.input, b, this.#frozen),
    );
  }

  /** Stage `stage`'s launches for exactly `batch` examples in buffer set `slot`. */
  #stagePlan(stage: number, batch: number, slot: number): StagePlan {
    const { input, layers } = this.stages[stage];
    return this.#plans.get(
      `stage ${stage} slot ${slot}`,
      batch,
      1,
      (b) => recordStage(this.gpu, layers, input, b, stage > 0, this.#frozen),
    ) as StagePlan;
  }

  /** Seeds the dropout launches of a stage's plan for examples from `first` of step `step`. */
  #seedDropouts(
    dropouts: ReadonlyMap<number, DropoutLaunch>,
    stage: number,
    step: number,
    first: number,
  ): void {
    const offset = this.stages.slice(0, stage).reduce((n, s) => n + s.layers.length, 0);
    for (const [i, launch] of dropouts) {
      const layer = this.stages[stage].layers[i];
      const seed = dropoutSeed(this.#spec.seed, step, offset + i, this.#spec.tower);
      launch.setSeed(seed, first * shapeSize(layer.inputShape));
    }
  }

  /** The optimizer, built once the layers' gradients exist (they appear with a recorded plan). */
  #optimizer(): Sgd {
    if (!this.#sgd) {
      const gradients = new Map(this.layers.flatMap((l) => [...l.gradients]));
      this.#sgd = new Sgd(this.gpu, new Map(this.#parameters()), gradients);
    }
    return this.#sgd;
  }

  /** A buffer of at least `bytes` where several launches' results meet for one readback. */
  #gather(bytes: number): GPUBuffer {
    if (!this.#gathered || this.#gathered.size < bytes) {
      this.#gathered?.destroy();
      this.#gathered = this.gpu.buffer(bytes, "gathered results");
    }
    return this.#gathered;
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new Error(`${this.#spec.name}: the network was destroyed`);
    if (this.gpu.lost) throw new GpuError(`${this.#spec.name}: its GPU device is gone`);
  }
}
