"""Property: pausing a clock adds exactly the paused business time to its due instant."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from tests.sla.test_sla_calendar import CI, calendars, instants
from tierdesk.sla import clocks
from tierdesk.sla.calendar import Calendar
from tierdesk.sla.models import ClockStatus, SlaClock, SlaPolicy


def _clock(start: dt.datetime, minutes: int, paused: dt.timedelta = dt.timedelta(0)) -> SlaClock:
    c = SlaClock(
        kind="first_response",  # no other app watches first-response percentages
        status=ClockStatus.RUNNING,
        target_minutes=minutes,
        started_at=start,
        paused=paused,
    )
    c.policy = SlaPolicy(warning_percent=80)  # unsaved: the arithmetic reads only this
    return c


@CI
@given(
    cal=calendars(),
    start=instants,
    minutes=st.integers(1, 3000),
    pause_after=st.floats(0, 0.999),
    pause_for=st.integers(0, 400_000),
)
def test_pausing_adds_exactly_the_paused_business_time(
    cal: Calendar,
    start: dt.datetime,
    minutes: int,
    pause_after: float,
    pause_for: int,
) -> None:
    before = _clock(start, minutes)
    clocks._plan_all([before], start, cal)
    # Pause somewhere before the due instant, resume some (wall-clock) time later.
    paused_at = start + (before.due_at - start) * pause_after
    resumed_at = paused_at + dt.timedelta(seconds=pause_for)
    paused = cal.between(paused_at, resumed_at)
    after = _clock(start, minutes, paused)
    clocks._plan_all([after], resumed_at, cal)
    assert cal.between(before.due_at, after.due_at) == paused
    # Business time run, pause excluded, is exactly the target at the new due instant.
    assert cal.between(start, after.due_at) - paused == dt.timedelta(minutes=minutes)
