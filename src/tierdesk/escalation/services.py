"""The only code that escalates and de-escalates tickets.

Functional escalation moves a ticket up to the next (or a chosen higher) tier and needs a
reason and a handoff note of what was tried; de-escalation moves it down and needs a note.
Hierarchical escalation notifies the managers of the target tier (an outbox event; the
channels deliver it). Each move writes an Escalation row, the ticket's timeline, and a
domain event, in one transaction with the tier change.

Automatic escalation rules are configured here too (``escalation_rule_*``): managers for
the organizations they serve, admins MSP-wide, like routing rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from tierdesk.core import bulk, clock, config, policy
from tierdesk.core.audit import AuditAction, record_and_emit
from tierdesk.core.errors import InvalidTransition, ValidationFailed
from tierdesk.core.events import emit_all, event
from tierdesk.core.models import Organization, User
from tierdesk.core.services import full_clean_or_raise
from tierdesk.core.unset import UNSET
from tierdesk.escalation.models import (
    MANUAL,
    Direction,
    Escalation,
    EscalationFiring,
    EscalationRule,
    Trigger,
)
from tierdesk.sla import clocks
from tierdesk.sla.models import ClockKind
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import OPEN_STATUSES, Ticket, TimelineKind
from tierdesk.tiers.models import Tier
from tierdesk.tiers.queries import tiers_by_level

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
    """The tier right above (``up``) or below ``tier``, from the configuration cache."""
    tiers = tiers_by_level()
    if direction == Direction.UP:
        return next((t for t in tiers if t.level > tier.level), None)
    return next((t for t in reversed(tiers) if t.level < tier.level), None)


@dataclass(frozen=True)
class _Move:
    ticket: Ticket  # locked and current
    direction: str
    to_tier: Tier
    reason: str
    handoff_note: str
    kind: str
    actor: User | None = None
    rule: EscalationRule | None = None
    assignee: User | None = None
    notify_managers: bool = False


def _check_move(ticket: Ticket, direction: str, to_tier: Tier | None, **rest: Any) -> _Move:
    """Validate a move of a locked, current ``ticket``; ``to_tier`` empty: the next one."""
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
    return _Move(ticket=ticket, direction=direction, to_tier=to_tier, **rest)


def _apply(moves: list[_Move]) -> list[Escalation]:
    """Write checked moves of locked tickets — tier changes, timeline, Escalation rows and
    events — in a few statements however many there are; the caller holds the transaction."""
    if not moves:
        return []
    now = clock.now()
    from_tiers = [m.ticket.tier for m in moves]
    steps = []
    for m, current in zip(moves, from_tiers, strict=True):
        label = "escalated" if m.direction == Direction.UP else "de-escalated"
        note = f"{label} {current.code} → {m.to_tier.code} ({m.kind}): {m.reason}"
        steps.append(
            tickets.TierMove(
                ticket=m.ticket,
                to_tier=m.to_tier,
                kind=(
                    TimelineKind.ESCALATED if m.direction == Direction.UP
                    else TimelineKind.DE_ESCALATED
                ),
                note=note + (f"\nWhat was tried: {m.handoff_note}" if m.handoff_note else ""),
                actor=m.actor,
                assignee=m.assignee,
            )
        )  # fmt: skip
    tickets.move_tiers(steps)
    # The target tier's managers who may see the ticket's organization, once per pair.
    managers: dict[tuple[int, int], list[User]] = {}
    for m in moves:
        key = (m.to_tier.pk, m.ticket.organization_id)
        if m.notify_managers and key not in managers:
            managers[key] = [
                u
                for u in m.to_tier.managers.filter(is_active=True).order_by("pk")
                if policy.can_see_organization(u, m.ticket.organization_id)
            ]
    escalations = bulk.insert_all(
        [
            Escalation(
                ticket=m.ticket,
                organization=m.ticket.organization,
                from_tier=current,
                to_tier=m.to_tier,
                direction=m.direction,
                kind=m.kind,
                rule=m.rule,
                reason=m.reason,
                handoff_note=m.handoff_note,
                actor=m.actor,
                at=now,
                managers_notified=bool(managers.get((m.to_tier.pk, m.ticket.organization_id))),
            )
            for m, current in zip(moves, from_tiers, strict=True)
        ]
    )
    events = []
    for m, current, escalation in zip(moves, from_tiers, escalations, strict=True):
        ticket = m.ticket
        payload = {
            "escalation_id": escalation.pk,
            "ticket_id": ticket.pk,
            "key": ticket.key,
            "from_tier": current.code,
            "to_tier": m.to_tier.code,
            "kind": m.kind,
            "rule_id": m.rule.pk if m.rule else None,
            "reason": m.reason,
            "actor_id": m.actor.pk if m.actor else None,
            "assignee_id": ticket.assignee_id,
            "priority": ticket.priority,
            "version": ticket.version,
        }
        events.append(
            event(
                "ticket.escalated" if m.direction == Direction.UP else "ticket.de_escalated",
                organization=ticket.organization,
                aggregate_type="ticket",
                aggregate_id=ticket.pk,
                payload=payload,
            )
        )
        if escalation.managers_notified:
            notified = managers[(m.to_tier.pk, ticket.organization_id)]
            events.append(
                event(
                    "escalation.managers_notified",
                    organization=ticket.organization,
                    aggregate_type="ticket",
                    aggregate_id=ticket.pk,
                    payload=payload
                    | {"managers": [{"id": u.pk, "email": u.email} for u in notified]},
                )
            )
    emit_all(events)
    return escalations


@transaction.atomic
@config.pinned()
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
    move = _check_move(
        locked,
        Direction.UP,
        to_tier,
        actor=actor,
        reason=reason,
        handoff_note=handoff_note,
        kind=MANUAL,
        assignee=assignee,
        notify_managers=notify_managers,
    )
    return _apply([move])[0]


@transaction.atomic
@config.pinned()
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
    move = _check_move(
        locked,
        Direction.DOWN,
        to_tier,
        actor=actor,
        reason=note,
        handoff_note="",
        kind=MANUAL,
        assignee=assignee,
    )
    return _apply([move])[0]


def fire(rule: EscalationRule, ticket: Ticket, reason: str) -> Escalation | None:
    """Escalate a locked, current ``ticket`` by an automatic rule, at most once per
    (rule, ticket). Returns None when the rule had fired already or the ticket has nowhere
    to go. See ``fire_all``."""
    fired = fire_all([(rule, ticket, reason)])
    return fired[0] if fired else None


def fire_all(firings: list[tuple[EscalationRule, Ticket, str]]) -> list[Escalation]:
    """Fire automatic rules for locked, current tickets (rule, ticket, reason), each at most
    once per (rule, ticket): the firing rows are written first, in the caller's
    transaction, and their unique constraint makes a second attempt — another worker, or
    after a restart — stand down. A ticket named twice moves once per round, so a later
    rule sees where the earlier one sent it. Returns the escalations made."""
    done: list[Escalation] = []
    pending = list(firings)
    while pending:
        this_round: list[tuple[EscalationRule, Ticket, str]] = []
        later: list[tuple[EscalationRule, Ticket, str]] = []
        seen: set[int] = set()
        for item in pending:
            (later if item[1].pk in seen else this_round).append(item)
            seen.add(item[1].pk)
        done += _fire_round(this_round)
        pending = later
    return done


def _fire_round(firings: list[tuple[EscalationRule, Ticket, str]]) -> list[Escalation]:
    """One rule per ticket."""
    moves = []
    for rule, ticket, reason in firings:
        target = rule.to_tier or next_tier(ticket.tier, Direction.UP)
        if target is None or target.level <= ticket.tier.level:
            continue
        if ticket.status not in OPEN_STATUSES:
            continue
        moves.append(
            _Move(
                ticket=ticket,
                direction=Direction.UP,
                to_tier=target,
                reason=reason,
                handoff_note=f"Automatic escalation by rule {rule.name!r}.",
                kind=rule.name,
                rule=rule,
                notify_managers=rule.notify_managers,
            )
        )
    if not moves:
        return []
    now = clock.now()
    rows = [EscalationFiring(rule=m.rule, ticket=m.ticket, fired_at=now) for m in moves]
    try:
        with transaction.atomic():
            bulk.insert_all(rows)
    except IntegrityError:
        if len(moves) == 1:
            return []  # it had fired already
        # Some had fired already: find which, one savepoint each (rare: the callers skip
        # what they can see has fired).
        kept = []
        for m, row in zip(moves, rows, strict=True):
            try:
                with transaction.atomic():
                    row.pk = None
                    row.save(force_insert=True)
            except IntegrityError:
                continue
            kept.append(m)
        moves = kept
    return _apply(moves)


# --- automatic escalation rules ----------------------------------------------------------

RULE_PRIORITIES = ("P1", "P2", "P3", "P4")
# trigger -> (its parameter, lowest, highest); the priority trigger's parameter is the
# rule's ``priority`` itself.
TRIGGER_PARAMETERS: dict[str, tuple[str, int, int]] = {
    Trigger.TIME_IN_TIER: ("minutes", 1, 525_600),  # up to a year
    Trigger.SLA_RESOLUTION_USED: ("percent", 1, 100),
    Trigger.REOPENED: ("count", 1, 100),
}
_NUMBERS = ("minutes", "percent", "count")


def _require_rule_scope(actor: User, organization: Organization | None) -> None:
    policy.require_config_scope(actor, organization, "escalation", "escalation rules")


def _rule_name(name: str) -> str:
    cleaned = (name or "").replace("\x00", "").strip()
    if not cleaned or len(cleaned) > 100:
        raise ValidationFailed.for_field("name", "1 to 100 characters")
    return cleaned


def _check_rule(rule: EscalationRule) -> None:
    """Refuse unknown triggers, missing or out-of-range parameters, parameters of another
    trigger, and configurations that could never send a ticket up (cyclic: down or sideways;
    into the lowest tier; out of the highest)."""
    if rule.trigger not in Trigger.values:
        raise ValidationFailed.for_field(
            "trigger", f"unknown {rule.trigger!r}; one of {', '.join(Trigger.values)}"
        )
    if rule.priority not in ("", *RULE_PRIORITIES):
        raise ValidationFailed.for_field("priority", "P1, P2, P3 or P4, or empty for any")
    wanted = TRIGGER_PARAMETERS.get(rule.trigger)
    for field in _NUMBERS:
        value = getattr(rule, field)
        if wanted is not None and field == wanted[0]:
            low, high = wanted[1], wanted[2]
            if value is None:
                raise ValidationFailed.for_field(
                    field, f"required for the {rule.trigger} trigger ({low} to {high})"
                )
            if not low <= value <= high:
                raise ValidationFailed.for_field(field, f"{low} to {high}")
        elif value is not None:
            raise ValidationFailed.for_field(
                field, f"only for the {_trigger_of(field)} trigger, not {rule.trigger}"
            )
    if rule.trigger == Trigger.PRIORITY:
        if not rule.priority:
            raise ValidationFailed.for_field(
                "priority", "required for the priority trigger: which priority goes up"
            )
        if rule.to_tier is None:
            raise ValidationFailed.for_field(
                "to_tier", "required for the priority trigger: where those tickets go"
            )
    tiers = list(Tier.objects.order_by("level"))
    if rule.to_tier is not None:
        if tiers and rule.to_tier.level <= tiers[0].level:
            raise ValidationFailed.for_field(
                "to_tier",
                f"{rule.to_tier.code} is the lowest tier; a rule only escalates, up",
            )
        if rule.from_tier is not None and rule.to_tier.level <= rule.from_tier.level:
            raise ValidationFailed.for_field(
                "to_tier",
                f"cyclic: {rule.to_tier.code} is not above {rule.from_tier.code}; "
                "a rule only sends tickets up",
            )
    elif rule.from_tier is not None and tiers and rule.from_tier.level >= tiers[-1].level:
        raise ValidationFailed.for_field(
            "from_tier",
            f"{rule.from_tier.code} is the highest tier; there is nowhere to escalate",
        )


def _trigger_of(field: str) -> str:
    return next(t for t, (name, _, _) in TRIGGER_PARAMETERS.items() if name == field)


def _rule_summary(rule: EscalationRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "is_active": rule.is_active,
        "trigger": rule.trigger,
        "priority": rule.priority or None,
        "from_tier": rule.from_tier.code if rule.from_tier else None,
        "to_tier": rule.to_tier.code if rule.to_tier else None,
        "minutes": rule.minutes,
        "percent": rule.percent,
        "count": rule.count,
        "notify_managers": rule.notify_managers,
    }


@transaction.atomic
def _replan_if_sla(rule: EscalationRule) -> None:
    """An SLA-percentage rule is a checkpoint on every running resolution clock: replan
    them so the sweep looks at the new percentage (cost: one pass over running clocks)."""
    if rule.trigger == Trigger.SLA_RESOLUTION_USED:
        clocks.replan_running(ClockKind.RESOLUTION)


@transaction.atomic
def escalation_rule_create(
    *,
    actor: User,
    name: str,
    trigger: str,
    organization: Organization | None = None,
    priority: str = "",
    from_tier: Tier | None = None,
    to_tier: Tier | None = None,
    minutes: int | None = None,
    percent: int | None = None,
    count: int | None = None,
    notify_managers: bool = False,
    is_active: bool = True,
) -> EscalationRule:
    """Add an automatic escalation rule for one organization or, for admins, MSP-wide.
    ``to_tier`` empty: the next tier up from wherever the ticket is."""
    _require_rule_scope(actor, organization)
    now = clock.now()
    rule = EscalationRule(
        organization=organization,
        name=_rule_name(name),
        is_active=is_active,
        trigger=trigger,
        priority=priority or "",
        from_tier=from_tier,
        to_tier=to_tier,
        minutes=minutes,
        percent=percent,
        count=count,
        notify_managers=notify_managers,
        created_at=now,
        updated_at=now,
    )
    _check_rule(rule)
    full_clean_or_raise(rule)
    rule.save()
    summary = _rule_summary(rule)
    record_and_emit(
        actor=actor,
        action=AuditAction.ESCALATION_RULE_CREATED,
        target_type="escalation_rule",
        target_id=rule.pk,
        organization=organization,
        changes=summary,
        payload=summary | {"id": rule.pk},
    )
    _replan_if_sla(rule)
    return rule


@transaction.atomic
def escalation_rule_update(
    *,
    actor: User,
    rule: EscalationRule,
    name: str = UNSET,
    trigger: str = UNSET,
    priority: str = UNSET,
    from_tier: Tier | None = UNSET,
    to_tier: Tier | None = UNSET,
    minutes: int | None = UNSET,
    percent: int | None = UNSET,
    count: int | None = UNSET,
    notify_managers: bool = UNSET,
    is_active: bool = UNSET,
) -> EscalationRule:
    """Change a rule; only the given fields change. Its scope (organization) is permanent.
    Tickets it has fired for stay fired: a changed rule does not escalate them again."""
    _require_rule_scope(actor, rule.organization)
    # Lock the rule's own row only: PostgreSQL refuses FOR UPDATE over the outer joins.
    rule = (
        EscalationRule.objects.select_for_update(of=("self",))
        .select_related("organization", "from_tier", "to_tier")
        .get(pk=rule.pk)
    )
    before = _rule_summary(rule)
    if name is not UNSET:
        rule.name = _rule_name(name)
    if priority is not UNSET:
        rule.priority = priority or ""
    given = {
        "trigger": trigger,
        "from_tier": from_tier,
        "to_tier": to_tier,
        "minutes": minutes,
        "percent": percent,
        "count": count,
        "notify_managers": notify_managers,
        "is_active": is_active,
    }
    for field, value in given.items():
        if value is not UNSET:
            setattr(rule, field, value)
    _check_rule(rule)
    after = _rule_summary(rule)
    changes = {k: {"old": before[k], "new": v} for k, v in after.items() if before[k] != v}
    if not changes:
        return rule
    rule.updated_at = clock.now()
    full_clean_or_raise(rule)
    rule.save()
    record_and_emit(
        actor=actor,
        action=AuditAction.ESCALATION_RULE_UPDATED,
        target_type="escalation_rule",
        target_id=rule.pk,
        organization=rule.organization,
        changes=changes,
        payload={"id": rule.pk, "changes": changes},
    )
    _replan_if_sla(rule)
    return rule


@transaction.atomic
def escalation_rule_delete(*, actor: User, rule: EscalationRule) -> None:
    """Remove a rule. Its escalations stay (their ``kind`` keeps the rule's name)."""
    _require_rule_scope(actor, rule.organization)
    summary = _rule_summary(rule)
    rule_id, organization = rule.pk, rule.organization
    rule.delete()
    record_and_emit(
        actor=actor,
        action=AuditAction.ESCALATION_RULE_DELETED,
        target_type="escalation_rule",
        target_id=rule_id,
        organization=organization,
        changes=summary,
        payload=summary | {"id": rule_id},
    )
