"""Linking and merging from the ticket page: the "Linked tickets" box, the Link… and
Merge into… dialogs, unlink, refusals beside the field keeping what was typed, the stale
version rule, and the banner on a merged ticket."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.tickets import services
from tierdesk.tickets.models import Comment, Status, Ticket, TicketLink

pytestmark = pytest.mark.django_db


def post(client: Client, ticket: Ticket, action: str, data: dict[str, object]) -> Any:
    return client.post(
        f"/console/tickets/{ticket.key}/{action}", {"version": ticket.version, **data}
    )


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_related("organization").get(pk=ticket.pk)


@pytest.fixture
def pair(cast: Cast) -> tuple[Ticket, Ticket]:
    primary = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops every hour")
    duplicate = make_ticket(cast.lena, cast.acme, cast.bob, subject="VPN keeps disconnecting")
    return primary, duplicate


def test_the_page_offers_link_and_merge_and_shows_no_links_yet(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    page = signed_in(cast.lena).get(f"/console/tickets/{pair[1].key}").content.decode()
    assert 'id="links-title">Linked tickets</h2>' in page
    assert 'data-opens="link-dialog">Link…</button>' in page
    assert 'data-opens="merge-dialog">Merge into…</button>' in page
    assert f'action="/console/tickets/{pair[1].key}/merge"' in page
    assert 'for="link_target"' in page
    assert 'for="merge_target"' in page


def test_linking_by_number_shows_the_link_on_both_pages_and_unlink_removes_it(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    client = signed_in(cast.lena)
    r = post(client, duplicate, "link", {"kind": "related_to", "target": str(primary.number)})
    assert r.status_code == 302, r.content.decode()[:2000]
    link = TicketLink.objects.get()
    assert (link.source_id, link.target_id, link.kind) == (duplicate.pk, primary.pk, "related_to")
    page = client.get(f"/console/tickets/{duplicate.key}").content.decode()
    assert f"Linked: related to {primary.key}." in page
    assert f'Related to <a href="/console/tickets/{primary.key}">{primary.key}</a>' in page
    page = client.get(f"/console/tickets/{primary.key}").content.decode()
    assert f'Related to <a href="/console/tickets/{duplicate.key}">{duplicate.key}</a>' in page
    assert f'name="link" value="{link.pk}"' in page
    # unlink from the other side
    r = post(client, fresh(primary), "unlink", {"link": link.pk})
    assert r.status_code == 302
    assert not TicketLink.objects.exists()
    assert "Link removed." in client.get(f"/console/tickets/{primary.key}").content.decode()


@pytest.mark.parametrize(
    ("typed", "status", "message"),
    [
        ("", 422, "This field is required."),
        ("ACME-99", 422, "no such ticket in this organization"),
        ("GLOBEX-1", 422, "no such ticket in this organization"),
        ("self", 422, "that is this ticket itself"),
        ("twice", 409, "already linked"),
    ],
)
def test_a_refused_link_says_why_beside_the_field_and_keeps_what_was_typed(
    cast: Cast, pair: tuple[Ticket, Ticket], typed: str, status: int, message: str
) -> None:
    primary, duplicate = pair
    make_ticket(cast.gus, cast.globex, cast.gerd)
    if typed == "self":
        typed = duplicate.key
    elif typed == "twice":
        services.ticket_link(actor=cast.lena, ticket=primary, other=duplicate, kind="related_to")
        duplicate = fresh(duplicate)
        typed = primary.key
    before = TicketLink.objects.count()
    r = post(signed_in(cast.omar), duplicate, "link", {"kind": "caused_by", "target": typed})
    page = r.content.decode()
    assert r.status_code == status
    assert message in page
    assert 'id="link_target_error"' in page
    assert f'value="{typed}"' in page if typed else 'name="target"' in page
    assert '<option value="caused_by" selected>' in page
    assert "data-open-on-load" in page  # the dialog opens again with the message
    assert TicketLink.objects.count() == before


def test_a_stale_link_form_is_refused_and_keeps_what_was_typed(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    seen = duplicate.version
    services.ticket_update(actor=cast.omar, ticket=duplicate, subject="VPN disconnects")
    r = signed_in(cast.lena).post(
        f"/console/tickets/{duplicate.key}/link",
        {"version": seen, "kind": "related_to", "target": primary.key},
    )
    page = r.content.decode()
    assert r.status_code == 409
    assert "Someone else changed this ticket" in page
    assert f'value="{primary.key}"' in page
    assert not TicketLink.objects.exists()


def test_merging_closes_the_ticket_and_shows_the_banner(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    client = signed_in(cast.lena)
    r = post(client, duplicate, "merge", {"target": primary.key})
    assert r.status_code == 302, r.content.decode()[:2000]
    assert fresh(duplicate).status == Status.CLOSED
    note = Comment.objects.get(ticket=primary)
    assert note.is_internal
    page = client.get(f"/console/tickets/{duplicate.key}").content.decode()
    assert f"Merged into {primary.key}; this ticket is closed." in page
    assert 'class="message merged-banner"' in page
    assert f'Merged into <a href="/console/tickets/{primary.key}">{primary.key}</a>' in page
    assert "Merge into…" not in page  # closed: no more actions
    assert "Unlink" not in page  # and the merge's link stays
    page = client.get(f"/console/tickets/{primary.key}").content.decode()
    assert "merged-banner" not in page
    assert f'Has duplicate <a href="/console/tickets/{duplicate.key}">{duplicate.key}</a>' in page
    assert f"Merged from {duplicate.key}" in page


def test_a_public_merge_is_a_reply_for_the_same_requester_only(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, bobs = pair
    r = post(signed_in(cast.lena), bobs, "merge", {"target": primary.key, "public": "on"})
    assert r.status_code == 422
    assert "the two tickets have different requesters" in r.content.decode()
    assert not Comment.objects.exists()
    again = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops again")
    r = post(signed_in(cast.lena), again, "merge", {"target": primary.key, "public": "on"})
    assert r.status_code == 302
    assert not Comment.objects.get(ticket=primary).is_internal


def test_a_refused_merge_keeps_what_was_typed_and_changes_nothing(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    _, duplicate = pair
    r = post(signed_in(cast.lena), duplicate, "merge", {"target": "ACME-77", "public": "on"})
    page = r.content.decode()
    assert r.status_code == 422
    assert 'id="merge_target_error"' in page
    assert "no such ticket in this organization" in page
    assert 'value="ACME-77"' in page
    assert 'id="merge_public" checked' in page
    assert fresh(duplicate).status != Status.CLOSED
    assert not Comment.objects.exists()


def test_a_stale_merge_is_refused(cast: Cast, pair: tuple[Ticket, Ticket]) -> None:
    primary, duplicate = pair
    seen = duplicate.version
    services.ticket_comment(actor=cast.omar, ticket=duplicate, body="Any news?")
    r = signed_in(cast.lena).post(
        f"/console/tickets/{duplicate.key}/merge", {"version": seen, "target": primary.key}
    )
    assert r.status_code == 409
    assert "Someone else changed this ticket" in r.content.decode()
    assert fresh(duplicate).status != Status.CLOSED


def test_unlinking_a_link_removed_meanwhile_is_a_conflict(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    link = services.ticket_link(actor=cast.lena, ticket=duplicate, other=primary, kind="related_to")
    primary = fresh(primary)
    client = signed_in(cast.lena)
    # bypass the version check: the link went and nothing else changed the ticket
    TicketLink.objects.filter(pk=link.pk).delete()
    r = post(client, primary, "unlink", {"link": link.pk})
    assert r.status_code == 409
    assert "That link is no longer there" in r.content.decode()


def test_another_organizations_ticket_page_and_actions_are_not_found(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd)
    client = signed_in(cast.lena)
    r = post(client, theirs, "merge", {"target": "GLOBEX-1"})
    assert r.status_code == 404
    r = post(client, theirs, "link", {"kind": "related_to", "target": pair[0].key})
    assert r.status_code == 404
    assert not TicketLink.objects.exists()
