// Times GEMM tilings in headless Chromium (Dawn; SwiftShader without a GPU): alexnet-small's conv2
// forward at batch 4, first run (compile included) and steady state. Why SwiftShader gets blocks
// four columns wide (docs/performance.md):
//
//   deno run -A tools/browser_tilings.ts
//
// Each tiling runs in a fresh browser: a kernel SwiftShader takes too long to compile kills its GPU
// process, which is reported and the next tiling goes on.
import { GEMM_TILES, type GemmTile } from "../kernels/gemm/tiles.ts";
import { Chromium, within } from "../tests/browser/chromium.ts";
import { buildBundle } from "../web/build.ts";
import type { TilingTime } from "../bench/tilings_page.ts";

const TILES: [string, GemmTile][] = [
  ["thinPacked (textures 16x4)", GEMM_TILES.thinPacked],
  ["thinBlocks (registers 16x4)", GEMM_TILES.thinBlocks],
  ["registers 8x4", { kind: "registers", tm: 8, tn: 4, threads: 64 }],
  ["registers 8x8", { kind: "registers", tm: 8, tn: 8, threads: 64 }],
  ["narrowBlocks (registers 16x8)", GEMM_TILES.narrowBlocks],
  ["wide (workgroup 64x64)", GEMM_TILES.wide],
  ["tall (workgroup 128x16)", GEMM_TILES.tall],
];

const dir = await Deno.makeTempDir({ prefix: "alexnet-tilings-" });
await buildBundle(dir, ["bench/tilings_page.ts"]);
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
  const path = new URL(r.url).pathname;
  if (path === "/") {
    return new Response("<!doctype html><title>tilings</title>", {
      headers: { "content-type": "text/html" },
    });
  }
  if (path !== "/tilings_page.js") return new Response("not found", { status: 404 });
  return new Response(await Deno.readFile(`${dir}/tilings_page.js`), {
    headers: { "content-type": "text/javascript" },
  });
});
try {
  console.log("tiling                          first run    then   GFLOP/s");
  for (const [name, tile] of TILES) {
    const browser = await Chromium.launch();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${server.addr.port}/`);
      const timing = page.evaluate<TilingTime[]>(
        `import("/tilings_page.js").then((m) => m.timeTilings([${JSON.stringify(tile)}]))`,
      );
      const [t] = await within(300, name, timing);
      console.log(
        `${name.padEnd(30)} ${(t.firstMs / 1000).toFixed(1).padStart(7)} s ${
          t.ms.toFixed(0).padStart(6)
        } ms ${t.gflops.toFixed(2).padStart(8)}`,
      );
    } catch (e) {
      console.log(`${name.padEnd(30)} failed: ${(e as Error).message.split("\n")[0]}`);
    } finally {
      await browser.close();
    }
  }
} finally {
  await server.shutdown();
  await Deno.remove(dir, { recursive: true });
}
