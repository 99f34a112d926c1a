"""Reports: the KPIs as JSON, over the organizations the caller serves (managers, admins).
Definitions: docs/kpis.md."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import BeforeValidator, StringConstraints

from tierdesk.api.common import actor, json_response, reject_unknown_query
from tierdesk.api.schemas import ERRORS, CleanInput
from tierdesk.reports import queries

router = Router(tags=["reports"])


def _day(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a day as YYYY-MM-DD")
    return value


Rate = Annotated[float | None, Field(description="A fraction 0-1; null when undefined.")]


Format = Literal["json", "csv"]


# Added to each report's published 200 answer (ninja merges it into the JSON one it makes;
# the key is the int status, as ninja's own, so the two merge instead of sitting side by side).
def _also_csv() -> dict[str, Any]:
    csv = {"schema": {"type": "string", "description": "With format=csv."}}
    return {"responses": {200: {"content": {"text/csv": csv}}}}


# A day as YYYY-MM-DD only (pydantic would also take a number of seconds since 1970).
Day = Annotated[dt.date, BeforeValidator(_day)]


class PeriodParams(CleanInput):
    organization: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = Field(
        None, description="An organization's code; default: every one the caller serves."
    )
    from_: Day | None = Field(
        None, alias="from", description="First day (inclusive); default: 29 days before 'to'."
    )
    to: Day | None = Field(None, description="Last day (inclusive); default: today.")
    tier: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = Field(
        None,
        description="Only tickets counted in this tier (created: first tier; "
        "resolved: resolving tier).",
    )
    category: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = Field(
        None, description="Only this category's tickets (its slug; none: uncategorized)."
    )
    agent: Annotated[str, StringConstraints(min_length=3, max_length=254)] | None = Field(
        None, description="Only tickets assigned to this staff member (an email)."
    )
    format: Format = Field("json", description="csv: the same figures as a CSV table.")

    def filters(self) -> queries.Filters:
        return queries.Filters(tier=self.tier, category=self.category, agent=self.agent)


class ReportOut(Schema):
    """What every report answers first: whose and which days."""

    organization: str | None = Field(description="The code asked for; null: all served.")
    from_: dt.date = Field(alias="from")
    to: dt.date
    time_zone: str | None = Field(
        description="The days' time zone: the organization's; null across several, where "
        "each organization counts its own days."
    )


class SummaryOut(ReportOut):
    created: int
    resolved: int
    fcr_rate: Rate
    l1_resolution_rate: Rate
    escalation_rate_l1_l2: Rate
    escalation_rate_l2_l3: Rate
    reopen_rate: Rate
    sla_response_compliance: Rate
    sla_resolution_compliance: Rate
    backlog_open: int
    csat_average: float | None = Field(description="1-5; null without ratings.")
    csat_responses: int
    deflections: int
    resolved_by_automation: int


@router.get(
    "/reports/summary",
    response={200: SummaryOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="A period's headline KPIs for one organization or all the caller serves",
)
def summary(request: HttpRequest, params: Query[PeriodParams]) -> HttpResponse:
    figures = _report(request, params, queries.summary)
    if params.format == "csv":
        return csv_response("summary", ["figure", "value"], figures.items())
    return json_response(200, figures)


class TimesParams(PeriodParams):
    by: Literal["tier", "priority", "category", "organization"] | None = Field(
        None, description="Group by: response times by the first tier, resolution by the last."
    )


class Statistics(Schema):
    count: int
    mean: float | None = Field(description="Seconds; null without tickets.")
    median: float | None
    p90: float | None = Field(description="The nearest-rank 90th percentile.")


class TimesGroup(Schema):
    key: str | None = Field(description="The group (a tier, priority...); null: overall.")
    response: Statistics
    response_business: Statistics
    resolution: Statistics
    resolution_business: Statistics


class TimesOut(ReportOut):
    by: str | None
    groups: list[TimesGroup]


MEASURES = ("response", "response_business", "resolution", "resolution_business")
STATISTICS = ("count", "mean", "median", "p90")


@router.get(
    "/reports/times",
    response={200: TimesOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Time to first response and to resolution (MTTR): mean, median, p90",
)
def times(request: HttpRequest, params: Query[TimesParams]) -> HttpResponse:
    figures = _report(request, params, queries.times, by=params.by)
    if params.format == "csv":
        return csv_response(
            "times",
            [params.by or "group", "measure", "count", "mean_s", "median_s", "p90_s"],
            (
                [_group_name(g["key"], params.by), m, *(g[m][k] for k in STATISTICS)]
                for g in figures["groups"]
                for m in MEASURES
            ),
        )
    return json_response(200, figures)


class VolumeParams(PeriodParams):
    interval: Literal["day", "week", "month"] = Field("day", description="Weeks start Monday.")
    by: Literal["tier", "source", "priority", "category", "organization"] | None = None


class VolumeRow(Schema):
    start: dt.date = Field(description="The day, week (its Monday) or month (its first day).")
    key: str | None = Field(description="The group with 'by'; else null.")
    created: int
    resolved: int
    closed: int


class VolumeOut(ReportOut):
    interval: str
    by: str | None
    rows: list[VolumeRow]


@router.get(
    "/reports/volume",
    response={200: VolumeOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Tickets created, resolved and closed per day, week or month",
)
def volume(request: HttpRequest, params: Query[VolumeParams]) -> HttpResponse:
    figures = _report(request, params, queries.volume, interval=params.interval, by=params.by)
    rows = [r | {"start": r["start"].isoformat()} for r in figures["rows"]]
    if params.format == "csv":
        return csv_response(
            "volume",
            [params.interval, params.by or "group", "created", "resolved", "closed"],
            (
                [
                    r["start"],
                    _group_name(r["key"], params.by),
                    r["created"],
                    r["resolved"],
                    r["closed"],
                ]
                for r in rows
            ),
        )
    return json_response(200, figures | {"rows": rows})


class Move(Schema):
    from_: str = Field(alias="from")
    to: str
    direction: Literal["up", "down"]
    manual: int
    automatic: int


class Reason(Schema):
    reason: str = Field(description="A manual escalation's reason, or the rule's name.")
    automatic: bool
    count: int


class EscalationsOut(ReportOut):
    moves: list[Move]
    top_reasons: list[Reason]


class EscalationsParams(PeriodParams):
    table: Literal["moves", "reasons"] = Field("moves", description="Which table as CSV.")


@router.get(
    "/reports/escalations",
    response={200: EscalationsOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Moves between tiers in the period, manual and automatic, and the top reasons",
)
def escalations(request: HttpRequest, params: Query[EscalationsParams]) -> HttpResponse:
    figures = _report(request, params, queries.escalations)
    if params.format == "csv" and params.table == "reasons":
        return csv_response(
            "escalation-reasons",
            ["reason", "automatic", "count"],
            ([r["reason"], r["automatic"], r["count"]] for r in figures["top_reasons"]),
        )
    if params.format == "csv":
        return csv_response(
            "escalations",
            ["from", "to", "direction", "manual", "automatic"],
            (
                [m["from"], m["to"], m["direction"], m["manual"], m["automatic"]]
                for m in figures["moves"]
            ),
        )
    return json_response(200, figures)


class TierBacklog(Schema):
    tier: str
    open: int
    age: dict[str, int] = Field(description="Open tickets by age: < 1 d, 1-3 d, 3-7 d, > 7 d.")


class BacklogDay(Schema):
    day: dt.date
    open: int = Field(description="Open at the end of the day.")


class BacklogOut(ReportOut):
    now: dt.datetime
    by_tier: list[TierBacklog]
    trend: list[BacklogDay]


class BacklogParams(PeriodParams):
    table: Literal["tiers", "trend"] = Field("tiers", description="Which table as CSV.")


@router.get(
    "/reports/backlog",
    response={200: BacklogOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Open tickets now by tier and age, and open at the end of each day",
)
def backlog(request: HttpRequest, params: Query[BacklogParams]) -> HttpResponse:
    figures = _report(request, params, queries.backlog)
    trend = [t | {"day": t["day"].isoformat()} for t in figures["trend"]]
    if params.format == "csv" and params.table == "trend":
        return csv_response(
            "backlog-trend", ["day", "open"], ([t["day"], t["open"]] for t in trend)
        )
    if params.format == "csv":
        ages = [label for label, _ in queries.AGE_BUCKETS]
        return csv_response(
            "backlog",
            ["tier", "open", *ages],
            ([t["tier"], t["open"], *(t["age"][a] for a in ages)] for t in figures["by_tier"]),
        )
    return json_response(200, figures | {"trend": trend, "now": figures["now"].isoformat()})


class CsatOut(ReportOut):
    responses: int
    average: float | None
    distribution: dict[str, int] = Field(description="Ratings of each score, 1 to 5.")
    response_rate: Rate


class CsatParams(PeriodParams):
    table: Literal["distribution", "summary"] = Field(
        "distribution", description="Which table as CSV."
    )


@router.get(
    "/reports/csat",
    response={200: CsatOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Customer satisfaction: average, distribution and response rate",
)
def csat(request: HttpRequest, params: Query[CsatParams]) -> HttpResponse:
    figures = _report(request, params, queries.csat)
    if params.format == "csv" and params.table == "summary":
        return csv_response(
            "csat-summary",
            ["figure", "value"],
            ([k, figures[k]] for k in ("responses", "average", "response_rate")),
        )
    if params.format == "csv":
        return csv_response("csat", ["score", "ratings"], figures["distribution"].items())
    return json_response(200, figures)


class PolicyCompliance(Schema):
    policy: str | None = Field(description="The policy's name; null if it was deleted since.")
    policy_id: int = Field(description="For the drill-down: by=policy&value=<policy_id>.")
    organization: str
    response_met: int
    response_breached: int
    response_compliance: Rate
    resolution_met: int
    resolution_breached: int
    resolution_compliance: Rate


class Breach(Schema):
    ticket: str
    subject: str
    kind: Literal["first_response", "next_update", "resolution"]
    policy: str
    priority: str
    tier: str
    due_at: dt.datetime
    breached_at: dt.datetime
    stopped_at: dt.datetime | None


class SlaOut(ReportOut):
    policies: list[PolicyCompliance]
    breaches_total: int
    breaches: list[Breach] = Field(description="The earliest 500 of the period's breaches.")


class SlaParams(PeriodParams):
    table: Literal["breaches", "policies"] = Field("breaches", description="Which table as CSV.")


@router.get(
    "/reports/sla",
    response={200: SlaOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="SLA compliance per policy and organization, and the breaches of the period",
)
def sla(request: HttpRequest, params: Query[SlaParams]) -> HttpResponse:
    figures = _report(request, params, queries.sla)
    if params.format == "csv" and params.table == "policies":
        columns = list(figures["policies"][0]) if figures["policies"] else ["policy"]
        return csv_response(
            "sla-policies", columns, ([row[c] for c in columns] for row in figures["policies"])
        )
    if params.format == "csv":
        fields = ["ticket", "subject", "kind", "policy", "priority", "tier", "due_at",
                  "breached_at", "stopped_at"]  # fmt: skip
        return csv_response(
            "sla-breaches",
            fields,
            ([_iso(b[f]) for f in fields] for b in figures["breaches"]),
        )
    breaches = [{k: _iso(v) for k, v in b.items()} for b in figures["breaches"]]
    return json_response(200, figures | {"breaches": breaches})


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


class CostParams(PeriodParams):
    shift: Annotated[float, Field(ge=0, le=100)] = Field(
        10, description="The share (%) of the tickets resolved in L2 to price at L1 instead."
    )


class TierCost(Schema):
    tier: str
    hourly_cost: int | None
    handling_minutes: int | None
    tickets: int = Field(description="Tickets resolved in the period that were in this tier.")
    cost_per_ticket: float | None = Field(description="Null: the tier's cost is not set.")
    cost: float | None


class CostOut(ReportOut):
    resolved: int
    tiers: list[TierCost]
    total: float | None = Field(description="Null when a tier with tickets has no cost set.")
    cost_per_resolved_ticket: float | None
    shift_percent: float
    resolved_at_l2: int
    saving_if_shifted: float | None = Field(
        description="What resolving shift_percent % of resolved_at_l2 at L1 would have saved."
    )


@router.get(
    "/reports/cost",
    response={200: CostOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="What the period's resolved tickets cost per tier, and what moving L2 work to L1 saves",
)
def cost(request: HttpRequest, params: Query[CostParams]) -> HttpResponse:
    figures = _report(request, params, queries.cost, shift_percent=params.shift)
    if params.format == "csv":
        fields = ["tier", "hourly_cost", "handling_minutes", "tickets", "cost_per_ticket", "cost"]
        return csv_response("cost", fields, ([t[f] for f in fields] for t in figures["tiers"]))
    return json_response(200, figures)


class AgentLoad(Schema):
    agent: str
    name: str
    tier: str
    open_assigned: int
    resolved: int = Field(description="Tickets resolved in the period assigned to them.")
    shift_hours: float = Field(description="Hours of their shifts in the period.")
    utilization: float | None = Field(
        description="Estimated: resolved x their tier's minutes per ticket, over shift time."
    )


class WorkloadOut(ReportOut):
    agents: list[AgentLoad]


@router.get(
    "/reports/agents",
    response={200: WorkloadOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Workload per staff member: open assigned, resolved, estimated utilization",
)
def agents(request: HttpRequest, params: Query[PeriodParams]) -> HttpResponse:
    figures = _report(request, params, queries.workload)
    if params.format == "csv":
        fields = ["agent", "name", "tier", "open_assigned", "resolved", "shift_hours",
                  "utilization"]  # fmt: skip
        return csv_response("agents", fields, ([a[f] for f in fields] for a in figures["agents"]))
    return json_response(200, figures)


class TierKnowledge(Schema):
    tier: str | None = Field(description="The ticket's tier when the article was used.")
    suggested: int = Field(description="Tickets an article was suggested for on opening.")
    linked: int = Field(description="Tickets an agent linked an article to.")
    solved: int = Field(description="Tickets marked as solved by an article.")
    suggested_articles: int
    linked_articles: int
    solved_articles: int


class ArticleCount(Schema):
    article: str
    title: str
    tickets: int


class ArticleDeflections(Schema):
    article: str
    title: str
    deflections: int


class KnowledgeOut(ReportOut):
    by_tier: list[TierKnowledge]
    top_articles: list[ArticleCount] = Field(description="Linked to or solving most tickets.")
    deflections: int
    top_deflecting: list[ArticleDeflections]
    resolved: int
    resolved_by_automation: int


class KnowledgeParams(PeriodParams):
    table: Literal["tiers", "articles", "deflecting"] = Field(
        "tiers", description="Which table as CSV."
    )


@router.get(
    "/reports/knowledge",
    response={200: KnowledgeOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="Knowledge and automation: articles used per tier, deflections, automation",
)
def knowledge(request: HttpRequest, params: Query[KnowledgeParams]) -> HttpResponse:
    figures = _report(request, params, queries.knowledge)
    if params.format == "csv":
        fields, rows = {
            "tiers": (["tier", "suggested", "linked", "solved", "suggested_articles",
                       "linked_articles", "solved_articles"], figures["by_tier"]),
            "articles": (["article", "title", "tickets"], figures["top_articles"]),
            "deflecting": (["article", "title", "deflections"], figures["top_deflecting"]),
        }[params.table]  # fmt: skip
        return csv_response(
            f"knowledge-{params.table}", fields, ([r[f] for f in fields] for r in rows)
        )
    return json_response(200, figures)


Metric = Literal[tuple(queries.DRILL)]  # type: ignore[valid-type]
DrillBy = Literal[(*queries.DRILL_GROUPS, "age")]  # type: ignore[valid-type]
DRILL_PAGE_MAX = 200
DRILL_CSV_MAX = 10_000


class DrillParams(PeriodParams):
    metric: Metric = Field(description="The figure whose tickets to list.")  # type: ignore[valid-type]
    by: DrillBy | None = Field(None, description="With value: only that group's tickets.")
    value: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="The group (a tier code, priority, category slug, ...); none: without."
    )
    after: int | None = Field(
        None, ge=0, le=2**63 - 1, description="next_after of the previous page."
    )
    limit: int = Field(50, ge=1, le=DRILL_PAGE_MAX)


class DrillTicket(Schema):
    ticket: str
    subject: str
    status: str
    priority: str
    tier: str = Field(description="Its tier now.")
    organization: str
    created_at: dt.datetime
    resolved_at: dt.datetime | None


class DrillOut(ReportOut):
    metric: str
    by: str | None
    value: str | None
    count: int = Field(description="How many tickets: the figure.")
    items: list[DrillTicket]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null: last.")


@router.get(
    "/reports/tickets",
    response={200: DrillOut, **ERRORS},
    by_alias=True,  # "from", not from_
    openapi_extra=_also_csv(),
    summary="The tickets behind a report's figure (drill-down)",
)
def tickets_behind(request: HttpRequest, params: Query[DrillParams]) -> HttpResponse:
    reject_unknown_query(request, DrillParams)
    found = queries.behind(
        actor=actor(request), organization=params.organization, first_day=params.from_,
        last_day=params.to, metric=params.metric, by=params.by, value=params.value,
        filters=params.filters(),
    )  # fmt: skip
    fields = ["ticket", "subject", "status", "priority", "tier", "organization", "created_at",
              "resolved_at"]  # fmt: skip
    if params.format == "csv":
        rows = (_drill_row(f) for f in found[:DRILL_CSV_MAX])
        response = csv_response("tickets", fields, ([r[f] for f in fields] for r in rows))
        # The list is longer than one CSV holds: say so (the JSON pages have them all).
        response["X-Tierdesk-Total"] = str(found.count())
        return response
    sc = queries.scope(
        actor=actor(request), organization=params.organization, first_day=params.from_,
        last_day=params.to, filters=params.filters(),
    )  # fmt: skip
    page = list(
        (found.filter(ticket_id__gt=params.after) if params.after else found)[: params.limit + 1]
    )
    more = len(page) > params.limit
    page = page[: params.limit]
    return json_response(
        200,
        _dates(sc.header())
        | {
            "metric": params.metric,
            "by": params.by,
            "value": params.value,
            "count": found.count(),
            "items": [_drill_row(f) for f in page],
            "next_after": page[-1].ticket_id if more else None,
        },
    )


def _drill_row(fact: Any) -> dict[str, Any]:
    t = fact.ticket
    return {
        "ticket": t.key,
        "subject": t.subject,
        "status": t.status,
        "priority": t.priority,
        "tier": fact.tier.code,
        "organization": t.organization.code,
        "created_at": fact.created_at,
        "resolved_at": fact.resolved_at,
    }


def _group_name(key: str | None, by: str | None) -> str:
    if key is not None:
        return key
    return "all" if by is None else "none"  # overall; or tickets without, e.g., a category


def _report(
    request: HttpRequest, params: PeriodParams, report: Any, **extra: Any
) -> dict[str, Any]:
    """``report`` (a reports.queries function) for the caller and the asked period, after
    refusing query parameters the endpoint does not know; days as ISO text."""
    reject_unknown_query(request, type(params))
    return _dates(
        report(
            actor=actor(request),
            organization=params.organization,
            first_day=params.from_,
            last_day=params.to,
            filters=params.filters(),
            **extra,
        )
    )


def _dates(figures: dict[str, Any]) -> dict[str, Any]:
    return figures | {"from": figures["from"].isoformat(), "to": figures["to"].isoformat()}


# Spreadsheet formulas: a text cell starting with one of these is prefixed with "'" so that
# a spreadsheet shows it instead of running it (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return value


def csv_response(name: str, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="tierdesk-{name}.csv"'
    return response
