"""Which articles an actor may read: one definition, used by the lists (as a Q) and by the
search index's SQL (as a WHERE clause), so a search can never show what a list would not.

- Requesters: published articles for all requesters, and those for their own organization.
- Agents and managers: every status; public and internal articles, those of the
  organizations they serve, and tier articles up to their own tier (managers: all tiers).
- Admins: everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from tierdesk.core import policy
from tierdesk.core.models import Role, User
from tierdesk.kb.models import ArticleStatus, Audience
from tierdesk.tiers.models import AgentProfile
from tierdesk.tiers.queries import tiers_by_level


@dataclass(frozen=True)
class KbScope:
    statuses: tuple[str, ...]
    everything: bool = False
    organization_ids: tuple[int, ...] = ()
    internal: bool = False
    tier_ids: tuple[int, ...] = ()  # tier-audience articles for these lowest tiers

    def narrowed(self, statuses: Sequence[str]) -> KbScope:
        """The same reader, fewer statuses (never more than they may read)."""
        keep = tuple(s for s in self.statuses if s in statuses)
        return KbScope(keep, self.everything, self.organization_ids, self.internal, self.tier_ids)

    def as_q(self) -> Q:
        where = Q(status__in=self.statuses)
        if self.everything:
            return where
        audiences = Q(audience=Audience.PUBLIC)
        if self.organization_ids:
            audiences |= Q(
                audience=Audience.ORGANIZATION, organization_id__in=self.organization_ids
            )
        if self.internal:
            audiences |= Q(audience=Audience.INTERNAL)
        if self.tier_ids:
            audiences |= Q(audience=Audience.TIER, min_tier_id__in=self.tier_ids)
        return where & audiences

    def as_sql(self, alias: str) -> tuple[str, list[Any]]:
        """The same condition as ``as_q`` for raw SQL over ``kb_article AS alias``."""
        params: list[Any] = list(self.statuses)
        where = f"{alias}.status IN ({_marks(self.statuses)})" if self.statuses else "1 = 0"
        if self.everything:
            return where, params
        parts = [f"{alias}.audience = %s"]
        params.append(Audience.PUBLIC.value)
        if self.organization_ids:
            parts.append(
                f"({alias}.audience = %s AND {alias}.organization_id IN "
                f"({_marks(self.organization_ids)}))"
            )
            params += [Audience.ORGANIZATION.value, *self.organization_ids]
        if self.internal:
            parts.append(f"{alias}.audience = %s")
            params.append(Audience.INTERNAL.value)
        if self.tier_ids:
            parts.append(
                f"({alias}.audience = %s AND {alias}.min_tier_id IN ({_marks(self.tier_ids)}))"
            )
            params += [Audience.TIER.value, *self.tier_ids]
        return f"{where} AND ({' OR '.join(parts)})", params


def _marks(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


ALL_STATUSES = tuple(ArticleStatus.values)


def scope_for(actor: User) -> KbScope:
    if not actor.is_active:
        return KbScope(statuses=())
    if actor.role == Role.ADMIN:
        return KbScope(ALL_STATUSES, everything=True)
    if actor.role == Role.REQUESTER:
        own = (actor.organization_id,) if actor.organization_id is not None else ()
        return KbScope((ArticleStatus.PUBLISHED.value,), organization_ids=own)
    tiers = tiers_by_level()
    if actor.role == Role.MANAGER:
        reach = tiers
    else:
        level = (
            AgentProfile.objects.filter(user=actor).values_list("tier__level", flat=True).first()
            or 0
        )
        reach = [t for t in tiers if t.level <= level]
    return KbScope(
        ALL_STATUSES,
        organization_ids=tuple(policy.visible_organization_ids(actor)),
        internal=True,
        tier_ids=tuple(t.pk for t in reach),
    )
