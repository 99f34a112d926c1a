"""Webhooks: HTTPS endpoints that receive the domain events they asked for, signed, with
a record of every delivery (channels.webhooks); email notifications, people's
preferences for them and organizations' own templates (channels.notify)."""

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


# --- notifications (channels.notify) --------------------------------------------------------


class NotificationKind(models.TextChoices):
    """What a notification is about; each has its own templates and preference."""

    TICKET_CREATED = "ticket_created", "Your ticket was received"
    TICKET_REPLIED = "ticket_replied", "A reply on a ticket"
    TICKET_ESCALATED = "ticket_escalated", "A ticket was escalated to your tier"
    TICKET_RESOLVED = "ticket_resolved", "Your ticket was resolved"
    SLA_WARNING = "sla_warning", "A ticket is close to its SLA target"
    SLA_BREACHED = "sla_breached", "A ticket missed its SLA target"
    APPROVAL_NEEDED = "approval_needed", "An approval is waiting for you"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (given up)"
    SKIPPED = "skipped", "Skipped (the recipient can no longer receive it)"


class Notification(models.Model):
    """One email about one event to one person: created once (the pair is unique, so a
    relay that runs twice queues it once), sent until the mail server takes it or it is
    given up on. ``message_id`` is fixed before the first attempt and the same on every
    retry, so a receiver can drop a resend after a crash."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="+")
    recipient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    ticket_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    message_id = models.CharField(max_length=250, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["event", "recipient"], name="notification_once")
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="notification_due",
            )
        ]


class NotificationPreference(models.Model):
    """A person's choice for one kind; no row means the default (on)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    email = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["user", "kind"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once")
        ]


class NotificationTemplate(models.Model):
    """An organization's own wording for one kind, in place of the built-in templates:
    Django template text, checked when saved. Without ``html`` the message is plain text
    only."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    subject = models.CharField(max_length=500)
    text = models.TextField()
    html = models.TextField(blank=True)
    updated_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["organization", "kind"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["organization", "kind"], name="notification_template_once"
            )
        ]
