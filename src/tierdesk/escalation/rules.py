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


def on_ticket_change(change: TicketChange) -> None:
    """Lifecycle hook: fire the event-driven rules inside the change's transaction."""
    ticket = change.ticket
    if change.change == Change.CREATED or (
        change.change == Change.PRIORITY and change.new < change.old
    ):
        for rule in [r for r in rules_for(ticket, Trigger.PRIORITY) if r.priority]:
            services.fire(rule, ticket, f"{ticket.priority} tickets go to {_target(rule, ticket)}")
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


def sweep_time_in_tier(*, limit: int = 500) -> int:
    """Fire every active time-in-tier rule for the tickets past its threshold. Each ticket
    is escalated in its own short transaction under its row lock. Returns how many fired."""
    now = clock.now()
    fired = 0
    for rule in EscalationRule.objects.filter(
        trigger=Trigger.TIME_IN_TIER, is_active=True
    ).select_related("to_tier", "from_tier"):
        for ticket_id in due_for(rule, now, limit):
            with transaction.atomic():
                ticket = tickets.lock(
                    Ticket.objects.select_related("organization", "tier").get(pk=ticket_id), None
                )
                # Re-checked under the lock: the ticket may have moved since the read.
                threshold = now - dt.timedelta(minutes=rule.minutes or 0)
                if ticket.status not in OPEN_STATUSES or ticket.tier_entered_at > threshold:
                    continue
                if rule.from_tier_id is not None and ticket.tier_id != rule.from_tier_id:
                    continue
                if services.fire(
                    rule, ticket, f"{rule.minutes} minutes in {ticket.tier.code} without resolution"
                ):
                    fired += 1
    return fired


def _top_level() -> int:
    return max(Tier.objects.values_list("level", flat=True), default=0)


def _sla_rules(clock: SlaClock, ticket: Ticket | None = None) -> list[EscalationRule]:
    if clock.kind != ClockKind.RESOLUTION:
        return []
    ticket = ticket or clock.ticket
    candidates = [r for r in rules_for(ticket, Trigger.SLA_RESOLUTION_USED) if r.percent]
    if not candidates:
        return []
    # A resolution clock not saved yet belongs to a ticket being created: nothing has
    # fired for it.
    fired = (
        set(
            EscalationFiring.objects.filter(
                ticket=ticket, rule__in=[r.pk for r in candidates]
            ).values_list("rule_id", flat=True)
        )
        if clock.pk is not None
        else set()
    )
    top = ticket.tier.level >= config.cached("tiers.top_level", _top_level)
    return [
        r
        for r in candidates
        if r.pk not in fired
        and not top
        and (r.to_tier is None or r.to_tier.level > ticket.tier.level)
    ]


def sla_percents(clock: SlaClock) -> list[int]:
    """The percentages of a resolution clock that unfired rules watch (the SLA sweep asks)."""
    return sorted({r.percent for r in _sla_rules(clock) if r.percent})


def sla_percent_reached(clock: SlaClock, percent: int) -> None:
    """The SLA sweep saw ``clock`` pass ``percent``: fire the rules watching it (in the
    sweep's transaction; the ticket row is locked first, like any escalation)."""
    ticket = tickets.lock(clock.ticket, None)
    # Match the rules against the locked ticket, not the one the sweep read: a concurrent
    # escalation may have moved it (tier, priority) in between.
    for rule in _sla_rules(clock, ticket):
        if rule.percent is not None and rule.percent <= percent:
            services.fire(rule, ticket, f"resolution SLA {rule.percent}% used")
