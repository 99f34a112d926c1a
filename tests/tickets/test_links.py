"""Linking tickets and merging a duplicate into its primary: the rules, the refusals, the
result on both tickets, and that a merge happens entirely or not at all."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.models import OutboxEvent
from tierdesk.sla.models import BusinessCalendar, ClockStatus, SlaClock
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import queries, services
from tierdesk.tickets.models import (
    Attachment,
    Comment,
    LinkKind,
    ResolutionCode,
    Status,
    Ticket,
    TicketLink,
    TimelineEntry,
    TimelineKind,
)

pytestmark = pytest.mark.django_db


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_related("organization").get(pk=ticket.pk)


@pytest.fixture
def pair(cast: Cast) -> tuple[Ticket, Ticket]:
    primary = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops every hour")
    duplicate = make_ticket(
        cast.lena, cast.acme, cast.bob, subject="VPN keeps disconnecting", description="Since 9am"
    )
    return primary, duplicate


def entries(ticket: Ticket, kind: str) -> list[TimelineEntry]:
    return list(TimelineEntry.objects.filter(ticket=ticket, kind=kind).order_by("id"))


# --- links -----------------------------------------------------------------------------


def test_a_link_is_seen_from_both_sides_with_timeline_entries_and_an_event(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    versions = (primary.version, duplicate.version)
    link = services.ticket_link(
        actor=cast.lena, ticket=duplicate, other=primary, kind=LinkKind.DUPLICATE_OF
    )
    mine = queries.link_list(actor=cast.lena, ticket=duplicate)
    theirs = queries.link_list(actor=cast.lena, ticket=primary)
    assert [(x.link.pk, x.other.key, x.label) for x in mine] == [
        (link.pk, primary.key, "Duplicate of")
    ]
    assert [(x.link.pk, x.other.key, x.label) for x in theirs] == [
        (link.pk, duplicate.key, "Has duplicate")
    ]
    [on_dup] = entries(duplicate, TimelineKind.LINKED)
    [on_primary] = entries(primary, TimelineKind.LINKED)
    assert on_dup.new_value == f"duplicate of {primary.key}"
    assert on_primary.new_value == f"has duplicate {duplicate.key}"
    assert on_dup.is_internal
    assert on_primary.is_internal
    assert (fresh(primary).version, fresh(duplicate).version) == (versions[0] + 1, versions[1] + 1)
    event = OutboxEvent.objects.get(name="ticket.linked")
    assert event.aggregate_id == str(duplicate.pk)
    assert event.payload["target_key"] == primary.key
    assert event.payload["kind"] == "duplicate_of"


def test_a_ticket_cannot_be_linked_to_itself(cast: Cast, pair: tuple[Ticket, Ticket]) -> None:
    primary, _ = pair
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_link(actor=cast.lena, ticket=primary, other=primary, kind="related_to")
    assert refused.value.errors[0].field == "target"
    assert not TicketLink.objects.exists()


def test_another_organizations_ticket_is_refused_like_a_missing_one(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, _ = pair
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd)
    # omar serves both organizations: still no link across them, and the same words
    with pytest.raises(ValidationFailed) as refused:
        services.ticket_link(actor=cast.omar, ticket=primary, other=theirs, kind="related_to")
    assert refused.value.errors[0].message == services.NO_SUCH_TICKET
    # lena does not see GLOBEX at all: looking it up says exactly what a missing one says
    for ref in (theirs.key, "GLOBEX-999", "ACME-999"):
        with pytest.raises(ValidationFailed) as lookup:
            queries.link_target_get(actor=cast.lena, ticket=primary, ref=ref)
        assert lookup.value.errors[0].message == services.NO_SUCH_TICKET
    assert not TicketLink.objects.exists()
    assert not OutboxEvent.objects.filter(name="ticket.linked").exists()


def test_the_target_may_be_named_by_key_or_by_number(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    got = queries.link_target_get(actor=cast.lena, ticket=duplicate, ref=str(primary.number))
    assert got.pk == primary.pk
    got = queries.link_target_get(actor=cast.lena, ticket=duplicate, ref=primary.key.lower())
    assert got.pk == primary.pk
    got = queries.link_target_get(actor=cast.lena, ticket=duplicate, ref=str(primary.pk), bare="id")
    assert got.pk == primary.pk


def test_the_same_pair_twice_is_refused_whatever_the_direction(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    services.ticket_link(actor=cast.lena, ticket=duplicate, other=primary, kind="related_to")
    for ticket, other, kind in (
        (duplicate, primary, "related_to"),
        (duplicate, primary, "duplicate_of"),
        (primary, duplicate, "caused_by"),
    ):
        with pytest.raises(Conflict) as refused:
            services.ticket_link(actor=cast.lena, ticket=ticket, other=other, kind=kind)
        assert refused.value.errors[0].field == "target"
        assert "already linked" in refused.value.errors[0].message
    assert TicketLink.objects.count() == 1


def test_link_refusals(cast: Cast, pair: tuple[Ticket, Ticket]) -> None:
    primary, duplicate = pair
    with pytest.raises(ValidationFailed):
        services.ticket_link(actor=cast.lena, ticket=duplicate, other=primary, kind="blocks")
    with pytest.raises(PermissionDenied):
        services.ticket_link(actor=cast.alice, ticket=duplicate, other=primary, kind="related_to")
    with pytest.raises(PreconditionFailed):
        services.ticket_link(
            actor=cast.lena,
            ticket=duplicate,
            other=primary,
            kind="related_to",
            expected_version=duplicate.version - 1 or 99,
        )
    assert not TicketLink.objects.exists()


def test_unlinking_from_either_side_removes_the_link_for_both(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    link = services.ticket_link(actor=cast.lena, ticket=duplicate, other=primary, kind="caused_by")
    services.ticket_unlink(actor=cast.omar, ticket=fresh(primary), link_id=link.pk)
    assert queries.link_list(actor=cast.lena, ticket=primary) == []
    assert queries.link_list(actor=cast.lena, ticket=duplicate) == []
    assert [e.new_value for e in entries(duplicate, TimelineKind.UNLINKED)] == [
        f"caused by {primary.key}"
    ]
    assert [e.new_value for e in entries(primary, TimelineKind.UNLINKED)] == [
        f"causes {duplicate.key}"
    ]
    assert OutboxEvent.objects.filter(name="ticket.unlinked").count() == 1
    with pytest.raises(NotFound):
        services.ticket_unlink(actor=cast.lena, ticket=fresh(primary), link_id=link.pk)


def test_a_link_of_other_tickets_cannot_be_removed_through_this_one(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    third = make_ticket(cast.lena, cast.acme, cast.alice, subject="Third")
    link = services.ticket_link(actor=cast.lena, ticket=duplicate, other=primary, kind="related_to")
    with pytest.raises(NotFound):
        services.ticket_unlink(actor=cast.lena, ticket=third, link_id=link.pk)
    with pytest.raises(PermissionDenied):
        services.ticket_unlink(actor=cast.alice, ticket=primary, link_id=link.pk)
    assert TicketLink.objects.filter(pk=link.pk).exists()


# --- merge -----------------------------------------------------------------------------


@pytest.fixture
def sla(cast: Cast) -> None:
    calendar: BusinessCalendar = calendar_create(
        actor=None,
        name="always",
        title="Always",
        time_zone="UTC",
        hours={d: [(0, 24 * 60)] for d in range(7)},
    )
    sla_policy_create(
        actor=None,
        name="ACME",
        organization=cast.acme,
        calendar=calendar,
        warning_percent=75,
        targets=[Target(p, 60, 480) for p in ("P1", "P2", "P3", "P4")],
    )


def test_a_merge_carries_the_duplicate_over_and_closes_it(
    cast: Cast, sla: None, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    services.ticket_comment(actor=cast.bob, ticket=duplicate, body="Still happening at 11")
    services.ticket_comment(
        actor=cast.lena, ticket=duplicate, body="Router logs say nothing", internal=True
    )
    services.attachment_add(
        actor=cast.bob, ticket=duplicate, filename="vpn.log", content=b"timeout"
    )
    duplicate = fresh(duplicate)
    assert SlaClock.objects.filter(ticket=duplicate).exclude(status=ClockStatus.STOPPED).exists()

    result = services.ticket_merge(
        actor=cast.lena,
        source=duplicate,
        target=fresh(primary),
        expected_version=duplicate.version,
        target_version=fresh(primary).version,
    )

    source, target = fresh(duplicate), fresh(primary)
    assert source.status == Status.CLOSED
    assert source.resolution_code == ResolutionCode.DUPLICATE
    assert source.resolution_note == f"Merged into {target.key}."
    assert (result.source.version, result.target.version) == (source.version, target.version)
    # its SLA clocks stopped through the normal close
    assert not SlaClock.objects.filter(ticket=source).exclude(status=ClockStatus.STOPPED).exists()
    # one note on the target naming the source, with the public thread and no internal note
    note = Comment.objects.get(ticket=target)
    assert note.pk == result.note.pk
    assert note.is_internal
    assert note.body.startswith(f"Merged from {source.key}: VPN keeps disconnecting")
    assert "Since 9am" in note.body
    assert "Still happening at 11" in note.body
    assert "Router logs say nothing" not in note.body
    attachment = Attachment.objects.get(ticket=source)
    assert f"vpn.log (/api/v1/attachments/{attachment.pk})" in note.body
    # the link and the timeline on both sides
    link = TicketLink.objects.get()
    assert (link.source_id, link.target_id, link.kind, link.is_merge) == (
        source.pk,
        target.pk,
        LinkKind.DUPLICATE_OF,
        True,
    )
    assert [e.new_value for e in entries(source, TimelineKind.MERGED)] == [target.key]
    assert not entries(source, TimelineKind.MERGED)[0].is_internal
    assert [e.new_value for e in entries(target, TimelineKind.MERGED)] == [source.key]
    assert queries.merged_into(actor=cast.lena, ticket=source) == target
    assert queries.merged_into(actor=cast.lena, ticket=target) is None
    names = list(
        OutboxEvent.objects.filter(aggregate_id=str(source.pk))
        .order_by("id")
        .values_list("name", flat=True)
    )
    assert names[-3:] == ["ticket.resolved", "ticket.closed", "ticket.merged"]
    merged = OutboxEvent.objects.get(name="ticket.merged")
    assert merged.payload["target_key"] == target.key
    assert merged.payload["comment_id"] == note.pk


def test_a_public_merge_note_is_a_reply_the_requester_sees(cast: Cast) -> None:
    primary = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops")
    duplicate = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN again")
    services.ticket_merge(actor=cast.lena, source=duplicate, target=primary, public=True)
    note = Comment.objects.get(ticket=primary)
    assert not note.is_internal
    assert list(queries.comment_list(actor=cast.alice, ticket=primary)) == [note]


def test_a_public_merge_between_two_requesters_is_refused(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair  # alice's and bob's
    with pytest.raises(ValidationFailed) as caught:
        services.ticket_merge(actor=cast.lena, source=duplicate, target=primary, public=True)
    assert caught.value.errors[0].field == "public"
    assert not Comment.objects.filter(ticket=primary).exists()
    duplicate.refresh_from_db()
    assert duplicate.status != "closed"


def test_merging_replaces_an_earlier_link_between_the_two(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    services.ticket_link(actor=cast.lena, ticket=primary, other=duplicate, kind="related_to")
    services.ticket_merge(actor=cast.lena, source=fresh(duplicate), target=fresh(primary))
    link = TicketLink.objects.get()
    assert (link.source_id, link.kind, link.is_merge) == (duplicate.pk, "duplicate_of", True)
    # the link a merge made stays
    with pytest.raises(Conflict):
        services.ticket_unlink(actor=cast.lena, ticket=fresh(primary), link_id=link.pk)


def test_a_resolved_duplicate_is_closed_keeping_its_resolution(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    services.ticket_transition(
        actor=cast.lena,
        ticket=duplicate,
        to_status=Status.RESOLVED,
        resolution_code="workaround",
        resolution_note="Reconnect by hand",
    )
    services.ticket_merge(actor=cast.lena, source=fresh(duplicate), target=primary)
    source = fresh(duplicate)
    assert (source.status, source.resolution_code) == (Status.CLOSED, "workaround")


def test_merge_refusals_leave_both_tickets_as_they_were(
    cast: Cast, pair: tuple[Ticket, Ticket]
) -> None:
    primary, duplicate = pair
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd)
    closed = make_ticket(cast.lena, cast.acme, cast.alice, subject="Old")
    services.ticket_transition(
        actor=cast.lena, ticket=closed, to_status="resolved", resolution_code="fixed",
        resolution_note="done",
    )  # fmt: skip
    services.ticket_transition(actor=cast.lena, ticket=fresh(closed), to_status="closed")
    closed = fresh(closed)
    before = {t.pk: t.version for t in Ticket.objects.all()}
    refusals: list[tuple[type[Exception], dict[str, Any]]] = [
        (PermissionDenied, {"actor": cast.alice, "source": duplicate, "target": primary}),
        (ValidationFailed, {"actor": cast.lena, "source": duplicate, "target": duplicate}),
        (ValidationFailed, {"actor": cast.omar, "source": duplicate, "target": theirs}),
        (InvalidTransition, {"actor": cast.lena, "source": duplicate, "target": closed}),
        (InvalidTransition, {"actor": cast.lena, "source": closed, "target": primary}),
        (
            PreconditionFailed,
            {"actor": cast.lena, "source": duplicate, "target": primary, "expected_version": 99},
        ),
        (
            PreconditionFailed,
            {"actor": cast.lena, "source": duplicate, "target": primary, "target_version": 99},
        ),
    ]
    for error, kwargs in refusals:
        with pytest.raises(error):
            services.ticket_merge(**kwargs)
    assert {t.pk: t.version for t in Ticket.objects.all()} == before
    assert not Comment.objects.exists()
    assert not TicketLink.objects.exists()
    assert not OutboxEvent.objects.filter(name="ticket.merged").exists()


def test_a_merged_ticket_cannot_be_merged_again(cast: Cast, pair: tuple[Ticket, Ticket]) -> None:
    primary, duplicate = pair
    third = make_ticket(cast.lena, cast.acme, cast.alice, subject="Third")
    services.ticket_merge(actor=cast.lena, source=duplicate, target=primary)
    with pytest.raises(InvalidTransition):
        services.ticket_merge(actor=cast.lena, source=fresh(duplicate), target=third)
    with pytest.raises(InvalidTransition):  # nor can anything go into it
        services.ticket_merge(actor=cast.lena, source=third, target=fresh(duplicate))


def test_a_failure_midway_rolls_the_whole_merge_back(
    cast: Cast, pair: tuple[Ticket, Ticket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note, the link and the timeline entries are written before the source is
    closed; when closing fails, none of them remains."""
    primary, duplicate = pair
    before = {t.pk: (t.version, t.status) for t in Ticket.objects.all()}
    real = services.ticket_transition

    def failing(**kwargs: Any) -> Ticket:
        if kwargs["to_status"] == Status.CLOSED:
            raise RuntimeError("the disk is full")
        return real(**kwargs)

    monkeypatch.setattr(services, "ticket_transition", failing)
    with pytest.raises(RuntimeError):
        services.ticket_merge(actor=cast.lena, source=duplicate, target=primary)
    assert {t.pk: (t.version, t.status) for t in Ticket.objects.all()} == before
    assert not Comment.objects.exists()
    assert not TicketLink.objects.exists()
    assert not TimelineEntry.objects.filter(kind=TimelineKind.MERGED).exists()
    assert not OutboxEvent.objects.filter(
        name__in=["ticket.commented", "ticket.resolved", "ticket.merged"]
    ).exists()


def test_the_locks_are_taken_in_id_order_whichever_way_round(
    cast: Cast, pair: tuple[Ticket, Ticket], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, duplicate = pair  # primary has the lower id
    locked: list[int] = []
    real = services.lock

    def spy(ticket: Ticket, version: int | None) -> Ticket:
        locked.append(ticket.pk)
        return real(ticket, version)

    monkeypatch.setattr(services, "lock", spy)
    services.ticket_merge(actor=cast.lena, source=duplicate, target=primary)
    assert locked[:2] == [primary.pk, duplicate.pk]


def test_a_merge_note_is_cut_to_the_comment_limit(cast: Cast, pair: tuple[Ticket, Ticket]) -> None:
    primary, duplicate = pair
    for _ in range(3):
        services.ticket_comment(actor=cast.bob, ticket=duplicate, body="x" * 40_000)
    services.ticket_merge(actor=cast.lena, source=fresh(duplicate), target=primary)
    note = Comment.objects.get(ticket=primary)
    assert len(note.body) <= services.BODY_MAX
    assert note.body.endswith(f"the rest stays on {duplicate.key}]")
