"""SLA clocks: started, paused, resumed, re-targeted and stopped with their ticket, and swept
for warnings and breaches.

A clock measures business time (its policy's calendar) from ``started_at``. Paused time is
kept as ``paused``, a duration of business time, so every instant follows from one formula:

    due_at  = calendar.add(started_at, target + paused)
    warn_at = calendar.add(started_at, target x warning % + paused)

A pause (pending customer / third party) freezes the clock; resuming adds the business time
it was paused and recomputes both instants. A change of priority or of the policy's
targets recomputes them from the new target. All instants are absolute UTC.

``next_check_at`` is the next instant the sweep must look at a running clock (its warning,
its due instant, or a percentage another app watches, see ``watch``), and empty otherwise;
the sweep reads an index on it, so its cost follows the clocks that are due, not the clocks
that exist. Warning and breach events are written at most once per clock: each is guarded
by a conditional update of ``warned_at`` / ``breached_at``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import transaction

from tierdesk.core import bulk, config
from tierdesk.core import clock as wall
from tierdesk.core.events import emit_all, event
from tierdesk.core.models import OutboxEvent
from tierdesk.sla.calendar import Calendar
from tierdesk.sla.models import (
    BusinessCalendar,
    ClockKind,
    ClockStatus,
    SlaClock,
    SlaPolicy,
    SlaTarget,
)
from tierdesk.tickets.lifecycle import Change, TicketChange
from tierdesk.tickets.models import Status, Ticket
from tierdesk.tickets.services import lock_many

log = logging.getLogger(__name__)

# A clock the sweep could not handle is looked at again after this long.
RETRY = dt.timedelta(minutes=5)

PAUSING = frozenset({Status.PENDING_CUSTOMER, Status.PENDING_THIRD_PARTY})

# --- calendars, cached per process by (id, updated_at): an edit bumps updated_at ----------

_calendars: dict[tuple[int, dt.datetime], Calendar] = {}


def calendar_of(model: BusinessCalendar) -> Calendar:
    key = (model.pk, model.updated_at)
    found = _calendars.get(key)
    if found is None:
        loaded = BusinessCalendar.objects.prefetch_related("hours", "holidays").get(pk=model.pk)
        found = loaded.as_calendar()
        if len(_calendars) > 256:
            _calendars.clear()
        _calendars[(loaded.pk, loaded.updated_at)] = found
    return found


# --- watchers: other apps' percentages (escalation's "resolution SLA used N %") -----------


Percents = Callable[[list[SlaClock]], list[list[int]]]
Reached = Callable[[list[tuple[SlaClock, int]]], None]


@dataclass(frozen=True)
class Watcher:
    # The percentages that matter for each of these clocks (whose ``ticket`` is set).
    percents: Percents
    # (clock, percent used) for clocks that passed one of their percentages: called in the
    # sweep's transaction, with the clocks' tickets locked and current.
    reached: Reached


_watchers: list[Watcher] = []
# Tickets whose resolution clock a sweep's batch holds while its watchers run.
_held: ContextVar[frozenset[int]] = ContextVar("tierdesk_sla_held", default=frozenset())


def watch(percents: Percents, reached: Reached) -> None:
    _watchers.append(Watcher(percents, reached))


# --- the arithmetic of one clock ------------------------------------------------------------


def _at_percent(cal: Calendar, c: SlaClock, percent: float) -> dt.datetime:
    share = dt.timedelta(seconds=math.floor(c.target_minutes * 60 * percent / 100))
    return cal.add(c.started_at, share + c.paused)


def used_seconds(cal: Calendar, c: SlaClock, now: dt.datetime) -> int:
    """Business seconds the clock has run (pauses excluded) up to ``now``."""
    end = c.paused_at if c.status == ClockStatus.PAUSED and c.paused_at else now
    if c.status == ClockStatus.STOPPED and c.stopped_at:
        end = c.stopped_at
    run = cal.between(c.started_at, end) - c.paused
    return max(0, math.floor(run.total_seconds()))


def seconds_left(cal: Calendar, c: SlaClock, now: dt.datetime) -> int:
    """Business seconds until due (negative: overdue), frozen while paused or stopped."""
    return c.target_minutes * 60 - used_seconds(cal, c, now)


def _plan(c: SlaClock, now: dt.datetime) -> None:
    """Recompute due, warning and the next check of a clock."""
    _plan_all([c], now)


def _plan_all(clocks: list[SlaClock], now: dt.datetime, on: Calendar | None = None) -> None:
    """Recompute due, warning and the next check of clocks (whose ``ticket`` is set), on
    their policies' calendars or ``on``; the watchers are asked once for all of them."""
    watched = [w.percents(clocks) for w in _watchers]
    for i, c in enumerate(clocks):
        cal = on or calendar_of(c.policy.calendar)
        c.due_at = _at_percent(cal, c, 100)
        c.warn_at = _at_percent(cal, c, c.policy.warning_percent)
        if c.status != ClockStatus.RUNNING:
            c.next_check_at = None
            continue
        candidates = []
        if c.warned_at is None:
            candidates.append(c.warn_at)
        if c.breached_at is None:
            candidates.append(c.due_at)
        used = used_seconds(cal, c, now)
        for percents in watched:
            for p in percents[i]:
                at = _at_percent(cal, c, p)
                # Not yet passed (or passed since the last look): the sweep calls reached().
                if at > now or p * c.target_minutes * 60 / 100 <= used:
                    candidates.append(at)
        c.next_check_at = min(candidates) if candidates else None


# --- policies -------------------------------------------------------------------------------


def _active_targets() -> dict[tuple[int | None, str], SlaTarget]:
    return {
        (t.policy.organization_id, t.priority): t
        for t in SlaTarget.objects.filter(policy__is_active=True).select_related("policy__calendar")
    }


def target_for(organization_id: int, priority: str) -> SlaTarget | None:
    """The target for ``priority``: from the organization's active policy, else from the
    MSP-wide default (so a contract that sets only some priorities leaves the others to
    the default). With its policy and calendar, from the per-process configuration cache."""
    targets = config.cached("sla.targets", _active_targets)
    return targets.get((organization_id, priority)) or targets.get((None, priority))


def _minutes(target: SlaTarget, kind: str) -> int | None:
    if kind == ClockKind.FIRST_RESPONSE:
        return target.first_response_minutes
    if kind == ClockKind.NEXT_UPDATE:
        return target.next_update_minutes
    return target.resolution_minutes


def _new_clock(
    ticket: Ticket, policy: SlaPolicy, kind: str, minutes: int, now: dt.datetime
) -> SlaClock:
    c = SlaClock(
        ticket=ticket,
        organization_id=ticket.organization_id,
        policy=policy,
        kind=kind,
        status=ClockStatus.RUNNING,
        target_minutes=minutes,
        started_at=now,
        paused=dt.timedelta(0),
    )
    _plan(c, now)
    return c


def _all_policies() -> dict[int, SlaPolicy]:
    return {p.pk: p for p in SlaPolicy.objects.select_related("calendar")}


def _with_policies(clocks: list[SlaClock]) -> list[SlaClock]:
    """Attach each clock's policy (with its calendar) from the configuration cache."""
    policies = config.cached("sla.policies", _all_policies)
    for c in clocks:
        found = policies.get(c.policy_id)
        if found is None:  # written since the cache was loaded, in this transaction
            found = SlaPolicy.objects.select_related("calendar").get(pk=c.policy_id)
        c.policy = found
    return clocks


def _live(ticket: Ticket) -> list[SlaClock]:
    clocks = _with_policies(
        list(
            SlaClock.objects.select_for_update(of=("self",))
            .filter(ticket=ticket)
            .exclude(status=ClockStatus.STOPPED)
            .order_by("id")
        )
    )
    for c in clocks:
        c.ticket = ticket  # the changed ticket, not its row as stored before this change
    return clocks


def _stop(c: SlaClock, now: dt.datetime, ticket: Ticket) -> None:
    cal = calendar_of(c.policy.calendar)
    if c.status == ClockStatus.PAUSED and c.paused_at is not None:
        # Stopped while paused: the pause up to now counts as paused, so the due instant
        # moves by it before the breach test.
        c.paused += cal.between(c.paused_at, now)
        c.paused_at = None
        c.due_at = _at_percent(cal, c, 100)
        c.warn_at = _at_percent(cal, c, c.policy.warning_percent)
    c.status, c.stopped_at, c.next_check_at = ClockStatus.STOPPED, now, None
    if c.breached_at is None and now > c.due_at:
        # Stopped late, before the sweep saw it: the breach happened at the due instant.
        c.breached_at = c.due_at
        _event("sla.breached", c, ticket)
    c.save()


def _event(name: str, c: SlaClock, ticket: Ticket) -> None:
    emit_all([_event_of(name, c, ticket)])


def _event_of(name: str, c: SlaClock, ticket: Ticket) -> OutboxEvent:
    return event(
        name,
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload={
            "clock_id": c.pk,
            "ticket_id": ticket.pk,
            "key": ticket.key,
            "kind": c.kind,
            "priority": ticket.priority,
            "tier": ticket.tier.code,
            "due_at": c.due_at.isoformat(),
            "target_minutes": c.target_minutes,
        },
    )


# --- the lifecycle hook ---------------------------------------------------------------------


def on_ticket_changes(changes: list[TicketChange]) -> None:
    """Lifecycle hook. Tier moves (a batch escalation moves many tickets) are replanned
    together; every other change in its order."""
    moved: list[TicketChange] = []
    for change in changes:
        if change.change == Change.TIER:
            moved.append(change)
            continue
        _on_tier_moves(moved)
        moved = []
        _on_change(change)
    _on_tier_moves(moved)


def _on_tier_moves(changes: list[TicketChange]) -> None:
    """Which SLA-percentage rules watch a resolution clock depends on the ticket's tier:
    replan the running ones."""
    # The sweep replans the resolution clocks it holds once its watchers are done (a
    # ticket has at most one live resolution clock): only the others are read here.
    held = _held.get()
    moved = {c.ticket.pk: c.ticket for c in changes if c.ticket.pk not in held}
    if not moved:
        return
    running = _with_policies(
        list(
            SlaClock.objects.select_for_update(of=("self",))
            .filter(
                ticket_id__in=sorted(moved),
                kind=ClockKind.RESOLUTION,
                status=ClockStatus.RUNNING,
            )
            .order_by("id")
        )
    )
    for c in running:
        c.ticket = moved[c.ticket_id]
    before = [c.next_check_at for c in running]
    _plan_all(running, changes[0].at)
    replanned = [c for c, b in zip(running, before, strict=True) if c.next_check_at != b]
    if replanned:
        bulk.update_each(replanned, ["next_check_at"])


def _on_change(change: TicketChange) -> None:
    ticket, now = change.ticket, change.at
    if change.change == Change.CREATED:
        target = target_for(ticket.organization_id, ticket.priority)
        clocks = (
            [
                _new_clock(ticket, target.policy, kind, minutes, now)
                for kind in (ClockKind.FIRST_RESPONSE, ClockKind.RESOLUTION)
                if (minutes := _minutes(target, kind))
            ]
            if target is not None
            else []
        )
        bulk.insert_all(clocks)
        ticket.loaded_clocks = clocks  # handed to the answer: it reads no more
        return
    if change.change == Change.STATUS and not _moves_clocks(change.old, change.new):
        return
    live = _live(ticket)
    if change.change == Change.PUBLIC_REPLY:
        for c in live:
            if c.kind in (ClockKind.FIRST_RESPONSE, ClockKind.NEXT_UPDATE):
                _stop(c, now, ticket)
        _start_next_update(ticket, now)
    elif change.change == Change.PRIORITY:
        target = target_for(ticket.organization_id, ticket.priority)
        for c in live:
            minutes = _minutes(target, c.kind) if target else None
            if target is None or minutes is None:
                continue  # no target for the new priority: the clock keeps the old one
            c.policy, c.target_minutes = target.policy, minutes
            _plan(c, now)
            c.save()
    elif change.change == Change.STATUS:
        _on_status(ticket, live, change.old, change.new, now)


def _moves_clocks(old: str, new: str) -> bool:
    """Whether a status change pauses, resumes or stops clocks (new -> open does not)."""
    settled = (Status.RESOLVED, Status.CLOSED)
    return old in PAUSING or new in PAUSING or old in settled or new in settled


def _start_next_update(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.status in (Status.RESOLVED, Status.CLOSED):
        return
    target = target_for(ticket.organization_id, ticket.priority)
    if target is not None and target.next_update_minutes:
        c = _new_clock(
            ticket, target.policy, ClockKind.NEXT_UPDATE, target.next_update_minutes, now
        )
        if ticket.status in PAUSING:
            c.status, c.paused_at, c.next_check_at = ClockStatus.PAUSED, now, None
        c.save()


def _on_status(ticket: Ticket, live: list[SlaClock], old: str, new: str, now: dt.datetime) -> None:
    if new in (Status.RESOLVED, Status.CLOSED):
        for c in live:
            _stop(c, now, ticket)
        return
    if new in PAUSING:
        for c in live:
            if c.status == ClockStatus.RUNNING:
                c.status, c.paused_at, c.next_check_at = ClockStatus.PAUSED, now, None
                c.save()
        return
    # Back to work: resume paused clocks; a reopened ticket's resolution clock resumes with
    # the time it was resolved excluded, like a pause.
    for c in live:
        if c.status == ClockStatus.PAUSED and c.paused_at is not None:
            cal = calendar_of(c.policy.calendar)
            c.paused += cal.between(c.paused_at, now)
            c.status, c.paused_at = ClockStatus.RUNNING, None
            _plan(c, now)
            c.save()
    if old == Status.RESOLVED:
        last = (
            SlaClock.objects.select_for_update(of=("self",))
            .filter(ticket=ticket, kind=ClockKind.RESOLUTION, status=ClockStatus.STOPPED)
            .select_related("policy__calendar")
            .order_by("-id")
            .first()
        )
        if last is not None and last.stopped_at is not None:
            cal = calendar_of(last.policy.calendar)
            last.paused += cal.between(last.stopped_at, now)
            last.status, last.stopped_at = ClockStatus.RUNNING, None
            # The priority (or its policy) may have changed while the ticket was resolved:
            # the resumed clock runs to today's target for it.
            target = target_for(ticket.organization_id, ticket.priority)
            minutes = _minutes(target, last.kind) if target else None
            if target is not None and minutes:
                last.policy, last.target_minutes = target.policy, minutes
            last.ticket = ticket
            _plan(last, now)
            last.save()
        _start_next_update(ticket, now)


def retarget_policy(policy: SlaPolicy) -> int:
    """Recompute the live clocks of ``policy`` after its targets or warning changed."""
    now = wall.now()
    count = 0
    for c in (
        SlaClock.objects.select_for_update(of=("self",))
        .filter(policy=policy)
        .exclude(status=ClockStatus.STOPPED)
        .select_related("ticket", "policy__calendar")
    ):
        target = target_for(c.organization_id, c.ticket.priority)
        minutes = _minutes(target, c.kind) if target else None
        if target is not None and minutes:
            c.policy, c.target_minutes = target.policy, minutes
        _plan(c, now)
        c.save()
        count += 1
    return count


def replan_running(kind: str) -> int:
    """Recompute the next check of every running clock of ``kind`` (a watched percentage
    was added or changed). One pass over the running clocks, in batches."""
    now = wall.now()
    count = 0
    ids = list(
        SlaClock.objects.filter(kind=kind, status=ClockStatus.RUNNING).values_list("pk", flat=True)
    )
    for start in range(0, len(ids), 500):
        chunk = list(
            SlaClock.objects.filter(pk__in=ids[start : start + 500]).select_related(
                "ticket__tier", "policy__calendar"
            )
        )
        _plan_all(chunk, now)
        for c in chunk:
            # Only if it is still running: a ticket change may have stopped or paused it
            # since it was read (no lock is held over the whole pass).
            count += SlaClock.objects.filter(pk=c.pk, status=ClockStatus.RUNNING).update(
                due_at=c.due_at, warn_at=c.warn_at, next_check_at=c.next_check_at
            )
    return count


# --- the sweep ------------------------------------------------------------------------------


def sweep(*, limit: int = 1000, batch: int = 100) -> dict[str, int]:
    """Raise warnings and breaches for clocks whose next check has come, and call the
    watchers whose percentages were passed. Up to ``batch`` clocks per short transaction,
    under the row locks of their tickets and of themselves; a concurrent sweep waits, then
    finds them handled. A batch that fails is retried clock by clock, so one clock that
    cannot be handled (logged, looked at again later) does not hold up the others.
    Returns counts."""
    now = wall.now()
    counts = {"selected": 0, "checked": 0, "warned": 0, "breached": 0, "watched": 0}
    # A clock that stopped or paused while a replan was in flight may keep a check it no
    # longer needs; it would sort first forever. Few rows, read through the same index.
    SlaClock.objects.filter(next_check_at__lte=now).exclude(status=ClockStatus.RUNNING).update(
        next_check_at=None
    )
    due = list(
        SlaClock.objects.filter(next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", "ticket_id")[:limit]
    )
    counts["selected"] = len(due)
    for start in range(0, len(due), batch):
        chunk = due[start : start + batch]
        try:
            _add(counts, _sweep_batch(chunk, now))
        except Exception:
            if len(chunk) == 1:
                _set_aside(chunk[0][0], now)
                continue
            log.warning("SLA sweep: a batch of %d clocks failed; retrying one by one", len(chunk))
            for item in chunk:
                try:
                    _add(counts, _sweep_batch([item], now))
                except Exception:
                    _set_aside(item[0], now)
    return counts


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for key, value in more.items():
        counts[key] += value


def _set_aside(clock_id: int, now: dt.datetime) -> None:
    log.exception("SLA sweep: clock %s could not be handled; looking again in %s", clock_id, RETRY)
    SlaClock.objects.filter(pk=clock_id).update(next_check_at=now + RETRY)


def _sweep_batch(chunk: list[tuple[int, int]], now: dt.datetime) -> dict[str, int]:
    """One transaction: lock the tickets (in id order, like every batch), then the clocks
    still due; raise their warnings and breaches; hand the passed percentages to the
    watchers; replan and write the clocks back — a few statements for the whole batch."""
    counts = {"checked": 0, "warned": 0, "breached": 0, "watched": 0}
    with transaction.atomic(), config.pinned():
        tickets = lock_many([ticket_id for _, ticket_id in chunk])
        clocks = [
            c
            for c in _with_policies(
                list(
                    SlaClock.objects.select_for_update(of=("self",))
                    .filter(
                        pk__in=[clock_id for clock_id, _ in chunk],
                        next_check_at__lte=now,
                        status=ClockStatus.RUNNING,
                    )
                    .order_by("id")
                )
            )
            if c.ticket_id in tickets  # else another sweep, or a ticket change, got there
        ]
        if not clocks:
            return counts
        events: list[OutboxEvent] = []
        for c in clocks:
            c.ticket = ticket = tickets[c.ticket_id]
            if c.warned_at is None and c.warn_at <= now:
                c.warned_at = now
                events.append(_event_of("sla.warning", c, ticket))
                counts["warned"] += 1
            if c.breached_at is None and c.due_at <= now:
                c.breached_at = c.due_at
                events.append(_event_of("sla.breached", c, ticket))
                counts["breached"] += 1
        counts["checked"] = len(clocks)
        if events:
            emit_all(events)
        held = _held.set(frozenset(c.ticket_id for c in clocks if c.kind == ClockKind.RESOLUTION))
        try:
            _call_watchers(clocks, now, counts)
        finally:
            _held.reset(held)
        _plan_all(clocks, now)
        bulk.update_each(clocks, ["warned_at", "breached_at", "due_at", "warn_at", "next_check_at"])
    return counts


def _call_watchers(clocks: list[SlaClock], now: dt.datetime, counts: dict[str, int]) -> None:
    for w in _watchers:
        reached = []
        for c, percents in zip(clocks, w.percents(clocks), strict=True):
            used = used_seconds(calendar_of(c.policy.calendar), c, now)
            reached += [(c, p) for p in percents if p * c.target_minutes * 60 / 100 <= used]
        if reached:
            w.reached(reached)
            counts["watched"] += len(reached)
