"""Escalation: move a ticket up (with a reason and a handoff) or down (with a note), and
the automatic escalation rules."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field, StringConstraints

from tierdesk.api.common import (
    IDEMPOTENCY_HEADER,
    actor,
    expected_version,
    idempotent,
    json_response,
)
from tierdesk.api.schemas import ERRORS, PersonRef, Problem, StrictInput, person
from tierdesk.api.tickets import IF_MATCH, Ref, TicketOut, ticket_response, user_ref
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Organization, User
from tierdesk.core.services import organization_get
from tierdesk.escalation import queries, services
from tierdesk.escalation.models import Escalation, EscalationRule
from tierdesk.tickets import queries as ticket_queries
from tierdesk.tickets.services import NO_SUCH_ASSIGNEE
from tierdesk.tiers.models import Tier
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


# --- automatic escalation rules ----------------------------------------------------------

TriggerName = Literal["time_in_tier", "sla_resolution_used", "reopened", "priority"]
PriorityName = Literal["P1", "P2", "P3", "P4"]
OrgCode = Annotated[str, StringConstraints(min_length=1, max_length=10)]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# Wide bounds here; the service names the real range of each trigger's parameter.
Number = Annotated[int, Field(ge=0, le=1_000_000_000)]
EscalationRuleId = Annotated[int, Field(ge=1, le=2**62)]


class EscalationRuleIn(StrictInput):
    name: RuleName
    organization: OrgCode | None = Field(None, description="Empty: an MSP-wide rule (admins).")
    trigger: TriggerName
    priority: PriorityName | None = Field(
        None,
        description="Only tickets of this priority; for the priority trigger, the one that "
        "goes straight up (required there).",
    )
    from_tier: TierCode | None = Field(None, description="Only tickets in this tier.")
    to_tier: TierCode | None = Field(
        None,
        description="Where the ticket goes; empty: the next tier up (required for priority).",
    )
    minutes: Number | None = Field(None, description="time_in_tier: 1 to 525600.")
    percent: Number | None = Field(None, description="sla_resolution_used: 1 to 100.")
    count: Number | None = Field(None, description="reopened: 1 to 100.")
    notify_managers: bool = Field(False, description="Also notify the target tier's managers.")
    is_active: bool = True


class EscalationRulePatch(StrictInput):
    name: RuleName | None = None
    trigger: TriggerName | None = None
    priority: PriorityName | None = None
    from_tier: TierCode | None = None
    to_tier: TierCode | None = None
    minutes: Number | None = None
    percent: Number | None = None
    count: Number | None = None
    notify_managers: bool | None = None
    is_active: bool | None = None


class EscalationRuleOut(Schema):
    id: int
    name: str
    organization: str | None
    is_active: bool
    trigger: str
    priority: str | None
    from_tier: str | None
    to_tier: str | None
    minutes: int | None
    percent: int | None
    count: int | None
    notify_managers: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def escalation_rule_out(rule: EscalationRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "organization": rule.organization.code if rule.organization else None,
        "is_active": rule.is_active,
        "trigger": rule.trigger,
        "priority": rule.priority or None,
        "from_tier": rule.from_tier.code if rule.from_tier else None,
        "to_tier": rule.to_tier.code if rule.to_tier else None,
        "minutes": rule.minutes,
        "percent": rule.percent,
        "count": rule.count,
        "notify_managers": rule.notify_managers,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def rule_tier(field: str, code: str | None) -> Tier | None:
    """The tier a rule names in ``field`` (a code), or None for empty."""
    if not code:
        return None
    tier = Tier.objects.filter(code=code.strip().upper()).first()
    if tier is None:
        known = ", ".join(Tier.objects.order_by("level").values_list("code", flat=True))
        raise ValidationFailed.for_field(field, f"no tier {code!r} (known: {known})")
    return tier


def rule_organization(me: User, code: str | None) -> Organization | None:
    """The organization a rule belongs to, or None (MSP-wide). One the actor cannot see
    reads as missing."""
    if not code:
        return None
    try:
        return organization_get(actor=me, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", f"no organization {code!r}") from None


@router.get(
    "/escalation-rules",
    response={200: list[EscalationRuleOut], **ERRORS},
    summary="List automatic escalation rules (staff: MSP-wide and their clients')",
)
def list_escalation_rules(request: HttpRequest) -> list[dict[str, Any]]:
    rules = queries.escalation_rule_list(actor=actor(request))[:1000]
    return [escalation_rule_out(r) for r in rules]


@router.get(
    "/escalation-rules/{escalation_rule_id}",
    response={200: EscalationRuleOut, **ERRORS},
    summary="Read an automatic escalation rule",
)
def get_escalation_rule(
    request: HttpRequest, escalation_rule_id: EscalationRuleId
) -> dict[str, Any]:
    return escalation_rule_out(
        queries.escalation_rule_get(actor=actor(request), rule_id=escalation_rule_id)
    )


@router.post(
    "/escalation-rules",
    response={201: EscalationRuleOut, 409: Problem, **ERRORS},
    summary="Add an automatic escalation rule (managers for organizations they serve; "
    "admins MSP-wide)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_escalation_rule(request: HttpRequest, payload: EscalationRuleIn) -> HttpResponse:
    me = actor(request)
    rule = services.escalation_rule_create(
        actor=me,
        name=payload.name,
        organization=rule_organization(me, payload.organization),
        trigger=payload.trigger,
        priority=payload.priority or "",
        from_tier=rule_tier("from_tier", payload.from_tier),
        to_tier=rule_tier("to_tier", payload.to_tier),
        minutes=payload.minutes,
        percent=payload.percent,
        count=payload.count,
        notify_managers=payload.notify_managers,
        is_active=payload.is_active,
    )
    rule = queries.escalation_rule_get(actor=me, rule_id=rule.pk)
    return json_response(
        201, EscalationRuleOut.model_validate(escalation_rule_out(rule)).model_dump()
    )


@router.patch(
    "/escalation-rules/{escalation_rule_id}",
    response={200: EscalationRuleOut, **ERRORS},
    summary="Change an automatic escalation rule; only the given fields change",
)
def update_escalation_rule(
    request: HttpRequest, escalation_rule_id: EscalationRuleId, payload: EscalationRulePatch
) -> dict[str, Any]:
    me = actor(request)
    rule = queries.escalation_rule_get(actor=me, rule_id=escalation_rule_id)
    given = payload.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("name", "trigger", "notify_managers", "is_active"):
        if name in given:
            value = getattr(payload, name)
            if value is None:
                raise ValidationFailed.for_field(name, "may not be null")
            changes[name] = value
    for name in ("minutes", "percent", "count"):
        if name in given:
            changes[name] = getattr(payload, name)
    if "priority" in given:
        changes["priority"] = payload.priority or ""
    for name in ("from_tier", "to_tier"):
        if name in given:
            changes[name] = rule_tier(name, getattr(payload, name))
    services.escalation_rule_update(actor=me, rule=rule, **changes)
    return escalation_rule_out(queries.escalation_rule_get(actor=me, rule_id=escalation_rule_id))


@router.delete(
    "/escalation-rules/{escalation_rule_id}",
    response={204: None, **ERRORS},
    summary="Remove an automatic escalation rule (its escalations stay)",
)
def delete_escalation_rule(
    request: HttpRequest, escalation_rule_id: EscalationRuleId
) -> HttpResponse:
    me = actor(request)
    services.escalation_rule_delete(
        actor=me, rule=queries.escalation_rule_get(actor=me, rule_id=escalation_rule_id)
    )
    return HttpResponse(status=204)
