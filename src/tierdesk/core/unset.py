"""A marker for "argument not given" where None is a meaningful value (clear a field)."""

from __future__ import annotations

from typing import Any, Final


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()
