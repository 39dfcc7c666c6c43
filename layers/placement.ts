/**
 * Where a network's towers go: one on this thread's device (given or acquired), or one in each of
 * two Workers with their own devices, holding the whole table (data parallelism) or half of every
 * layer (the paper's model parallelism, `parallel/split.ts`).
 *
 * @module
 */
import { Gpu, type Precision } from "../gpu/device.ts";
import type { Tuning } from "../kernels/gemm/tuning.ts";
import { localTower, type TowerHandle } from "../parallel/protocol.ts";
import { splitTowers } from "../parallel/split.ts";
import { workerTower } from "../parallel/worker_tower.ts";
import type { InitScheme } from "./init.ts";
import type { ModelConfig } from "./models.ts";
import { Tower, type TowerSpec } from "./tower.ts";

/** How two devices divide the work: the paper's towers, or replicas on half the batch each. */
export type Parallelism = "model" | "data";

/** Options of `Network.create` and `createAlexNet`. */
export interface NetworkOptions {
  /** GPU devices to run on (default 1); 2 runs each in its own Worker, as `parallel` says. */
  devices?: 1 | 2;
  /** With two devices: `model` (the paper's towers, default) or `data` (replicas). */
  parallel?: Parallelism;
  /** Seed of the initial parameters and the dropout masks (default 1). */
  seed?: number;
  /** Initialisation scheme (default "paper"; "none" leaves zeros, for weights loaded next). */
  init?: InitScheme;
  /**
   * One device to build on (tests and benchmarks share one); by default devices are acquired
   * and destroyed with the network.
   *
   * @ignore
   */
  gpu?: Gpu;
  /**
   * What the GEMM core multiplies on the devices acquired (default "f32"): "f16" rounds operands
   * to half precision and sums in f32 (adapters with `shader-f16`). A `gpu` given brings its own.
   */
  precision?: Precision;
  /** Caps on the devices' limits (how tests exercise micro-batching). */
  limits?: Partial<GPUSupportedLimits>;
  /**
   * The autotuner's choices the kernels use and `tune` adds to (default: the network's own; the
   * command line keeps them on disk, `cli/tuning.ts`).
   *
   * @ignore
   */
  tuning?: Tuning;
  /** Model parallelism: keep two chunks of a batch in flight (default true). */
  overlap?: boolean;
}

/** Towers built for a network. */
export interface Placement {
  /** How two devices divide the work, or null on one device. */
  parallel: Parallelism | null;
  /** The towers, one per device. */
  towers: TowerHandle[];
  /** Stages each tower runs (1 unless model-parallel). */
  stages: number;
  /** The device acquired for a one-device network, destroyed with it. */
  ownedGpu?: Gpu;
}

/**
 * Builds `config`'s towers where `options` say, their kernels recorded with `tuning`'s choices
 * (towers in Workers get a copy of them). Nothing is left behind when a device or a tower fails.
 *
 * @example
 * ```ts ignore
 * const { towers } = await placeTowers(ALEXNET_SMALL, { devices: 2, parallel: "data" }, new Tuning());
 * ```
 */
export async function placeTowers(
  config: ModelConfig,
  options: NetworkOptions,
  tuning: Tuning,
): Promise<Placement> {
  const parallel = checkPlacement(options);
  const stages = parallel === "model" ? splitTowers(config) : [config.layers];
  const spec = (t: number): TowerSpec => ({
    name: config.name,
    input: config.input,
    stages,
    seed: options.seed ?? 1,
    tower: parallel === "model" ? t : null,
  });
  const { limits, precision } = options;
  if (parallel !== null) {
    const made = [0, 1].map((t) => workerTower(spec(t), { limits, precision }, tuning.toJSON()));
    return { parallel, towers: await allOrNone(made), stages: stages.length };
  }
  const ownedGpu = options.gpu ? undefined : await Gpu.create({ limits, precision });
  try {
    const tower = Tower.create(options.gpu ?? ownedGpu!, spec(0), tuning);
    return { parallel, towers: [localTower(tower)], stages: 1, ownedGpu };
  } catch (e) {
    ownedGpu?.destroy();
    throw e;
  }
}

/** The parallelism `options` ask for (null on one device), or a clear error. */
function checkPlacement(options: NetworkOptions): Parallelism | null {
  const devices = options.devices ?? 1;
  if (devices !== 1 && devices !== 2) {
    throw new RangeError(`devices must be 1 or 2, got ${devices}`);
  }
  if (devices === 1) {
    if (options.parallel !== undefined) throw new RangeError("parallel needs devices: 2");
    if (options.gpu && options.precision && options.precision !== options.gpu.precision) {
      throw new RangeError(`precision ${options.precision} differs from the given gpu's`);
    }
    return null;
  }
  if (options.gpu) throw new RangeError("devices: 2 acquires its own devices; leave out gpu");
  const parallel = options.parallel ?? "model";
  if (parallel !== "model" && parallel !== "data") {
    throw new RangeError(`parallel must be "model" or "data", got "${parallel}"`);
  }
  return parallel;
}

/** Every promise's value, or (where one fails) the first failure after closing the others. */
async function allOrNone(made: Promise<TowerHandle>[]): Promise<TowerHandle[]> {
  const settled = await Promise.allSettled(made);
  const failed = settled.find((s) => s.status === "rejected");
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<TowerHandle>).value);
  await Promise.all(settled.map((s) => s.status === "fulfilled" ? s.value.close() : undefined));
  throw failed.reason;
}
