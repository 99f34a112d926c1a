"""Webhooks: HTTPS endpoints that receive the domain events they asked for, signed, with
a record of every delivery (channels.webhooks)."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q

from tierdesk.core.models import Organization, OutboxEvent, User


class Webhook(models.Model):
    """An endpoint and the events it wants. An organization's receives that
    organization's events only; an MSP-wide one (no organization; admins) every
    organization's."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    url = models.CharField(max_length=500)
    events = models.JSONField(default=list)  # event names; "*" for all
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=64)
    # After a rotation the old secret signs too, until then: receivers switch in between.
    previous_secret = models.CharField(max_length=64, blank=True)
    previous_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    failures = models.PositiveIntegerField(default=0)  # failed attempts in a row
    failing_since = models.DateTimeField(null=True, blank=True)  # the first of those
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (given up)"


class WebhookDelivery(models.Model):
    """One event for one webhook: created once (the pair is unique), sent until it is
    answered with 2xx or given up on; ``delivery_id`` is what the receiver deduplicates
    by (the same on every attempt and on a replay)."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="+")
    delivery_id = models.UUIDField(unique=True)
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["webhook", "event"], name="webhook_delivery_once")
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            )
        ]
