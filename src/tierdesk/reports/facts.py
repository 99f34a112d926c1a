"""Each ticket's facts (reports.models.TicketFact), computed from its history.

``compute`` reads the tickets, their tier changes (timeline), escalations, SLA clocks,
comments and ratings in a few set-based queries for a batch of tickets and returns the
facts; it has no other input, so computing again gives the same rows. The outbox relay
marks a ticket stale on every event about it (``on_event``) and the worker refreshes the
stale ones each minute (``refresh_stale``), so the facts trail the tickets by a minute or
two. ``rebuild`` recomputes every ticket's (`tierdesk reports rebuild`).

The definitions the fields serve are in docs/kpis.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from tierdesk.core import clock
from tierdesk.core.models import OutboxEvent
from tierdesk.escalation.models import MANUAL, Direction, Escalation
from tierdesk.reports import rollups
from tierdesk.reports.models import SlaOutcome, StaleFact, TicketFact
from tierdesk.sla.calendar import Calendar
from tierdesk.sla.clocks import calendar_of
from tierdesk.sla.models import BusinessCalendar, ClockKind, SlaClock, SlaPolicy
from tierdesk.tickets.models import (
    OPEN_STATUSES,
    Comment,
    ResolutionCode,
    SatisfactionRating,
    Status,
    Ticket,
    TimelineEntry,
    TimelineKind,
)
from tierdesk.tiers.models import Tier

BATCH = 500  # tickets computed and written per transaction
# Tiers are kept as bits of their level in a 64-bit integer (TicketFact.tiers_visited).
MAX_LEVEL = 62

log = logging.getLogger(__name__)


# --- staleness: fed by the outbox relay ---------------------------------------------------


def on_event(event: OutboxEvent) -> None:
    """The relay's handler for every event: one about a ticket makes its facts stale; a
    changed business calendar or SLA policy makes stale the facts whose business times it
    counts (those of its policies' tickets, and those counted on a fallback policy)."""
    if event.aggregate_type in ("calendar", "sla_policy"):
        _mark_calendar_stale(event.aggregate_type, event.aggregate_id)
        return
    if event.aggregate_type == "organization":
        # Another time zone moves the organization's days: its rollups are counted again.
        if "time_zone" in (event.payload.get("changes") or {}) and event.aggregate_id.isdigit():
            rollups.mark_stale([int(event.aggregate_id)])
        return
    if event.aggregate_type != "ticket":
        return
    try:
        ticket_id = int(event.aggregate_id or event.payload.get("id", ""))
    except (TypeError, ValueError):
        log.warning("event %s (%s) names no ticket", event.pk, event.name)
        return
    mark_stale([ticket_id])


def _mark_calendar_stale(kind: str, raw_id: str) -> None:
    try:
        target = int(raw_id)
    except ValueError:
        return
    policies = "SELECT id FROM sla_slapolicy WHERE calendar_id = %s" if kind == "calendar" else "%s"
    # Fixed text and %s parameters only.
    sql = (
        "INSERT INTO reports_stale_fact (ticket_id) SELECT ticket_id FROM reports_ticket_fact "  # noqa: S608
        f"WHERE sla_policy_id IS NULL OR sla_policy_id IN ({policies}) "
        "ON CONFLICT (ticket_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [target])


def mark_stale(ticket_ids: Iterable[int]) -> None:
    StaleFact.objects.bulk_create(
        [StaleFact(ticket_id=i) for i in set(ticket_ids)], ignore_conflicts=True
    )


def refresh_stale(*, limit: int | None = None) -> int:
    """Compute the stale tickets' facts again, ``BATCH`` at a time; how many were done.
    Each batch is claimed (its stale rows deleted) in the transaction that writes its facts:
    an event that comes after the claim marks the ticket stale again, and a change that was
    committed before it is seen by the reads that follow it."""
    rollups.refresh_stale()
    done = 0
    while limit is None or done < limit:
        ids: list[int] = []
        try:
            with transaction.atomic():
                ids = list(
                    StaleFact.objects.order_by("ticket_id").values_list("ticket_id", flat=True)[
                        :BATCH
                    ]
                )
                if not ids:
                    break
                StaleFact.objects.filter(ticket_id__in=ids).delete()
                write(ids)
        except Exception:  # one ticket must not stop the others: each alone, below
            log.exception("report facts: a batch failed; computing its tickets one by one")
            _one_by_one(ids)
        done += len(ids)
    return done


def _one_by_one(ids: Sequence[int]) -> None:
    """The tickets of a failed batch, each in its own transaction; one that fails again is
    logged and taken off the queue (its next event, or a rebuild, tries it again)."""
    for ticket_id in ids:
        try:
            with transaction.atomic():
                StaleFact.objects.filter(ticket_id=ticket_id).delete()
                write([ticket_id])
        except Exception:
            log.exception("report facts: ticket %s set aside", ticket_id)
            StaleFact.objects.filter(ticket_id=ticket_id).delete()


def rebuild() -> int:
    """Every ticket's facts computed anew (after an upgrade that changes a definition, or a
    restore), then the rollups counted from them; how many tickets."""
    done = 0
    last = 0
    while True:
        ids = list(
            Ticket.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            # Each batch kept the rollups (a rebuild stopped half-way leaves them right);
            # counted again whole at the end, for an upgrade that changed what they count.
            rollups.recount_all()
            return done
        with transaction.atomic():
            write(ids)
        done += len(ids)
        last = ids[-1]


def write(ticket_ids: Sequence[int]) -> list[TicketFact]:
    """Compute and store the facts of ``ticket_ids`` (in the caller's transaction), and
    count the change in the rollups."""
    # The rollups' lock lasts until the transaction ends: there must be one (READ COMMITTED,
    # Django's default, lets the writer that waited read what the other committed).
    assert connection.in_atomic_block, "facts.write needs a transaction"
    facts = compute(ticket_ids)
    rollups.lock()
    before = rollups.rows_of(ticket_ids)
    TicketFact.objects.filter(ticket_id__in=ticket_ids).exclude(
        ticket_id__in=[f.ticket_id for f in facts]
    ).delete()
    if facts:
        TicketFact.objects.bulk_create(
            facts,
            update_conflicts=True,
            unique_fields=["ticket"],
            update_fields=[f.name for f in TicketFact._meta.concrete_fields if not f.primary_key],
        )
    rollups.apply(before, [rollups.row_of(f) for f in facts])
    return facts


# --- the computation ------------------------------------------------------------------------


@dataclass
class _History:
    tier_changes: list[tuple[dt.datetime, str]] = field(default_factory=list)  # (at, old)
    escalations: list[tuple[str, str, int]] = field(default_factory=list)  # dir, kind, from
    clocks: dict[str, list[tuple[str, bool, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # kind -> [(status, breached, policy id)], oldest first
    requester_replies: list[dt.datetime] = field(default_factory=list)
    rating: tuple[int, dt.datetime] | None = None


def compute(ticket_ids: Sequence[int]) -> list[TicketFact]:
    """The facts of the tickets among ``ticket_ids`` that exist, from their history."""
    tickets = list(Ticket.objects.filter(pk__in=ticket_ids).order_by("pk"))
    if not tickets:
        return []
    ids = [t.pk for t in tickets]
    tiers = {t.pk: t for t in Tier.objects.all()}
    by_code = {t.code: t for t in tiers.values()}
    history: dict[int, _History] = defaultdict(_History)
    for ticket_id, at, old in (
        TimelineEntry.objects.filter(ticket_id__in=ids, field="tier")
        .exclude(kind=TimelineKind.ROUTED)
        .order_by("at", "id")
        .values_list("ticket_id", "at", "old_value")
    ):
        history[ticket_id].tier_changes.append((at, old))
    for ticket_id, direction, kind, from_tier in (
        Escalation.objects.filter(ticket_id__in=ids)
        .order_by("at", "id")
        .values_list("ticket_id", "direction", "kind", "from_tier_id")
    ):
        history[ticket_id].escalations.append((direction, kind, from_tier))
    for ticket_id, kind, status, breached_at, policy_id in (
        SlaClock.objects.filter(
            ticket_id__in=ids, kind__in=[ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION]
        )
        .order_by("id")
        .values_list("ticket_id", "kind", "status", "breached_at", "policy_id")
    ):
        history[ticket_id].clocks[kind].append((status, breached_at is not None, policy_id))
    for ticket_id, at in (
        Comment.objects.filter(
            ticket_id__in=ids, is_internal=False, author_id=F("ticket__requester_id")
        )
        .order_by("created_at", "id")
        .values_list("ticket_id", "created_at")
    ):
        history[ticket_id].requester_replies.append(at)
    for ticket_id, score, at in SatisfactionRating.objects.filter(ticket_id__in=ids).values_list(
        "ticket_id", "score", "created_at"
    ):
        history[ticket_id].rating = (score, at)
    calendars = _Calendars()
    now = clock.now()
    return [_fact(t, history[t.pk], tiers, by_code, calendars, now) for t in tickets]


def _fact(
    t: Ticket,
    h: _History,
    tiers: dict[int, Tier],
    by_code: dict[str, Tier],
    calendars: _Calendars,
    now: dt.datetime,
) -> TicketFact:
    current = tiers[t.tier_id]
    # The tier it was routed to at creation: the one the first tier change left.
    first = by_code.get(h.tier_changes[0][1], current) if h.tier_changes else current
    visited = {first.level, current.level} | {
        by_code[old].level for _, old in h.tier_changes if old in by_code
    }
    ups = [e for e in h.escalations if e[0] == Direction.UP]
    escalated_from = {tiers[e[2]].level for e in ups if e[2] in tiers}
    resolved = t.status in (Status.RESOLVED, Status.CLOSED)
    resolved_at = t.resolved_at if resolved else None
    # The tier that resolved it: the one it was in at its (last) resolution; its tier may
    # have been edited since.
    resolver = current
    if resolved_at is not None:
        later = [old for at, old in h.tier_changes if at > resolved_at]
        resolver = by_code.get(later[0], current) if later else current
    replies = 0
    if t.first_response_at is not None:
        end = resolved_at or now
        replies = sum(1 for at in h.requester_replies if t.first_response_at < at <= end)
    policy_id = next(
        (c[2] for kind in (ClockKind.RESOLUTION, ClockKind.FIRST_RESPONSE) for c in h.clocks[kind]),
        None,
    )
    cal = calendars.for_ticket(policy_id, t.organization_id)

    def business(end: dt.datetime | None) -> int | None:
        if end is None:
            return None
        if cal is None:
            return max(0, int((end - t.created_at).total_seconds()))
        return int(cal.between(t.created_at, end).total_seconds())

    def wall(end: dt.datetime | None) -> int | None:
        return None if end is None else max(0, int((end - t.created_at).total_seconds()))

    duplicate = resolved and t.resolution_code == ResolutionCode.DUPLICATE
    fcr = (
        resolved
        and not duplicate
        and not ups
        and t.reopen_count == 0
        and resolver.pk == first.pk
        and replies <= 1
    )
    return TicketFact(
        ticket_id=t.pk,
        organization_id=t.organization_id,
        created_at=t.created_at,
        source=t.source,
        priority=t.priority,
        category_id=t.category_id,
        first_tier=first,
        tier=current,
        resolved_tier=resolver if resolved_at is not None else None,
        duplicate=duplicate,
        tiers_visited=_bits(visited),
        assignee_id=t.assignee_id,
        is_open=t.status in OPEN_STATUSES,
        first_response_at=t.first_response_at,
        resolved_at=resolved_at,
        closed_at=t.closed_at if t.status == Status.CLOSED else None,
        response_seconds=wall(t.first_response_at),
        response_business_seconds=business(t.first_response_at),
        resolution_seconds=wall(resolved_at),
        resolution_business_seconds=business(resolved_at),
        escalations=len(ups),
        automatic_escalations=sum(1 for e in ups if e[1] != MANUAL),
        de_escalations=sum(1 for e in h.escalations if e[0] == Direction.DOWN),
        escalated_from=_bits(escalated_from),
        reopens=t.reopen_count,
        requester_replies=replies,
        first_contact_resolution=fcr,
        sla_response=_outcome(h.clocks[ClockKind.FIRST_RESPONSE]),
        sla_resolution=_outcome(h.clocks[ClockKind.RESOLUTION]),
        sla_policy_id=policy_id,
        csat_score=h.rating[0] if h.rating else None,
        rated_at=h.rating[1] if h.rating else None,
        # tierdesk did it itself (self-service): the resolution code only automation sets
        resolved_by_automation=resolved and t.resolution_code == ResolutionCode.AUTOMATED,
        computed_at=now,
    )


def _bits(levels: Iterable[int]) -> int:
    """Levels as bits; a level above ``MAX_LEVEL`` (tiers allow 1-62) is left out rather
    than overflow the column."""
    value = 0
    for level in levels:
        if 0 <= level <= MAX_LEVEL:
            value |= 1 << level
    return value


def _outcome(clocks: list[tuple[str, bool, int]]) -> str:
    """A ticket's outcome for one kind of clock: breached if any of its clocks of that kind
    was (a reopened ticket's second resolution clock included), met when the last one
    stopped in time, running while it runs; empty without a clock."""
    if not clocks:
        return ""
    if any(breached for _, breached, _ in clocks):
        return SlaOutcome.BREACHED
    return SlaOutcome.MET if clocks[-1][0] == "stopped" else SlaOutcome.RUNNING


class _Calendars:
    """The business calendar a ticket's durations are counted in: its SLA policy's (the
    policy its clocks ran on; without clocks, its organization's active policy or the
    MSP-wide default); None (wall time) with no policy at all."""

    def __init__(self) -> None:
        self._policies: dict[int, Any] | None = None
        self._by_calendar: dict[int, Calendar] = {}

    def _load(self) -> dict[int, Any]:
        if self._policies is None:
            self._policies = {
                p.pk: p for p in SlaPolicy.objects.select_related("calendar").order_by("pk")
            }
        return self._policies

    def for_ticket(self, policy_id: int | None, organization_id: int) -> Calendar | None:
        policies = self._load()
        policy = policies.get(policy_id) if policy_id is not None else None
        if policy is None:
            active = [p for p in policies.values() if p.is_active]
            policy = next((p for p in active if p.organization_id == organization_id), None)
            policy = policy or next((p for p in active if p.organization_id is None), None)
        if policy is None:
            return None
        return self._calendar(policy.calendar)

    def _calendar(self, model: BusinessCalendar) -> Calendar:
        found = self._by_calendar.get(model.pk)
        if found is None:
            found = self._by_calendar[model.pk] = calendar_of(model)
        return found
