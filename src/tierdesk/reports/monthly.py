"""The monthly client report: one organization's month of service — headline figures with
the month before beside them, SLA compliance and every breach, volume, response and
resolution times, escalations, the backlog at the month's end and satisfaction — as a
printable HTML page and as a PDF (WeasyPrint), ready to send to the client.

``build`` reads everything through reports.queries (so the figures are those of the API and
docs/kpis.md, scoped the same way: managers serving the organization and admins; another
tenant's code reads as unknown) and returns a ``MonthlyReport`` holding every figure and
text the page shows, already formatted; ``render_html`` and ``render_pdf`` only lay it out.
The month is the organization's: its days in its time zone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import re
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.conf import settings
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from tierdesk.core import clock
from tierdesk.core.errors import DomainError, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.reports import queries
from tierdesk.reports.charts import Chart, Series
from tierdesk.reports.models import TicketFact
from tierdesk.sla.models import ClockKind
from tierdesk.tickets.models import Priority
from tierdesk.tiers.models import Category

MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
L1_TARGET = (0.60, 0.70)  # the share of resolutions that should end at L1
TOP_CATEGORIES = 10  # drawn; the table lists them all
CSS_FILE = Path(__file__).resolve().parent / "static" / "reports" / "monthly.css"
PANGO_PACKAGE = "libpango-1.0-0"  # Debian's package of the library WeasyPrint draws text with


class PdfUnavailable(DomainError):
    """The PDF cannot be made on this machine (WeasyPrint or its system library missing)."""

    status = 503
    slug = "pdf-unavailable"
    title = "PDF unavailable"


# --- the month ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: object) -> Month:
        """``YYYY-MM``, a year from 1970 to 2100; anything else is refused (field ``month``)."""
        found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip()) if isinstance(text, str) else None
        if found is None:
            raise ValidationFailed.for_field("month", "a month as YYYY-MM, e.g. 2026-10")
        year, month = int(found[1]), int(found[2])
        if not 1 <= month <= 12:
            raise ValidationFailed.for_field("month", "the month is 01 to 12 (YYYY-MM)")
        if not queries.FIRST_YEAR <= year <= queries.LAST_YEAR:
            raise ValidationFailed.for_field(
                "month", f"a year from {queries.FIRST_YEAR} to {queries.LAST_YEAR}"
            )
        return cls(year, month)

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{MONTH_NAMES[self.month - 1]} {self.year}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        following = dt.date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return following - dt.timedelta(days=1)

    @property
    def previous(self) -> Month | None:
        """The month before; None before the first month a report may cover."""
        before = self.first_day - dt.timedelta(days=1)
        return None if before.year < queries.FIRST_YEAR else Month.of(before)


def last_month(time_zone: str) -> Month:
    """The month before the current one in ``time_zone``: the one a report is usually for."""
    today = clock.now().astimezone(zoneinfo.ZoneInfo(time_zone)).date()
    return Month.of(today.replace(day=1) - dt.timedelta(days=1))


# --- what the report holds ------------------------------------------------------------------

Unit = Literal["count", "rate", "score", "duration"]
Better = Literal["higher", "lower", ""]


@dataclass(frozen=True)
class Figure:
    """One headline figure, this month and the one before; texts formatted for the page."""

    key: str
    label: str
    unit: Unit
    value: float | None
    previous: float | None
    better: Better = ""  # which way is an improvement; "" when neither is
    note: str = ""

    @property
    def value_text(self) -> str:
        return _format(self.unit, self.value)

    @property
    def previous_text(self) -> str:
        return _format(self.unit, self.previous)

    @property
    def delta(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def change_text(self) -> str:
        d = self.delta
        if d is None:
            return "—"
        if self.unit == "rate":
            points = round(d * 100, 1)
            return "±0 pp" if points == 0 else f"{points:+.1f} pp"
        if self.unit == "score":
            return "±0" if round(d, 2) == 0 else f"{d:+.2f}"
        if self.unit == "duration":
            return "±0" if d == 0 else ("+" if d > 0 else "-") + _duration(abs(d))
        return "±0" if d == 0 else f"{int(d):+,}"

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, or empty: no change, no comparison, or no better way."""
        d = self.delta
        # Less than the figure's last shown digit (or a minute) is no change worth a word.
        least = {"count": 1, "rate": 0.001, "score": 0.01, "duration": 60}[self.unit]
        if not self.better or d is None or abs(d) < least - 1e-9:
            return ""
        return "better" if (d > 0) == (self.better == "higher") else "worse"


@dataclass(frozen=True)
class Table:
    """Rows of formatted cells; the first cell of a row names it."""

    caption: str
    head: Sequence[str]
    rows: Sequence[Sequence[str]]
    foot: Sequence[Sequence[str]] = ()
    empty: str = "Nothing this month."


@dataclass(frozen=True)
class Panel:
    """A chart (optional) and the table of its numbers."""

    title: str
    table: Table
    chart: Chart | None = None
    note: str = ""


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    panels: Sequence[Panel]
    intro: str = ""
    new_page: bool = True


@dataclass(frozen=True)
class Breach:
    ticket: str
    subject: str
    priority: str
    target: str  # first response, next update, resolution
    policy: str
    due: str
    late_by: str
    running: bool  # the clock still runs: late by this much so far


@dataclass(frozen=True)
class MonthlyReport:
    msp_name: str
    organization_code: str
    organization_name: str
    month: Month
    previous_month: Month | None
    time_zone: str
    generated_at: dt.datetime  # in the organization's time zone
    figures: Sequence[Figure]
    sections: Sequence[Section]
    breaches: Sequence[Breach]
    breaches_total: int
    # The queries' answers behind the figures, for whoever wants the raw numbers.
    summary: dict[str, Any] = field(repr=False)
    previous_summary: dict[str, Any] | None = field(repr=False)

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    @property
    def generated_text(self) -> str:
        return self.generated_at.strftime("%Y-%m-%d %H:%M")

    @property
    def title(self) -> str:
        return f"{self.organization_name} — service report, {self.month.label}"

    @property
    def filename(self) -> str:
        """A file name for the report, without the extension."""
        return f"{self.organization_code}-{self.month}-service-report"

    @property
    def key_figures(self) -> list[Figure]:
        return [self.figure(k) for k in KEY_FIGURES]


# --- building it ----------------------------------------------------------------------------

# key, label, unit, which way is better, note. The keys are reports.queries.summary's, and
# three more computed here.
FIGURES: Sequence[tuple[str, str, Unit, Better, str]] = (
    ("created", "Tickets created", "count", "", ""),
    ("resolved", "Tickets resolved", "count", "higher", "merged duplicates not counted"),
    ("fcr_rate", "First contact resolution", "rate", "higher",
     "resolved at first contact, of those resolved"),
    ("l1_resolution_rate", "Resolved at L1", "rate", "", ""),  # its note: _l1_note
    ("escalation_rate_l1_l2", "Escalated L1 → L2", "rate", "lower",
     "of the tickets created that were at L1"),
    ("escalation_rate_l2_l3", "Escalated L2 → L3", "rate", "lower",
     "of the tickets created that were at L2"),
    ("reopen_rate", "Reopened", "rate", "lower", "of those resolved"),
    ("sla_response_compliance", "SLA first response met", "rate", "higher",
     "tickets created, clock decided"),
    ("sla_resolution_compliance", "SLA resolution met", "rate", "higher",
     "tickets created, clock decided"),
    ("response_median", "Median time to first response", "duration", "lower", "business hours"),
    ("resolution_median", "Median time to resolution", "duration", "lower", "business hours"),
    ("backlog_open", "Open at the month's end", "count", "lower", "backlog"),
    ("csat_average", "Satisfaction (1-5)", "score", "higher", "average rating"),
    ("csat_responses", "Ratings received", "count", "", ""),
    ("csat_response_rate", "Rating response rate", "rate", "higher", "of the tickets resolved"),
    ("deflections", "Solved by a knowledge article", "count", "higher",
     "requests that never became tickets"),
)  # fmt: skip
KEY_FIGURES = ("created", "resolved", "sla_resolution_compliance", "csat_average")
# A query of reports.queries asked for one month: ask(queries.summary, month, **extra).
Ask = Callable[..., dict[str, Any]]


def build(actor: User, org_code: str, month: Month | str) -> MonthlyReport:
    """The report of ``org_code``'s ``month`` (a Month or ``YYYY-MM``) as ``actor`` may read
    it: a manager serving the organization or an admin (PermissionDenied otherwise; an
    organization the actor does not serve is NotFound, as a missing one)."""
    if not isinstance(month, Month):
        month = Month.parse(month)
    (org,) = queries.report_organizations(actor, org_code)
    now = clock.now()
    tz = zoneinfo.ZoneInfo(org.time_zone)

    def ask(report: Ask, of: Month, **extra: Any) -> dict[str, Any]:
        return report(
            actor=actor, organization=org.code, first_day=of.first_day, last_day=of.last_day,
            **extra,
        )  # fmt: skip

    previous = month.previous
    current = _headline(ask, month)
    before = _headline(ask, previous) if previous else None
    sla = ask(queries.sla, month)
    sections = [
        _sla_section(sla, current, before, month, previous),
        _volume_section(ask, month, org),
        _times_section(ask, month),
        _backlog_section(org, month, now),
        _csat_section(ask(queries.csat, month)),
    ]
    return MonthlyReport(
        msp_name=settings.MSP_NAME,
        organization_code=org.code,
        organization_name=org.name,
        month=month,
        previous_month=previous,
        time_zone=org.time_zone,
        generated_at=now.astimezone(tz),
        figures=[
            Figure(
                key,
                label,
                unit,
                _number(current[key]),
                _number(before[key]) if before else None,
                better,
                _l1_note(current[key]) if key == "l1_resolution_rate" else note,
            )
            for key, label, unit, better, note in FIGURES
        ],
        sections=sections,
        breaches=[_breach(b, tz, now) for b in sla["breaches"]],
        breaches_total=sla["breaches_total"],
        summary=current,
        previous_summary=before,
    )


def _l1_note(rate: float | None) -> str:
    low, high = L1_TARGET
    band = f"target {low * 100:.0f}-{high * 100:.0f} %"
    if rate is None:
        return band
    where = "below" if rate < low else "above" if rate > high else "within"
    return f"{band}: {where}"


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _headline(ask: Ask, month: Month) -> dict[str, Any]:
    """The summary's figures, the rating response rate and the median business times."""
    figures = ask(queries.summary, month)
    (overall,) = ask(queries.times, month)["groups"]
    return {
        **figures,
        "csat_response_rate": ask(queries.csat, month)["response_rate"],
        "response_median": overall["response_business"]["median"],
        "resolution_median": overall["resolution_business"]["median"],
    }


def _sla_section(
    sla: dict[str, Any],
    current: dict[str, Any],
    before: dict[str, Any] | None,
    month: Month,
    previous: Month | None,
) -> Section:
    targets = (("First response", "sla_response_compliance"),
               ("Resolution", "sla_resolution_compliance"))  # fmt: skip
    months = [(previous, before)] if previous and before else []
    months.append((month, current))
    compliance = Panel(
        "Compliance, this month and the month before",
        Table(
            "SLA compliance: the share of the tickets created in the month whose clock was met",
            ["Target", *(m.label for m, _ in months)],
            [[name, *(_percent(f[key]) for _, f in months)] for name, key in targets],
        ),
        Chart(
            "bar",
            "SLA compliance",
            [name for name, _ in targets],
            [Series(m.label, [f[key] for _, key in targets]) for m, f in months],
            percent=True,
        ),
    )
    policies = Panel(
        "By SLA policy",
        Table(
            "Tickets created in the month under each SLA policy, by outcome",
            [
                "Policy",
                "Response met",
                "Response breached",
                "Response compliance",
                "Resolution met",
                "Resolution breached",
                "Resolution compliance",
            ],
            [
                [
                    p["policy"] or "(a policy deleted since)",
                    _count(p["response_met"]),
                    _count(p["response_breached"]),
                    _percent(p["response_compliance"]),
                    _count(p["resolution_met"]),
                    _count(p["resolution_breached"]),
                    _percent(p["resolution_compliance"]),
                ]
                for p in sla["policies"]
            ],
            empty="No ticket created this month ran on an SLA policy.",
        ),
    )
    return Section(
        "sla",
        "Service levels (SLA)",
        [compliance, policies],
        intro="A target is met when the clock stopped in time; tickets whose clock still runs "
        "and has not breached are not counted yet. Breaches are listed below by when they "
        "happened, whenever their ticket was created.",
    )


def _weeks(month: Month) -> list[tuple[dt.date, dt.date, dt.date]]:
    """The month's weeks (Monday to Sunday, as the volume query counts them): each week's
    Monday, and its first and last day within the month."""
    monday = month.first_day - dt.timedelta(days=month.first_day.weekday())
    found = []
    while monday <= month.last_day:
        sunday = monday + dt.timedelta(days=6)
        found.append((monday, max(monday, month.first_day), min(sunday, month.last_day)))
        monday += dt.timedelta(days=7)
    return found


def _span(first: dt.date, last: dt.date) -> str:
    name = MONTH_NAMES[first.month - 1][:3]
    return f"{name} {first.day}" if first == last else f"{name} {first.day}-{last.day}"


PRIORITIES = [p.value for p in Priority]
PRIORITY_COLORS = ("#8c2d2d", "#e08a1e", "#1f3b73", "#b9b9b9")  # P1 … P4: dark to light


def _volume_section(ask: Ask, month: Month, org: Organization) -> Section:
    weekly = {r["start"]: r for r in ask(queries.volume, month, interval="week")["rows"]}
    trend = {t["day"]: t["open"] for t in ask(queries.backlog, month)["trend"]}
    weeks = _weeks(month)
    labels = [_span(first, last) for _, first, last in weeks]
    zero = {"created": 0, "resolved": 0, "closed": 0}
    counts = [weekly.get(monday, zero) for monday, _, _ in weeks]
    totals = {k: sum(c[k] for c in counts) for k in zero}
    per_week = Panel(
        "Created and resolved per week",
        Table(
            "Tickets per week (weeks from Monday; the first and last cut at the month's edges)",
            ["Week", "Created", "Resolved", "Closed", "Open at the week's end"],
            [
                [
                    label,
                    _count(c["created"]),
                    _count(c["resolved"]),
                    _count(c["closed"]),
                    _count(trend.get(last, 0)),
                ]
                for label, c, (_, _, last) in zip(labels, counts, weeks, strict=True)
            ],
            foot=[
                [
                    "Month",
                    _count(totals["created"]),
                    _count(totals["resolved"]),
                    _count(totals["closed"]),
                    _count(trend.get(month.last_day, 0)),
                ]
            ],
        ),
        Chart(
            "bar",
            "Tickets created and resolved per week",
            labels,
            [
                Series("Created", [c["created"] for c in counts]),
                Series("Resolved", [c["resolved"] for c in counts]),
            ],
        ),
    )

    by_priority: dict[tuple[dt.date, str], dict[str, int]] = {
        (r["start"], r["key"]): r
        for r in ask(queries.volume, month, interval="week", by="priority")["rows"]
    }
    created = {
        p: [by_priority.get((monday, p), zero)["created"] for monday, _, _ in weeks]
        for p in PRIORITIES
    }
    priority_weeks = Panel(
        "Created per week, by priority",
        Table(
            "Tickets created per week, by priority",
            ["Week", *PRIORITIES, "Total"],
            [
                [
                    label,
                    *(_count(created[p][i]) for p in PRIORITIES),
                    _count(sum(created[p][i] for p in PRIORITIES)),
                ]
                for i, label in enumerate(labels)
            ],
        ),
        Chart(
            "stacked_bar",
            "Tickets created per week, by priority",
            labels,
            [Series(p, created[p]) for p in PRIORITIES],
            colors=PRIORITY_COLORS,
        ),
    )
    resolved_by = {p: 0 for p in PRIORITIES}
    for (_, p), r in by_priority.items():
        resolved_by[p] = resolved_by.get(p, 0) + r["resolved"]
    priority_totals = Panel(
        "By priority",
        Table(
            "Tickets created and resolved in the month, by priority",
            ["Priority", "Created", "Resolved"],
            [
                [Priority(p).label, _count(sum(created[p])), _count(resolved_by[p])]
                for p in PRIORITIES
            ],
        ),
    )

    categories = ask(queries.volume, month, interval="month", by="category")["rows"]
    names = _category_names(org, [r["key"] for r in categories if r["key"]])
    per_category = sorted(
        ((names.get(r["key"], r["key"]) if r["key"] else "No category", r) for r in categories),
        key=lambda nr: (-nr[1]["created"], -nr[1]["resolved"], nr[0]),
    )
    drawn = per_category[:TOP_CATEGORIES]
    category_panel = Panel(
        "By category",
        Table(
            "Tickets created and resolved in the month, by category",
            ["Category", "Created", "Resolved"],
            [[name, _count(r["created"]), _count(r["resolved"])] for name, r in per_category],
        ),
        Chart(
            "horizontal_bar",
            "Tickets by category"
            + (f" (the {TOP_CATEGORIES} largest)" if len(per_category) > TOP_CATEGORIES else ""),
            [name for name, _ in reversed(drawn)],
            [
                Series("Created", [r["created"] for _, r in reversed(drawn)]),
                Series("Resolved", [r["resolved"] for _, r in reversed(drawn)]),
            ],
        )
        if drawn
        else None,
    )
    return Section(
        "volume",
        "Volume",
        [per_week, priority_weeks, priority_totals, category_panel],
        intro="Created: tickets opened in the month. Resolved: tickets whose last resolution "
        "fell in the month. A ticket is counted by its priority and category now.",
    )


def _category_names(org: Organization, slugs: list[str]) -> dict[str, str]:
    """Category names by slug: the organization's own category, else the MSP-wide one."""
    found: dict[str, str] = {}
    for slug, name, own in (
        Category.objects.filter(slug__in=slugs)
        .filter(Q(organization=org) | Q(organization__isnull=True))
        .values_list("slug", "name", "organization_id")
        .order_by("organization_id")  # NULL (MSP-wide) sorts apart from the org's own
    ):
        if own is not None or slug not in found:
            found[slug] = name
    return found


def _times_section(ask: Ask, month: Month) -> Section:
    groups = ask(queries.times, month, by="priority")["groups"]
    (overall,) = ask(queries.times, month)["groups"]
    by_key = {g["key"]: g for g in groups}

    def row(label: str, g: dict[str, Any]) -> list[str]:
        response, resolution = g["response_business"], g["resolution_business"]
        return [
            label, _count(response["count"]), _duration(response["median"]),
            _duration(response["p90"]), _count(resolution["count"]),
            _duration(resolution["median"]), _duration(resolution["p90"]),
            _duration(g["resolution"]["median"]),
        ]  # fmt: skip

    empty = {k: queries.statistics_of([]) for k in ("response_business", "resolution_business",
                                                     "resolution")}  # fmt: skip
    present = [p for p in PRIORITIES if p in by_key]
    times = Panel(
        "By priority",
        Table(
            "Time to first response (tickets created in the month) and to resolution (tickets "
            "resolved in the month), in business hours; p90: 90 % took at most this long",
            [
                "Priority",
                "Answered",
                "First response, median",
                "First response, p90",
                "Resolved",
                "Resolution, median",
                "Resolution, p90",
                "Resolution, median (calendar time)",
            ],
            [row(Priority(p).label, by_key.get(p, empty)) for p in PRIORITIES],
            foot=[row("All", overall)],
        ),
        Chart(
            "bar",
            "Median time to resolution by priority (business hours)",
            present,
            [
                Series(
                    "Hours", [_hours(by_key[p]["resolution_business"]["median"]) for p in present]
                )
            ],
        )
        if present
        else None,
        note="Business hours are those of the SLA policy's calendar; without a policy, every "
        "hour counts.",
    )
    moves = ask(queries.escalations, month)["moves"]
    escalations = Panel(
        "Escalations",
        Table(
            "Moves between tiers made in the month",
            ["Move", "Direction", "By a person", "By a rule"],
            [
                [
                    f"{m['from']} → {m['to']}",
                    "up" if m["direction"] == "up" else "down",
                    _count(m["manual"]),
                    _count(m["automatic"]),
                ]
                for m in moves
            ],
            empty="No ticket moved between tiers this month.",
        ),
    )
    return Section("times", "Response and resolution", [times, escalations])


def _backlog_section(org: Organization, month: Month, now: dt.datetime) -> Section:
    """Open tickets at the month's end (now, for the current month) by age and priority.
    Open as reports.queries counts it: created before then and not resolved by then (a
    reopened ticket is open until its last resolution)."""
    end = queries.period(month.first_day, month.last_day, org.time_zone).end
    at = min(end, now)
    buckets = queries.AGE_BUCKETS
    ages = {
        f"age_{i}": Count("pk", filter=queries.age_condition(label, at))
        for i, (label, _) in enumerate(buckets)
    }
    rows = (
        TicketFact.objects.filter(organization=org, created_at__lt=at)
        .exclude(resolved_at__lt=at)
        .values("priority")
        .annotate(**ages)
        .order_by("priority")
    )
    found: list[dict[str, Any]] = [dict(r) for r in rows]
    counts = {r["priority"]: [r[f"age_{i}"] for i in range(len(buckets))] for r in found}
    nothing = [0] * len(buckets)
    per = {p: counts.get(p, nothing) for p in PRIORITIES}
    labels = [label for label, _ in buckets]
    table = Table(
        "Open tickets at the month's end by age (since created) and priority",
        ["Age", *PRIORITIES, "Total"],
        [
            [label, *(_count(per[p][i]) for p in PRIORITIES),
             _count(sum(per[p][i] for p in PRIORITIES))]
            for i, label in enumerate(labels)
        ],
        foot=[["All", *(_count(sum(per[p])) for p in PRIORITIES),
               _count(sum(sum(v) for v in per.values()))]],
    )  # fmt: skip
    return Section(
        "backlog",
        "Backlog at the month's end",
        [
            Panel(
                "By age and priority",
                table,
                Chart(
                    "stacked_bar",
                    "Open tickets at the month's end, by age",
                    labels,
                    [Series(p, per[p]) for p in PRIORITIES],
                    colors=PRIORITY_COLORS,
                ),
            )
        ],
        intro="Tickets open when the month ended (for the current month: now), by how long "
        "they had been open.",
    )


def _csat_section(csat: dict[str, Any]) -> Section:
    scores = [str(s) for s in range(1, 6)]
    total = csat["responses"]
    distribution = [csat["distribution"][s] for s in scores]
    return Section(
        "csat",
        "Satisfaction",
        [
            Panel(
                "Ratings given in the month",
                Table(
                    "Ratings by score (1: very dissatisfied, 5: very satisfied)",
                    ["Score", "Ratings", "Share"],
                    [
                        [s, _count(n), _percent(n / total if total else None)]
                        for s, n in zip(scores, distribution, strict=True)
                    ],
                    foot=[["All", _count(total), _percent(1.0 if total else None)]],
                ),
                Chart("bar", "Ratings by score", scores, [Series("Ratings", distribution)]),
                note=(
                    f"Average {_format('score', csat['average'])} of 5. "
                    if total
                    else "No ratings were given this month. "
                )
                + f"Rated: {_percent(csat['response_rate'])} of the tickets resolved in the "
                "month.",
            )
        ],
        new_page=False,
    )


def _breach(b: dict[str, Any], tz: zoneinfo.ZoneInfo, now: dt.datetime) -> Breach:
    stopped = b["stopped_at"]
    late = ((stopped or now) - b["due_at"]).total_seconds()
    return Breach(
        ticket=b["ticket"],
        subject=b["subject"],
        priority=b["priority"],
        target=ClockKind(b["kind"]).label if b["kind"] in ClockKind.values else b["kind"],
        policy=b["policy"],
        due=b["due_at"].astimezone(tz).strftime("%b %d, %H:%M"),
        late_by=_duration(max(0.0, late)),
        running=stopped is None,
    )


# --- formatting -----------------------------------------------------------------------------


def _count(value: float | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 1)


def _duration(seconds: float | None) -> str:
    """A duration as a person reads it: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _format(unit: Unit, value: float | None) -> str:
    if value is None:
        return "—"
    if unit == "rate":
        return _percent(value)
    if unit == "score":
        return f"{value:.2f}"
    if unit == "duration":
        return _duration(value)
    return _count(value)


# --- rendering ------------------------------------------------------------------------------


@functools.cache
def _css() -> str:
    return CSS_FILE.read_text(encoding="utf-8")


def context(report: MonthlyReport, *, nonce: str | None = None) -> dict[str, Any]:
    """What the templates need: the report, and each section's panels with their charts
    drawn (carrying ``nonce``, the page's CSP nonce, when there is one). A chart of nothing
    but zeros is left out: its table says so."""

    def drawn(chart: Chart | None) -> SafeString | None:
        if chart is None or not chart.has_data:
            return None
        return mark_safe(chart.svg(nonce=nonce))  # noqa: S308 - pygal's SVG: its texts are escaped

    sections = [(s, [(p, drawn(p.chart)) for p in s.panels]) for s in report.sections]
    return {"report": report, "sections": sections, "nonce": nonce or ""}


def render_html(report: MonthlyReport, *, nonce: str | None = None) -> str:
    """A standalone, printable page (its styles inline; nothing loaded from elsewhere).
    ``nonce``: the CSP nonce of the response that serves it, if any."""
    css: SafeString = mark_safe(_css())  # noqa: S308 - our own stylesheet
    return render_to_string("reports/monthly.html", {**context(report, nonce=nonce), "css": css})


def render_pdf(report: MonthlyReport) -> bytes:
    """The report as a PDF (A4). PdfUnavailable when WeasyPrint, or the Pango library it
    needs, is not installed. Nothing is fetched while rendering: the page has no link to
    follow, and any would be refused."""
    weasyprint = _weasyprint()

    class NoFetching(weasyprint.urls.URLFetcher):  # type: ignore[name-defined]
        def fetch(self, url: str, headers: Any = None) -> Any:
            raise ValueError(f"not fetched: {url[:80]}")

    document = weasyprint.HTML(string=render_html(report), url_fetcher=NoFetching())
    pdf: bytes = document.write_pdf()
    return pdf


def _weasyprint() -> Any:
    try:
        # WeasyPrint prints a notice of its own on stdout when a library is missing.
        with contextlib.redirect_stdout(io.StringIO()):
            import weasyprint
            import weasyprint.urls
    except OSError as exc:  # its system libraries, loaded at import
        raise PdfUnavailable(
            f"PDF needs the Pango library, which WeasyPrint could not load ({exc}). On Debian "
            f"or Ubuntu: apt-get install {PANGO_PACKAGE}"
        ) from exc
    except ImportError as exc:
        raise PdfUnavailable(
            "PDF needs WeasyPrint: pip install -r requirements/runtime.lock"
        ) from exc
    return weasyprint
