/**
 * How LRN's kernels walk a group of maps (one image's channels of one tower, CG maps of P pixels,
 * contiguous): each invocation walks one unit (a pixel, or an aligned quad of four pixels where P
 * is a multiple of 4) of the group's first map, then the same unit of each next map, keeping the
 * channel window's values in registers. Quads make every load and store a vec4: a quarter of the
 * accesses, each a per-lane loop on llvmpipe.
 *
 * @module
 */
import type { LrnParams } from "./lrn_forward.ts";

/** The walk of an LRN kernel over a group of maps. */
export interface LrnWalk {
  /** Elements a unit: 4 (vec4 quads) or 1. */
  lanes: 1 | 4;
  /** Units a map: an invocation's step from one channel to the next. */
  step: number;
  /** Units a group. */
  units: number;
}

/**
 * The walk for `channels` maps of `pixels`: quads where maps hold whole quads, else pixels.
 *
 * @example
 * ```ts
 * import { lrnWalk } from "./lrn_walk.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.log(lrnWalk(64, 28 * 28, PAPER_LRN)); // { lanes: 4, step: 196, units: 6272 }
 * console.log(lrnWalk(96, 55 * 55, PAPER_LRN)); // { lanes: 1, step: 3025, units: 145200 }
 * ```
 */
export function lrnWalk(channels: number, pixels: number, p: LrnParams): LrnWalk {
  const lanes = pixels % 4 === 0 ? 4 : 1;
  return { lanes, step: pixels / lanes, units: channels / p.groups * pixels / lanes };
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
 * const walk = { lanes: 1 as const, step: 169, units: 8112 };
 * console.assert(walkWgsl(walk, ["x"]).includes("fn xUnit"));
 * ```
 */
export function walkWgsl(walk: LrnWalk, arrays: string[]): string {
  return /* wgsl */ `
alias T = ${walk.lanes === 4 ? "vec4f" : "f32"};
const S = ${walk.step}; // units a map
const Q = ${walk.units}; // units a group
${
    arrays.map((a) =>
      `fn ${a}Unit(g: u32, m: i32) -> T {
  return select(T(0.0), ${a}[g + u32(clamp(m, 0, Q - 1))], m >= 0 && m < Q);
}`
    ).join("\n")
  }`;
}
