"""Business calendars: a time zone, weekly opening hours and holidays. The arithmetic on them
lives in :mod:`tierdesk.sla.calendar`; :meth:`BusinessCalendar.as_calendar` bridges the two."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.db import models
from django.db.models import F, Q

from tierdesk.core.models import Organization, validate_time_zone
from tierdesk.sla.calendar import Calendar


class BusinessCalendar(models.Model):
    """When business time runs for an SLA: weekly hours in ``time_zone`` minus holidays, or
    ``always_open`` (24x7). ``organization`` empty means MSP-wide (every staff member sees
    it); set, only staff serving that organization (and admins) see it."""

    name = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    always_open = models.BooleanField(default=False)
    # The country (and subdivision) the holidays were seeded from, for people to read.
    country = models.CharField(max_length=3, blank=True)
    subdivision = models.CharField(max_length=20, blank=True)
    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="business_calendars",
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_calendar(self) -> Calendar:
        """The pure calendar for the arithmetic. Reads ``hours`` and ``holidays``: prefetch
        them (``sla.queries`` does)."""
        hours: dict[int, list[tuple[int, int]]] = {}
        for row in self.hours.all():
            hours.setdefault(row.weekday, []).append((row.start_minute, row.end_minute))
        return Calendar(
            time_zone=self.time_zone,
            hours={day: tuple(spans) for day, spans in hours.items()},
            holidays=frozenset(h.date for h in self.holidays.all()),
            always_open=self.always_open,
        )


class CalendarHours(models.Model):
    """One open interval of a weekday (0 = Monday), in minutes of the local day; 1440 is
    midnight at its end. Intervals of one weekday never overlap (the service checks)."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField()
    start_minute = models.PositiveSmallIntegerField()
    end_minute = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["weekday", "start_minute"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="calendar_hours_weekday"),
            models.CheckConstraint(
                condition=Q(end_minute__gt=F("start_minute")), name="calendar_hours_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(end_minute__lte=1440), name="calendar_hours_within_day"
            ),
        ]


class CalendarHoliday(models.Model):
    """A local date on which the calendar is closed all day."""

    calendar = models.ForeignKey(
        BusinessCalendar, on_delete=models.CASCADE, related_name="holidays"
    )
    date = models.DateField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["calendar", "date"], name="calendar_holiday_once"),
        ]


class SlaPolicy(models.Model):
    """A contract: targets per priority on a business calendar. ``organization`` empty is
    the MSP-wide default for organizations without an active policy of their own."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="sla_policies"
    )
    name = models.CharField(max_length=100)
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="+")
    # A warning event when this share of a clock's target is used.
    warning_percent = models.PositiveSmallIntegerField(default=80)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(is_active=True, organization__isnull=False),
                name="sla_policy_one_active_per_org",
            ),
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True, organization__isnull=True),
                name="sla_policy_one_active_default",
            ),
            models.CheckConstraint(
                condition=Q(warning_percent__gte=1, warning_percent__lte=99),
                name="sla_policy_warning_percent",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SlaTarget(models.Model):
    """The minutes of business time a policy allows one priority."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=2)
    first_response_minutes = models.PositiveIntegerField()
    next_update_minutes = models.PositiveIntegerField(null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField()

    class Meta:
        ordering = ["priority"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["policy", "priority"], name="sla_target_once"),
            models.CheckConstraint(
                condition=Q(first_response_minutes__gte=1, resolution_minutes__gte=1),
                name="sla_target_positive",
            ),
        ]


class ClockKind(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    NEXT_UPDATE = "next_update", "Next update"
    RESOLUTION = "resolution", "Resolution"


class ClockStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class SlaClock(models.Model):
    """One SLA clock of a ticket (see sla/clocks.py for the arithmetic)."""

    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="sla_clocks"
    )
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(SlaPolicy, on_delete=models.PROTECT, related_name="clocks")
    kind = models.CharField(max_length=16, choices=ClockKind.choices)
    status = models.CharField(max_length=8, choices=ClockStatus.choices)
    target_minutes = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    paused_at = models.DateTimeField(null=True, blank=True)
    # Business time spent paused (exact: the clock's arithmetic adds it back).
    paused = models.DurationField(default=dt.timedelta(0))
    due_at = models.DateTimeField()
    warn_at = models.DateTimeField()
    next_check_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["ticket", "kind"],
                condition=~Q(status="stopped"),
                name="sla_clock_one_live_per_kind",
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            # The sweep: clocks whose next check has come.
            models.Index(
                fields=["next_check_at"],
                condition=Q(next_check_at__isnull=False),
                name="sla_clock_next_check",
            ),
            # List filters: breaching within N minutes, breached.
            models.Index(
                fields=["due_at"], condition=Q(status="running"), name="sla_clock_running_due"
            ),
            models.Index(fields=["ticket", "kind"], name="sla_clock_ticket"),
            # Reports: the breaches of a period, per organization.
            models.Index(
                fields=["organization", "breached_at"],
                condition=Q(breached_at__isnull=False),
                name="sla_clock_org_breached",
            ),
        ]

    @property
    def state(self) -> str:
        """running / paused / met / breached, as the ticket shows it."""
        if self.breached_at is not None:
            return "breached"
        if self.status == ClockStatus.STOPPED:
            return "met"
        return str(self.status)
