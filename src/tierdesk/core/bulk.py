"""Write many rows, each with its own values, in one statement.

Django's ``bulk_update`` builds a ``CASE WHEN id = … THEN …`` expression per row and field
through the ORM's expression machinery; for a sweep's batch of 100 rows and five fields
that costs ~0.3 s of Python on this machine, far more than the database spends, and its
``bulk_create`` spends several times the database's time compiling. Here the rows travel
as one ``VALUES`` list (joined to the table for updates: ``UPDATE … FROM (VALUES …)``,
which SQLite ≥ 3.33 and PostgreSQL both speak; ``INSERT … RETURNING`` for inserts), with
the values prepared by the model fields themselves, so types and time zones are converted
exactly as ``save()`` converts them. Neither sends signals, like their Django namesakes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.options import Options


def insert_all[M: models.Model](objs: list[M]) -> list[M]:
    """Insert new ``objs`` (all of one model, with an automatic primary key) and set their
    primary keys. Returns ``objs``."""
    if not objs:
        return objs
    meta, connection, pk = _target(objs)
    qn = connection.ops.quote_name
    columns = [f for f in meta.concrete_fields if f is not pk]
    names = ", ".join(qn(str(f.column)) for f in columns)
    table = qn(str(meta.db_table))
    returning = f" RETURNING {qn(str(pk.column))}"
    with connection.cursor() as cursor:
        for chunk, params in _chunks(objs, columns, connection, insert=True):
            if _arrays(connection, len(chunk), insert=True):
                source = f"SELECT * FROM {_unnest(columns, connection)}"  # noqa: S608 - names from the model
            else:
                source = f"VALUES {', '.join([_row(len(columns))] * len(chunk))}"
            sql = f"INSERT INTO {table} ({names}) {source}{returning}"
            cursor.execute(sql, params)
            for obj, row in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = row[0]
                obj._state.adding = False
                obj._state.db = connection.alias
    return objs


def update_each(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of every object in ``objs`` (all of one model, all saved before)
    to its row. Returns the number of rows updated."""
    if not objs:
        return 0
    meta, connection, pk = _target(objs)
    qn = connection.ops.quote_name
    columns: list[models.Field[Any, Any]] = [pk]
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, models.Field), f"{name} is not a concrete field"
        columns.append(field)
    table = qn(str(meta.db_table))
    assignments = ", ".join(
        f"{qn(str(f.column))} = v.column{i}" for i, f in enumerate(columns[1:], start=2)
    )
    where = f"WHERE {table}.{qn(str(pk.column))} = v.column1"
    updated = 0
    with connection.cursor() as cursor:
        for chunk, params in _chunks(objs, columns, connection, insert=False):
            if _arrays(connection, len(chunk), insert=False):
                as_v = ", ".join(f"column{i}" for i in range(1, len(columns) + 1))
                source = f"{_unnest(columns, connection)} AS v({as_v})"
            else:
                source = f"(VALUES {', '.join([_row(len(columns))] * len(chunk))}) AS v"
            cursor.execute(f"UPDATE {table} SET {assignments} FROM {source} {where}", params)  # noqa: S608
            updated += cursor.rowcount
    return updated


def _target(
    objs: Sequence[models.Model],
) -> tuple[Options[Any], BaseDatabaseWrapper, models.Field[Any, Any]]:
    """The model's options, the connection its writes go to, and its primary key."""
    model = type(objs[0])
    pk = model._meta.pk
    assert pk is not None
    return model._meta, connections[router.db_for_write(model)], pk


def _arrays(connection: BaseDatabaseWrapper, rows: int, *, insert: bool) -> bool:
    """PostgreSQL takes rows as one typed array per column (``unnest``): a handful of
    parameters to bind and plan instead of one per value, as Django's own bulk insert does
    there. A single inserted row goes as a plain VALUES row, which costs less (an INSERT
    takes its types from the table; an UPDATE's VALUES would not know them)."""
    return connection.vendor == "postgresql" and (rows > 1 or not insert)


_unnests: dict[tuple[str, tuple[str, ...]], str] = {}


def _unnest(columns: list[models.Field[Any, Any]], connection: BaseDatabaseWrapper) -> str:
    """``unnest((%s)::bigint[], …)`` for ``columns``; the same text every time for a model,
    so PostgreSQL's prepared statement is reused (and the types are worked out once)."""
    key = (connection.alias, tuple(f"{f.model._meta.label}.{f.attname}" for f in columns))
    found = _unnests.get(key)
    if found is None:
        # Array types without their length (varchar[], not varchar(50)[]), as Django does.
        types = [(f.db_type(connection) or "text").split("(")[0] for f in columns]
        found = _unnests[key] = "unnest(" + ", ".join(f"(%s)::{t}[]" for t in types) + ")"
    return found


def _row(width: int) -> str:
    return "(" + ", ".join(["%s"] * width) + ")"


def _chunks[M: models.Model](
    objs: Sequence[M],
    columns: list[models.Field[Any, Any]],
    connection: BaseDatabaseWrapper,
    *,
    insert: bool,
) -> Iterator[tuple[Sequence[M], list[Any]]]:
    """The objects in statements' worth, with their values prepared by the fields: one
    list per column (PostgreSQL), else one parameter per value, under SQLite's oldest
    limit of 999 per statement."""
    arrays = _arrays(connection, len(objs), insert=insert)
    per_statement = len(objs) if arrays else max(1, 999 // len(columns))
    for start in range(0, len(objs), per_statement):
        chunk = objs[start : start + per_statement]
        rows = [
            [
                f.get_db_prep_save(
                    f.pre_save(obj, True) if insert else getattr(obj, f.attname), connection
                )
                for f in columns
            ]
            for obj in chunk
        ]
        if arrays:
            yield chunk, [list(col) for col in zip(*rows, strict=True)]
        else:
            yield chunk, [value for row in rows for value in row]
