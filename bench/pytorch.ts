/**
 * PyTorch on the CPU as a peer (`bench --peer pytorch`): the reference point for running AlexNet on
 * this machine's cores, against which the issue sets the long-term goal of a software GPU. It runs
 * `pytorch_peer.py` beside this module with Debian's `/usr/bin/python3` and its `python3-torch`.
 *
 * @module
 */
import type { ModelConfig } from "../layers/models.ts";
import type { PeerBench } from "./peers.ts";

/** The Python that has PyTorch here (Debian's, not whatever `python3` is first on the PATH). */
export const PYTHON = "/usr/bin/python3";

/**
 * PyTorch's figures for `config` at `batch` (inference and SGD training images/s, each over
 * `repeats` calls after one untimed call), after checking that it built a network with
 * `parameters` parameters, ours. Its name says which BLAS PyTorch loaded.
 *
 * @example
 * ```ts ignore
 * import { ALEXNET_SMALL } from "../mod.ts";
 * import { benchPyTorch } from "./pytorch.ts";
 * console.log(await benchPyTorch(ALEXNET_SMALL, 32, 2, 1132810));
 * ```
 */
export async function benchPyTorch(
  config: ModelConfig,
  batch: number,
  repeats: number,
  parameters: number,
): Promise<PeerBench> {
  // Read through the module graph, so that it also works where this module came from a URL.
  const script = await (await fetch(new URL("./pytorch_peer.py", import.meta.url))).text();
  let output;
  try {
    output = await new Deno.Command(PYTHON, {
      args: ["-c", script, JSON.stringify(config), String(batch), String(repeats)],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    throw new Error(`--peer pytorch needs ${PYTHON} (Debian: apt install python3-torch): ${e}`);
  }
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`--peer pytorch: ${PYTHON} failed (is python3-torch installed?):\n${stderr}`);
  }
  const result = JSON.parse(new TextDecoder().decode(output.stdout));
  if (result.parameters !== parameters) {
    throw new Error(
      `--peer pytorch built ${result.parameters} parameters, ours has ${parameters}: not the same network`,
    );
  }
  return {
    name: `PyTorch CPU (${result.threads} threads, ${result.blas})`,
    inference: result.inference,
    training: result.training,
  };
}
