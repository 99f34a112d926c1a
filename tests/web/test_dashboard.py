"""The reports dashboard in the console: every section for the hand-built week of
tests/reports/test_summary.py, its numbers leading to the tickets behind them, its filters
and their refusals, and who may open it."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from tests.reports.test_summary import History, week  # noqa: F401 (a fixture)
from tests.web.conftest import signed_in
from tests.web.test_reports import nonce_of
from tierdesk.tiers.models import Tier

pytestmark = pytest.mark.django_db

PAGE = "/console/reports/"
THE_WEEK = {"organization": "ACME", "from": "2026-03-02", "to": "2026-03-06"}


def tile(page: str, label: str) -> tuple[str, str | None]:
    """A headline tile's value and where it links."""
    found = re.search(
        rf"<dt>{re.escape(label)}</dt><dd>(?:<a class=\"value\" href=\"([^\"]+)\">|"
        r"<span class=\"value\">)([^<]+)<",
        page,
    )
    assert found, label
    return found[2], unescape(found[1]) if found[1] else None


def test_the_weeks_figures_and_their_tickets(week: History) -> None:  # noqa: F811
    client = signed_in(week.cast.manager)
    r = client.get(PAGE, THE_WEEK)
    assert r.status_code == 200, r.content[:2000]
    page = r.content.decode()
    assert tile(page, "Created")[0] == "7"
    assert tile(page, "First contact resolution")[0] == "33.3 %"
    value, url = tile(page, "L1 resolution rate")
    assert value == "83.3 %"
    assert 'class="tile band-above"' in page  # above the 60-70 % band
    assert url is not None
    # The number leads to the tickets it counts: the five resolved in L1.
    listed = client.get(url)
    assert listed.status_code == 200
    keys = set(re.findall(r'href="/console/tickets/([^"]+)"', listed.content.decode()))
    assert keys == {week.t[n].key for n in ("T10", "T1", "T2", "T4", "T5")}
    assert "(5)" in listed.content.decode()
    # Every section is there, with its charts drawn under the page's nonce.
    for section in ("volume", "tiers", "escalations", "times", "backlog", "sla", "csat",
                    "knowledge", "cost", "agents"):  # fmt: skip
        assert f'id="{section}"' in page, section
    nonce = nonce_of(r)
    assert page.count("<svg") >= 5
    assert page.count(f'<style nonce="{nonce}"') == page.count("<svg")
    assert "Needs server access" in page  # the top escalation reason


def test_every_link_of_the_dashboard_lists_as_many_tickets_as_it_says(
    week: History,  # noqa: F811
) -> None:
    client = signed_in(week.cast.manager)
    page = client.get(PAGE, THE_WEEK).content.decode()
    links = re.findall(r'<a (?:class="value" )?href="(/console/reports/tickets\?[^"]+)">([^<]+)<',
                       page)  # fmt: skip
    assert len(links) > 30
    for url, text in links:
        if not re.fullmatch(r"[\d,]+", text):
            continue  # a rate's link lists its numerator's tickets
        listed = client.get(unescape(url))
        assert listed.status_code == 200, url
        count = re.search(r'<span class="count">\((\d+)\)</span>', listed.content.decode())
        assert count, url
        assert count[1] == text.replace(",", ""), (unescape(url), text)


def test_filters_and_what_they_refuse(week: History) -> None:  # noqa: F811
    client = signed_in(week.cast.manager)
    narrowed = client.get(PAGE, {**THE_WEEK, "tier": "L2"})
    assert narrowed.status_code == 200
    assert tile(narrowed.content.decode(), "Resolved")[0] == "1"  # T3
    assert "Set an hourly cost" in narrowed.content.decode()
    Tier.objects.filter(code="L1").update(hourly_cost=40, handling_minutes=15)  # 10 a ticket
    Tier.objects.filter(code="L2").update(hourly_cost=80, handling_minutes=45)  # 60
    shifted = client.get(PAGE, {**THE_WEEK, "shift": "50"}).content.decode()
    # Half of the one ticket resolved in L2 (T3), at 60 - 10 less each.
    assert "Resolving 50 % of the 1 tickets resolved in L2 at L1 instead would have saved" in (
        shifted
    )
    assert "saved 25.00." in shifted
    for bad in ({"shift": "150"}, {"shift": "-1"}, {"shift": "lots"},
                {"from": "2026-03-07", "to": "2026-03-01"}, {"from": "1900-01-01"},
                {"from": "yesterday"}, {"tier": "L9"}, {"organization": "GLOBEX"},
                {"from": "2020-01-01", "to": "2026-01-01"}):  # fmt: skip
        r = client.get(PAGE, {**THE_WEEK, **bad})
        assert r.status_code == 422, bad
        assert 'class="error"' in r.content.decode() or "form-error" in r.content.decode(), bad
    drill = "/console/reports/tickets"
    assert client.get(drill, {**THE_WEEK, "metric": "nope"}).status_code == 422
    assert client.get(drill, {**THE_WEEK, "metric": "created", "after": "x"}).status_code == 422
    assert client.get(drill, {"organization": "GLOBEX", "metric": "created"}).status_code == 404
    assert client.get(drill, {"organization": "AC\x00ME", "metric": "created"}).status_code == 404
    for bad in ({"by": "score", "value": "abc", "metric": "rated"},
                {"metric": "created", "after": "9" * 25}, {"metric": "created", "tier": "L\x00"},
                {"metric": "created", "by": "tier", "value": "L\x00"},
                {"metric": "created", "category": "billing"}):  # fmt: skip
        r = client.get(drill, {**THE_WEEK, **bad})
        assert r.status_code == 422, bad
        assert "form-error" in r.content.decode(), bad


def test_only_managers_and_admins(week: History) -> None:  # noqa: F811
    for who, status in (("lena", 404), ("alice", 404), ("manager", 200), ("admin", 200)):
        r: Any = signed_in(getattr(week.cast, who)).get(PAGE, THE_WEEK)
        assert r.status_code == status, who
        r = signed_in(getattr(week.cast, who)).get(
            "/console/reports/tickets", {**THE_WEEK, "metric": "created"}
        )
        assert r.status_code == status, who
