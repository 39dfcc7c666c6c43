/**
 * A weights file of either format this project reads: safetensors (what it writes) or PyTorch's
 * `.pth` (`torch.save` of a state_dict, read without running it), told apart by their first bytes.
 *
 * @module
 */
import { isPth, parsePth } from "./pth.ts";
import { parseSafetensors, type Safetensors } from "./safetensors.ts";

/**
 * The tensors and metadata of a safetensors or `.pth` file's bytes (a `.pth` has no metadata).
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors.ts";
 * import { parseWeightsFile } from "./weights_file.ts";
 * const bytes = serializeSafetensors({ w: { shape: [1], data: new Float32Array([2]) } });
 * console.log(parseWeightsFile(bytes).tensors.get("w")?.data); // Float32Array [2]
 * ```
 */
export function parseWeightsFile(bytes: Uint8Array): Safetensors {
  return isPth(bytes) ? { tensors: parsePth(bytes), metadata: {} } : parseSafetensors(bytes);
}
