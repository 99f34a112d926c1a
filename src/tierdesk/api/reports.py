"""Reports: the KPIs as JSON, over the organizations the caller serves (managers, admins).
Definitions: docs/kpis.md."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import StringConstraints

from tierdesk.api.common import actor, json_response, reject_unknown_query
from tierdesk.api.schemas import ERRORS, CleanInput
from tierdesk.reports import queries

router = Router(tags=["reports"])

Rate = Annotated[float | None, Field(description="A fraction 0-1; null when undefined.")]


class PeriodParams(CleanInput):
    organization: Annotated[str, StringConstraints(min_length=1, max_length=20)] | None = Field(
        None, description="An organization's code; default: every one the caller serves."
    )
    from_: dt.date | None = Field(
        None, alias="from", description="First day (inclusive); default: 29 days before 'to'."
    )
    to: dt.date | None = Field(None, description="Last day (inclusive); default: today.")


class SummaryOut(Schema):
    organization: str | None = Field(description="The code asked for; null: all served.")
    from_: dt.date = Field(alias="from")
    to: dt.date
    time_zone: str = Field(description="The days' time zone: the organization's, else UTC.")
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
    summary="A period's headline KPIs for one organization or all the caller serves",
)
def summary(request: HttpRequest, params: Query[PeriodParams]) -> HttpResponse:
    reject_unknown_query(request, PeriodParams)
    figures = queries.summary(
        actor=actor(request),
        organization=params.organization,
        first_day=params.from_,
        last_day=params.to,
    )
    figures["from"] = figures["from"].isoformat()
    figures["to"] = figures["to"].isoformat()
    return json_response(200, figures)
