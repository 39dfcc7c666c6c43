/**
 * `deno task serve`: the page (web/index.html, web/app.js), the library's browser build at
 * `/mod.js` (built at start from the same sources), and the example images, on 127.0.0.1. The
 * bundle is sent with `Access-Control-Allow-Origin: *` so that a page anywhere can import it.
 *
 * ```sh
 * deno task serve --port 8000
 * ```
 *
 * @module
 */
import { buildBundle } from "./build.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
  png: "image/png",
  jpg: "image/jpeg",
  safetensors: "application/octet-stream",
};

/** Options of {@linkcode serveWeb}. */
export interface ServeOptions {
  /** The port (0: any free one). */
  port: number;
  /** URL prefixes served from further folders, e.g. `{ "/fixtures/": "tests/fixtures/" }`. */
  folders?: Record<string, string>;
}

/** A running server: its address, and how to stop it (which removes the bundle). */
export interface Served {
  url: string;
  close(): Promise<void>;
}

/**
 * Builds the bundle and serves the page on 127.0.0.1.
 *
 * @example
 * ```ts ignore
 * import { serveWeb } from "./serve.ts";
 * const served = await serveWeb({ port: 0 });
 * console.log(served.url); // http://127.0.0.1:PORT/
 * await served.close();
 * ```
 */
export async function serveWeb(options: ServeOptions): Promise<Served> {
  const bundle = await Deno.makeTempDir({ prefix: "alexnet-web-" });
  await buildBundle(bundle);
  const files: Record<string, string> = {
    "/": `${ROOT}web/index.html`,
    "/index.html": `${ROOT}web/index.html`,
    "/app.js": `${ROOT}web/app.js`,
    "/mod.js": `${bundle}/mod.js`,
  };
  const folders: [string, string][] = [
    ["/parallel/", `${bundle}/parallel/`],
    ["/examples/", `${ROOT}data/examples/`],
    ...Object.entries(options.folders ?? {}),
  ];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port, onListen: () => {} },
    (request) => respond(fileOf(new URL(request.url).pathname, files, folders)),
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    async close() {
      await server.shutdown();
      await Deno.remove(bundle, { recursive: true });
    },
  };
}

/** The file a path names: one of `files`, or one under a folder's prefix, never outside it. */
function fileOf(
  path: string,
  files: Record<string, string>,
  folders: [string, string][],
): string | undefined {
  if (Object.hasOwn(files, path)) return files[path];
  const [prefix, folder] = folders.find(([prefix]) => path.startsWith(prefix)) ?? [];
  if (prefix === undefined) return undefined;
  const rest = decodeURIComponent(path.slice(prefix.length));
  return rest.split("/").some((p) => p === "" || p.startsWith(".")) ? undefined : folder + rest;
}

async function respond(file: string | undefined): Promise<Response> {
  try {
    if (!file) throw new Deno.errors.NotFound();
    const type = TYPES[file.split(".").at(-1)!] ?? "application/octet-stream";
    return new Response(await Deno.readFile(file), {
      headers: {
        "content-type": type,
        "access-control-allow-origin": "*",
        "cache-control": "no-store",
      },
    });
  } catch {
    return new Response("not found", { status: 404 });
  }
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--port");
  const port = at >= 0 ? Number(Deno.args[at + 1]) : 8000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be a port number, got ${Deno.args[at + 1]}`);
    Deno.exit(2);
  }
  const served = await serveWeb({ port });
  console.log(`AlexNet page at ${served.url} (the library at ${served.url}mod.js); Ctrl-C stops`);
  Deno.addSignalListener("SIGINT", () => served.close().then(() => Deno.exit(0)));
}
