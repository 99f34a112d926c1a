"""The configuration area: managers and admins only; everyone else finds no such page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Cast
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_managers_and_admins_open_configuration(cast: Cast) -> None:
    for user in (cast.manager, cast.admin):
        r = signed_in(user).get("/console/config/")
        assert r.status_code == 200
        assert 'href="/console/config/"' in signed_in(user).get("/", follow=True).content.decode()
        assert "<h1>Configuration</h1>" in r.content.decode()


def test_agents_and_requesters_find_no_configuration(cast: Cast) -> None:
    for user in (cast.lena, cast.omar, cast.alice, cast.carol):
        assert signed_in(user).get("/console/config/").status_code == 404
        page = signed_in(user).get("/", follow=True).content.decode()
        assert "<h1>" in page
        assert 'href="/console/config/"' not in page


def test_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    r = Client().get("/console/config/")
    assert r.status_code == 302
    assert r["Location"].startswith("/login?next=/console/config/")
