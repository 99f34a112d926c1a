"""The single-row reads that nearly every API request makes, as fixed SQL.

Authenticating the token, finding the organization named in a request and the people it
names take one short indexed query each, which the database answers in microseconds; the
ORM spends 0.2-0.35 ms of Python building each of them, per request (``bench/create_cpu.py``
measured them at a quarter of a ticket create). Here the statement text is made once per
process from the models' own table and column names, and so is the list of converters each
column's value goes through: the ones a queryset applies (the backend's, such as SQLite's
for datetimes and booleans, then the field's ``from_db_value``). A row becomes an instance
through ``Model.from_db``, as a queryset's rows do. (``RawQuerySet`` did the same, but
worked the column order and the converters out again on every query: about half of the
0.27 ms a lookup cost on PostgreSQL.)

Who may see what stays decided in ``policy``; these functions only answer "which row".
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

from tierdesk.core.models import ApiToken, Organization, User

type Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]


def _connection(model: type[models.Model]) -> BaseDatabaseWrapper:
    return connections[router.db_for_read(model)]


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _table(model: type[models.Model]) -> str:
    return _connection(model).ops.quote_name(model._meta.db_table)


def _column(model: type[models.Model], name: str) -> str:
    return _connection(model).ops.quote_name(str(_field(model, name).column))


@dataclass(frozen=True)
class _Columns:
    """Columns of one table alias as a select list, and how to turn their values into what
    the fields hold."""

    select: str
    attnames: list[str]
    # (position, the column expression the converters are handed, the converters)
    converters: list[tuple[int, Any, list[Converter]]]

    def convert(self, values: Sequence[Any], connection: BaseDatabaseWrapper) -> list[Any]:
        out = list(values)
        for i, expression, funcs in self.converters:
            for func in funcs:
                out[i] = func(out[i], expression, connection)
        return out


@functools.cache
def _columns(model: type[models.Model], alias: str, names: tuple[str, ...] = ()) -> _Columns:
    """The fields ``names`` of ``model`` (default: all its columns) read from ``alias``."""
    connection = _connection(model)
    qn = connection.ops.quote_name
    fields = [_field(model, n) for n in names] if names else list(model._meta.concrete_fields)
    converters: list[tuple[int, Any, list[Converter]]] = []
    for i, field in enumerate(fields):
        expression = field.get_col(alias)
        # A queryset's order: the backend's converters, then the field's own.
        funcs = connection.ops.get_db_converters(expression)
        funcs += expression.get_db_converters(connection)
        if funcs:
            converters.append((i, expression, funcs))
    return _Columns(
        select=", ".join(f"{alias}.{qn(str(f.column))}" for f in fields),
        attnames=[f.attname for f in fields],
        converters=converters,
    )


def _row(model: type[models.Model], sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with _connection(model).cursor() as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def _instance[M: models.Model](model: type[M], alias: str, values: Sequence[Any]) -> M:
    """``model`` from ``values``, selected by ``_columns(model, alias).select``."""
    connection = _connection(model)
    columns = _columns(model, alias)
    return model.from_db(connection.alias, columns.attnames, columns.convert(values, connection))


def _first[M: models.Model](model: type[M], alias: str, sql: str, params: list[Any]) -> M | None:
    row = _row(model, sql, params)
    return None if row is None else _instance(model, alias, row)


@functools.cache
def _user_by(field: str) -> str:
    return (
        f"SELECT {_columns(User, 'u').select} FROM {_table(User)} u "  # noqa: S608
        f"WHERE u.{_column(User, field)} = %s"
    )


def user_by_id(user_id: int) -> User | None:
    return _first(User, "u", _user_by("id"), [user_id])


def user_by_email(email: str) -> User | None:
    """``email`` as stored: lower case (see ``UserManager.create_user``)."""
    return _first(User, "u", _user_by("email"), [email])


_TOKEN_EXTRA = ("id", "last_used_at")


@functools.cache
def _token_owner_sql() -> str:
    token = _table(ApiToken)
    return (
        f"SELECT {_columns(User, 'u').select}, {_columns(ApiToken, 't', _TOKEN_EXTRA).select} "  # noqa: S608
        f"FROM {token} t INNER JOIN {_table(User)} u ON u.{_column(User, 'id')} = t."
        f"{_column(ApiToken, 'user')} WHERE t.{_column(ApiToken, 'digest')} = %s AND "
        f"t.{_column(ApiToken, 'revoked_at')} IS NULL AND u.{_column(User, 'is_active')}"
    )


def token_owner(digest: str) -> tuple[User, int, dt.datetime | None] | None:
    """The active owner of the unrevoked token with ``digest``, the token's id and when it
    was last used; None when there is no such token."""
    row = _row(User, _token_owner_sql(), [digest])
    if row is None:
        return None
    width = len(_columns(User, "u").attnames)
    token_id, last_used_at = _columns(ApiToken, "t", _TOKEN_EXTRA).convert(
        row[width:], _connection(ApiToken)
    )
    return _instance(User, "u", row[:width]), int(token_id), last_used_at


@functools.cache
def _organization_sql(scope: str) -> str:
    org = _table(Organization)
    select = f"SELECT {_columns(Organization, 'o').select} FROM {org} o"  # noqa: S608
    where = f"o.{_column(Organization, 'code')} = %s"
    if scope == "served":
        through = User.served_organizations.through
        join = (
            f" INNER JOIN {_table(through)} s ON s.{_column(through, 'organization')} = "
            f"o.{_column(Organization, 'id')}"
        )
        return f"{select}{join} WHERE {where} AND s.{_column(through, 'user')} = %s"
    if scope == "one":
        return f"{select} WHERE {where} AND o.{_column(Organization, 'id')} = %s"
    return f"{select} WHERE {where}"


def organization_by_code(
    code: str, *, served_by: int | None = None, only: int | None = None
) -> Organization | None:
    """The organization with ``code``; with ``served_by``, only if that user serves it; with
    ``only``, only if it is the organization with that id."""
    if served_by is not None:
        return _first(Organization, "o", _organization_sql("served"), [code, served_by])
    if only is not None:
        return _first(Organization, "o", _organization_sql("one"), [code, only])
    return _first(Organization, "o", _organization_sql("all"), [code])
