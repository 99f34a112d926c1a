"""The KPIs, read from the tickets' facts (reports.facts) within what the actor may see.

Every definition is written out in docs/kpis.md; the names here are the API's. A period is
a range of whole days, ``start`` to ``end`` inclusive, in the organization's time zone when
one organization is asked for and in UTC across several. Rates are fractions 0-1, None
when their denominator is zero."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, F, Q, QuerySet

from tierdesk.core import clock, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.kb.models import Deflection
from tierdesk.reports.models import SlaOutcome, TicketFact
from tierdesk.tiers.models import Tier

MAX_DAYS = 366 * 2  # a period longer than two years is refused


@dataclass(frozen=True)
class Period:
    first_day: dt.date
    last_day: dt.date
    time_zone: str
    start: dt.datetime  # the first day's midnight, as an instant
    end: dt.datetime  # the midnight after the last day


def period(first_day: dt.date | None, last_day: dt.date | None, time_zone: str = "UTC") -> Period:
    """Whole days ``first_day`` to ``last_day`` (default: the 30 days up to today) in
    ``time_zone``; refused when backwards or longer than ``MAX_DAYS``."""
    tz = zoneinfo.ZoneInfo(time_zone)
    today = clock.now().astimezone(tz).date()
    last_day = last_day or today
    first_day = first_day or last_day - dt.timedelta(days=29)
    if first_day > last_day:
        raise ValidationFailed.for_field("from", "is after 'to'")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ValidationFailed.for_field("from", f"a period is at most {MAX_DAYS} days")

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)

    return Period(
        first_day, last_day, time_zone, midnight(first_day), midnight(last_day + dt.timedelta(1))
    )


def report_organizations(actor: User, code: str | None) -> list[Organization]:
    """The organizations a report covers: ``code``'s, or every one the actor serves (admins:
    all). Only managers and admins read reports; another tenant's code reads as unknown."""
    policy.require(actor, "report.view", "Only managers and admins read reports.")
    visible = policy.visible_organizations(actor).order_by("code")
    if code is None:
        return list(visible)
    found = visible.filter(code=code.strip().upper()).first()
    if found is None:
        raise NotFound(f"No organization {code[:20]!r}.")
    return [found]


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _tiers() -> list[Tier | None]:
    """The first three tiers by level (L1, L2, L3 as configured), None where there are
    fewer."""
    tiers: list[Tier | None] = list(Tier.objects.order_by("level")[:3])
    return tiers + [None] * (3 - len(tiers))


@dataclass(frozen=True)
class Scope:
    """What one report covers: organizations, days, and their tickets' facts."""

    organizations: list[Organization]
    code: str | None  # the organization asked for; None: all the reader serves
    period: Period
    facts: QuerySet[TicketFact]

    def header(self) -> dict[str, Any]:
        p = self.period
        return {"organization": self.code, "from": p.first_day, "to": p.last_day,
                "time_zone": p.time_zone}  # fmt: skip

    def created(self) -> QuerySet[TicketFact]:
        return self.facts.filter(created_at__gte=self.period.start, created_at__lt=self.period.end)

    def resolved(self) -> QuerySet[TicketFact]:
        return self.facts.filter(
            resolved_at__gte=self.period.start, resolved_at__lt=self.period.end
        )


def scope(
    *, actor: User, organization: str | None, first_day: dt.date | None, last_day: dt.date | None
) -> Scope:
    orgs = report_organizations(actor, organization)
    one = orgs[0] if organization else None
    p = period(first_day, last_day, one.time_zone if one else "UTC")
    facts = TicketFact.objects.filter(organization__in=orgs)
    return Scope(orgs, one.code if one else None, p, facts)


def summary(
    *, actor: User, organization: str | None, first_day: dt.date | None, last_day: dt.date | None
) -> dict[str, Any]:
    """The period's headline figures for one organization or all the actor serves."""
    sc = scope(actor=actor, organization=organization, first_day=first_day, last_day=last_day)
    orgs, p, facts = sc.organizations, sc.period, sc.facts
    created, resolved = sc.created(), sc.resolved()
    l1, l2, l3 = _tiers()
    r = resolved.aggregate(
        n=Count("pk"),
        fcr=Count("pk", filter=Q(first_contact_resolution=True)),
        at_lowest=Count("pk", filter=Q(tier=l1)),
        reopened=Count("pk", filter=Q(reopens__gt=0)),
        automation=Count("pk", filter=Q(resolved_by_automation=True)),
    )
    c = created.aggregate(
        n=Count("pk"),
        response_met=Count("pk", filter=Q(sla_response=SlaOutcome.MET)),
        response_breached=Count("pk", filter=Q(sla_response=SlaOutcome.BREACHED)),
        resolution_met=Count("pk", filter=Q(sla_resolution=SlaOutcome.MET)),
        resolution_breached=Count("pk", filter=Q(sla_resolution=SlaOutcome.BREACHED)),
    )
    rated = facts.filter(rated_at__gte=p.start, rated_at__lt=p.end).aggregate(
        n=Count("pk"), average=Avg("csat_score")
    )
    backlog = facts.filter(created_at__lt=p.end).filter(
        Q(resolved_at__isnull=True, closed_at__isnull=True) | Q(resolved_at__gte=p.end)
    )
    deflections = Deflection.objects.filter(
        organization__in=orgs, created_at__gte=p.start, created_at__lt=p.end
    ).count()
    return {
        **sc.header(),
        "created": c["n"],
        "resolved": r["n"],
        "fcr_rate": _rate(r["fcr"], r["n"]),
        "l1_resolution_rate": _rate(r["at_lowest"], r["n"]),
        "escalation_rate_l1_l2": _escalation_rate(created, l1, l2),
        "escalation_rate_l2_l3": _escalation_rate(created, l2, l3),
        "reopen_rate": _rate(r["reopened"], r["n"]),
        "sla_response_compliance": _rate(
            c["response_met"], c["response_met"] + c["response_breached"]
        ),
        "sla_resolution_compliance": _rate(
            c["resolution_met"], c["resolution_met"] + c["resolution_breached"]
        ),
        "backlog_open": backlog.count(),
        "csat_average": rated["average"],
        "csat_responses": rated["n"],
        "deflections": deflections,
        "resolved_by_automation": r["automation"],
    }


def _escalation_rate(
    created: QuerySet[TicketFact], low: Tier | None, high: Tier | None
) -> float | None:
    """Of the tickets created in the period that were ever in tier ``low``, the share that
    was escalated out of it (to ``high``, the next tier up: None without one)."""
    if low is None or high is None:
        return None
    bit = 1 << low.level
    counts = (
        created.annotate(was=F("tiers_visited").bitand(bit), left=F("escalated_from").bitand(bit))
        .filter(was__gt=0)
        .aggregate(n=Count("pk"), up=Count("pk", filter=Q(left__gt=0)))
    )
    return _rate(counts["up"], counts["n"])


# --- response and resolution times ----------------------------------------------------------

GROUPS = {
    # What a time is grouped by: response times by the first tier (which answered first),
    # resolution times by the tier that resolved.
    "tier": ("first_tier__code", "tier__code"),
    "priority": ("priority", "priority"),
    "category": ("category__slug", "category__slug"),
    "organization": ("organization__code", "organization__code"),
}


def statistics_of(values: list[int]) -> dict[str, float | int | None]:
    """count, mean, median (the middle value, or the mean of the two middle ones) and p90
    (the smallest value at least 90 % of the values do not exceed: the nearest rank), in
    seconds; None without values."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "count": n,
        "mean": sum(ordered) / n,
        "median": median,
        "p90": ordered[math.ceil(0.9 * n) - 1],
    }


def times(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    by: str | None = None,
) -> dict[str, Any]:
    """Time to first response (tickets created in the period that were answered) and time
    to resolution, MTTR (tickets resolved in the period), in wall and business seconds:
    overall and, with ``by``, per tier, priority, category or organization."""
    if by is not None and by not in GROUPS:
        raise ValidationFailed.for_field("by", f"one of {', '.join(GROUPS)}")
    sc = scope(actor=actor, organization=organization, first_day=first_day, last_day=last_day)
    response_key, resolution_key = GROUPS[by] if by else (None, None)
    response = sc.created().filter(response_seconds__isnull=False)
    resolution = sc.resolved()
    rows: dict[Any, dict[str, list[int]]] = {}

    def add(key: Any, name: str, wall: int, business: int) -> None:
        row = rows.setdefault(key, {"response": [], "response_business": [],
                                    "resolution": [], "resolution_business": []})  # fmt: skip
        row[name].append(wall)
        row[f"{name}_business"].append(business)

    fields = ["response_seconds", "response_business_seconds"]
    for values in response.values_list(*fields, *([response_key] if response_key else [])):
        add(values[2] if by else None, "response", values[0], values[1])
    fields = ["resolution_seconds", "resolution_business_seconds"]
    for values in resolution.values_list(*fields, *([resolution_key] if resolution_key else [])):
        add(values[2] if by else None, "resolution", values[0], values[1])
    if not by:
        rows.setdefault(None, {"response": [], "response_business": [], "resolution": [],
                               "resolution_business": []})  # fmt: skip
    groups = [
        {"key": key, **{name: statistics_of(values) for name, values in row.items()}}
        for key, row in sorted(rows.items(), key=lambda kv: (kv[0] is None, str(kv[0])))
    ]
    return {**sc.header(), "by": by, "groups": groups}
