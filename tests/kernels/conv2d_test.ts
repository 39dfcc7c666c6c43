// The three convolution kernels (kernels/conv2d_forward.ts, conv2d_backward_input.ts,
// conv2d_backward_weight.ts) and the GEMM core under them (kernels/gemm/) against the float64
// reference, on awkward shapes and in the tilings helpers.ts names; in f16 against the reference
// on operands rounded to f16 (what the core multiplies), as tightly as f32 against the plain one.
import { CONV2D_CHECKS } from "./conv2d_checks.ts";

for (const [name, run] of CONV2D_CHECKS) Deno.test(name, run);
