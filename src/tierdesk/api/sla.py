"""Business calendars: their definitions, and "when is it due?" without a ticket."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field, StringConstraints

from tierdesk.api.common import IDEMPOTENCY_HEADER, actor, idempotent, json_response
from tierdesk.api.schemas import ERRORS, CleanInput, NoQuery, Problem, StrictInput
from tierdesk.core.errors import FieldIssue, NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_get
from tierdesk.sla import queries, services
from tierdesk.sla.calendar import WEEKDAYS, CalendarError, parse_span
from tierdesk.sla.models import BusinessCalendar, SlaPolicy

router = Router(tags=["calendars"])

CalendarName = Annotated[str, StringConstraints(min_length=1, max_length=50)]
OrgCode = Annotated[
    str, StringConstraints(min_length=2, max_length=10, pattern=r"^[A-Za-z][A-Za-z0-9]+$")
]
SpanText = Annotated[str, StringConstraints(max_length=20)]
Spans = Annotated[list[SpanText], Field(default_factory=list, max_length=48)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Zone = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Country = Annotated[str, StringConstraints(max_length=3)]
Subdivision = Annotated[str, StringConstraints(max_length=20)]
Year = Annotated[int, Field(ge=services.FIRST_HOLIDAY_YEAR, le=services.LAST_HOLIDAY_YEAR)]


class WeekHours(StrictInput):
    """Open intervals per weekday as ``"HH:MM-HH:MM"`` (``24:00`` ends the day); a weekday
    left out or empty is closed."""

    mon: Spans
    tue: Spans
    wed: Spans
    thu: Spans
    fri: Spans
    sat: Spans
    sun: Spans


class HolidayIn(StrictInput):
    date: dt.date
    name: Annotated[str, StringConstraints(max_length=services.HOLIDAY_NAME_MAX)] = ""


class HolidayOut(Schema):
    date: dt.date
    name: str


class CalendarSummary(Schema):
    name: str
    title: str
    time_zone: str
    always_open: bool
    organization: str | None = Field(description="Its client's code; null when MSP-wide.")
    country: str
    subdivision: str
    hours: dict[str, list[str]] = Field(
        description='Every weekday ("mon" … "sun") with its open intervals, "HH:MM-HH:MM".'
    )


class CalendarOut(CalendarSummary):
    holidays: list[HolidayOut]
    created_at: dt.datetime
    updated_at: dt.datetime


class CalendarIn(StrictInput):
    name: CalendarName = Field(description="A slug, unique across the MSP; permanent.")
    title: Title
    time_zone: Zone = Field(description="IANA time zone, e.g. Europe/Berlin.")
    always_open: bool = Field(False, description="24x7: plain elapsed time, no hours.")
    hours: WeekHours = Field(default_factory=WeekHours)  # type: ignore[arg-type]
    holidays: list[HolidayIn] = Field(default_factory=list, max_length=2000)
    country: Country = Field("", description="ISO 3166 code whose holidays to seed, e.g. DE.")
    subdivision: Subdivision = Field("", description="e.g. BY for Bavaria.")
    holiday_years: list[Year] = Field(default_factory=list, max_length=services.MAX_HOLIDAY_YEARS)
    organization: OrgCode | None = Field(None, description="A client's code; null: MSP-wide.")


class CalendarPatch(StrictInput):
    title: Title | None = None
    time_zone: Zone | None = None
    always_open: bool | None = None
    hours: WeekHours | None = Field(None, description="Replaces all weekly hours.")
    holidays: list[HolidayIn] | None = Field(
        None, max_length=2000, description="Replaces all holidays."
    )
    country: Country | None = None
    subdivision: Subdivision | None = None
    holiday_years: list[Year] | None = Field(
        None,
        max_length=services.MAX_HOLIDAY_YEARS,
        description="Adds the country's holidays of these years.",
    )


class DueParams(CleanInput):
    start: str | None = Field(
        None,
        alias="from",
        max_length=64,
        description="Required. ISO 8601 instant with a UTC offset, e.g. 2026-11-20T15:30:00Z.",
    )
    minutes: int | None = Field(
        None, ge=0, le=queries.MAX_MINUTES, description="Required. Business minutes to add."
    )


class DueOut(Schema):
    calendar: str
    start: dt.datetime
    minutes: int
    due: dt.datetime


class BetweenParams(CleanInput):
    start: str | None = Field(
        None, alias="from", max_length=64, description="Required. ISO 8601 instant with offset."
    )
    end: str | None = Field(
        None, alias="to", max_length=64, description="Required. ISO 8601 instant with offset."
    )


class BetweenOut(Schema):
    calendar: str
    start: dt.datetime
    end: dt.datetime
    minutes: int = Field(description="Whole business minutes, rounded down.")
    seconds: int = Field(description="Whole business seconds, rounded down.")


def calendar_summary(calendar: BusinessCalendar) -> dict[str, Any]:
    return {
        "name": calendar.name,
        "title": calendar.title,
        "time_zone": calendar.time_zone,
        "always_open": calendar.always_open,
        "organization": calendar.organization.code if calendar.organization else None,
        "country": calendar.country,
        "subdivision": calendar.subdivision,
        "hours": services.hours_text(services.calendar_hours(calendar)),
    }


def calendar_out(calendar: BusinessCalendar) -> dict[str, Any]:
    """A calendar's whole definition; the CLI's ``calendar show --json`` prints the same."""
    return calendar_summary(calendar) | {
        "holidays": [{"date": h.date, "name": h.name} for h in calendar.holidays.all()],
        "created_at": calendar.created_at,
        "updated_at": calendar.updated_at,
    }


def _reject_unknown(request: HttpRequest, schema: type[Schema]) -> None:
    """Like ``reject_unknown_query``, by the parameters' public names (``from``, not
    ``start``)."""
    known = {f.alias or name for name, f in schema.model_fields.items()}
    unknown = sorted(set(request.GET) - known)
    if unknown:
        raise ValidationFailed(
            f"unknown query parameters: {', '.join(unknown)}",
            errors=[FieldIssue(name[:100], "unknown query parameter") for name in unknown[:20]],
        )


def _hours(week: WeekHours) -> dict[int, list[tuple[int, int]]]:
    hours: dict[int, list[tuple[int, int]]] = {}
    for day, key in enumerate(WEEKDAYS):
        for text in getattr(week, key):
            try:
                hours.setdefault(day, []).append(parse_span(text))
            except CalendarError as exc:
                raise ValidationFailed.for_field(f"hours.{key}", str(exc)) from None
    return hours


def _holidays(rows: list[HolidayIn]) -> list[tuple[dt.date, str]]:
    return [(h.date, h.name) for h in rows]


def _organization(me: User, code: str) -> Organization:
    try:
        return organization_get(actor=me, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", f"no organization {code!r}") from None


def _required(value: Any, field: str) -> Any:
    if value is None:
        raise ValidationFailed.for_field(field, "required")
    return value


@router.get("/calendars", response={200: list[CalendarSummary], **ERRORS})
def list_calendars(request: HttpRequest) -> list[dict[str, Any]]:
    _reject_unknown(request, NoQuery)
    return [calendar_summary(c) for c in queries.calendar_list(actor=actor(request))]


@router.post(
    "/calendars",
    response={201: CalendarOut, 409: Problem, **ERRORS},
    summary="Add a business calendar (MSP-wide: admins; a client's: its managers)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_calendar(request: HttpRequest, payload: CalendarIn) -> HttpResponse:
    me = actor(request)
    calendar = services.calendar_create(
        actor=me,
        name=payload.name,
        title=payload.title,
        time_zone=payload.time_zone,
        always_open=payload.always_open,
        hours=_hours(payload.hours),
        holidays=_holidays(payload.holidays),
        country=payload.country,
        subdivision=payload.subdivision,
        holiday_years=payload.holiday_years,
        organization=_organization(me, payload.organization) if payload.organization else None,
    )
    calendar = queries.calendar_get(actor=me, name=calendar.name)
    body = CalendarOut.model_validate(calendar_out(calendar)).model_dump()
    return json_response(201, body, Location=f"/api/v1/calendars/{calendar.name}")


@router.get("/calendars/{name}", response={200: CalendarOut, **ERRORS})
def get_calendar(request: HttpRequest, name: CalendarName) -> dict[str, Any]:
    _reject_unknown(request, NoQuery)
    return calendar_out(queries.calendar_get(actor=actor(request), name=name))


@router.patch(
    "/calendars/{name}",
    response={200: CalendarOut, **ERRORS},
    summary="Change a calendar; given hours or holidays replace the whole set",
)
def update_calendar(request: HttpRequest, name: CalendarName, payload: CalendarPatch) -> Any:
    me = actor(request)
    calendar = queries.calendar_get(actor=me, name=name)
    given = {field: getattr(payload, field) for field in payload.model_fields_set}
    for field, value in given.items():
        if value is None:
            raise ValidationFailed.for_field(field, "may not be null")
    if payload.hours is not None:
        given["hours"] = _hours(payload.hours)
    if payload.holidays is not None:
        given["holidays"] = _holidays(payload.holidays)
    services.calendar_update(actor=me, calendar=calendar, **given)
    return calendar_out(queries.calendar_get(actor=me, name=name))


@router.get(
    "/calendars/{name}/due",
    response={200: DueOut, **ERRORS},
    summary="When N business minutes after an instant have elapsed",
)
def calendar_due(
    request: HttpRequest, name: CalendarName, params: Query[DueParams]
) -> dict[str, Any]:
    # The calendar first: another tenant's answers 404 whatever the query says.
    calendar = queries.calendar_get(actor=actor(request), name=name)
    _reject_unknown(request, DueParams)
    start = queries.parse_instant("from", _required(params.start, "from"))
    minutes = _required(params.minutes, "minutes")
    due = queries.calendar_due(calendar=calendar, start=start, minutes=minutes)
    return {"calendar": calendar.name, "start": start, "minutes": minutes, "due": due}


@router.get(
    "/calendars/{name}/between",
    response={200: BetweenOut, **ERRORS},
    summary="Business time between two instants",
)
def calendar_between(
    request: HttpRequest, name: CalendarName, params: Query[BetweenParams]
) -> dict[str, Any]:
    calendar = queries.calendar_get(actor=actor(request), name=name)
    _reject_unknown(request, BetweenParams)
    start = queries.parse_instant("from", _required(params.start, "from"))
    end = queries.parse_instant("to", _required(params.end, "to"))
    elapsed = queries.calendar_between(calendar=calendar, start=start, end=end)
    seconds = elapsed // dt.timedelta(seconds=1)
    return {
        "calendar": calendar.name,
        "start": start,
        "end": end,
        "minutes": seconds // 60,
        "seconds": seconds,
    }


# --- SLA policies ----------------------------------------------------------------------------

policy_router = Router(tags=["sla"])

PriorityName = Literal["P1", "P2", "P3", "P4"]
Minutes = Annotated[int, Field(ge=1, le=services.MAX_TARGET_MINUTES)]
PolicyId = Annotated[int, Field(ge=1, le=2**62)]


class TargetIn(StrictInput):
    priority: PriorityName
    first_response_minutes: Minutes
    resolution_minutes: Minutes
    next_update_minutes: Minutes | None = None


class TargetOut(Schema):
    priority: str
    first_response_minutes: int
    resolution_minutes: int
    next_update_minutes: int | None


class SlaPolicyIn(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    organization: OrgCode | None = Field(None, description="Empty: the MSP-wide default (admins).")
    calendar: CalendarName
    warning_percent: Annotated[int, Field(ge=1, le=99)] = 80
    is_active: bool = True
    targets: list[TargetIn] = Field(min_length=1, max_length=4)


class SlaPolicyPatch(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    calendar: CalendarName | None = None
    warning_percent: Annotated[int, Field(ge=1, le=99)] | None = None
    is_active: bool | None = None
    targets: list[TargetIn] | None = Field(None, min_length=1, max_length=4)


class SlaPolicyOut(Schema):
    id: int
    name: str
    organization: str | None
    calendar: str
    warning_percent: int
    is_active: bool
    targets: list[TargetOut]
    created_at: dt.datetime
    updated_at: dt.datetime


def sla_policy_out(row: SlaPolicy) -> dict[str, Any]:
    return {
        "id": row.pk,
        "name": row.name,
        "organization": row.organization.code if row.organization else None,
        "calendar": row.calendar.name,
        "warning_percent": row.warning_percent,
        "is_active": row.is_active,
        "targets": [
            {
                "priority": t.priority,
                "first_response_minutes": t.first_response_minutes,
                "resolution_minutes": t.resolution_minutes,
                "next_update_minutes": t.next_update_minutes,
            }
            for t in row.targets.all()
        ],
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _targets(rows: list[TargetIn]) -> list[services.Target]:
    return [
        services.Target(
            priority=t.priority,
            first_response_minutes=t.first_response_minutes,
            resolution_minutes=t.resolution_minutes,
            next_update_minutes=t.next_update_minutes,
        )
        for t in rows
    ]


def _calendar_for(me: User, name: str) -> BusinessCalendar:
    try:
        return queries.calendar_get(actor=me, name=name)
    except NotFound:
        raise ValidationFailed.for_field("calendar", f"no such calendar {name!r}") from None


@policy_router.get("/sla-policies", response={200: list[SlaPolicyOut], **ERRORS})
def list_policies(request: HttpRequest) -> list[dict[str, Any]]:
    _reject_unknown(request, NoQuery)
    return [sla_policy_out(p) for p in queries.sla_policy_list(actor=actor(request))]


@policy_router.get("/sla-policies/{policy_id}", response={200: SlaPolicyOut, **ERRORS})
def get_policy(request: HttpRequest, policy_id: PolicyId) -> dict[str, Any]:
    return sla_policy_out(queries.sla_policy_get(actor=actor(request), policy_id=policy_id))


@policy_router.post(
    "/sla-policies",
    response={201: SlaPolicyOut, 409: Problem, **ERRORS},
    summary="Add an SLA policy (a client's: its managers; the MSP-wide default: admins)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_policy(request: HttpRequest, payload: SlaPolicyIn) -> HttpResponse:
    me = actor(request)
    row = services.sla_policy_create(
        actor=me,
        name=payload.name,
        organization=_organization(me, payload.organization) if payload.organization else None,
        calendar=_calendar_for(me, payload.calendar),
        warning_percent=payload.warning_percent,
        is_active=payload.is_active,
        targets=_targets(payload.targets),
    )
    row = queries.sla_policy_get(actor=me, policy_id=row.pk)
    body = SlaPolicyOut.model_validate(sla_policy_out(row)).model_dump()
    return json_response(201, body, Location=f"/api/v1/sla-policies/{row.pk}")


@policy_router.patch(
    "/sla-policies/{policy_id}",
    response={200: SlaPolicyOut, **ERRORS},
    summary="Change an SLA policy; the live clocks of its tickets are recomputed",
)
def update_policy(request: HttpRequest, policy_id: PolicyId, payload: SlaPolicyPatch) -> Any:
    me = actor(request)
    row = queries.sla_policy_get(actor=me, policy_id=policy_id)
    changes: dict[str, Any] = {}
    for name in payload.model_fields_set:
        value = getattr(payload, name)
        if value is None:
            raise ValidationFailed.for_field(name, "may not be null")
        changes[name] = value
    if "calendar" in changes:
        changes["calendar"] = _calendar_for(me, changes["calendar"])
    if "targets" in changes:
        changes["targets"] = _targets(payload.targets or [])
    services.sla_policy_update(actor=me, sla_policy=row, **changes)
    return sla_policy_out(queries.sla_policy_get(actor=me, policy_id=policy_id))
