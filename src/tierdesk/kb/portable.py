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

Parsing is strict: unknown keys, missing fields and wrong types are errors naming the file
and the field. Nothing here touches the database; kb.services.article_import does.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KEYS = ("title", "slug", "category", "tags", "audience", "status", "review_by", "related")
MAX_FILE_BYTES = 1_000_000


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


def read_dir(directory: Path) -> tuple[list[Document], list[FileError]]:
    """Every ``*.md`` under ``directory`` (sorted), parsed; and the files that are not."""
    documents, errors = [], []
    seen: dict[str, str] = {}
    for file in sorted(directory.rglob("*.md")):
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
