// Fine-tuning (Network.freeze, layers/plan.ts): frozen layers stay bit-identical, the others take
// exactly the step an unfrozen network takes, and a frozen prefix records no backward launches.
import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert";
import { Dense } from "../../layers/conv2d.ts";
import { destroyPlan, recordTraining } from "../../layers/plan.ts";
import { Network } from "../../layers/network.ts";
import { quadrants, TINY, withGpu } from "../helpers.ts";

/** `steps` steps of TINY from seed 1 with `frozen` fixed; the weights and velocities after. */
async function train(frozen: string[], steps: number, devices: 1 | 2 = 1) {
  const net = await Network.create(TINY, { seed: 1, devices });
  try {
    await net.freeze(frozen);
    for (let step = 0; step < steps; step++) {
      const { input, labels } = quadrants(6, 10 + step);
      await net.trainStep(input, labels, { lr: 0.05, dropout: false });
    }
    return { weights: await net.weights(), velocities: await net.optimizerState() };
  } finally {
    await net.destroy();
  }
}

const same = (a: Float32Array, b: Float32Array) => a.every((v, i) => Object.is(v, b[i]));

Deno.test("frozen layers stay bit-identical; the rest step as an unfrozen network's do", async () => {
  const start = await Network.create(TINY, { seed: 1 });
  const initial = await start.weights();
  await start.destroy();
  // A frozen prefix, and a frozen layer between trainable ones (its input gradient still flows).
  for (const frozen of [["conv1", "conv2"], ["conv2"]]) {
    // One step: every trainable layer's gradient is the unfrozen network's, bit for bit.
    const free = await train([], 1), once = await train(frozen, 1), twice = await train(frozen, 2);
    for (const [name, t] of once.weights) {
      const layer = name.split(".")[0];
      if (frozen.includes(layer)) {
        for (const run of [once, twice]) {
          ok(same(run.weights.get(name)!.data, initial.get(name)!.data), `${name} moved`);
          ok(run.velocities.get(name)!.data.every((v) => v === 0), `${name} has momentum`);
        }
      } else {
        ok(same(t.data, free.weights.get(name)!.data), `${name} stepped otherwise (${frozen})`);
        ok(!same(t.data, initial.get(name)!.data), `${name} did not train`);
      }
    }
  }
});

Deno.test("two devices (the paper's model parallelism) freeze the same layers", async () => {
  const one = await train(["conv1", "conv2"], 2), two = await train(["conv1", "conv2"], 2, 2);
  for (const [name, t] of one.weights) {
    const other = two.weights.get(name)!.data;
    const worst = t.data.reduce((m, v, i) => Math.max(m, Math.abs(v - other[i])), 0);
    ok(worst < 1e-6, `${name}: ${worst}`);
  }
});

Deno.test("a frozen prefix records no backward launches; the first trainable layer no input gradient", () =>
  withGpu((gpu) => {
    const fc1 = new Dense(gpu, "fc1", [4, 1, 1], { out: 3, relu: true });
    const fc2 = new Dense(gpu, "fc2", [3, 1, 1], { out: 2, relu: false });
    const free = recordTraining(gpu, [fc1, fc2], [4, 1, 1], 2);
    const fixed = recordTraining(gpu, [fc1, fc2], [4, 1, 1], 2, new Set(["fc1"]));
    try {
      strictEqual(fixed.backwardFirst[0].dispatches.length, 0);
      const labels = (p: typeof free) => p.backwardFirst[1].dispatches.map((d) => d.label);
      ok(labels(free).length > labels(fixed).length, `${labels(free)} vs ${labels(fixed)}`);
    } finally {
      destroyPlan(free);
      destroyPlan(fixed);
      fc1.destroy();
      fc2.destroy();
    }
  }));

Deno.test("freeze names layers with parameters only", async () => {
  const net = await Network.create(TINY, { seed: 1 });
  try {
    await rejects(net.freeze(["conv9"]), /freeze: no layer "conv9" in tiny/);
    await rejects(net.freeze(["pool1"]), /freeze: pool1 has no parameters/);
    await net.freeze(["conv1", "conv1"]);
    deepStrictEqual(net.frozen, ["conv1"]);
  } finally {
    await net.destroy();
  }
});
