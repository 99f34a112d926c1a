"""Business calendars through their services and queries: who may create and change them,
what is refused (naming the field) and that a refusal writes nothing; who sees which."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tierdesk.core.errors import NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent
from tierdesk.sla import queries, services
from tierdesk.sla.models import BusinessCalendar, CalendarHoliday, CalendarHours

OFFICE = {day: [(8 * 60, 17 * 60)] for day in range(5)}


def berlin(cast: Cast, **kw: Any) -> BusinessCalendar:
    """GLOBEX's Berlin office hours, Mon-Fri 08:00-17:00, created by the system."""
    args: dict[str, Any] = {
        "actor": None,
        "name": "globex-berlin",
        "title": "Globex Berlin",
        "time_zone": "Europe/Berlin",
        "hours": OFFICE,
        "organization": cast.globex,
    }
    return services.calendar_create(**(args | kw))


def nothing_written() -> bool:
    return not (
        BusinessCalendar.objects.exists()
        or CalendarHours.objects.exists()
        or CalendarHoliday.objects.exists()
        or AuditEntry.objects.filter(action__startswith="calendar.").exists()
        or OutboxEvent.objects.filter(name__startswith="calendar.").exists()
    )


# --- create -------------------------------------------------------------------------------


def test_create_writes_hours_holidays_audit_and_event(cast: Cast) -> None:
    cal = services.calendar_create(
        actor=cast.admin,
        name="Globex-Berlin",
        title="Globex Berlin",
        time_zone="Europe/Berlin",
        hours=OFFICE,
        holidays=[(dt.date(2026, 12, 24), "Heiligabend"), (dt.date(2026, 10, 3), "Unity")],
        country="de",
        holiday_years=[2026],
        organization=cast.globex,
    )
    assert cal.name == "globex-berlin"
    assert cal.country == "DE"
    assert CalendarHours.objects.filter(calendar=cal).count() == 5
    holidays = dict(CalendarHoliday.objects.filter(calendar=cal).values_list("date", "name"))
    assert holidays[dt.date(2026, 12, 24)] == "Heiligabend"  # given, not a public holiday
    assert holidays[dt.date(2026, 10, 3)] == "Unity"  # given wins over the seeded name
    assert holidays[dt.date(2026, 12, 25)] == "Erster Weihnachtstag"  # seeded
    assert len(holidays) == 10
    audit = AuditEntry.objects.get(action="calendar.created")
    assert audit.actor == cast.admin
    assert audit.organization == cast.globex
    assert audit.changes["hours"]["mon"] == ["08:00-17:00"]
    assert audit.changes["hours"]["sat"] == []
    event = OutboxEvent.objects.get(name="calendar.created")
    assert event.payload["name"] == "globex-berlin"
    assert event.organization == cast.globex


def test_a_24x7_calendar_needs_no_hours_and_takes_none(cast: Cast) -> None:
    cal = services.calendar_create(
        actor=cast.admin, name="24x7", title="Always", time_zone="UTC", always_open=True
    )
    assert queries.calendar_get(actor=cast.admin, name="24x7").as_calendar().always_open
    assert cal.organization is None
    with pytest.raises(ValidationFailed) as err:
        services.calendar_create(
            actor=None, name="x", title="x", time_zone="UTC", always_open=True, hours=OFFICE
        )
    assert err.value.errors[0].field == "hours"
    with pytest.raises(ValidationFailed) as err:
        services.calendar_create(
            actor=None,
            name="y",
            title="y",
            time_zone="UTC",
            always_open=True,
            holidays=[(dt.date(2026, 1, 1), "")],
        )
    assert err.value.errors[0].field == "holidays"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"hours": {0: [(480, 720), (660, 780)]}},
            "hours",
            "Monday: 08:00-12:00 overlaps 11:00-13:00",
        ),
        ({"hours": {}}, "hours", "opening hours on at least one weekday"),
        ({"hours": {2: [(600, 540)]}}, "hours", "Wednesday: 10:00-09:00 must end after"),
        ({"hours": {9: [(480, 1020)]}}, "hours", "weekday 9 is out of range"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone", "IANA"),
        ({"country": "XX", "holiday_years": [2026]}, "country", "no holidays known for 'XX'"),
        (
            {"country": "DE", "subdivision": "ZZ", "holiday_years": [2026]},
            "subdivision",
            "DE has no subdivision 'ZZ'",
        ),
        ({"holiday_years": [2026]}, "country", "needed to seed holidays"),
        ({"country": "DE", "holiday_years": [1066]}, "holiday_years", "years from"),
        (
            {"holidays": [(dt.date(2026, 12, 24), "a"), (dt.date(2026, 12, 24), "b")]},
            "holidays",
            "2026-12-24 is listed twice",
        ),
        ({"name": "not a slug!"}, "name", ""),
    ],
)
def test_bad_definitions_are_refused_naming_the_field_and_write_nothing(
    cast: Cast, changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        berlin(cast, actor=cast.admin, **changes)
    assert [e.field for e in err.value.errors] == [field]
    assert message in err.value.detail
    assert nothing_written()


def test_a_name_is_unique(cast: Cast) -> None:
    berlin(cast)
    with pytest.raises(ValidationFailed) as err:
        berlin(cast, organization=None)
    assert err.value.errors[0].field == "name"
    assert BusinessCalendar.objects.count() == 1


def test_nothing_is_half_written_when_the_event_cannot_be(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(services, "record_and_emit", broken)
    with pytest.raises(RuntimeError):
        berlin(cast, country="DE", holiday_years=[2026])
    assert nothing_written()


def test_who_may_create_calendars(cast: Cast) -> None:
    # Managers: for organizations they serve; not MSP-wide ones, not others' organizations.
    assert berlin(cast, actor=cast.manager, name="acme", organization=cast.acme)
    with pytest.raises(PermissionDenied):
        berlin(cast, actor=cast.manager, name="shared", organization=None)
    with pytest.raises(ValidationFailed) as err:
        berlin(cast, actor=cast.manager, name="globex")
    assert err.value.errors[0].field == "organization"
    # Agents and requesters: none.
    for who in (cast.lena, cast.alice):
        with pytest.raises(PermissionDenied):
            berlin(cast, actor=who, name="x", organization=cast.acme)
    # Admins: any.
    assert berlin(cast, actor=cast.admin, name="shared", organization=None)
    assert set(BusinessCalendar.objects.values_list("name", flat=True)) == {"acme", "shared"}


# --- update -------------------------------------------------------------------------------


def test_update_replaces_hours_and_holidays_and_audits_old_and_new(cast: Cast) -> None:
    cal = berlin(cast, holidays=[(dt.date(2026, 12, 24), "Heiligabend")])
    services.calendar_update(
        actor=cast.admin,
        calendar=cal,
        title="Berlin, longer Fridays",
        hours={0: [(480, 1020)], 4: [(480, 720), (780, 1140)]},
        holidays=[(dt.date(2026, 12, 31), "Silvester")],
    )
    cal.refresh_from_db()
    assert cal.title == "Berlin, longer Fridays"
    assert services.hours_text(services.calendar_hours(cal))["fri"] == [
        "08:00-12:00",
        "13:00-19:00",
    ]
    assert list(cal.holidays.values_list("date", flat=True)) == [dt.date(2026, 12, 31)]
    audit = AuditEntry.objects.get(action="calendar.updated")
    assert audit.changes["title"] == {"old": "Globex Berlin", "new": "Berlin, longer Fridays"}
    assert audit.changes["hours"]["old"]["tue"] == ["08:00-17:00"]
    assert audit.changes["hours"]["new"]["tue"] == []
    assert audit.changes["holidays"] == {
        "added": ["2026-12-31"],
        "removed": ["2026-12-24"],
        "renamed": [],
    }
    assert OutboxEvent.objects.filter(name="calendar.updated").count() == 1


def test_an_update_that_changes_nothing_writes_nothing(cast: Cast) -> None:
    cal = berlin(cast)
    stamp = cal.updated_at
    services.calendar_update(actor=cast.admin, calendar=cal, title="Globex Berlin", hours=OFFICE)
    assert not AuditEntry.objects.filter(action="calendar.updated").exists()
    cal.refresh_from_db()
    assert cal.updated_at == stamp


def test_a_refused_update_changes_nothing(cast: Cast) -> None:
    cal = berlin(cast)
    with pytest.raises(ValidationFailed) as err:
        services.calendar_update(
            actor=cast.admin,
            calendar=cal,
            title="changed",
            hours={0: [(480, 720), (700, 800)]},
        )
    assert err.value.errors[0].field == "hours"
    with pytest.raises(ValidationFailed) as err:  # 24x7 with office hours left in place
        services.calendar_update(actor=cast.admin, calendar=cal, always_open=True)
    assert err.value.errors[0].field == "hours"
    cal.refresh_from_db()
    assert cal.title == "Globex Berlin"
    assert not cal.always_open
    assert cal.hours.count() == 5
    assert not AuditEntry.objects.filter(action="calendar.updated").exists()


def test_seeding_adds_a_countrys_holidays_and_keeps_the_others(cast: Cast) -> None:
    cal = berlin(cast, holidays=[(dt.date(2026, 12, 24), "Heiligabend")])
    services.calendar_seed_holidays(
        actor=cast.admin, calendar=cal, country="DE", subdivision="BY", years=[2026, 2027]
    )
    cal.refresh_from_db()
    assert (cal.country, cal.subdivision) == ("DE", "BY")
    dates = set(cal.holidays.values_list("date", flat=True))
    assert dt.date(2026, 12, 24) in dates
    assert dt.date(2027, 1, 6) in dates  # Heilige Drei Könige, Bavaria only
    before = len(dates)
    services.calendar_seed_holidays(actor=cast.admin, calendar=cal, country="DE", years=[2026])
    assert cal.holidays.count() == before  # seeding again adds nothing twice


def test_who_may_change_calendars(cast: Cast) -> None:
    acme = berlin(cast, name="acme", organization=cast.acme)
    shared = berlin(cast, name="shared", organization=None)
    services.calendar_update(actor=cast.manager, calendar=acme, title="ACME hours")
    with pytest.raises(PermissionDenied):
        services.calendar_update(actor=cast.manager, calendar=shared, title="mine now")
    with pytest.raises(PermissionDenied):
        services.calendar_update(actor=cast.lena, calendar=acme, title="mine now")
    assert BusinessCalendar.objects.get(name="shared").title == "Globex Berlin"


# --- queries ------------------------------------------------------------------------------


def test_who_sees_which_calendars(cast: Cast) -> None:
    berlin(cast)  # GLOBEX's
    berlin(cast, name="acme-ny", organization=cast.acme, time_zone="America/New_York")
    berlin(cast, name="24x7", organization=None, hours={}, always_open=True)

    def seen(who: Any) -> set[str]:
        return set(queries.calendar_list(actor=who).values_list("name", flat=True))

    everything = {"globex-berlin", "acme-ny", "24x7"}
    assert seen(cast.admin) == everything
    assert seen(None) == everything  # the operator on the CLI
    assert seen(cast.lena) == {"acme-ny", "24x7"}
    assert seen(cast.gus) == {"globex-berlin", "24x7"}
    assert seen(cast.omar) == everything
    assert seen(cast.outsider) == {"24x7"}
    assert seen(cast.alice) == set()
    assert seen(cast.carol) == set()
    with pytest.raises(NotFound):
        queries.calendar_get(actor=cast.lena, name="globex-berlin")
    with pytest.raises(NotFound):
        queries.calendar_get(actor=cast.alice, name="24x7")
    assert queries.calendar_get(actor=cast.gus, name=" GLOBEX-Berlin ").name == "globex-berlin"


def test_list_and_get_have_a_query_budget(cast: Cast) -> None:
    for i in range(5):
        berlin(cast, name=f"cal-{i}", holidays=[(dt.date(2026, 12, 24), "")])
    with CaptureQueriesContext(connection) as ctx:
        [services.calendar_hours(c) for c in queries.calendar_list(actor=cast.gus)]
    # 1: the calendars the actor sees, organization joined; 2: their hours.
    assert len(ctx.captured_queries) == 2, [q["sql"] for q in ctx.captured_queries]
    with CaptureQueriesContext(connection) as ctx:
        queries.calendar_get(actor=cast.gus, name="cal-0").as_calendar()
    # 1: the calendar; 2: its hours; 3: its holidays.
    assert len(ctx.captured_queries) == 3, [q["sql"] for q in ctx.captured_queries]


def test_due_and_between_through_a_stored_calendar(cast: Cast) -> None:
    berlin(cast, country="DE", holiday_years=[2026])
    cal = queries.calendar_get(actor=cast.gus, name="globex-berlin")
    start = queries.parse_instant("from", "2026-11-20T16:30:00+01:00")
    due = queries.calendar_due(calendar=cal, start=start, minutes=240)
    assert due == dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC)
    assert queries.calendar_between(calendar=cal, start=start, end=due) == dt.timedelta(hours=4)
    # Christmas: Thursday 24th 16:00 + 4h; 25th and 26th are holidays, 27th a Sunday.
    christmas = queries.calendar_due(
        calendar=cal, start=queries.parse_instant("from", "2026-12-24T15:00:00Z"), minutes=240
    )
    assert christmas == dt.datetime(2026, 12, 28, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-20T16:30:00", "no UTC offset"),
        ("2026-11-20", "no UTC offset"),
        ("next friday", "not an ISO 8601 instant"),
        ("1850-01-01T00:00:00Z", "from 1970 to 2100"),
    ],
)
def test_instants_without_an_offset_or_out_of_range_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        queries.parse_instant("from", text)
    assert err.value.errors[0].field == "from"
    assert message in err.value.detail


def test_minutes_out_of_range_are_refused(cast: Cast) -> None:
    cal = berlin(cast)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for minutes in (-1, queries.MAX_MINUTES + 1):
        with pytest.raises(ValidationFailed) as err:
            queries.calendar_due(calendar=cal, start=start, minutes=minutes)
        assert err.value.errors[0].field == "minutes"


@pytest.mark.django_db
def test_the_demo_has_a_calendar_per_organization_and_a_24x7_one() -> None:
    from tierdesk.demo import seed_demo

    seed_demo(tickets=0, days=10)
    calendars = {c.name: c for c in queries.calendar_list(actor=None)}
    assert set(calendars) == {"acme-new-york", "globex-berlin", "initech-sydney", "24x7"}
    assert calendars["24x7"].always_open
    assert calendars["24x7"].organization is None
    assert calendars["globex-berlin"].organization.code == "GLOBEX"
    assert services.hours_text(services.calendar_hours(calendars["initech-sydney"]))["mon"] == [
        "09:00-17:30"
    ]
    for name in ("acme-new-york", "globex-berlin", "initech-sydney"):
        assert calendars[name].holidays.filter(date__month=12, date__day=25).exists()
