"""Escalations (every move between tiers, with its reason and handoff) and the rules that
escalate automatically."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q

from tierdesk.core.models import Organization, User
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.models import Tier


class Direction(models.TextChoices):
    UP = "up", "Escalation"
    DOWN = "down", "De-escalation"


MANUAL = "manual"


class Escalation(models.Model):
    """One move of a ticket between tiers: from where to where, why, what was tried, who
    (nobody: a rule) and when. KPIs count escalation rates from these rows."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    from_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=4, choices=Direction.choices)
    # "manual", or the name of the automatic rule that fired (kept if the rule is deleted).
    kind = models.CharField(max_length=100)
    rule = models.ForeignKey(
        "EscalationRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField()
    handoff_note = models.TextField(blank=True)
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField()
    # Hierarchical escalation: the tier's managers were notified (an outbox event).
    managers_notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["organization", "at"], name="escalation_org_at"),
            models.Index(fields=["ticket", "at"], name="escalation_ticket_at"),
        ]


class Trigger(models.TextChoices):
    TIME_IN_TIER = "time_in_tier", "Time in tier without resolution"
    SLA_RESOLUTION_USED = "sla_resolution_used", "Resolution SLA used past a percentage"
    REOPENED = "reopened", "Reopened a number of times"
    PRIORITY = "priority", "Priority on intake (or raised to it)"


class EscalationRule(models.Model):
    """An automatic escalation. ``organization`` empty: MSP-wide. ``priority`` and
    ``from_tier`` narrow which tickets it watches; ``to_tier`` empty: the next tier up.
    A rule fires at most once per ticket (EscalationFiring)."""

    organization = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="escalation_rules",
    )
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    trigger = models.CharField(max_length=24, choices=Trigger.choices)
    priority = models.CharField(max_length=2, blank=True)
    from_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    minutes = models.PositiveIntegerField(null=True, blank=True)  # time_in_tier
    percent = models.PositiveSmallIntegerField(null=True, blank=True)  # sla_resolution_used
    count = models.PositiveSmallIntegerField(null=True, blank=True)  # reopened
    notify_managers = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                condition=~Q(trigger="time_in_tier") | Q(minutes__gte=1),
                name="escalation_rule_minutes",
            ),
            models.CheckConstraint(
                condition=~Q(trigger="sla_resolution_used") | Q(percent__gte=1, percent__lte=100),
                name="escalation_rule_percent",
            ),
            models.CheckConstraint(
                condition=~Q(trigger="reopened") | Q(count__gte=1), name="escalation_rule_count"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationFiring(models.Model):
    """The guard that makes a rule fire once per ticket: written in the same transaction as
    the escalation, unique per (rule, ticket), so a second worker — or the same one after a
    restart — finds it and stands down."""

    rule = models.ForeignKey(EscalationRule, on_delete=models.CASCADE, related_name="firings")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    fired_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["rule", "ticket"], name="escalation_fires_once")
        ]
