"""Routing rules: read, add, change, remove, and a dry-run that explains a decision."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field, StringConstraints

from tierdesk.api.common import IDEMPOTENCY_HEADER, actor, idempotent, json_response
from tierdesk.api.schemas import ERRORS, PersonRef, Problem, StrictInput, person
from tierdesk.core import policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Organization, User
from tierdesk.core.parse import as_id
from tierdesk.core.services import organization_get
from tierdesk.tickets.services import route_intake
from tierdesk.tiers import queries, routing, services
from tierdesk.tiers.models import Category, RoutingRule
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import RuleConditions, tier_by_code

router = Router(tags=["routing"])

PriorityName = Literal["P1", "P2", "P3", "P4"]
SourceName = Literal["portal", "api", "email", "phone", "monitoring", "chat"]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=10)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=254)]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=100)]
RuleId = Annotated[int, Field(ge=1, le=2**62)]


class ConditionsIn(StrictInput):
    categories: list[Slug] = Field(default_factory=list, max_length=50)
    organizations: list[Code] = Field(
        default_factory=list, max_length=50, description="MSP-wide rules only."
    )
    requesters: list[Ref] = Field(default_factory=list, max_length=50)
    priorities: list[PriorityName] = Field(default_factory=list)
    sources: list[SourceName] = Field(default_factory=list)
    keywords: list[Keyword] = Field(
        default_factory=list, max_length=50, description="Any of them in subject or body."
    )


class ActionsIn(StrictInput):
    tier: Annotated[str, StringConstraints(max_length=8)] | None = None
    category: Slug | None = None
    priority: PriorityName | None = None
    assignee: Ref | None = None
    tags: list[Slug] = Field(default_factory=list, max_length=20)


class RuleIn(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    organization: Code | None = Field(None, description="Empty: an MSP-wide rule (admins).")
    position: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    is_active: bool = True
    conditions: ConditionsIn = Field(default_factory=ConditionsIn)
    actions: ActionsIn


class RulePatch(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    position: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    is_active: bool | None = None
    conditions: ConditionsIn | None = None
    actions: ActionsIn | None = None


class ConditionsOut(Schema):
    categories: list[str]
    organizations: list[str]
    requesters: list[str]
    priorities: list[str]
    sources: list[str]
    keywords: list[str]


class ActionsOut(Schema):
    tier: str | None
    category: str | None
    priority: str | None
    assignee: PersonRef | None
    tags: list[str]


class RuleOut(Schema):
    id: int
    name: str
    organization: str | None
    position: int
    is_active: bool
    conditions: ConditionsOut
    actions: ActionsOut
    created_at: dt.datetime
    updated_at: dt.datetime


class SampleIn(StrictInput):
    organization: Code
    subject: Annotated[str, StringConstraints(min_length=1, max_length=250)]
    description: Annotated[str, StringConstraints(max_length=100_000)] = ""
    category: Slug | None = None
    priority: PriorityName | None = None
    impact: Annotated[int, Field(ge=1, le=3)] | None = None
    urgency: Annotated[int, Field(ge=1, le=3)] | None = None
    source: SourceName = "api"
    requester: Ref | None = None


class CheckOut(Schema):
    condition: str
    wanted: list[Any]
    actual: Any
    holds: bool


class TraceOut(Schema):
    rule_id: int
    rule: str
    scope: Literal["organization", "global"]
    position: int
    matched: bool
    checks: list[CheckOut]


class DryRunOut(Schema):
    matched_rule: str | None
    matched_rule_id: int | None
    via: Literal["rule", "category default", "lowest tier"]
    tier: str | None
    category: str | None
    priority: str
    assignee_id: int | None
    tags: list[str]
    summary: str
    rules: list[TraceOut]


def _named(model_ids: list[int], lookup: dict[int, str]) -> list[str]:
    return [lookup.get(i, f"#{i}") for i in model_ids]


def _visible(viewer: User | None, conditions: dict[str, Any]) -> dict[str, Any]:
    """An MSP-wide rule may name organizations and requesters of every client; show a
    viewer only those of the organizations they see (admins and the operator: all)."""
    if viewer is None or viewer.role == "admin":
        return conditions
    seen = set(policy.visible_organizations(viewer).values_list("pk", flat=True))
    people = set(
        User.objects.filter(
            pk__in=conditions.get("requesters", []), organization_id__in=seen
        ).values_list("pk", flat=True)
    )
    return conditions | {
        "organizations": [o for o in conditions.get("organizations", []) if o in seen],
        "requesters": [p for p in conditions.get("requesters", []) if p in people],
    }


def rule_out(rule: RoutingRule, viewer: User | None = None) -> dict[str, Any]:
    return rules_out([rule], viewer)[0]


def rules_out(rules: list[RoutingRule], viewer: User | None = None) -> list[dict[str, Any]]:
    """The rules as the API shows them, with the categories, organizations and requesters
    their conditions name looked up once for all of them (three queries, four for a
    viewer who is not an admin). An MSP-wide rule may name organizations and requesters
    of every client: a viewer sees only those of the organizations they see (admins and
    the operator: all)."""
    conditions = [rule.conditions or {} for rule in rules]

    def ids(key: str) -> set[int]:
        return {i for c in conditions for i in c.get(key, [])}

    cats = dict(Category.objects.filter(pk__in=ids("categories")).values_list("pk", "slug"))
    orgs = dict(Organization.objects.filter(pk__in=ids("organizations")).values_list("pk", "code"))
    people = {
        pk: (email, org)
        for pk, email, org in User.objects.filter(pk__in=ids("requesters")).values_list(
            "pk", "email", "organization_id"
        )
    }
    seen: set[int] | None = None
    if viewer is not None and viewer.role != "admin":
        seen = set(policy.visible_organizations(viewer).values_list("pk", flat=True))
    out = []
    for rule, c in zip(rules, conditions, strict=True):
        shown_orgs = c.get("organizations", [])
        shown_people = c.get("requesters", [])
        if seen is not None:
            shown_orgs = [o for o in shown_orgs if o in seen]
            shown_people = [p for p in shown_people if p in people and people[p][1] in seen]
        out.append(
            {
                "id": rule.pk,
                "name": rule.name,
                "organization": rule.organization.code if rule.organization else None,
                "position": rule.position,
                "is_active": rule.is_active,
                "conditions": {
                    "categories": _named(c.get("categories", []), cats),
                    "organizations": _named(shown_orgs, orgs),
                    "requesters": _named(shown_people, {pk: e for pk, (e, _) in people.items()}),
                    "priorities": c.get("priorities", []),
                    "sources": c.get("sources", []),
                    "keywords": c.get("keywords", []),
                },
                "actions": {
                    "tier": rule.set_tier.code if rule.set_tier else None,
                    "category": rule.set_category.slug if rule.set_category else None,
                    "priority": rule.set_priority or None,
                    "assignee": person(rule.set_assignee),
                    "tags": rule.add_tags or [],
                },
                "created_at": rule.created_at,
                "updated_at": rule.updated_at,
            }
        )
    return out


def _organization(request: HttpRequest, code: str, field: str) -> Organization:
    try:
        return organization_get(actor=actor(request), code=code)
    except NotFound:
        raise ValidationFailed.for_field(field, f"no organization {code!r}") from None


NO_SUCH_AGENT = "no such agent serving this organization"


def _no_such_requester(ref: str) -> str:
    # The same words for "missing" and "someone else's", as the service uses: answers must
    # not tell whether a person exists in another tenant.
    return f"no such requester {ref.strip().lower()!r} in this scope"


def _person(field: str, ref: str, missing: str) -> User:
    ref = ref.strip()
    user_id = as_id(ref)
    found = (
        User.objects.filter(pk=user_id).first()
        if user_id is not None
        else User.objects.filter(email=ref.lower()).first()
    )
    if found is None:
        raise ValidationFailed.for_field(field, missing)
    return found


def _requester_of(organization: Organization, ref: str | None) -> User | None:
    if ref is None:
        return None
    found = _person("requester", ref, _no_such_requester(ref))
    if found.role != "requester" or found.organization_id != organization.pk:
        raise ValidationFailed.for_field("requester", _no_such_requester(ref))
    return found


def _category(field: str, organization: Organization | None, slug: str) -> Category:
    found = (
        category_for_organization(organization, slug)
        if organization is not None
        else Category.objects.filter(organization__isnull=True, slug=slug.strip().lower())
        .select_related("default_tier")
        .first()
    )
    if found is None:
        raise ValidationFailed.for_field(field, f"no such category {slug!r}")
    return found


def _conditions(
    request: HttpRequest, payload: ConditionsIn, organization: Organization | None
) -> RuleConditions:
    return RuleConditions(
        categories=[
            _category("conditions.categories", organization, s) for s in payload.categories
        ],
        organizations=[
            _organization(request, code, "conditions.organizations")
            for code in payload.organizations
        ],
        requesters=[
            _person("conditions.requesters", r, _no_such_requester(r)) for r in payload.requesters
        ],
        priorities=payload.priorities,
        sources=payload.sources,
        keywords=payload.keywords,
    )


def _actions(payload: ActionsIn, organization: Organization | None) -> dict[str, Any]:
    return {
        "tier": tier_by_code(payload.tier) if payload.tier else None,
        "category": (
            _category("actions.category", organization, payload.category)
            if payload.category
            else None
        ),
        "priority": payload.priority or "",
        "assignee": (
            _person("actions.assignee", payload.assignee, NO_SUCH_AGENT)
            if payload.assignee
            else None
        ),
        "tags": payload.tags,
    }


@router.get("/routing-rules", response={200: list[RuleOut], **ERRORS}, summary="List rules")
def list_rules(request: HttpRequest) -> list[dict[str, Any]]:
    me = actor(request)
    return rules_out(list(queries.routing_rule_list(actor=me)[:1000]), me)


@router.get(
    "/routing-rules/{rule_id}", response={200: RuleOut, **ERRORS}, summary="Read a routing rule"
)
def get_rule(request: HttpRequest, rule_id: RuleId) -> dict[str, Any]:
    me = actor(request)
    return rule_out(queries.routing_rule_get(actor=me, rule_id=rule_id), me)


@router.post(
    "/routing-rules",
    response={201: RuleOut, 409: Problem, **ERRORS},
    summary="Add a routing rule (managers for organizations they serve; admins MSP-wide)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_rule(request: HttpRequest, payload: RuleIn) -> HttpResponse:
    organization = (
        _organization(request, payload.organization, "organization")
        if payload.organization
        else None
    )
    rule = services.routing_rule_create(
        actor=actor(request),
        name=payload.name,
        organization=organization,
        conditions=_conditions(request, payload.conditions, organization),
        position=payload.position,
        is_active=payload.is_active,
        **_actions(payload.actions, organization),
    )
    rule = queries.routing_rule_get(actor=actor(request), rule_id=rule.pk)
    body = RuleOut.model_validate(rule_out(rule, actor(request))).model_dump()
    return json_response(201, body)


@router.patch(
    "/routing-rules/{rule_id}",
    response={200: RuleOut, **ERRORS},
    summary="Change a routing rule; only the given fields change",
)
def update_rule(request: HttpRequest, rule_id: RuleId, payload: RulePatch) -> dict[str, Any]:
    me = actor(request)
    rule = queries.routing_rule_get(actor=me, rule_id=rule_id)
    given = payload.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("name", "position", "is_active"):
        if name in given:
            value = getattr(payload, name)
            if value is None:
                raise ValidationFailed.for_field(name, "may not be null")
            changes[name] = value
    if "conditions" in given:
        changes["conditions"] = _conditions(
            request, payload.conditions or ConditionsIn(), rule.organization
        )
    if "actions" in given:
        changes.update(_actions(payload.actions or ActionsIn(), rule.organization))
    services.routing_rule_update(actor=me, rule=rule, **changes)
    return rule_out(queries.routing_rule_get(actor=me, rule_id=rule_id), me)


@router.delete(
    "/routing-rules/{rule_id}", response={204: None, **ERRORS}, summary="Remove a routing rule"
)
def delete_rule(request: HttpRequest, rule_id: RuleId) -> HttpResponse:
    me = actor(request)
    services.routing_rule_delete(actor=me, rule=queries.routing_rule_get(actor=me, rule_id=rule_id))
    return HttpResponse(status=204)


@router.post(
    "/routing/dry-run",
    response={200: DryRunOut, **ERRORS},
    summary="Show which rule would route a sample ticket, and why (nothing is written)",
)
def routing_dry_run(request: HttpRequest, payload: SampleIn) -> dict[str, Any]:
    me = actor(request)
    if me.role not in STAFF_ROLES:
        raise NotFound("No such resource.")
    organization = _organization(request, payload.organization, "organization")
    decision = route_intake(
        organization=organization,
        subject=payload.subject,
        description=payload.description,
        category=(
            _category("category", organization, payload.category) if payload.category else None
        ),
        priority=payload.priority,
        impact=payload.impact,
        urgency=payload.urgency,
        source=payload.source,
        requester=_requester_of(organization, payload.requester),
    )
    return dry_run_out(decision, me)


def dry_run_out(decision: routing.Decision, viewer: User | None = None) -> dict[str, Any]:
    rules = routing.trace_out(decision)
    for r in rules:
        for check in r["checks"]:
            if check["condition"] in ("organizations", "requesters"):
                check["wanted"] = _visible(viewer, {check["condition"]: check["wanted"]})[
                    check["condition"]
                ]
    return {
        "matched_rule": decision.rule.name if decision.rule else None,
        "matched_rule_id": decision.rule.pk if decision.rule else None,
        "via": decision.via,
        "tier": decision.tier.code if decision.tier else None,
        "category": decision.category.slug if decision.category else None,
        "priority": decision.priority or decision.sample.priority,
        "assignee_id": decision.assignee_id,
        "tags": decision.tags,
        "summary": decision.summary(),
        "rules": rules,
    }
