"""Everyone's own notification settings: one checkbox per kind they can receive."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.channels import notify

pytestmark = pytest.mark.django_db
PAGE = "/account/notifications"


def test_a_requester_switches_replies_off(cast: Cast) -> None:
    client = signed_in(cast.alice)
    page = client.get(PAGE).content.decode()
    assert "Your ticket was received" in page
    assert "missed its SLA target" not in page  # staff only
    assert page.count('type="checkbox"') == 4
    assert page.count("checked") == 4
    # Unchecked boxes are not sent: everything but replies stays on.
    r = client.post(PAGE, {"ticket_created": "on", "ticket_resolved": "on",
                           "approval_needed": "on"})  # fmt: skip
    assert r.status_code == 302
    assert notify.preferences_of(cast.alice)["ticket_replied"] is False
    assert notify.preferences_of(cast.alice)["ticket_created"] is True
    assert "have been saved" in client.get(r["Location"]).content.decode()


def test_staff_see_their_kinds_and_a_smuggled_kind_changes_nothing(cast: Cast) -> None:
    client = signed_in(cast.lena)
    page = client.get(PAGE).content.decode()
    assert "missed its SLA target" in page
    assert "Your ticket was received" not in page
    r = client.post(PAGE, {"sla_breached": "on", "ticket_created": "off"})
    assert r.status_code == 302
    assert "ticket_created" not in notify.preferences_of(cast.lena)
    assert notify.preferences_of(cast.lena)["sla_warning"] is False


def test_the_profile_links_to_it_and_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    assert f'href="{PAGE}"' in signed_in(cast.alice).get("/account/").content.decode()
    r = Client().get(PAGE)
    assert r.status_code == 302
    assert r["Location"].startswith("/login")
