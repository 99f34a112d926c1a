"""The KPIs, read from the tickets' facts (reports.facts) within what the actor may see.

Every definition is written out in docs/kpis.md; the names here are the API's. A period is
a range of whole days, ``start`` to ``end`` inclusive, in the organization's time zone when
one organization is asked for and in UTC across several. Rates are fractions 0-1, None
when their denominator is zero."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import Any

from django.db.models import Case, Count, F, Q, QuerySet, Sum, TextField, When

from tierdesk.core import clock, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.escalation.models import MANUAL, Direction, Escalation
from tierdesk.kb.models import ArticleUse, Deflection, UseKind
from tierdesk.reports import rollups
from tierdesk.reports.models import DayCount, SlaOutcome, TicketFact
from tierdesk.sla.models import SlaClock, SlaPolicy
from tierdesk.tiers import queries as tier_queries
from tierdesk.tiers.models import Category, Tier

MAX_DAYS = 366 * 2  # a period longer than two years is refused
FIRST_YEAR, LAST_YEAR = 1970, 2100


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
    for field, day in (("from", first_day), ("to", last_day)):
        if day is not None and not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise ValidationFailed.for_field(field, f"a day from {FIRST_YEAR} to {LAST_YEAR}")
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
    found = None if "\x00" in code else visible.filter(code=code.strip().upper()).first()
    if found is None:
        raise NotFound(f"No organization {code[:20]!r}.")
    return [found]


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def lowest_tiers() -> list[Tier | None]:
    """The first three tiers by level (L1, L2, L3 as configured), None where there are
    fewer."""
    tiers: list[Tier | None] = list(Tier.objects.order_by("level")[:3])
    return tiers + [None] * (3 - len(tiers))


@dataclass(frozen=True)
class Filters:
    """Narrower reports: tickets of one category, assigned to one agent, or counted in one
    tier (created tickets by the tier they were first routed to, the others by the tier
    that resolved them). Filtered figures are counted from the facts instead of the
    rollups, with the same definitions (rollups.contribute)."""

    tier: str | None = None  # a tier's code
    category: str | None = None  # a category's slug; "none": uncategorized
    agent: str | None = None  # a staff member's email
    # The facts counted for a period, kept for the reports asked with this instance (the
    # dashboard asks ten): make one per request, never one for the process.
    counted: dict[tuple[Any, ...], rollups.Cells] = dataclass_field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @property
    def active(self) -> bool:
        return bool(self.tier or self.category or self.agent)


NO_FILTERS = Filters()


@dataclass(frozen=True)
class Scope:
    """What one report covers: organizations, days, and their tickets' facts. The days are
    each organization's own (in its time zone): across several organizations, a day is
    each one's day, so the figures of all of them add up to the sum of each one's."""

    organizations: list[Organization]
    code: str | None  # the organization asked for; None: all the reader serves
    period: Period
    facts: QuerySet[TicketFact]  # the organizations', narrowed by the category and agent
    tier: Tier | None = None  # the tier filter
    filtered: bool = False  # any filter: figures from the facts, not the rollups
    filters: Filters = NO_FILTERS

    def header(self) -> dict[str, Any]:
        p = self.period
        zone = p.time_zone if self.code else None
        return {"organization": self.code, "from": p.first_day, "to": p.last_day,
                "time_zone": zone}  # fmt: skip

    def within(self, field: str, organization: str = "organization", *,
               before_end: bool = False, before_start: bool = False) -> Q:  # fmt: skip
        """``field`` in the period (``before_end``: at any time before its end;
        ``before_start``: before it began), for each organization in its own time zone (one
        range per time zone they have)."""
        zones: dict[str, list[int]] = {}
        for org in self.organizations:
            zones.setdefault(org.time_zone, []).append(org.pk)
        found = Q(pk__in=[])
        for zone, ids in zones.items():
            p = period(self.period.first_day, self.period.last_day, zone)
            if before_start:
                when = Q(**{f"{field}__lt": p.start})
            else:
                when = Q(**{f"{field}__lt": p.end})
                if not before_end:
                    when &= Q(**{f"{field}__gte": p.start})
            found |= Q(**{f"{organization}__in": ids}) & when
        return found

    def created(self) -> QuerySet[TicketFact]:
        found = self.facts.filter(self.within("created_at"))
        return found if self.tier is None else found.filter(first_tier=self.tier)

    def resolved(self, *, duplicates: bool = False) -> QuerySet[TicketFact]:
        """Resolved in the period; a ticket merged into another (resolved as its duplicate)
        is not resolved work, unless ``duplicates``."""
        settled = self.facts.filter(self.within("resolved_at"))
        if self.tier is not None:
            settled = settled.filter(resolved_tier=self.tier)
        return settled if duplicates else settled.filter(duplicate=False)

    def _counted(self) -> rollups.Cells:
        """The period's cells counted from the (filtered) facts, as the rollups would hold
        them; once per scope."""
        p = self.period
        key = (tuple(o.pk for o in self.organizations), p.first_day, p.last_day,
               self.tier.pk if self.tier else None)  # fmt: skip
        cache = {} if self.filters is NO_FILTERS else self.filters.counted
        if key not in cache:
            moments = Q(pk__in=[])
            for name in ("created_at", "resolved_at", "closed_at", "rated_at"):
                moments |= self.within(name)
            zones = {org.pk: zoneinfo.ZoneInfo(org.time_zone) for org in self.organizations}
            tier = self.tier.pk if self.tier is not None else None
            cells: rollups.Cells = {}
            for row in (
                self.facts.filter(moments)
                .values_list(*rollups.FIELDS)
                .iterator(chunk_size=rollups.RECOUNT_CHUNK)
            ):
                rollups.contribute(cells, row, zones[row[0]], tier=tier)
            cache[key] = cells
        return cache[key]

    def cells(self, *kinds: str) -> QuerySet[DayCount]:
        """The rollups' cells of the period's days (reports.rollups) of ``kinds``."""
        p = self.period
        return DayCount.objects.filter(
            organization__in=self.organizations,
            day__gte=p.first_day,
            day__lte=p.last_day,
            kind__in=kinds,
        )

    def sums(self, kind: str, dim: str = "", *by: str) -> dict[Any, dict[str, int]]:
        """The period's counts of ``kind`` for each value of ``dim`` (one key "" without a
        dimension), grouped further by ``by`` (e.g. "organization", "day"): keyed by the
        value, or by a tuple (value, *by) when ``by`` is given."""
        found: dict[Any, dict[str, int]] = {}
        if self.filtered:
            p = self.period
            for (org, day, k, d, value), counts in self._counted().items():
                if k != kind or d != dim or not p.first_day <= day <= p.last_day:
                    continue
                parts = {"organization": org, "day": day}
                key = (value, *(parts[b] for b in by)) if by else value
                into = found.setdefault(key, dict.fromkeys(rollups.COUNTERS, 0))
                for name, c in zip(rollups.COUNTERS, counts, strict=True):
                    into[name] += c
            return found
        rows = (
            self.cells(kind)
            .filter(dim=dim)
            .values("value", *by)
            .annotate(**{c: Sum(c) for c in rollups.COUNTERS})
            .order_by()
        )
        for row in rows:
            key = (row["value"], *(row[b] for b in by)) if by else row["value"]
            found[key] = {c: row[c] for c in rollups.COUNTERS}
        return found

    def open_at_start(self) -> int:
        """Tickets open when the period began: created before its first day, less those
        whose last resolution came before it (a reopened ticket is open until its last
        resolution). From the rollups of every earlier day, or counted from the facts when
        filtered (the tier filter aside: the facts do not keep which tier a ticket was in
        on a given day, so a backlog counts every tier)."""
        if self.filtered:
            created = self.facts.filter(self.within("created_at", before_start=True)).count()
            return (
                created - self.facts.filter(self.within("resolved_at", before_start=True)).count()
            )
        earlier = DayCount.objects.filter(
            organization__in=self.organizations,
            day__lt=self.period.first_day,
            kind__in=(rollups.CREATED, rollups.RESOLVED),
            dim="",
        )
        totals = {kind: n + dup for kind, n, dup in earlier.values_list("kind").annotate(
            Sum("n"), Sum("duplicates")).order_by()}  # fmt: skip
        return (totals.get(rollups.CREATED) or 0) - (totals.get(rollups.RESOLVED) or 0)

    def open_per_day(self) -> list[tuple[dt.date, int]]:
        """Tickets open at the end of each day of the period (in every tier: see
        ``open_at_start``)."""
        if self.tier is not None:
            return replace(self, tier=None).open_per_day()
        change: dict[dt.date, int] = {}
        for (_, day), counts in self.sums(rollups.CREATED, "", "day").items():
            change[day] = change.get(day, 0) + counts["n"]
        for (_, day), counts in self.sums(rollups.RESOLVED, "", "day").items():
            change[day] = change.get(day, 0) - counts["n"] - counts["duplicates"]
        open_count = self.open_at_start()
        trend = []
        day = self.period.first_day
        while day <= self.period.last_day:
            open_count += change.get(day, 0)
            trend.append((day, open_count))
            day += dt.timedelta(days=1)
        return trend


def scope(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> Scope:
    orgs = report_organizations(actor, organization)
    one = orgs[0] if organization else None
    p = period(first_day, last_day, one.time_zone if one else "UTC")
    facts = TicketFact.objects.filter(organization__in=orgs)
    for name in ("tier", "category", "agent"):
        if "\x00" in (getattr(filters, name) or ""):
            raise ValidationFailed.for_field(name, "contains a NUL character")
    tier = None
    if filters.tier:
        tier = Tier.objects.filter(code=filters.tier.strip().upper()).first()
        if tier is None:
            raise ValidationFailed.for_field("tier", "no such tier")
    if filters.category == "none":
        facts = facts.filter(category__isnull=True)
    elif filters.category:
        # By slug: an organization's own category may share one with an MSP-wide one.
        slug = filters.category.strip().lower()
        if not tier_queries.category_list(actor=actor).filter(slug=slug).exists():
            raise ValidationFailed.for_field("category", "no such category")
        facts = facts.filter(category__slug=slug)
    if filters.agent:
        agent = User.objects.filter(
            email__iexact=filters.agent.strip(), agent_profile__isnull=False
        ).first()
        if agent is None:
            raise ValidationFailed.for_field("agent", "no such staff member")
        facts = facts.filter(assignee=agent)
    return Scope(orgs, one.code if one else None, p, facts, tier, filters.active, filters)


def summary(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """The period's headline figures for one organization or all the actor serves."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    l1, l2, l3 = lowest_tiers()
    none = dict.fromkeys(rollups.COUNTERS, 0)
    c = sc.sums(rollups.CREATED).get("", none)
    r = sc.sums(rollups.RESOLVED).get("", none)
    at_lowest = sc.sums(rollups.RESOLVED, "tier").get(str(l1.pk) if l1 else "-", none)["n"]
    visited = sc.sums(rollups.CREATED, "visited")
    rated = sc.sums(rollups.RATED).get("", none)
    deflections = Deflection.objects.filter(sc.within("created_at")).count()
    trend = sc.open_per_day()
    return {
        **sc.header(),
        "created": c["n"],
        "resolved": r["n"],
        "fcr_rate": _rate(r["fcr"], r["n"]),
        "l1_resolution_rate": _rate(at_lowest, r["n"]),
        "escalation_rate_l1_l2": _escalation_rate(visited, l1, l2),
        "escalation_rate_l2_l3": _escalation_rate(visited, l2, l3),
        "reopen_rate": _rate(r["reopened"], r["n"]),
        "sla_response_compliance": _rate(
            c["response_met"], c["response_met"] + c["response_breached"]
        ),
        "sla_resolution_compliance": _rate(
            c["resolution_met"], c["resolution_met"] + c["resolution_breached"]
        ),
        "backlog_open": trend[-1][1],
        "csat_average": _average_score(rated),
        "csat_responses": rated["n"],
        "deflections": deflections,
        "resolved_by_automation": r["automation"],
    }


def _average_score(counts: dict[str, int]) -> float | None:
    total = sum(counts[f"score_{s}"] * s for s in range(1, 6))
    return None if counts["n"] == 0 else total / counts["n"]


def _escalation_rate(
    visited: dict[Any, dict[str, int]], low: Tier | None, high: Tier | None
) -> float | None:
    """Of the tickets created in the period that were ever in tier ``low``, the share that
    was escalated out of it (to ``high``, the next tier up: None without one)."""
    if low is None or high is None:
        return None
    counts = visited.get(str(low.level))
    return None if counts is None else _rate(counts["escalated"], counts["n"])


# --- response and resolution times ----------------------------------------------------------

GROUPS = {
    # What a time is grouped by: response times by the first tier (which answered first),
    # resolution times by the tier that resolved.
    "tier": ("first_tier__code", "resolved_tier__code"),
    "priority": ("priority", "priority"),
    "category": ("category__slug", "category__slug"),
    "organization": ("organization__code", "organization__code"),
}


def statistics_of(values: list[int]) -> dict[str, float | int | None]:
    """count, mean, median (the middle value, or the mean of the two middle ones) and p90
    (the smallest value at least 90 % of the values do not exceed: the nearest rank), in
    seconds as floats; None without values."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(values)
    n = len(ordered)
    middle = n // 2
    median = ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {
        "count": n,
        "mean": sum(ordered) / n,
        "median": float(median),
        "p90": float(ordered[math.ceil(0.9 * n) - 1]),
    }


def times(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    by: str | None = None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """Time to first response (tickets created in the period that were answered) and time
    to resolution, MTTR (tickets resolved in the period), in wall and business seconds:
    overall and, with ``by``, per tier, priority, category or organization."""
    if by is not None and by not in GROUPS:
        raise ValidationFailed.for_field("by", f"one of {', '.join(GROUPS)}")
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    response_key, resolution_key = GROUPS[by] if by else (None, None)
    response = sc.created().filter(response_seconds__isnull=False)
    measured = ("response", "response_business", "resolution", "resolution_business")
    # Sorted here rather than by the database: PostgreSQL's percentile_cont/percentile_disc
    # over the same rows took longer at 1,000,000 tickets (docs/benchmarks.md), and SQLite
    # has none. Two reads, each of both times of the tickets it needs.
    found: dict[Any, dict[str, dict[str, Any]]] = {}
    for cohort, qs, key in (
        ("response", response, response_key),
        ("resolution", sc.resolved(), resolution_key),
    ):
        values: dict[Any, tuple[list[int], list[int]]] = {}
        fields = [f"{cohort}_seconds", f"{cohort}_business_seconds", *([key] if key else [])]
        for row in qs.values_list(*fields):
            wall, business = values.setdefault(row[2] if key else None, ([], []))
            wall.append(row[0])
            business.append(row[1])
        for group, (wall, business) in values.items():
            found.setdefault(group, {})[cohort] = statistics_of(wall)
            found[group][f"{cohort}_business"] = statistics_of(business)
    if not by:
        found.setdefault(None, {})
    empty = statistics_of([])
    groups = [
        {"key": key, **{name: row.get(name, empty) for name in measured}}
        for key, row in sorted(found.items(), key=lambda kv: (kv[0] is None, str(kv[0])))
    ]
    return {**sc.header(), "by": by, "groups": groups}


# --- volume ---------------------------------------------------------------------------------

INTERVALS = ("day", "week", "month")
# The same groups (created counts by the first tier, resolved and closed by the resolving
# tier), and the source.
VOLUME_GROUPS = {**GROUPS, "source": ("source", "source")}


def volume(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    interval: str = "day",
    by: str | None = None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """Tickets created, resolved and closed per day, week (from Monday) or month of the
    period, in its time zone; with ``by``, per source, category, priority, organization or
    tier as well. Rows only where something happened."""
    if interval not in INTERVALS:
        raise ValidationFailed.for_field("interval", f"one of {', '.join(INTERVALS)}")
    if by is not None and by not in VOLUME_GROUPS:
        raise ValidationFailed.for_field("by", f"one of {', '.join(VOLUME_GROUPS)}")
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    names = _names(by)
    rows: dict[tuple[dt.date, Any], dict[str, int]] = {}
    for kind in (rollups.CREATED, rollups.RESOLVED, rollups.CLOSED):
        if by == "organization":
            found = sc.sums(kind, "", "day", "organization")
        else:
            found = sc.sums(kind, by or "", "day")
        for key, counts in found.items():
            if not counts["n"]:
                continue
            value = names(key[2] if by == "organization" else key[0])
            slot = rows.setdefault(
                (_bucket(key[1], interval), value), {"created": 0, "resolved": 0, "closed": 0}
            )
            slot[kind] += counts["n"]
    series = [
        {"start": bucket, "key": key, **counts}
        for (bucket, key), counts in sorted(rows.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
    ]
    return {**sc.header(), "interval": interval, "by": by, "rows": series}


def _bucket(day: dt.date, interval: str) -> dt.date:
    """The first day of ``day``'s week (from Monday) or month, or the day."""
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _names(by: str | None) -> Any:
    """How a rollup's value of dimension ``by`` reads in a report: tiers by code,
    categories by slug (None: uncategorized), organizations by code."""
    if by == "tier":
        codes = {str(pk): code for pk, code in Tier.objects.values_list("pk", "code")}
        return lambda v: codes.get(v)
    if by == "category":
        slugs = {str(pk): slug for pk, slug in Category.objects.values_list("pk", "slug")}
        return lambda v: slugs.get(v)
    if by == "organization":
        orgs = dict(Organization.objects.values_list("pk", "code"))
        return lambda v: orgs.get(v)
    return lambda v: v if by else None


# --- escalations ----------------------------------------------------------------------------

TOP_REASONS = 10


def escalations(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """The moves between tiers made in the period: counts from tier to tier, up (manual or
    by a rule) and down, and the most frequent reasons for moving up (a manual escalation's
    reason as written, a rule's name)."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    moves = Escalation.objects.filter(sc.within("at"))
    if sc.filtered:
        moves = moves.filter(ticket_id__in=sc.facts.values("ticket_id"))
    if sc.tier is not None:
        moves = moves.filter(Q(from_tier=sc.tier) | Q(to_tier=sc.tier))
    pairs = (
        moves.values("from_tier__code", "from_tier__level", "to_tier__code", "direction")
        .annotate(
            manual=Count("pk", filter=Q(kind=MANUAL)),
            automatic=Count("pk", filter=~Q(kind=MANUAL)),
        )
        .order_by("direction", "from_tier__level", "to_tier__code")
    )
    reasons = (
        moves.filter(direction=Direction.UP)
        .annotate(automatic=Case(When(kind=MANUAL, then=False), default=True))
        .annotate(
            why=Case(
                When(kind=MANUAL, then=F("reason")), default=F("kind"), output_field=TextField()
            )
        )
        .values("why", "automatic")
        .annotate(n=Count("pk"))
        .order_by("-n", "why")[:TOP_REASONS]
    )
    return {
        **sc.header(),
        "moves": [
            {
                "from": p["from_tier__code"],
                "to": p["to_tier__code"],
                "direction": "up" if p["direction"] == Direction.UP else "down",
                "manual": p["manual"],
                "automatic": p["automatic"],
            }
            for p in pairs
        ],
        "top_reasons": [
            {"reason": r["why"], "automatic": bool(r["automatic"]), "count": r["n"]}
            for r in reasons
        ],
    }


# --- backlog --------------------------------------------------------------------------------

AGE_BUCKETS = (("< 1 d", 1), ("1-3 d", 3), ("3-7 d", 7), ("> 7 d", None))


def backlog(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """Open tickets now by tier and age (since creation), and the trend: how many were open
    at the end of each day of the period (created by then and not resolved by then; a
    reopened ticket counts as open until its last resolution)."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    now = clock.now()
    age = {label: Count("pk", filter=age_condition(label, now)) for label, _ in AGE_BUCKETS}
    open_now = sc.facts.filter(is_open=True)
    if sc.tier is not None:
        open_now = open_now.filter(tier=sc.tier)  # the tier it is in now
    by_tier = (
        open_now.values("tier__code", "tier__level")
        .annotate(total=Count("pk"), **{f"age_{i}": c for i, c in enumerate(age.values())})
        .order_by("tier__level")
    )
    tier_rows: list[dict[str, Any]] = [dict(r) for r in by_tier]
    trend = [{"day": day, "open": n} for day, n in sc.open_per_day()]
    return {
        **sc.header(),
        "now": now,
        "by_tier": [
            {
                "tier": row["tier__code"],
                "open": row["total"],
                "age": {label: row[f"age_{i}"] for i, (label, _) in enumerate(AGE_BUCKETS)},
            }
            for row in tier_rows
        ],
        "trend": trend,
    }


# --- satisfaction ---------------------------------------------------------------------------


def csat(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """Ratings given in the period: average, how many of each score; and the response
    rate: of the tickets resolved in the period, the share their requester rated."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    none = dict.fromkeys(rollups.COUNTERS, 0)
    rated = sc.sums(rollups.RATED).get("", none)
    resolved = sc.sums(rollups.RESOLVED).get("", none)
    return {
        **sc.header(),
        "responses": rated["n"],
        "average": _average_score(rated),
        "distribution": {str(score): rated[f"score_{score}"] for score in range(1, 6)},
        "response_rate": _rate(resolved["rated"], resolved["n"]),
    }


# --- SLA ------------------------------------------------------------------------------------

BREACHES_LISTED = 500


def sla(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """SLA compliance per policy and organization (the tickets created in the period whose
    clock is decided, as the summary's), and the breaches that happened in the period, the
    earliest first (at most ``BREACHES_LISTED``; ``breaches_total`` counts them all)."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    codes = {org.pk: org.code for org in sc.organizations}
    rows: list[dict[str, Any]] = sorted(
        (
            {"sla_policy_id": int(policy), "organization__code": codes[org], **counts}
            for (policy, org), counts in sc.sums(rollups.CREATED, "policy", "organization").items()
            if counts["n"]
        ),
        key=lambda r: (r["organization__code"], r["sla_policy_id"]),
    )
    names: dict[int | None, str] = dict(
        SlaPolicy.objects.filter(pk__in={r["sla_policy_id"] for r in rows}).values_list(
            "pk", "name"
        )
    )
    breached = SlaClock.objects.filter(sc.within("breached_at"))
    if sc.filtered:
        breached = breached.filter(ticket_id__in=sc.facts.values("ticket_id"))
    listed = breached.select_related("ticket__organization", "ticket__tier", "policy").order_by(
        "breached_at", "id"
    )[:BREACHES_LISTED]
    return {
        **sc.header(),
        "policies": [
            {
                "policy": names.get(r["sla_policy_id"]),  # None: deleted since
                "policy_id": r["sla_policy_id"],
                "organization": r["organization__code"],
                "response_met": r["response_met"],
                "response_breached": r["response_breached"],
                "response_compliance": _rate(
                    r["response_met"], r["response_met"] + r["response_breached"]
                ),
                "resolution_met": r["resolution_met"],
                "resolution_breached": r["resolution_breached"],
                "resolution_compliance": _rate(
                    r["resolution_met"], r["resolution_met"] + r["resolution_breached"]
                ),
            }
            for r in rows
        ],
        "breaches_total": breached.count(),
        "breaches": [
            {
                "ticket": c.ticket.key,
                "subject": c.ticket.subject,
                "kind": c.kind,
                "policy": c.policy.name,
                "priority": c.ticket.priority,
                "tier": c.ticket.tier.code,
                "due_at": c.due_at,
                "breached_at": c.breached_at,
                "stopped_at": c.stopped_at,
            }
            for c in listed
        ],
    }


# --- cost per tier --------------------------------------------------------------------------


def cost(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    shift_percent: float = 10.0,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """What the tickets resolved in the period cost, per tier: each tier a ticket was in
    counts one ticket's work there (the tier's handling minutes at its hourly cost); and
    what handling ``shift_percent`` % of the tickets resolved in L2 at L1 instead would have
    saved (L2's cost of a ticket less L1's, for each). Tiers without a cost configured count
    their tickets and no cost; a saving needs both L1's and L2's."""
    if not 0 <= shift_percent <= 100:
        raise ValidationFailed.for_field("shift", "a percentage from 0 to 100")
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    tiers = list(Tier.objects.order_by("level"))
    none = dict.fromkeys(rollups.COUNTERS, 0)
    # How many of the period's resolved tickets went through each tier.
    through = sc.sums(rollups.RESOLVED, "visited")
    counts = {f"n_{t.pk}": through.get(str(t.level), none)["n"] for t in tiers}
    counts["n"] = sc.sums(rollups.RESOLVED).get("", none)["n"]
    rows = []
    total = 0.0
    configured = True
    for tier in tiers:
        handled = counts[f"n_{tier.pk}"]
        per_ticket = _per_ticket(tier)
        tier_cost = None if per_ticket is None else handled * per_ticket
        if tier_cost is None:
            configured = configured and handled == 0
        else:
            total += tier_cost
        rows.append(
            {
                "tier": tier.code,
                "hourly_cost": tier.hourly_cost,
                "handling_minutes": tier.handling_minutes,
                "tickets": handled,
                "cost_per_ticket": per_ticket,
                "cost": tier_cost,
            }
        )
    l1, l2 = [*tiers, None, None][:2]
    saving = None
    by_tier = sc.sums(rollups.RESOLVED, "tier")
    resolved_at_l2 = by_tier.get(str(l2.pk), none)["n"] if l2 is not None else 0
    if l1 is not None and l2 is not None:
        low, high = _per_ticket(l1), _per_ticket(l2)
        if low is not None and high is not None:
            saving = resolved_at_l2 * shift_percent / 100 * (high - low)
    return {
        **sc.header(),
        "resolved": counts["n"],
        "tiers": rows,
        "total": total if configured else None,
        "cost_per_resolved_ticket": (total / counts["n"] if configured and counts["n"] else None),
        "shift_percent": shift_percent,
        "resolved_at_l2": resolved_at_l2,
        "saving_if_shifted": saving,
    }


def _per_ticket(tier: Tier) -> float | None:
    if tier.hourly_cost is None or tier.handling_minutes is None:
        return None
    return tier.hourly_cost * tier.handling_minutes / 60


# --- agents ---------------------------------------------------------------------------------


def workload(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """Per staff member serving the report's organizations: open tickets assigned to them
    now, tickets resolved in the period that are assigned to them (for a resolved ticket,
    normally who resolved it), and an
    estimated **utilization**: those resolutions at their tier's minutes per ticket, over the
    hours of their shifts in the period (None without shifts or without minutes set).
    Counts only the report's organizations' tickets."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    people = User.objects.filter(
        is_active=True, agent_profile__isnull=False, served_organizations__in=sc.organizations
    )
    if filters.agent:
        people = people.filter(email__iexact=filters.agent.strip())
    if sc.tier is not None:
        people = people.filter(agent_profile__tier=sc.tier)
    staff = list(
        people.select_related("agent_profile__tier")
        .prefetch_related("agent_profile__hours")
        .distinct()
        .order_by("email")
    )
    ids = [u.pk for u in staff]
    open_now = dict(
        sc.facts.filter(is_open=True, assignee_id__in=ids)
        .values_list("assignee_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    wanted = set(ids)
    resolved = {
        int(person): counts["n"]
        for person, counts in sc.sums(rollups.RESOLVED, "assignee").items()
        if int(person) in wanted
    }
    days = (sc.period.last_day - sc.period.first_day).days + 1
    weekdays = [(sc.period.first_day + dt.timedelta(d)).weekday() for d in range(days)]
    rows = []
    for person in staff:
        profile = person.agent_profile
        shift_minutes = sum(
            _minutes_between(h.start, h.end)
            for day in weekdays
            for h in profile.hours.all()
            if h.weekday == day
        )
        done = resolved.get(person.pk, 0)
        minutes = profile.tier.handling_minutes
        rows.append(
            {
                "agent": person.email,
                "name": person.full_name,
                "tier": profile.tier.code,
                "open_assigned": open_now.get(person.pk, 0),
                "resolved": done,
                "shift_hours": shift_minutes / 60,
                "utilization": (
                    done * minutes / shift_minutes if minutes and shift_minutes else None
                ),
            }
        )
    return {**sc.header(), "agents": rows}


def _minutes_between(start: dt.time, end: dt.time) -> int:
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)


# --- knowledge and automation ---------------------------------------------------------------

TOP_ARTICLES = 10


def knowledge(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: Filters = NO_FILTERS,
) -> dict[str, Any]:
    """What the knowledge base and automation did in the period: per tier (the ticket's
    tier when the article was used), the tickets an article was suggested for when they
    were opened, linked to by an agent, and marked as solved by an article, with how many
    articles; the articles used most; the portal's deflections (no ticket opened) and the
    articles behind them; tickets resolved by automation among those resolved."""
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    uses = ArticleUse.objects.filter(sc.within("created_at"))
    if sc.filtered:
        uses = uses.filter(ticket_id__in=sc.facts.values("ticket_id"))
    if sc.tier is not None:
        uses = uses.filter(tier=sc.tier)
    per_tier: dict[str | None, dict[str, Any]] = {}
    for row in (
        uses.values("tier__code", "tier__level", "kind")
        .annotate(tickets=Count("ticket", distinct=True), articles=Count("article", distinct=True))
        .order_by("tier__level", "kind")
    ):
        into = per_tier.setdefault(
            row["tier__code"], {"tier": row["tier__code"], **{k: 0 for k in USE_KINDS}}
        )
        into[row["kind"]] = row["tickets"]
        into[f"{row['kind']}_articles"] = row["articles"]
    top = (
        uses.filter(kind__in=(UseKind.LINKED, UseKind.SOLVED))
        .values("article__slug", "article__title")
        .annotate(tickets=Count("ticket", distinct=True))
        .order_by("-tickets", "article__slug")[:TOP_ARTICLES]
    )
    deflected = Deflection.objects.filter(sc.within("created_at"))
    top_deflecting = (
        deflected.values("article__slug", "article__title")
        .annotate(n=Count("pk"))
        .order_by("-n", "article__slug")[:TOP_ARTICLES]
    )
    resolved = sc.sums(rollups.RESOLVED).get("", dict.fromkeys(rollups.COUNTERS, 0))
    return {
        **sc.header(),
        "by_tier": [
            {**{f"{k}_articles": 0 for k in USE_KINDS}, **row} for row in per_tier.values()
        ],
        "top_articles": [
            {"article": t["article__slug"], "title": t["article__title"], "tickets": t["tickets"]}
            for t in top
        ],
        "deflections": deflected.count(),
        "top_deflecting": [
            {"article": t["article__slug"], "title": t["article__title"], "deflections": t["n"]}
            for t in top_deflecting
        ],
        "resolved": resolved["n"],
        "resolved_by_automation": resolved["automation"],
    }


USE_KINDS = tuple(UseKind.values)


# --- drill-down -----------------------------------------------------------------------------

# Each figure a report shows, and the tickets behind it: (the cohort it counts among, the
# condition within it). Cohorts: created, resolved (duplicates apart), closed, rated in the
# period; "open" is open at the end of its last day.
DRILL = {
    "created": ("created", Q()),
    "resolved": ("resolved", Q()),
    "closed": ("closed", Q()),
    "fcr": ("resolved", Q(first_contact_resolution=True)),
    "responded": ("created", Q(response_seconds__isnull=False)),  # the times report's count
    "resolved_through": ("resolved", Q()),  # by=tier: went through it (the cost report)
    "l1_resolved": ("resolved", None),  # resolved in the lowest tier
    "reopened": ("resolved", Q(reopens__gt=0)),
    "resolved_by_automation": ("resolved", Q(resolved_by_automation=True)),
    "escalated_l1_l2": ("created", None),  # were in L1 and were escalated out of it
    "escalated_l2_l3": ("created", None),
    "sla_response_met": ("created", Q(sla_response=SlaOutcome.MET)),
    "sla_response_breached": ("created", Q(sla_response=SlaOutcome.BREACHED)),
    "sla_resolution_met": ("created", Q(sla_resolution=SlaOutcome.MET)),
    "sla_resolution_breached": ("created", Q(sla_resolution=SlaOutcome.BREACHED)),
    "rated": ("rated", Q()),
    "backlog_open": ("open", Q()),
    "open_now": ("now", Q()),  # the backlog report's table: open now, by tier now and age
    # Tickets an article was suggested for, linked to, or solved (the knowledge report)
    **{f"article_{kind}": ("uses", Q()) for kind in UseKind.values},
}
# A dimension's value as the reports name it, per cohort: created tickets by their first
# tier, the others by the resolving one (as GROUPS).
DRILL_GROUPS = {
    **{name: (first, later) for name, (first, later) in VOLUME_GROUPS.items()},
    "score": ("csat_score", "csat_score"),
    "policy": ("sla_policy_id", "sla_policy_id"),  # by its id (names repeat)
}


def behind(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    metric: str,
    by: str | None = None,
    value: str | None = None,
    filters: Filters = NO_FILTERS,
) -> QuerySet[TicketFact]:
    """The tickets a report's figure counts: ``metric`` (a key of ``DRILL``) in the period,
    where ``by`` (tier, priority, category, source, organization, score, policy) is
    ``value`` ("" or "none" for tickets without one, e.g. uncategorized). Their facts, the
    oldest ticket first; the count is the figure."""
    if metric not in DRILL:
        raise ValidationFailed.for_field("metric", f"one of {', '.join(DRILL)}")
    if by is not None and by not in DRILL_GROUPS and not (by == "age" and metric == "open_now"):
        raise ValidationFailed.for_field("by", f"one of {', '.join(DRILL_GROUPS)}")
    if (by is None) != (value is None):
        raise ValidationFailed.for_field("value", "'by' and 'value' go together")
    sc = scope(
        actor=actor, organization=organization, first_day=first_day, last_day=last_day,
        filters=filters,
    )  # fmt: skip
    cohort, condition = DRILL[metric]
    if cohort == "created":
        found = sc.created()
    elif cohort == "resolved":
        found = sc.resolved()
    elif cohort == "open":
        found = sc.facts.filter(sc.within("created_at", before_end=True)).exclude(
            sc.within("resolved_at", before_end=True)
        )
    elif cohort == "uses":
        uses = ArticleUse.objects.filter(sc.within("created_at"), kind=metric.split("_", 1)[1])
        if sc.tier is not None:
            uses = uses.filter(tier=sc.tier)
        if by == "tier" and value is not None:
            uses, by = uses.filter(tier__code=value.upper()), None
        found = sc.facts.filter(ticket_id__in=uses.values("ticket_id"))
    elif cohort == "now":
        found = sc.facts.filter(is_open=True)
        if sc.tier is not None:
            found = found.filter(tier=sc.tier)
        if by == "tier" and value is not None:
            found, by = found.filter(tier__code=value.upper()), None
        elif by == "age" and value is not None:
            found, by = found.filter(age_condition(value)), None
    else:
        found = sc.facts.filter(sc.within(f"{cohort}_at"))
        if sc.tier is not None:
            found = found.filter(resolved_tier=sc.tier)
    found = _tier_condition(found, metric) if condition is None else found.filter(condition)
    if metric == "resolved_through" and by == "tier" and value is not None:
        tier = Tier.objects.filter(code=value.strip().upper()).first()
        if tier is None:
            return found.none()
        bit = 1 << tier.level
        found, by = (
            found.annotate(through=F("tiers_visited").bitand(bit)).filter(through__gt=0),
            None,
        )
    if by is not None and value is not None and value not in ("", "none"):
        _check_value(by, value)
    if by is not None and value is not None:
        field = DRILL_GROUPS[by][0 if cohort == "created" else 1]
        if value in ("", "none"):
            found = found.filter(**{f"{field}__isnull": True})
        else:
            found = found.filter(**{field: value.upper() if by == "organization" else value})
    return found.select_related("ticket__organization", "tier").order_by("ticket_id")


def _tier_condition(found: QuerySet[TicketFact], metric: str) -> QuerySet[TicketFact]:
    l1, l2, l3 = lowest_tiers()
    if metric == "l1_resolved":
        return found.filter(resolved_tier=l1) if l1 is not None else found.none()
    low, high = (l1, l2) if metric == "escalated_l1_l2" else (l2, l3)
    if low is None or high is None:
        return found.none()
    bit = 1 << low.level
    return found.annotate(
        was=F("tiers_visited").bitand(bit), left=F("escalated_from").bitand(bit)
    ).filter(was__gt=0, left__gt=0)


def age_condition(label: str, now: dt.datetime | None = None) -> Q:
    """Tickets of one of the backlog's age buckets (by its label), as of ``now``."""
    now = now or clock.now()
    lower = None
    for name, days in AGE_BUCKETS:
        if name == label:
            when = Q()
            if lower is not None:
                when &= Q(created_at__lte=now - dt.timedelta(days=lower))
            if days is not None:
                when &= Q(created_at__gt=now - dt.timedelta(days=days))
            return when
        lower = days
    raise ValidationFailed.for_field("value", f"one of {', '.join(n for n, _ in AGE_BUCKETS)}")


def _check_value(by: str, value: str) -> None:
    """A group's value that the database could not compare is refused (not a 500)."""
    if "\x00" in value:
        raise ValidationFailed.for_field("value", "contains a NUL character")
    if by == "score" and value not in {"1", "2", "3", "4", "5"}:
        raise ValidationFailed.for_field("value", "a score from 1 to 5")
    if by == "policy" and not (value.isascii() and value.isdigit() and len(value) < 19):
        raise ValidationFailed.for_field("value", "a policy's id (policy_id in the SLA report)")
