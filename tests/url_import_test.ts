// mod.ts works when imported from a URL: the repository is served over HTTP on 127.0.0.1 and a
// subprocess with no local files, no config and only import permission runs a forward pass.
import { ok as assert, strictEqual as assertEquals } from "node:assert";
import { deno } from "./helpers.ts";

const root = new URL("../", import.meta.url);
const TYPES: Record<string, string> = {
  ts: "application/typescript",
  js: "application/javascript",
  json: "application/json",
};
// A 2x1 RGB PNG: (10, 20, 30) and (40, 50, 60).
const PNG = [
  137,
  80,
  78,
  71,
  13,
  10,
  26,
  10,
  0,
  0,
  0,
  13,
  73,
  72,
  68,
  82,
  0,
  0,
  0,
  2,
  0,
  0,
  0,
  1,
  8,
  2,
  0,
  0,
  0,
  123,
  64,
  232,
  221,
  0,
  0,
  0,
  18,
  73,
  68,
  65,
  84,
  120,
  1,
  1,
  7,
  0,
  248,
  255,
  0,
  10,
  20,
  30,
  40,
  50,
  60,
  2,
  55,
  0,
  211,
  29,
  34,
  208,
  173,
  0,
  0,
  0,
  0,
  73,
  69,
  78,
  68,
  174,
  66,
  96,
  130,
];

Deno.test("mod.ts imported from an HTTP URL runs alexnet-small on one device and two, and decodes a PNG", async () => {
  const served: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = decodeURIComponent(new URL(request.url).pathname);
      served.push(path);
      try {
        const body = await Deno.readFile(new URL(`.${path}`, root));
        return new Response(body, {
          headers: { "content-type": TYPES[path.split(".").pop()!] ?? "text/plain" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const dir = await Deno.makeTempDir();
  try {
    const origin = `127.0.0.1:${server.addr.port}`;
    const script = `
      const { createAlexNet, decodeImage } = await import("http://${origin}/mod.ts");
      const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
      const logits = await net.forward(new Float32Array(2 * 28 * 28), 2);
      const pixels = Array.from(decodeImage(new Uint8Array(${JSON.stringify(PNG)})).data);
      // Two devices: each tower's worker module comes from the same URL. A tower holds half of a
      // layer's rows, so a GEMM may split its depth differently: equal within rounding.
      const two = await createAlexNet({ model: "alexnet-small", seed: 1, devices: 2 });
      const same = (await two.forward(new Float32Array(2 * 28 * 28), 2))
        .every((v, i) => Math.abs(v - logits[i]) <= 1e-5 * (1 + Math.abs(logits[i])));
      await two.destroy();
      console.log(JSON.stringify({ length: logits.length, finite: logits.every(Number.isFinite), pixels, same }));
      await net.destroy();`;
    await Deno.writeTextFile(`${dir}/main.ts`, script);
    const args = ["run", "--no-config", "--no-lock", "--reload", `--allow-import=${origin}`];
    const { code, signal, stdout, stderr } = await deno([...args, `${dir}/main.ts`], {
      cwd: dir,
      env: { DENO_DIR: `${dir}/cache` },
    });
    assert(code === 0, `subprocess failed (code ${code}, signal ${signal}):\n${stderr}\n${stdout}`);
    assertEquals(
      stdout.trim(),
      JSON.stringify({ length: 20, finite: true, pixels: [10, 40, 20, 50, 30, 60], same: true }),
    );
    assert(
      served.includes("/mod.ts") && served.includes("/kernels/conv2d_forward.ts") &&
        served.includes("/parallel/tower_worker.ts"),
      `served ${served}`,
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
