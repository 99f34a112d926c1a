"""API tokens: hashed at rest, shown once, revocable, header only."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from django.test import Client

from tests.conftest import Api, Cast
from tierdesk.core import clock
from tierdesk.core.models import ApiToken, User
from tierdesk.core.services import token_create, token_revoke

ApiAs = Callable[[User | None], Api]


def test_only_the_hash_is_stored(cast: Cast) -> None:
    row, token = token_create(actor=None, user=cast.lena, name="laptop")
    assert token.startswith("td_")
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(ApiToken.objects.filter(pk=row.pk).values().get())


def test_a_revoked_token_stops_working_at_once(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    assert api.get("/me").status_code == 200
    token_revoke(actor=cast.lena, token_id=ApiToken.objects.get(user=cast.lena).pk)
    r = api.get("/me")
    assert r.status_code == 401
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert r["Content-Type"] == "application/problem+json"


def test_tokens_are_never_accepted_in_the_query_string(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    client = Client()
    for name in ("token", "access_token", "api_key", "auth"):
        assert client.get(f"/api/v1/me?{name}={api.token}").status_code == 401


def test_create_list_and_revoke_through_the_api(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    created = api.post("/tokens", {"name": "script"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert created["Cache-Control"] == "no-store"
    listed = api.get("/tokens").json()
    assert {t["name"] for t in listed} == {"tests", "script"}
    assert all("token" not in t for t in listed)
    second = Client()
    assert second.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.delete(f"/tokens/{created.json()['id']}").status_code == 204
    assert second.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_nobody_revokes_someone_elses_token(cast: Cast, api_as: ApiAs) -> None:
    lena = api_as(cast.lena)
    omar = api_as(cast.omar)
    lena_token = ApiToken.objects.get(user=cast.lena)
    assert omar.delete(f"/tokens/{lena_token.pk}").status_code == 404
    assert lena.get("/me").status_code == 200


def test_a_deactivated_users_tokens_stop_working(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    User.objects.filter(pk=cast.lena.pk).update(is_active=False)
    assert api.get("/me").status_code == 401


def test_last_use_is_noted_at_most_once_a_minute(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    row = ApiToken.objects.get(user=cast.lena)
    start = dt.datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=dt.UTC)
    with clock.frozen_at(start):
        assert api.get("/me").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == start
    with clock.frozen_at(start + dt.timedelta(seconds=59)):
        assert api.get("/me").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == start  # a read does not turn into a write every time
    later = start + dt.timedelta(seconds=61)
    with clock.frozen_at(later):
        assert api.get("/me").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == later
