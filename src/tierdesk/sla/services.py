"""The only code that changes business calendars."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from tierdesk.core import clock, policy
from tierdesk.core.audit import AuditAction, record_and_emit
from tierdesk.core.errors import ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import apply_changes, full_clean_or_raise
from tierdesk.core.unset import UNSET
from tierdesk.sla import clocks
from tierdesk.sla.calendar import WEEKDAYS, Calendar, CalendarError, check_hours, format_span
from tierdesk.sla.models import (
    BusinessCalendar,
    CalendarHoliday,
    CalendarHours,
    SlaPolicy,
    SlaTarget,
)

# Weekday (0 = Monday) -> open (start_minute, end_minute) intervals of the local day.
Hours = Mapping[int, Iterable[tuple[int, int]]]
# (date, name) pairs; a date may appear once.
Holidays = Iterable[tuple[dt.date, str]]

HOLIDAY_NAME_MAX = 200
FIRST_HOLIDAY_YEAR, LAST_HOLIDAY_YEAR = 1970, 2100
MAX_HOLIDAY_YEARS = 20


def hours_text(hours: Mapping[int, Iterable[tuple[int, int]]]) -> dict[str, list[str]]:
    """``{"mon": ["08:00-17:00"], …, "sun": []}``: every weekday, as people write hours."""
    return {
        key: [format_span(span) for span in sorted(hours.get(day, ()))]
        for day, key in enumerate(WEEKDAYS)
    }


def calendar_hours(calendar: BusinessCalendar) -> dict[int, list[tuple[int, int]]]:
    hours: dict[int, list[tuple[int, int]]] = {}
    for row in calendar.hours.all():
        hours.setdefault(row.weekday, []).append((row.start_minute, row.end_minute))
    return hours


def _require_manage(actor: User | None, organization: Organization | None) -> None:
    policy.require_config_scope(actor, organization, "calendar", "calendars")


def _check_hours(hours: Hours, always_open: bool) -> dict[int, tuple[tuple[int, int], ...]]:
    try:
        checked = check_hours(hours)
    except CalendarError as exc:
        raise ValidationFailed.for_field("hours", str(exc)) from None
    if always_open and checked:
        raise ValidationFailed.for_field("hours", "a 24x7 calendar has no opening hours")
    if not always_open and not checked:
        raise ValidationFailed.for_field(
            "hours", "a calendar needs opening hours on at least one weekday (or be 24x7)"
        )
    return checked


def _check_holidays(holidays: Holidays) -> dict[dt.date, str]:
    result: dict[dt.date, str] = {}
    for day, name in holidays:
        if day in result:
            raise ValidationFailed.for_field("holidays", f"{day.isoformat()} is listed twice")
        if len(name) > HOLIDAY_NAME_MAX:
            raise ValidationFailed.for_field(
                "holidays", f"a holiday's name has at most {HOLIDAY_NAME_MAX} characters"
            )
        result[day] = name.strip()
    return result


def country_holidays(country: str, subdivision: str, years: Iterable[int]) -> dict[dt.date, str]:
    """The public holidays of ``country`` (ISO 3166 code; ``subdivision`` e.g. ``BY``) in
    ``years``, from the ``holidays`` package (offline). ValidationFailed naming the field
    for an unknown country or subdivision or an unreasonable year."""
    import holidays as holidays_lib  # slow to import; only calendar set-up needs it

    wanted = sorted(set(years))
    if not wanted:
        return {}
    if len(wanted) > MAX_HOLIDAY_YEARS or not all(
        FIRST_HOLIDAY_YEAR <= y <= LAST_HOLIDAY_YEAR for y in wanted
    ):
        raise ValidationFailed.for_field(
            "holiday_years",
            f"up to {MAX_HOLIDAY_YEARS} years from {FIRST_HOLIDAY_YEAR} to {LAST_HOLIDAY_YEAR}",
        )
    supported = holidays_lib.list_supported_countries()
    if country not in supported:
        raise ValidationFailed.for_field(
            "country", f"no holidays known for {country!r}: use an ISO 3166 code such as DE"
        )
    if subdivision and subdivision not in supported[country]:
        known = ", ".join(supported[country]) or "none"
        raise ValidationFailed.for_field(
            "subdivision", f"{country} has no subdivision {subdivision!r} (known: {known})"
        )
    found = holidays_lib.country_holidays(country, subdiv=subdivision or None, years=wanted)
    return {day: str(name)[:HOLIDAY_NAME_MAX] for day, name in sorted(found.items())}


def _final_check(
    time_zone: str, always_open: bool, hours: Mapping[int, tuple[tuple[int, int], ...]]
) -> None:
    """The arithmetic accepts the definition (the last word, should the checks above and
    the pure calendar ever disagree)."""
    try:
        Calendar(time_zone=time_zone, hours=hours, always_open=always_open)
    except CalendarError as exc:
        raise ValidationFailed.for_field("hours", str(exc)) from None


def _write_hours(calendar: BusinessCalendar, hours: Hours) -> None:
    CalendarHours.objects.bulk_create(
        CalendarHours(calendar=calendar, weekday=day, start_minute=start, end_minute=end)
        for day, spans in sorted(hours.items())
        for start, end in spans
    )


def _write_holidays(calendar: BusinessCalendar, holidays: Mapping[dt.date, str]) -> None:
    CalendarHoliday.objects.bulk_create(
        CalendarHoliday(calendar=calendar, date=day, name=name)
        for day, name in sorted(holidays.items())
    )


@transaction.atomic
def calendar_create(
    *,
    actor: User | None,
    name: str,
    title: str,
    time_zone: str,
    always_open: bool = False,
    hours: Hours | None = None,
    holidays: Holidays = (),
    country: str = "",
    subdivision: str = "",
    holiday_years: Iterable[int] = (),
    organization: Organization | None = None,
) -> BusinessCalendar:
    """Add a business calendar, MSP-wide (``organization`` None; admins) or for one client
    the actor serves (managers and admins). With ``country`` and ``holiday_years`` the
    country's public holidays of those years are added; an explicitly given holiday wins
    over a seeded one on the same date. ``actor`` None is the system."""
    _require_manage(actor, organization)
    if (
        actor is not None
        and organization is not None
        and not policy.can_see_organization(actor, organization.pk)
    ):
        raise ValidationFailed.for_field("organization", "no such organization")
    now = clock.now()
    calendar = BusinessCalendar(
        name=name.strip().lower(),
        title=title.strip(),
        time_zone=time_zone.strip(),
        always_open=always_open,
        country=country.strip().upper(),
        subdivision=subdivision.strip().upper(),
        organization=organization,
        created_at=now,
        updated_at=now,
    )
    if BusinessCalendar.objects.filter(name=calendar.name).exists():
        raise ValidationFailed.for_field("name", f"a calendar named {calendar.name!r} exists")
    full_clean_or_raise(calendar)
    checked = _check_hours(hours or {}, always_open)
    explicit = _check_holidays(holidays)
    years = list(holiday_years)
    if always_open and (explicit or years):
        raise ValidationFailed.for_field("holidays", "a 24x7 calendar has no holidays")
    if years and not calendar.country:
        raise ValidationFailed.for_field("country", "needed to seed holidays for years")
    seeded = country_holidays(calendar.country, calendar.subdivision, years) if years else {}
    _final_check(calendar.time_zone, always_open, checked)
    calendar.save()
    _write_hours(calendar, checked)
    _write_holidays(calendar, seeded | explicit)
    summary = {
        "name": calendar.name,
        "title": calendar.title,
        "time_zone": calendar.time_zone,
        "always_open": always_open,
        "organization": organization.code if organization else None,
        "hours": hours_text(checked),
        "holidays": len(seeded | explicit),
    }
    record_and_emit(
        actor=actor,
        action=AuditAction.CALENDAR_CREATED,
        target_type="calendar",
        target_id=calendar.pk,
        organization=organization,
        changes=summary,
        payload=summary,
    )
    return calendar


@transaction.atomic
def calendar_update(
    *,
    actor: User | None,
    calendar: BusinessCalendar,
    title: str = UNSET,
    time_zone: str = UNSET,
    always_open: bool = UNSET,
    hours: Hours = UNSET,
    holidays: Holidays = UNSET,
    country: str = UNSET,
    subdivision: str = UNSET,
    holiday_years: Iterable[int] = UNSET,
) -> BusinessCalendar:
    """Change a calendar the actor sees (fetched with ``sla.queries.calendar_get``). Given
    ``hours`` and ``holidays`` replace the whole set; ``holiday_years`` adds the country's
    holidays of those years to the (given or current) holidays, keeping dates already there.
    Name and organization are permanent. Writes nothing when nothing differs."""
    _require_manage(actor, calendar.organization)
    calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
    final_open = calendar.always_open if always_open is UNSET else always_open
    current_hours = calendar_hours(calendar)
    new_hours = _check_hours(current_hours if hours is UNSET else hours, final_open)
    current_holidays = {h.date: h.name for h in calendar.holidays.order_by("date")}
    new_holidays = current_holidays if holidays is UNSET else _check_holidays(holidays)
    final_country = calendar.country if country is UNSET else country.strip().upper()
    final_subdivision = (
        calendar.subdivision if subdivision is UNSET else subdivision.strip().upper()
    )
    years = [] if holiday_years is UNSET else list(holiday_years)
    if years:
        if not final_country:
            raise ValidationFailed.for_field("country", "needed to seed holidays for years")
        seeded = country_holidays(final_country, final_subdivision, years)
        new_holidays = seeded | new_holidays
    if final_open and new_holidays:
        raise ValidationFailed.for_field("holidays", "a 24x7 calendar has no holidays")
    changes: dict[str, dict[str, Any]] = apply_changes(
        calendar,
        {
            "title": title if title is UNSET else title.strip(),
            "time_zone": time_zone if time_zone is UNSET else time_zone.strip(),
            "always_open": always_open,
            "country": country if country is UNSET else final_country,
            "subdivision": subdivision if subdivision is UNSET else final_subdivision,
        },
    )
    _final_check(calendar.time_zone, final_open, new_hours)
    if hours_text(current_hours) != hours_text(new_hours):
        changes["hours"] = {"old": hours_text(current_hours), "new": hours_text(new_hours)}
        calendar.hours.all().delete()
        _write_hours(calendar, new_hours)
    if sorted(current_holidays.items()) != sorted(new_holidays.items()):
        changes["holidays"] = {
            "added": sorted(d.isoformat() for d in new_holidays.keys() - current_holidays),
            "removed": sorted(d.isoformat() for d in current_holidays.keys() - new_holidays),
            "renamed": sorted(
                d.isoformat()
                for d in new_holidays.keys() & current_holidays.keys()
                if new_holidays[d] != current_holidays[d]
            ),
        }
        calendar.holidays.all().delete()
        _write_holidays(calendar, new_holidays)
    if not changes:
        return calendar
    calendar.updated_at = clock.now()
    calendar.save(update_fields=["updated_at"])
    # Business time changed under running clocks: their due instants follow.
    for sla_policy in SlaPolicy.objects.filter(calendar=calendar):
        clocks.retarget_policy(sla_policy)
    record_and_emit(
        actor=actor,
        action=AuditAction.CALENDAR_UPDATED,
        target_type="calendar",
        target_id=calendar.pk,
        organization=calendar.organization,
        changes=changes,
        payload={"name": calendar.name, "changes": changes},
    )
    return calendar


def calendar_seed_holidays(
    *,
    actor: User | None,
    calendar: BusinessCalendar,
    country: str,
    years: Iterable[int],
    subdivision: str | None = None,
) -> BusinessCalendar:
    """Add the public holidays of ``country`` (and ``subdivision``) in ``years`` to the
    calendar, keeping the dates it has; the calendar remembers the country it was seeded
    from. Same permission as :func:`calendar_update`."""
    return calendar_update(
        actor=actor,
        calendar=calendar,
        country=country,
        subdivision=subdivision if subdivision is not None else UNSET,
        holiday_years=list(years),
    )


# --- SLA policies ----------------------------------------------------------------------------

PRIORITIES = ("P1", "P2", "P3", "P4")
MAX_TARGET_MINUTES = 525_600  # a year


@dataclass(frozen=True)
class Target:
    """Minutes of business time a policy allows one priority."""

    priority: str
    first_response_minutes: int
    resolution_minutes: int
    next_update_minutes: int | None = None


def _require_sla_manage(actor: User | None, organization: Organization | None) -> None:
    policy.require_config_scope(actor, organization, "sla", "SLA policies")


def _check_targets(targets: Sequence[Target]) -> list[Target]:
    if not targets:
        raise ValidationFailed.for_field(
            "targets", "a policy needs a target for at least one priority"
        )
    seen: set[str] = set()
    for i, t in enumerate(targets):
        field = f"targets.{i}"
        if t.priority not in PRIORITIES:
            raise ValidationFailed.for_field(f"{field}.priority", "P1, P2, P3 or P4")
        if t.priority in seen:
            raise ValidationFailed.for_field(f"{field}.priority", f"{t.priority} is listed twice")
        seen.add(t.priority)
        for name in ("first_response_minutes", "resolution_minutes", "next_update_minutes"):
            value = getattr(t, name)
            if value is None and name == "next_update_minutes":
                continue
            if not isinstance(value, int) or not 1 <= value <= MAX_TARGET_MINUTES:
                raise ValidationFailed.for_field(
                    f"{field}.{name}", f"whole minutes from 1 to {MAX_TARGET_MINUTES}"
                )
        if t.first_response_minutes > t.resolution_minutes:
            raise ValidationFailed.for_field(
                f"{field}.first_response_minutes",
                f"{t.priority}: the first response ({t.first_response_minutes} min) cannot be "
                f"due after the resolution ({t.resolution_minutes} min)",
            )
    order = {p: i for i, p in enumerate(PRIORITIES)}
    return sorted(targets, key=lambda t: order[t.priority])


def _check_calendar(calendar: BusinessCalendar, organization: Organization | None) -> None:
    # A policy may use an MSP-wide calendar or its own organization's, never another's.
    if calendar.organization_id not in (None, organization.pk if organization else None):
        raise ValidationFailed.for_field("calendar", f"no such calendar {calendar.name!r}")


def _check_one_active(policy_row: SlaPolicy) -> None:
    if not policy_row.is_active:
        return
    other = (
        SlaPolicy.objects.filter(organization=policy_row.organization, is_active=True)
        .exclude(pk=policy_row.pk)
        .first()
    )
    if other is not None:
        scope = policy_row.organization.code if policy_row.organization else "MSP-wide"
        raise ValidationFailed.for_field(
            "is_active",
            f"{scope} already has the active policy {other.name!r}; deactivate it first",
        )


def _targets_summary(targets: Iterable[SlaTarget | Target]) -> list[dict[str, Any]]:
    return [
        {
            "priority": t.priority,
            "first_response_minutes": t.first_response_minutes,
            "next_update_minutes": t.next_update_minutes,
            "resolution_minutes": t.resolution_minutes,
        }
        for t in targets
    ]


def _write_targets(sla_policy: SlaPolicy, targets: Sequence[Target]) -> None:
    SlaTarget.objects.bulk_create(
        SlaTarget(
            policy=sla_policy,
            priority=t.priority,
            first_response_minutes=t.first_response_minutes,
            next_update_minutes=t.next_update_minutes,
            resolution_minutes=t.resolution_minutes,
        )
        for t in targets
    )


def _policy_name(name: str) -> str:
    cleaned = name.replace("\x00", "").strip()
    if not cleaned or len(cleaned) > 100:
        raise ValidationFailed.for_field("name", "1 to 100 characters")
    return cleaned


def _warning(value: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= 99:
        raise ValidationFailed.for_field("warning_percent", "a whole percentage from 1 to 99")
    return value


@transaction.atomic
def sla_policy_create(
    *,
    actor: User | None,
    name: str,
    calendar: BusinessCalendar,
    targets: Sequence[Target],
    organization: Organization | None = None,
    warning_percent: int = 80,
    is_active: bool = True,
) -> SlaPolicy:
    """Add an organization's SLA policy (its contract) or, for admins, the MSP-wide default
    that applies to organizations without one. One active policy per scope. Tickets opened
    from now on get clocks from it; existing clocks keep theirs."""
    _require_sla_manage(actor, organization)
    _check_calendar(calendar, organization)
    checked = _check_targets(targets)
    now = clock.now()
    row = SlaPolicy(
        organization=organization,
        name=_policy_name(name),
        calendar=calendar,
        warning_percent=_warning(warning_percent),
        is_active=is_active,
        created_at=now,
        updated_at=now,
    )
    _check_one_active(row)
    full_clean_or_raise(row)
    row.save()
    _write_targets(row, checked)
    summary = {
        "name": row.name,
        "calendar": calendar.name,
        "warning_percent": row.warning_percent,
        "is_active": row.is_active,
        "targets": _targets_summary(checked),
    }
    record_and_emit(
        actor=actor,
        action=AuditAction.SLA_POLICY_CREATED,
        target_type="sla_policy",
        target_id=row.pk,
        organization=organization,
        changes=summary,
        payload=summary | {"id": row.pk},
    )
    return row


@transaction.atomic
def sla_policy_update(
    *,
    actor: User | None,
    sla_policy: SlaPolicy,
    name: str = UNSET,
    calendar: BusinessCalendar = UNSET,
    targets: Sequence[Target] = UNSET,
    warning_percent: int = UNSET,
    is_active: bool = UNSET,
) -> SlaPolicy:
    """Change a policy; only given fields change (``targets`` replaces the set). The live
    clocks of its tickets are recomputed from the new targets, calendar and warning; a
    clock that already breached stays breached (the event was sent)."""
    _require_sla_manage(actor, sla_policy.organization)
    row = SlaPolicy.objects.select_for_update().get(pk=sla_policy.pk)
    if calendar is not UNSET:
        _check_calendar(calendar, row.organization)
    checked = None if targets is UNSET else _check_targets(targets)
    changes = apply_changes(
        row,
        {
            "name": name if name is UNSET else _policy_name(name),
            "calendar": calendar,
            "warning_percent": warning_percent
            if warning_percent is UNSET
            else _warning(warning_percent),
            "is_active": is_active,
        },
    )
    _check_one_active(row)
    if checked is not None:
        old = _targets_summary(row.targets.all())
        new = _targets_summary(checked)
        if old != new:
            changes["targets"] = {"old": old, "new": new}
            row.targets.all().delete()
            _write_targets(row, checked)
    if not changes:
        return row
    row.updated_at = clock.now()
    row.save(update_fields=["updated_at"])
    recomputed = clocks.retarget_policy(row)
    record_and_emit(
        actor=actor,
        action=AuditAction.SLA_POLICY_UPDATED,
        target_type="sla_policy",
        target_id=row.pk,
        organization=row.organization,
        changes=changes,
        payload={"id": row.pk, "changes": changes, "clocks_recomputed": recomputed},
    )
    return row
