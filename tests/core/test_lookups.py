"""core.lookups: the hot single-row reads in fixed SQL give the same instances the ORM does."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import Cast
from tierdesk.core import lookups
from tierdesk.core.models import ApiToken, Organization, User
from tierdesk.core.services import token_create, token_revoke, user_update


def _fields(obj: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _same(found: models.Model | None, expected: models.Model) -> None:
    assert found is not None
    assert type(found) is type(expected)
    assert _fields(found) == _fields(expected)
    # a saved row, as a queryset would hand it back: a later save() updates, not inserts
    assert found._state.adding is False
    assert found._state.db == "default"


def test_a_user_read_by_id_or_email_is_the_one_the_orm_reads(cast: Cast) -> None:
    User.objects.filter(pk=cast.alice.pk).update(last_login=timezone.now())
    alice = User.objects.get(pk=cast.alice.pk)
    _same(lookups.user_by_id(alice.pk), alice)
    _same(lookups.user_by_email("alice@acme.example"), alice)
    found = lookups.user_by_email("alice@acme.example")
    assert found is not None
    # the backend's converters ran: aware datetimes and real booleans on SQLite too
    assert found.last_login is not None
    assert found.last_login.tzinfo is not None
    assert found.is_active is True
    assert found.sees_organization_tickets is False
    assert lookups.user_by_id(10**9) is None
    assert lookups.user_by_email("nobody@acme.example") is None


def test_a_token_gives_its_active_owner_once_and_nothing_once_revoked(cast: Cast) -> None:
    row, token = token_create(actor=None, user=cast.lena, name="t")
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert row.digest == digest  # what token_authenticate looks up

    with CaptureQueriesContext(connection) as ctx:
        found = lookups.token_owner(digest)
    assert len(ctx.captured_queries) == 1
    assert found is not None
    user, token_id, last_used_at = found
    _same(user, User.objects.get(pk=cast.lena.pk))
    assert (token_id, last_used_at) == (row.pk, None)

    used = dt.datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=dt.UTC)
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=used)
    found = lookups.token_owner(digest)
    assert found is not None
    assert found[2] == used

    token_revoke(actor=cast.lena, token_id=row.pk)
    assert lookups.token_owner(digest) is None
    assert lookups.token_owner("0" * 64) is None


def test_a_deactivated_owners_token_finds_nobody(cast: Cast) -> None:
    _, token = token_create(actor=None, user=cast.alice, name="t")
    digest = hashlib.sha256(token.encode()).hexdigest()
    user_update(actor=cast.admin, user=cast.alice, is_active=False)
    assert lookups.token_owner(digest) is None


def test_an_organization_is_found_by_code_within_the_scope_asked(cast: Cast) -> None:
    acme = Organization.objects.get(pk=cast.acme.pk)
    _same(lookups.organization_by_code("ACME"), acme)
    _same(lookups.organization_by_code("ACME", served_by=cast.lena.pk), acme)
    assert lookups.organization_by_code("ACME", served_by=cast.gus.pk) is None
    _same(lookups.organization_by_code("ACME", only=cast.acme.pk), acme)
    assert lookups.organization_by_code("ACME", only=cast.globex.pk) is None
    assert lookups.organization_by_code("NOPE") is None
