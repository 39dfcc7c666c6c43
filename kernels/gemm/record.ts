/**
 * Records a GEMM kernel's launches for any tiling, in the device's precision: the operands' WGSL
 * joined to the core's, one launch per call, or with packed operands the pack and multiply
 * launches of each chunk that fits the device's scratch textures.
 *
 * @module
 */
import type { Gpu } from "../../gpu/device.ts";
import {
  type BindingKind,
  type Launch,
  type Pipeline,
  type Resource,
  type TexelCopy,
  textureKind,
} from "../../gpu/launch.ts";
import { enableWgsl, type GemmVariant, gemmWgsl, scalarLoadersWgsl } from "./core.ts";
import { mirrorCall, mirroredBindings, type VectorBuffers, vectorBuffersWgsl } from "./mirror.ts";
import { gemmPackWgsl, PACKED_HEIGHT, PACKED_WIDTH } from "./pack_wgsl.ts";
import { depthSplits, splitReduceWgsl } from "./split_wgsl.ts";
import { type GemmTile, gemmWorkgroups, registerBlocks } from "./tiles.ts";

/** One launch of a GEMM kernel: its label, its resources (the kernel's bindings, in order) and
 * the sizes its `gemmRows`, `gemmCols` and `gemmDepth` return for them. */
export interface GemmCall {
  /** What the launch computes, for errors and profiles. */
  label: string;
  /** The kernel's bindings. */
  resources: Resource[];
  /** Rows of C. */
  rows: number;
  /** Columns of C. */
  cols: number;
  /** The depth k. */
  depth: number;
  /** With the "mirrored" tiling, a texture of the caller's for one of the vector buffers. */
  kept?: KeptMirror;
}

/**
 * A texture that a call's vector buffer at `binding` is mirrored into instead of a scratch
 * texture, which the layers after it would overwrite: kept by its owner (a dense layer's weights,
 * from its forward pass to its input gradient). Where `copied`, an earlier launch of the same
 * plan copied the same bytes there, and the call reads them without copying.
 */
export interface KeptMirror {
  /** The vector buffer's binding. */
  binding: number;
  /** The texture, laid out as the scratch textures are. */
  texture: GPUTexture;
  /** Its view. */
  view: GPUTextureView;
  /** Already holds the buffer's bytes. */
  copied: boolean;
}

/**
 * Records a GEMM kernel's launches with `tile`: `operands` is its WGSL before the core (bindings,
 * sizes, loaders, epilogue), `bindings` their kinds, `key` names the kernel and its compile-time
 * parameters. With packed operands each call becomes, per chunk of rows and columns that fits the
 * device's scratch textures, up to three launches (pack A, pack B, multiply); the launches of a
 * device share its scratch, which is safe because a queue runs them in order. With `gatherB`
 * (packed operands only), B is not packed: `gatherB`'s launches, recorded first, write texels to
 * the scratch texture B ({@linkcode gemmScratch}) from which the operands' `tapOfB` gathers it
 * (see `core.ts`); the columns are still taken in chunks, the rows too. With `vectors` the
 * operands define vector loaders (see `GemmVariant`) and the scalar ones are derived from them;
 * the buffers those read (`vectorBuffers`) are declared here, and with the "mirrored" tiling each
 * call copies them into the scratch textures first (and reads in place, as register blocks do,
 * where there are none or one does not fit).
 * On CPU adapters a call with too few register blocks for the cores splits its depth among
 * several invocations per block and adds their partial sums after (`split_wgsl.ts`). The device's precision
 * ({@linkcode Gpu.precision}) decides what the core multiplies.
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { recordGemm } from "./record.ts";
 * import { GEMM_TILES } from "./tiles.ts";
 * const gpu = await Gpu.create();
 * const c = gpu.buffer(4 * 6, "c"); // C = A B with A = [[1, 2], [3, 4]], B = [[1, 0, 1], [0, 1, 1]]
 * const operands = `@group(0) @binding(0) var<storage, read_write> c: array<f32>;
 *   fn gemmRows() -> u32 { return 2u; } fn gemmCols() -> u32 { return 3u; }
 *   fn gemmDepth() -> u32 { return 2u; }
 *   fn loadA(m: u32, k: u32) -> f32 { return f32(m * 2u + k + 1u); }
 *   fn loadB(k: u32, n: u32) -> f32 { return select(0.0, 1.0, n == k || n == 2u); }
 *   fn storeC(m: u32, n: u32, v: f32) { c[m * 3u + n] = v; }`;
 * const launch = recordGemm(gpu, { key: "example", operands, bindings: ["read_write"],
 *   tile: GEMM_TILES.packed, calls: [{ label: "c", resources: [c], rows: 2, cols: 3, depth: 2 }] });
 * gpu.run(launch.dispatches);
 * console.log(await gpu.read(c)); // Float32Array [1, 2, 3, 3, 4, 7]
 * for (const b of launch.buffers) b.destroy();
 * gpu.destroy();
 * ```
 */
export function recordGemm(gpu: Gpu, args: GemmArgs): Launch {
  const { key, calls, gatherB, vectors = {}, vectorBuffers = {} } = args;
  if (gatherB && args.tile.kind !== "textures") {
    throw new RangeError(`${key}: B is gathered from texels only with packed operands`);
  }
  const mirrors = args.tile.kind === "mirrored" ? mirroredCalls(gpu, args) : undefined;
  const operands = args.operands + vectorBuffersWgsl(vectorBuffers, mirrors && gpu.texelRead) +
    scalarLoadersWgsl(vectors);
  // Mirroring nothing, a mirrored tiling runs (and names its kernels) as the register blocks.
  const tile: GemmTile = args.tile.kind === "mirrored" && !mirrors
    ? { ...args.tile, kind: "registers" }
    : args.tile;
  if (tile.kind === "textures") return recordPacked(gpu, { ...args, operands }, tile);
  const bindings = mirrors
    ? mirroredBindings(args.bindings, vectorBuffers, gpu.texelRead)
    : args.bindings;
  const { precision } = gpu, enable = enableWgsl(precision), n = bindings.length;
  const launch: Launch = { dispatches: [], buffers: [] };
  for (const [i, c] of calls.entries()) {
    const { resources = c.resources, copies = [] } = mirrors?.[i] ?? {};
    const steps = vectors.vectorK ? Math.ceil(c.depth / 4) : c.depth;
    const splits = tile.kind === "workgroup"
      ? 1
      : depthSplits(c.rows, c.cols, steps, tile, gpu.family);
    const core = gemmWgsl(tile, { precision, ...vectors, splits, partialBinding: n });
    const name = `${key}:${Object.values(tile)}${splits > 1 ? `:split${splits}` : ""}`;
    const kinds: BindingKind[] = [...bindings, ...(splits > 1 ? ["read_write" as const] : [])];
    const pipeline = gpu.pipeline(name, enable + operands + core, kinds);
    if (splits === 1 || tile.kind === "workgroup") {
      launch.dispatches.push(
        gpu.dispatch(c.label, pipeline, resources, gemmWorkgroups(c.rows, c.cols, tile), copies),
      );
      continue;
    }
    const call = { ...c, resources };
    const recorded = { ...args, operands, bindings };
    const mirrored = mirrors !== undefined;
    const split = recordSplit(gpu, recorded, tile, call, { pipeline, splits, copies, mirrored });
    launch.dispatches.push(...split.dispatches);
    launch.buffers.push(...split.buffers);
  }
  return launch;
}

/**
 * The calls of a mirrored launch with their copies and resources (see `mirror.ts`); undefined
 * where there is nothing to mirror or a vector buffer does not fit a scratch texture, so that the
 * operands are read in place.
 */
function mirroredCalls(gpu: Gpu, { calls, vectorBuffers = {} }: GemmArgs) {
  const bindings = Object.values(vectorBuffers).sort((x, y) => x - y);
  if (bindings.length === 0) return undefined;
  const { a, b, textures: [ta, tb] } = gemmScratch(gpu);
  const mirrored = calls.map(({ resources, kept }) => {
    // The buffers in binding order take the kept texture or the next scratch one.
    const scratch = [{ texture: ta, view: a }, { texture: tb, view: b }];
    const targets = bindings.map((i) => i === kept?.binding ? kept : scratch.shift());
    if (targets.includes(undefined)) return undefined;
    const call = mirrorCall(resources, vectorBuffers, targets as typeof scratch);
    if (!call || !kept?.copied) return call;
    return { ...call, copies: call.copies.filter((c) => c.texture !== kept.texture) };
  });
  return mirrored.every((m) => m !== undefined) ? mirrored : undefined;
}

/**
 * A register-block call whose depth `splits` invocations share: the multiply (after its copies)
 * into a buffer of partial sums (the launch owns it), then their sum through the operands'
 * epilogue.
 */
function recordSplit(
  gpu: Gpu,
  { key, operands, bindings }: GemmArgs,
  tile: Exclude<GemmTile, { kind: "workgroup" }>,
  c: GemmCall,
  { pipeline, splits, copies, mirrored }: SplitMultiply,
): Launch {
  const { partial, groups, sums } = splitScratch(gpu, c.label, c.rows, c.cols, tile, splits);
  const wgsl = enableWgsl(gpu.precision) + operands + splitReduceWgsl(splits, bindings.length);
  const name = `${key}:reduce${splits}${mirrored ? ":mirrored" : ""}`; // the layouts differ
  const reduce = gpu.pipeline(name, wgsl, [...bindings, "read"]);
  const resources = [...c.resources, partial];
  return {
    dispatches: [
      gpu.dispatch(`${c.label} split ${splits}`, pipeline, resources, groups, copies),
      gpu.dispatch(`${c.label} sum`, reduce, resources, sums),
    ],
    buffers: [partial],
  };
}

/** The multiply of a split call: its pipeline, the invocations a block, its copies (mirrored). */
interface SplitMultiply {
  pipeline: Pipeline;
  splits: number;
  copies: readonly TexelCopy[];
  mirrored: boolean;
}

/**
 * The partial sums of a `rows` x `cols` launch whose depth `splits` invocations share per block
 * (the caller owns the buffer), the multiply's workgroups and the sum's.
 */
function splitScratch(
  gpu: Gpu,
  label: string,
  rows: number,
  cols: number,
  tile: Exclude<GemmTile, { kind: "workgroup" }>,
  splits: number,
): { partial: GPUBuffer; groups: number; sums: number } {
  return {
    partial: gpu.buffer(splits * rows * cols * 4, `${label} partial sums`),
    groups: Math.ceil(registerBlocks(rows, cols, tile) * splits / tile.threads),
    sums: Math.ceil(rows * cols / 64),
  };
}

/** What {@linkcode recordGemm} records. */
export interface GemmArgs {
  /** Names the kernel and its compile-time parameters (the pipelines' cache keys). */
  key: string;
  /** The operands' WGSL: bindings, sizes, loaders, epilogue. */
  operands: string;
  /** The operands' bindings. */
  bindings: readonly BindingKind[];
  /** The tiling. */
  tile: GemmTile;
  /** One launch each (per chunk, with packed operands). */
  calls: readonly GemmCall[];
  /** Launches that fill the scratch texture B which the operands' `tapOfB` gathers from. */
  gatherB?: Launch;
  /** With `gatherB`: B is gathered a tap at a time, this many taps (`GemmVariant.gatheredTaps`). */
  gatherTaps?: number;
  /**
   * Which vector loaders the operands define instead of scalar ones, and whether they define a
   * vector store too (see `GemmVariant`).
   */
  vectors?: Pick<GemmVariant, "vectorK" | "vectorM" | "vectorN" | "vectorStores" | "adjacentRows">;
  /**
   * The storage buffers the vector loaders read, which the operands do not declare: they read
   * vec4 `i` of buffer NAME as `NAME4(i)` (see `mirror.ts`). The "mirrored" tiling needs some.
   */
  vectorBuffers?: VectorBuffers;
}

/** Packed operands: per chunk of rows and columns that fits the scratch, pack A, pack B, multiply. */
function recordPacked(
  gpu: Gpu,
  { key, operands, bindings, calls, gatherB, gatherTaps, vectors = {} }: GemmArgs,
  tile: Exclude<GemmTile, { kind: "workgroup" }>,
): Launch {
  const n = bindings.length, enable = enableWgsl(gpu.precision);
  const pack = (operand: "A" | "B") =>
    gpu.pipeline(
      `${key}:pack${operand}`,
      enable + operands +
        gemmPackWgsl(
          operand,
          n,
          gpu.precision,
          vectors.vectorK && !vectors[`vector${operand === "A" ? "M" : "N"}`],
        ),
      [...bindings, "uniform", "storage_texture"],
    );
  const gathered = gatherB !== undefined;
  const packA = pack("A"), packB = gathered ? undefined : pack("B");
  const { texelRead } = gpu, texels = textureKind(texelRead);
  const packedKinds: BindingKind[] = [...bindings, "uniform", texels, texels];
  // The multiply kernel for a chunk whose depth `splits` invocations share per block.
  const gemm = (splits: number) => {
    const core = gemmWgsl(tile, {
      binding: n,
      gatheredB: gathered,
      gatheredTaps: gathered && gatherTaps !== undefined,
      splits,
      partialBinding: n + 3,
      texelRead,
    }); // packing rounded
    const taps = gathered && gatherTaps !== undefined ? ":taps" : "";
    const name = `${key}:${Object.values(tile)}:${gathered}${taps}${
      splits > 1 ? `:split${splits}` : ""
    }`;
    return gpu.pipeline(name, operands + core, [
      ...packedKinds,
      ...(splits > 1 ? ["read_write" as const] : []),
    ]);
  };
  const reduce = (splits: number) =>
    gpu.pipeline(
      `${key}:packed reduce${splits}`,
      enable + operands + splitReduceWgsl(splits, n + 1, n),
      [
        ...bindings,
        "uniform",
        "read",
      ],
    );
  const { a, b, texels: capacity } = gemmScratch(gpu);
  const launch: Launch = {
    dispatches: [...gatherB?.dispatches ?? []],
    buffers: [...gatherB?.buffers ?? []],
  };
  for (const c of calls) {
    const steps = Math.ceil(c.depth / 4);
    if (steps > capacity) {
      throw new PackedTooLarge(`${c.label}: a depth of ${c.depth} is too deep to pack`);
    }
    // As many rows (columns) as the scratch holds, whole blocks where there are several chunks.
    const per = (count: number, block: number) => {
      const fit = Math.floor(capacity / steps);
      return count <= fit ? count : Math.max(1, fit - fit % block);
    };
    const rowsPer = per(c.rows, tile.tm), colsPer = per(c.cols, tile.tn);
    const texels = (count: number) => Math.ceil(count * steps / 64);
    for (let c0 = 0; c0 < c.cols; c0 += colsPer) {
      for (let r0 = 0; r0 < c.rows; r0 += rowsPer) {
        const nr = Math.min(rowsPer, c.rows - r0), nc = Math.min(colsPer, c.cols - c0);
        const chunk = gpu.uniform([r0, nr, c0, nc], `${c.label} chunk`);
        launch.buffers.push(chunk);
        const label = `${c.label} rows ${r0}+${nr} columns ${c0}+${nc}`;
        const at = (name: string, p: Pipeline, extra: Resource[], groups: number) =>
          launch.dispatches.push(gpu.dispatch(name, p, [...c.resources, chunk, ...extra], groups));
        // A is packed once unless it takes several chunks; B once per column chunk.
        if (c0 === 0 || rowsPer < c.rows) at(`${label} pack A`, packA, [a], texels(nr));
        if (packB && r0 === 0) at(`${label} pack B`, packB, [b], texels(nc));
        // Taps gathered: the invocations of a block share its taps, so at most one each.
        const splits = Math.min(depthSplits(nr, nc, steps, tile, gpu.family), gatherTaps ?? steps);
        if (splits === 1) {
          at(label, gemm(1), [a, b], gemmWorkgroups(nr, nc, tile));
          continue;
        }
        const { partial, groups, sums } = splitScratch(gpu, label, nr, nc, tile, splits);
        launch.buffers.push(partial);
        at(`${label} split ${splits}`, gemm(splits), [a, b, partial], groups);
        at(`${label} sum`, reduce(splits), [partial], sums);
      }
    }
  }
  return launch;
}

/**
 * The device's scratch textures for packed A and B (allocated once, freed with the device) and
 * how many texels each holds: 4096 x 2048, or fewer rows where the limits the code plans for are
 * lowered (how tests make small GEMMs run in chunks). Texel i is at ({@linkcode PACKED_TEXEL_WGSL}'s
 * `packedTexel(i)`).
 *
 * @example
 * ```ts
 * import { Gpu } from "../../gpu/device.ts";
 * import { gemmScratch } from "./record.ts";
 * const gpu = await Gpu.create();
 * console.log(gemmScratch(gpu).texels); // 8388608
 * gpu.destroy();
 * ```
 */
export function gemmScratch(
  gpu: Gpu,
): { a: GPUTextureView; b: GPUTextureView; textures: [GPUTexture, GPUTexture]; texels: number } {
  return gpu.keep("gemm scratch", () => {
    const height = Math.min(PACKED_HEIGHT, gpu.limits.maxTextureDimension2D);
    const textures: [GPUTexture, GPUTexture] = [
      gpu.scratchTexture(PACKED_WIDTH, height, "GEMM operand A, packed or mirrored"),
      gpu.scratchTexture(PACKED_WIDTH, height, "GEMM operand B, packed or mirrored"),
    ];
    const [a, b] = textures.map((t) => t.createView());
    return { a, b, textures, texels: PACKED_WIDTH * height };
  });
}

/**
 * Thrown by {@linkcode recordGemm} for an operand too deep to pack into a scratch texture: the
 * autotuner skips such a candidate.
 *
 * @example
 * ```ts
 * import { PackedTooLarge } from "./record.ts";
 * console.log(new PackedTooLarge("too deep") instanceof RangeError); // true
 * ```
 */
export class PackedTooLarge extends RangeError {}
