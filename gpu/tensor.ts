/**
 * A float32 tensor on the device: a buffer, a shape, and NCHW (row-major) layout.
 *
 * @module
 */
import type { Gpu } from "./device.ts";

/**
 * A row-major float32 tensor held in one GPU buffer. Convolution activations are NCHW, dense
 * weights [out, in], convolution weights [out, in / groups, kh, kw]: PyTorch's layouts.
 *
 * @example
 * ```ts
 * import { Gpu } from "./device.ts";
 * import { Tensor } from "./tensor.ts";
 * const gpu = await Gpu.create();
 * const t = Tensor.from(gpu, [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
 * console.log(t.shape, await t.read());
 * t.destroy();
 * gpu.destroy();
 * ```
 */
export class Tensor {
  /** The device the tensor lives on. */
  readonly gpu: Gpu;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** The storage buffer, exactly `size * 4` bytes (at least 4). */
  readonly buffer: GPUBuffer;

  /**
   * Wraps an existing buffer; prefer {@linkcode Tensor.zeros} and {@linkcode Tensor.from}.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { Tensor } from "./tensor.ts";
   * const gpu = await Gpu.create();
   * const t = new Tensor(gpu, [4], gpu.buffer(16, "t"));
   * console.assert(t.size === 4);
   * gpu.destroy();
   * ```
   */
  constructor(gpu: Gpu, shape: readonly number[], buffer: GPUBuffer) {
    this.gpu = gpu;
    this.shape = shape;
    this.buffer = buffer;
  }

  /**
   * A zero-filled tensor of `shape`.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { Tensor } from "./tensor.ts";
   * const gpu = await Gpu.create();
   * const t = Tensor.zeros(gpu, [2, 2], "zeros");
   * console.log(await t.read()); // Float32Array [0, 0, 0, 0]
   * gpu.destroy();
   * ```
   */
  static zeros(gpu: Gpu, shape: readonly number[], label = "tensor"): Tensor {
    return new Tensor(gpu, shape, gpu.buffer(numel(shape) * 4, `${label} [${shape}]`));
  }

  /**
   * A tensor of `shape` holding `data` (whose length must match).
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { Tensor } from "./tensor.ts";
   * const gpu = await Gpu.create();
   * const t = Tensor.from(gpu, [3], new Float32Array([1, 2, 3]), "x");
   * console.log(await t.read()); // Float32Array [1, 2, 3]
   * gpu.destroy();
   * ```
   */
  static from(gpu: Gpu, shape: readonly number[], data: Float32Array, label = "tensor"): Tensor {
    const t = Tensor.zeros(gpu, shape, label);
    t.write(data);
    return t;
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /**
   * Overwrites the tensor (or, with `offset`, the elements from `offset` on) with `data`.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { Tensor } from "./tensor.ts";
   * const gpu = await Gpu.create();
   * const t = Tensor.zeros(gpu, [3]);
   * t.write(new Float32Array([7]), 2);
   * console.log(await t.read()); // Float32Array [0, 0, 7]
   * gpu.destroy();
   * ```
   */
  write(data: Float32Array, offset = 0): void {
    if (offset + data.length > this.size) {
      throw new RangeError(
        `cannot write ${data.length} values at ${offset} into a tensor of shape [${this.shape}]`,
      );
    }
    this.gpu.write(this.buffer, data, offset * 4);
  }

  /**
   * Reads the whole tensor back (waits for all submitted work).
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { Tensor } from "./tensor.ts";
   * const gpu = await Gpu.create();
   * console.log(await Tensor.from(gpu, [1], new Float32Array([5])).read()); // Float32Array [5]
   * gpu.destroy();
   * ```
   */
  read(): Promise<Float32Array> {
    return this.gpu.read(this.buffer, 0, this.size * 4);
  }

  /**
   * Frees the buffer. Idempotent.
   *
   * @example
   * ```ts
   * import { Gpu } from "./device.ts";
   * import { Tensor } from "./tensor.ts";
   * const gpu = await Gpu.create();
   * Tensor.zeros(gpu, [8]).destroy();
   * gpu.destroy();
   * ```
   */
  destroy(): void {
    this.buffer.destroy();
  }
}

/**
 * The number of elements of a tensor of `shape`.
 *
 * @example
 * ```ts
 * import { numel } from "./tensor.ts";
 * console.assert(numel([2, 3, 4]) === 24);
 * ```
 */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
