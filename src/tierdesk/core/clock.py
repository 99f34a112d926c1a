"""The one source of "now" for services.

Services read the time from here so that the demo seed (and tests) can replay a history at
chosen instants through the same code paths as live traffic.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar

_frozen: ContextVar[dt.datetime | None] = ContextVar("tierdesk_frozen_now", default=None)


def now() -> dt.datetime:
    """Return the current instant, timezone-aware UTC."""
    frozen = _frozen.get()
    return frozen if frozen is not None else dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def frozen_at(instant: dt.datetime) -> Iterator[None]:
    """Make ``now()`` return ``instant`` (aware) inside the block."""
    if instant.tzinfo is None:
        raise ValueError("frozen_at needs an aware datetime")
    token = _frozen.set(instant.astimezone(dt.UTC))
    try:
        yield
    finally:
        _frozen.reset(token)
