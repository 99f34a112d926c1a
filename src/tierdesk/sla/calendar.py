"""Business-calendar arithmetic: when is N minutes of business time after an instant, and how
much business time lies between two instants. Pure Python: no Django, no database.

A :class:`Calendar` has a time zone, weekly opening hours in local wall-clock time, and
holidays (local dates closed all day); or it is ``always_open`` (24x7: plain elapsed time,
no holidays). Instants come in and go out as timezone-aware UTC datetimes; the arithmetic is
exact (``timedelta``, never floats), so ``between(s, add(s, d)) == d`` for every ``s`` and
``d``.

How local opening hours become instants (all in :meth:`Calendar.open_intervals`):

* Weekday 0 is Monday. An interval is ``(start_minute, end_minute)`` with
  ``0 <= start < end <= 1440``; 1440 is midnight at the end of the day.
* **Spring forward** (a gap in wall-clock time): a bound that falls inside the gap moves to
  the transition instant, so an interval lying wholly inside the gap is empty that day and
  one straddling it is shorter by the gap. A 00:00-24:00 day has 23 hours.
* **Fall back** (wall-clock time repeats): an ambiguous bound takes its first occurrence
  (``fold=0``). An interval that spans the repeated hour is longer by it, so a 00:00-24:00
  day has 25 hours; an interval ending inside the repeated hour ends at its first pass.
* A holiday closes its whole local date. Holidays are ignored by 24x7 calendars.

``add(start, 0)`` is ``start`` itself, even outside business hours. For a positive duration
the result is always inside business hours, where an interval's end counts as inside: 4
hours from 13:00 on an 08:00-17:00 day is 17:00 that day, not 08:00 the next.

A calendar with no opening hours at all refuses to be built; one whose holidays close every
day for more than :data:`MAX_CLOSED_DAYS` in a row makes :meth:`Calendar.add` raise
:class:`CalendarError` instead of searching forever.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DAY_MINUTES = 1440
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# add() gives up after this many closed days in a row (a little over two years).
MAX_CLOSED_DAYS = 800
# Per-calendar cache of days' intervals; beyond this many dates it starts afresh.
_CACHE_LIMIT = 20_000

Span = tuple[int, int]  # (start_minute, end_minute) of a local day
Interval = tuple[dt.datetime, dt.datetime]  # (start, end) UTC instants
_ZERO = dt.timedelta(0)
_SECOND = dt.timedelta(seconds=1)
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class CalendarError(ValueError):
    """A calendar that cannot be built or cannot answer (no hours, closed for years, an
    instant out of range). The message is meant for people."""


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def format_span(span: tuple[int, int]) -> str:
    """``(480, 1020)`` -> ``"08:00-17:00"``."""
    return f"{format_minute(span[0])}-{format_minute(span[1])}"


def parse_span(text: str) -> tuple[int, int]:
    """``"08:00-17:00"`` -> ``(480, 1020)``; ``24:00`` is the end of the day. Raises
    CalendarError for anything else (including an end not after its start)."""
    match = _SPAN.match(text.strip())
    if not match:
        raise CalendarError(f"{text!r} is not a time range like 08:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if m1 > 59 or m2 > 59 or h1 > 23 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise CalendarError(f"{text!r}: times run from 00:00 to 24:00")
    span = (h1 * 60 + m1, h2 * 60 + m2)
    if span[0] >= span[1]:
        raise CalendarError(f"{text!r}: the end must be after the start")
    return span


def check_hours(hours: Mapping[int, Iterable[tuple[int, int]]]) -> dict[int, tuple[Span, ...]]:
    """The weekly hours sorted per weekday, or CalendarError naming the weekday and the
    intervals at fault (weekday out of range, bounds out of range, start not before end,
    two intervals overlapping). Touching intervals (08:00-12:00, 12:00-17:00) are fine."""
    result: dict[int, tuple[Span, ...]] = {}
    for weekday, spans in hours.items():
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise CalendarError(f"weekday {weekday!r} is out of range: 0 (Monday) to 6 (Sunday)")
        day = WEEKDAY_NAMES[weekday]
        ordered = sorted((s, e) for s, e in spans)
        for start, end in ordered:
            if not (isinstance(start, int) and isinstance(end, int)):
                raise CalendarError(f"{day}: bounds are whole minutes (got {start!r}-{end!r})")
            if not (0 <= start <= DAY_MINUTES and 0 <= end <= DAY_MINUTES):
                raise CalendarError(f"{day}: minutes run from 0 to 1440 (got {start}-{end})")
            if start >= end:
                raise CalendarError(f"{day}: {format_span((start, end))} must end after it starts")
        for a, b in itertools.pairwise(ordered):
            if b[0] < a[1]:
                raise CalendarError(f"{day}: {format_span(a)} overlaps {format_span(b)}")
        if ordered:
            result[weekday] = tuple(ordered)
    return result


@dataclass(frozen=True)
class Calendar:
    """A business calendar; see the module docstring for the rules. Build it once per use
    (``BusinessCalendar.as_calendar()``): each instance caches the intervals of the dates
    it has computed, so repeated questions cost a dictionary lookup per day."""

    time_zone: str
    hours: Mapping[int, tuple[Span, ...]] = field(default_factory=dict)
    holidays: frozenset[dt.date] = frozenset()
    always_open: bool = False
    _tz: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)
    _days: dict[dt.date, tuple[Interval, ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        try:
            tz = zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"{self.time_zone!r} is not an IANA time zone") from None
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "hours", check_hours(self.hours))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if not self.always_open and not self.hours:
            raise CalendarError("a calendar needs opening hours on at least one weekday")

    def __hash__(self) -> int:
        return hash((self.time_zone, tuple(sorted(self.hours.items())), self.always_open))

    # --- the day ---------------------------------------------------------------------------

    def open_intervals(self, local_date: dt.date) -> list[Interval]:
        """The open intervals of ``local_date`` as ``(start, end)`` UTC instants, in order;
        empty on a holiday or a closed weekday. A 24x7 calendar's day is local midnight to
        local midnight."""
        return list(self._intervals(local_date))

    def _intervals(self, day: dt.date) -> tuple[Interval, ...]:
        cached = self._days.get(day)
        if cached is not None:
            return cached
        if len(self._days) >= _CACHE_LIMIT:
            self._days.clear()
        if self.always_open:
            spans: tuple[Span, ...] = ((0, DAY_MINUTES),)
        elif day in self.holidays:
            spans = ()
        else:
            spans = self.hours.get(day.weekday(), ())
        result = []
        for start, end in spans:
            a, b = self._instant(day, start), self._instant(day, end)
            if a < b:  # empty when it lay wholly inside a spring-forward gap
                result.append((a, b))
        intervals = tuple(result)
        self._days[day] = intervals
        return intervals

    def _instant(self, day: dt.date, minute: int) -> dt.datetime:
        """Local wall-clock ``minute`` of ``day`` as a UTC instant: in a gap, the transition
        instant; when ambiguous, the first occurrence."""
        if minute == DAY_MINUTES:
            day, minute = day + dt.timedelta(days=1), 0
        local = dt.datetime.combine(day, dt.time(minute // 60, minute % 60), tzinfo=self._tz)
        first = local.astimezone(dt.UTC)  # fold=0: first occurrence; in a gap, the old offset
        if first.astimezone(self._tz).replace(tzinfo=None) == local.replace(tzinfo=None):
            return first
        # In a gap: fold=1 reads it with the new offset, landing before the transition;
        # fold=0 after it. Find the transition between them (offsets change on whole seconds).
        lo, hi = local.replace(fold=1).astimezone(dt.UTC), first
        offset_after = hi.astimezone(self._tz).utcoffset()
        while hi - lo > _SECOND:
            mid = lo + ((hi - lo) // 2 // _SECOND) * _SECOND
            if mid.astimezone(self._tz).utcoffset() == offset_after:
                hi = mid
            else:
                lo = mid
        return hi

    def _local_date(self, instant: dt.datetime) -> dt.date:
        return instant.astimezone(self._tz).date()

    # --- questions -------------------------------------------------------------------------

    def is_open(self, instant: dt.datetime) -> bool:
        """Whether business time runs at ``instant`` (intervals are half-open: open at
        08:00, closed at 17:00)."""
        instant = _utc(instant)
        if self.always_open:
            return True
        day = self._local_date(instant)
        # The neighbours too: around a DST change a day's bounds may sit across local midnight.
        for d in (day - dt.timedelta(days=1), day, day + dt.timedelta(days=1)):
            for start, end in self._intervals(d):
                if start <= instant < end:
                    return True
        return False

    def add(self, start: dt.datetime, minutes: int | dt.timedelta) -> dt.datetime:
        """The UTC instant when ``minutes`` of business time have elapsed after ``start``.

        ``add(start, 0) == start``; otherwise the result lies inside business hours (a
        closing time counts as inside). Raises CalendarError for a negative duration, when
        the calendar is closed for more than MAX_CLOSED_DAYS days in a row, or when the
        result would fall outside the years datetime supports."""
        start = _utc(start)
        remaining = minutes if isinstance(minutes, dt.timedelta) else dt.timedelta(minutes=minutes)
        if remaining < _ZERO:
            raise CalendarError("the duration must not be negative")
        if remaining == _ZERO:
            return start
        try:
            if self.always_open:
                return start + remaining
            day = self._local_date(start) - dt.timedelta(days=1)
            closed = 0
            while True:
                intervals = self._intervals(day)
                for begin, end in intervals:
                    if end <= start:
                        continue
                    begin = max(begin, start)
                    available = end - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
                closed = 0 if intervals else closed + 1
                if closed > MAX_CLOSED_DAYS:
                    raise CalendarError(
                        f"the calendar is closed every day from {day - dt.timedelta(closed)} "
                        f"for over {MAX_CLOSED_DAYS} days: no due instant"
                    )
                day += dt.timedelta(days=1)
        except OverflowError:
            raise CalendarError("the due instant is beyond the supported range") from None

    def between(self, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
        """Business time in ``[a, b)``; zero when ``b <= a``. Exact."""
        a, b = _utc(a), _utc(b)
        if b <= a:
            return _ZERO
        if self.always_open:
            return b - a
        total = _ZERO
        day = self._local_date(a) - dt.timedelta(days=1)
        last = self._local_date(b) + dt.timedelta(days=1)
        try:
            while day <= last:
                for begin, end in self._intervals(day):
                    lo, hi = max(begin, a), min(end, b)
                    if lo < hi:
                        total += hi - lo
                day += dt.timedelta(days=1)
        except OverflowError:
            raise CalendarError("the instants are beyond the supported range") from None
        return total


def _utc(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError("instants must be timezone-aware")
    return instant.astimezone(dt.UTC)
