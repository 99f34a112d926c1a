"""Tickets, their comments, attachments and timeline."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models

from tierdesk.core.models import Organization, User
from tierdesk.tiers.models import Category, Impact, Tier, Urgency


class Status(models.TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    PENDING_CUSTOMER = "pending_customer", "Pending customer"
    PENDING_THIRD_PARTY = "pending_third_party", "Pending third party"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = frozenset(
    {
        Status.NEW,
        Status.OPEN,
        Status.IN_PROGRESS,
        Status.PENDING_CUSTOMER,
        Status.PENDING_THIRD_PARTY,
    }
)


class Priority(models.TextChoices):
    P1 = "P1", "P1 - critical"
    P2 = "P2", "P2 - high"
    P3 = "P3", "P3 - medium"
    P4 = "P4", "P4 - low"


class Source(models.TextChoices):
    PORTAL = "portal", "Portal"
    API = "api", "API"
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    MONITORING = "monitoring", "Monitoring"
    CHAT = "chat", "Chat"


class ResolutionCode(models.TextChoices):
    FIXED = "fixed", "Fixed"
    WORKAROUND = "workaround", "Workaround provided"
    ANSWERED = "answered", "Question answered"
    DUPLICATE = "duplicate", "Duplicate"
    NOT_REPRODUCIBLE = "not_reproducible", "Not reproducible"
    NO_RESPONSE = "no_response", "No response from requester"
    WONT_FIX = "wont_fix", "Won't fix"
    # tierdesk did it itself (a self-service password reset, an unlock): counted in the
    # KPIs as resolved by automation
    AUTOMATED = "automated", "Resolved by automation"


class Tag(models.Model):
    """A label on tickets (``vpn``, ``vip``), set by hand or by a routing rule."""

    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="tickets")
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=250)
    description = models.TextField(blank=True)
    requester = models.ForeignKey(User, on_delete=models.PROTECT, related_name="requested_tickets")
    assignee = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="tickets")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="tickets"
    )
    impact = models.PositiveSmallIntegerField(choices=Impact.choices)
    urgency = models.PositiveSmallIntegerField(choices=Urgency.choices)
    priority = models.CharField(max_length=2, choices=Priority.choices)
    # True when someone set the priority by hand; impact/urgency changes then leave it alone.
    priority_is_manual = models.BooleanField(default=False)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=16, choices=Source.choices)
    resolution_code = models.CharField(max_length=24, choices=ResolutionCode.choices, blank=True)
    resolution_note = models.TextField(blank=True)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    # Answers to the category's own questions (Category.form_fields): question key -> text.
    details = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    created_at = models.DateTimeField()
    # When the ticket arrived in its current tier: "time in tier" escalation rules count
    # from here.
    tier_entered_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    # Optimistic concurrency: every change increments it; the API exposes it as the ETag.
    version = models.PositiveIntegerField(default=1)

    # Not columns: the ticket's tag names and SLA clocks when something already has them
    # (a page of tickets loads them in two queries, a service hands over what it just
    # wrote); None: not loaded. Read them with tickets.queries.tag_names / clocks_of.
    loaded_tags: list[str] | None = None
    loaded_clocks: list[Any] | None = None

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["organization", "number"], name="ticket_org_number")
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["organization", "status", "-created_at"], name="ticket_org_status"
            ),
            models.Index(fields=["-created_at", "-id"], name="ticket_created"),
            # Tier queues: filter on tier and status, newest first, keyset on id.
            models.Index(fields=["tier", "status", "-created_at", "-id"], name="ticket_tier_queue"),
            # The console's tier queues show every open status, newest first: walking the
            # tier by date and skipping closed rows beats collecting five statuses and
            # sorting them (100k tickets, SQLite: 0.2 ms against 38 ms).
            models.Index(fields=["tier", "-created_at", "-id"], name="ticket_tier_newest"),
            # The console's queue counts read only these columns of the open tickets of the
            # organizations an agent serves: answered from the index alone (100k tickets,
            # SQLite: 14 ms against 49 ms reading the rows).
            models.Index(
                fields=["organization", "status", "tier", "assignee"], name="ticket_queue_counts"
            ),
            # An organization's newest tickets (beside a ticket, and lists filtered by
            # organization): without it the database sorted all of a client's tickets.
            models.Index(fields=["organization", "-created_at", "-id"], name="ticket_org_newest"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            # "Time in tier" escalation sweeps: unresolved tickets of a tier by arrival,
            # seeking (tier, status) and ranging on the arrival. Not a partial index: SQLite
            # cannot prove that bound status parameters imply its condition and ignores it.
            models.Index(
                fields=["tier", "status", "tier_entered_at"], name="ticket_tier_status_age"
            ),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        """The human ticket number, e.g. ``ACME-1042`` (needs ``organization`` loaded)."""
        return f"{self.organization.code}-{self.number}"


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    is_internal = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]


class Attachment(models.Model):
    """A file on a ticket, stored under ``storage_key`` below the attachments directory,
    outside any web root; served only through an authorization check."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(
        Comment, null=True, blank=True, on_delete=models.SET_NULL, related_name="attachments"
    )
    uploaded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    storage_key = models.CharField(max_length=64, unique=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    is_internal = models.BooleanField(default=False)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]


class TimelineKind(models.TextChoices):
    CREATED = "created", "Created"
    FIELD_CHANGED = "field_changed", "Field changed"
    STATUS_CHANGED = "status_changed", "Status changed"
    COMMENT = "comment", "Reply"
    INTERNAL_NOTE = "internal_note", "Internal note"
    ATTACHMENT = "attachment", "Attachment"
    ROUTED = "routed", "Routed"
    ASSIGNED = "assigned", "Assigned"
    ESCALATED = "escalated", "Escalated"
    DE_ESCALATED = "de_escalated", "De-escalated"
    RATED = "rated", "Rated"
    LINKED = "linked", "Linked"
    UNLINKED = "unlinked", "Unlinked"
    MERGED = "merged", "Merged"


class TimelineEntry(models.Model):
    """One line of a ticket's history: who did what, old value and new value, when."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField()
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=24, choices=TimelineKind.choices)
    field = models.CharField(max_length=32, blank=True)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    comment = models.ForeignKey(Comment, null=True, on_delete=models.CASCADE, related_name="+")
    is_internal = models.BooleanField(default=False)

    class Meta:
        ordering = ["at", "id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["ticket", "at"], name="timeline_ticket_at")
        ]


class SatisfactionRating(models.Model):
    """The requester's rating of how a resolved ticket was handled (CSAT): 1-5 and an
    optional comment, once per ticket."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="rating")
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    rated_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                condition=models.Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"
            )
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["organization", "created_at"], name="rating_org_created")
        ]


class LinkKind(models.TextChoices):
    """How a link's ``source`` relates to its ``target`` ("ACME-12 duplicate of ACME-10")."""

    DUPLICATE_OF = "duplicate_of", "Duplicate of"
    RELATED_TO = "related_to", "Related to"
    CAUSED_BY = "caused_by", "Caused by"


# How a link reads from its target's side ("ACME-10 has duplicate ACME-12").
LINK_INVERSE: dict[str, str] = {
    LinkKind.DUPLICATE_OF: "Has duplicate",
    LinkKind.RELATED_TO: "Related to",
    LinkKind.CAUSED_BY: "Causes",
}


class TicketLink(models.Model):
    """A relation between two tickets of one organization, seen from both of them. Two
    tickets have at most one link (the service checks it under both tickets' locks; the
    constraint catches the same direction). ``is_merge``: the link a merge made from the
    merged (closed) ticket to the one it went into; it cannot be removed."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_in")
    kind = models.CharField(max_length=16, choices=LinkKind.choices)
    is_merge = models.BooleanField(default=False)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["source", "target"], name="ticket_link_pair"),
            models.CheckConstraint(
                condition=~models.Q(source=models.F("target")), name="ticket_link_not_self"
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["target"], name="ticket_link_target")
        ]
