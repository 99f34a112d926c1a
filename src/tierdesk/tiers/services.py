"""The only code that changes tiers, the catalog and agents' profiles."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from tierdesk.core import policy
from tierdesk.core.audit import AuditAction, record, record_and_emit
from tierdesk.core.errors import ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Organization, User
from tierdesk.core.services import apply_changes, full_clean_or_raise, user_create
from tierdesk.core.unset import UNSET
from tierdesk.tiers.models import AgentProfile, Category, Skill, Tier, WorkingHours


@dataclass(frozen=True)
class Shift:
    weekday: int  # 0 = Monday
    start: dt.time
    end: dt.time


@transaction.atomic
def tier_create(
    *, actor: User | None, code: str, name: str, level: int, description: str = ""
) -> Tier:
    """Add a tier (admins). ``level`` orders the tiers: escalation goes to a higher level."""
    if actor is not None:
        policy.require(actor, "catalog.manage")
    tier = Tier(code=code.strip().upper(), name=name.strip(), level=level, description=description)
    full_clean_or_raise(tier)
    tier.save()
    record(
        actor=actor,
        action=AuditAction.TIER_CREATED,
        target_type="tier",
        target_id=tier.pk,
        changes={"code": tier.code, "level": tier.level, "name": tier.name},
    )
    return tier


@transaction.atomic
def tier_update(
    *,
    actor: User,
    tier: Tier,
    name: str = UNSET,
    level: int = UNSET,
    description: str = UNSET,
) -> Tier:
    """Rename, reorder or redescribe a tier (admins). Its code is permanent: tickets, rules
    and reports name it."""
    policy.require(actor, "catalog.manage")
    tier = Tier.objects.select_for_update().get(pk=tier.pk)
    changes = apply_changes(tier, {"name": name, "level": level, "description": description})
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
) -> Category:
    """Add a catalog entry, MSP-wide (``organization`` None) or for one client."""
    if actor is not None:
        policy.require(actor, "catalog.manage")
    category = Category(
        organization=organization,
        slug=slug.strip().lower(),
        name=name.strip(),
        description=description,
        default_tier=default_tier,
        default_impact=default_impact,
        default_urgency=default_urgency,
    )
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
