/**
 * Headless Chromium driven over the Chrome DevTools Protocol with Deno's own WebSocket: launch,
 * open a page, evaluate in it, capture its console and errors, screenshot, and always close.
 * Chromium's WebGPU is Dawn; on a machine with no GPU it runs on SwiftShader, which needs
 * `--enable-unsafe-webgpu` (CPU adapters are otherwise blocklisted).
 *
 * @module
 */

/** Where Debian's `chromium` package puts the browser binary. */
const CANDIDATES = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"];

/** Flags for WebGPU compute (and a drawn canvas) headless on a CPU. */
export const WEBGPU_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-unsafe-swiftshader",
  "--use-angle=swiftshader",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--window-size=1000,1300",
];

/** The Chromium binary: `CHROMIUM` from the environment, else Debian's. */
export function chromiumPath(): string | undefined {
  const chosen = Deno.env.get("CHROMIUM");
  if (chosen) return chosen;
  return CANDIDATES.find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
}

/** `work`, or an error naming `what` after `seconds`. */
export async function within<T>(seconds: number, what: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer in ${seconds} s`)),
      seconds * 1e3,
    );
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

/** One page's protocol session. */
export class Page {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #sessionId: string;
  #next = 1;
  /** Console lines and uncaught errors, in order. */
  readonly console: string[] = [];

  constructor(socket: WebSocket, sessionId: string, pending: Map<number, Pending>) {
    this.#socket = socket;
    this.#sessionId = sessionId;
    this.#pending = pending;
  }

  /** Sends one protocol command to this page and waits for its answer. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = 1_000_000 + this.#next++;
    this.#socket.send(JSON.stringify({ id, method, params, sessionId: this.#sessionId }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  /** Evaluates `expression` in the page, awaiting a promise, and returns its value (JSON). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const answer = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }) as { result: { value?: T }; exceptionDetails?: { exception?: { description?: string } } };
    if (answer.exceptionDetails) {
      const d = answer.exceptionDetails;
      throw new Error(`in the page: ${d.exception?.description ?? JSON.stringify(d)}`);
    }
    return answer.result.value as T;
  }

  /** Navigates to `url` and waits for its load event. */
  async goto(url: string): Promise<void> {
    await this.send("Page.navigate", { url });
    await this.evaluate(
      `new Promise((r) => document.readyState === "complete" ? r() : addEventListener("load", r))`,
    );
  }

  /** A PNG screenshot of the page. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send("Page.captureScreenshot", { format: "png" }) as {
      data: string;
    };
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }
}

/** A running headless Chromium. */
export class Chromium {
  readonly #process: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #pages = new Map<string, Page>();
  readonly #profile: string;
  #next = 1;

  private constructor(process: Deno.ChildProcess, socket: WebSocket, profile: string) {
    this.#process = process;
    this.#socket = socket;
    this.#profile = profile;
    socket.onmessage = (event) => this.#receive(JSON.parse(event.data));
    socket.onclose = () => {
      for (const p of this.#pending.values()) p.reject(new Error("Chromium closed the connection"));
      this.#pending.clear();
    };
  }

  /** Launches Chromium with `flags` and connects to it. */
  static async launch(flags: string[] = WEBGPU_FLAGS, log?: string): Promise<Chromium> {
    const binary = chromiumPath();
    if (!binary) throw new Error("no Chromium found: apt-get install chromium, or set CHROMIUM");
    const profile = await Deno.makeTempDir({ prefix: "alexnet-chromium-" });
    const process = new Deno.Command(binary, {
      args: [...flags, `--user-data-dir=${profile}`, "--remote-debugging-port=0", "about:blank"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      const url = await devtoolsUrl(process.stderr, log);
      const socket = new WebSocket(url);
      await new Promise((resolve, reject) => {
        socket.onopen = resolve;
        socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
      });
      return new Chromium(process, socket, profile);
    } catch (e) {
      process.kill("SIGKILL");
      await process.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw e;
    }
  }

  /** Sends one browser-level protocol command. */
  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.#next++;
    this.#socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }

  /** Opens a new page (tab), with its console captured. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true }) as {
      sessionId: string;
    };
    const page = new Page(this.#socket, sessionId, this.#pending);
    this.#pages.set(sessionId, page);
    await page.send("Runtime.enable");
    await page.send("Log.enable");
    await page.send("Page.enable");
    return page;
  }

  /** Kills the browser and removes its profile. */
  async close(): Promise<void> {
    try {
      this.#socket.close();
    } catch { /* already closed */ }
    try {
      this.#process.kill("SIGKILL");
    } catch { /* already exited */ }
    await this.#process.status;
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }

  #receive(message: {
    id?: number;
    result?: Record<string, unknown>;
    error?: { message: string };
    method?: string;
    params?: Record<string, unknown>;
    sessionId?: string;
  }): void {
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) pending?.reject(new Error(message.error.message));
      else pending?.resolve(message.result ?? {});
      return;
    }
    const page = message.sessionId ? this.#pages.get(message.sessionId) : undefined;
    if (!page || !message.params) return;
    if (message.method === "Runtime.consoleAPICalled") {
      const args = message.params.args as { value?: unknown; description?: string }[];
      page.console.push(args.map((a) => a.value ?? a.description ?? "").join(" "));
    } else if (message.method === "Log.entryAdded") {
      const entry = message.params.entry as { level: string; text: string; url?: string };
      page.console.push(`${entry.level}: ${entry.text}${entry.url ? ` (${entry.url})` : ""}`);
    } else if (message.method === "Runtime.exceptionThrown") {
      const d = message.params.exceptionDetails as { exception?: { description?: string } };
      page.console.push(`uncaught: ${d.exception?.description ?? "?"}`);
    }
  }
}

/** Reads Chromium's stderr until it prints its DevTools address; keeps draining after. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>, log?: string): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = setTimeout(() => reader.cancel(), 30_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Chromium exited before listening:\n${text.slice(-2000)}`);
      text += value;
      const found = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (found) {
        if (log) Deno.writeTextFileSync(log, text);
        (async () => {
          // Drain so that Chromium never blocks on a full pipe; keep it where asked.
          for (let r = await reader.read(); !r.done; r = await reader.read()) {
            if (log) Deno.writeTextFileSync(log, r.value, { append: true });
          }
        })().catch(() => {});
        return found[1];
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}
