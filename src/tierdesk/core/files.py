"""Files stored by tierdesk (ticket attachments, knowledge-base images): names, checks and
the bytes on disk.

A file lives under ``settings.ATTACHMENTS_DIR`` as ``<first two letters>/<storage key>``, a
random key, outside any web root; a row of the owning model (``FILE_OWNERS``) names it and
says who may read it. The bytes are written and synced before that row commits, and
removed again when it does not; ``sweep_orphans`` removes what a rolled-back transaction
left behind.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings

from tierdesk.core import images
from tierdesk.core.errors import ContentTooLarge, ValidationFailed

# Models with a ``storage_key`` column naming files under ATTACHMENTS_DIR.
FILE_OWNERS = ("tickets.Attachment", "kb.ArticleAttachment")

# What an image's first bytes are, by extension: a file is an image only if it says so.
IMAGE_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "webp": (b"RIFF",),  # and "WEBP" at offset 8
}


def safe_filename(name: str) -> str:
    """``name`` without directories, control characters or leading/trailing dots and
    spaces, at most 255 characters (the extension kept)."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if not name:
        raise ValidationFailed.for_field("file", "the file needs a name")
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 250 - len(ext)] + dot + ext) if dot else name[:255]
    return name


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def check_size(content: bytes) -> None:
    if len(content) == 0:
        raise ValidationFailed.for_field("file", "the file is empty")
    if len(content) > settings.ATTACHMENT_MAX_BYTES:
        raise ContentTooLarge.for_field(
            "file", f"larger than the limit of {settings.ATTACHMENT_MAX_BYTES} bytes"
        )


def check_image(name: str, content: bytes) -> None:
    """``content`` is a PNG, JPEG, GIF or WebP image, as its name says, whose header states
    its size, at most ``settings.IMAGE_MAX_PIXELS`` pixels (a larger canvas is refused as a
    decompression bomb: readers' browsers would decode it). SVG is not taken: it can carry
    script."""
    ext = extension(name)
    signatures = IMAGE_SIGNATURES.get(ext)
    if signatures is None:
        raise ValidationFailed.for_field(
            "file", f"images are .png, .jpg, .gif or .webp, not .{ext or '(none)'}"
        )
    check_size(content)
    if not content.startswith(signatures) or (ext == "webp" and content[8:12] != b"WEBP"):
        raise ValidationFailed.for_field("file", f"the file is not a .{ext} image")
    try:
        width, height = images.dimensions(ext, content)
    except images.UnreadableImage:
        raise ValidationFailed.for_field(
            "file", f"the file is not a .{ext} image: its header states no size"
        ) from None
    limit = settings.IMAGE_MAX_PIXELS
    if width * height > limit:
        raise ValidationFailed.for_field(
            "file",
            f"the image is {width:,} by {height:,} pixels, {width * height:,} in all; at most "
            f"{limit:,} pixels are taken: scale it down",
        )


@dataclass(frozen=True)
class Stored:
    storage_key: str
    size: int
    sha256: str


def path(storage_key: str) -> Path:
    """Where the bytes named ``storage_key`` live; callers must have authorized the reader."""
    return Path(settings.ATTACHMENTS_DIR) / storage_key[:2] / storage_key


def store(content: bytes) -> Stored:
    """Write ``content`` under a new key and sync it to disk. The caller commits a row
    naming the key, or calls ``discard`` when it cannot."""
    storage_key = secrets.token_hex(20)
    target = path(storage_key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(target)
    return Stored(storage_key, len(content), hashlib.sha256(content).hexdigest())


def discard(storage_key: str) -> None:
    path(storage_key).unlink(missing_ok=True)


def sweep_orphans(*, older_than_seconds: int = 3600) -> int:
    """Delete files that no row of ``FILE_OWNERS`` names, and unfinished ``.part`` files,
    once they are older than ``older_than_seconds`` (so that an upload still in flight,
    whose row has not committed yet, is left alone). Returns how many were removed."""
    root = Path(settings.ATTACHMENTS_DIR)
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    candidates: dict[str, Path] = {}
    removed = 0
    for found in root.glob("*/*"):
        if not found.is_file() or found.stat().st_mtime > cutoff:
            continue
        if found.suffix == ".part":
            found.unlink(missing_ok=True)
            removed += 1
        else:
            candidates[found.name] = found
    keys = list(candidates)
    owners = [apps.get_model(label) for label in FILE_OWNERS]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known: set[str] = set()
        for model in owners:
            known.update(
                model._default_manager.filter(storage_key__in=chunk).values_list(
                    "storage_key", flat=True
                )
            )
        for key in chunk:
            if key not in known:
                candidates[key].unlink(missing_ok=True)
                removed += 1
    return removed
