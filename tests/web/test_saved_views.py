"""Personal saved views: a queue with its filters under a name, seen only by its owner."""

from __future__ import annotations

import html

import pytest

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.tiers.queries import category_for_organization
from tierdesk.web.models import SavedView

pytestmark = pytest.mark.django_db


def test_save_a_view_and_find_it_in_the_nav(cast: Cast) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops")
    client = signed_in(cast.lena)
    r = client.post(
        "/console/views",
        {"queue": "l1", "query": "text=vpn&priority=P3&cursor=abc&evil=1", "name": "  My  VPN  "},
        follow=True,
    )
    page = r.content.decode()
    assert "Saved as “My VPN”." in page
    view = SavedView.objects.get(user=cast.lena)
    assert (view.name, view.queue) == ("My VPN", "l1")
    assert sorted(view.query.split("&")) == ["priority=P3", "text=vpn"]  # filters only
    assert f'href="/console/queue/l1?{html.escape(view.query)}">My VPN</a>' in page
    other = signed_in(cast.omar).get("/console/queue/l1").content.decode()
    assert "My VPN" not in other


def test_a_view_keeps_every_filter_of_the_form(cast: Cast) -> None:
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    client = signed_in(cast.lena)
    query = f"category={hardware.pk}&assignee={cast.lena.pk}&tags=vpn%2Cnetwork&sort=priority"
    client.post("/console/views", {"queue": "l1", "query": query, "name": "Net"})
    view = SavedView.objects.get(user=cast.lena)
    assert sorted(view.query.split("&")) == sorted(query.split("&"))


def test_filters_too_long_to_save_are_refused_not_cut(cast: Cast) -> None:
    client = signed_in(cast.lena)
    query = "text=" + "%E2%82%AC" * 200  # 200 characters, 1,600 once encoded
    r = client.post("/console/views", {"queue": "l1", "query": query, "name": "x"}, follow=True)
    assert "these filters are too long to save" in r.content.decode()
    assert not SavedView.objects.exists()


def test_bad_names_and_filters_are_refused(cast: Cast) -> None:
    client = signed_in(cast.lena)
    r = client.post("/console/views", {"queue": "l1", "query": "", "name": ""}, follow=True)
    assert "The view was not saved: 1 to 60 printable characters." in r.content.decode()
    r = client.post(
        "/console/views", {"queue": "l1", "query": "organization=GLOBEX", "name": "x"}, follow=True
    )
    assert "Those filters are not valid" in r.content.decode()  # Lena does not serve GLOBEX
    client.post("/console/views", {"queue": "l1", "query": "", "name": "Mine"})
    r = client.post("/console/views", {"queue": "mine", "query": "", "name": "Mine"}, follow=True)
    assert "you already have a view with this name" in r.content.decode()
    assert SavedView.objects.count() == 1
    assert client.post("/console/views", {"queue": "l9", "name": "x"}).status_code == 404


def test_only_the_owner_deletes_a_view(cast: Cast) -> None:
    signed_in(cast.lena).post("/console/views", {"queue": "l1", "query": "", "name": "Mine"})
    view = SavedView.objects.get()
    assert signed_in(cast.omar).post(f"/console/views/{view.pk}/delete").status_code == 404
    assert SavedView.objects.exists()
    assert signed_in(cast.lena).post(f"/console/views/{view.pk}/delete").status_code == 302
    assert not SavedView.objects.exists()
