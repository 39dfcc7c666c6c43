// @ts-self-types="../data/codecs.d.ts"
// The browser build's codecs: the same imagescript decoders as data/codecs.js, embedded in the
// bundle as bytes (esbuild cannot bundle `import source`) and compiled once on import.
// deno-lint-ignore no-import-prefix
import pngBytes from "npm:imagescript@1.3.1/wasm/any/png.wasm" with { type: "bytes" };
// deno-lint-ignore no-import-prefix
import jpegBytes from "npm:imagescript@1.3.1/wasm/any/jpeg.wasm" with { type: "bytes" };
export { encode as encodePng } from "npm:imagescript@1.3.1/png/src/png.mjs";

export const pngDecoder = new WebAssembly.Module(pngBytes);
export const jpegDecoder = new WebAssembly.Module(jpegBytes);
