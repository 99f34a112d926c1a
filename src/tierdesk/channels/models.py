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
    SECURITY_ALERT = "security_alert", "A security alert (automation)"


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
    # None: about no ticket (a security alert, the approval of a run asked through the API).
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
    # Set (and committed) just before the message goes to the mail server, cleared with
    # the outcome: still set when the claim comes back means a worker died mid-send.
    sending_since = models.DateTimeField(null=True, blank=True)

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


# --- email in (channels.mailboxes, channels.inbound) ------------------------------------------


class MailSecurity(models.TextChoices):
    TLS = "tls", "TLS from the start (IMAPS, port 993)"
    STARTTLS = "starttls", "STARTTLS (port 143)"


class UnknownSenders(models.TextChoices):
    DOMAINS = "domains", "A new requester when the address is in one of the organization's domains"
    ANYONE = "anyone", "A new requester for any address"
    QUARANTINE = "quarantine", "Quarantine: an admin decides"


class Mailbox(models.Model):
    """An IMAP mailbox the worker polls for one organization. The organization of what
    arrives is this mailbox's, never a header's."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    # The address people write to; replies to notifications go to it with a token
    # (support+<token>@example.com), so the server must deliver plus-addresses to it.
    address = models.EmailField(max_length=254, unique=True)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    security = models.CharField(max_length=10, choices=MailSecurity.choices)
    username = models.CharField(max_length=200)
    password_sealed = models.TextField()  # core.crypto; never shown again
    # Certificates to trust besides the public ones (PEM), for a server with its own CA.
    ca_certificate = models.TextField(blank=True)
    folder = models.CharField(max_length=200, default="INBOX")
    unknown_senders = models.CharField(
        max_length=12, choices=UnknownSenders.choices, default=UnknownSenders.DOMAINS
    )
    is_active = models.BooleanField(default=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]


class InboundStatus(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    QUARANTINED = "quarantined", "Quarantined"


class InboundMessage(models.Model):
    """A message as it arrived, stored (and committed) before the server is told it was
    taken, then processed into a ticket or a reply in one transaction. Unique per mailbox
    and key (its Message-ID, else a hash of its bytes): fetching it again after a crash
    finds it stored."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="messages")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    raw = models.BinaryField()
    size = models.PositiveIntegerField()  # as the server announced it (raw may be cut)
    message_id = models.CharField(max_length=255, blank=True)
    sender = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(
        max_length=12, choices=InboundStatus.choices, default=InboundStatus.RECEIVED
    )
    reason = models.CharField(max_length=500, blank=True)
    auto_generated = models.BooleanField(default=False)  # no auto-reply goes to it
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.ForeignKey(
        "tickets.Comment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)  # failed processing runs
    retry_at = models.DateTimeField(null=True, blank=True)  # after a failed run: not before
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["mailbox", "key"], name="inbound_message_once")
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["id"], condition=Q(status="received"), name="inbound_message_pending"
            ),
            models.Index(fields=["status", "-id"], name="inbound_message_status"),
        ]


class AutoReply(models.Model):
    """When an organization last sent an automatic message (an acknowledgement) to an
    address: at most one per ``loops.AUTO_REPLY_WINDOW``."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=254)
    last_sent_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["organization", "address"], name="auto_reply_once")
        ]
