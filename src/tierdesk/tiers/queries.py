"""Reads of tiers, the catalog and agents, scoped to what the actor may see."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet

from tierdesk.core import config, policy
from tierdesk.core.errors import NotFound
from tierdesk.core.models import STAFF_ROLES, Organization, User
from tierdesk.core.parse import as_id
from tierdesk.core.queries import user_scope
from tierdesk.tiers.models import AgentProfile, Category, RoutingRule, Skill, Tier


def tier_list() -> QuerySet[Tier]:
    return Tier.objects.all()


def _load_tiers() -> list[Tier]:
    return list(Tier.objects.order_by("level"))


def tiers_by_level() -> list[Tier]:
    """Every tier, lowest first, from the per-process configuration cache (shared objects:
    read, don't change them)."""
    return config.cached("tiers.by_level", _load_tiers)


def category_list(*, actor: User) -> QuerySet[Category]:
    """The MSP-wide catalog plus the categories of the organizations the actor sees."""
    return (
        Category.objects.filter(
            Q(organization__isnull=True) | Q(organization__in=policy.visible_organizations(actor))
        )
        .select_related("default_tier", "organization")
        .prefetch_related("required_skills")
    )


def _active_categories() -> tuple[dict[int, Category], dict[tuple[int | None, str], Category]]:
    rows = list(Category.objects.filter(is_active=True).select_related("default_tier"))
    return {c.pk: c for c in rows}, {(c.organization_id, c.slug): c for c in rows}


def category_for_organization(organization: Organization, ref: str | int) -> Category | None:
    """The active category ``ref`` (id or slug) usable on a ticket of ``organization``: from
    the MSP-wide catalog or that organization's own, never another client's. An
    organization's own category wins over a global one with the same slug. Read from the
    per-process configuration cache (shared objects: read, don't change them)."""
    by_id, by_slug = config.cached("tiers.active_categories", _active_categories)
    category_id = ref if isinstance(ref, int) else as_id(ref)
    if category_id is not None:
        found = by_id.get(category_id)
        return (
            found
            if found is not None and found.organization_id in (None, organization.pk)
            else None
        )
    slug = str(ref).strip().lower()
    return by_slug.get((organization.pk, slug)) or by_slug.get((None, slug))


def categories_for_organization(organization: Organization) -> list[Category]:
    """The active categories a ticket of ``organization`` may have (the MSP-wide catalog
    and the organization's own), by name; from the configuration cache."""
    by_id, _ = config.cached("tiers.active_categories", _active_categories)
    return sorted(
        (c for c in by_id.values() if c.organization_id in (None, organization.pk)),
        key=lambda c: c.name.lower(),
    )


def routing_rule_list(*, actor: User) -> QuerySet[RoutingRule]:
    """Rules staff may read: MSP-wide ones and those of organizations they serve, in the
    order they are checked within each scope. Requesters see none."""
    if not actor.is_active or actor.role not in STAFF_ROLES:
        return RoutingRule.objects.none()
    return (
        RoutingRule.objects.filter(
            Q(organization__isnull=True) | Q(organization__in=policy.visible_organizations(actor))
        )
        .select_related("organization", "set_tier", "set_category", "set_assignee")
        .order_by(F("organization_id").asc(nulls_last=True), "position", "id")
    )


def routing_rule_get(*, actor: User, rule_id: int) -> RoutingRule:
    rule = routing_rule_list(actor=actor).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No such routing rule.")
    return rule


def skill_list() -> QuerySet[Skill]:
    return Skill.objects.order_by("slug")


def skill_usage(*, actor: User) -> QuerySet[Skill]:
    """Every skill by slug, each annotated with ``agent_count`` (staff who have it) and
    ``category_count`` (categories that require it, counted only as far as the actor sees
    the catalog: MSP-wide ones and the visible organizations' own). One query. Requesters
    get none."""
    if not actor.is_active or actor.role not in STAFF_ROLES:
        return Skill.objects.none()
    seen = Q(categories__organization__isnull=True) | Q(
        categories__organization__in=policy.visible_organizations(actor)
    )
    return Skill.objects.annotate(
        agent_count=Count("agents", distinct=True),
        category_count=Count("categories", filter=seen, distinct=True),
    ).order_by("slug")


def skill_get(*, actor: User, slug: str) -> Skill:
    """The skill named ``slug`` (any case) with its counts, as ``skill_usage`` gives them;
    NotFound when there is none or the actor is no staff member."""
    skill = skill_usage(actor=actor).filter(slug=slug.strip().lower()).first()
    if skill is None:
        raise NotFound(f"No skill {slug!r}.")
    return skill


def tier_manager_candidates(*, actor: User) -> QuerySet[User]:
    """Active managers and admins the actor may see: who can be named a tier's manager."""
    return (
        user_scope(actor)
        .filter(is_active=True, role__in=("manager", "admin"))
        .order_by("full_name", "email")
    )


def routing_scope_rules(*, actor: User, organization: Organization | None) -> list[RoutingRule]:
    """One scope's rules (``organization``'s, or the MSP-wide ones) in the order they are
    checked, if the actor may see that scope; else none."""
    if organization is not None and not policy.can_see_organization(actor, organization.pk):
        return []
    return list(routing_rule_list(actor=actor).filter(organization=organization))


def requester_of(organization: Organization, email: str) -> User | None:
    """The active-or-not requester of ``organization`` with ``email``, else None (missing
    and another tenant's person look the same)."""
    found = User.objects.filter(email=email.strip().lower()).first()
    if found is None or found.role != "requester" or found.organization_id != organization.pk:
        return None
    return found


def users_by_email(emails: list[str]) -> dict[str, User]:
    """The people with these emails (as stored: lower case), by email."""
    wanted = [e.strip().lower() for e in emails]
    return {u.email: u for u in User.objects.filter(email__in=wanted)}


def agent_profile_of(user: User) -> AgentProfile | None:
    """The staff member's tier, skills and shifts (skills and shifts preloaded), or None
    for a requester or staff without a profile. The caller has checked that the actor may
    see ``user``."""
    return (
        AgentProfile.objects.filter(user=user)
        .select_related("tier")
        .prefetch_related("skills", "hours")
        .first()
    )
