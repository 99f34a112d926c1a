"""Per-process caches of what every ticket change reads (routing rules, SLA targets,
escalation rules) and of the knowledge base's search vocabulary, kept honest by shared
tokens, one per cache group.

Any save or delete of a watched model gives its group's ``ConfigState`` row a new random
token, in the same transaction as the change. A cache entry remembers the token it was
loaded under; reading it costs one small query for the current token, against the several
joined queries it saves. Writes that bypass model signals (``QuerySet.update``,
``bulk_create``) must call ``changed()`` themselves; the services do.

Groups keep unrelated caches apart: the shared configuration (``config``, the default) is
not reloaded because an article changed. A model is watched for one group
(``watch(Article, group="kb")``), and a cache belongs to the group its name starts with —
``kb.vocabulary`` to ``kb`` — when a model is watched for that group; every other cache
(``routing.rules``, ``tiers.by_level``…) belongs to ``config``.

Work that reads several caches in one transaction (a ticket change, a sweep's batch) runs
under ``pinned()``: every group's token is read once for the block (one query), so the
block sees each group as it was when it began, as one consistent snapshot.
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

CONFIG = "config"  # the shared configuration's group, and every unnamed cache's

_cache: dict[str, tuple[str, Any]] = {}
_groups: set[str] = {CONFIG}
# Inside pinned(): each group's token, read once on entry.
_pinned: ContextVar[dict[str, str] | None] = ContextVar("tierdesk_config_tokens", default=None)


def _table() -> str:
    from tierdesk.core.models import ConfigState

    return connection.ops.quote_name(ConfigState._meta.db_table)


def group_of(name: str) -> str:
    """The group the cache ``name`` belongs to: the part before its first dot when a model
    is watched for that group, else ``config``."""
    prefix, dot, _ = name.partition(".")
    return prefix if dot and prefix in _groups else CONFIG


def current_token(group: str = CONFIG) -> str:
    """``group``'s token now ("" when its row is missing)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT token FROM {_table()} WHERE name = %s", [group])  # noqa: S608 - model's name
        row = cursor.fetchone()
    return str(row[0]) if row else ""


def _all_tokens() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name, token FROM {_table()}")  # noqa: S608 - model's name
        return {str(name): str(token) for name, token in cursor.fetchall()}


def changed(group: str = CONFIG, **_: Any) -> None:
    """Invalidate every process's caches of ``group`` (at commit of this transaction)."""
    from tierdesk.core.models import ConfigState

    token = secrets.token_hex(16)
    if not ConfigState.objects.filter(name=group).update(token=token):
        ConfigState.objects.create(name=group, token=token)
    tokens = _pinned.get()
    if tokens is not None:
        tokens[group] = token  # the rest of a pinned block reads the new state


@contextmanager
def pinned() -> Iterator[None]:
    """Read every group's token once for the block; ``cached`` inside it trusts that read.
    Nested blocks share the outer one's tokens."""
    if _pinned.get() is not None:
        yield
        return
    reset = _pinned.set(_all_tokens())
    try:
        yield
    finally:
        _pinned.reset(reset)


def cached[T](name: str, load: Callable[[], T]) -> T:
    """``load()``'s value, reloaded when the token of the group ``name`` belongs to
    (group_of) moved since last time."""
    group = group_of(name)
    tokens = _pinned.get()
    token = tokens.get(group, "") if tokens is not None else current_token(group)
    if not token:  # no state row (a database just flushed): trust nothing
        return load()
    entry = _cache.get(name)
    if entry is not None and entry[0] == token:
        return entry[1]
    value = load()
    _cache[name] = (token, value)
    return value


def watch(*models_: type[models.Model], group: str = CONFIG) -> None:
    """Treat every save and delete of ``models_`` (and their many-to-many sets) as a change
    of ``group``: the caches named ``<group>.…`` (or, for ``config``, every cache of no
    other group) are reloaded, and no others."""
    _groups.add(group)

    def receiver(**_: Any) -> None:
        changed(group)

    for model in models_:
        uid = f"tierdesk.config.{group}.{model._meta.label}"
        post_save.connect(receiver, sender=model, dispatch_uid=uid + ".save", weak=False)
        post_delete.connect(receiver, sender=model, dispatch_uid=uid + ".delete", weak=False)
        for field in model._meta.many_to_many:
            m2m_changed.connect(
                receiver,
                sender=field.remote_field.through,
                dispatch_uid=f"{uid}.{field.name}",
                weak=False,
            )


def ensure_groups(using: str = "default", **_: Any) -> None:
    """Give every group a row (after migrating, or a test's flush), so that its caches are
    trusted from the first read on; an existing row keeps its token. Nothing while the
    table is not there (migrated back to before it)."""
    from django.db import connections

    from tierdesk.core.models import ConfigState

    if ConfigState._meta.db_table not in connections[using].introspection.table_names():
        return
    ConfigState.objects.using(using).bulk_create(
        [ConfigState(name=g, token=secrets.token_hex(16)) for g in sorted(_groups)],
        ignore_conflicts=True,
    )
