"""Personal saved views: a queue with its filters under a name, seen only by its owner. A
refused name or filters come back on the queue page beside the name, with what was typed."""

from __future__ import annotations

import html
import re

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


def name_input(page: str) -> str:
    m = re.search(r'<input type="text" name="name"[^>]*>', page)
    assert m
    return m.group(0)


def name_error(page: str) -> str | None:
    m = re.search(r'<p class="error" id="id_view_name_error">([^<]*)</p>', page)
    return html.unescape(m.group(1)) if m else None


def alert(page: str) -> str | None:
    m = re.search(
        r'<form class="save-view"[^>]*>.*?<div class="form-error" role="alert"><p>([^<]*)</p>',
        page,
        re.DOTALL,
    )
    return html.unescape(m.group(1)) if m else None


def test_filters_too_long_to_save_are_refused_not_cut(cast: Cast) -> None:
    client = signed_in(cast.lena)
    query = "text=" + "%E2%82%AC" * 200  # 200 characters, 1,600 once encoded
    r = client.post("/console/views", {"queue": "l1", "query": query, "name": "Euros"})
    assert r.status_code == 400
    page = r.content.decode()
    assert alert(page) == "These filters are too long to save."
    assert 'value="Euros"' in name_input(page)
    assert 'value="' + "€" * 200 + '"' in page  # the search box keeps them
    assert not SavedView.objects.exists()


def test_a_bad_name_is_shown_beside_it_and_the_filters_stay(cast: Cast) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops")
    client = signed_in(cast.lena)
    for name, message in (
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 61, "Ensure this value has at most 60 characters (it has 61)."),
        ("bell\x07", "1 to 60 printable characters."),
    ):
        r = client.post(
            "/console/views",
            {"queue": "l1", "query": "text=vpn&priority=P3&cursor=abc", "name": name},
        )
        assert r.status_code == 400, name
        page = r.content.decode()
        assert name_error(page) == message, name
        field = name_input(page)
        assert 'aria-describedby="id_view_name_error"' in field
        assert 'aria-invalid="true"' in field
        # the queue is shown with the filters it was saved from, ready to send again
        assert re.search(r'<input type="text" name="text" value="vpn"', page)
        assert 'name="query" value="text=vpn&amp;priority=P3&amp;cursor=abc"' in page
        assert alert(page) is None
    assert not SavedView.objects.exists()


def test_filters_the_agent_could_not_apply_are_refused(cast: Cast) -> None:
    client = signed_in(cast.lena)  # Lena does not serve GLOBEX
    r = client.post(
        "/console/views", {"queue": "l1", "query": "organization=GLOBEX", "name": "Globex"}
    )
    assert r.status_code == 400
    page = r.content.decode()
    assert alert(page) == "Those filters are not valid: fix them before saving the view."
    assert 'id="id_organization_error"' in page  # and why, beside the filter
    assert 'value="Globex"' in name_input(page)
    assert not SavedView.objects.exists()


def test_a_name_already_taken_is_a_conflict(cast: Cast) -> None:
    client = signed_in(cast.lena)
    assert client.post("/console/views", {"queue": "l1", "name": "Mine"}).status_code == 302
    r = client.post("/console/views", {"queue": "mine", "query": "sort=priority", "name": "Mine"})
    assert r.status_code == 409
    page = r.content.decode()
    assert name_error(page) == "You already have a view with this name."
    assert 'value="Mine"' in name_input(page)
    assert "<h1>Mine</h1>" in page  # the queue it was sent from
    assert SavedView.objects.count() == 1
    assert client.post("/console/views", {"queue": "l9", "name": "x"}).status_code == 404


def test_only_the_owner_deletes_a_view(cast: Cast) -> None:
    signed_in(cast.lena).post("/console/views", {"queue": "l1", "query": "", "name": "Mine"})
    view = SavedView.objects.get()
    assert signed_in(cast.omar).post(f"/console/views/{view.pk}/delete").status_code == 404
    assert SavedView.objects.exists()
    assert signed_in(cast.lena).post(f"/console/views/{view.pk}/delete").status_code == 302
    assert not SavedView.objects.exists()
