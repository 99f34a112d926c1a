"""Automatic escalation: which rules apply to a ticket, and when they fire.

- ``priority``: on intake (and when a ticket's priority is raised to it) the ticket goes
  straight to the rule's tier — "P1 goes straight to L2".
- ``reopened``: when a ticket is reopened for the N-th time.
- ``time_in_tier``: the worker's sweep finds unresolved tickets that entered their tier
  more than N minutes ago. It reads an index on (tier, tier_entered_at) over unresolved
  tickets, so its cost follows the tickets past the threshold, not all open tickets.
- ``sla_resolution_used``: the SLA sweep fires it when a resolution clock passes N %.

Every rule fires at most once per ticket (see services.fire).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Exists, OuterRef

from tierdesk.core import clock, config
from tierdesk.escalation import services
from tierdesk.escalation.models import EscalationFiring, EscalationRule, Trigger
from tierdesk.sla.models import ClockKind, SlaClock
from tierdesk.tickets import services as tickets
from tierdesk.tickets.lifecycle import Change, TicketChange
from tierdesk.tickets.models import OPEN_STATUSES, Status, Ticket
from tierdesk.tiers.models import Tier

log = logging.getLogger(__name__)


def _active_rules() -> list[EscalationRule]:
    return list(
        EscalationRule.objects.filter(is_active=True)
        .select_related("to_tier")
        .order_by("name", "id")
    )


def rules_for(ticket: Ticket, trigger: str) -> list[EscalationRule]:
    """Active rules of ``trigger`` that watch ``ticket`` (its organization's and MSP-wide,
    its priority, its tier), by name. Read from the per-process configuration cache."""
    return [
        r
        for r in config.cached("escalation.rules", _active_rules)
        if r.trigger == trigger
        and r.organization_id in (None, ticket.organization_id)
        and r.priority in ("", ticket.priority)
        and r.from_tier_id in (None, ticket.tier_id)
    ]


def on_ticket_changes(changes: list[TicketChange]) -> None:
    """Lifecycle hook: fire the event-driven rules inside the changes' transaction."""
    for change in changes:
        ticket = change.ticket
        if change.change == Change.CREATED or (
            change.change == Change.PRIORITY and change.new < change.old
        ):
            for rule in [r for r in rules_for(ticket, Trigger.PRIORITY) if r.priority]:
                reason = f"{ticket.priority} tickets go to {_target(rule, ticket)}"
                services.fire(rule, ticket, reason)
        elif (
            change.change == Change.STATUS
            and change.old == Status.RESOLVED
            and change.new == Status.OPEN
        ):
            for rule in rules_for(ticket, Trigger.REOPENED):
                if rule.count is not None and ticket.reopen_count >= rule.count:
                    services.fire(rule, ticket, f"reopened {ticket.reopen_count} times")


def _target(rule: EscalationRule, ticket: Ticket) -> str:
    if rule.to_tier is not None:
        return rule.to_tier.code
    target = services.next_tier(ticket.tier, "up")
    return target.code if target else "the next tier"


def due_for(rule: EscalationRule, now: dt.datetime, limit: int) -> list[int]:
    """Ids of unresolved tickets that have been in a watched tier longer than the rule's
    threshold and that it has not fired for, oldest first."""
    assert rule.minutes is not None
    tiers = Tier.objects.all()
    if rule.from_tier_id is not None:
        tiers = tiers.filter(pk=rule.from_tier_id)
    if rule.to_tier is not None:
        tiers = tiers.filter(level__lt=rule.to_tier.level)
    else:
        top = Tier.objects.order_by("-level").first()
        if top is not None:
            tiers = tiers.exclude(pk=top.pk)
    qs = Ticket.objects.filter(
        tier__in=list(tiers.values_list("pk", flat=True)),
        status__in=sorted(OPEN_STATUSES),
        tier_entered_at__lte=now - dt.timedelta(minutes=rule.minutes),
    )
    if rule.priority:
        qs = qs.filter(priority=rule.priority)
    if rule.organization_id is not None:
        qs = qs.filter(organization_id=rule.organization_id)
    fired = EscalationFiring.objects.filter(rule=rule, ticket=OuterRef("pk"))
    return list(
        qs.filter(~Exists(fired))
        .order_by("tier_entered_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def sweep_time_in_tier(*, limit: int = 500, batch: int = 100) -> int:
    """Fire every active time-in-tier rule for the tickets past its threshold: up to
    ``batch`` tickets per short transaction, under their row locks (taken in id order).
    A batch that fails is retried ticket by ticket, so one ticket that cannot be escalated
    (logged) does not hold up the others. Returns how many fired."""
    now = clock.now()
    fired = 0
    for rule in EscalationRule.objects.filter(
        trigger=Trigger.TIME_IN_TIER, is_active=True
    ).select_related("to_tier", "from_tier"):
        due = due_for(rule, now, limit)
        for start in range(0, len(due), batch):
            chunk = due[start : start + batch]
            try:
                fired += _fire_time_in_tier(rule, chunk, now)
            except Exception:
                log.warning("time-in-tier sweep: a batch failed; retrying ticket by ticket")
                for ticket_id in chunk:
                    try:
                        fired += _fire_time_in_tier(rule, [ticket_id], now)
                    except Exception:
                        log.exception("time-in-tier sweep: ticket %s not escalated", ticket_id)
    return fired


def _fire_time_in_tier(rule: EscalationRule, ticket_ids: list[int], now: dt.datetime) -> int:
    threshold = now - dt.timedelta(minutes=rule.minutes or 0)
    with transaction.atomic(), config.pinned():
        firings = [
            (rule, t, f"{rule.minutes} minutes in {t.tier.code} without resolution")
            for t in tickets.lock_many(ticket_ids).values()
            # Re-checked under the lock: the ticket may have moved since the read.
            if t.status in OPEN_STATUSES
            and t.tier_entered_at <= threshold
            and rule.from_tier_id in (None, t.tier_id)
        ]
        return len(services.fire_all(firings))


def _top_level() -> int:
    return max(Tier.objects.values_list("level", flat=True), default=0)


def _sla_rules(clocks: list[SlaClock]) -> list[list[EscalationRule]]:
    """For each clock, the unfired SLA-percentage rules that watch it (only resolution
    clocks; not on the top tier; only rules that would send the ticket up). One read of
    the firings for all of them."""
    candidates = [
        [r for r in rules_for(c.ticket, Trigger.SLA_RESOLUTION_USED) if r.percent]
        if c.kind == ClockKind.RESOLUTION
        else []
        for c in clocks
    ]
    # A resolution clock not saved yet belongs to a ticket being created: nothing has
    # fired for it.
    asked = [(c, rules) for c, rules in zip(clocks, candidates, strict=True) if rules and c.pk]
    fired: set[tuple[int, int]] = set()
    if asked:
        fired = set(
            EscalationFiring.objects.filter(
                ticket__in=sorted({c.ticket_id for c, _ in asked}),
                rule__in=sorted({r.pk for _, rules in asked for r in rules}),
            ).values_list("rule_id", "ticket_id")
        )
    top_level = config.cached("tiers.top_level", _top_level) if any(candidates) else 0
    return [
        [
            r
            for r in rules
            if (r.pk, c.ticket_id) not in fired
            and c.ticket.tier.level < top_level
            and (r.to_tier is None or r.to_tier.level > c.ticket.tier.level)
        ]
        for c, rules in zip(clocks, candidates, strict=True)
    ]


def sla_percents(clocks: list[SlaClock]) -> list[list[int]]:
    """The percentages of each clock that unfired rules watch (the SLA sweep asks)."""
    return [sorted({r.percent for r in rules if r.percent}) for rules in _sla_rules(clocks)]


def sla_percent_reached(reached: list[tuple[SlaClock, int]]) -> None:
    """The SLA sweep saw clocks pass percentages: fire the rules watching them, in the
    sweep's transaction, where the tickets are locked and current."""
    most: dict[int, tuple[SlaClock, int]] = {}
    for c, percent in reached:
        if c.pk not in most or most[c.pk][1] < percent:
            most[c.pk] = (c, percent)
    clocks = [c for c, _ in most.values()]
    firings = [
        (rule, c.ticket, f"resolution SLA {rule.percent}% used")
        for (c, percent), rules in zip(most.values(), _sla_rules(clocks), strict=True)
        for rule in rules
        if rule.percent is not None and rule.percent <= percent
    ]
    services.fire_all(firings)
