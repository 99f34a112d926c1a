"""Business calendars: their definitions, and "when is it due?" without a ticket."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

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
from tierdesk.sla.models import BusinessCalendar

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
