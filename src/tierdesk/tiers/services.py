"""The only code that changes tiers, the catalog and agents' profiles."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from tierdesk.core import clock, policy
from tierdesk.core.audit import AuditAction, record, record_and_emit
from tierdesk.core.errors import Conflict, NotFound, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Organization, User
from tierdesk.core.services import apply_changes, full_clean_or_raise, user_create
from tierdesk.core.unset import UNSET
from tierdesk.tiers.form_fields import check_definitions
from tierdesk.tiers.models import (
    AgentProfile,
    AssignmentStrategy,
    Category,
    RoutingRule,
    Skill,
    Tier,
    WorkingHours,
)


@dataclass(frozen=True)
class Shift:
    weekday: int  # 0 = Monday
    start: dt.time
    end: dt.time


# Codes a tier may not have: the console names its other queues so (/console/queue/mine).
RESERVED_TIER_CODES = frozenset({"MINE", "BREACHED"})
TIER_CODE = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")


@transaction.atomic
def tier_create(
    *,
    actor: User | None,
    code: str,
    name: str,
    level: int,
    description: str = "",
    assignment_strategy: str = AssignmentStrategy.MANUAL,
    managers: Iterable[User] = (),
    hourly_cost: int | None = None,
    handling_minutes: int | None = None,
) -> Tier:
    """Add a tier (admins). ``level`` orders the tiers: escalation goes to a higher level.
    The code is permanent: tickets, rules, reports and the tier's queue name it."""
    if actor is not None:
        policy.require(actor, "catalog.manage")
    code = code.strip().upper()
    if not TIER_CODE.match(code):
        raise ValidationFailed.for_field("code", "1-8 letters or digits, starting with a letter")
    if code in RESERVED_TIER_CODES:
        raise ValidationFailed.for_field("code", f"{code} names another queue; choose another")
    tier = Tier(
        code=code,
        name=name.strip(),
        level=level,
        description=description,
        assignment_strategy=assignment_strategy,
        hourly_cost=hourly_cost,
        handling_minutes=handling_minutes,
    )
    full_clean_or_raise(tier)
    people = _check_managers(managers)
    tier.save()
    tier.managers.set(people)
    record(
        actor=actor,
        action=AuditAction.TIER_CREATED,
        target_type="tier",
        target_id=tier.pk,
        changes={
            "code": tier.code,
            "level": tier.level,
            "name": tier.name,
            "assignment_strategy": tier.assignment_strategy,
            "managers": sorted(p.email for p in people),
            "hourly_cost": tier.hourly_cost,
            "handling_minutes": tier.handling_minutes,
        },
    )
    return tier


def _check_managers(managers: Iterable[User]) -> list[User]:
    people = list(managers)
    if any(p.role not in ("manager", "admin") or not p.is_active for p in people):
        raise ValidationFailed.for_field("managers", "only active managers and admins")
    return people


@transaction.atomic
def tier_update(
    *,
    actor: User,
    tier: Tier,
    name: str = UNSET,
    level: int = UNSET,
    description: str = UNSET,
    assignment_strategy: str = UNSET,
    managers: Iterable[User] = UNSET,
    hourly_cost: int | None = UNSET,
    handling_minutes: int | None = UNSET,
) -> Tier:
    """Rename, reorder or redescribe a tier, choose how it assigns tickets, who manages it
    and what its work costs (admins). Its code is permanent: tickets, rules and reports
    name it."""
    policy.require(actor, "catalog.manage")
    tier = Tier.objects.select_for_update().get(pk=tier.pk)
    changes = apply_changes(
        tier,
        {
            "name": name,
            "level": level,
            "description": description,
            "assignment_strategy": assignment_strategy,
            "hourly_cost": hourly_cost,
            "handling_minutes": handling_minutes,
        },
    )
    if managers is not UNSET:
        people = _check_managers(managers)
        _replace_set(changes, "managers", tier.managers, people, "email")
    if not changes:
        return tier
    record(
        actor=actor,
        action=AuditAction.TIER_UPDATED,
        target_type="tier",
        target_id=tier.pk,
        changes=changes,
    )
    return tier


def tier_by_code(code: str) -> Tier:
    tier = Tier.objects.filter(code=code.strip().upper()).first()
    if tier is None:
        known = ", ".join(Tier.objects.values_list("code", flat=True))
        raise ValidationFailed.for_field("tier", f"no tier {code!r} (known: {known})")
    return tier


def skills_by_slug(slugs: Iterable[str]) -> list[Skill]:
    wanted = [s.strip().lower() for s in slugs if s.strip()]
    found = {s.slug: s for s in Skill.objects.filter(slug__in=wanted)}
    missing = [s for s in wanted if s not in found]
    if missing:
        raise ValidationFailed.for_field("skills", f"unknown skills: {', '.join(missing)}")
    return [found[s] for s in wanted]


def _validate_shifts(shifts: Sequence[Shift]) -> None:
    for shift in shifts:
        if not 0 <= shift.weekday <= 6:
            raise ValidationFailed.for_field("working_hours", "weekday must be 0 (Mon) to 6 (Sun)")
        if shift.end <= shift.start:
            raise ValidationFailed.for_field("working_hours", "a shift must end after it starts")
    by_day: dict[int, list[Shift]] = {}
    for shift in shifts:
        by_day.setdefault(shift.weekday, []).append(shift)
    for day in by_day.values():
        day.sort(key=lambda s: s.start)
        for a, b in itertools.pairwise(day):
            if b.start < a.end:
                raise ValidationFailed.for_field("working_hours", "shifts overlap on one day")


@transaction.atomic
def agent_create(
    *,
    actor: User | None,
    email: str,
    full_name: str,
    role: str,
    tier: Tier,
    skills: Iterable[Skill] = (),
    shifts: Sequence[Shift] = (),
    served_organizations: Iterable[Organization] = (),
    time_zone: str = "UTC",
    password: str | None = None,
) -> User:
    """Create a staff member (agent, manager or admin) with their tier, skills and shifts."""
    if role not in STAFF_ROLES:
        raise ValidationFailed.for_field("role", "agent, manager or admin")
    _validate_shifts(shifts)
    user = user_create(
        actor=actor,
        email=email,
        full_name=full_name,
        role=role,
        served_organizations=served_organizations,
        time_zone=time_zone,
        password=password,
    )
    profile = AgentProfile.objects.create(user=user, tier=tier)
    profile.skills.set(list(skills))
    WorkingHours.objects.bulk_create(
        WorkingHours(agent=profile, weekday=s.weekday, start=s.start, end=s.end) for s in shifts
    )
    return user


@transaction.atomic
def person_create(
    *,
    actor: User | None,
    email: str,
    full_name: str,
    role: str,
    organization: Organization | None = None,
    time_zone: str = "UTC",
    password: str | None = None,
    sees_organization_tickets: bool = False,
    tier: Tier | None = None,
    skills: Iterable[Skill] = (),
    shifts: Sequence[Shift] = (),
    served_organizations: Iterable[Organization] = (),
) -> User:
    """Create anyone: a requester of ``organization``, or staff with their tier (default:
    the lowest), skills, shifts and served organizations. The one entry point for the API
    and the CLI, so both refuse the same mixtures."""
    skills, served = list(skills), list(served_organizations)
    if role not in STAFF_ROLES:
        if tier is not None or skills or shifts or served:
            raise ValidationFailed.for_field(
                "role", "requesters have no tier, skills, shifts or served organizations"
            )
        return user_create(
            actor=actor,
            email=email,
            full_name=full_name,
            role=role,
            organization=organization,
            time_zone=time_zone,
            password=password,
            sees_organization_tickets=sees_organization_tickets,
        )
    if organization is not None:
        raise ValidationFailed.for_field("organization", "staff do not belong to a client")
    tier = tier or Tier.objects.order_by("level").first()
    if tier is None:
        raise ValidationFailed.for_field("tier", "no tiers are configured")
    return agent_create(
        actor=actor,
        email=email,
        full_name=full_name,
        role=role,
        tier=tier,
        skills=skills,
        shifts=shifts,
        served_organizations=served,
        time_zone=time_zone,
        password=password,
    )


@transaction.atomic
def agent_update(
    *,
    actor: User,
    user: User,
    tier: Tier = UNSET,
    skills: Iterable[Skill] = UNSET,
    shifts: Sequence[Shift] = UNSET,
    served_organizations: Iterable[Organization] = UNSET,
) -> User:
    """Change what a staff member works on: tier, skills, shifts and the organizations they
    serve (admins only). Returns the user; writes nothing when nothing differs."""
    policy.require(actor, "user.create_staff")
    if user.role not in STAFF_ROLES:
        raise ValidationFailed.for_field("role", "only staff have a tier, skills and shifts")
    profile = AgentProfile.objects.select_for_update().get(user=user)
    changes: dict[str, dict[str, Any]] = {}
    if tier is not UNSET and tier.pk != profile.tier_id:
        changes["tier"] = {"old": profile.tier.code, "new": tier.code}
        profile.tier = tier
        profile.save(update_fields=["tier"])
    if skills is not UNSET:
        _replace_set(changes, "skills", profile.skills, list(skills), "slug")
    if shifts is not UNSET:
        _validate_shifts(shifts)
        old_hours = [_shift_text(h.weekday, h.start, h.end) for h in profile.hours.all()]
        new_hours = [
            _shift_text(s.weekday, s.start, s.end)
            for s in sorted(shifts, key=lambda s: (s.weekday, s.start))
        ]
        if old_hours != new_hours:
            changes["working_hours"] = {"old": old_hours, "new": new_hours}
            profile.hours.all().delete()
            WorkingHours.objects.bulk_create(
                WorkingHours(agent=profile, weekday=s.weekday, start=s.start, end=s.end)
                for s in shifts
            )
    if served_organizations is not UNSET:
        _replace_set(
            changes,
            "served_organizations",
            user.served_organizations,
            list(served_organizations),
            "code",
        )
    if changes:
        record_and_emit(
            actor=actor,
            action=AuditAction.AGENT_UPDATED,
            target_type="user",
            target_id=user.pk,
            organization=None,
            changes=changes,
            payload={"email": user.email, "changes": changes},
        )
    return user


def _replace_set(
    changes: dict[str, dict[str, Any]], field: str, manager: Any, new: list[Any], key: str
) -> None:
    """Replace a many-to-many set when it differs, noting old and new by ``key``
    (slug or code) in ``changes``."""
    old_keys = sorted(manager.values_list(key, flat=True))
    new_keys = sorted(getattr(obj, key) for obj in new)
    if old_keys != new_keys:
        changes[field] = {"old": old_keys, "new": new_keys}
        manager.set(new)


def _shift_text(weekday: int, start: dt.time, end: dt.time) -> str:
    return f"{weekday} {start:%H:%M}-{end:%H:%M}"


@transaction.atomic
def category_create(
    *,
    actor: User | None,
    slug: str,
    name: str,
    default_tier: Tier,
    default_impact: int = 2,
    default_urgency: int = 2,
    required_skills: Iterable[Skill] = (),
    organization: Organization | None = None,
    description: str = "",
    form_fields: list[dict[str, Any]] | None = None,
) -> Category:
    """Add a catalog entry, MSP-wide (``organization`` None) or for one client, with its
    own questions for new tickets (``form_fields``, see tiers.form_fields)."""
    if actor is not None:
        policy.require(actor, "catalog.manage")
    category = Category(
        form_fields=check_definitions(form_fields),
        organization=organization,
        slug=slug.strip().lower(),
        name=name.strip(),
        description=description,
        default_tier=default_tier,
        default_impact=default_impact,
        default_urgency=default_urgency,
    )
    # Said about the slug, not as the constraint's name: the catalog's slugs are unique.
    if Category.objects.filter(organization=organization, slug=category.slug).exists():
        raise ValidationFailed.for_field("slug", "this catalog already has a category so named")
    full_clean_or_raise(category)
    category.save()
    category.required_skills.set(list(required_skills))
    summary = {"slug": category.slug, "default_tier": default_tier.code}
    record_and_emit(
        actor=actor,
        action=AuditAction.CATEGORY_CREATED,
        target_type="category",
        target_id=category.pk,
        organization=organization,
        changes=summary,
        payload=summary,
    )
    return category


@transaction.atomic
def category_update(
    *,
    actor: User,
    category: Category,
    name: str = UNSET,
    description: str = UNSET,
    default_tier: Tier = UNSET,
    default_impact: int = UNSET,
    default_urgency: int = UNSET,
    required_skills: Iterable[Skill] = UNSET,
    is_active: bool = UNSET,
    form_fields: list[dict[str, Any]] = UNSET,
) -> Category:
    """Change a catalog entry (admins). Its slug and organization are permanent; an inactive
    category takes no new tickets and keeps its old ones."""
    policy.require(actor, "catalog.manage")
    category = Category.objects.select_for_update().get(pk=category.pk)
    changes = apply_changes(
        category,
        {
            "name": name,
            "description": description,
            "default_tier": default_tier,
            "default_impact": default_impact,
            "default_urgency": default_urgency,
            "is_active": is_active,
            "form_fields": UNSET if form_fields is UNSET else check_definitions(form_fields),
        },
    )
    if required_skills is not UNSET:
        _replace_set(
            changes, "required_skills", category.required_skills, list(required_skills), "slug"
        )
    if changes:
        record_and_emit(
            actor=actor,
            action=AuditAction.CATEGORY_UPDATED,
            target_type="category",
            target_id=category.pk,
            organization=category.organization,
            changes=changes,
            payload={"slug": category.slug, "changes": changes},
        )
    return category


# --- routing rules ---------------------------------------------------------------------------

ROUTING_PRIORITIES = ("P1", "P2", "P3", "P4")
ROUTING_SOURCES = ("portal", "api", "email", "phone", "monitoring", "chat")
MAX_LIST = 50


@dataclass(frozen=True)
class RuleConditions:
    """What a rule matches, as objects (the API and CLI resolve names to these)."""

    categories: Sequence[Category] = ()
    organizations: Sequence[Organization] = ()
    requesters: Sequence[User] = ()
    priorities: Sequence[str] = ()
    sources: Sequence[str] = ()
    keywords: Sequence[str] = ()


def _require_rule_scope(actor: User, organization: Organization | None) -> None:
    policy.require_config_scope(actor, organization, "routing", "routing rules")


def _category_in_scope(field: str, category: Category, organization: Organization | None) -> None:
    # A rule may only name what its own tenant can use: MSP-wide catalog entries, or the
    # organization's own. Another client's category is reported as missing.
    if category.organization_id not in (None, organization.pk if organization else None):
        raise ValidationFailed.for_field(field, f"no such category {category.slug!r}")


def _conditions_json(
    conditions: RuleConditions, organization: Organization | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("categories", "organizations", "requesters", "priorities", "sources", "keywords"):
        if len(getattr(conditions, name)) > MAX_LIST:
            raise ValidationFailed.for_field(f"conditions.{name}", f"at most {MAX_LIST} entries")
    for category in conditions.categories:
        _category_in_scope("conditions.categories", category, organization)
    if conditions.organizations and organization is not None:
        raise ValidationFailed.for_field(
            "conditions.organizations",
            "only MSP-wide rules match on organization; this rule belongs to one already",
        )
    for person in conditions.requesters:
        if person.role != "requester" or (
            organization is not None and person.organization_id != organization.pk
        ):
            raise ValidationFailed.for_field(
                "conditions.requesters", f"no such requester {person.email.lower()!r} in this scope"
            )
    for value, allowed, name in (
        (conditions.priorities, ROUTING_PRIORITIES, "priorities"),
        (conditions.sources, ROUTING_SOURCES, "sources"),
    ):
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValidationFailed.for_field(
                f"conditions.{name}", f"unknown {bad[0]!r}; one of {', '.join(allowed)}"
            )
    keywords = [k.strip() for k in conditions.keywords]
    if any(not k or len(k) > 100 for k in keywords):
        raise ValidationFailed.for_field("conditions.keywords", "each 1 to 100 characters")
    if conditions.categories:
        out["categories"] = sorted({c.pk for c in conditions.categories})
    if conditions.organizations:
        out["organizations"] = sorted({o.pk for o in conditions.organizations})
    if conditions.requesters:
        out["requesters"] = sorted({p.pk for p in conditions.requesters})
    if conditions.priorities:
        out["priorities"] = sorted(set(conditions.priorities))
    if conditions.sources:
        out["sources"] = sorted(set(conditions.sources))
    if keywords:
        out["keywords"] = sorted(set(keywords), key=keywords.index)
    return out


def _check_rule_actions(rule: RoutingRule) -> None:
    org = rule.organization
    if (
        not (rule.set_tier or rule.set_category or rule.set_priority or rule.set_assignee)
        and not rule.add_tags
    ):
        raise ValidationFailed.for_field("actions", "a rule needs at least one action")
    if rule.set_category is not None:
        _category_in_scope("actions.category", rule.set_category, org)
        if not rule.set_category.is_active:
            raise ValidationFailed.for_field("actions.category", "the category is inactive")
    if rule.set_priority and rule.set_priority not in ROUTING_PRIORITIES:
        raise ValidationFailed.for_field("actions.priority", "P1, P2, P3 or P4")
    tags = rule.add_tags or []
    if len(tags) > 20 or any(not isinstance(t, str) or not t.strip() or len(t) > 50 for t in tags):
        raise ValidationFailed.for_field("actions.tags", "at most 20 tags of 1 to 50 characters")
    assignee = rule.set_assignee
    if assignee is not None:
        serves = assignee.role in STAFF_ROLES and assignee.is_active
        if serves and org is not None and assignee.role != "admin":
            serves = assignee.served_organizations.filter(pk=org.pk).exists()
        if not serves:
            raise ValidationFailed.for_field(
                "actions.assignee", "no such agent serving this organization"
            )
        # Contradictory: routing to one tier and handing the ticket to an agent of another.
        target = rule.set_tier or (rule.set_category.default_tier if rule.set_category else None)
        profile = AgentProfile.objects.filter(user=assignee).select_related("tier").first()
        if target is not None and profile is not None and profile.tier_id != target.pk:
            raise ValidationFailed.for_field(
                "actions.assignee",
                f"{assignee.email} works in {profile.tier.code}, but the rule routes to "
                f"{target.code}",
            )


def _rule_summary(rule: RoutingRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "position": rule.position,
        "is_active": rule.is_active,
        "conditions": rule.conditions,
        "tier": rule.set_tier.code if rule.set_tier else None,
        "category": rule.set_category.slug if rule.set_category else None,
        "priority": rule.set_priority or None,
        "assignee_id": rule.set_assignee_id,
        "tags": rule.add_tags,
    }


def _clean_name(name: str) -> str:
    cleaned = name.replace("\x00", "").strip()
    if not cleaned or len(cleaned) > 100:
        raise ValidationFailed.for_field("name", "1 to 100 characters")
    return cleaned


@transaction.atomic
def routing_rule_create(
    *,
    actor: User,
    name: str,
    organization: Organization | None = None,
    conditions: RuleConditions = RuleConditions(),
    tier: Tier | None = None,
    category: Category | None = None,
    priority: str = "",
    assignee: User | None = None,
    tags: Sequence[str] = (),
    position: int | None = None,
    is_active: bool = True,
) -> RoutingRule:
    """Add a routing rule for one organization or, for admins, MSP-wide. Without a
    ``position`` it goes last in its scope."""
    _require_rule_scope(actor, organization)
    now = clock.now()
    if position is None:
        last = (
            RoutingRule.objects.filter(organization=organization)
            .order_by("-position")
            .values_list("position", flat=True)
            .first()
        )
        position = (last or 0) + 10
    rule = RoutingRule(
        organization=organization,
        name=_clean_name(name),
        position=position,
        is_active=is_active,
        conditions=_conditions_json(conditions, organization),
        set_tier=tier,
        set_category=category,
        set_priority=priority or "",
        set_assignee=assignee,
        add_tags=[t.strip().lower() for t in tags],
        created_at=now,
        updated_at=now,
    )
    _check_rule_actions(rule)
    full_clean_or_raise(rule)
    rule.save()
    summary = _rule_summary(rule)
    record_and_emit(
        actor=actor,
        action=AuditAction.ROUTING_RULE_CREATED,
        target_type="routing_rule",
        target_id=rule.pk,
        organization=organization,
        changes=summary,
        payload=summary | {"id": rule.pk},
    )
    return rule


@transaction.atomic
def routing_rule_update(
    *,
    actor: User,
    rule: RoutingRule,
    name: str = UNSET,
    conditions: RuleConditions = UNSET,
    tier: Tier | None = UNSET,
    category: Category | None = UNSET,
    priority: str = UNSET,
    assignee: User | None = UNSET,
    tags: Sequence[str] = UNSET,
    position: int = UNSET,
    is_active: bool = UNSET,
) -> RoutingRule:
    """Change a rule; only the given fields change. Its scope (organization) is permanent."""
    _require_rule_scope(actor, rule.organization)
    rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    before = _rule_summary(rule)
    if name is not UNSET:
        rule.name = _clean_name(name)
    if conditions is not UNSET:
        rule.conditions = _conditions_json(conditions, rule.organization)
    if tier is not UNSET:
        rule.set_tier = tier
    if category is not UNSET:
        rule.set_category = category
    if priority is not UNSET:
        rule.set_priority = priority or ""
    if assignee is not UNSET:
        rule.set_assignee = assignee
    if tags is not UNSET:
        rule.add_tags = [t.strip().lower() for t in tags]
    if position is not UNSET:
        rule.position = position
    if is_active is not UNSET:
        rule.is_active = is_active
    _check_rule_actions(rule)
    after = _rule_summary(rule)
    changes = {k: {"old": before[k], "new": v} for k, v in after.items() if before[k] != v}
    if not changes:
        return rule
    rule.updated_at = clock.now()
    full_clean_or_raise(rule)
    rule.save()
    record_and_emit(
        actor=actor,
        action=AuditAction.ROUTING_RULE_UPDATED,
        target_type="routing_rule",
        target_id=rule.pk,
        organization=rule.organization,
        changes=changes,
        payload={"id": rule.pk, "changes": changes},
    )
    return rule


@transaction.atomic
def routing_rule_delete(*, actor: User, rule: RoutingRule) -> None:
    _require_rule_scope(actor, rule.organization)
    summary = _rule_summary(rule)
    rule_id, organization = rule.pk, rule.organization
    rule.delete()
    record_and_emit(
        actor=actor,
        action=AuditAction.ROUTING_RULE_DELETED,
        target_type="routing_rule",
        target_id=rule_id,
        organization=organization,
        changes=summary,
        payload=summary | {"id": rule_id},
    )


STALE_ORDER = (
    "The routing rules changed since you loaded them (someone added, removed or moved a "
    "rule). Nothing was moved: look at the current order and move the rule again."
)


@transaction.atomic
def routing_rule_reorder(
    *,
    actor: User,
    organization: Organization | None,
    rule_ids: Sequence[int],
    expected: Sequence[int] | None = None,
) -> list[RoutingRule]:
    """Put every rule of one scope (``organization``'s, or the MSP-wide ones for None) in
    the order ``rule_ids`` gives, as positions 10, 20, 30 … Returns the rules in that order.

    ``rule_ids`` must name exactly the scope's rules, each once; ``expected`` is the order
    the caller last saw. Either one differing from what is stored now (a rule added,
    removed or moved meanwhile) raises Conflict and changes nothing: an order built on a
    stale list would silently undo someone else's change."""
    _require_rule_scope(actor, organization)
    # Locked for the transaction: two reorders of one scope run one after the other, and
    # the second sees the first's order (and so refuses its stale ``expected``).
    rules = list(
        # of=self: PostgreSQL locks no outer-joined rows (the rule's tier and category)
        RoutingRule.objects.select_for_update(of=("self",))
        .filter(organization=organization)
        .select_related("set_tier", "set_category")
        .order_by("position", "id")
    )
    current = [r.pk for r in rules]
    wanted = list(rule_ids)
    if expected is not None and list(expected) != current:
        raise Conflict(STALE_ORDER)
    if len(set(wanted)) != len(wanted) or sorted(wanted) != sorted(current):
        raise Conflict(STALE_ORDER)
    by_id = {r.pk: r for r in rules}
    now = clock.now()
    for index, rule_id in enumerate(wanted, start=1):
        rule = by_id[rule_id]
        position = index * 10
        if rule.position == position:
            continue
        changes = {"position": {"old": rule.position, "new": position}}
        rule.position = position
        rule.updated_at = now
        rule.save(update_fields=["position", "updated_at"])
        record_and_emit(
            actor=actor,
            action=AuditAction.ROUTING_RULE_UPDATED,
            target_type="routing_rule",
            target_id=rule.pk,
            organization=organization,
            changes=changes,
            payload={"id": rule.pk, "changes": changes},
        )
    return [by_id[i] for i in wanted]


# --- skills ----------------------------------------------------------------------------------

SKILL_SLUG_TAKEN = "a skill with this slug exists"


@transaction.atomic
def skill_create(*, actor: User | None, slug: str, name: str) -> Skill:
    """Add a skill (admins; ``actor`` None is the system). The slug is stored in lower case
    and is permanent: the API, the CLI and categories name the skill by it."""
    if actor is not None:
        policy.require(actor, "catalog.manage")
    skill = Skill(slug=slug.strip().lower(), name=_clean_name(name))
    # Said about the slug, in words, before the model's generic uniqueness message.
    if Skill.objects.filter(slug=skill.slug).exists():
        raise ValidationFailed.for_field("slug", SKILL_SLUG_TAKEN)
    full_clean_or_raise(skill)
    try:
        # A savepoint: a concurrent create of the same slug loses here with the same
        # message, and the caller's transaction stays usable.
        with transaction.atomic():
            skill.save()
    except IntegrityError:
        raise ValidationFailed.for_field("slug", SKILL_SLUG_TAKEN) from None
    record(
        actor=actor,
        action=AuditAction.SKILL_CREATED,
        target_type="skill",
        target_id=skill.pk,
        changes={"slug": skill.slug, "name": skill.name},
    )
    return skill


def _lock_skill(skill: Skill) -> Skill:
    """The skill's row, locked until the transaction ends; NotFound when it was deleted
    since the caller loaded it."""
    locked = Skill.objects.select_for_update().filter(pk=skill.pk).first()
    if locked is None:
        raise NotFound(f"No skill {skill.slug!r}.")
    return locked


@transaction.atomic
def skill_update(*, actor: User, skill: Skill, name: str) -> Skill:
    """Rename a skill (admins). Its slug is permanent. Returns the skill; writes nothing
    when the name is unchanged."""
    policy.require(actor, "catalog.manage")
    skill = _lock_skill(skill)
    changes = apply_changes(skill, {"name": _clean_name(name)})
    if changes:
        record(
            actor=actor,
            action=AuditAction.SKILL_UPDATED,
            target_type="skill",
            target_id=skill.pk,
            changes=changes,
        )
    return skill


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@transaction.atomic
def skill_delete(*, actor: User, skill: Skill) -> None:
    """Remove a skill (admins) that no agent has and no category requires; otherwise
    Conflict, saying how many of each still use it. Deleting would silently take it off
    them, and skill-match assignment would then pick differently."""
    policy.require(actor, "catalog.manage")
    # Locked: an agent or category given the skill at this moment has either committed
    # (and is counted below) or waits for this transaction and then fails its reference
    # check; none is left naming a deleted skill.
    skill = _lock_skill(skill)
    agents = skill.agents.count()
    categories = skill.categories.count()
    if agents or categories:
        raise Conflict(
            f"The skill {skill.slug!r} is in use: "
            f"{_count(agents, 'agent has', 'agents have')} it and "
            f"{_count(categories, 'category requires', 'categories require')} it. "
            "Take it off them first."
        )
    summary = {"slug": skill.slug, "name": skill.name}
    skill_id = skill.pk
    skill.delete()
    record(
        actor=actor,
        action=AuditAction.SKILL_DELETED,
        target_type="skill",
        target_id=skill_id,
        changes=summary,
    )
