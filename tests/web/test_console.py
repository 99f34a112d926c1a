"""The agent console through Django's test client: who may open which page, what a queue
and a ticket page show (SLA badges, the SLA queues, the side column, the timeline), the
filters and their errors, and queries that do not grow with rows."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.escalation.services import de_escalate, escalate
from tierdesk.sla import clocks as sla_clocks
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as ticket_services
from tierdesk.tickets.models import Ticket, TimelineEntry
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
        """The column's aria-sort state and the query its link asks for (on the queue)."""
        page = client.get(f"/console/queue/l1?{query}").content.decode()
        m = re.search(
            r'<th scope="col"(?: aria-sort="(\w+)")?><a class="sort" href="([^"]+)">' + title,
            page,
        )
        assert m, title
        path, _, linked = m.group(2).replace("&amp;", "&").partition("?")
        assert path == "/console/queue/l1"
        return m.group(1), linked

    assert order("") == keys[::-1]  # newest first by default
    state, href = header("text=printer", "Created")
    assert state == "descending"
    assert sorted(href.split("&")) == ["sort=created_at", "text=printer"]
    assert order(href) == keys
    state, href = header("text=printer", "Priority")
    assert state is None
    assert order(href) == [keys[1], keys[2], keys[0]]  # P-high first
    state, href = header(href, "Priority")
    assert state == "ascending"
    assert order(href) == [keys[0], keys[2], keys[1]]
    assert header(href, "Priority")[0] == "descending"


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


def _control(page: str, name: str, form_id: str = "id") -> str:
    """The opening tag of the input or select named ``name`` (with the id ``form_id``_name)."""
    m = re.search(rf'<(?:input|select)\b[^>]*\bid="{form_id}_{name}"[^>]*>', page)
    assert m, name
    return m.group(0)


def test_bad_filters_are_shown_beside_the_field_and_kept(cast: Cast) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    r = signed_in(cast.lena).get("/console/queue/l1", {"organization": "GLOBEX", "text": "vpn"})
    page = r.content.decode()
    assert r.status_code == 200
    assert re.search(r'<p class="error" id="id_organization_error">Select a valid choice', page)
    assert 'value="vpn"' in page  # what was typed stays
    assert "Fix the filters above" in page


def test_screen_readers_hear_a_filters_error_and_help_with_the_field(cast: Cast) -> None:
    client = signed_in(cast.lena)
    page = client.get("/console/queue/l1").content.decode()
    tags = _control(page, "tags")
    assert 'aria-describedby="id_tags_helptext"' in tags
    assert 'id="id_tags_helptext"' in page
    assert "aria-invalid" not in tags
    assert "aria-describedby" not in _control(page, "organization")
    page = client.get(
        "/console/queue/l1", {"organization": "GLOBEX", "tags": ",".join("abcdefghijkl")}
    ).content.decode()
    organization = _control(page, "organization")
    assert 'aria-describedby="id_organization_error"' in organization
    assert 'aria-invalid="true"' in organization
    tags = _control(page, "tags")
    assert 'aria-describedby="id_tags_helptext id_tags_error"' in tags
    assert re.search(r'<p class="error" id="id_tags_error">At most 10 tags.</p>', page)
    # every id a field points at is on the page, once
    for target in re.findall(r'aria-describedby="([^"]+)"', page):
        for one in target.split():
            assert page.count(f'id="{one}"') == 1, one


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
        assert 'class="error"' not in r.content.decode()
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
        assert f'id="id_{field}_error"' in page, (field, value)
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


def _captured(client: Client, path: str, **headers: str) -> list[str]:
    """The SQL of one GET of ``path`` (which must answer 200)."""
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path, headers=headers).status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def _queries(client: Client, path: str) -> int:
    return len(_captured(client, path))


def _busy_queue(cast: Cast, count: int) -> None:
    """``count`` tickets of both organizations in L1, with what rows show: tags, SLA
    clocks, a category, an assignee."""
    routing_rule_create(
        actor=cast.admin, name="vpn", conditions=RuleConditions(keywords=["vpn"]), tags=["net"]
    )
    calendar = calendar_create(
        actor=None, name="all-hours", title="All hours", time_zone="UTC", always_open=True
    )
    sla_policy_create(
        actor=None, name="default", calendar=calendar, targets=[Target("P3", 60, 480)]
    )
    hardware = category_for_organization(cast.acme, "hardware")
    for i in range(count):
        acme = i % 2 == 0
        make_ticket(
            cast.omar,
            cast.acme if acme else cast.globex,
            cast.alice if acme else cast.gerd,
            subject=f"VPN {i}" if i % 3 else f"Printer {i}",
            priority="P3",
            category=hardware if acme else None,
            assignee=cast.lena if acme and i % 4 == 0 else None,
        )


def test_queue_page_queries_do_not_grow_with_the_rows(cast: Cast) -> None:
    client = signed_in(cast.omar)
    _busy_queue(cast, 3)
    _queries(client, "/console/queue/l1")  # warm: the configuration caches
    few = _queries(client, "/console/queue/l1")
    for i in range(30):
        make_ticket(
            cast.omar,
            cast.acme if i % 2 else cast.globex,
            cast.alice if i % 2 else cast.gerd,
            subject=f"VPN again {i}",
            priority="P3",
        )
    assert _queries(client, "/console/queue/l1") == few
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    filtered = (
        f"/console/queue/l1?organization=ACME&assignee={cast.lena.pk}&category={hardware.pk}"
        "&priority=P3"
    )
    assert _queries(client, filtered) == few


def test_a_queue_page_makes_twelve_queries_and_its_live_refresh_nine(cast: Cast) -> None:
    client = signed_in(cast.omar)
    _busy_queue(cast, 12)
    _queries(client, "/console/queue/l1")  # warm: the configuration caches
    page = _captured(client, "/console/queue/l1")
    # 1 the session, 2 the user, 3 the configuration token (config.pinned); 4 the page of
    # tickets (requester, assignee, category joined), 5-7 their organizations, tags and SLA
    # clocks (load_related); 8 the count of every queue, in one query; 9 the saved views
    # (nav); 10-12 the organizations, categories and colleagues the filter and bulk forms
    # offer, each read once however often the forms walk them.
    assert len(page) == 12, "\n".join(page)
    assert sum('FROM "core_user"' in q and "DISTINCT" in q for q in page) == 1, "colleagues"
    assert sum('FROM "tiers_category"' in q for q in page) == 1, "categories"
    # The live refresh sends the rows only: no form is shown, so no choices are read.
    rows = _captured(client, "/console/queue/l1", HX_Request="true", HX_Target="queue-rows")
    assert len(rows) == 9, "\n".join(rows)
    # Filters that need checking read each of their choices once, for the check.
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    filtered = f"/console/queue/l1?organization=ACME&category={hardware.pk}&assignee={cast.lena.pk}"
    assert len(_keys(client.get(filtered).content.decode())) == 3  # rows to load
    assert len(_captured(client, filtered)) == 12
    refreshed = _captured(client, filtered, HX_Request="true", HX_Target="queue-rows")
    assert len(refreshed) == 12, "\n".join(refreshed)


def _fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


def _mixed_timeline(cast: Cast, ticket: Ticket, rounds: int) -> None:
    """Every kind of timeline entry, ``rounds`` times: replies, notes, files, field and
    status changes, escalations and de-escalations with their notes, links, a merge."""
    hardware = category_for_organization(cast.acme, "hardware")
    other = make_ticket(cast.omar, cast.acme, cast.bob, subject="Same printer, other floor")
    for i in range(rounds):
        ticket_services.ticket_comment(actor=cast.omar, ticket=ticket, body=f"reply {i}")
        ticket_services.ticket_comment(
            actor=cast.omar, ticket=ticket, body=f"note {i}", internal=True
        )
        ticket_services.attachment_add(
            actor=cast.omar,
            ticket=ticket,
            filename=f"log{i}.txt",
            content=b"x",
            internal=bool(i % 2),
        )
        ticket_services.ticket_update(
            actor=cast.omar,
            ticket=_fresh(ticket),
            priority="P1" if i % 2 else "P2",
            category=None if i % 2 else hardware,
            assignee=cast.lena if i % 2 else cast.omar,
        )
        ticket_services.ticket_transition(
            actor=cast.omar,
            ticket=_fresh(ticket),
            to_status="pending_customer" if i % 2 else "in_progress",
        )
        escalate(
            actor=cast.omar,
            ticket=_fresh(ticket),
            to_tier=tier_by_code("L2"),
            reason=f"reason {i}",
            handoff_note=f"tried {i}",
        )
        de_escalate(actor=cast.omar, ticket=_fresh(ticket), to_tier=tier_by_code("L1"), note="ok")
        link = ticket_services.ticket_link(
            actor=cast.omar, ticket=_fresh(ticket), other=_fresh(other), kind="related_to"
        )
        ticket_services.ticket_unlink(actor=cast.omar, ticket=_fresh(ticket), link_id=link.pk)
    duplicate = make_ticket(cast.omar, cast.acme, cast.alice, subject="Printer again")
    ticket_services.ticket_merge(actor=cast.omar, source=duplicate, target=_fresh(ticket))
    ticket_services.ticket_link(
        actor=cast.omar, ticket=_fresh(ticket), other=_fresh(other), kind="caused_by"
    )


def test_ticket_page_queries_do_not_grow_with_the_timeline(cast: Cast) -> None:
    client = signed_in(cast.omar)
    ticket = make_ticket(cast.omar, cast.acme, cast.alice)
    _mixed_timeline(cast, ticket, 1)
    path = f"/console/tickets/{ticket.key}"
    _queries(client, path)  # warm: the configuration caches
    few = _queries(client, path)
    before = TimelineEntry.objects.filter(ticket=ticket).count()
    _mixed_timeline(cast, ticket, 6)
    after = TimelineEntry.objects.filter(ticket=ticket)
    assert after.count() > before + 50
    kinds = set(after.values_list("kind", flat=True))
    assert kinds >= {
        "created", "routed", "comment", "internal_note", "attachment", "field_changed",
        "status_changed", "escalated", "de_escalated", "linked", "unlinked", "merged",
    }  # fmt: skip
    assert _queries(client, path) == few


def test_a_ticket_page_makes_twenty_one_queries(cast: Cast) -> None:
    client = signed_in(cast.omar)
    ticket = make_ticket(cast.omar, cast.acme, cast.alice)
    _mixed_timeline(cast, ticket, 2)
    path = f"/console/tickets/{ticket.key}"
    _queries(client, path)  # warm: the configuration caches
    page = _captured(client, path)
    # 1 the session, 2 the user, 3 the configuration token; 4 the ticket (organization,
    # requester, assignee, tier, category joined), 5-7 its organization, tags and SLA
    # clocks (load_related); 8 the timeline (actors and comments joined), 9 the
    # attachments, 10-11 the requester's other open tickets and the organization's recent
    # ones, 12 the next ticket in the queue; 13 the staff the assignee field offers; 14 the
    # saved views (nav); 15 the linked tickets. The knowledge base panel: 16-17 the
    # agent's tier and served organizations (the reader's scope), 18 the search, 19 those
    # articles and the ones used on the ticket, with their uses. The account actions panel:
    # 20 the organization's directory, 21 the runs on the ticket.
    assert len(page) == 21, "\n".join(page)


# --- SLA badges and the SLA queues ---------------------------------------------------------

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def _at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def clocks_in_every_state(cast: Cast) -> dict[str, Ticket]:
    """Five P2 tickets of ACME, seen at T0 under a round-the-clock contract (first
    response 60 min, warning at 75 %; next update 120; resolution 240), one per state of
    their first-response clock: running, warning, breached, paused, met."""
    calendar = calendar_create(
        actor=None, name="all-hours", title="All hours", time_zone="UTC", always_open=True
    )
    sla_policy_create(
        actor=None,
        name="ACME gold",
        organization=cast.acme,
        calendar=calendar,
        warning_percent=75,
        targets=[Target("P2", 60, 240, next_update_minutes=120)],
    )

    def opened(minutes_ago: int, subject: str) -> Ticket:
        with clock.frozen_at(_at(-minutes_ago)):
            return make_ticket(cast.lena, cast.acme, cast.alice, subject=subject, priority="P2")

    tickets = {
        "running": opened(10, "Running"),
        "warning": opened(50, "Past the warning"),
        "breached": opened(70, "Past the deadline"),
        "paused": opened(30, "Waiting for the customer"),
        "met": opened(30, "Answered"),
    }
    with clock.frozen_at(_at(-20)):
        ticket_services.ticket_transition(
            actor=cast.lena, ticket=tickets["paused"], to_status="pending_customer"
        )
        ticket_services.ticket_comment(actor=cast.lena, ticket=tickets["met"], body="On it.")
    with clock.frozen_at(T0):
        counts = sla_clocks.sweep()
    # the breached one passed its warning too
    assert (counts["warned"], counts["breached"]) == (2, 1)
    return tickets


def _badges(html_part: str) -> list[tuple[str, str]]:
    return re.findall(r'<span class="sla sla-(\w+)"[^>]*>([^<]+)</span>', html_part)


def _row(page: str, key: str) -> str:
    """The queue row of ``key``."""
    m = re.search(rf"<tr\b(?:(?!</tr>).)*data-row-link>{key}<.*?</tr>", page, re.DOTALL)
    assert m, key
    return m.group(0)


def test_sla_badges_show_time_left_the_warning_a_pause_met_and_breached(
    cast: Cast, clocks_in_every_state: dict[str, Ticket]
) -> None:
    shown = {
        "running": [
            ("running", "first response: 50 min left"),
            ("running", "resolution: 3 h 50 min left"),
        ],
        "warning": [
            ("warning", "first response: 10 min left"),
            ("running", "resolution: 3 h 10 min left"),
        ],
        "breached": [
            ("breached", "first response: breached"),
            ("running", "resolution: 2 h 50 min left"),
        ],
        "paused": [("paused", "first response: paused"), ("paused", "resolution: paused")],
        "met": [
            ("met", "first response: met"),
            ("running", "next update: 1 h 40 min left"),
            ("running", "resolution: 3 h 30 min left"),
        ],
    }
    client = signed_in(cast.lena)
    with clock.frozen_at(T0):
        queue = client.get("/console/queue/l1").content.decode()
        for state, ticket in clocks_in_every_state.items():
            assert _badges(_row(queue, ticket.key)) == shown[state], state
            page = client.get(f"/console/tickets/{ticket.key}").content.decode()
            facts = re.search(r"<dt>SLA</dt><dd>(.*?)</dd>", page, re.DOTALL)
            assert facts, state
            assert _badges(facts.group(1)) == shown[state], state
    # the warning state is the amber one
    css = Path(str(finders.find("web/app.css"))).read_text()
    assert re.search(r"\.sla-warning \{[^}]*background: var\(--warn-bg\)", css)
    assert re.search(r"\.sla-breached \{[^}]*var\(--danger\)", css)


def test_a_ticket_without_a_contract_says_no_sla(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    page = signed_in(cast.lena).get(f"/console/tickets/{ticket.key}").content.decode()
    assert re.search(r'<dt>SLA</dt><dd>\s*<span class="muted">no SLA</span></dd>', page)


def test_breaching_soon_and_breached_queues_follow_the_clocks(
    cast: Cast, clocks_in_every_state: dict[str, Ticket]
) -> None:
    t = clocks_in_every_state
    client = signed_in(cast.lena)

    def queue(slug: str) -> tuple[set[str], str]:
        page = client.get(f"/console/queue/{slug}").content.decode()
        return _keys(page), page

    with clock.frozen_at(T0):
        # due within the hour, not breached, not paused: the first responses of two
        soon, page = queue("breaching")
        assert soon == {t["running"].key, t["warning"].key}
        assert 'Breaching soon <span class="count" aria-label="2 tickets">2</span>' in page
        assert 'Breached <span class="count" aria-label="1 tickets">1</span>' in page
        assert queue("breached")[0] == {t["breached"].key}
    with clock.frozen_at(_at(45)):
        sla_clocks.sweep()  # the warning one breaches at +10
        # running's first response (+50) and met's next update (+100) are within the hour
        assert queue("breaching")[0] == {t["running"].key, t["met"].key}
        assert queue("breached")[0] == {t["breached"].key, t["warning"].key}
    # a breached ticket that is resolved leaves the queue
    ticket_services.ticket_transition(
        actor=cast.lena, ticket=_fresh(t["breached"]), to_status="resolved",
        resolution_code="fixed", resolution_note="done",
    )  # fmt: skip
    with clock.frozen_at(_at(46)):
        assert queue("breached")[0] == {t["warning"].key}


def _listed(client: Client, **query: str) -> set[str]:
    r = client.get("/console/queue/l1", query)
    assert r.status_code == 200
    assert 'class="error"' not in r.content.decode()
    return _keys(r.content.decode())


def test_queue_filters_by_priority_and_status(cast: Cast) -> None:
    urgent = make_ticket(cast.lena, cast.acme, cast.alice, subject="Server down", priority="P1")
    normal = make_ticket(cast.lena, cast.acme, cast.alice, priority="P3")
    working = make_ticket(cast.lena, cast.acme, cast.bob, priority="P3")
    ticket_services.ticket_transition(actor=cast.lena, ticket=working, to_status="in_progress")
    waiting = make_ticket(cast.lena, cast.acme, cast.bob, priority="P1")
    ticket_services.ticket_transition(actor=cast.lena, ticket=waiting, to_status="pending_customer")
    done = make_ticket(cast.lena, cast.acme, cast.bob, priority="P1")
    ticket_services.ticket_transition(
        actor=cast.lena, ticket=done, to_status="resolved", resolution_code="fixed",
        resolution_note="rebooted",
    )  # fmt: skip
    client = signed_in(cast.lena)
    assert _listed(client) == {urgent.key, normal.key, working.key, waiting.key}  # open ones
    assert _listed(client, priority="P1") == {urgent.key, waiting.key}
    assert _listed(client, priority="P3") == {normal.key, working.key}
    assert _listed(client, priority="P2") == set()
    assert _listed(client, status="in_progress") == {working.key}
    assert _listed(client, status="pending_customer", priority="P1") == {waiting.key}
    assert _listed(client, status="resolved") == {done.key}  # asked for: shown
    for field, value in (("priority", "P9"), ("status", "gone")):
        page = client.get("/console/queue/l1", {field: value}).content.decode()
        assert f'id="id_{field}_error"' in page, field
        assert "Fix the filters above" in page


# --- The ticket page's side column and timeline ------------------------------------------


def _side(page: str, title: str) -> list[str]:
    m = re.search(rf"<section><h2>{re.escape(title)}</h2>(.*?)</section>", page, re.DOTALL)
    assert m, title
    return re.findall(r'<a href="/console/tickets/([A-Z]+-\d+)">', m.group(1))


def test_the_side_column_lists_the_requesters_open_and_the_organizations_recent_tickets(
    cast: Cast,
) -> None:
    older = make_ticket(cast.lena, cast.acme, cast.alice, subject="Old printer")
    solved = make_ticket(cast.lena, cast.acme, cast.alice, subject="Solved one")
    ticket_services.ticket_transition(
        actor=cast.lena, ticket=solved, to_status="resolved", resolution_code="fixed",
        resolution_note="done",
    )  # fmt: skip
    bobs = make_ticket(cast.lena, cast.acme, cast.bob, subject="Bob's laptop")
    make_ticket(cast.omar, cast.globex, cast.gerd, subject="Globex only")
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="The one open")
    page = signed_in(cast.omar).get(f"/console/tickets/{ticket.key}").content.decode()
    # open ones only, never the ticket itself
    assert _side(page, "Requester's other open tickets") == [older.key]
    # newest first, open or not, this organization only
    assert _side(page, "Recent at ACME") == [bobs.key, solved.key, older.key]
    assert "Globex only" not in page
    alone = make_ticket(cast.omar, cast.globex, cast.gerd, subject="Alone")
    page = signed_in(cast.gus).get(f"/console/tickets/{alone.key}").content.decode()
    recent = _side(page, "Recent at GLOBEX")
    assert len(recent) == 1  # the Globex-only one
    assert _side(page, "Requester's other open tickets") == recent
    bare = make_ticket(cast.lena, cast.acme, cast.carol, subject="Carol's first")
    page = signed_in(cast.lena).get(f"/console/tickets/{bare.key}").content.decode()
    assert re.search(
        r"<h2>Requester's other open tickets</h2>\s*<p class=\"muted\">None.</p>", page
    )


def _timeline(page: str) -> list[tuple[str, str, str, str]]:
    """Each timeline entry as (kind, label, who, what it says), in order."""
    out = []
    for kind, body in re.findall(r'<li class="entry entry-(\w+)[^"]*">(.*?)</li>', page, re.DOTALL):
        meta, _, rest = body.partition("</p>")
        words = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", x)).split()) for x in (meta, rest)]
        label, who, _ = (w.strip() for w in words[0].split("·"))
        out.append((kind, label, who, words[1]))
    return out


def test_the_timeline_shows_the_routing_decision_and_field_changes(cast: Cast) -> None:
    rule = routing_rule_create(
        actor=cast.admin,
        name="vpn to network",
        conditions=RuleConditions(keywords=["vpn"]),
        tier=tier_by_code("L2"),
    )
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN down", priority="P3")
    ticket_services.ticket_update(actor=cast.omar, ticket=ticket, priority="P1")
    ticket_services.ticket_transition(actor=cast.omar, ticket=_fresh(ticket), to_status="open")
    page = signed_in(cast.omar).get(f"/console/tickets/{ticket.key}").content.decode()
    entries = _timeline(page)
    assert entries[0] == ("created", "Created", "Lena", "")
    assert (
        "routed",
        "Routed",
        "tierdesk",
        f"tier: rule 'vpn to network' (#{rule.pk}) routed to L2",
    ) in entries
    assert ("field_changed", "Field changed", "Omar", "priority: P3 → P1") in entries
    assert ("status_changed", "Status changed", "Omar", "status: new → open") in entries
    assert "<dt>Tier</dt><dd>L2 — " in page
