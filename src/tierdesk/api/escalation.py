"""Escalation: move a ticket up (with a reason and a handoff) or down (with a note)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field, StringConstraints

from tierdesk.api.common import actor, expected_version
from tierdesk.api.schemas import ERRORS, PersonRef, Problem, StrictInput, person
from tierdesk.api.tickets import IF_MATCH, Ref, TicketOut, ticket_response, user_ref
from tierdesk.core.models import STAFF_ROLES
from tierdesk.escalation import queries, services
from tierdesk.escalation.models import Escalation
from tierdesk.tickets import queries as ticket_queries
from tierdesk.tickets.services import NO_SUCH_ASSIGNEE
from tierdesk.tiers.services import tier_by_code

router = Router(tags=["escalation"])

TierCode = Annotated[str, StringConstraints(min_length=1, max_length=8)]


class EscalateIn(StrictInput):
    tier: TierCode | None = Field(None, description="Target tier; default: the next one up.")
    reason: Annotated[str, StringConstraints(max_length=services.REASON_MAX)] = Field(
        description="Why it needs the higher tier."
    )
    handoff_note: Annotated[str, StringConstraints(max_length=services.NOTE_MAX)] = Field(
        description="What was tried, for whoever picks it up."
    )
    assignee: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        None, description="Hand it to this agent; default: the tier's assignment strategy."
    )
    notify_managers: bool = Field(
        False, description="Hierarchical escalation: notify the target tier's managers."
    )


class DeEscalateIn(StrictInput):
    tier: TierCode | None = Field(None, description="Target tier; default: the next one down.")
    note: Annotated[str, StringConstraints(max_length=services.NOTE_MAX)]
    assignee: Annotated[str, StringConstraints(max_length=254)] | None = None


class EscalationOut(Schema):
    id: int
    from_tier: str
    to_tier: str
    direction: str
    kind: str
    reason: str | None
    handoff_note: str | None
    actor: PersonRef | None
    at: dt.datetime
    managers_notified: bool


def escalation_out(e: Escalation, *, internal: bool) -> dict[str, Any]:
    return {
        "id": e.pk,
        "from_tier": e.from_tier.code,
        "to_tier": e.to_tier.code,
        "direction": e.direction,
        "kind": e.kind,
        "reason": e.reason if internal else None,
        "handoff_note": e.handoff_note if internal else None,
        "actor": person(e.actor) if internal else None,
        "at": e.at,
        "managers_notified": e.managers_notified,
    }


@router.post(
    "/tickets/{ref}/escalate",
    response={200: TicketOut, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Escalate a ticket to a higher tier (reason and handoff note required)",
    openapi_extra=IF_MATCH,
)
def escalate(request: HttpRequest, ref: Ref, payload: EscalateIn) -> HttpResponse:
    me = actor(request)
    ticket = ticket_queries.ticket_get(actor=me, ref=ref)
    services.escalate(
        actor=me,
        ticket=ticket,
        to_tier=tier_by_code(payload.tier) if payload.tier else None,
        reason=payload.reason,
        handoff_note=payload.handoff_note,
        assignee=user_ref("assignee", payload.assignee, NO_SUCH_ASSIGNEE),
        notify_managers=payload.notify_managers,
        expected_version=expected_version(request),
    )
    return ticket_response(ticket_queries.ticket_get(actor=me, ref=ticket.pk))


@router.post(
    "/tickets/{ref}/de-escalate",
    response={200: TicketOut, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Hand a ticket back to a lower tier (a note is required)",
    openapi_extra=IF_MATCH,
)
def de_escalate(request: HttpRequest, ref: Ref, payload: DeEscalateIn) -> HttpResponse:
    me = actor(request)
    ticket = ticket_queries.ticket_get(actor=me, ref=ref)
    services.de_escalate(
        actor=me,
        ticket=ticket,
        to_tier=tier_by_code(payload.tier) if payload.tier else None,
        note=payload.note,
        assignee=user_ref("assignee", payload.assignee, NO_SUCH_ASSIGNEE),
        expected_version=expected_version(request),
    )
    return ticket_response(ticket_queries.ticket_get(actor=me, ref=ticket.pk))


@router.get(
    "/tickets/{ref}/escalations",
    response={200: list[EscalationOut], **ERRORS},
    summary="A ticket's escalations (requesters see the moves, not the internal notes)",
)
def list_escalations(request: HttpRequest, ref: Ref) -> list[dict[str, Any]]:
    me = actor(request)
    ticket = ticket_queries.ticket_get(actor=me, ref=ref)
    internal = me.role in STAFF_ROLES
    return [
        escalation_out(e, internal=internal)
        for e in queries.escalation_list(actor=me, ticket=ticket)
    ]
