// @ts-self-types="./codecs.d.ts"
// imagescript's WebAssembly decoders, imported as compiled modules (source phase) so that decoding
// needs no file, environment or FFI permission and works from a URL import. This file is plain
// JavaScript because TypeScript does not parse `import source` yet; codecs.d.ts gives its types.
// Full npm: specifiers, not the import map, so that importing this module from a URL works.
// deno-lint-ignore no-import-prefix
import source pngDecoder from "npm:imagescript@1.3.1/wasm/any/png.wasm";
// deno-lint-ignore no-import-prefix
import source jpegDecoder from "npm:imagescript@1.3.1/wasm/any/jpeg.wasm";
export { encode as encodePng } from "npm:imagescript@1.3.1/png/src/png.mjs";

export { jpegDecoder, pngDecoder };
