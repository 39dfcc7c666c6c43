/**
 * The browser build: `mod.ts` as one ES module (`mod.js`) and the two-device worker beside it
 * (`parallel/tower_worker.js`), bundled by `deno bundle` from the same sources. The import map
 * swaps in the one browser-only file, `web/codecs.js` (the image decoders embedded as bytes).
 *
 * ```sh
 * deno task bundle --out web/dist
 * ```
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url);

/**
 * Bundles the library for browsers into `out` (a folder path) and returns the files there;
 * `entries` (paths from the repository's root) bundle other modules the same way (esbuild places
 * them relative to their common folder).
 *
 * @example
 * ```ts ignore
 * import { buildBundle } from "./build.ts";
 * console.log(await buildBundle(await Deno.makeTempDir())); // [".../mod.js", ...]
 * ```
 */
export async function buildBundle(
  out: string,
  entries: readonly string[] = ["mod.ts", "parallel/tower_worker.ts"],
): Promise<string[]> {
  const root = decodeURIComponent(ROOT.pathname);
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--unstable-raw-imports",
      "--platform",
      "browser",
      "--import-map",
      `${root}web/import_map.json`,
      "--outdir",
      out,
      ...entries.map((e) => `${root}${e}`),
    ],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    const text = new TextDecoder().decode(result.stderr);
    throw new Error(`deno bundle failed:\n${text.split("\nStack backtrace")[0]}`);
  }
  return await filesUnder(out);
}

async function filesUnder(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    files.push(...(e.isDirectory ? await filesUnder(path) : [path]));
  }
  return files.sort();
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--out");
  const out = at >= 0 ? Deno.args[at + 1] : "web/dist";
  if (!out) throw new Error("--out needs a folder");
  for (const file of await buildBundle(out)) {
    console.log(`${file} ${((await Deno.stat(file)).size / 1024).toFixed(0)} KiB`);
  }
}
