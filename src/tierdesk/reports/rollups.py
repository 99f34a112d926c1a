"""Rollups: the facts added up per organization, day and dimension (reports.DayCount).

A dashboard over 90 days of a large client would otherwise read tens of thousands of
facts several times. Each fact counts in a few cells: on the day it was created (by its
first tier, priority, category, source, SLA policy, and each tier level it visited), on
the day of its resolution (by the resolving tier, ...), of its closing, of its rating.
Days are the organization's, in its time zone.

The cells are kept as the facts change: ``facts.write`` hands over each ticket's facts
before and after, and the difference is added to the cells (``apply``) in the same
transaction, under one lock (``lock``) so that two writers never count against the same
old facts. ``recount`` counts an organization's cells again from its facts, whole: after
the upgrade that brought rollups, when its time zone changes (its days move), and in
``tierdesk reports rebuild``; ``check`` compares the cells with a recount (the tests do,
and so can an operator). What each report reads from them is in reports.queries.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min, Q

from tierdesk.core.models import Organization
from tierdesk.reports.models import DayCount, SlaOutcome, StaleRollup, TicketFact

CREATED, RESOLVED, CLOSED, RATED = "created", "resolved", "closed", "rated"
COUNTERS = (
    "n", "duplicates", "response_met", "response_breached", "resolution_met",
    "resolution_breached", "escalated", "fcr", "reopened", "automation", "rated",
    "score_1", "score_2", "score_3", "score_4", "score_5",
)  # fmt: skip
_N, _DUP, _RESP_MET, _RESP_BR, _RES_MET, _RES_BR, _ESC, _FCR, _REOPEN, _AUTO, _RATED = range(11)
_SCORE_1 = 11
WIDTH = len(COUNTERS)

# What a fact contributes from: these fields, in this order (see ``row_of``).
FIELDS = (
    "organization_id", "created_at", "resolved_at", "closed_at", "rated_at", "first_tier_id",
    "resolved_tier_id", "priority", "category_id", "source", "duplicate", "tiers_visited",
    "escalated_from", "first_contact_resolution", "reopens", "resolved_by_automation",
    "csat_score", "sla_response", "sla_resolution", "sla_policy_id", "assignee_id",
)  # fmt: skip
Row = tuple[Any, ...]
Cell = tuple[int, dt.date, str, str, str]  # organization, day, kind, dim, value
Cells = dict[Cell, list[int]]

RECOUNT_CHUNK = 5_000  # facts read at a time by a recount
RECOUNT_DAYS = 31  # days recounted per transaction
INSERT_CHUNK = 500  # cells per statement
LOCK_KEY = 0x7D_0001  # PostgreSQL advisory lock of the rollups' writers

log = logging.getLogger(__name__)


def lock() -> None:
    """Serialize the writers of the rollups until the transaction ends: each applies the
    difference between the facts it read and those it wrote, so a second writer must read
    after the first has committed. SQLite has one writer at a time already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def row_of(fact: TicketFact) -> Row:
    return tuple(getattr(fact, name) for name in FIELDS)


def rows_of(ticket_ids: Sequence[int]) -> list[Row]:
    """The stored facts of ``ticket_ids``, as ``contribute`` reads them."""
    return list(TicketFact.objects.filter(ticket_id__in=ticket_ids).values_list(*FIELDS))


class _Zones:
    """Organizations' time zones, read once per use."""

    def __init__(self) -> None:
        self._zones: dict[int, zoneinfo.ZoneInfo] = {}

    def __getitem__(self, organization_id: int) -> zoneinfo.ZoneInfo:
        zone = self._zones.get(organization_id)
        if zone is None:
            self.load([organization_id])
            zone = self._zones[organization_id]
        return zone

    def load(self, ids: Iterable[int]) -> None:
        missing = set(ids) - set(self._zones)
        if missing:
            for pk, name in Organization.objects.filter(pk__in=missing).values_list(
                "pk", "time_zone"
            ):
                self._zones[pk] = zoneinfo.ZoneInfo(name)


def _bump(cells: Cells, key: Cell, counts: list[int], sign: int) -> None:
    found = cells.get(key)
    if found is None:
        cells[key] = [sign * c for c in counts]
        return
    for i, c in enumerate(counts):
        if c:
            found[i] += sign * c


def _levels(bits: int) -> Iterable[int]:
    level = 0
    while bits:
        if bits & 1:
            yield level
        bits >>= 1
        level += 1


def contribute(
    cells: Cells, row: Row, zone: zoneinfo.ZoneInfo, sign: int = 1, tier: int | None = None
) -> None:
    """Add (``sign`` 1) or take away (-1) one fact's counts in ``cells``; with ``tier``
    (a tier's id), only where the fact counts in that tier: its creation if it was first
    routed there, the rest if it was resolved there (the reports' filter by tier)."""
    (org, created_at, resolved_at, closed_at, rated_at, first_tier, resolved_tier, priority,
     category, source, duplicate, visited, escalated_from, fcr, reopens, automation, score,
     sla_response, sla_resolution, policy, assignee) = row  # fmt: skip
    created_here = tier is None or first_tier == tier
    later_here = tier is None or resolved_tier == tier
    category_value = "" if category is None else str(category)
    resolved_tier_value = "" if resolved_tier is None else str(resolved_tier)

    counts = [0] * WIDTH
    counts[_N] = 1
    counts[_RESP_MET] = sla_response == SlaOutcome.MET
    counts[_RESP_BR] = sla_response == SlaOutcome.BREACHED
    counts[_RES_MET] = sla_resolution == SlaOutcome.MET
    counts[_RES_BR] = sla_resolution == SlaOutcome.BREACHED
    day = created_at.astimezone(zone).date()
    dims = [("", ""), ("tier", str(first_tier)), ("priority", priority),
            ("category", category_value), ("source", source)]  # fmt: skip
    if policy is not None:
        dims.append(("policy", str(policy)))
    for dim, value in dims if created_here else ():
        _bump(cells, (org, day, CREATED, dim, value), counts, sign)
    for level in _levels(visited) if created_here else ():
        moved = [0] * WIDTH
        moved[_N] = 1
        moved[_ESC] = (escalated_from >> level) & 1
        _bump(cells, (org, day, CREATED, "visited", str(level)), moved, sign)
    if not later_here:
        return

    later = [("", ""), ("tier", resolved_tier_value), ("priority", priority),
             ("category", category_value), ("source", source)]  # fmt: skip
    if resolved_at is not None:
        day = resolved_at.astimezone(zone).date()
        counts = [0] * WIDTH
        if duplicate:
            counts[_DUP] = 1
        else:
            counts[_N] = 1
            counts[_FCR] = bool(fcr)
            counts[_REOPEN] = reopens > 0
            counts[_AUTO] = bool(automation)
            counts[_RATED] = score is not None
        for dim, value in later:
            _bump(cells, (org, day, RESOLVED, dim, value), counts, sign)
        if assignee is not None:  # who it is assigned to (normally who resolved it)
            _bump(cells, (org, day, RESOLVED, "assignee", str(assignee)), counts, sign)
        if not duplicate:
            through = [0] * WIDTH
            through[_N] = 1
            for level in _levels(visited):
                _bump(cells, (org, day, RESOLVED, "visited", str(level)), through, sign)
    if closed_at is not None:
        day = closed_at.astimezone(zone).date()
        counts = [0] * WIDTH
        counts[_N] = 1
        for dim, value in later:
            _bump(cells, (org, day, CLOSED, dim, value), counts, sign)
    if rated_at is not None and score is not None:
        counts = [0] * WIDTH
        counts[_N] = 1
        counts[_SCORE_1 + score - 1] = 1
        _bump(cells, (org, rated_at.astimezone(zone).date(), RATED, "", ""), counts, sign)


def apply(old: Iterable[Row], new: Iterable[Row]) -> None:
    """Add to the cells what changed from facts ``old`` to facts ``new`` (the same tickets
    before and after a write; a ticket in one list only was added or removed). Call under
    ``lock``, in the transaction that writes the facts."""
    zones = _Zones()
    old, new = list(old), list(new)
    zones.load(r[0] for r in old + new)
    cells: Cells = {}
    for row in old:
        contribute(cells, row, zones[row[0]], -1)
    for row in new:
        contribute(cells, row, zones[row[0]], 1)
    _add(cells)


def _add(cells: Cells) -> None:
    """Add each cell's counts to its row, creating the rows that are missing."""
    changed = [(key, c) for key, c in cells.items() if any(c)]
    if not changed:
        return
    table = DayCount._meta.db_table
    columns = ", ".join(COUNTERS)
    increments = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COUNTERS)
    one = "(" + ", ".join(["%s"] * (5 + WIDTH)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(changed), INSERT_CHUNK):
            chunk = changed[start : start + INSERT_CHUNK]
            params: list[Any] = []
            for (org, day, kind, dim, value), counts in chunk:
                params.extend((org, day, kind, dim, value, *counts))
            # Fixed text: the table, its columns and placeholders; values are parameters.
            cursor.execute(
                f"INSERT INTO {table} (organization_id, day, kind, dim, value, {columns}) "  # noqa: S608
                f"VALUES {', '.join([one] * len(chunk))} "
                f"ON CONFLICT (organization_id, day, kind, dim, value) DO UPDATE SET {increments}",
                params,
            )


def count(organization_id: int) -> Cells:
    """An organization's cells counted from its facts (nothing written)."""
    zone = _Zones()[organization_id]
    cells: Cells = {}
    facts = TicketFact.objects.filter(organization_id=organization_id).values_list(*FIELDS)
    for row in facts.iterator(chunk_size=RECOUNT_CHUNK):
        contribute(cells, row, zone)
    return {key: c for key, c in cells.items() if any(c)}


def stored(organization_id: int) -> Cells:
    """An organization's cells as stored (cells that count nothing left out)."""
    found: Cells = {}
    for row in DayCount.objects.filter(organization_id=organization_id).values_list(
        "day", "kind", "dim", "value", *COUNTERS
    ):
        counts = list(row[4:])
        if any(counts):
            found[(organization_id, row[0], row[1], row[2], row[3])] = counts
    return found


def recount(organization_id: int) -> int:
    """Count an organization's cells again from its facts, replacing what is stored, a
    stretch of ``RECOUNT_DAYS`` days at a time, each in its own transaction under ``lock``
    (on SQLite the lock is the database's: a large organization's whole recount would hold
    every writer for longer than they wait). Between stretches, writers add their changes to
    every cell as usual, so each stretch is right from its recount on. How many cells."""
    zone = _Zones()[organization_id]
    first, last = _day_span(organization_id, zone)
    written = 0
    start = first
    while start <= last:
        end = min(last, start + dt.timedelta(days=RECOUNT_DAYS - 1))
        with transaction.atomic():
            lock()
            written += _recount_days(organization_id, zone, start, end)
        start = end + dt.timedelta(days=1)
    return written


def _day_span(organization_id: int, zone: zoneinfo.ZoneInfo) -> tuple[dt.date, dt.date]:
    """The first and last day an organization's cells may hold: those of its facts'
    moments, and of the cells stored now (to clear those a time zone change moved)."""
    moments = TicketFact.objects.filter(organization_id=organization_id).aggregate(
        created=Min("created_at"),
        **{f"{name}_last": Max(f"{name}_at") for name in ("created", "resolved", "closed",
                                                          "rated")},
    )  # fmt: skip
    stored_days = DayCount.objects.filter(organization_id=organization_id).aggregate(
        first=Min("day"), last=Max("day")
    )
    days = [stored_days["first"], stored_days["last"]] + [
        value.astimezone(zone).date() for value in moments.values() if value is not None
    ]
    found = [d for d in days if d is not None]
    if not found:
        today = dt.datetime.now(dt.UTC).astimezone(zone).date()
        return today, today - dt.timedelta(days=1)  # nothing to count
    return min(found), max(found)


def _recount_days(
    organization_id: int, zone: zoneinfo.ZoneInfo, first: dt.date, last: dt.date
) -> int:
    """The cells of days ``first`` to ``last`` counted again (in the caller's transaction,
    under ``lock``); how many."""
    start = dt.datetime.combine(first, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    moments = Q()
    for name in ("created_at", "resolved_at", "closed_at", "rated_at"):
        moments |= Q(**{f"{name}__gte": start, f"{name}__lt": end})
    cells: Cells = {}
    facts = TicketFact.objects.filter(moments, organization_id=organization_id)
    for row in facts.values_list(*FIELDS).iterator(chunk_size=RECOUNT_CHUNK):
        contribute(cells, row, zone)
    kept = {key: c for key, c in cells.items() if first <= key[1] <= last and any(c)}
    DayCount.objects.filter(organization_id=organization_id, day__gte=first,
                            day__lte=last).delete()  # fmt: skip
    DayCount.objects.bulk_create(
        (
            DayCount(
                organization_id=org, day=day, kind=kind, dim=dim, value=value,
                **dict(zip(COUNTERS, counts, strict=True)),
            )
            for (org, day, kind, dim, value), counts in kept.items()
        ),
        batch_size=INSERT_CHUNK,
    )  # fmt: skip
    return len(kept)


def check(organization_id: int) -> list[str]:
    """Where the stored cells differ from a recount: empty when they agree. Read under
    ``lock`` in one transaction, so writers wait and cannot show as differences."""
    with transaction.atomic():
        lock()
        want, have = count(organization_id), stored(organization_id)
    problems = []
    for key in sorted(set(want) | set(have), key=str):
        if want.get(key) != have.get(key):
            org, day, kind, dim, value = key
            counted, kept = (
                dict(zip(COUNTERS, c or [], strict=False)) for c in (want.get(key), have.get(key))
            )
            problems.append(
                f"organization {org}, {day.isoformat()}, {kind} {dim or 'all'} {value}: "
                f"counted {counted}, stored {kept}"
            )
    return problems


def mark_stale(organization_ids: Iterable[int]) -> None:
    """Have the worker count these organizations' cells again (a later mark than the one
    a recount started from makes it count again)."""
    now = dt.datetime.now(dt.UTC)
    StaleRollup.objects.bulk_create(
        [StaleRollup(organization_id=i, marked_at=now) for i in set(organization_ids)],
        update_conflicts=True,
        unique_fields=["organization_id"],
        update_fields=["marked_at"],
    )


def ticket_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """pre_delete of a ticket: its organization's rollups are counted again."""
    mark_stale([instance.organization_id])


def refresh_stale() -> int:
    """Recount the organizations marked stale; how many. The mark goes when the recount
    is done, unless the organization was marked again meanwhile."""
    done = 0
    for organization_id, marked_at in list(
        StaleRollup.objects.order_by("organization_id").values_list("organization_id", "marked_at")
    ):
        try:
            if Organization.objects.filter(pk=organization_id).exists():
                recount(organization_id)
            StaleRollup.objects.filter(
                organization_id=organization_id, marked_at__lte=marked_at
            ).delete()
            done += 1
        except Exception:  # the others still get theirs; this one is tried next minute
            log.exception("report rollups: organization %s not counted", organization_id)
    return done


def recount_all() -> int:
    """Every organization's cells counted again; how many organizations."""
    mark_stale(Organization.objects.values_list("pk", flat=True))
    return refresh_stale()
