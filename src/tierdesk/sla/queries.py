"""Reads of business calendars, scoped to what the actor may see, and the questions asked of
them ("when is it due?", "how much business time between?")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from tierdesk.core import clock, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Role, User
from tierdesk.sla import clocks
from tierdesk.sla.calendar import CalendarError
from tierdesk.sla.models import BusinessCalendar, CalendarHoliday, CalendarHours, SlaPolicy
from tierdesk.tickets import queries as ticket_queries
from tierdesk.tickets.models import Ticket

# Instants the API and the CLI accept: wide enough for any SLA, narrow enough that a question
# spanning the whole range is answered in well under a second.
FIRST_YEAR, LAST_YEAR = 1970, 2100
MAX_MINUTES = 1_000_000  # about 8 years of 40-hour weeks, 1.9 years of 24x7


def calendar_scope(actor: User | None) -> QuerySet[BusinessCalendar]:
    """The calendars ``actor`` may see: MSP-wide ones and those of the organizations they
    serve for staff (admins all), none for requesters. ``None`` is the system (CLI operator)
    and sees all."""
    qs = BusinessCalendar.objects.all()
    if actor is None or (actor.is_active and actor.role == Role.ADMIN):
        return qs
    if not actor.is_active or actor.role not in STAFF_ROLES:
        return qs.none()
    return qs.filter(
        Q(organization__isnull=True) | Q(organization__in=policy.visible_organizations(actor))
    )


def calendar_list(*, actor: User | None) -> QuerySet[BusinessCalendar]:
    """Visible calendars by name, with their organization and weekly hours preloaded
    (holidays are not: read them with :func:`calendar_get`)."""
    return (
        calendar_scope(actor)
        .select_related("organization")
        .prefetch_related(Prefetch("hours", queryset=CalendarHours.objects.order_by("weekday")))
        .order_by("name")
    )


def calendar_get(*, actor: User | None, name: str) -> BusinessCalendar:
    """The calendar ``name`` with its organization, hours and holidays preloaded (ready for
    ``as_calendar()``); NotFound when it is missing or hidden from the actor."""
    found = (
        calendar_scope(actor)
        .select_related("organization")
        .prefetch_related(
            Prefetch("hours", queryset=CalendarHours.objects.order_by("weekday", "start_minute")),
            Prefetch("holidays", queryset=CalendarHoliday.objects.order_by("date")),
        )
        .filter(name=name.strip().lower())
        .first()
    )
    if found is None:
        raise NotFound(f"No calendar {name!r}.")
    return found


def parse_instant(field: str, text: str) -> dt.datetime:
    """An ISO 8601 instant from outside, as aware UTC. One without a UTC offset is refused
    (it would be a guess), as is one outside FIRST_YEAR..LAST_YEAR."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed.for_field(
            field, f"{text!r} is not an ISO 8601 instant like 2026-11-20T15:30:00Z"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed.for_field(
            field, f"{text!r} has no UTC offset: add Z or one like +01:00"
        )
    value = value.astimezone(dt.UTC)
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValidationFailed.for_field(
            field, f"instants from {FIRST_YEAR} to {LAST_YEAR} are supported"
        )
    return value


def calendar_due(*, calendar: BusinessCalendar, start: dt.datetime, minutes: int) -> dt.datetime:
    """The instant ``minutes`` business minutes after ``start`` (aware UTC) on ``calendar``
    (from :func:`calendar_get`)."""
    if not 0 <= minutes <= MAX_MINUTES:
        raise ValidationFailed.for_field("minutes", f"0 to {MAX_MINUTES}")
    try:
        return calendar.as_calendar().add(start, minutes)
    except CalendarError as exc:
        raise ValidationFailed.for_field("minutes", str(exc)) from None


def calendar_between(
    *, calendar: BusinessCalendar, start: dt.datetime, end: dt.datetime
) -> dt.timedelta:
    """Business time from ``start`` to ``end`` (zero when ``end`` is not after ``start``)."""
    try:
        return calendar.as_calendar().between(start, end)
    except CalendarError as exc:
        raise ValidationFailed.for_field("to", str(exc)) from None


def sla_policy_list(*, actor: User | None) -> QuerySet[SlaPolicy]:
    """Policies staff may read: the MSP-wide default and those of organizations they serve
    (``actor`` None: the operator, everything). Requesters see none."""
    qs = SlaPolicy.objects.select_related("organization", "calendar").prefetch_related("targets")
    if actor is None:
        return qs
    if not actor.is_active or actor.role not in STAFF_ROLES:
        return qs.none()
    return qs.filter(
        Q(organization__isnull=True) | Q(organization__in=policy.visible_organizations(actor))
    )


def sla_policy_get(*, actor: User | None, policy_id: int) -> SlaPolicy:
    found = sla_policy_list(actor=actor).filter(pk=policy_id).first()
    if found is None:
        raise NotFound("No such SLA policy.")
    return found


def clock_summary(ticket: Ticket) -> list[dict[str, Any]]:
    """Each kind's current clock of ``ticket`` (the live one, else the latest): its state
    and business time left, for the API and the pages alike."""
    now = clock.now()
    latest: dict[str, Any] = {}
    for one in ticket_queries.clocks_of(ticket):  # oldest first; loaded with the page on lists
        kept = latest.get(one.kind)
        if kept is None or one.status != "stopped" or kept.status == "stopped":
            latest[one.kind] = one
    out = []
    for kind in ("first_response", "next_update", "resolution"):
        if (c := latest.get(kind)) is None:
            continue
        out.append(
            {
                "kind": c.kind,
                "state": c.state,
                "policy": c.policy.name,
                "target_minutes": c.target_minutes,
                "started_at": c.started_at,
                "due_at": c.due_at,
                "business_seconds_left": clocks.seconds_left(
                    clocks.calendar_of(c.policy.calendar), c, now
                ),
                "paused_at": c.paused_at,
                "warned_at": c.warned_at,
                "breached_at": c.breached_at,
                "stopped_at": c.stopped_at,
            }
        )
    return out
