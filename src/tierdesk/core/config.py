"""Per-process caches of configuration that every ticket change reads (routing rules, SLA
targets, escalation rules), kept honest by one shared token.

Any save or delete of a watched model gives ``ConfigState`` a new random token, in the same
transaction as the change. A cache entry remembers the token it was loaded under; reading it
costs one small query for the current token, against the several joined queries it saves.
Writes that bypass model signals (``QuerySet.update``, ``bulk_create``) must call
``changed()`` themselves; the services do.

Work that reads several caches in one transaction (a ticket change, a sweep's batch) runs
under ``pinned()``: the token is read once for the block, so the block sees the
configuration as it was when it began, as one consistent snapshot.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models.signals import m2m_changed, post_delete, post_save

T = TypeVar("T")

_cache: dict[str, tuple[str, Any]] = {}
_pinned: ContextVar[str | None] = ContextVar("tierdesk_config_token", default=None)


def current_token() -> str:
    from tierdesk.core.models import ConfigState

    table = connection.ops.quote_name(ConfigState._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {table} WHERE id = 1")  # noqa: S608 - model's name
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def changed(**_: Any) -> None:
    """Invalidate every process's configuration caches (at commit of this transaction)."""
    from tierdesk.core.models import ConfigState

    token = secrets.token_hex(16)
    if not ConfigState.objects.filter(pk=1).update(token=token):
        ConfigState.objects.create(pk=1, token=token)
    if _pinned.get() is not None:
        _pinned.set(token)  # the rest of a pinned block reads the new configuration


@contextmanager
def pinned() -> Iterator[None]:
    """Read the token once for the block; ``cached`` inside it trusts that read. Nested
    blocks share the outer one's token."""
    if _pinned.get() is not None:
        yield
        return
    reset = _pinned.set(current_token())
    try:
        yield
    finally:
        _pinned.reset(reset)


def cached[T](name: str, load: Callable[[], T]) -> T:
    """``load()``'s value, reloaded when the configuration token moved since last time."""
    token = _pinned.get() or current_token()
    if not token:  # no state row (a database just flushed): trust nothing
        return load()
    entry = _cache.get(name)
    if entry is not None and entry[0] == token:
        return entry[1]
    value = load()
    _cache[name] = (token, value)
    return value


def watch(*models_: type[models.Model]) -> None:
    """Treat every save and delete of ``models_`` (and their many-to-many sets) as a
    configuration change."""
    for model in models_:
        uid = f"tierdesk.config.{model._meta.label}"
        post_save.connect(changed, sender=model, dispatch_uid=uid + ".save", weak=False)
        post_delete.connect(changed, sender=model, dispatch_uid=uid + ".delete", weak=False)
        for field in model._meta.many_to_many:
            m2m_changed.connect(
                changed,
                sender=field.remote_field.through,
                dispatch_uid=f"{uid}.{field.name}",
                weak=False,
            )
