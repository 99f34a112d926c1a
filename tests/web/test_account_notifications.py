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
    assert "An approval is waiting for you" not in page  # approvals are staff's
    assert page.count('type="checkbox"') == 3
    assert page.count("checked") == 3
    # Unchecked boxes are not sent: everything but replies stays on.
    r = client.post(PAGE, {"ticket_created": "on", "ticket_resolved": "on"})
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
    assert "A security alert" not in page  # admins only


def test_an_admin_switches_security_alerts_off(cast: Cast) -> None:
    client = signed_in(cast.admin)
    page = client.get(PAGE).content.decode()
    assert "A security alert (automation)" in page
    on = {kind: "on" for kind in notify.preferences_of(cast.admin) if kind != "security_alert"}
    assert client.post(PAGE, on).status_code == 302
    assert notify.preferences_of(cast.admin)["security_alert"] is False
    assert notify.preferences_of(cast.admin)["approval_needed"] is True


def test_the_profile_links_to_it_and_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    assert f'href="{PAGE}"' in signed_in(cast.alice).get("/account/").content.decode()
    r = Client().get(PAGE)
    assert r.status_code == 302
    assert r["Location"].startswith("/login")
