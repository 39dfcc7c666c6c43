/**
 * A counter-based random generator: the value for element i of draw `seed` is a pure hash of
 * (seed, i), so a mask is reproducible from the seed alone, on the GPU and on the CPU, in any
 * order, with no state to store (the PCG output permutation of Jarzynski and Olano, applied twice).
 *
 * @module
 */

/** WGSL: `uniformAt(seed, i)` in [0, 1) with 24 random bits. */
export const RANDOM_WGSL = /* wgsl */ `
fn pcgHash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn uniformAt(seed: u32, i: u32) -> f32 {
  return f32(pcgHash(pcgHash(seed) + i) >> 8u) * (1.0 / 16777216.0);
}`;

function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * The CPU twin of the WGSL `uniformAt`: the same value for the same seed and index.
 *
 * @example
 * ```ts
 * import { uniformAt } from "./random.ts";
 * const u = uniformAt(1, 0);
 * console.assert(u >= 0 && u < 1 && u === uniformAt(1, 0));
 * ```
 */
export function uniformAt(seed: number, i: number): number {
  return (pcgHash((pcgHash(seed) + i) >>> 0) >>> 8) / 16777216;
}
