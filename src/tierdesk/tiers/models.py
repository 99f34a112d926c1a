"""Tiers, skills, the service catalog (categories) and agents' tier, skills and shifts."""

from __future__ import annotations

from typing import ClassVar

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from tierdesk.core.models import Organization, User


class AssignmentStrategy(models.TextChoices):
    """How a tier hands its new tickets to its agents (see tiers/assignment.py)."""

    MANUAL = "manual", "Manual (agents take tickets from the queue)"
    ROUND_ROBIN = "round_robin", "Round-robin"
    LEAST_LOADED = "least_loaded", "Least loaded"
    SKILL_MATCH = "skill_match", "Skill match, then least loaded"


class Tier(models.Model):
    """A support tier. ``level`` orders them: escalation goes to a higher level."""

    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=100)
    # 1-62: reports keep the tiers a ticket went through as bits of their levels.
    level = models.PositiveSmallIntegerField(
        unique=True, validators=[MinValueValidator(1), MaxValueValidator(62)]
    )
    description = models.TextField(blank=True)
    assignment_strategy = models.CharField(
        max_length=16, choices=AssignmentStrategy.choices, default=AssignmentStrategy.MANUAL
    )
    # Hierarchical escalation notifies these people (team leads, duty managers).
    managers = models.ManyToManyField(User, blank=True, related_name="managed_tiers")
    # What a ticket costs here, for the reports (reports.queries.cost): an hour of this
    # tier's work, in whole units of the MSP's currency, and the time its agents typically
    # spend on one ticket. Empty: not configured.
    hourly_cost = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100_000)]
    )
    handling_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )

    class Meta:
        ordering = ["level"]

    def __str__(self) -> str:
        return self.code


class Skill(models.Model):
    """A kind of work an agent can do (and a category can require)."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Impact(models.IntegerChoices):
    HIGH = 1, "High"
    MEDIUM = 2, "Medium"
    LOW = 3, "Low"


class Urgency(models.IntegerChoices):
    HIGH = 1, "High"
    MEDIUM = 2, "Medium"
    LOW = 3, "Low"


class Category(models.Model):
    """An entry of the service catalog.

    ``organization`` empty means the MSP-wide catalog; set, the category belongs to that
    client only and is invisible to every other tenant.
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="categories"
    )
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    default_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    default_impact = models.PositiveSmallIntegerField(choices=Impact.choices, default=Impact.MEDIUM)
    default_urgency = models.PositiveSmallIntegerField(
        choices=Urgency.choices, default=Urgency.MEDIUM
    )
    required_skills = models.ManyToManyField(Skill, blank=True, related_name="categories")
    # The category's own questions, asked when a ticket of it is opened (see
    # tiers.forms_fields): a list of {key, label, type, required, choices, help}.
    form_fields = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["slug"], condition=Q(organization__isnull=True), name="category_global_slug"
            ),
            models.UniqueConstraint(
                fields=["organization", "slug"],
                condition=Q(organization__isnull=False),
                name="category_org_slug",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class AgentProfile(models.Model):
    """What a staff member works on: their tier and skills."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="agent_profile")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="agents")
    skills = models.ManyToManyField(Skill, blank=True, related_name="agents")
    # Round-robin picks whoever was given a ticket longest ago (never: first).
    last_assigned_at = models.DateTimeField(null=True, blank=True)


class WorkingHours(models.Model):
    """One shift of an agent on one weekday (0 = Monday), in the agent's own time zone."""

    agent = models.ForeignKey(AgentProfile, on_delete=models.CASCADE, related_name="hours")
    weekday = models.PositiveSmallIntegerField()
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["weekday", "start"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="hours_weekday_range"),
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="hours_end_after_start"),
        ]


class RoutingRule(models.Model):
    """One ordered intake rule: when every condition holds, its actions set the ticket's
    tier, category, priority, assignee and tags.

    ``organization`` set: the rule applies to that client's tickets only and is checked
    before the MSP-wide rules (``organization`` empty). The first matching rule wins; with
    none, the category's default tier applies. ``conditions`` holds lists (any of each
    list, all lists together): ``categories``, ``organizations``, ``requesters`` (ids),
    ``priorities``, ``sources``, ``keywords`` (in subject or description, any case).
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="routing_rules"
    )
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField()
    is_active = models.BooleanField(default=True)
    conditions = models.JSONField(default=dict, blank=True)
    set_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    set_category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    set_priority = models.CharField(max_length=2, blank=True)
    set_assignee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    add_tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["position", "id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["organization", "is_active", "position"], name="routing_order")
        ]

    def __str__(self) -> str:
        return self.name
