// The kernels around the convolutions, forward and backward, against the float64 reference on
// awkward shapes: LRN, max-pool, dropout, ReLU's mask, softmax, softmax cross-entropy, the SGD update.
import { ELEMENTWISE_CHECKS } from "./elementwise_checks.ts";

for (const [name, run] of ELEMENTWISE_CHECKS) Deno.test(name, run);
