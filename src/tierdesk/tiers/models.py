"""Tiers, skills, the service catalog (categories) and agents' tier, skills and shifts."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import F, Q

from tierdesk.core.models import Organization, User


class Tier(models.Model):
    """A support tier. ``level`` orders them: escalation goes to a higher level."""

    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=100)
    level = models.PositiveSmallIntegerField(unique=True)
    description = models.TextField(blank=True)

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
