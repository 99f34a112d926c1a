"""The agent console through Django's test client: who may open which page, what a queue
and a ticket page show, the filters' errors, and queries that do not grow with rows."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.escalation.services import escalate
from tierdesk.tickets import services as ticket_services
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import (
    RuleConditions,
    category_create,
    routing_rule_create,
    tier_by_code,
)

pytestmark = pytest.mark.django_db


def test_signed_out_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    for path in ("/", "/console/", "/console/queue/l1", "/console/tickets/ACME-1"):
        r = Client().get(path)
        assert r.status_code == 302, path
        assert r["Location"].startswith("/login"), path


def test_requesters_find_no_console(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    client = signed_in(cast.alice)
    for path in ("/console/", "/console/queue/l1", f"/console/tickets/{ticket.key}"):
        assert client.get(path).status_code == 404, path


def test_an_agent_lands_on_their_tier_queue_and_sees_only_served_organizations(
    cast: Cast,
) -> None:
    mine = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops every hour")
    other = make_ticket(cast.gus, cast.globex, cast.gerd, subject="Globex only")
    client = signed_in(cast.lena)
    r = client.get("/console/")
    assert r.status_code == 302
    assert r["Location"] == "/console/queue/l1"
    page = client.get("/console/queue/l1").content.decode()
    assert mine.key in page
    assert "VPN drops every hour" in page
    assert other.key not in page
    assert "Globex only" not in page
    # the nav counts what this agent may see: one ticket in L1, one unassigned
    assert re.search(r'L1 queue <span class="count" aria-label="1 tickets">1</span>', page)


def test_column_headers_sort_the_queue_and_keep_the_filters(cast: Cast) -> None:
    keys = [
        make_ticket(cast.lena, cast.acme, cast.alice, subject=f"Printer {n}", urgency=u).key
        for n, u in ((1, 3), (2, 1), (3, 2))
    ]
    client = signed_in(cast.lena)

    def order(query: str) -> list[str]:
        page = client.get(f"/console/queue/l1?{query}").content.decode()
        return [k for k in re.findall(r"data-row-link>([A-Z]+-\d+)<", page) if k in keys]

    def header(query: str, title: str) -> tuple[str | None, str]:
        page = client.get(f"/console/queue/l1?{query}").content.decode()
        m = re.search(
            r'<th scope="col"(?: aria-sort="(\w+)")?><a class="sort" href="([^"]+)">' + title,
            page,
        )
        assert m, title
        return m.group(1), m.group(2).replace("&amp;", "&")

    assert order("") == keys[::-1]  # newest first by default
    state, href = header("text=printer", "Created")
    assert state == "descending"
    assert sorted(href[1:].split("&")) == ["sort=created_at", "text=printer"]
    assert order(href[1:]) == keys
    state, href = header("text=printer", "Priority")
    assert state is None
    assert order(href[1:]) == [keys[1], keys[2], keys[0]]  # P-high first
    state, href = header(href[1:], "Priority")
    assert state == "ascending"
    assert order(href[1:]) == [keys[0], keys[2], keys[1]]
    assert header(href[1:], "Priority")[0] == "descending"


def test_another_organizations_ticket_is_not_found(cast: Cast) -> None:
    other = make_ticket(cast.gus, cast.globex, cast.gerd)
    assert signed_in(cast.lena).get(f"/console/tickets/{other.key}").status_code == 404
    assert signed_in(cast.omar).get(f"/console/tickets/{other.key}").status_code == 200


def test_the_ticket_page_shows_the_handoff_and_keeps_notes_apart(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="Mailbox full")
    ticket_services.ticket_comment(
        actor=cast.lena, ticket=ticket, body="Customer can hear us", internal=False
    )
    ticket_services.ticket_comment(
        actor=cast.lena, ticket=ticket, body="Quota is set by hand", internal=True
    )
    escalate(
        actor=cast.lena,
        ticket=ticket,
        to_tier=tier_by_code("L2"),
        reason="needs Exchange admin rights",
        handoff_note="cleared the cache, checked the quota",
    )
    page = signed_in(cast.omar).get(f"/console/tickets/{ticket.key}").content.decode()
    assert "Mailbox full" in page
    assert "needs Exchange admin rights" in page
    assert "cleared the cache, checked the quota" in page
    assert re.search(r'class="entry entry-internal_note internal">', page)
    assert "Quota is set by hand" in page
    assert "Customer can hear us" in page


def test_markup_in_a_subject_shows_as_text(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="<script>alert(1)</script>")
    client = signed_in(cast.lena)
    for path in ("/console/queue/l1", f"/console/tickets/{ticket.key}"):
        page = client.get(path).content.decode()
        assert "<script>alert(1)</script>" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


def test_bad_filters_are_shown_beside_the_field_and_kept(cast: Cast) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    r = signed_in(cast.lena).get("/console/queue/l1", {"organization": "GLOBEX", "text": "vpn"})
    page = r.content.decode()
    assert r.status_code == 200
    assert 'id="id_organization-error"' in page
    assert 'value="vpn"' in page  # what was typed stays
    assert "Fix the filters above" in page


def _keys(page: str) -> set[str]:
    return set(re.findall(r'<a href="/console/tickets/([A-Z]+-\d+)"', page))


def test_queue_filters_by_category_assignee_and_tags(cast: Cast) -> None:
    # the first rule that matches applies
    routing_rule_create(
        actor=cast.admin,
        name="vip",
        conditions=RuleConditions(keywords=["ceo"]),
        tags=["vip", "network"],
    )
    routing_rule_create(
        actor=cast.admin,
        name="network",
        conditions=RuleConditions(keywords=["vpn", "wifi"]),
        tags=["network"],
    )
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    vpn = make_ticket(cast.lena, cast.acme, cast.alice, subject="CEO VPN down")
    wifi = make_ticket(cast.lena, cast.acme, cast.alice, subject="wifi weak", assignee=cast.lena)
    laptop = make_ticket(cast.lena, cast.acme, cast.bob, subject="Laptop", category=hardware)
    client = signed_in(cast.lena)

    def keys(**query: str) -> set[str]:
        r = client.get("/console/queue/l1", query)
        assert r.status_code == 200
        assert "-error" not in r.content.decode()
        return _keys(r.content.decode())

    assert keys() == {vpn.key, wifi.key, laptop.key}
    assert keys(tags="network") == {vpn.key, wifi.key}
    assert keys(tags=" VIP , network ") == {vpn.key}  # every tag, any case and spacing
    assert keys(category=str(hardware.pk)) == {laptop.key}
    assert keys(assignee="me") == {wifi.key}
    assert keys(assignee="none") == {vpn.key, laptop.key}
    assert keys(assignee=str(cast.lena.pk), tags="network") == {wifi.key}
    # the queue that fixes the assignee offers no assignee filter
    mine = client.get("/console/queue/mine").content.decode()
    assert 'id="id_assignee"' not in mine
    assert 'id="id_tags"' in mine


def test_filters_outside_what_the_agent_sees_are_refused(cast: Cast) -> None:
    globex_only = category_create(
        actor=cast.admin,
        organization=cast.globex,
        slug="globex-erp",
        name="Globex ERP",
        default_tier=tier_by_code("L1"),
    )
    client = signed_in(cast.lena)  # serves ACME only
    for field, value in (
        ("category", str(globex_only.pk)),
        ("assignee", str(cast.gus.pk)),  # serves GLOBEX only: not Lena's colleague
        ("tags", ",".join(f"t{i}" for i in range(11))),
        ("tags", "x" * 51),
    ):
        page = client.get("/console/queue/l1", {field: value}).content.decode()
        assert f'id="id_{field}-error"' in page, (field, value)
        assert "Fix the filters above" in page
    page = client.get("/console/queue/l1").content.decode()
    assert "Globex ERP" not in page


def test_unknown_queue_is_not_found(cast: Cast) -> None:
    assert signed_in(cast.lena).get("/console/queue/l9").status_code == 404


def test_pages_send_a_strict_content_security_policy(cast: Cast) -> None:
    r = signed_in(cast.lena).get("/console/queue/l1")
    policy = r["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert "script-src 'self' 'nonce-" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
    page = r.content.decode()
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts
    assert all(f'nonce="{nonce[1]}"' in s for s in scripts)
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers
    assert not re.search(r"\sstyle=", page)
    assert r["X-Frame-Options"] == "DENY"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Cross-Origin-Opener-Policy"] == "same-origin"


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_queue_page_queries_do_not_grow_with_the_rows(cast: Cast) -> None:
    client = signed_in(cast.omar)
    for _ in range(3):
        make_ticket(cast.omar, cast.acme, cast.alice)
    _queries(client, "/console/queue/l1")  # warm: the configuration caches
    few = _queries(client, "/console/queue/l1")
    for i in range(30):
        make_ticket(
            cast.omar, cast.acme if i % 2 else cast.globex, cast.alice if i % 2 else cast.gerd
        )
    assert _queries(client, "/console/queue/l1") == few


def test_ticket_page_queries_do_not_grow_with_the_timeline(cast: Cast) -> None:
    client = signed_in(cast.omar)
    ticket = make_ticket(cast.omar, cast.acme, cast.alice)
    _queries(client, f"/console/tickets/{ticket.key}")  # warm: the configuration caches
    few = _queries(client, f"/console/tickets/{ticket.key}")
    for i in range(40):
        ticket_services.ticket_comment(
            actor=cast.omar, ticket=ticket, body=f"note {i}", internal=bool(i % 2)
        )
    assert _queries(client, f"/console/tickets/{ticket.key}") == few
