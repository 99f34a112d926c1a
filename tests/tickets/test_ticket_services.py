"""Ticket services: create, update, comment. Built and checked through the services."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import (
    InvalidTransition,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.models import OutboxEvent
from tierdesk.tickets import queries, services
from tierdesk.tickets.models import Status, Ticket, TimelineEntry
from tierdesk.tiers.models import Category
from tierdesk.tiers.services import category_create, tier_by_code


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        (1, 1, "P1"),
        (1, 2, "P2"),
        (2, 1, "P2"),
        (1, 3, "P3"),
        (2, 2, "P3"),
        (3, 1, "P3"),
        (2, 3, "P4"),
        (3, 2, "P4"),
        (3, 3, "P4"),
    ],
)
def test_priority_comes_from_the_impact_urgency_matrix(
    cast: Cast, impact: int, urgency: int, priority: str
) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, impact=impact, urgency=urgency)
    assert ticket.priority == priority
    assert not ticket.priority_is_manual


def test_an_explicit_priority_wins_and_sticks(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, impact=3, urgency=3, priority="P1")
    assert ticket.priority == "P1"
    ticket = services.ticket_update(actor=cast.lena, ticket=ticket, urgency=2)
    assert ticket.priority == "P1"
    ticket = services.ticket_update(actor=cast.lena, ticket=ticket, priority=None)
    assert ticket.priority == "P4"  # back to the matrix: impact 3, urgency 2


def test_category_gives_tier_and_defaults(cast: Cast) -> None:
    network = Category.objects.get(slug="network", organization__isnull=True)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, category=network)
    assert ticket.tier.code == network.default_tier.code == "L2"
    assert (ticket.impact, ticket.urgency) == (network.default_impact, network.default_urgency)
    plain = make_ticket(cast.lena, cast.acme, cast.alice)
    assert plain.tier.code == "L1"


def test_numbers_are_per_tenant_and_a_refused_create_takes_none(cast: Cast) -> None:
    keys = [make_ticket(cast.lena, cast.acme, cast.alice).key for _ in range(3)]
    with pytest.raises(ValidationFailed), transaction.atomic():
        make_ticket(cast.lena, cast.acme, cast.alice, subject="")
    keys.append(make_ticket(cast.lena, cast.acme, cast.alice).key)
    keys.append(make_ticket(cast.gus, cast.globex, cast.gerd).key)
    assert keys == ["ACME-1", "ACME-2", "ACME-3", "ACME-4", "GLOBEX-1"]


def test_a_rolled_back_create_gives_its_number_back(cast: Cast) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)

    def crash_after_the_insert() -> None:
        with transaction.atomic():
            make_ticket(cast.lena, cast.acme, cast.alice)
            raise RuntimeError("crash after the insert")

    with pytest.raises(RuntimeError):
        crash_after_the_insert()
    assert make_ticket(cast.lena, cast.acme, cast.alice).number == 2


def test_create_writes_timeline_and_event_in_the_same_transaction(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    assert list(ticket.timeline.values_list("kind", flat=True)) == ["created", "routed"]
    event = OutboxEvent.objects.get(name="ticket.created")
    assert event.payload["key"] == "ACME-1"
    assert event.organization_id == cast.acme.pk
    assert event.dispatched_at is None

    # When anything after the insert fails (here: a lifecycle hook), neither the ticket, its
    # number, its timeline nor its event remains.
    def broken_hook(*args: object, **kwargs: object) -> None:
        raise RuntimeError("hook failed")

    monkeypatch.setattr(services.lifecycle, "notify", broken_hook)
    with pytest.raises(RuntimeError):
        make_ticket(cast.lena, cast.acme, cast.alice)
    assert Ticket.objects.count() == 1
    assert TimelineEntry.objects.filter(kind="created").count() == 1
    assert OutboxEvent.objects.filter(name="ticket.created").count() == 1
    monkeypatch.undo()
    assert make_ticket(cast.lena, cast.acme, cast.alice).number == 2


def test_a_requester_opens_tickets_only_for_themself(cast: Cast) -> None:
    own = make_ticket(cast.alice, cast.acme)
    assert own.requester == cast.alice
    with pytest.raises(ValidationFailed) as other:
        make_ticket(cast.alice, cast.acme, cast.bob)
    assert other.value.errors[0].field == "requester"
    with pytest.raises(ValidationFailed) as elsewhere:
        make_ticket(cast.alice, cast.globex)
    assert elsewhere.value.errors[0].field == "organization"
    with pytest.raises(PermissionDenied):
        make_ticket(cast.alice, cast.acme, priority="P1")


@pytest.mark.parametrize("who", ["gus", "outsider"])
def test_staff_cannot_open_tickets_for_organizations_they_do_not_serve(
    cast: Cast, who: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        make_ticket(getattr(cast, who), cast.acme, cast.alice)
    assert caught.value.errors[0].field == "organization"
    assert not Ticket.objects.exists()


def test_references_to_another_tenant_are_refused_and_nothing_is_stored(cast: Cast) -> None:
    globex_only = category_create(
        actor=None,
        slug="sap",
        name="SAP",
        organization=cast.globex,
        default_tier=tier_by_code("L2"),
    )
    cases = [
        ({"requester": cast.gerd}, "requester"),
        ({"requester": cast.alice, "assignee": cast.gus}, "assignee"),
        ({"requester": cast.alice, "category": globex_only}, "category"),
        ({"requester": cast.alice, "assignee": cast.alice}, "assignee"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationFailed) as caught:
            services.ticket_create(actor=cast.omar, organization=cast.acme, subject="x", **kwargs)
        assert caught.value.errors[0].field == field
    assert not Ticket.objects.exists()
    assert not OutboxEvent.objects.filter(name="ticket.created").exists()


def test_update_records_old_and_new_values(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    updated = services.ticket_update(
        actor=cast.lena, ticket=ticket, subject="Printer still on fire", assignee=cast.lena
    )
    assert updated.version == 2
    rows = set(
        TimelineEntry.objects.filter(ticket=ticket, kind="field_changed").values_list(
            "field", "old_value", "new_value", "actor__email"
        )
    )
    assert ("subject", "Printer on fire", "Printer still on fire", "lena@msp.example") in rows
    assert ("assignee", "", "lena@msp.example", "lena@msp.example") in rows
    event = OutboxEvent.objects.get(name="ticket.updated")
    assert event.payload["changes"]["assignee"] == {"old": "", "new": "lena@msp.example"}


def test_an_update_that_changes_nothing_writes_nothing(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    same = services.ticket_update(actor=cast.lena, ticket=ticket, subject=ticket.subject)
    assert same.version == 1
    assert not OutboxEvent.objects.filter(name="ticket.updated").exists()


def test_a_stale_version_is_refused(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    services.ticket_update(actor=cast.lena, ticket=ticket, subject="First", expected_version=1)
    with pytest.raises(PreconditionFailed):
        services.ticket_update(actor=cast.omar, ticket=ticket, subject="Second", expected_version=1)
    ticket.refresh_from_db()
    assert ticket.subject == "First"


def test_requesters_cannot_edit_fields(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    with pytest.raises(PermissionDenied):
        services.ticket_update(actor=cast.alice, ticket=ticket, subject="mine")


def test_first_public_staff_reply_is_the_first_response(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    services.ticket_comment(actor=cast.alice, ticket=ticket, body="any news?")
    services.ticket_comment(actor=cast.lena, ticket=ticket, body="note", internal=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None
    services.ticket_comment(actor=cast.lena, ticket=ticket, body="On it.")
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None


def test_a_requester_reply_takes_a_ticket_out_of_pending_customer(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    ticket = services.ticket_transition(
        actor=cast.lena, ticket=ticket, to_status=Status.PENDING_CUSTOMER
    )
    services.ticket_comment(actor=cast.alice, ticket=ticket, body="Here is the log.")
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_requesters_cannot_write_or_read_internal_notes(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    with pytest.raises(PermissionDenied):
        services.ticket_comment(actor=cast.alice, ticket=ticket, body="x", internal=True)
    services.ticket_comment(actor=cast.lena, ticket=ticket, body="secret", internal=True)
    services.ticket_comment(actor=cast.lena, ticket=ticket, body="public")
    seen = [c.body for c in queries.comment_list(actor=cast.alice, ticket=ticket)]
    assert seen == ["public"]
    assert (
        not queries.timeline_list(actor=cast.alice, ticket=ticket).filter(is_internal=True).exists()
    )


def test_a_closed_ticket_takes_no_more_changes(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    ticket = services.ticket_transition(
        actor=cast.lena,
        ticket=ticket,
        to_status="resolved",
        resolution_code="fixed",
        resolution_note="ok",
    )
    ticket = services.ticket_transition(actor=cast.lena, ticket=ticket, to_status="closed")
    with pytest.raises(InvalidTransition):
        services.ticket_comment(actor=cast.lena, ticket=ticket, body="late")
    with pytest.raises(InvalidTransition):
        services.ticket_update(actor=cast.lena, ticket=ticket, subject="late")


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", ""), ("subject", "x" * 251), ("description", "x" * 100_001)],
)
def test_text_limits_name_the_field(cast: Cast, field: str, value: str) -> None:
    kwargs = {"subject": "ok", field: value}
    with pytest.raises(ValidationFailed) as caught:
        services.ticket_create(
            actor=cast.lena, organization=cast.acme, requester=cast.alice, **kwargs
        )
    assert caught.value.errors[0].field == field
