// The library in a real browser: Chromium (Dawn on SwiftShader, no GPU needed) runs the page that
// `deno task serve` serves, and its numbers are compared with Deno's (wgpu on lavapipe): the same
// weights from a seed, the same logits for given weights and images, the same losses over three
// training steps, the kernel reference checks, and a page that draws.
import { createAlexNet } from "../../mod.ts";
import { decodeImage } from "../../data/image.ts";
import { imageInput, openWeights } from "../../train/predict.ts";
import { buildBundle } from "../../web/build.ts";
import { serveWeb } from "../../web/serve.ts";
import { assert, assertClose } from "../helpers.ts";
import { Chromium, chromiumPath, type Page, WEBGPU_FLAGS, within } from "./chromium.ts";
import type { Outcome } from "./kernel_suite.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);
const WEIGHTS = `${ROOT}tests/fixtures/alexnet_small_weights.safetensors`;
const EXAMPLES = ["bag.png", "sneaker.png", "trouser.png"];
const NO_WEBGPU_FLAGS = WEBGPU_FLAGS.filter((f) => f !== "--enable-unsafe-webgpu");

/** Evaluates `expression` in the page within `seconds`, with the page's console on failure. */
async function inPage<T>(page: Page, seconds: number, expression: string): Promise<T> {
  try {
    return await within(seconds, expression.slice(0, 60), page.evaluate<T>(expression));
  } catch (e) {
    throw new Error(
      `${(e as Error).message}\npage console:\n${page.console.slice(-20).join("\n")}`,
    );
  }
}

const examples = () => Promise.all(EXAMPLES.map((f) => Deno.readFile(`${ROOT}data/examples/${f}`)));
const ADD_EXAMPLES = `alexnet.addImages(await Promise.all(${
  JSON.stringify(EXAMPLES)
}.map(async (name) =>
  ({ name, bytes: new Uint8Array(await (await fetch("/examples/" + name)).arrayBuffer()) }))))`;

/** Run by `deno task test:browser` (which sets ALEXNET_BROWSER_TESTS), not by `deno task test`. */
const IGNORE = !Deno.env.get("ALEXNET_BROWSER_TESTS") || !chromiumPath();

Deno.test({
  name: "without WebGPU, the page says so and disables its controls",
  ignore: IGNORE,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const served = await serveWeb({ port: 0 });
    const browser = await within(60, "launching Chromium", Chromium.launch(NO_WEBGPU_FLAGS));
    try {
      const page = await browser.newPage();
      await within(60, "loading the page", page.goto(served.url));
      const text = await inPage<string>(
        page,
        30,
        `(async () => {
        const status = document.getElementById("adapter");
        while (status.className !== "missing") await new Promise((r) => setTimeout(r, 50));
        return status.textContent + " " + document.getElementById("fresh").disabled;
      })()`,
      );
      assert(/has no WebGPU.*--enable-unsafe-webgpu.* true$/.test(text), text);
    } finally {
      await browser.close();
      await served.close();
    }
  },
});

Deno.test({
  name: "in Chromium: the page's weights, logits, losses and kernels are Deno's",
  ignore: IGNORE,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const suite = await Deno.makeTempDir({ prefix: "alexnet-suite-" });
    await buildBundle(suite, ["tests/browser/kernel_suite.ts"]);
    const served = await serveWeb({
      port: 0,
      folders: { "/fixtures/": `${ROOT}tests/fixtures/`, "/suite/": `${suite}/` },
    });
    const browser = await within(60, "launching Chromium", Chromium.launch());
    try {
      const page = await browser.newPage();
      await within(60, "loading the page", page.goto(served.url));
      await inPage(
        page,
        30,
        "(async () => { while (!globalThis.alexnet) await new Promise((r) => setTimeout(r, 50)); })()",
      );
      const adapter = await inPage<string | null>(page, 30, "alexnet.adapterInfo()");
      assert(adapter !== null, "Chromium offered no WebGPU adapter");

      await t.step("a network made from a seed has Deno's weights", async () => {
        await inPage(page, 60, `alexnet.freshNetwork("alexnet-small", 1)`);
        const theirs = await inPage<Record<string, number[]>>(
          page,
          60,
          `(async () => {
          const w = await alexnet.state.net.weights();
          return Object.fromEntries(["conv1.weight", "conv3.bias", "fc8.weight"].map((n) => [n, Array.from(w.get(n).data)]));
        })()`,
        );
        const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
        const ours = await net.weights();
        await net.destroy();
        for (const [name, data] of Object.entries(theirs)) {
          assertClose(data, ours.get(name)!.data, { atol: 0, rtol: 0, what: name });
        }
      });

      await t.step(
        "given weights and images, the page's logits are Deno's within 1e-5",
        async () => {
          await inPage(
            page,
            60,
            `alexnet.loadWeights("/fixtures/alexnet_small_weights.safetensors", "alexnet-small")`,
          );
          await inPage(
            page,
            30,
            `(async () => { alexnet.state.images.length = 0; ${ADD_EXAMPLES}; })()`,
          );
          const theirs = await inPage<number[]>(page, 120, "alexnet.logits()");
          const { net, preprocess } = await openWeights(WEIGHTS, { model: "alexnet-small" });
          const files = await examples();
          const ours = await net.forward(imageInput(net, files, { preprocess }), files.length);
          await net.destroy();
          assertClose(theirs, ours, { atol: 1e-5 * Math.max(...ours.map(Math.abs)), rtol: 1e-5 });
        },
      );

      await t.step("three training steps give Deno's losses within 1e-4", async () => {
        await inPage(page, 60, `alexnet.freshNetwork("alexnet-small", 1)`);
        await inPage(page, 10, `alexnet.state.images.forEach((image, i) => image.label = i)`);
        const theirs = await inPage<number[]>(page, 300, "alexnet.train(3, { lr: 0.01 })");
        const net = await createAlexNet({ model: "alexnet-small", seed: 1 });
        const input = imageInput(net, await examples());
        const ours: number[] = [];
        for (let i = 0; i < 3; i++) {
          ours.push((await net.trainStep(input, Int32Array.from([0, 1, 2]), { lr: 0.01 })).loss);
        }
        await net.destroy();
        assertClose(theirs, ours, { atol: 0, rtol: 1e-4, what: "losses" });
        assert(theirs[2] < theirs[0], `the loss did not fall: ${theirs.join(", ")}`);
      });

      await t.step("the kernel reference checks pass on Dawn", async () => {
        const outcomes = await inPage<Outcome[]>(
          page,
          600,
          `import("/suite/kernel_suite.js").then((m) => m.runKernelChecks())`,
        );
        const failed = outcomes.filter((o) => o.error);
        assert(outcomes.length > 10, `${outcomes.length} checks ran`);
        assert(failed.length === 0, failed.map((o) => `${o.name}: ${o.error}`).join("\n"));
      });

      await t.step("the page draws the prediction and the filters", async () => {
        await inPage(page, 60, `document.getElementById("fresh").click()`);
        await inPage(
          page,
          120,
          `(async () => {
          document.getElementById("examples").click();
          while (document.querySelectorAll(".image ol li").length < 15) await new Promise((r) => setTimeout(r, 100));
        })()`,
        );
        const png = await within(60, "screenshot", page.screenshot());
        const keep = Deno.env.get("ALEXNET_SCREENSHOT"); // a path, to look at the page
        if (keep) await Deno.writeFile(keep, png);
        const shot = decodeImage(png, 3);
        const values = new Set(shot.data);
        assert(values.size > 20, `the screenshot has ${values.size} distinct values: blank`);
        const errors = page.console.filter((l) => /uncaught|error/i.test(l));
        assert(errors.length === 0, errors.join("\n"));
      });

      await t.step("two devices, each in a browser Worker, give one device's logits", async () => {
        const difference = await inPage<number>(
          page,
          300,
          `(async () => {
          const { createAlexNet } = await import("./mod.js");
          const one = await createAlexNet({ model: "alexnet-small", seed: 1 });
          const two = await createAlexNet({ model: "alexnet-small", seed: 1, devices: 2 });
          const x = new Float32Array(2 * 784).map((_, i) => Math.sin(i));
          const [a, b] = [await one.forward(x, 2), await two.forward(x, 2)];
          await one.destroy();
          await two.destroy();
          return Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.max(Math.abs(v), 1e-3)));
        })()`,
        );
        assert(difference <= 1e-5, `relative difference ${difference}`);
      });

      await t.step(
        "a lost GPU process is one clear error, never an uncaught rejection",
        async () => {
          await inPage(page, 60, `alexnet.freshNetwork("alexnet-small", 1)`);
          const before = page.console.length;
          await browser.send("Browser.crashGpuProcess");
          // The GPU process dies a moment after the command returns.
          const answer = await inPage<string>(
            page,
            60,
            `(async () => {
          for (let tries = 0; tries < 100; tries++) {
            try {
              await alexnet.state.net.forward(new Float32Array(784), 1);
            } catch (e) {
              return e.name + ": " + e.message;
            }
            await new Promise((r) => setTimeout(r, 200));
          }
          return "no error after 100 forward passes";
        })()`,
          );
          assert(/^GpuError: .*(lost|gone)/.test(answer), answer);
          await new Promise((r) => setTimeout(r, 1000));
          const uncaught = page.console.slice(before).filter((l) => l.startsWith("uncaught"));
          assert(uncaught.length === 0, uncaught.join("\n"));
        },
      );
    } finally {
      await browser.close();
      await served.close();
      await Deno.remove(suite, { recursive: true });
    }
  },
});
