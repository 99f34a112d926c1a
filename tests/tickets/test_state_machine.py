"""Every allowed transition works; every forbidden one is refused with a clear error."""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from tierdesk.tickets.models import Status, Ticket, TimelineEntry
from tierdesk.tickets.services import TRANSITIONS, ticket_transition

# A path from "new" to each status through allowed transitions.
PATHS: dict[str, list[str]] = {
    Status.NEW: [],
    Status.OPEN: [Status.OPEN],
    Status.IN_PROGRESS: [Status.IN_PROGRESS],
    Status.PENDING_CUSTOMER: [Status.PENDING_CUSTOMER],
    Status.PENDING_THIRD_PARTY: [Status.PENDING_THIRD_PARTY],
    Status.RESOLVED: [Status.RESOLVED],
    Status.CLOSED: [Status.RESOLVED, Status.CLOSED],
}
ALL_PAIRS = [(a, b) for a, b in itertools.product(Status.values, Status.values) if a != b]


def _ticket_in(cast: Cast, status: str) -> Ticket:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    for step in PATHS[status]:
        ticket = _move(cast, ticket, step)
    assert ticket.status == status
    return ticket


def _move(cast: Cast, ticket: Ticket, to: str) -> Ticket:
    extra = {"resolution_code": "fixed", "resolution_note": "Replaced toner."}
    return ticket_transition(
        actor=cast.lena,
        ticket=ticket,
        to_status=to,
        **(extra if to == Status.RESOLVED else {}),
    )


def test_the_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(Status.values)


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
def test_transition(cast: Cast, source: str, target: str) -> None:
    ticket = _ticket_in(cast, source)
    version = ticket.version
    if target in TRANSITIONS[source]:
        moved = _move(cast, ticket, target)
        moved.refresh_from_db()
        assert moved.status == target
        assert moved.version == version + 1
        assert TimelineEntry.objects.filter(
            ticket=ticket, field="status", old_value=source, new_value=target
        ).exists()
    else:
        with pytest.raises(InvalidTransition) as caught:
            _move(cast, ticket, target)
        assert caught.value.errors[0].field == "status"
        assert f"cannot move to {target}" in caught.value.detail
        ticket.refresh_from_db()
        assert (ticket.status, ticket.version) == (source, version)


def test_resolving_needs_a_code_and_a_note(cast: Cast) -> None:
    ticket = _ticket_in(cast, Status.IN_PROGRESS)
    with pytest.raises(ValidationFailed) as no_code:
        ticket_transition(
            actor=cast.lena, ticket=ticket, to_status=Status.RESOLVED, resolution_note="done"
        )
    assert no_code.value.errors[0].field == "resolution_code"
    with pytest.raises(ValidationFailed) as no_note:
        ticket_transition(
            actor=cast.lena,
            ticket=ticket,
            to_status=Status.RESOLVED,
            resolution_code="fixed",
            resolution_note="   ",
        )
    assert no_note.value.errors[0].field == "resolution_note"
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS
    assert ticket.resolved_at is None


def test_reopening_counts_and_clears_the_resolution(cast: Cast) -> None:
    ticket = _ticket_in(cast, Status.RESOLVED)
    assert ticket.resolved_at is not None
    reopened = ticket_transition(actor=cast.alice, ticket=ticket, to_status=Status.OPEN)
    assert reopened.reopen_count == 1
    assert reopened.resolved_at is None
    assert reopened.resolution_code == ""


def test_requesters_may_only_reopen_or_close_a_resolved_ticket(cast: Cast) -> None:
    ticket = _ticket_in(cast, Status.OPEN)
    with pytest.raises(PermissionDenied):
        ticket_transition(actor=cast.alice, ticket=ticket, to_status=Status.IN_PROGRESS)
    resolved = _move(cast, ticket, Status.RESOLVED)
    closed = ticket_transition(actor=cast.alice, ticket=resolved, to_status=Status.CLOSED)
    assert closed.status == Status.CLOSED
    assert closed.closed_at is not None


def test_an_unknown_status_names_the_field(cast: Cast) -> None:
    ticket = _ticket_in(cast, Status.NEW)
    with pytest.raises(ValidationFailed) as caught:
        ticket_transition(actor=cast.lena, ticket=ticket, to_status="done")
    assert caught.value.errors[0].field == "status"
