/**
 * How LRN's kernels walk a group of maps (one image's channels of one tower, CG maps of P pixels,
 * contiguous): each invocation walks one unit (a pixel, or an aligned quad of four elements) of
 * the group's first map, then the unit S further on, and so on to the group's end, keeping the
 * channel window's values in registers. Quads make every load and store a vec4 (a quarter of the
 * accesses, each a per-lane loop on llvmpipe) even where P is no multiple of 4: a step of
 * S = (P - r) / 4 quads moves each element one channel on and r elements back, so an element's
 * neighbour k channels away lies r * k elements off its quad's position in the ring, a fixed
 * swizzle of the neighbouring quads.
 *
 * @module
 */
import type { LrnParams } from "./lrn_forward.ts";

/** The walk of an LRN kernel over a group of maps. */
export interface LrnWalk {
  /** Elements a unit: 4 (vec4 quads) or 1. */
  lanes: 1 | 4;
  /** Units an invocation's step moves on (one channel less `shift` elements). */
  step: number;
  /** P - 4 * step, in -1 .. 2 (0 for single elements). */
  shift: number;
  /** Units a group. */
  units: number;
}

/**
 * The walk for `channels` maps of `pixels`: quads wherever a group holds whole quads (its maps
 * start aligned) and a map at least 3 elements, else single elements. Without `shifted`, quads
 * only where maps hold whole quads (shift 0: a unit's neighbours are whole units).
 *
 * @example
 * ```ts
 * import { lrnWalk } from "./lrn_walk.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.log(lrnWalk(96, 55 * 55, PAPER_LRN)); // { lanes: 4, step: 756, shift: 1, units: 36300 }
 * ```
 */
export function lrnWalk(
  channels: number,
  pixels: number,
  p: LrnParams,
  shifted = true,
): LrnWalk {
  const group = channels / p.groups * pixels;
  const shift = [0, 1, 2, -1][pixels % 4];
  const step = (pixels - shift) / 4;
  if (group % 4 === 0 && step >= 1 && (shifted || shift === 0)) {
    return { lanes: 4, step, shift, units: group / 4 };
  }
  return { lanes: 1, step: pixels, shift: 0, units: group };
}

/**
 * Offsets (in units) of the units an invocation keeps for each window position: the quads that
 * hold the elements r * k off for every k from `lowest` to `highest` channels away.
 *
 * @example
 * ```ts
 * import { ringOffsets } from "./lrn_walk.ts";
 * console.log(ringOffsets({ lanes: 4, step: 756, shift: 1, units: 36300 }, -2, 2)); // [-1, 0, 1]
 * ```
 */
export function ringOffsets(walk: LrnWalk, lowest: number, highest: number): number[] {
  if (walk.lanes === 1) return [0];
  const low = Math.floor(walk.shift * (walk.shift < 0 ? highest : lowest) / 4);
  const high = Math.floor((walk.shift * (walk.shift < 0 ? lowest : highest) + 3) / 4);
  return [...Array(high - low + 1).keys()].map((d) => d + low);
}

/**
 * The WGSL name of ring slot `slot`'s unit at `offset` ("m" for minus).
 *
 * @example
 * ```ts
 * import { unitName } from "./lrn_walk.ts";
 * console.log(unitName("a0", -1), unitName("a0", 1)); // a0_m1 a0_1
 * ```
 */
export function unitName(slot: string, offset: number): string {
  return `${slot}_${offset < 0 ? `m${-offset}` : offset}`;
}

/**
 * WGSL for the value k channels on from each of the current unit's elements, read from ring slot
 * `slot`'s units (named by {@linkcode unitName}, at the offsets {@linkcode ringOffsets} gives).
 *
 * @example
 * ```ts
 * import { neighbourWgsl } from "./lrn_walk.ts";
 * const walk = { lanes: 4 as const, step: 756, shift: 1, units: 36300 };
 * console.log(neighbourWgsl(walk, "a3", 1)); // T(a3_0.y, a3_0.z, a3_0.w, a3_1.x)
 * ```
 */
export function neighbourWgsl(walk: LrnWalk, slot: string, k: number): string {
  const s = walk.shift * k;
  if (s % 4 === 0) return unitName(slot, s / 4);
  const lane = (l: number) =>
    `${unitName(slot, Math.floor((s + l) / 4))}.${"xyzw"[(s + l + 16) % 4]}`;
  return `T(${[0, 1, 2, 3].map(lane).join(", ")})`;
}

/**
 * WGSL shared by LRN's kernels: the unit type T, the walk's sizes S and Q, and for each of
 * `arrays` a loader `${array}Unit(g, m)`: unit m of the group starting at unit g, or 0 outside
 * the group (channels outside the window: the paper's towers normalised apart). Branch-free, so
 * that llvmpipe loads without masks.
 *
 * @example
 * ```ts
 * import { walkWgsl } from "./lrn_walk.ts";
 * const walk = { lanes: 1 as const, step: 169, shift: 0, units: 8112 };
 * console.assert(walkWgsl(walk, ["x"]).includes("fn xUnit"));
 * ```
 */
export function walkWgsl(walk: LrnWalk, arrays: string[]): string {
  return /* wgsl */ `
alias T = ${walk.lanes === 4 ? "vec4f" : "f32"};
const S = ${walk.step}; // units a step
const Q = ${walk.units}; // units a group
${
    arrays.map((a) =>
      `fn ${a}Unit(g: u32, m: i32) -> T {
  return select(T(0.0), ${a}[g + u32(clamp(m, 0, Q - 1))], m >= 0 && m < Q);
}`
    ).join("\n")
  }`;
}
