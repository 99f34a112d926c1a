"""Business-calendar arithmetic (tierdesk.sla.calendar): properties checked by hypothesis, and
worked examples with exact instants, through weekends, holidays and DST changes."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierdesk.sla.calendar import (
    MAX_CLOSED_DAYS,
    Calendar,
    CalendarError,
    check_hours,
    format_span,
    parse_span,
)

# The same examples on every run, few enough that the file takes seconds.
CI = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
OFFICE = {day: ((8 * 60, 17 * 60),) for day in range(5)}  # Mon-Fri 08:00-17:00
WHOLE_DAYS = {day: ((0, 1440),) for day in range(7)}  # 00:00-24:00 every day
H = dt.timedelta(hours=1)

# DST changes of 2026 (local dates): (zone, spring forward, fall back).
DST_2026 = (
    ("Europe/Berlin", dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
    ("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1)),
    ("Australia/Sydney", dt.date(2026, 10, 4), dt.date(2026, 4, 5)),
)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


def local(zone: str, *args: int) -> dt.datetime:
    """A local wall-clock time (unambiguous) as a UTC instant."""
    return dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)  # type: ignore[misc]


def inside(cal: Calendar, instant: dt.datetime) -> bool:
    """Inside business hours, a closing time counting as inside: start < instant <= end."""
    day = instant.astimezone(zoneinfo.ZoneInfo(cal.time_zone)).date()
    return any(
        start < instant <= end
        for d in (day - dt.timedelta(days=1), day, day + dt.timedelta(days=1))
        for start, end in cal.open_intervals(d)
    )


# --- strategies ---------------------------------------------------------------------------


@st.composite
def weekly_hours(draw: st.DrawFn) -> dict[int, tuple[tuple[int, int], ...]]:
    """Ordinary office hours, whole days, or random intervals on random weekdays (in quarter
    hours, so bounds often fall on the DST changes at 02:00 and 03:00)."""
    kind = draw(st.sampled_from(["office", "whole", "random"]))
    if kind == "office":
        return dict(OFFICE)
    if kind == "whole":
        return dict(WHOLE_DAYS)
    hours: dict[int, tuple[tuple[int, int], ...]] = {}
    for day in draw(st.sets(st.integers(0, 6), min_size=1)):
        points = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=6)))
        if len(points) % 2:
            points = points[:-1]
        hours[day] = tuple((points[i] * 15, points[i + 1] * 15) for i in range(0, len(points), 2))
    return hours


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    zone = draw(st.sampled_from(ZONES))
    holidays = draw(
        st.frozensets(
            st.dates(min_value=dt.date(2025, 12, 1), max_value=dt.date(2027, 2, 1)), max_size=40
        )
    )
    return Calendar(time_zone=zone, hours=draw(weekly_hours()), holidays=holidays)


# Instants near the 2026 DST changes half of the time, anywhere in 2026 otherwise.
_CHANGES = [
    local(zone, day.year, day.month, day.day, 12)
    for zone, spring, fall in DST_2026
    for day in (spring, fall)
]
instants = st.one_of(
    st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)).map(
        lambda d: d.replace(tzinfo=dt.UTC)
    ),
    st.builds(
        lambda base, seconds: base + dt.timedelta(seconds=seconds),
        st.sampled_from(_CHANGES),
        st.integers(-3 * 86400, 3 * 86400),
    ),
)
durations = st.one_of(
    st.integers(0, 6000).map(lambda m: dt.timedelta(minutes=m)),
    st.integers(0, 400_000).map(lambda s: dt.timedelta(seconds=s)),
)


# --- properties ---------------------------------------------------------------------------


@CI
@given(cal=calendars(), start=instants, duration=durations)
def test_a_due_instant_never_falls_outside_business_hours(
    cal: Calendar, start: dt.datetime, duration: dt.timedelta
) -> None:
    due = cal.add(start, duration)
    assert due.tzinfo == dt.UTC
    if duration:
        assert inside(cal, due), (start, duration, due)
    else:
        assert due == start


@CI
@given(cal=calendars(), start=instants, duration=durations)
def test_adding_a_duration_then_measuring_it_gives_the_duration(
    cal: Calendar, start: dt.datetime, duration: dt.timedelta
) -> None:
    assert cal.between(start, cal.add(start, duration)) == duration


@CI
@given(cal=calendars(), points=st.lists(instants, min_size=3, max_size=3))
def test_between_is_additive(cal: Calendar, points: list[dt.datetime]) -> None:
    a, b, c = sorted(points)
    assert cal.between(a, b) + cal.between(b, c) == cal.between(a, c)
    assert cal.between(c, a) == dt.timedelta(0)


@CI
@given(cal=calendars(), start=instants, d1=durations, d2=durations)
def test_add_is_monotonic_in_the_duration(
    cal: Calendar, start: dt.datetime, d1: dt.timedelta, d2: dt.timedelta
) -> None:
    d1, d2 = sorted((d1, d2))
    assert cal.add(start, d1) <= cal.add(start, d2)


@CI
@given(cal=calendars(), starts=st.lists(instants, min_size=2, max_size=2), duration=durations)
def test_add_is_monotonic_in_the_start(
    cal: Calendar, starts: list[dt.datetime], duration: dt.timedelta
) -> None:
    s1, s2 = sorted(starts)
    assert cal.add(s1, duration) <= cal.add(s2, duration)
    assert cal.between(s1, s2) <= s2 - s1


@CI
@given(zone=st.sampled_from(ZONES), points=st.lists(instants, min_size=2, max_size=2))
def test_whole_days_every_day_is_elapsed_time_across_dst(
    zone: str, points: list[dt.datetime]
) -> None:
    """00:00-24:00 every day covers the timeline without gap or overlap, DST days included:
    the 23- and 25-hour days fit together exactly."""
    a, b = sorted(points)
    assert Calendar(time_zone=zone, hours=WHOLE_DAYS).between(a, b) == b - a


@CI
@given(cal=calendars(), start=instants, duration=durations.filter(bool))
def test_is_open_just_before_a_due_instant(
    cal: Calendar, start: dt.datetime, duration: dt.timedelta
) -> None:
    due = cal.add(start, duration)
    assert cal.is_open(due - dt.timedelta(microseconds=1))


@CI
@given(
    zone=st.sampled_from(ZONES),
    friday=st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 12, 31)).map(
        lambda d: d + dt.timedelta(days=(4 - d.weekday()) % 7)
    ),
    minutes=st.integers(1, 9 * 60),
)
def test_holidays_on_both_sides_of_a_weekend_are_skipped(
    zone: str, friday: dt.date, minutes: int
) -> None:
    """With Friday and Monday closed, whatever starts Thursday afternoon and does not fit
    into Thursday ends on Tuesday."""
    monday = friday + dt.timedelta(days=3)
    cal = Calendar(time_zone=zone, hours=OFFICE, holidays=frozenset({friday, monday}))
    thursday = friday - dt.timedelta(days=1)
    start = local(zone, thursday.year, thursday.month, thursday.day, 16)
    due = cal.add(start, minutes).astimezone(zoneinfo.ZoneInfo(zone))
    expected_day = thursday if minutes <= 60 else friday + dt.timedelta(days=4)
    assert due.date() == expected_day
    assert cal.between(start, due) == dt.timedelta(minutes=minutes)


# --- worked examples ----------------------------------------------------------------------


def test_the_docs_example_friday_1630_berlin_plus_4_business_hours() -> None:
    """A P2 ticket opened Friday 20 Nov 2026, 16:30 in Berlin, 4-hour target, Mon-Fri
    08:00-17:00: 30 minutes on Friday, 3.5 hours on Monday (not a holiday) -> Monday 11:30
    Berlin, 10:30 UTC."""
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    start = local("Europe/Berlin", 2026, 11, 20, 16, 30)
    assert start == utc(2026, 11, 20, 15, 30)
    assert cal.add(start, 240) == utc(2026, 11, 23, 10, 30)


def test_the_same_example_across_the_autumn_dst_change() -> None:
    """Friday 23 Oct 2026 16:30 CEST (UTC+2); the clocks go back on Sunday; Monday 11:30 is
    CET (UTC+1). Business time is the same 4 hours, the UTC gap an hour longer."""
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    start = utc(2026, 10, 23, 14, 30)
    assert cal.add(start, 240) == utc(2026, 10, 26, 10, 30)
    assert cal.between(start, utc(2026, 10, 26, 10, 30)) == 4 * H


def test_the_same_example_across_the_spring_dst_change() -> None:
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    assert cal.add(utc(2026, 3, 27, 15, 30), 240) == utc(2026, 3, 30, 9, 30)


def test_thursday_1600_plus_4_hours_with_friday_and_monday_holidays_is_tuesday_1100() -> None:
    cal = Calendar(
        time_zone="Europe/Berlin",
        hours=OFFICE,
        holidays=frozenset({dt.date(2026, 11, 27), dt.date(2026, 11, 30)}),
    )
    due = cal.add(local("Europe/Berlin", 2026, 11, 26, 16), 240)
    assert due == local("Europe/Berlin", 2026, 12, 1, 11)


def test_new_york_and_sydney_across_their_dst_changes() -> None:
    ny = Calendar(time_zone="America/New_York", hours=OFFICE)
    # Fri 6 Mar 2026 16:00 EST (21:00Z) + 3h: 1h Friday, 2h Monday 08:00-10:00 EDT (14:00Z).
    assert ny.add(utc(2026, 3, 6, 21), 180) == utc(2026, 3, 9, 14)
    sydney = Calendar(time_zone="Australia/Sydney", hours=OFFICE)
    # Fri 2 Oct 2026 16:00 AEST (06:00Z) + 3h: Monday 10:00 AEDT (UTC+11) = Sun 23:00Z.
    assert sydney.add(utc(2026, 10, 2, 6), 180) == utc(2026, 10, 4, 23)


@pytest.mark.parametrize(("zone", "spring", "fall"), DST_2026)
def test_a_whole_day_has_23_hours_in_spring_and_25_in_autumn(
    zone: str, spring: dt.date, fall: dt.date
) -> None:
    cal = Calendar(time_zone=zone, hours=WHOLE_DAYS)
    [(a, b)] = cal.open_intervals(spring)
    assert b - a == 23 * H
    [(a, b)] = cal.open_intervals(fall)
    assert b - a == 25 * H
    ordinary = spring + dt.timedelta(days=14)
    assert cal.between(*cal.open_intervals(ordinary)[0]) == 24 * H


def test_a_bound_in_the_spring_gap_moves_to_the_transition() -> None:
    """Berlin, Sunday 29 Mar 2026: 02:00 CET jumps to 03:00 CEST (01:00Z)."""
    sunday = dt.date(2026, 3, 29)
    whole_gap = Calendar(time_zone="Europe/Berlin", hours={6: ((120, 180),)})
    assert whole_gap.open_intervals(sunday) == []  # 02:00-03:00 does not exist that day
    into_gap = Calendar(time_zone="Europe/Berlin", hours={6: ((90, 150), (150, 240))})
    assert into_gap.open_intervals(sunday) == [
        (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1)),  # 01:30 CET to the jump
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),  # from the jump to 04:00 CEST
    ]


def test_an_ambiguous_bound_takes_its_first_occurrence() -> None:
    """New York, Sunday 1 Nov 2026: 02:00 EDT falls back to 01:00 EST; 01:00-02:00 happens
    twice (05:00-06:00Z EDT, 06:00-07:00Z EST)."""
    sunday = dt.date(2026, 11, 1)
    cal = Calendar(time_zone="America/New_York", hours={6: ((0, 90), (90, 180))})
    assert cal.open_intervals(sunday) == [
        (utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30)),  # ends at the first 01:30
        (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8)),  # runs through the repeat to 03:00
    ]


def test_a_closing_time_counts_as_inside() -> None:
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    assert cal.add(local("Europe/Berlin", 2026, 11, 23, 13), 240) == local(
        "Europe/Berlin", 2026, 11, 23, 17
    )
    assert cal.is_open(local("Europe/Berlin", 2026, 11, 23, 8))
    assert not cal.is_open(local("Europe/Berlin", 2026, 11, 23, 17))
    assert not cal.is_open(local("Europe/Berlin", 2026, 11, 22, 12))  # Sunday


def test_zero_minutes_is_the_start_itself_even_when_closed() -> None:
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    sunday = utc(2026, 11, 22, 12)
    assert cal.add(sunday, 0) == sunday
    assert cal.add(sunday, 1) == local("Europe/Berlin", 2026, 11, 23, 8, 1)


def test_always_open_is_plain_elapsed_time_without_holidays() -> None:
    cal = Calendar(time_zone="UTC", always_open=True, holidays=frozenset({dt.date(2026, 1, 1)}))
    start = utc(2026, 1, 1, 12)
    assert cal.add(start, 90) == utc(2026, 1, 1, 13, 30)
    assert cal.between(start, utc(2026, 1, 2, 12)) == 24 * H
    assert cal.is_open(start)


def test_between_is_exact_to_the_microsecond() -> None:
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    a = utc(2026, 11, 23, 8, 0, 0) + dt.timedelta(microseconds=7)
    assert cal.between(a, utc(2026, 11, 23, 9)) == dt.timedelta(minutes=60, microseconds=-7)


# --- refusals -----------------------------------------------------------------------------


def test_a_calendar_without_hours_is_refused() -> None:
    with pytest.raises(CalendarError, match="opening hours"):
        Calendar(time_zone="Europe/Berlin", hours={})
    with pytest.raises(CalendarError, match="opening hours"):
        Calendar(time_zone="Europe/Berlin", hours={0: ()})


def test_a_calendar_closed_for_years_by_holidays_raises_instead_of_looping() -> None:
    first = dt.date(2026, 1, 1)
    closed = frozenset(first + dt.timedelta(days=i) for i in range(3 * 366))
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE, holidays=closed)
    started = time.monotonic()
    with pytest.raises(CalendarError, match=f"over {MAX_CLOSED_DAYS} days"):
        cal.add(utc(2026, 1, 1), 60)
    assert time.monotonic() - started < 2
    # A long but finite closure is fine.
    short = frozenset(first + dt.timedelta(days=i) for i in range(400))
    due = Calendar(time_zone="Europe/Berlin", hours=OFFICE, holidays=short).add(utc(2026, 1, 1), 60)
    assert due.date() > first + dt.timedelta(days=399)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({0: ((480, 720), (660, 780))}, "Monday: 08:00-12:00 overlaps 11:00-13:00"),
        ({4: ((600, 600),)}, "Friday: 10:00-10:00 must end after it starts"),
        ({7: ((480, 1020),)}, "weekday 7 is out of range"),
        ({0: ((0, 1441),)}, "minutes run from 0 to 1440"),
    ],
)
def test_bad_hours_are_refused_naming_the_weekday_and_intervals(
    hours: dict[int, tuple[tuple[int, int], ...]], message: str
) -> None:
    with pytest.raises(CalendarError, match=message):
        check_hours(hours)


def test_touching_intervals_are_fine() -> None:
    assert check_hours({0: ((720, 1020), (480, 720))}) == {0: ((480, 720), (720, 1020))}


def test_bad_zone_negative_duration_and_naive_instants_are_refused() -> None:
    with pytest.raises(CalendarError, match="IANA"):
        Calendar(time_zone="Mars/Olympus", hours=OFFICE)
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    with pytest.raises(CalendarError, match="negative"):
        cal.add(utc(2026, 1, 1), -1)
    with pytest.raises(CalendarError, match="timezone-aware"):
        cal.add(dt.datetime(2026, 1, 1, 12), 10)


def test_spans_parse_and_print() -> None:
    assert parse_span("8:00-17:30") == (480, 1050)
    assert parse_span("00:00-24:00") == (0, 1440)
    assert format_span((480, 1440)) == "08:00-24:00"
    for bad in ("8-17", "17:00-08:00", "08:00-24:30", "25:00-26:00", "08:60-09:00"):
        with pytest.raises(CalendarError):
            parse_span(bad)


def test_a_four_hour_add_takes_microseconds() -> None:
    cal = Calendar(time_zone="Europe/Berlin", hours=OFFICE)
    start = utc(2026, 11, 20, 15, 30)
    cal.add(start, 240)  # fills the per-date cache
    began = time.perf_counter()
    for _ in range(1000):
        cal.add(start, 240)
    per_call = (time.perf_counter() - began) / 1000
    assert per_call < 200e-6  # typically ~20 µs; generous for slow CI machines
