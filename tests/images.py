"""Real images for the tests, small: files made by Chromium's own encoders (a canvas's
``toDataURL``; the WebP without an extended header cut out of one, the GIF written by
hand), each of which Chromium decodes to the size its name says; and PNGs of any size
made here (``png``), the way an encoder writes them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "core" / "images"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def png(width: int = 2, height: int = 1, *, shade: int = 0x2A) -> bytes:
    """A real PNG of ``width`` x ``height`` 8-bit grey pixels, all ``shade``. A large one
    stays small: its rows compress to almost nothing (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes([shade]) * width
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = png(2, 1)
JPEG = fixture("37x23.jpg")
GIF = fixture("37x23.gif")
WEBP = fixture("37x23-vp8.webp")
