#!/usr/bin/env python3
"""Writes small PNG files of every colour type and bit depth into a folder,
as seeds for the PNG fuzz target (tools/fuzz.sh). Standard library only.

    python3 tools/fuzz_png_seeds.py OUT_DIR
"""
import os
import struct
import sys
import zlib


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(width, height, depth, color, samples_per_pixel, palette=None, trns=None, interlace=0):
    bytes_per_sample = 2 if depth == 16 else 1
    row_bytes = (width * samples_per_pixel * depth + 7) // 8 if depth < 8 else width * samples_per_pixel * bytes_per_sample
    raw = b""
    for y in range(height):
        raw += bytes([y % 5]) + bytes(((x * 37 + y * 11) & 0xFF) for x in range(row_bytes))
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace))
    if palette:
        out += chunk(b"PLTE", palette)
    if trns:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    out += chunk(b"IEND", b"")
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    palette = bytes(range(48))
    cases = {
        "gray1.png": png(9, 3, 1, 0, 1),
        "gray8.png": png(5, 4, 8, 0, 1),
        "gray16.png": png(3, 3, 16, 0, 1),
        "grayalpha8.png": png(4, 2, 8, 4, 2),
        "rgb8.png": png(6, 5, 8, 2, 3),
        "rgb16.png": png(2, 2, 16, 2, 3),
        "rgba8.png": png(3, 7, 8, 6, 4),
        "palette4.png": png(7, 3, 4, 3, 1, palette=palette),
        "palette8_trns.png": png(4, 4, 8, 3, 1, palette=palette, trns=b"\x00\x80"),
        "rgb8_interlaced.png": png(9, 9, 8, 2, 3, interlace=1),
    }
    for name, data in cases.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
