"""Assignment: which agent of a tier gets a ticket, by the tier's strategy.

Only agents of that tier who serve the ticket's organization, are active and are on shift
now (their working hours, in their own time zone) are candidates. An agent with no working
hours at all is taken to be available at any time; give everyone shifts to make the rota
strict. With no candidate the ticket stays unassigned in its tier queue, and the worker's
shift-start job hands it out when someone comes on shift.

Strategies:
- ``round_robin``: whoever was last given a ticket longest ago (never first).
- ``least_loaded``: fewest open tickets; ties by round-robin order.
- ``skill_match``: most of the category's required skills; ties by load, then round-robin.
- ``manual``: nobody is picked; agents take tickets from the queue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from tierdesk.core.models import STAFF_ROLES, Organization, User
from tierdesk.tiers.models import AgentProfile, AssignmentStrategy, Category, Tier

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Candidate:
    profile: AgentProfile
    load: int = 0
    skill_score: int = 0

    @property
    def user(self) -> User:
        return self.profile.user


def on_shift(profile: AgentProfile, now: dt.datetime) -> bool:
    """Whether the agent works at ``now`` by their weekly hours in their own time zone."""
    hours = list(profile.hours.all())
    if not hours:
        return True
    local = now.astimezone(ZoneInfo(profile.user.time_zone or "UTC"))
    moment = local.time().replace(tzinfo=None)
    return any(h.weekday == local.weekday() and h.start <= moment < h.end for h in hours)


def candidates(organization: Organization, tier: Tier, now: dt.datetime) -> list[AgentProfile]:
    """Agents of ``tier`` serving ``organization`` who are on shift at ``now``."""
    profiles = (
        AgentProfile.objects.filter(
            tier=tier,
            user__is_active=True,
            user__role__in=sorted(STAFF_ROLES),
            user__served_organizations=organization,
        )
        .select_related("user")
        .prefetch_related("hours", "skills")
        .order_by("pk")
    )
    return [p for p in profiles if on_shift(p, now)]


def choose(
    strategy: str,
    profiles: Iterable[AgentProfile],
    *,
    category: Category | None,
    loads: Callable[[list[int]], dict[int, int]],
) -> AgentProfile | None:
    """Pick one of ``profiles`` by ``strategy``; ``loads`` maps user ids to open tickets."""
    pool = list(profiles)
    if strategy == AssignmentStrategy.MANUAL or not pool:
        return None

    def rotation(p: AgentProfile) -> tuple[dt.datetime, int]:
        return (p.last_assigned_at or _EPOCH, p.pk)

    if strategy == AssignmentStrategy.ROUND_ROBIN:
        return min(pool, key=rotation)
    load = loads([p.user_id for p in pool])
    if strategy == AssignmentStrategy.LEAST_LOADED:
        return min(pool, key=lambda p: (load.get(p.user_id, 0), *rotation(p)))
    required = {s.pk for s in category.required_skills.all()} if category else set()

    def skill_key(p: AgentProfile) -> tuple[int, int, dt.datetime, int]:
        score = len(required & {s.pk for s in p.skills.all()})
        return (-score, load.get(p.user_id, 0), *rotation(p))

    return min(pool, key=skill_key)


def mark_assigned(profile: AgentProfile, now: dt.datetime) -> None:
    """Move the agent to the back of the round-robin order."""
    AgentProfile.objects.filter(pk=profile.pk).update(last_assigned_at=now)
    profile.last_assigned_at = now
