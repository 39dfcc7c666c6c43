/**
 * Files written so that a crash never leaves half of one: a synced temporary file renamed over
 * the old one. Checkpoints, weights and the autotuner's cache are all written this way.
 *
 * @module
 */

/**
 * Writes `bytes` to `path` durably and atomically: temporary file, fsync, rename.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./files.ts";
 * const path = await Deno.makeTempFile();
 * await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
 * console.log(await Deno.readFile(path)); // Uint8Array [1, 2, 3]
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${Deno.pid}.tmp`;
  try {
    const file = await Deno.open(temporary, { write: true, create: true, truncate: true });
    try {
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temporary, path);
  } catch (e) {
    await Deno.remove(temporary).catch(() => {});
    throw e;
  }
}

/**
 * The bytes of a file by path or URL (`file:`, or fetched for `http:` and `https:`), of a `Blob`
 * (a browser's `File`), or the bytes themselves. In a browser, which has no file system, a string
 * is a URL relative to the page.
 *
 * @example
 * ```ts
 * import { readBytes } from "./files.ts";
 * console.log((await readBytes(new Uint8Array([1, 2]))).length); // 2
 * console.log((await readBytes(new Blob([new Uint8Array([1, 2, 3])]))).length); // 3
 * ```
 */
export async function readBytes(source: string | URL | Uint8Array | Blob): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  const browser = !("Deno" in globalThis);
  const url = source instanceof URL
    ? source
    : /^https?:\/\//.test(source) || browser
    ? new URL(source, browser ? globalThis.location?.href : undefined)
    : null;
  if (url && url.protocol !== "file:") {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  return await Deno.readFile(source);
}

/**
 * `dir` and `name` joined by one `/` (which Deno accepts on every system), so that path handling
 * needs no `node:path` and the module bundles for a browser.
 *
 * @example
 * ```ts
 * import { joinPath } from "./files.ts";
 * console.log(joinPath("data/", "train")); // "data/train"
 * ```
 */
export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir.replace(/[\\/]+$/, "")}/${name}`;
}
