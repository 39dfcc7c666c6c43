/**
 * A dense layer's copies of its weights in textures, kept between its forward pass and its input
 * gradient. On llvmpipe the dense GEMMs read the weights from a copy in a texture ("mirrored"
 * tiling); the forward pass's copy went into a scratch texture that every later layer overwrites,
 * so the input gradient copied the weights again (fc6's 151 MB: some 45 ms a step). In a training
 * plan the forward pass now copies each slice of the weights into a texture of the layer's own,
 * and the input gradient reads it there.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import type { Launch } from "../gpu/launch.ts";
import type { KeptMirror } from "../kernels/gemm/record.ts";
import { PACKED_WIDTH } from "../kernels/gemm/pack_wgsl.ts";

/** The weights' binding in the dense GEMMs (forward and input gradient). */
const WEIGHT_BINDING = 1;

/**
 * One texture per slice of a layer's weights (`weightLaunches` cuts them), made at the first
 * forward pass that asks and freed with the layer.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { WeightCopies } from "./weight_copies.ts";
 * const gpu = await Gpu.create();
 * const weight = gpu.buffer(4096, "w"), copies = new WeightCopies(gpu);
 * const target = copies.target({ buffer: weight });
 * console.log(target?.copied, copies.copiedBy({ dispatches: [], buffers: [] }, { buffer: weight }));
 * // false undefined
 * copies.destroy();
 * gpu.destroy();
 * ```
 */
export class WeightCopies {
  readonly #gpu: Gpu;
  readonly #textures = new Map<string, { texture: GPUTexture; view: GPUTextureView }>();

  /** Copies on `gpu`'s textures. */
  constructor(gpu: Gpu) {
    this.#gpu = gpu;
  }

  /**
   * Where a forward pass copies `slice` of the weights; undefined where it is not whole texels or
   * a texture cannot hold it.
   */
  target(slice: GPUBufferBinding): KeptMirror | undefined {
    const { offset, size } = extent(slice);
    const texels = size / 16, height = Math.ceil(texels / PACKED_WIDTH);
    if (offset % 16 || size % 16 || height > this.#gpu.limits.maxTextureDimension2D) {
      return undefined;
    }
    const key = `${offset}:${size}`;
    if (!this.#textures.has(key)) {
      const texture = this.#gpu.scratchTexture(PACKED_WIDTH, height, "dense weights' copy");
      this.#textures.set(key, { texture, view: texture.createView() });
    }
    return { binding: WEIGHT_BINDING, ...this.#textures.get(key)!, copied: false };
  }

  /** The copy of `slice` that `forward` (this layer's forward launch) makes, for a later launch. */
  copiedBy(forward: Launch, slice: GPUBufferBinding): KeptMirror | undefined {
    const { offset, size } = extent(slice);
    const kept = this.#textures.get(`${offset}:${size}`);
    const copies = forward.dispatches.flatMap((d) => d.copies ?? []);
    const copied = kept &&
      copies.some(({ source, texture }) =>
        texture === kept.texture && source.buffer === slice.buffer && source.offset === offset &&
        source.size === size
      );
    return copied ? { binding: WEIGHT_BINDING, ...kept, copied: true } : undefined;
  }

  /** Frees the textures. */
  destroy(): void {
    for (const { texture } of this.#textures.values()) texture.destroy();
    this.#textures.clear();
  }
}

/** A binding's offset and size in bytes. */
function extent(slice: GPUBufferBinding): { offset: number; size: number } {
  const offset = slice.offset ?? 0;
  return { offset, size: slice.size ?? slice.buffer.size - offset };
}
