#!/usr/bin/env python3
"""Image-loader test fixtures, decoded by Pillow (run with /usr/bin/python3: Pillow 9.4, numpy).

  images.py [DIR]      DIR defaults to tests/fixtures/images

Writes into DIR:
  PNG   gray8, gray16, gray_alpha, rgb8, rgba8, rgb16, palette (8-bit, 16-entry PLTE),
        palette4 (bit depth 4), gray1 (bit depth 1), interlaced (Adam7, RGB)
  JPEG  rgb (baseline, quality 95), progressive, gray, cmyk (Adobe, inverted)
  bad   truncated.png, bad_crc.png, truncated.jpg, not_an_image.png, empty.png
  expected.json  {name: {width, height, rgb, gray[, note]}} for every good image: the pixels
                 Pillow decodes after .convert("RGB") and .convert("L"), flat and row-major
  resize.json    Pillow's antialiased bilinear resize of one 13x11 grey image to several sizes

The point is an independent reference: every expected pixel comes from Pillow (its own PNG
decoder, libjpeg-turbo for JPEG), not from the TypeScript loader under test. Images are tiny
and have odd, non-square sizes so that row padding of sub-byte depths and partial JPEG blocks
are exercised; pixels are seeded noise, and no timestamps are written, so reruns are
byte-identical.
"""
import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# (x0, y0, dx, dy) of the seven Adam7 passes.
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]

TO_8BIT_NOTE = ("16-bit source; expected 8-bit value is round(v16 / 257) of the written samples, "
                "not Pillow's decode (Pillow clips 16-bit grey to 255 in convert and keeps only "
                "the high byte of 16-bit RGB)")


def rng_for(name):
    """A generator seeded by the fixture's name, so adding a fixture changes no other."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def noise(name, shape, hi=255, dtype=np.uint8):
    """Seeded random samples in [0, hi]; the first is 0 and the last hi so both extremes occur."""
    a = rng_for(name).integers(0, hi, size=shape, dtype=dtype, endpoint=True)
    a.flat[0] = 0
    a.flat[-1] = hi
    return a


# --- PNG by hand, for what Pillow cannot write (16-bit RGB, interlacing) ---

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def chunks(png):
    """(kind, data, offset of data) for each chunk of a PNG file."""
    out, i = [], len(PNG_SIGNATURE)
    while i < len(png):
        (n,) = struct.unpack(">I", png[i:i + 4])
        out.append((png[i + 4:i + 8], png[i + 8:i + 8 + n], i + 8))
        i += 12 + n
    return out


def png_file(width, height, bit_depth, colour_type, scanlines, interlace=0):
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    return (PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(scanlines, 9))
            + chunk(b"IEND", b""))


def filter_scanline(kind, row, prev, bpp):
    """One scanline with PNG filter `kind` (0-4) applied; row and prev are byte arrays."""
    row, prev = row.astype(np.int32), prev.astype(np.int32)
    zeros = np.zeros(bpp, np.int32)
    left = np.concatenate([zeros, row[:-bpp]])
    upleft = np.concatenate([zeros, prev[:-bpp]])
    if kind == 0:
        pred = 0
    elif kind == 1:
        pred = left
    elif kind == 2:
        pred = prev
    elif kind == 3:
        pred = (left + prev) // 2
    else:
        p = left + prev - upleft
        pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
    return bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes()


def rgb16_png(pixels):
    # Filter 0 throughout: this file is about 16-bit samples, not filters.
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return png_file(w, h, 16, 2, raw)


def interlaced_png(pixels):
    # Filters cycle 0..4 over all scanlines so that Up, Average and Paeth land on the first row
    # of a pass, where the previous row must be taken as zeros. Empty passes contribute nothing.
    h, w, c = pixels.shape
    raw, n = b"", 0
    for x0, y0, dx, dy in ADAM7:
        sub = pixels[y0::dy, x0::dx].reshape(-1, len(range(x0, w, dx)) * c)
        prev = np.zeros(sub.shape[1], np.uint8)
        for row in sub:
            raw += filter_scanline(n % 5, row, prev, c)
            prev, n = row, n + 1
    return png_file(w, h, 8, 2, raw, interlace=1)


def trim_plte(png, entries):
    """Pillow pads PLTE to 256 entries at bit depth 8; cut it back to the colours really used."""
    out = PNG_SIGNATURE
    for kind, data, _ in chunks(png):
        out += chunk(kind, data[:3 * entries] if kind == b"PLTE" else data)
    return out


def encode(image, fmt, **options):
    f = io.BytesIO()
    image.save(f, fmt, **options)
    return f.getvalue()


# --- the fixtures ---

def good_images():
    """(file name, encoded bytes, 16-bit source or None, note or None) for each good image."""
    gray16 = noise("gray16", (5, 7), hi=65535, dtype=np.uint16)
    rgb16 = noise("rgb16", (6, 9, 3), hi=65535, dtype=np.uint16)
    jpeg_rgb = noise("rgb.jpg", (10, 17, 3))  # 17x10 spans two 16x16 MCUs, both partial
    palette = noise("palette colours", (16, 3))
    interlaced = noise("interlaced", (4, 9, 3))  # 4 rows leave Adam7 pass 3 empty
    jpeg_note = ("lossy: Pillow's libjpeg-turbo decode (islow IDCT, fancy upsampling); "
                 "another decoder may differ by a few levels")
    chroma_note = jpeg_note + "; chroma subsampled 4:2:0 (Pillow's default)"

    def p_image(name, shape):
        im = Image.fromarray(noise(name, shape, hi=15), "P")
        im.putpalette(palette.tobytes())
        return im

    return [
        ("gray8.png", encode(Image.fromarray(noise("gray8", (5, 7)), "L"), "PNG"), None, None),
        ("gray16.png", encode(Image.fromarray(gray16, "I;16"), "PNG"), gray16, TO_8BIT_NOTE),
        ("gray_alpha.png", encode(Image.fromarray(noise("gray_alpha", (5, 7, 2)), "LA"), "PNG"),
         None, "convert drops alpha without compositing"),
        ("rgb8.png", encode(Image.fromarray(noise("rgb8", (6, 9, 3)), "RGB"), "PNG"), None, None),
        ("rgba8.png", encode(Image.fromarray(noise("rgba8", (6, 9, 4)), "RGBA"), "PNG"),
         None, "convert drops alpha without compositing"),
        ("rgb16.png", rgb16_png(rgb16), rgb16, TO_8BIT_NOTE),
        ("palette.png", trim_plte(encode(p_image("palette", (7, 11)), "PNG", bits=8), 16),
         None, "bit depth 8 with a 16-entry PLTE"),
        # A palette of 16 colours is what makes Pillow choose bit depth 4.
        ("palette4.png", encode(p_image("palette4", (7, 11)), "PNG"), None, None),
        ("gray1.png", encode(Image.fromarray(noise("gray1", (5, 13), hi=1) * 255, "L")
                             .convert("1", dither=Image.Dither.NONE), "PNG"), None, None),
        ("interlaced.png", interlaced_png(interlaced), None, None),
        ("rgb.jpg", encode(Image.fromarray(jpeg_rgb, "RGB"), "JPEG", quality=95), None, chroma_note),
        # Same pixels as rgb.jpg: the same coefficients, so the decode should match it exactly.
        ("progressive.jpg", encode(Image.fromarray(jpeg_rgb, "RGB"), "JPEG", quality=95,
                                   progressive=True), None, chroma_note),
        ("gray.jpg", encode(Image.fromarray(noise("gray.jpg", (10, 17)), "L"), "JPEG", quality=95),
         None, jpeg_note),
        ("cmyk.jpg", encode(Image.fromarray(noise("cmyk.jpg", (10, 17, 4)), "CMYK"), "JPEG",
                            quality=95), None, jpeg_note + "; Adobe inverted CMYK, "
         "Pillow's RGB = (255 - C) * (255 - K) / 255, rounded"),
    ]


def bad_images(png, jpeg):
    (idat,) = [(data, at) for kind, data, at in chunks(png) if kind == b"IDAT"]
    flipped = bytearray(png)
    flipped[idat[1] + len(idat[0]) // 2] ^= 0xFF  # the stored CRC no longer matches
    return [
        ("truncated.png", png[:len(png) * 6 // 10]),
        ("bad_crc.png", bytes(flipped)),
        ("truncated.jpg", jpeg[:len(jpeg) // 2]),
        ("not_an_image.png", b"hello, this is not an image\n"),
        ("empty.png", b""),
    ]


# What each PNG's IHDR must say: (bit depth, colour type, interlace).
IHDR_EXPECTED = {
    "gray8.png": (8, 0, 0), "gray16.png": (16, 0, 0), "gray_alpha.png": (8, 4, 0),
    "rgb8.png": (8, 2, 0), "rgba8.png": (8, 6, 0), "rgb16.png": (16, 2, 0),
    "palette.png": (8, 3, 0), "palette4.png": (4, 3, 0), "gray1.png": (1, 0, 0),
    "interlaced.png": (8, 2, 1),
}


def check_png(name, png):
    kind, ihdr, _ = chunks(png)[0]
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    assert kind == b"IHDR" and (depth, colour, interlace) == IHDR_EXPECTED[name], (name, ihdr)
    print(f"  {name}: {w}x{h}, bit depth {depth}, colour type {colour}, interlace {interlace}")


def expected_entry(data, source16, note):
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if source16 is None:
            rgb, gray = np.asarray(im.convert("RGB")), np.asarray(im.convert("L"))
        else:
            # v / 257 never ends in .5 for integer v, so rint's tie rule doesn't matter.
            eight = np.rint(source16 / 257).astype(np.uint8)
            rgb = np.dstack([eight] * 3) if eight.ndim == 2 else eight
            gray = eight if eight.ndim == 2 else np.asarray(Image.fromarray(eight, "RGB").convert("L"))
        entry = {"width": im.width, "height": im.height,
                 "rgb": rgb.ravel().tolist(), "gray": gray.ravel().tolist()}
    if note:
        entry["note"] = note + ("; gray is Pillow's convert('L') of those 8-bit RGB values"
                                if source16 is not None and source16.ndim == 3 else "")
    return entry


def check_hand_written(images):
    """Pillow must read the hand-written PNGs back as the samples that went in."""
    by_name = {name: (data, src) for name, data, src, _ in images}
    with Image.open(io.BytesIO(by_name["interlaced.png"][0])) as im:
        assert im.info.get("interlace") == 1
        assert (np.asarray(im) == noise("interlaced", (4, 9, 3))).all()
    data, src = by_name["rgb16.png"]
    with Image.open(io.BytesIO(data)) as im:
        assert (np.asarray(im) == src >> 8).all()  # Pillow keeps the high byte
    data, src = by_name["gray16.png"]
    with Image.open(io.BytesIO(data)) as im:
        assert (np.asarray(im) == src).all()


def resize_cases():
    source = noise("resize source", (11, 13))
    im = Image.fromarray(source, "L")
    cases = []
    for w, h in [(5, 4), (7, 9), (26, 22), (13, 11), (4, 11), (1, 1)]:
        out = np.asarray(im.resize((w, h), Image.Resampling.BILINEAR))
        cases.append({"width": w, "height": h, "pixels": out.ravel().tolist()})
    return {"width": 13, "height": 11, "pixels": source.ravel().tolist()}, cases


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/images"
    os.makedirs(out_dir, exist_ok=True)

    def write(name, data):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)

    images = good_images()
    check_hand_written(images)
    print("IHDR:")
    expected = {}
    for name, data, source16, note in images:
        if name.endswith(".png"):
            check_png(name, data)
        write(name, data)
        expected[name] = expected_entry(data, source16, note)  # keyed by file name

    encoded = {name: data for name, data, _, _ in images}
    for name, data in bad_images(encoded["rgb8.png"], encoded["rgb.jpg"]):
        write(name, data)

    # One entry or case per line: small diffs, still easy to read.
    write("expected.json", ("{\n" + ",\n".join(f"{json.dumps(k)}:{compact(v)}" for k, v in
                                                expected.items()) + "\n}\n").encode())
    source, cases = resize_cases()
    write("resize.json", ('{"source":' + compact(source) + ',\n"cases":[\n'
                          + ",\n".join(compact(c) for c in cases) + "\n]}\n").encode())


if __name__ == "__main__":
    main()
