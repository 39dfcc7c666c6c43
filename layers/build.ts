/**
 * Building layers from a table's rows: the one place a row becomes a layer, and how many examples
 * a launch can hold on a device.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { Tuning } from "../kernels/gemm/tuning.ts";
import { Conv2d, Dense } from "./conv2d.ts";
import { Dropout } from "./dropout.ts";
import { type Layer, type Shape, shapeSize } from "./layer.ts";
import { Lrn } from "./lrn.ts";
import { MaxPool } from "./maxpool.ts";
import type { LayerSpec } from "./models.ts";

/**
 * Examples per launch on `gpu`: the largest batch whose every activation (one example's of each
 * of `shapes`) fits one storage binding. Throws when not even one example fits.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { microBatchLimit } from "./build.ts";
 * const gpu = await Gpu.create({ limits: { maxStorageBufferBindingSize: 4096 } });
 * console.log(microBatchLimit(gpu, "t", [[1, 8, 8], [4, 8, 8]])); // 4
 * gpu.destroy();
 * ```
 */
export function microBatchLimit(gpu: Gpu, model: string, shapes: readonly Shape[]): number {
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  const largest = Math.max(...shapes.map(shapeSize));
  const examples = Math.floor(limit / (largest * 4));
  if (examples < 1) {
    throw new RangeError(
      `${model}: one example's activations (${largest * 4} bytes) exceed this adapter's ` +
        `storage binding limit (${limit} bytes)`,
    );
  }
  return examples;
}

/**
 * Builds the layer a table row describes, for inputs of `input` shape; layers that multiply record
 * their kernels with `tuning`'s choices.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { buildLayer } from "./build.ts";
 * const gpu = await Gpu.create();
 * const pool = buildLayer(gpu, { kind: "maxpool", name: "pool1", size: 3, stride: 2 }, [96, 55, 55]);
 * console.log(pool.outputShape); // [96, 27, 27]
 * gpu.destroy();
 * ```
 */
export function buildLayer(gpu: Gpu, spec: LayerSpec, input: Shape, tuning?: Tuning): Layer {
  switch (spec.kind) {
    case "conv":
      return new Conv2d(gpu, spec.name, input, { ...spec, tuning });
    case "dense":
      return new Dense(gpu, spec.name, input, { ...spec, tuning });
    case "lrn":
      return new Lrn(gpu, spec.name, input, spec.params);
    case "maxpool":
      return new MaxPool(gpu, spec.name, input, spec.size, spec.stride);
    case "dropout":
      return new Dropout(gpu, spec.name, input, spec.p);
  }
}

/**
 * Builds the layers of `rows` in order, each reading the one before's output, from `input`; on an
 * error, frees what was built and rethrows. An LRN or a max-pooling right after a convolution's
 * ReLU applies the ReLU's mask in its input gradient, in place of the convolution's own pass over
 * it.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { buildLayers } from "./build.ts";
 * const gpu = await Gpu.create();
 * const layers = buildLayers(gpu, [{ kind: "maxpool", name: "pool1", size: 2, stride: 2 }], [1, 4, 4]);
 * console.log(layers[0].outputShape); // [1, 2, 2]
 * gpu.destroy();
 * ```
 */
export function buildLayers(
  gpu: Gpu,
  rows: readonly LayerSpec[],
  input: Shape,
  tuning?: Tuning,
): Layer[] {
  const layers: Layer[] = [];
  try {
    for (const row of rows) {
      const layer = buildLayer(gpu, row, layers.at(-1)?.outputShape ?? input, tuning);
      const before = layers.at(-1);
      // An LRN or a pooling after a ReLU masks the gradient it computes: the ReLU's own pass
      // is saved.
      if (
        (layer instanceof Lrn || layer instanceof MaxPool) && before instanceof Conv2d &&
        before.relu
      ) {
        layer.reluInput = before.reluMaskedAfter = true;
      }
      layers.push(layer);
    }
    return layers;
  } catch (e) {
    for (const layer of layers) layer.destroy();
    throw e;
  }
}
