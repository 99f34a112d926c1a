"""The single-row reads that nearly every API request makes, as fixed SQL.

Authenticating the token, finding the organization named in a request and the people it
names take one short indexed query each, which the database answers in microseconds; the
ORM spends 0.2-0.35 ms of Python building each of them, per request (``bench/create_cpu.py``
measured them at a quarter of a ticket create). Here the statement text is made once per
process from the models' own table and column names, and Django's ``RawQuerySet`` turns
the rows into model instances through the fields' converters, as a queryset would.

Who may see what stays decided in ``policy``; these functions only answer "which row".
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.db import connections, models, router
from django.utils import timezone

from tierdesk.core.models import ApiToken, Organization, User


def _table(model: type[models.Model]) -> str:
    return connections[router.db_for_read(model)].ops.quote_name(model._meta.db_table)


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return connections[router.db_for_read(model)].ops.quote_name(str(field.column))


def _first[M: models.Model](model: type[M], sql: str, params: list[Any]) -> M | None:
    return next(iter(model._default_manager.raw(sql, params)), None)


@functools.cache
def _user_by(field: str) -> str:
    return f"SELECT * FROM {_table(User)} WHERE {_column(User, field)} = %s"  # noqa: S608


def user_by_id(user_id: int) -> User | None:
    return _first(User, _user_by("id"), [user_id])


def user_by_email(email: str) -> User | None:
    """``email`` as stored: lower case (see ``UserManager.create_user``)."""
    return _first(User, _user_by("email"), [email])


@functools.cache
def _token_owner_sql() -> str:
    user, token = _table(User), _table(ApiToken)
    return (
        f"SELECT u.*, t.{_column(ApiToken, 'id')} AS token_id, "  # noqa: S608
        f"t.{_column(ApiToken, 'last_used_at')} AS token_last_used_at "
        f"FROM {token} t INNER JOIN {user} u ON u.{_column(User, 'id')} = t."
        f"{_column(ApiToken, 'user')} WHERE t.{_column(ApiToken, 'digest')} = %s AND "
        f"t.{_column(ApiToken, 'revoked_at')} IS NULL AND u.{_column(User, 'is_active')}"
    )


def token_owner(digest: str) -> tuple[User, int, dt.datetime | None] | None:
    """The active owner of the unrevoked token with ``digest``, the token's id and when it
    was last used; None when there is no such token."""
    user = _first(User, _token_owner_sql(), [digest])
    if user is None:
        return None
    extra: dict[str, Any] = user.__dict__
    last_used: dt.datetime | None = extra.pop("token_last_used_at")
    if last_used is not None and timezone.is_naive(last_used):
        # SQLite keeps UTC without an offset; a raw column gets no field converter.
        last_used = timezone.make_aware(last_used, dt.UTC)
    return user, int(extra.pop("token_id")), last_used


@functools.cache
def _organization_sql(scope: str) -> str:
    org = _table(Organization)
    where = f"o.{_column(Organization, 'code')} = %s"
    if scope == "served":
        through = User.served_organizations.through
        join = (
            f" INNER JOIN {_table(through)} s ON s.{_column(through, 'organization')} = "
            f"o.{_column(Organization, 'id')}"
        )
        return f"SELECT o.* FROM {org} o{join} WHERE {where} AND s.{_column(through, 'user')} = %s"  # noqa: S608
    if scope == "one":
        return f"SELECT o.* FROM {org} o WHERE {where} AND o.{_column(Organization, 'id')} = %s"  # noqa: S608
    return f"SELECT o.* FROM {org} o WHERE {where}"  # noqa: S608


def organization_by_code(
    code: str, *, served_by: int | None = None, only: int | None = None
) -> Organization | None:
    """The organization with ``code``; with ``served_by``, only if that user serves it; with
    ``only``, only if it is the organization with that id."""
    if served_by is not None:
        return _first(Organization, _organization_sql("served"), [code, served_by])
    if only is not None:
        return _first(Organization, _organization_sql("one"), [code, only])
    return _first(Organization, _organization_sql("all"), [code])
