/**
 * `info`: a model's layer table.
 *
 * @module
 */
import { createAlexNet, MODELS } from "../mod.ts";
import { type Command, UsageError } from "./common.ts";

/** `info`. */
export const infoCommand: Command = {
  help: `usage: deno run -A main.ts info [--model NAME]

  --model NAME   ${Object.keys(MODELS).join(" | ")} (default alexnet)`,
  options: { model: { type: "string" } },
  run: (v) => info(String(v.model ?? "alexnet")),
};

async function info(model: string): Promise<void> {
  const config = MODELS[model];
  if (!config) {
    throw new UsageError(`unknown model "${model}" (known: ${Object.keys(MODELS).join(", ")})`);
  }
  const net = await createAlexNet({ model: config, init: "none" });
  const count = (n: number) => n.toLocaleString("en-US");
  const rows = net.layers.map((l) => [
    l.name,
    l.outputShape.join("x"),
    count(l.parameters),
    count(l.macs),
  ]);
  const table = [["layer", "output", "parameters", "multiply-adds"], ...rows, [
    "total",
    "",
    count(net.parameterCount),
    count(net.macs),
  ]];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...table.map((r) => r[i].length)));
  console.log(
    `${config.name}: input ${
      config.input.join("x")
    }, ${config.classes} classes (adapter: ${net.description})`,
  );
  for (const row of table) {
    console.log(
      row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "),
    );
  }
  await net.destroy();
}
