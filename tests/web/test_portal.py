"""The self-service portal through the test client: requesters open, follow, reply to,
reopen and rate their own tickets, and never see what is internal."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.escalation.services import escalate
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
