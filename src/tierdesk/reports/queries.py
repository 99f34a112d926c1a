"""The KPIs, read from the tickets' facts (reports.facts) within what the actor may see.

Every definition is written out in docs/kpis.md; the names here are the API's. A period is
a range of whole days, ``start`` to ``end`` inclusive, in the organization's time zone when
one organization is asked for and in UTC across several. Rates are fractions 0-1, None
when their denominator is zero."""

from __future__ import annotations

import datetime as dt
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


def summary(
    *, actor: User, organization: str | None, first_day: dt.date | None, last_day: dt.date | None
) -> dict[str, Any]:
    """The period's headline figures for one organization or all the actor serves."""
    orgs = report_organizations(actor, organization)
    p = period(first_day, last_day, orgs[0].time_zone if organization else "UTC")
    facts = TicketFact.objects.filter(organization__in=orgs)
    created = facts.filter(created_at__gte=p.start, created_at__lt=p.end)
    resolved = facts.filter(resolved_at__gte=p.start, resolved_at__lt=p.end)
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
        "organization": orgs[0].code if organization else None,
        "from": p.first_day,
        "to": p.last_day,
        "time_zone": p.time_zone,
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
