"""Parsing of identifiers that arrive as text from outside."""

from __future__ import annotations

MAX_ID = 2**62  # fits every database's 64-bit integer


def as_id(text: str) -> int | None:
    """``text`` as a row id if it is one: ASCII digits only (``str.isdigit`` also accepts
    "²" and other digit signs that ``int`` refuses), within the 64-bit range."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None
