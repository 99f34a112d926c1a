"""The pixel size of a PNG, JPEG, GIF or WebP image, read from its header.

Knowledge-base images are shown inline, so a reader's browser decodes them: a small file
that declares a huge canvas (a "decompression bomb": 30 kB of PNG can declare 50,000 x
50,000 pixels, 10 GB once decoded) would freeze or crash every reader's tab. What an image
costs to show is its width x height, which each format states near its start; this module
reads only that, without decoding anything (tierdesk has no imaging library, and needs
none for this). The formats' own specifications give the layouts:

- PNG: the IHDR chunk, which must come first, holds width and height (big-endian 32-bit).
- JPEG: the first start-of-frame segment (SOF0-SOF15, but DHT, JPG and DAC, which share
  those marker numbers) holds height and width (big-endian 16-bit).
- GIF: the logical screen descriptor, right after the signature (little-endian 16-bit),
  and each frame's image descriptor: some browsers grow the canvas to a frame that
  reaches past the screen, so the size is the largest extent of either.
- WebP: after the RIFF header, a VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk.
"""

from __future__ import annotations

import struct


class UnreadableImage(ValueError):
    """The header does not state a size where the format says it is."""


def dimensions(kind: str, content: bytes) -> tuple[int, int]:
    """``(width, height)`` of ``content``, an image of ``kind`` (``png``, ``jpg``/``jpeg``,
    ``gif`` or ``webp``) whose signature was checked. UnreadableImage when the header is
    cut short, malformed, or states a zero size."""
    reader = _READERS.get(kind)
    if reader is None:
        raise UnreadableImage(f"no reader for .{kind}")
    width, height = reader(content)
    if width <= 0 or height <= 0:
        raise UnreadableImage("the header states no size")
    return width, height


def _png(content: bytes) -> tuple[int, int]:
    # signature (8), then the first chunk: length 13, "IHDR", width, height
    if len(content) < 24 or content[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise UnreadableImage("no IHDR chunk first")
    width, height = struct.unpack(">II", content[16:24])
    return width, height


# Start-of-frame markers: 0xC0-0xCF but for DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, with no length after them: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg(content: bytes) -> tuple[int, int]:
    n = len(content)
    i = 2  # after SOI (FF D8)
    while i < n:
        if content[i] != 0xFF:
            raise UnreadableImage("a segment does not start with a marker")
        while i < n and content[i] == 0xFF:  # fill bytes before a marker
            i += 1
        if i >= n:
            break
        marker = content[i]
        i += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan, before any frame header
            break
        if i + 2 > n:
            break
        length = int.from_bytes(content[i : i + 2], "big")
        if length < 2:
            raise UnreadableImage("a segment's length is too short")
        if marker in _SOF:
            if length < 7 or i + 7 > n:
                break
            # length (2), sample precision (1), height (2), width (2)
            height, width = struct.unpack(">HH", content[i + 3 : i + 7])
            if height == 0:
                # The height comes later (a DNL segment): rare, and not worth reading.
                raise UnreadableImage("the frame header states no height")
            return width, height
        i += length
    raise UnreadableImage("no frame header")


def _gif(content: bytes) -> tuple[int, int]:
    if len(content) < 13:
        raise UnreadableImage("no logical screen descriptor")
    width, height, packed = struct.unpack("<HHB", content[6:11])
    i = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)  # the global colour table
    n = len(content)
    while i < n:
        block = content[i]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # an extension: its label, then data sub-blocks
            i = _gif_sub_blocks(content, i + 2)
        elif block == 0x2C:  # a frame: left, top, width, height, flags
            if i + 10 > n:
                raise UnreadableImage("a frame's descriptor is cut short")
            left, top, w, h, flags = struct.unpack("<HHHHB", content[i + 1 : i + 10])
            width, height = max(width, left + w), max(height, top + h)
            i += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # local colour table
            i = _gif_sub_blocks(content, i + 1)  # after the LZW code size: the image data
        else:
            raise UnreadableImage("an unknown GIF block")
    return width, height


def _gif_sub_blocks(content: bytes, i: int) -> int:
    """The position after the data sub-blocks starting at ``i`` (each a length byte and
    that many bytes, ended by a zero length)."""
    n = len(content)
    while i < n:
        size = content[i]
        i += 1 + size
        if size == 0:
            return i
    raise UnreadableImage("a GIF block is cut short")


def _webp(content: bytes) -> tuple[int, int]:
    if len(content) < 30 or content[8:12] != b"WEBP":
        raise UnreadableImage("no WebP chunk")
    chunk = content[12:16]
    if chunk == b"VP8 ":
        # frame tag (3 bytes, bit 0 clear on a key frame), start code 9D 01 2A, then
        # width and height: 14 bits each, the top two bits a scale
        if content[20] & 1 or content[23:26] != b"\x9d\x01\x2a":
            raise UnreadableImage("no VP8 key frame")
        width, height = struct.unpack("<HH", content[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        # signature 0x2F, then width - 1 and height - 1 in 14 bits each
        if content[20] != 0x2F:
            raise UnreadableImage("no VP8L signature")
        bits = int.from_bytes(content[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        # flags (1), reserved (3), canvas width - 1 and height - 1 in 24 bits each
        width = int.from_bytes(content[24:27], "little") + 1
        height = int.from_bytes(content[27:30], "little") + 1
        return width, height
    raise UnreadableImage(f"an unknown WebP chunk {chunk!r}")


_READERS = {"png": _png, "jpg": _jpeg, "jpeg": _jpeg, "gif": _gif, "webp": _webp}
