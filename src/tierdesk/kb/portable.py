"""Articles as files: Markdown with YAML front matter, one article per ``<slug>.md``, so a
team can keep its knowledge base in git.

```
---
title: Outlook keeps asking for your password
slug: outlook-keeps-asking-for-password
category: email
tags: [outlook, password]
audience: public          # public | internal | tier:L2 | an organization's code
status: published         # draft | in_review | published | archived
review_by: 2027-06-30     # optional
related: [reset-microsoft-365-password]   # optional
---
The body, in Markdown.
```

An article's images (``![alt](attachment:tray.png)`` in its text) sit beside its file, in a
directory named like the file without ``.md``: ``vpn.md`` and ``vpn/tray.png``. Every other
file is an error (an image whose directory names no article file, say), with two exceptions
that a knowledge base kept in git has: hidden files and directories (``.git``,
``.gitignore``) are skipped, and so is a ``README.md`` at the top of the directory that has
no front matter (the repository's own readme; with front matter it is an article). Any
other ``.md`` without front matter is an error naming it.

Parsing is strict: unknown keys, missing fields and wrong types are errors naming the file
and the field. Nothing here touches the database; kb.services.article_import does (and
checks that each image is the image its name says).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tierdesk.core import files

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KEYS = ("title", "slug", "category", "tags", "audience", "status", "review_by", "related")
MAX_FILE_BYTES = 1_000_000


@dataclass
class Image:
    """One of an article's images, as read from its directory."""

    path: str  # relative to the directory read, for messages: "vpn/tray.png"
    name: str  # the file's name: "tray.png"
    content: bytes


@dataclass
class Document:
    """One article as a file says it is."""

    path: str
    title: str
    slug: str
    body: str
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    audience: str = "internal"
    status: str = "draft"
    review_by: dt.date | None = None
    related: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)


class FileError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def normal_body(body: str) -> str:
    """The body as stored and compared: Unix line ends, no blank lines around it."""
    return body.replace("\r\n", "\n").strip("\n")


def parse(text: str, path: str) -> Document:
    """The article in ``text`` (a file's content); FileError when it is not one."""
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if not text.startswith("---\n"):
        raise FileError(path, "must start with a '---' line opening the front matter")
    end = text.find("\n---\n", 3)
    if end == -1:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise FileError(path, "the front matter is not closed by a '---' line")
    try:
        meta = yaml.safe_load(text[4:end])
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where is not None else ""
        raise FileError(path, f"the front matter is not valid YAML{line}") from None
    if not isinstance(meta, dict):
        raise FileError(path, "the front matter must be a mapping of keys to values")
    unknown = sorted(str(k) for k in meta if k not in KEYS)
    if unknown:
        raise FileError(path, f"unknown front matter keys: {', '.join(unknown)}")
    body = normal_body(text[end + 5 :])

    def text_of(key: str, required: bool = False) -> str | None:
        value = meta.get(key)
        if value is None:
            if required:
                raise FileError(path, f"'{key}' is required")
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise FileError(path, f"'{key}' must be text")
        return str(value).strip()

    def list_of(key: str) -> list[str]:
        value = meta.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise FileError(path, f"'{key}' must be a list of words, like [vpn, wifi]")
        return [str(v).strip() for v in value]

    slug = text_of("slug", required=True) or ""
    if not SLUG.match(slug) or len(slug) > 80:
        raise FileError(path, "'slug' must be lower-case letters, digits and dashes (max 80)")
    review_by = meta.get("review_by")
    if review_by is not None and not isinstance(review_by, dt.date):
        try:
            review_by = dt.date.fromisoformat(str(review_by))
        except ValueError:
            raise FileError(path, "'review_by' must be a date like 2027-06-30") from None
    if isinstance(review_by, dt.datetime):
        review_by = review_by.date()
    return Document(
        path=path,
        title=text_of("title", required=True) or "",
        slug=slug,
        body=body,
        category=text_of("category") or None,
        tags=list_of("tags"),
        audience=text_of("audience") or "internal",
        status=text_of("status") or "draft",
        review_by=review_by,
        related=list_of("related"),
    )


def has_front_matter(text: str) -> bool:
    """Whether ``text`` opens with front matter's ``---`` line (as ``parse`` requires)."""
    return text.replace("\r\n", "\n").lstrip("\ufeff").startswith("---\n")


def _is_readme(directory: Path, file: Path) -> bool:
    """A ``README.md`` (any case) at the top of ``directory`` without front matter: the
    repository's readme, not an article."""
    if file.parent != directory or file.name.lower() != "readme.md":
        return False
    with open(file, "rb") as handle:
        start = handle.read(16).decode("utf-8", errors="replace")
    return not has_front_matter(start)


def images_dir(article_file: Path) -> Path:
    """Where the images of the article in ``article_file`` (``<name>.md``) are: ``<name>/``."""
    return article_file.with_name(article_file.name.removesuffix(".md"))


def read_dir(
    directory: Path, *, max_image_bytes: int | None = None
) -> tuple[list[Document], list[FileError]]:
    """Every ``*.md`` under ``directory`` (sorted), parsed, with the images in its directory
    (``images_dir``); and the files that are not articles or not readable. Images larger
    than ``max_image_bytes`` (default: settings.ATTACHMENT_MAX_BYTES) are errors, not read.
    """
    if max_image_bytes is None:
        from django.conf import settings

        max_image_bytes = settings.ATTACHMENT_MAX_BYTES
    found: list[Path] = []
    for folder, subfolders, names in directory.walk():
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]  # .git and the like
        found += (folder / n for n in names if not n.startswith(".") and (folder / n).is_file())
    found.sort()
    found = [p for p in found if not _is_readme(directory, p)]
    articles = [p for p in found if p.name.endswith(".md")]
    owners = {images_dir(p): p for p in articles}
    images: dict[Path, list[Image]] = {}
    documents, errors = [], []
    for file in found:
        if file.name.endswith(".md"):
            continue
        name = str(file.relative_to(directory))
        if file.parent not in owners:
            article = f"{file.parent.relative_to(directory)}.md"
            errors.append(
                FileError(
                    name,
                    f"an image of no article: there is no {article} beside its directory"
                    if file.parent != directory
                    else "not an article (.md); an article's images go in a directory "
                    "named like its file: vpn.md, vpn/tray.png",
                )
            )
            continue
        if file.stat().st_size > max_image_bytes:
            errors.append(FileError(name, f"larger than the limit of {max_image_bytes} bytes"))
            continue
        images.setdefault(owners[file.parent], []).append(
            Image(path=name, name=file.name, content=file.read_bytes())
        )
    seen: dict[str, str] = {}
    for file in articles:
        name = str(file.relative_to(directory))
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                raise FileError(name, f"larger than {MAX_FILE_BYTES:,} bytes")
            try:
                content = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise FileError(name, "is not UTF-8 text") from None
            doc = parse(content, name)
            if doc.slug in seen:
                raise FileError(name, f"slug {doc.slug!r} is also used by {seen[doc.slug]}")
            seen[doc.slug] = name
            doc.images = images.get(file, [])
            documents.append(doc)
        except FileError as exc:
            errors.append(exc)
    return documents, errors


def render(meta: dict[str, Any], body: str) -> str:
    """An article file: ``meta`` (in KEYS order, empty values left out) and ``body``."""
    ordered = {k: meta[k] for k in KEYS if meta.get(k) not in (None, [], "")}
    front = yaml.safe_dump(
        ordered, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000
    )
    return f"---\n{front}---\n{normal_body(body)}\n"


def write(
    directory: Path, meta: dict[str, Any], body: str, images: Sequence[tuple[str, Path]] = ()
) -> Path:
    """Write an article to ``directory/<slug>.md`` and its ``images`` (name, stored file),
    byte for byte, to ``directory/<slug>/``. An image file there that is not one of
    ``images`` (written by an earlier export, say) is removed, so that importing the
    directory again does not bring it back; other files are left alone. Returns the article
    file; FileError when a stored image is missing."""
    slug = str(meta["slug"])
    article_file = directory / f"{slug}.md"
    article_file.write_text(render(meta, body), encoding="utf-8")
    folder = images_dir(article_file)
    names = {name for name, _ in images}
    if folder.is_dir():
        for old in folder.iterdir():
            if (
                old.is_file()
                and old.name not in names
                and files.extension(old.name) in files.IMAGE_SIGNATURES
            ):
                old.unlink()  # not an article's .md, nor anything else it did not write
    if images:
        folder.mkdir(exist_ok=True)
        for name, source in images:
            try:
                shutil.copyfile(source, folder / name)
            except FileNotFoundError:
                raise FileError(f"{slug}/{name}", "the stored image is missing") from None
    elif folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return article_file
