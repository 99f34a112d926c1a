"""The self-service portal through the test client: requesters open, follow, reply to,
reopen and rate their own tickets, and never see what is internal."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.core.services import user_update
from tierdesk.escalation.services import escalate
from tierdesk.sla import clocks
from tierdesk.sla.models import SlaPolicy
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services
from tierdesk.tickets.models import Attachment, SatisfactionRating, Ticket
from tierdesk.tiers.queries import categories_for_organization, category_for_organization
from tierdesk.tiers.services import category_update, tier_by_code

pytestmark = pytest.mark.django_db


def resolved(cast: Cast, ticket: Ticket) -> Ticket:
    return services.ticket_transition(
        actor=cast.lena,
        ticket=ticket,
        to_status="resolved",
        resolution_code="fixed",
        resolution_note="Replaced the toner",
    )


def test_a_requester_lands_in_the_portal_and_staff_do_not(cast: Cast) -> None:
    assert signed_in(cast.alice).get("/")["Location"] == "/portal/"
    assert signed_in(cast.lena).get("/portal/").status_code == 404


def test_opening_a_ticket_by_category_with_a_file(cast: Cast) -> None:
    client = signed_in(cast.alice)
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    shot = SimpleUploadedFile("printer.png", b"\x89PNG....", content_type="image/png")
    r = client.post(
        "/portal/new",
        {
            "category": hardware.pk,
            "subject": "Printer jams",
            "description": "Every second page since Monday",
            "urgency": "1",
            "attachments": [shot],
        },
    )
    assert r.status_code == 302
    ticket = Ticket.objects.get(subject="Printer jams")
    assert r["Location"] == f"/portal/tickets/{ticket.key}"
    assert (ticket.requester, ticket.category, ticket.source, ticket.urgency) == (
        cast.alice,
        hardware,
        "portal",
        1,
    )
    assert [a.filename for a in Attachment.objects.filter(ticket=ticket)] == ["printer.png"]


def test_a_bad_new_ticket_shows_the_errors_and_keeps_the_text(cast: Cast) -> None:
    client = signed_in(cast.alice)
    bad = SimpleUploadedFile("page.html", b"<script>", content_type="text/html")
    r = client.post(
        "/portal/new",
        {
            "category": "",
            "subject": "",
            "description": "It beeps",
            "urgency": "2",
            "attachments": [bad],
        },
    )
    page = r.content.decode()
    assert r.status_code == 422
    assert page.count("This field is required.") == 2  # category and subject
    assert "page.html: files of type .html are not accepted." in page
    assert "It beeps</textarea>" in page
    assert not Ticket.objects.exists()


def test_the_category_decides_the_questions_asked(cast: Cast) -> None:
    category_update(
        actor=cast.admin,
        category=category_for_organization(cast.acme, "hardware"),  # type: ignore[arg-type]
        form_fields=[
            {"key": "asset", "label": "Asset tag", "type": "text", "required": True},
            {"key": "since", "label": "Since when?", "type": "date", "help": "<b>x</b><img src=x>"},
        ],
    )
    hardware = category_for_organization(cast.acme, "hardware")
    other = next(c for c in categories_for_organization(cast.acme) if c.slug != "hardware")
    client = signed_in(cast.alice)
    # choosing the category (HTMX) brings its questions; another category has none
    r = client.get(
        f"/portal/new?category={hardware.pk}",  # type: ignore[union-attr]
        headers={"HX-Request": "true", "HX-Target": "category-questions"},
    )
    fragment = r.content.decode()
    assert fragment.lstrip().startswith('<div id="category-questions"')
    assert 'name="details.asset"' in fragment
    assert "Since when?" in fragment
    assert "&lt;b&gt;x&lt;/b&gt;&lt;img src=x&gt;" in fragment  # a hint is text, never markup
    assert "<img src=x>" not in fragment
    r = client.get(
        f"/portal/new?category={other.pk}",
        headers={"HX-Request": "true", "HX-Target": "category-questions"},
    )
    assert "details." not in r.content.decode()
    # a required answer missing: refused beside the question, the rest kept
    typed = {
        "category": hardware.pk,  # type: ignore[union-attr]
        "subject": "Laptop fan loud",
        "description": "Since the update",
        "urgency": "2",
        "details.since": "yesterday",
    }
    r = client.post("/portal/new", typed)
    page = r.content.decode()
    assert r.status_code == 422
    assert re.search(r'name="details.asset"[^>]*required', page)
    assert "This field is required." in page
    assert 'value="yesterday"' in page
    assert 'value="Laptop fan loud"' in page
    assert not Ticket.objects.exists()
    # the service's own check reaches the field too (a date the form let through)
    r = client.post("/portal/new", typed | {"details.asset": "LT-0042"})
    assert r.status_code == 422
    assert "a date as YYYY-MM-DD" in r.content.decode()
    assert not Ticket.objects.exists()
    r = client.post("/portal/new", typed | {"details.asset": "LT-0042", "details.since": ""})
    assert r.status_code == 302
    ticket = Ticket.objects.get()
    assert ticket.details == {"asset": "LT-0042"}
    page = client.get(r["Location"]).content.decode()
    assert "<dt>Asset tag</dt><dd>LT-0042</dd>" in page
    page = signed_in(cast.lena).get(f"/console/tickets/{ticket.key}").content.decode()
    assert "<dt>Asset tag</dt><dd>LT-0042</dd>" in page


def test_another_organizations_category_is_refused(cast: Cast) -> None:
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    r = signed_in(cast.alice).post(
        "/portal/new", {"category": "99999", "subject": "x", "description": "y", "urgency": "2"}
    )
    assert r.status_code == 422
    assert not Ticket.objects.exists()


def test_the_requester_sees_no_internal_note_tier_or_routing(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    services.ticket_comment(actor=cast.lena, ticket=ticket, body="Try the other tray")
    services.ticket_comment(
        actor=cast.lena, ticket=ticket, body="SECRET: user breaks it weekly", internal=True
    )
    services.attachment_add(
        actor=cast.lena, ticket=ticket, filename="internal.txt", content=b"x", internal=True
    )
    escalate(
        actor=cast.lena,
        ticket=ticket,
        to_tier=tier_by_code("L2"),
        reason="ESCALATION-REASON",
        handoff_note="HANDOFF-NOTE",
    )
    page = signed_in(cast.alice).get(f"/portal/tickets/{ticket.key}").content.decode()
    # what the page shows, without tags and attribute values (a random CSRF token may well
    # contain "L2")
    text = re.sub(r"<[^>]*>", " ", page)
    assert "Try the other tray" in text
    for hidden in ("SECRET", "internal.txt", "ESCALATION-REASON", "HANDOFF-NOTE", "routed"):
        assert hidden not in page, hidden
    assert not re.search(r"\bL[123]\b", text)  # no tier


def test_other_requesters_tickets_are_not_found_unless_the_role_allows(cast: Cast) -> None:
    bobs = make_ticket(cast.bob, cast.acme)
    assert signed_in(cast.alice).get(f"/portal/tickets/{bobs.key}").status_code == 404
    assert signed_in(cast.carol).get(f"/portal/tickets/{bobs.key}").status_code == 200
    assert signed_in(cast.gerd).get(f"/portal/tickets/{bobs.key}").status_code == 404
    listed = signed_in(cast.alice).get("/portal/?show=all").content.decode()
    assert bobs.key not in listed


def test_reply_reopen_within_the_window_and_rate_once(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    client = signed_in(cast.alice)
    assert (
        client.post(
            f"/portal/tickets/{ticket.key}/reply",
            {"version": ticket.version, "body": "Still broken"},
        ).status_code
        == 302
    )
    ticket = resolved(cast, ticket)
    page = client.get(f"/portal/tickets/{ticket.key}").content.decode()
    assert "Replaced the toner" in page
    assert "Rate how we handled it" in page
    assert client.post(f"/portal/tickets/{ticket.key}/reopen").status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "open"
    ticket = resolved(cast, ticket)
    r = client.post(f"/portal/tickets/{ticket.key}/rate", {"version": ticket.version, "score": "6"})
    assert r.status_code == 422
    r = client.post(
        f"/portal/tickets/{ticket.key}/rate",
        {"version": ticket.version, "score": "4", "comment": "Quick, thanks"},
    )
    assert r.status_code == 302
    rating = SatisfactionRating.objects.get(ticket=ticket)
    assert (rating.score, rating.comment, rating.rated_by) == (4, "Quick, thanks", cast.alice)
    r = client.post(f"/portal/tickets/{ticket.key}/rate", {"version": ticket.version, "score": "1"})
    assert r.status_code in (404, 422)
    assert SatisfactionRating.objects.get(ticket=ticket).score == 4  # once
    assert (
        "You rated this ticket 4 of 5"
        in client.get(f"/portal/tickets/{ticket.key}").content.decode()
    )


def test_reopening_after_the_window_is_refused(cast: Cast, settings: object) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    with clock.frozen_at(dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)):
        ticket = resolved(cast, ticket)
    client = signed_in(cast.alice)
    assert (
        "Not solved? You can reopen"
        not in client.get(f"/portal/tickets/{ticket.key}").content.decode()
    )
    r = client.post(f"/portal/tickets/{ticket.key}/reopen", follow=True)
    assert "please open a new ticket" in r.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == "resolved"


def test_only_the_requester_rates(cast: Cast) -> None:
    ticket = resolved(cast, make_ticket(cast.alice, cast.acme))
    with pytest.raises(Exception, match="own requester"):
        services.ticket_rate(actor=cast.carol, ticket=ticket, score=5)
    with pytest.raises(Exception, match="own requester"):
        services.ticket_rate(actor=cast.lena, ticket=ticket, score=5)
    open_ticket = make_ticket(cast.alice, cast.acme)
    with pytest.raises(Exception, match="only a resolved ticket"):
        services.ticket_rate(actor=cast.alice, ticket=open_ticket, score=5)


# --- status and SLA in plain words -------------------------------------------------------------

# Monday, 09:00 UTC; the ACME contract below runs around the clock, so the times are simple.
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def contract(cast: Cast) -> SlaPolicy:
    """ACME's SLA: P2 first answer within 60 minutes, resolution within 240, 24x7. GLOBEX
    has none (and there is no MSP-wide default)."""
    always = calendar_create(
        actor=None, name="acme-24x7", title="24x7", time_zone="UTC", always_open=True,
        organization=cast.acme,
    )  # fmt: skip
    return sla_policy_create(
        actor=None,
        name="ACME standard",
        calendar=always,
        organization=cast.acme,
        targets=[Target("P2", first_response_minutes=60, resolution_minutes=240)],
    )


def fact(page: str, label: str) -> str | None:
    """The value the ticket page shows under ``label`` in its facts, as text."""
    found = re.search(rf"<dt>{label}</dt><dd[^>]*>(.*?)</dd>", page, re.S)
    return unescape(re.sub(r"<[^>]+>", "", found[1])).strip() if found else None


def row(page: str, key: str) -> str:
    """The list's row of ticket ``key``, as text (cells separated by " | ")."""
    found = re.search(rf'<tr>\s*<td><a href="/portal/tickets/{key}"[ >].*?</tr>', page, re.S)
    assert found, f"no row for {key}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", found[0], re.S)
    return " | ".join(" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells)


def seen_at(client: Any, ticket: Ticket, minutes: int) -> tuple[str | None, str | None, str]:
    """(status words, what to expect) on the ticket's page and its list row, at T0 +
    ``minutes``."""
    with clock.frozen_at(at(minutes)):
        page = client.get(f"/portal/tickets/{ticket.key}").content.decode()
        listed = client.get("/portal/?show=all").content.decode()
    return fact(page, "Status"), fact(page, "What to expect"), row(listed, ticket.key)


def move(cast: Cast, ticket: Ticket, minutes: int, to: str, **kw: Any) -> Ticket:
    with clock.frozen_at(at(minutes)):
        return services.ticket_transition(actor=cast.lena, ticket=ticket, to_status=to, **kw)


STATUS_PATHS = [
    ([], "Received — waiting for an agent"),
    (["open"], "Open — an agent is on it"),
    (["in_progress"], "In progress"),
    (["pending_customer"], "Waiting for your answer"),
    (["pending_third_party"], "Waiting for a supplier"),
    (["resolved"], "Resolved"),
    (["resolved", "closed"], "Closed"),
]


@pytest.mark.parametrize(("path", "words"), STATUS_PATHS, ids=lambda v: str(v))
def test_each_status_reads_in_plain_words_on_the_page_the_list_and_the_timeline(
    cast: Cast, path: list[str], words: str
) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    assert ticket.status == "new"
    for step in path:
        resolving = step == "resolved"
        ticket = services.ticket_transition(
            actor=cast.lena,
            ticket=ticket,
            to_status=step,
            resolution_code="fixed" if resolving else None,
            resolution_note="Done" if resolving else None,
        )
    client = signed_in(cast.alice)
    page = client.get(f"/portal/tickets/{ticket.key}").content.decode()
    assert fact(page, "Status") == words
    assert (
        row(client.get("/portal/?show=all").content.decode(), ticket.key)
        .split(" | ")[2]
        .startswith(words)
    )
    if path:  # the timeline's last status change, in the same words
        changes = re.findall(
            r'<li class="entry entry-status_changed">.*?<p>(.*?)</p>\s*</li>', page, re.S
        )
        assert changes, "no status change in the timeline"
        assert unescape(changes[-1]) == words
    # the raw status code is never what the requester reads
    text = re.sub(r"<[^>]*>", " ", page)
    for code in ("pending_customer", "pending_third_party", "in_progress"):
        assert code not in text


def test_what_to_expect_follows_the_first_answer_then_the_resolution_clock(
    cast: Cast, contract: SlaPolicy
) -> None:
    with clock.frozen_at(T0):
        ticket = make_ticket(cast.lena, cast.acme, cast.alice, priority="P2")
    client = signed_in(cast.alice)
    # waiting for the first answer: its deadline, in the reader's time zone
    status, expect, listed = seen_at(client, ticket, 10)
    assert status == "Received — waiting for an agent"
    assert expect == "We will answer you by Mon 23 Nov 2026, 10:00 UTC"
    assert "We will answer you by Mon 23 Nov 2026, 10:00 UTC" in listed
    user_update(actor=cast.alice, user=cast.alice, time_zone="Europe/Berlin")
    assert seen_at(client, ticket, 10)[1] == "We will answer you by Mon 23 Nov 2026, 11:00 CET"
    user_update(actor=cast.alice, user=cast.alice, time_zone="UTC")
    # the first answer is late: said so, without a time already gone by
    with clock.frozen_at(at(61)):
        clocks.sweep()
    status, expect, listed = seen_at(client, ticket, 62)
    assert expect == "Later than we promised: an agent will answer you as soon as possible."
    assert expect in listed
    # answered (late): now the resolution, due four hours after opening
    with clock.frozen_at(at(70)):
        services.ticket_comment(actor=cast.lena, ticket=ticket, body="Looking into it")
    assert seen_at(client, ticket, 71)[1] == "We aim to resolve it by Mon 23 Nov 2026, 13:00 UTC"
    # waiting for the requester, then for a supplier: the clock stands still
    ticket = move(cast, ticket, 120, "pending_customer")
    status, expect, listed = seen_at(client, ticket, 150)
    assert (status, expect) == (
        "Waiting for your answer",
        "The clock is stopped while we wait for you.",
    )
    assert "The clock is stopped while we wait for you." in listed
    ticket = move(cast, ticket, 150, "pending_third_party")
    assert seen_at(client, ticket, 160)[:2] == (
        "Waiting for a supplier",
        "The clock is stopped while we wait for a supplier.",
    )
    # back at work after an hour's pause: the resolution moves an hour later
    ticket = move(cast, ticket, 180, "in_progress")
    status, expect, _ = seen_at(client, ticket, 181)
    assert (status, expect) == ("In progress", "We aim to resolve it by Mon 23 Nov 2026, 14:00 UTC")
    # past it
    with clock.frozen_at(at(301)):
        clocks.sweep()
    expect = seen_at(client, ticket, 302)[1]
    assert expect == "It is taking longer than we aimed: we are still working on it."
    # resolved: nothing more to expect
    ticket = move(cast, ticket, 310, "resolved", resolution_code="fixed", resolution_note="Done")
    status, expect, listed = seen_at(client, ticket, 311)
    assert (status, expect) == ("Resolved", None)
    assert "We " not in listed
    assert "clock" not in listed


def test_a_first_answer_paused_before_it_came_says_whom_we_wait_for(
    cast: Cast, contract: SlaPolicy
) -> None:
    with clock.frozen_at(T0):
        ticket = make_ticket(cast.lena, cast.acme, cast.alice, priority="P2")
    ticket = move(cast, ticket, 5, "pending_customer")
    # not "We will answer you by 10:00": that time no longer holds while the clock stands
    assert seen_at(signed_in(cast.alice), ticket, 30)[1] == (
        "The clock is stopped while we wait for you."
    )


def test_without_an_sla_there_is_nothing_to_expect(cast: Cast, contract: SlaPolicy) -> None:
    ticket = make_ticket(cast.gus, cast.globex, cast.gerd, priority="P2")
    status, expect, listed = seen_at(signed_in(cast.gerd), ticket, 10)
    assert (status, expect) == ("Received — waiting for an agent", None)
    assert listed.split(" | ")[2] == "Received — waiting for an agent"


# --- query budget ------------------------------------------------------------------------------


def _queries(client: Any, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_the_ticket_list_query_count_does_not_grow_with_its_rows(
    cast: Cast, contract: SlaPolicy
) -> None:
    client = signed_in(cast.carol)  # sees all of ACME's tickets

    def add(i: int) -> None:
        ticket = make_ticket(
            cast.lena, cast.acme, (cast.alice, cast.bob, cast.carol)[i % 3], priority="P2"
        )
        if i % 3 == 1:
            services.ticket_comment(actor=cast.lena, ticket=ticket, body="On it")
        if i % 3 == 2:
            services.ticket_transition(actor=cast.lena, ticket=ticket, to_status="pending_customer")

    for i in range(2):
        add(i)
    for path in ("/portal/", "/portal/?show=all"):
        _queries(client, path)  # warm the per-process caches (configuration, calendars)
        few = _queries(client, path)
        for i in range(12):
            add(i)
        many = _queries(client, path)
        assert many == few, (path, few, many)


def test_the_ticket_page_query_count_does_not_grow_with_its_conversation(
    cast: Cast, contract: SlaPolicy
) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, priority="P2")
    client = signed_in(cast.alice)
    path = f"/portal/tickets/{ticket.key}"

    def converse(i: int) -> Ticket:
        # every kind of entry: replies both ways, files, internal notes and files (hidden),
        # status changes
        services.ticket_comment(actor=cast.lena, ticket=ticket, body=f"Agent says {i}")
        services.ticket_comment(actor=cast.alice, ticket=ticket, body=f"Alice says {i}")
        services.ticket_comment(actor=cast.lena, ticket=ticket, body=f"note {i}", internal=True)
        services.attachment_add(actor=cast.alice, ticket=ticket, filename=f"s{i}.png", content=b"x")
        services.attachment_add(
            actor=cast.lena, ticket=ticket, filename=f"i{i}.txt", content=b"x", internal=True
        )
        t = services.ticket_transition(actor=cast.lena, ticket=ticket, to_status="pending_customer")
        return services.ticket_transition(actor=cast.lena, ticket=t, to_status="in_progress")

    ticket = converse(0)
    _queries(client, path)  # warm the per-process caches
    few = _queries(client, path)
    for i in range(1, 15):
        ticket = converse(i)
    page = client.get(path).content.decode()
    assert page.count('class="entry entry-comment"') == 30
    assert page.count("s14.png") >= 1
    assert _queries(client, path) == few
