"""Working a ticket from its page: reply, note, files, details, status, take, escalate,
de-escalate, resolve, reopen. A refused form comes back with the reason beside the field
and what was typed, and writes nothing; a stale form is refused, not applied."""

from __future__ import annotations

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.escalation.models import Escalation
from tierdesk.tickets import services
from tierdesk.tickets.models import Attachment, Comment, Ticket
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import category_create, tier_by_code

pytestmark = pytest.mark.django_db


def post(client: Client, ticket: Ticket, action: str, data: dict[str, object]) -> object:
    return client.post(
        f"/console/tickets/{ticket.key}/{action}", {"version": ticket.version, **data}
    )


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_related("tier", "assignee").get(pk=ticket.pk)


@pytest.fixture
def ticket(cast: Cast) -> Ticket:
    return make_ticket(cast.lena, cast.acme, cast.alice, subject="Outlook will not start")


def test_a_reply_and_a_note_with_a_file(cast: Cast, ticket: Ticket) -> None:
    client = signed_in(cast.lena)
    r = post(client, ticket, "comment", {"body": "Please restart in safe mode."})
    assert r.status_code == 302  # type: ignore[attr-defined]
    log = SimpleUploadedFile("outlook.log", b"error 0x800", content_type="text/plain")
    r = post(
        client,
        ticket,
        "comment",
        {"body": "Profile is corrupt", "internal": "on", "attachments": [log]},
    )
    assert r.status_code == 302  # type: ignore[attr-defined]
    comments = list(Comment.objects.filter(ticket=ticket).order_by("id"))
    assert [(c.body, c.is_internal) for c in comments] == [
        ("Please restart in safe mode.", False),
        ("Profile is corrupt", True),
    ]
    files = list(Attachment.objects.filter(ticket=ticket))
    assert [(f.filename, f.is_internal) for f in files] == [("outlook.log", True)]
    page = client.get(f"/console/tickets/{ticket.key}").content.decode()
    assert "Internal note added." in page
    assert "Profile is corrupt" in page
    assert "outlook.log" in page


def test_a_forbidden_file_refuses_the_whole_reply_and_keeps_the_text(
    cast: Cast, ticket: Ticket
) -> None:
    client = signed_in(cast.lena)
    bad = SimpleUploadedFile("setup.exe", b"MZ...", content_type="application/octet-stream")
    r = post(client, ticket, "comment", {"body": "Run this installer", "attachments": [bad]})
    page = r.content.decode()  # type: ignore[attr-defined]
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "setup.exe: files of type .exe are not accepted." in page
    assert "Run this installer</textarea>" in page
    assert not Comment.objects.filter(ticket=ticket).exists()
    assert not Attachment.objects.filter(ticket=ticket).exists()


def test_an_empty_reply_is_refused_beside_the_field(cast: Cast, ticket: Ticket) -> None:
    r = post(signed_in(cast.lena), ticket, "comment", {"body": ""})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "This field is required." in r.content.decode()  # type: ignore[attr-defined]


def test_escalating_needs_a_reason_and_what_was_tried(cast: Cast, ticket: Ticket) -> None:
    client = signed_in(cast.lena)
    r = post(
        client,
        ticket,
        "escalate",
        {"to_tier": "L2", "reason": "", "handoff_note": "Reinstalled Office"},
    )
    page = r.content.decode()  # type: ignore[attr-defined]
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "data-open-on-load" in page  # the dialog opens again with the message
    assert "Reinstalled Office</textarea>" in page
    assert fresh(ticket).tier.code == "L1"
    r = post(
        client,
        ticket,
        "escalate",
        {"to_tier": "L2", "reason": "Needs Exchange rights", "handoff_note": "Reinstalled Office"},
    )
    assert r.status_code == 302  # type: ignore[attr-defined]
    assert fresh(ticket).tier.code == "L2"
    escalation = Escalation.objects.get(ticket=ticket)
    assert (escalation.reason, escalation.handoff_note) == (
        "Needs Exchange rights",
        "Reinstalled Office",
    )


def test_escalating_to_the_same_or_a_lower_tier_is_not_offered(cast: Cast, ticket: Ticket) -> None:
    r = post(
        signed_in(cast.lena),
        ticket,
        "escalate",
        {"to_tier": "L1", "reason": "x", "handoff_note": "y"},
    )
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "Select a valid choice" in r.content.decode()  # type: ignore[attr-defined]


def test_de_escalating_hands_the_ticket_back(cast: Cast, ticket: Ticket) -> None:
    client = signed_in(cast.omar)
    post(
        client,
        ticket,
        "escalate",
        {"to_tier": "L3", "reason": "root cause", "handoff_note": "logs"},
    )
    ticket = fresh(ticket)
    r = post(
        client, ticket, "de-escalate", {"to_tier": "L1", "note": "Fixed; confirm with the user"}
    )
    assert r.status_code == 302  # type: ignore[attr-defined]
    assert fresh(ticket).tier.code == "L1"


def test_a_stale_form_is_refused_and_keeps_what_was_typed(cast: Cast, ticket: Ticket) -> None:
    stale_version = ticket.version
    # another agent, in another tab, changes the priority meanwhile
    services.ticket_update(actor=cast.omar, ticket=ticket, priority="P1")
    r = signed_in(cast.lena).post(
        f"/console/tickets/{ticket.key}/resolve",
        {
            "version": stale_version,
            "resolution_code": "fixed",
            "resolution_note": "Rebuilt the profile",
        },
    )
    page = r.content.decode()  # type: ignore[attr-defined]
    assert r.status_code == 409  # type: ignore[attr-defined]
    assert "Someone else changed this ticket" in page
    assert "Rebuilt the profile</textarea>" in page
    after = fresh(ticket)
    assert (after.status, after.priority) == ("new", "P1")  # nothing of the stale form applied
    assert f'name="version" value="{after.version}"' in page  # sending again applies it


def test_details_status_take_resolve_and_reopen(cast: Cast, ticket: Ticket) -> None:
    client = signed_in(cast.lena)
    assert post(client, ticket, "take", {}).status_code == 302  # type: ignore[attr-defined]
    ticket = fresh(ticket)
    assert ticket.assignee == cast.lena
    r = post(
        client, ticket, "details", {"priority": "P2", "category": "", "assignee": cast.lena.pk}
    )
    assert r.status_code == 302  # type: ignore[attr-defined]
    ticket = fresh(ticket)
    assert (ticket.priority, ticket.priority_is_manual) == ("P2", True)
    assert post(client, ticket, "status", {"status": "in_progress"}).status_code == 302  # type: ignore[attr-defined]
    ticket = fresh(ticket)
    r = post(client, ticket, "resolve", {"resolution_code": "fixed", "resolution_note": ""})
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert fresh(ticket).status == "in_progress"
    r = post(
        client, ticket, "resolve", {"resolution_code": "fixed", "resolution_note": "New profile"}
    )
    assert r.status_code == 302  # type: ignore[attr-defined]
    ticket = fresh(ticket)
    assert (ticket.status, ticket.resolution_note) == ("resolved", "New profile")
    assert post(client, ticket, "reopen", {}).status_code == 302  # type: ignore[attr-defined]
    assert fresh(ticket).status == "open"


def field_changes(page: str) -> list[str]:
    """What the timeline's field-change entries say, in order."""
    found = re.findall(
        r'<li class="entry entry-field_changed">.*?</p>\s*<p>([^<]*)</p>', page, re.DOTALL
    )
    return [html.unescape(" ".join(f.split())) for f in found]


def test_a_category_change_is_written_shown_and_kept_to_the_organizations_catalog(
    cast: Cast, ticket: Ticket
) -> None:
    hardware = category_for_organization(cast.acme, "hardware")
    software = category_for_organization(cast.acme, "software")
    assert hardware is not None
    assert software is not None
    globex_only = category_create(
        actor=cast.admin, organization=cast.globex, slug="globex-erp", name="Globex ERP",
        default_tier=tier_by_code("L1"),
    )  # fmt: skip
    client = signed_in(cast.lena)

    def details(category: object) -> object:
        t = fresh(ticket)
        return post(client, t, "details", {"priority": t.priority, "category": category})

    assert details(hardware.pk).status_code == 302  # type: ignore[attr-defined]
    assert fresh(ticket).category_id == hardware.pk
    assert details(software.pk).status_code == 302  # type: ignore[attr-defined]
    assert fresh(ticket).category_id == software.pk
    page = client.get(f"/console/tickets/{ticket.key}").content.decode()
    assert "<dt>Category</dt><dd>Software</dd>" in page
    assert field_changes(page) == ["category: hardware", "category: hardware → software"]
    # another client's category is not offered: refused beside the field, nothing written
    r = details(globex_only.pk)
    page = r.content.decode()  # type: ignore[attr-defined]
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert re.search(r'id="id_category_error"><li>Select a valid choice', page)
    assert "<details open>" in page  # the panel stays open with the message
    assert fresh(ticket).category_id == software.pk
    # and a category can be taken off again
    assert details("").status_code == 302  # type: ignore[attr-defined]
    assert fresh(ticket).category_id is None
    page = client.get(f"/console/tickets/{ticket.key}").content.decode()
    assert field_changes(page)[-1] == "category: software →"
    assert "<dt>Category</dt><dd>—</dd>" in page


def test_an_assignee_who_does_not_serve_the_organization_is_not_offered(
    cast: Cast, ticket: Ticket
) -> None:
    r = post(
        signed_in(cast.lena),
        ticket,
        "details",
        {"priority": ticket.priority, "assignee": cast.gus.pk},
    )
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert fresh(ticket).assignee_id is None


def test_actions_on_tickets_out_of_reach_are_not_found(cast: Cast) -> None:
    other = make_ticket(cast.gus, cast.globex, cast.gerd)
    assert post(signed_in(cast.lena), other, "take", {}).status_code == 404  # type: ignore[attr-defined]
    mine = make_ticket(cast.alice, cast.acme)
    assert post(signed_in(cast.alice), mine, "comment", {"body": "hi"}).status_code == 404  # type: ignore[attr-defined]
    assert post(signed_in(cast.lena), mine, "fly-away", {}).status_code == 404  # type: ignore[attr-defined]
    assert signed_in(cast.lena).get(f"/console/tickets/{mine.key}/take").status_code == 405


def test_actions_need_the_csrf_token(cast: Cast, ticket: Ticket) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.lena)
    assert post(client, ticket, "take", {}).status_code == 403  # type: ignore[attr-defined]
    assert fresh(ticket).assignee_id is None
