/** imagescript's PNG decoder (any PNG to 8-bit RGBA). */
export declare const pngDecoder: WebAssembly.Module;
/** imagescript's JPEG decoder (baseline and progressive; grey, RGB or CMYK). */
export declare const jpegDecoder: WebAssembly.Module;
/** imagescript's PNG encoder (8-bit, 1-4 channels). */
export declare function encodePng(
  pixels: Uint8Array,
  options: { width: number; height: number; channels: 1 | 2 | 3 | 4; level?: number },
): Uint8Array;
