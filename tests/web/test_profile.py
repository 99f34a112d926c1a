"""Everyone's own profile: name and time zone; times on the pages follow the zone."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.core.models import User

pytestmark = pytest.mark.django_db


def test_a_requester_changes_name_and_time_zone(cast: Cast) -> None:
    client = signed_in(cast.alice)
    page = client.get("/account/").content.decode()
    assert "alice@acme.example" in page
    assert "Acme Inc." in page
    r = client.post("/account/", {"full_name": "  Alice   Liddell ", "time_zone": "Asia/Tokyo"})
    assert r.status_code == 302
    alice = User.objects.get(pk=cast.alice.pk)
    assert (alice.full_name, alice.time_zone) == ("Alice Liddell", "Asia/Tokyo")
    assert "Your profile has been saved." in client.get(r["Location"]).content.decode()


def test_bad_input_is_refused_beside_the_field_and_kept(cast: Cast) -> None:
    client = signed_in(cast.lena)
    r = client.post("/account/", {"full_name": "Lena\x07", "time_zone": "Mars/Olympus"})
    page = r.content.decode()
    assert r.status_code == 422
    assert "Enter your name." in page
    assert "Select a valid choice. Mars/Olympus is not one of the available choices." in page
    assert User.objects.get(pk=cast.lena.pk).full_name == cast.lena.full_name


def test_the_profile_changes_nothing_else(cast: Cast) -> None:
    r = signed_in(cast.alice).post(
        "/account/",
        {"full_name": "Alice", "time_zone": "UTC", "role": "admin", "email": "x@evil.example"},
    )
    assert r.status_code == 302
    alice = User.objects.get(pk=cast.alice.pk)
    assert (alice.role, alice.email) == ("requester", "alice@acme.example")


def test_visitors_are_sent_to_sign_in() -> None:
    r = Client().get("/account/")
    assert r.status_code == 302
    assert r["Location"].startswith("/login?next=/account/")


def test_times_are_shown_in_the_viewers_zone(cast: Cast) -> None:
    with clock.frozen_at(dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)):
        ticket = make_ticket(cast.alice, cast.acme)
    User.objects.filter(pk=cast.alice.pk).update(time_zone="Europe/Berlin")
    page = signed_in(cast.alice).get(f"/portal/tickets/{ticket.key}").content.decode()
    assert re.search(r"Wed 01 Jul 2026, 14:00 CEST", page)
    User.objects.filter(pk=cast.alice.pk).update(time_zone="UTC")
    page = signed_in(cast.alice).get(f"/portal/tickets/{ticket.key}").content.decode()
    assert re.search(r"Wed 01 Jul 2026, 12:00 UTC", page)
