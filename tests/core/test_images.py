"""Reading an image's pixel size from its header (core.images), and the check every
knowledge-base image goes through (core.files.check_image): real files of each format,
headers cut short or lying, and decompression bombs."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest

from tests.images import fixture, png
from tierdesk.core import files, images
from tierdesk.core.errors import ValidationFailed


@pytest.mark.parametrize(
    ("name", "kind", "size"),
    [
        ("37x23.png", "png", (37, 23)),
        ("37x23.jpg", "jpg", (37, 23)),
        ("37x23.jpg", "jpeg", (37, 23)),
        ("37x23.gif", "gif", (37, 23)),
        ("37x23-vp8.webp", "webp", (37, 23)),  # lossy
        ("37x23-vp8l.webp", "webp", (37, 23)),  # lossless
        ("37x23-vp8x.webp", "webp", (37, 23)),  # extended (here: a colour profile)
        ("41x19-alpha.webp", "webp", (41, 19)),  # extended, with transparency
    ],
)
def test_it_reads_the_size_of_real_images(name: str, kind: str, size: tuple[int, int]) -> None:
    assert images.dimensions(kind, fixture(name)) == size


def test_it_reads_large_sizes_exactly() -> None:
    assert images.dimensions("png", png(70_000, 1)) == (70_000, 1)
    jpeg = fixture("37x23.jpg")
    sof = jpeg.index(b"\xff\xc0")
    big = jpeg[: sof + 5] + struct.pack(">HH", 65_000, 64_000) + jpeg[sof + 9 :]
    assert images.dimensions("jpg", big) == (64_000, 65_000)
    vp8x = bytearray(fixture("37x23-vp8x.webp"))
    vp8x[24:30] = (16_383).to_bytes(3, "little") + (9_999).to_bytes(3, "little")
    assert images.dimensions("webp", bytes(vp8x)) == (16_384, 10_000)


def test_a_gif_frame_larger_than_its_screen_counts() -> None:
    # A small logical screen with a huge first frame: browsers that grow the canvas to the
    # frame would decode the frame's size.
    gif = fixture("37x23.gif")
    packed = gif[10]
    start = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    frame = gif.index(b"\x2c", start)
    assert struct.unpack("<HHHH", gif[frame + 1 : frame + 9]) == (0, 0, 37, 23)
    bomb = gif[: frame + 1] + struct.pack("<HHHH", 5, 7, 60_000, 50_000) + gif[frame + 9 :]
    assert images.dimensions("gif", bomb) == (60_005, 50_007)


def test_a_progressive_jpeg_and_fill_bytes_are_read() -> None:
    jpeg = fixture("37x23.jpg")
    sof = jpeg.index(b"\xff\xc0")
    progressive = jpeg[:sof] + b"\xff\xc2" + jpeg[sof + 2 :]
    assert images.dimensions("jpg", progressive) == (37, 23)
    padded = jpeg[:sof] + b"\xff\xff\xff" + jpeg[sof:]  # fill bytes before a marker
    assert images.dimensions("jpg", padded) == (37, 23)


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("png", b"\x89PNG\r\n\x1a\n"),  # no IHDR
        ("png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),  # a chunk, but not IHDR
        ("png", png(3, 2)[:20]),  # cut inside IHDR
        ("png", png(3, 2)[:16] + b"\x00" * 8),  # zero x zero
        ("jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40),  # a segment of length 0
        ("jpg", b"\xff\xd8\xff\xd9"),  # ends before any frame
        ("jpg", b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 20),  # the scan before a frame
        ("jpg", fixture("37x23.jpg")[:200]),  # cut before the frame header
        ("jpg", b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x00\x00\x25\x03"),  # height in a DNL
        ("jpg", b"\xff\xd8\x00\x00"),  # not a marker
        ("gif", b"GIF89a\x10"),
        ("gif", b"GIF89a\x00\x00\x10\x00" + b"\x00" * 10),  # zero wide
        ("webp", b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 40),  # no key frame start code
        ("webp", b"RIFF\x00\x00\x00\x00WEBPVP8L" + b"\x00" * 40),  # no VP8L signature
        ("webp", b"RIFF\x00\x00\x00\x00WEBPABCD" + b"\x00" * 40),  # an unknown chunk
        ("webp", fixture("37x23-vp8.webp")[:25]),
        ("bmp", b"BM" + b"\x00" * 40),
    ],
)
def test_a_header_that_states_no_size_is_unreadable(kind: str, content: bytes) -> None:
    with pytest.raises(images.UnreadableImage):
        images.dimensions(kind, content)


def test_every_cut_of_a_real_header_is_unreadable_or_right() -> None:
    """However a file is cut, the reader never fails another way, nor invents a size."""
    for name, kind in (
        ("37x23.png", "png"),
        ("37x23.jpg", "jpg"),
        ("37x23.gif", "gif"),
        ("37x23-vp8.webp", "webp"),
        ("37x23-vp8l.webp", "webp"),
        ("41x19-alpha.webp", "webp"),
    ):
        whole = fixture(name)
        right = images.dimensions(kind, whole)
        for end in range(len(whole)):
            with contextlib.suppress(images.UnreadableImage):
                assert images.dimensions(kind, whole[:end]) == right, (name, end)


# --- files.check_image ------------------------------------------------------------------------


def test_an_image_up_to_the_pixel_limit_is_taken(settings: Any) -> None:
    settings.IMAGE_MAX_PIXELS = 37 * 23
    for name in ("37x23.png", "37x23.jpg", "37x23.gif", "37x23-vp8.webp"):
        files.check_image(name, fixture(name))


def test_a_decompression_bomb_is_refused_with_its_size(settings: Any) -> None:
    bomb = png(8_000, 5_001)  # 40,008,000 pixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(ValidationFailed) as refused:
        files.check_image("bomb.png", bomb)
    assert refused.value.errors[0].field == "file"
    assert refused.value.errors[0].message == (
        "the image is 8,000 by 5,001 pixels, 40,008,000 in all; at most 40,000,000 pixels are "
        "taken: scale it down"
    )
    files.check_image("fits.png", png(8_000, 5_000))  # exactly 40 megapixels
    settings.IMAGE_MAX_PIXELS = 850
    with pytest.raises(ValidationFailed, match=r"37 by 23 pixels, 851 in all; at most 850 pixels"):
        files.check_image("tray.gif", fixture("37x23.gif"))


def test_an_image_whose_header_states_no_size_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        files.check_image("tray.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    assert (
        refused.value.errors[0].message == "the file is not a .png image: its header states no size"
    )
