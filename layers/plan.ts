/**
 * Plans: a network's launches for one micro-batch size, recorded once and replayed every step,
 * with the activation and gradient buffers they use. Inference plans run the layers forward;
 * training plans run them forward, compute the loss, and run them backward.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, joinLaunches, type Launch } from "../gpu/launch.ts";
import { Tensor } from "../gpu/tensor.ts";
import type { DropoutLaunch } from "../kernels/dropout_forward.ts";
import { type CrossEntropyLaunch, softmaxCrossEntropy } from "../kernels/softmax_cross_entropy.ts";
import { softmaxForward } from "../kernels/softmax_forward.ts";
import { Dropout } from "./dropout.ts";
import { lrnPoolAt, recordBackward, recordForward } from "./fusion.ts";
import type { Layer, Shape } from "./layer.ts";

/** What every plan has: its batch, input, logits and the buffers it owns. */
interface PlanBase {
  /** Examples per launch. */
  batch: number;
  /** The input [batch, ...input shape], written before each run. */
  input: Tensor;
  /** The last layer's output [batch, classes]. */
  logits: Tensor;
  /** Tensors the plan allocated. */
  owned: Tensor[];
  /** Small buffers the plan allocated (buffers, labels). */
  buffers: GPUBuffer[];
}

/** A plan's forward launches: run them with {@linkcode forwardDispatches}. */
export interface ForwardLaunches {
  /**
   * Layer launches forward, by layer index; empty for an LRN that the max-pooling after it
   * computes in its own kernel.
   */
  forward: Launch[];
  /**
   * For each layer whose `forward` launch is empty, the launch that computes its output after
   * `forward`'s launches before it: for a pass that stops at that layer.
   */
  alone: Map<number, Launch>;
  /** Each layer's output, by layer index (in-place layers share their input's). */
  outputs: Tensor[];
}

/** Launches of the inference forward pass, and of softmax after it. */
export interface InferencePlan extends PlanBase, ForwardLaunches {
  /** Softmax of the logits into `probabilities`. */
  softmax: Dispatch[];
  /** [batch, classes]. */
  probabilities: Tensor;
}

/**
 * Launches of a stage (a run of layers) on one micro-batch: forward, then backward from a
 * gradient placed at its output. A whole network is one stage with the loss after it; the
 * two-device scheduler runs each tower as several, exchanging activations between them.
 */
export interface StagePlan extends ForwardLaunches {
  /** Examples per launch. */
  batch: number;
  /** The input [batch, ...input shape], written before each run. */
  input: Tensor;
  /** The last layer's output. */
  output: Tensor;
  /** The loss gradient with respect to `output`, in place before the backward launches run. */
  outputGradient: Tensor;
  /** The loss gradient with respect to `input`, where it was asked for. */
  inputGradient: Tensor | null;
  /** The dropout launches, by layer index (set their seeds per run). */
  dropouts: Map<number, DropoutLaunch>;
  /** Layer launches backward writing the parameter gradients, by layer index. */
  backwardFirst: Launch[];
  /** The same, adding to the parameter gradients (later micro-batches of a batch). */
  backwardRest: Launch[];
  /** Tensors the plan allocated. */
  owned: Tensor[];
  /** Small buffers the plan allocated. */
  buffers: GPUBuffer[];
}

/** Launches of a training step on one micro-batch: a stage of every layer, and the loss. */
export interface TrainingPlan extends StagePlan, PlanBase {
  /** Class indices, written before each run (i32). */
  labels: GPUBuffer;
  /** Per-example losses of the last run, then their top-1 hits [2 * batch]. */
  losses: Tensor;
  /** The loss launch (set the valid rows and gradient scale per run). */
  loss: CrossEntropyLaunch;
}

/** Allocates the activations [batch, ...shape] after `input`; in-place layers share buffers. */
function activations(
  gpu: Gpu,
  layers: readonly Layer[],
  input: Tensor,
  batch: number,
  owned: Tensor[],
) {
  const acts = [input];
  for (const layer of layers) {
    const previous = acts[acts.length - 1];
    if (layer.inPlace) {
      acts.push(previous);
    } else {
      const y = Tensor.zeros(gpu, [batch, ...layer.outputShape], `${layer.name} output`);
      owned.push(y);
      acts.push(y);
    }
  }
  return acts;
}

/**
 * The forward dispatches of a plan's layers up to and including `last` (default: all): a layer
 * with an `alone` launch runs it where the pass stops at it. `keep` drops other launches (dropout
 * off).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { buildLayers } from "./build.ts";
 * import { PAPER_LRN } from "../kernels/lrn_forward.ts";
 * import { destroyPlan, forwardDispatches, recordStage } from "./plan.ts";
 * const gpu = await Gpu.create();
 * const layers = buildLayers(gpu, [
 *   { kind: "lrn", name: "lrn1", params: PAPER_LRN },
 *   { kind: "maxpool", name: "pool1", size: 3, stride: 2 },
 * ], [4, 7, 7]);
 * const plan = recordStage(gpu, layers, [4, 7, 7], 2, false);
 * console.log(forwardDispatches(plan).length, forwardDispatches(plan, 0).length); // 1 1
 * destroyPlan(plan);
 * gpu.destroy();
 * ```
 */
export function forwardDispatches(
  plan: ForwardLaunches,
  last = plan.forward.length - 1,
  keep: (layer: number) => boolean = () => true,
): Dispatch[] {
  return plan.forward.slice(0, last + 1).flatMap((launch, i) =>
    !keep(i) ? [] : (i === last ? plan.alone.get(i) ?? launch : launch).dispatches
  );
}

/**
 * Records the inference plan of `layers` for micro-batches of `batch`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Dense } from "./conv2d.ts";
 * import { destroyPlan, forwardDispatches, recordInference } from "./plan.ts";
 * const gpu = await Gpu.create();
 * const fc = new Dense(gpu, "fc", [4, 1, 1], { out: 3, relu: false });
 * const plan = recordInference(gpu, [fc], [4, 1, 1], 2);
 * gpu.run(forwardDispatches(plan));
 * destroyPlan(plan);
 * gpu.destroy();
 * ```
 */
export function recordInference(
  gpu: Gpu,
  layers: readonly Layer[],
  input: Shape,
  batch: number,
): InferencePlan {
  const owned: Tensor[] = [];
  const x = Tensor.zeros(gpu, [batch, ...input], "input");
  owned.push(x);
  const acts = activations(gpu, layers, x, batch, owned);
  const { forward, alone } = recordForward(layers, acts, batch, false);
  const last = acts[acts.length - 1];
  const logits = new Tensor(gpu, [batch, last.size / batch], last.buffer);
  const probabilities = Tensor.zeros(gpu, logits.shape, "probabilities");
  owned.push(probabilities);
  const softmax = softmaxForward(gpu, { x: logits, y: probabilities, rows: batch });
  return {
    batch,
    input: x,
    logits,
    probabilities,
    forward,
    alone,
    softmax: softmax.dispatches,
    outputs: acts.slice(1),
    owned,
    buffers: joinLaunches([...forward, ...alone.values(), softmax]).buffers,
  };
}

/**
 * Records the stage plan of `layers` for micro-batches of `batch`: forward with dropout, and
 * backward into the layers' gradients (and the input's, with `inputGradient`), none for the
 * layers named in `frozen`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Dense } from "./conv2d.ts";
 * import { destroyPlan, recordStage } from "./plan.ts";
 * const gpu = await Gpu.create();
 * const fc = new Dense(gpu, "fc", [4, 1, 1], { out: 3, relu: false });
 * const plan = recordStage(gpu, [fc], [4, 1, 1], 2, true);
 * console.log(plan.inputGradient?.shape); // [2, 4, 1, 1]
 * destroyPlan(plan);
 * fc.destroy();
 * gpu.destroy();
 * ```
 */
export function recordStage(
  gpu: Gpu,
  layers: readonly Layer[],
  input: Shape,
  batch: number,
  inputGradient: boolean,
  frozen: ReadonlySet<string> = new Set(),
): StagePlan {
  const owned: Tensor[] = [];
  const x = Tensor.zeros(gpu, [batch, ...input], "input");
  owned.push(x);
  const acts = activations(gpu, layers, x, batch, owned);
  // One gradient per distinct activation; in-place layers share it.
  const grads: (Tensor | null)[] = [
    inputGradient ? Tensor.zeros(gpu, x.shape, "input gradient") : null,
  ];
  if (grads[0]) owned.push(grads[0]);
  for (let i = 1; i < acts.length; i++) {
    if (acts[i] === acts[i - 1] && grads[i - 1]) {
      grads.push(grads[i - 1]);
    } else if (lrnPoolAt(layers, i - 1)?.backward) {
      grads.push(null); // an LRN whose gradient the pooling's kernel computes: never stored
    } else {
      const g = Tensor.zeros(gpu, acts[i].shape, `${layers[i - 1].name} output gradient`);
      owned.push(g);
      grads.push(g);
    }
  }
  const { forward, alone } = recordForward(layers, acts, batch, true);
  const dropouts = new Map<number, DropoutLaunch>();
  layers.forEach((layer, i) => {
    if (layer instanceof Dropout && forward[i].dispatches.length > 0) {
      dropouts.set(i, forward[i] as DropoutLaunch);
    }
  });
  // A frozen layer computes no parameter gradients; before the first trainable layer (and with
  // no input gradient asked for) nothing runs backward at all.
  const trainable = layers.map((l) => l.parameters.size > 0 && !frozen.has(l.name));
  const needsDx = layers.map((_, i) => inputGradient || trainable.slice(0, i).includes(true));
  const backward = (accumulate: boolean) =>
    recordBackward(layers, { acts, grads, forward, batch, accumulate, trainable, needsDx });
  const backwardFirst = backward(false), backwardRest = backward(true);
  return {
    batch,
    input: x,
    output: acts[acts.length - 1],
    outputGradient: grads[grads.length - 1]!,
    inputGradient: grads[0],
    outputs: acts.slice(1),
    dropouts,
    forward,
    alone,
    backwardFirst,
    backwardRest,
    owned,
    buffers: joinLaunches([...forward, ...alone.values(), ...backwardFirst, ...backwardRest])
      .buffers,
  };
}

/**
 * Records the training plan of `layers` for micro-batches of `batch`: forward with dropout,
 * softmax cross-entropy, and backward into the gradients of the layers not in `frozen`.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Dense } from "./conv2d.ts";
 * import { destroyPlan, recordTraining } from "./plan.ts";
 * const gpu = await Gpu.create();
 * const fc = new Dense(gpu, "fc", [4, 1, 1], { out: 3, relu: false });
 * const plan = recordTraining(gpu, [fc], [4, 1, 1], 2);
 * console.log([...fc.gradients.keys()]); // ["fc.weight", "fc.bias"]
 * destroyPlan(plan);
 * fc.destroy();
 * gpu.destroy();
 * ```
 */
export function recordTraining(
  gpu: Gpu,
  layers: readonly Layer[],
  input: Shape,
  batch: number,
  frozen: ReadonlySet<string> = new Set(),
): TrainingPlan {
  const stage = recordStage(gpu, layers, input, batch, false, frozen);
  const logits = new Tensor(gpu, [batch, stage.output.size / batch], stage.output.buffer);
  const labels = gpu.buffer(batch * 4, "labels");
  const losses = Tensor.zeros(gpu, [2 * batch], "losses and hits");
  const loss = softmaxCrossEntropy(gpu, {
    z: logits,
    labels,
    dz: stage.outputGradient,
    losses,
    rows: batch,
  });
  return {
    ...stage,
    logits,
    labels,
    losses,
    loss,
    owned: [...stage.owned, losses],
    buffers: [...stage.buffers, labels, ...loss.buffers],
  };
}

/**
 * Frees a plan's buffers (not the layers' parameters).
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { destroyPlan, recordInference } from "./plan.ts";
 * const gpu = await Gpu.create();
 * destroyPlan(recordInference(gpu, [], [2, 1, 1], 1));
 * gpu.destroy();
 * ```
 */
export function destroyPlan(plan: InferencePlan | StagePlan): void {
  for (const t of plan.owned) t.destroy();
  for (const b of plan.buffers) b.destroy();
}
