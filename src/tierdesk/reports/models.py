"""What the reports count, one row per ticket: the facts of its life so far (when it was
created, first answered and resolved, in wall and business time; the tiers it went
through; its escalations, reopens, SLA outcomes and rating). Rows are derived: facts.py
computes them from the tickets, timelines, escalations, clocks and ratings, and can
recompute any of them at any time with the same result, so they are a cache the reports
read instead of joining the whole history for every chart (see docs/kpis.md)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from tierdesk.core.models import Organization, User
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.models import Category, Tier


class SlaOutcome(models.TextChoices):
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    RUNNING = "running", "Running"  # not decided yet (running or paused, not breached)


class TicketFact(models.Model):
    ticket = models.OneToOneField(
        Ticket, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()
    source = models.CharField(max_length=16)
    priority = models.CharField(max_length=2)
    category = models.ForeignKey(Category, null=True, on_delete=models.SET_NULL, related_name="+")
    first_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")  # now
    # The tier it was in at its (last) resolution; empty while it is not resolved.
    resolved_tier = models.ForeignKey(Tier, null=True, on_delete=models.PROTECT, related_name="+")
    # Resolved as a duplicate of another ticket (merged): not counted as resolved work.
    duplicate = models.BooleanField(default=False)
    # Tiers the ticket was ever in, as a bit set of their levels (1 << level): "was at L1".
    tiers_visited = models.BigIntegerField()
    assignee = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    is_open = models.BooleanField()
    first_response_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)  # the last resolution, while it holds
    closed_at = models.DateTimeField(null=True)
    # Seconds from creation, in wall time and in the business hours of the calendar of the
    # organization's SLA policy (24 x 7 without one).
    response_seconds = models.BigIntegerField(null=True)
    response_business_seconds = models.BigIntegerField(null=True)
    resolution_seconds = models.BigIntegerField(null=True)
    resolution_business_seconds = models.BigIntegerField(null=True)
    escalations = models.PositiveSmallIntegerField()  # moves up, manual or automatic
    automatic_escalations = models.PositiveSmallIntegerField()
    de_escalations = models.PositiveSmallIntegerField()
    # Moves up out of a tier, by the level they left: "escalated from L1 to L2".
    escalated_from = models.BigIntegerField()  # bit set of levels, as tiers_visited
    reopens = models.PositiveSmallIntegerField()
    # The requester's replies between the first staff response and the resolution.
    requester_replies = models.PositiveSmallIntegerField()
    first_contact_resolution = models.BooleanField()
    sla_response = models.CharField(max_length=8, choices=SlaOutcome.choices, blank=True)
    sla_resolution = models.CharField(max_length=8, choices=SlaOutcome.choices, blank=True)
    sla_policy_id = models.IntegerField(null=True)  # kept if the policy goes
    csat_score = models.PositiveSmallIntegerField(null=True)
    rated_at = models.DateTimeField(null=True)
    resolved_by_automation = models.BooleanField(default=False)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "reports_ticket_fact"
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["organization", "created_at"], name="fact_org_created"),
            models.Index(fields=["organization", "resolved_at"], name="fact_org_resolved"),
            models.Index(fields=["created_at"], name="fact_created"),
            models.Index(fields=["resolved_at"], name="fact_resolved"),
            models.Index(fields=["organization", "rated_at"], name="fact_org_rated"),
            models.Index(fields=["organization", "closed_at"], name="fact_org_closed"),
            models.Index(
                fields=["organization", "tier"],
                condition=models.Q(is_open=True),
                name="fact_org_open",
            ),
            models.Index(fields=["sla_policy_id"], name="fact_policy"),
            # The agents report's open tickets per assignee (SQLite otherwise walks every
            # fact of the assignees through the foreign key's own index).
            models.Index(fields=["assignee", "is_open"], name="fact_assignee_open"),
        ]


class StaleFact(models.Model):
    """A ticket whose facts must be computed again: written by the outbox relay for every
    event about it, emptied by the worker's refresh (facts.refresh_stale)."""

    ticket_id = models.BigIntegerField(primary_key=True)

    class Meta:
        db_table = "reports_stale_fact"


class DayCount(models.Model):
    """One cell of the rollups (reports.rollups): what the facts of one organization's
    tickets add up to on one of its days (in its time zone), for one kind of moment
    (``kind``: created, resolved, closed, rated) and one value of one dimension (``dim``:
    "" for all of them, or tier, priority, category, source, policy, visited, assignee with
    the value in ``value``). Kept from the facts as they change; the reports read these few
    rows instead of every ticket of the period."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=8)
    dim = models.CharField(max_length=8, blank=True)
    value = models.CharField(max_length=40, blank=True)
    n = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)  # resolved as a duplicate (not in n)
    response_met = models.BigIntegerField(default=0)
    response_breached = models.BigIntegerField(default=0)
    resolution_met = models.BigIntegerField(default=0)
    resolution_breached = models.BigIntegerField(default=0)
    escalated = models.BigIntegerField(default=0)  # visited: moved up out of that level
    fcr = models.BigIntegerField(default=0)
    reopened = models.BigIntegerField(default=0)
    automation = models.BigIntegerField(default=0)
    rated = models.BigIntegerField(default=0)  # resolved and rated
    score_1 = models.BigIntegerField(default=0)
    score_2 = models.BigIntegerField(default=0)
    score_3 = models.BigIntegerField(default=0)
    score_4 = models.BigIntegerField(default=0)
    score_5 = models.BigIntegerField(default=0)

    class Meta:
        db_table = "reports_day_count"
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["organization", "day", "kind", "dim", "value"], name="day_count_cell"
            )
        ]


class StaleRollup(models.Model):
    """An organization whose rollups must be counted again from its facts, whole (after
    the upgrade that brought them, or a change of its time zone, which moves its days):
    written by the migration and the relay, emptied by the worker (rollups.refresh_stale)."""

    organization_id = models.BigIntegerField(primary_key=True)
    marked_at = models.DateTimeField()

    class Meta:
        db_table = "reports_stale_rollup"
