/**
 * The one cache of recorded plans: a plan is recorded once for a batch size and replayed every
 * step; the few most recently used of each kind are kept, the rest freed.
 *
 * @module
 */

/** What the cache needs of a plan: its batch (the cache is given the way to free it). */
export interface Cached {
  /** Examples per launch. */
  readonly batch: number;
}

/**
 * Plans by kind (a key such as "training" or "stage 2 slot 1") and batch, at most `limit` of each
 * kind, least recently used freed first.
 *
 * @example
 * ```ts
 * import { PlanCache } from "./plan_cache.ts";
 * const freed: number[] = [];
 * const cache = new PlanCache<{ batch: number }>(1, (p) => freed.push(p.batch));
 * cache.get("inference", 8, 1, (batch) => ({ batch }));
 * console.log(cache.get("inference", 5, 2, (batch) => ({ batch })).batch); // 8: serves 5 to 10
 * cache.get("inference", 3, 1, (batch) => ({ batch }));
 * console.log(freed); // [8]
 * ```
 */
export class PlanCache<P extends Cached> {
  readonly #plans = new Map<string, P>();
  readonly #limit: number;
  readonly #free: (plan: P) => void;

  /** Keeps `limit` plans of each kind; `free` releases one dropped. */
  constructor(limit: number, free: (plan: P) => void) {
    this.#limit = limit;
    this.#free = free;
  }

  /**
   * The plan of `kind` for `batch` examples: a kept one of at least `batch` and at most `slack`
   * times as many (its extra rows ignored by the caller), else one `record`ed now.
   */
  get(kind: string, batch: number, slack: number, record: (batch: number) => P): P {
    const prefix = `${kind} `;
    for (const [key, plan] of this.#plans) {
      if (key.startsWith(prefix) && plan.batch >= batch && plan.batch <= slack * batch) {
        this.#plans.delete(key); // re-inserted: most recently used last
        this.#plans.set(key, plan);
        return plan;
      }
    }
    const same = [...this.#plans.keys()].filter((key) => key.startsWith(prefix));
    if (same.length >= this.#limit) {
      this.#free(this.#plans.get(same[0])!);
      this.#plans.delete(same[0]);
    }
    const plan = record(batch);
    this.#plans.set(`${prefix}${batch}`, plan);
    return plan;
  }

  /** Frees every plan (after a tuning, so that plans are recorded again with its choices). */
  clear(): void {
    for (const plan of this.#plans.values()) this.#free(plan);
    this.#plans.clear();
  }
}
