/**
 * The gradient of local response normalisation. With d[i] = k + alpha * sum of a[j]^2 over
 * i's window and b[i] = a[i] * d[i]^-beta:
 *
 *   da[j] = g[j] * d[j]^-beta - 2 * alpha * beta * a[j] * sum over i whose window holds j of
 *           g[i] * a[i] * d[i]^-beta / d[i]
 *
 * Windows are symmetric (i's window holds j exactly when j's holds i, groups included), so the
 * sum runs over j's own window. d is recomputed from a, which the gradient reads anyway, rather
 * than saved by the forward pass: each step loads one a and one g and stores one da.
 *
 * Reference test: tests/kernels/elementwise_test.ts; timed by
 * `deno task bench:kernels --kernel lrn_backward`.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Launch, WORKGROUP_INDEX_WGSL } from "../gpu/launch.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { denominatorWgsl, type LrnParams, negativePowerWgsl } from "./lrn_forward.ts";
import { lrnWalk, walkWgsl } from "./lrn_walk.ts";

const WORKGROUP = 256;

/**
 * WGSL for the LRN gradient over maps of `channels` x `pixels`. One invocation walks one unit's
 * channels of one group (see lrn_walk.ts and {@linkcode lrnGradientWalkWgsl}).
 * `reluInput`: zero where a is (see {@linkcode lrnBackward}).
 *
 * @example
 * ```ts
 * import { lrnBackwardWgsl } from "./lrn_backward.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnBackwardWgsl(96, 55 * 55, PAPER_LRN).includes("inverseSqrt"));
 * ```
 */
export function lrnBackwardWgsl(
  channels: number,
  pixels: number,
  p: LrnParams,
  reluInput = false,
): string {
  return /* wgsl */ `
${walkWgsl(lrnWalk(channels, pixels, p), ["x", "dy"])}
@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> dy: array<T>;
@group(0) @binding(2) var<storage, read_write> dx: array<T>;
@group(0) @binding(3) var<uniform> count: vec4u; // x: (image, group, first unit)s
${WORKGROUP_INDEX_WGSL}

fn dxStore(g: u32, m: i32, value: T) {
  dx[g + u32(m)] = value;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= count.x) { return; }
  let g = (i / u32(S)) * u32(Q); // the group's first unit
  let first = i32(i % u32(S));
${lrnGradientWalkWgsl(p, reluInput)}
}`;
}

/**
 * WGSL statements that walk one unit's channels of a group, c ascending, and store the LRN
 * gradient of each, with rings in registers: a over c .. c + 2 HALF (the inputs of d up to
 * channel c + HALF), the window's terms g * a * d^-beta / d, and g and d^-beta over c .. c +
 * HALF; each step loads the a and g that enter and computes one new term. Sums run in the forward
 * kernel's order. The kernel defines the unit type T, the walk's S and Q, the group `g`, the
 * unit `first`, and `xUnit(g, m)`, `dyUnit(g, m)` (0 outside the group) and `dxStore(g, m, value)`
 * for unit m. `reluInput`: zero where a is.
 *
 * @example
 * ```ts
 * import { lrnGradientWalkWgsl } from "./lrn_backward.ts";
 * import { PAPER_LRN } from "./lrn_forward.ts";
 * console.assert(lrnGradientWalkWgsl(PAPER_LRN, false).includes("dxStore(g, m, da)"));
 * ```
 */
export function lrnGradientWalkWgsl(p: LrnParams, reluInput: boolean): string {
  const half = Math.floor(p.size / 2), width = 2 * half + 1;
  const upTo = (n: number) => [...Array(n).keys()];
  // Ring slot j inside a step: a{j}, or the value entering past the ring's end.
  const aAt = (j: number) => j < width ? `a${j}` : "aIn";
  return /* wgsl */ `
  // Before the step at unit m (channel c): a{j} = a[c + j], g{j} = g[c + j],
  // p{j} = d[c + j]^-beta, t{j} = the term of channel c - HALF + j (0 outside the group).
${upTo(width).map((j) => `  var a${j} = xUnit(g, first + ${j} * S);`).join("\n")}
${upTo(half).map((j) => `  var t${j} = T(0.0);`).join("\n")}
${
    upTo(half + 1).map((j) =>
      `  let d${j} = ${
        denominatorWgsl(upTo(j + half + 1).slice(Math.max(0, j - half)).map(aAt), p)
      };
  var g${j} = dyUnit(g, first + ${j} * S);
  var p${j} = ${negativePowerWgsl(`d${j}`, p.beta)};
  var t${j + half} = select(T(0.0), g${j} * a${j} * p${j} / d${j}, first + ${j} * S < Q);`
    ).join("\n")
  }
  for (var m = first; m < Q; m += S) {
    var cross = T(0.0);
${upTo(width).map((j) => `    cross += t${j};`).join("\n")}
    let da = g0 * p0 - ${2 * p.alpha * p.beta} * a0 * cross;
    dxStore(g, m, ${
    reluInput ? "select(T(0.0), da, a0 > T(0.0))); // the ReLU before: its mask" : "da);"
  }
    // The term of channel n = c + HALF + 1 enters: its d spans a[c + 1] .. a[c + 2 HALF + 1].
    let n = m + ${half + 1} * S;
    let aIn = xUnit(g, m + ${width} * S);
    let gIn = dyUnit(g, n);
    let dIn = ${denominatorWgsl(upTo(width).map((j) => aAt(j + 1)), p)};
    let pIn = ${negativePowerWgsl("dIn", p.beta)};
    let tIn = select(T(0.0), gIn * ${aAt(half + 1)} * pIn / dIn, n < Q);
${upTo(width - 1).map((j) => `    a${j} = a${j + 1};`).join("\n")}
    a${width - 1} = aIn;
${upTo(half).map((j) => `    g${j} = g${j + 1};\n    p${j} = p${j + 1};`).join("\n")}
    g${half} = gIn;
    p${half} = pIn;
${upTo(width - 1).map((j) => `    t${j} = t${j + 1};`).join("\n")}
    t${width - 1} = tIn;
  }`;
}

/**
 * Records the LRN input gradient `dx` from the forward pass's input `x` and the output
 * gradient `dy`. With `reluInput` (x is a ReLU's output), the gradient is also the ReLU's: zero
 * where x is, so that the layer before need not mask it in a pass of its own.
 *
 * @example
 * ```ts
 * import { Gpu } from "../gpu/device.ts";
 * import { Tensor } from "../gpu/tensor.ts";
 * import { lrnBackward } from "./lrn_backward.ts";
 * const gpu = await Gpu.create();
 * const x = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const dy = Tensor.from(gpu, [1, 1, 1, 1], new Float32Array([1]));
 * const dx = Tensor.zeros(gpu, [1, 1, 1, 1]);
 * const params = { size: 1, alpha: 1, beta: 1, k: 1, groups: 1 }; // b = a / (1 + a^2)
 * gpu.run(lrnBackward(gpu, { x, dy, dx, batch: 1, params }).dispatches);
 * console.log(await dx.read()); // Float32Array [0]: (1 - a^2) / (1 + a^2)^2 at a = 1
 * gpu.destroy();
 * ```
 */
export function lrnBackward(
  gpu: Gpu,
  args: {
    x: Tensor;
    dy: Tensor;
    dx: Tensor;
    batch: number;
    params: LrnParams;
    reluInput?: boolean;
  },
): Launch {
  const [, channels, h, w] = args.x.shape;
  const relu = args.reluInput === true;
  const key = `lrn_backward:${channels}:${h * w}:${Object.values(args.params)}:${relu}`;
  const pipeline = gpu.pipeline(key, lrnBackwardWgsl(channels, h * w, args.params, relu), [
    "read",
    "read",
    "read_write",
    "uniform",
  ]);
  const walks = args.batch * args.params.groups * lrnWalk(channels, h * w, args.params).step;
  return gpu.perElement(
    "lrn_backward",
    pipeline,
    [args.x.buffer, args.dy.buffer, args.dx.buffer],
    walks,
    WORKGROUP,
  );
}
