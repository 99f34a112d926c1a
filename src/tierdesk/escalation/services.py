"""The only code that escalates and de-escalates tickets.

Functional escalation moves a ticket up to the next (or a chosen higher) tier and needs a
reason and a handoff note of what was tried; de-escalation moves it down and needs a note.
Hierarchical escalation notifies the managers of the target tier (an outbox event; the
channels deliver it). Each move writes an Escalation row, the ticket's timeline, and a
domain event, in one transaction with the tier change.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from tierdesk.core import clock, policy
from tierdesk.core.errors import InvalidTransition, ValidationFailed
from tierdesk.core.events import emit
from tierdesk.core.models import User
from tierdesk.escalation.models import (
    MANUAL,
    Direction,
    Escalation,
    EscalationFiring,
    EscalationRule,
)
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import OPEN_STATUSES, Ticket, TimelineKind
from tierdesk.tiers.models import Tier

REASON_MAX = 1_000
NOTE_MAX = 20_000


def _text(field: str, value: str | None, max_length: int) -> str:
    cleaned = (value or "").replace("\x00", "").strip()
    if not cleaned:
        raise ValidationFailed.for_field(
            field, "required: say why (and, handing over, what was tried)"
        )
    if len(cleaned) > max_length:
        raise ValidationFailed.for_field(field, f"at most {max_length} characters")
    return cleaned


def next_tier(tier: Tier, direction: str) -> Tier | None:
    tiers = Tier.objects.order_by("level")
    if direction == Direction.UP:
        return tiers.filter(level__gt=tier.level).first()
    return tiers.filter(level__lt=tier.level).last()


def _managers(ticket: Ticket, tier: Tier) -> list[User]:
    """The target tier's managers who may see the ticket's organization."""
    return [
        m
        for m in tier.managers.filter(is_active=True).order_by("pk")
        if policy.can_see_organization(m, ticket.organization_id)
    ]


def _move(
    *,
    actor: User | None,
    ticket: Ticket,
    direction: str,
    to_tier: Tier | None,
    reason: str,
    handoff_note: str,
    kind: str,
    rule: EscalationRule | None = None,
    assignee: User | None = None,
    notify_managers: bool = False,
) -> Escalation:
    """Move a locked, current ``ticket``; the caller holds the transaction."""
    if ticket.status not in OPEN_STATUSES:
        raise InvalidTransition.for_field(
            "status", f"a {ticket.status} ticket is not escalated; reopen it first"
        )
    current = ticket.tier
    if to_tier is None:
        to_tier = next_tier(current, direction)
        if to_tier is None:
            if direction == Direction.UP:
                raise ValidationFailed.for_field(
                    "tier", f"{current.code} is the highest tier; there is nowhere to escalate"
                )
            raise ValidationFailed.for_field(
                "tier", f"{current.code} is the lowest tier; there is nothing below it"
            )
    if direction == Direction.UP and to_tier.level <= current.level:
        raise ValidationFailed.for_field(
            "tier",
            f"escalation goes up: {to_tier.code} is not above {current.code} "
            "(use de-escalate to move down)",
        )
    if direction == Direction.DOWN and to_tier.level >= current.level:
        raise ValidationFailed.for_field(
            "tier", f"de-escalation goes down: {to_tier.code} is not below {current.code}"
        )
    now = clock.now()
    label = "escalated" if direction == Direction.UP else "de-escalated"
    note = f"{label} {current.code} → {to_tier.code} ({kind}): {reason}"
    entries = tickets.move_tier(
        actor=actor,
        ticket=ticket,
        to_tier=to_tier,
        kind=TimelineKind.ESCALATED if direction == Direction.UP else TimelineKind.DE_ESCALATED,
        note=note + (f"\nWhat was tried: {handoff_note}" if handoff_note else ""),
        assignee=assignee,
    )
    tickets.save(ticket, ["tier", "tier_entered_at", "assignee"], entries)
    managers = _managers(ticket, to_tier) if notify_managers else []
    escalation = Escalation.objects.create(
        ticket=ticket,
        organization=ticket.organization,
        from_tier=current,
        to_tier=to_tier,
        direction=direction,
        kind=kind,
        rule=rule,
        reason=reason,
        handoff_note=handoff_note,
        actor=actor,
        at=now,
        managers_notified=bool(managers),
    )
    payload = {
        "escalation_id": escalation.pk,
        "ticket_id": ticket.pk,
        "key": ticket.key,
        "from_tier": current.code,
        "to_tier": to_tier.code,
        "kind": kind,
        "rule_id": rule.pk if rule else None,
        "reason": reason,
        "actor_id": actor.pk if actor else None,
        "assignee_id": ticket.assignee_id,
        "priority": ticket.priority,
        "version": ticket.version,
    }
    emit(
        "ticket.escalated" if direction == Direction.UP else "ticket.de_escalated",
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=payload,
    )
    if managers:
        emit(
            "escalation.managers_notified",
            organization=ticket.organization,
            aggregate_type="ticket",
            aggregate_id=ticket.pk,
            payload=payload | {"managers": [{"id": m.pk, "email": m.email} for m in managers]},
        )
    return escalation


@transaction.atomic
def escalate(
    *,
    actor: User,
    ticket: Ticket,
    reason: str,
    handoff_note: str,
    to_tier: Tier | None = None,
    assignee: User | None = None,
    notify_managers: bool = False,
    expected_version: int | None = None,
) -> Escalation:
    """Functional escalation by a person: to the next tier up, or ``to_tier`` above it.
    ``notify_managers`` makes it hierarchical too. The ticket leaves its assignee unless
    ``assignee`` (serving the organization) takes it; else the new tier's strategy picks."""
    policy.require(actor, "ticket.escalate", "Only staff escalate tickets.")
    reason = _text("reason", reason, REASON_MAX)
    handoff_note = _text("handoff_note", handoff_note, NOTE_MAX)
    locked = tickets.lock(ticket, expected_version)
    return _move(
        actor=actor,
        ticket=locked,
        direction=Direction.UP,
        to_tier=to_tier,
        reason=reason,
        handoff_note=handoff_note,
        kind=MANUAL,
        assignee=assignee,
        notify_managers=notify_managers,
    )


@transaction.atomic
def de_escalate(
    *,
    actor: User,
    ticket: Ticket,
    note: str,
    to_tier: Tier | None = None,
    assignee: User | None = None,
    expected_version: int | None = None,
) -> Escalation:
    """Hand a ticket back down (to the next tier below, or ``to_tier``) with a note, e.g.
    once L3 has fixed the cause and L1 can confirm with the user. Never below the lowest."""
    policy.require(actor, "ticket.escalate", "Only staff de-escalate tickets.")
    note = _text("note", note, NOTE_MAX)
    locked = tickets.lock(ticket, expected_version)
    return _move(
        actor=actor,
        ticket=locked,
        direction=Direction.DOWN,
        to_tier=to_tier,
        reason=note,
        handoff_note="",
        kind=MANUAL,
        assignee=assignee,
    )


def fire(rule: EscalationRule, ticket: Ticket, reason: str) -> Escalation | None:
    """Escalate a locked, current ``ticket`` by an automatic rule, at most once per
    (rule, ticket): the firing row is written first, in the caller's transaction, and its
    unique constraint makes a second attempt — another worker, or after a restart — stand
    down. Returns None when the rule had fired already or the ticket has nowhere to go."""
    target = rule.to_tier or next_tier(ticket.tier, Direction.UP)
    if target is None or target.level <= ticket.tier.level or ticket.status not in OPEN_STATUSES:
        return None
    try:
        with transaction.atomic():
            EscalationFiring.objects.create(rule=rule, ticket=ticket, fired_at=clock.now())
    except IntegrityError:
        return None
    return _move(
        actor=None,
        ticket=ticket,
        direction=Direction.UP,
        to_tier=target,
        reason=reason,
        handoff_note=f"Automatic escalation by rule {rule.name!r}.",
        kind=rule.name,
        rule=rule,
        notify_managers=rule.notify_managers,
    )
