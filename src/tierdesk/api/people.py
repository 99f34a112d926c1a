"""Organizations, people, tokens, tiers and the service catalog."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any, Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field, StringConstraints, field_validator

from tierdesk.api.common import (
    IDEMPOTENCY_HEADER,
    actor,
    idempotent,
    json_response,
    reject_unknown_query,
)
from tierdesk.api.schemas import ERRORS, CleanInput, NoQuery, Problem, StrictInput
from tierdesk.core import policy
from tierdesk.core import queries as core_queries
from tierdesk.core import services as core_services
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import ApiToken, Organization, User
from tierdesk.tiers import queries as tier_queries
from tierdesk.tiers import services as tier_services
from tierdesk.tiers.models import Category, Skill, Tier

router = Router()

Code = Annotated[
    str, StringConstraints(min_length=2, max_length=10, pattern=r"^[A-Za-z][A-Za-z0-9]+$")
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
RoleName = Literal["requester", "agent", "manager", "admin"]


def _check_zone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)")
    return value


# --- organizations ----------------------------------------------------------------------


class OrganizationOut(Schema):
    id: int
    code: str
    name: str
    time_zone: str
    email_domains: list[str]
    is_active: bool


class OrganizationIn(StrictInput):
    code: Code
    name: Name
    time_zone: Annotated[str, StringConstraints(max_length=64)] = "UTC"
    email_domains: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        default_factory=list, max_length=50
    )

    _zone = field_validator("time_zone")(_check_zone)


def organization_out(org: Organization) -> dict[str, Any]:
    return {
        "id": org.pk,
        "code": org.code,
        "name": org.name,
        "time_zone": org.time_zone,
        "email_domains": org.email_domains,
        "is_active": org.is_active,
    }


@router.get(
    "/organizations", response={200: list[OrganizationOut], **ERRORS}, tags=["organizations"]
)
def list_organizations(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    return [organization_out(o) for o in core_queries.organization_list(actor=actor(request))]


@router.post(
    "/organizations",
    response={409: Problem, 201: OrganizationOut, **ERRORS},
    tags=["organizations"],
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_organization(request: HttpRequest, payload: OrganizationIn) -> HttpResponse:
    org = core_services.organization_create(
        actor=actor(request),
        code=payload.code,
        name=payload.name,
        time_zone=payload.time_zone,
        email_domains=payload.email_domains,
    )
    return json_response(201, OrganizationOut.model_validate(organization_out(org)).model_dump())


class OrganizationPatch(StrictInput):
    name: Name | None = None
    time_zone: Annotated[str, StringConstraints(max_length=64)] | None = None
    email_domains: list[Annotated[str, StringConstraints(max_length=253)]] | None = Field(
        None, max_length=50
    )
    is_active: bool | None = None

    _zone = field_validator("time_zone")(lambda v: v if v is None else _check_zone(v))


@router.patch(
    "/organizations/{code}",
    response={200: OrganizationOut, **ERRORS},
    tags=["organizations"],
    summary="Change an organization (admins); its code is permanent",
)
def update_organization(request: HttpRequest, code: Code, payload: OrganizationPatch) -> Any:
    me = actor(request)
    org = core_services.organization_get(actor=me, code=code)
    changes = _given(payload)
    org = core_services.organization_update(actor=me, organization=org, **changes)
    return organization_out(org)


def _given(payload: Schema, nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields the client sent; null is refused, except for ``nullable`` fields (which
    null empties)."""
    given = {name: getattr(payload, name) for name in payload.model_fields_set}
    for name, value in given.items():
        if value is None and name not in nullable:
            raise ValidationFailed.for_field(name, "may not be null")
    return given


@router.get(
    "/organizations/{code}", response={200: OrganizationOut, **ERRORS}, tags=["organizations"]
)
def get_organization(request: HttpRequest, code: Code) -> dict[str, Any]:
    return organization_out(core_services.organization_get(actor=actor(request), code=code))


# --- people ------------------------------------------------------------------------------


class ShiftIn(StrictInput):
    weekday: Annotated[int, Field(ge=0, le=6)]
    start: dt.time
    end: dt.time


class ShiftOut(Schema):
    weekday: int
    start: dt.time
    end: dt.time


class UserOut(Schema):
    id: int
    email: str
    full_name: str
    role: RoleName
    organization: str | None
    time_zone: str
    is_active: bool
    tier: str | None = None
    served_organizations: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    working_hours: list[ShiftOut] = Field(default_factory=list)


class UserIn(StrictInput):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    full_name: Name
    role: RoleName
    organization: Code | None = Field(None, description="Required for requesters.")
    time_zone: Annotated[str, StringConstraints(max_length=64)] = "UTC"
    sees_organization_tickets: bool = False
    tier: Annotated[str, StringConstraints(max_length=8)] | None = Field(
        None, description="Staff only (default L1)."
    )
    skills: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=50
    )
    served_organizations: list[Code] = Field(default_factory=list, max_length=500)
    working_hours: list[ShiftIn] = Field(default_factory=list, max_length=50)
    password: Annotated[str, StringConstraints(max_length=128)] | None = None

    _zone = field_validator("time_zone")(_check_zone)


class UserListParams(CleanInput):
    role: RoleName | None = None
    organization: Code | None = None


def user_out(user: User, *, viewer: User | None = None) -> dict[str, Any]:
    """A person as ``viewer`` may see them: served organizations are listed (when a viewer
    is given) only as far as the viewer sees those organizations themself."""
    served: list[str] = []
    if viewer is not None:
        visible = set(policy.visible_organization_ids(viewer))
        served = [o.code for o in user.served_organizations.all() if o.pk in visible]
    profile = getattr(user, "agent_profile", None) if user.is_staff_member else None
    detailed = profile is not None and viewer is not None and viewer.is_staff_member
    return {
        "id": user.pk,
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "organization": user.organization.code if user.organization else None,
        "time_zone": user.time_zone,
        "is_active": user.is_active,
        "tier": profile.tier.code if profile else None,
        "served_organizations": served,
        "skills": [s.slug for s in profile.skills.all()] if detailed and profile else [],
        "working_hours": (
            [{"weekday": h.weekday, "start": h.start, "end": h.end} for h in profile.hours.all()]
            if detailed and profile
            else []
        ),
    }


def _organizations(request: HttpRequest, codes: list[str], field: str) -> list[Organization]:
    result = []
    for code in codes:
        try:
            result.append(core_services.organization_get(actor=actor(request), code=code))
        except NotFound:
            raise ValidationFailed.for_field(field, f"no organization {code!r}") from None
    return result


@router.get("/users", response={200: list[UserOut], **ERRORS}, tags=["people"])
def list_users(request: HttpRequest, params: Query[UserListParams]) -> list[dict[str, Any]]:
    reject_unknown_query(request, UserListParams)
    users = core_queries.user_list(
        actor=actor(request), role=params.role, organization=params.organization
    )
    return [user_out(u) for u in users[:1000]]


@router.post(
    "/users",
    response={409: Problem, 201: UserOut, **ERRORS},
    tags=["people"],
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_user(request: HttpRequest, payload: UserIn) -> HttpResponse:
    me = actor(request)
    user = tier_services.person_create(
        actor=me,
        email=payload.email,
        full_name=payload.full_name,
        role=payload.role,
        organization=(
            _organizations(request, [payload.organization], "organization")[0]
            if payload.organization
            else None
        ),
        time_zone=payload.time_zone,
        password=payload.password,
        sees_organization_tickets=payload.sees_organization_tickets,
        tier=tier_services.tier_by_code(payload.tier) if payload.tier else None,
        skills=tier_services.skills_by_slug(payload.skills),
        shifts=[tier_services.Shift(s.weekday, s.start, s.end) for s in payload.working_hours],
        served_organizations=_organizations(
            request, payload.served_organizations, "served_organizations"
        ),
    )
    user = core_queries.user_get(actor=me, user_id=user.pk)
    body = UserOut.model_validate(user_out(user, viewer=me)).model_dump()
    return json_response(201, body, Location=f"/api/v1/users/{user.pk}")


@router.get("/users/{user_id}", response={200: UserOut, **ERRORS}, tags=["people"])
def get_user(
    request: HttpRequest, user_id: Annotated[int, Field(ge=1, le=2**62)]
) -> dict[str, Any]:
    viewer = actor(request)
    return user_out(core_queries.user_get(actor=viewer, user_id=user_id), viewer=viewer)


class UserPatch(StrictInput):
    full_name: Name | None = None
    time_zone: Annotated[str, StringConstraints(max_length=64)] | None = None
    is_active: bool | None = None
    sees_organization_tickets: bool | None = None
    tier: Annotated[str, StringConstraints(max_length=8)] | None = None
    skills: list[Annotated[str, StringConstraints(max_length=50)]] | None = Field(
        None, max_length=50
    )
    served_organizations: list[Code] | None = Field(None, max_length=500)
    working_hours: list[ShiftIn] | None = Field(None, max_length=50)

    _zone = field_validator("time_zone")(lambda v: v if v is None else _check_zone(v))


PROFILE_FIELDS = ("full_name", "time_zone", "is_active", "sees_organization_tickets")


@router.patch(
    "/users/{user_id}",
    response={200: UserOut, **ERRORS},
    tags=["people"],
    summary="Change a person: profile, deactivation, and for staff tier, skills, shifts, "
    "served organizations",
)
def update_user(
    request: HttpRequest, user_id: Annotated[int, Field(ge=1, le=2**62)], payload: UserPatch
) -> Any:
    me = actor(request)
    user = core_queries.user_get(actor=me, user_id=user_id)
    # Profile and work changes land together or not at all.
    with transaction.atomic():
        given = _given(payload)
        profile = {k: v for k, v in given.items() if k in PROFILE_FIELDS}
        if profile:
            user = core_services.user_update(actor=me, user=user, **profile)
        work: dict[str, Any] = {}
        if "tier" in given:
            work["tier"] = tier_services.tier_by_code(given["tier"])
        if "skills" in given:
            work["skills"] = tier_services.skills_by_slug(given["skills"])
        if "working_hours" in given:
            work["shifts"] = [
                tier_services.Shift(s.weekday, s.start, s.end) for s in payload.working_hours or []
            ]
        if "served_organizations" in given:
            work["served_organizations"] = _organizations(
                request, given["served_organizations"], "served_organizations"
            )
        if work:
            tier_services.agent_update(actor=me, user=user, **work)
    return user_out(core_queries.user_get(actor=me, user_id=user_id), viewer=me)


@router.get("/me", response={200: UserOut, **ERRORS}, tags=["people"])
def me(request: HttpRequest) -> dict[str, Any]:
    return user_out(actor(request), viewer=actor(request))


# --- tokens ------------------------------------------------------------------------------


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class TokenIn(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]


def token_out(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.pk,
        "name": row.name,
        "prefix": row.prefix,
        "created_at": row.created_at,
        "last_used_at": row.last_used_at,
        "revoked_at": row.revoked_at,
    }


@router.get("/tokens", response={200: list[TokenOut], **ERRORS}, tags=["tokens"])
def list_tokens(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    return [token_out(t) for t in core_queries.token_list(actor=actor(request))]


@router.post("/tokens", response={201: TokenCreated, **ERRORS}, tags=["tokens"])
def create_token(request: HttpRequest, payload: TokenIn) -> HttpResponse:
    me = actor(request)
    row, token = core_services.token_create(actor=me, user=me, name=payload.name)
    body = TokenCreated.model_validate(token_out(row) | {"token": token}).model_dump(mode="json")
    return json_response(201, body, Cache_Control="no-store")


@router.delete("/tokens/{token_id}", response={204: None, **ERRORS}, tags=["tokens"])
def revoke_token(
    request: HttpRequest, token_id: Annotated[int, Field(ge=1, le=2**62)]
) -> HttpResponse:
    core_services.token_revoke(actor=actor(request), token_id=token_id)
    return HttpResponse(status=204)


# --- tiers and catalog -------------------------------------------------------------------


StrategyName = Literal["manual", "round_robin", "least_loaded", "skill_match"]


class TierOut(Schema):
    code: str
    name: str
    level: int
    description: str
    assignment_strategy: StrategyName
    managers: list[str]
    hourly_cost: int | None = Field(
        description="An hour of this tier's work, in whole units of the MSP's currency."
    )
    handling_minutes: int | None = Field(
        description="The time its agents typically spend on one ticket (the cost report)."
    )


class CategoryOut(Schema):
    id: int
    slug: str
    name: str
    description: str
    organization: str | None
    default_tier: str
    default_impact: int
    default_urgency: int
    required_skills: list[str]
    form_fields: list[dict[str, Any]] = Field(
        description="The category's own questions, asked when a ticket of it is opened."
    )
    is_active: bool


class CategoryIn(StrictInput):
    slug: Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    organization: Code | None = None
    default_tier: Annotated[str, StringConstraints(max_length=8)] = "L1"
    default_impact: Annotated[int, Field(ge=1, le=3)] = 2
    default_urgency: Annotated[int, Field(ge=1, le=3)] = 2
    required_skills: list[Annotated[str, StringConstraints(max_length=50)]] = Field(
        default_factory=list, max_length=50
    )
    form_fields: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=20,
        description="Questions: key, label, type, required, choices, help.",
    )


def category_out(category: Category) -> dict[str, Any]:
    return {
        "id": category.pk,
        "slug": category.slug,
        "name": category.name,
        "description": category.description,
        "organization": category.organization.code if category.organization else None,
        "default_tier": category.default_tier.code,
        "default_impact": category.default_impact,
        "default_urgency": category.default_urgency,
        "required_skills": [s.slug for s in category.required_skills.all()],
        "form_fields": category.form_fields,
        "is_active": category.is_active,
    }


class TierIn(StrictInput):
    code: Annotated[
        str, StringConstraints(min_length=1, max_length=8, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    ]
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    level: Annotated[int, Field(ge=1, le=62)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    assignment_strategy: StrategyName = "manual"
    managers: list[Annotated[str, StringConstraints(max_length=254)]] = Field(
        default_factory=list,
        max_length=50,
        description="Emails of managers notified on hierarchical escalation.",
    )
    hourly_cost: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        None, description="An hour of this tier's work, in whole units of the MSP's currency."
    )
    handling_minutes: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="The time its agents typically spend on one ticket."
    )


class TierPatch(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    level: Annotated[int, Field(ge=1, le=62)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    assignment_strategy: StrategyName | None = None
    managers: list[Annotated[str, StringConstraints(max_length=254)]] | None = Field(
        None, max_length=50, description="Emails of managers notified on hierarchical escalation."
    )
    hourly_cost: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        None, description="An hour of this tier's work, in whole units of the MSP's currency."
    )
    handling_minutes: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="The time its agents typically spend on one ticket."
    )


def tier_out(tier: Tier) -> dict[str, Any]:
    return {
        "code": tier.code,
        "name": tier.name,
        "level": tier.level,
        "description": tier.description,
        "assignment_strategy": tier.assignment_strategy,
        "managers": sorted(m.email for m in tier.managers.all()),
        "hourly_cost": tier.hourly_cost,
        "handling_minutes": tier.handling_minutes,
    }


TierCode = Annotated[str, StringConstraints(min_length=1, max_length=8)]


@router.post(
    "/tiers",
    response={201: TierOut, 409: Problem, **ERRORS},
    tags=["catalog"],
    summary="Add a tier (admins)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_tier(request: HttpRequest, payload: TierIn) -> HttpResponse:
    tier = tier_services.tier_create(
        actor=actor(request),
        code=payload.code,
        name=payload.name,
        level=payload.level,
        description=payload.description,
        assignment_strategy=payload.assignment_strategy,
        managers=_managers(payload.managers),
        hourly_cost=payload.hourly_cost,
        handling_minutes=payload.handling_minutes,
    )
    return json_response(201, tier_out(tier), Location=f"/api/v1/tiers/{tier.code}")


@router.patch(
    "/tiers/{tier_code}",
    response={200: TierOut, **ERRORS},
    tags=["catalog"],
    summary="Rename, reorder or redescribe a tier (admins); the code is permanent",
)
def update_tier(request: HttpRequest, tier_code: TierCode, payload: TierPatch) -> Any:
    tier = tier_queries.tier_list().filter(code=tier_code.upper()).first()
    if tier is None:
        raise NotFound(f"No tier {tier_code!r}.")
    changes = _given(payload, nullable=("hourly_cost", "handling_minutes"))
    if "managers" in changes:
        changes["managers"] = _managers(changes["managers"])
    return tier_out(tier_services.tier_update(actor=actor(request), tier=tier, **changes))


def _managers(emails: list[str]) -> list[User]:
    found = {u.email: u for u in User.objects.filter(email__in=[e.strip().lower() for e in emails])}
    people = []
    for email in emails:
        person = found.get(email.strip().lower())
        if person is None or person.role not in ("manager", "admin") or not person.is_active:
            raise ValidationFailed.for_field("managers", f"no manager {email!r}")
        people.append(person)
    return people


class CategoryPatch(StrictInput):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    default_tier: Annotated[str, StringConstraints(max_length=8)] | None = None
    default_impact: Annotated[int, Field(ge=1, le=3)] | None = None
    default_urgency: Annotated[int, Field(ge=1, le=3)] | None = None
    required_skills: list[Annotated[str, StringConstraints(max_length=50)]] | None = Field(
        None, max_length=50
    )
    form_fields: list[dict[str, Any]] | None = Field(
        None, max_length=20, description="Questions: key, label, type, required, choices, help"
    )
    is_active: bool | None = None


@router.patch(
    "/categories/{category_id}",
    response={200: CategoryOut, **ERRORS},
    tags=["catalog"],
    summary="Change a category (admins); slug and organization are permanent",
)
def update_category(
    request: HttpRequest,
    category_id: Annotated[int, Field(ge=1, le=2**62)],
    payload: CategoryPatch,
) -> Any:
    me = actor(request)
    category = tier_queries.category_list(actor=me).filter(pk=category_id).first()
    if category is None:
        raise NotFound("No such category.")
    changes = _given(payload)
    if "default_tier" in changes:
        changes["default_tier"] = tier_services.tier_by_code(changes["default_tier"])
    if "required_skills" in changes:
        changes["required_skills"] = tier_services.skills_by_slug(changes["required_skills"])
    tier_services.category_update(actor=me, category=category, **changes)
    return category_out(tier_queries.category_list(actor=me).get(pk=category_id))


@router.get("/tiers", response={200: list[TierOut], **ERRORS}, tags=["catalog"])
def list_tiers(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    return [tier_out(t) for t in tier_queries.tier_list()]


@router.get("/categories", response={200: list[CategoryOut], **ERRORS}, tags=["catalog"])
def list_categories(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    return [category_out(c) for c in tier_queries.category_list(actor=actor(request))]


@router.post(
    "/categories",
    response={409: Problem, 201: CategoryOut, **ERRORS},
    tags=["catalog"],
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_category(request: HttpRequest, payload: CategoryIn) -> HttpResponse:
    me = actor(request)
    organization = (
        _organizations(request, [payload.organization], "organization")[0]
        if payload.organization
        else None
    )
    category = tier_services.category_create(
        actor=me,
        slug=payload.slug,
        name=payload.name,
        description=payload.description,
        organization=organization,
        default_tier=tier_services.tier_by_code(payload.default_tier),
        default_impact=payload.default_impact,
        default_urgency=payload.default_urgency,
        required_skills=tier_services.skills_by_slug(payload.required_skills),
        form_fields=payload.form_fields,
    )
    category = tier_queries.category_list(actor=me).get(pk=category.pk)
    return json_response(201, CategoryOut.model_validate(category_out(category)).model_dump())


SkillSlug = Annotated[
    str, StringConstraints(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]
SkillName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
SkillRef = Annotated[str, StringConstraints(min_length=1, max_length=50)]


class SkillOut(Schema):
    slug: str
    name: str
    agent_count: int = Field(description="Staff members who have the skill.")
    category_count: int = Field(
        description="Categories that require it, of the catalog the caller sees."
    )


class SkillIn(StrictInput):
    slug: SkillSlug = Field(description="Permanent: lower case, digits, - and _.")
    name: SkillName


class SkillPatch(StrictInput):
    name: SkillName | None = None


def skill_out(skill: Skill) -> dict[str, Any]:
    """A skill from ``skill_usage``/``skill_get`` (which annotate the counts)."""
    return {
        "slug": skill.slug,
        "name": skill.name,
        "agent_count": skill.agent_count,  # type: ignore[attr-defined]
        "category_count": skill.category_count,  # type: ignore[attr-defined]
    }


@router.get(
    "/skills",
    response={200: list[SkillOut], **ERRORS},
    tags=["catalog"],
    summary="The skills, by slug, with how many agents have each and categories need it",
)
def list_skills(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    return [skill_out(s) for s in tier_queries.skill_usage(actor=actor(request))]


@router.post(
    "/skills",
    response={201: SkillOut, 409: Problem, **ERRORS},
    tags=["catalog"],
    summary="Add a skill (admins)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_skill(request: HttpRequest, payload: SkillIn) -> HttpResponse:
    me = actor(request)
    skill = tier_services.skill_create(actor=me, slug=payload.slug, name=payload.name)
    body = skill_out(tier_queries.skill_get(actor=me, slug=skill.slug))
    return json_response(201, body, Location=f"/api/v1/skills/{skill.slug}")


@router.get("/skills/{skill_slug}", response={200: SkillOut, **ERRORS}, tags=["catalog"])
def get_skill(request: HttpRequest, skill_slug: SkillRef) -> dict[str, Any]:
    return skill_out(tier_queries.skill_get(actor=actor(request), slug=skill_slug))


@router.patch(
    "/skills/{skill_slug}",
    response={200: SkillOut, **ERRORS},
    tags=["catalog"],
    summary="Rename a skill (admins); the slug is permanent",
)
def update_skill(request: HttpRequest, skill_slug: SkillRef, payload: SkillPatch) -> Any:
    me = actor(request)
    skill = tier_queries.skill_get(actor=me, slug=skill_slug)
    name = _given(payload).get("name", skill.name)  # nothing sent: still checks the role
    tier_services.skill_update(actor=me, skill=skill, name=name)
    return skill_out(tier_queries.skill_get(actor=me, slug=skill.slug))


@router.delete(
    "/skills/{skill_slug}",
    response={204: None, 409: Problem, **ERRORS},
    tags=["catalog"],
    summary="Remove a skill no agent has and no category requires (admins)",
)
def delete_skill(request: HttpRequest, skill_slug: SkillRef) -> HttpResponse:
    me = actor(request)
    tier_services.skill_delete(actor=me, skill=tier_queries.skill_get(actor=me, slug=skill_slug))
    return HttpResponse(status=204)
