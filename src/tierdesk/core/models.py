"""The shared kernel's data: organizations (tenants), people and roles, API tokens,
the audit log, the domain-event outbox, idempotency records and periodic-job guards."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


@functools.cache
def _known_zones() -> frozenset[str]:
    # Reading the zone database walks the file system: about 30 ms a time.
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    from django.core.exceptions import ValidationError

    if value not in _known_zones():
        raise ValidationError(f"{value!r} is not a known IANA time zone")


class Organization(models.Model):
    """A client organization of the MSP: one tenant."""

    code = models.CharField(
        max_length=10,
        unique=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9]{1,9}$", "2-10 capital letters or digits")],
        help_text="Short code used in ticket numbers, e.g. ACME in ACME-1042.",
    )
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    email_domains = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    # The last ticket number handed out; advanced in the same transaction as the ticket
    # insert, so a rolled-back create gives its number back and numbers stay gap-free.
    last_ticket_number = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    AGENT = "agent", "Agent"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"


STAFF_ROLES = frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN})


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user


class User(AbstractBaseUser):
    """A person: a requester of one client organization, or a member of the MSP's staff."""

    email = models.EmailField(unique=True, max_length=254)
    full_name = models.CharField(max_length=200)
    role = models.CharField(max_length=16, choices=Role.choices)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    # A requester with this flag sees every ticket of their organization, not only their own.
    sees_organization_tickets = models.BooleanField(default=False)
    served_organizations = models.ManyToManyField(
        Organization, blank=True, related_name="served_by"
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    is_active = models.BooleanField(default=True)
    # Mail to this address bounced (a delivery status notice came back): when and why.
    email_bounced_at = models.DateTimeField(null=True, blank=True)
    email_bounce_reason = models.CharField(max_length=300, blank=True)
    date_joined = models.DateTimeField()

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["full_name"]

    class Meta:
        ordering = ["email"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                condition=(Q(role="requester") & Q(organization__isnull=False))
                | (~Q(role="requester") & Q(organization__isnull=True)),
                name="user_requester_has_org_staff_has_none",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_staff_member(self) -> bool:
        return self.role in STAFF_ROLES


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="Public start of the token, for display.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class AuditEntry(models.Model):
    """Who changed what outside a ticket's own timeline (organizations, users, tokens, ...)."""

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    organization = models.ForeignKey(
        Organization, null=True, on_delete=models.CASCADE, related_name="+"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]


class OutboxEvent(models.Model):
    """A domain event, written in the same transaction as the change it describes.

    Consumers (notifications, webhooks, automations) read it at least once after commit and
    must be idempotent; ``dispatched_at`` marks the relay's progress: set when every
    consumer has handled the event (``handled``: their names, each added in the
    transaction of its handler) or given up on it after ``outbox.MAX_ATTEMPTS``.
    """

    name = models.CharField(max_length=64, db_index=True)
    organization = models.ForeignKey(
        Organization, null=True, on_delete=models.CASCADE, related_name="+"
    )
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # failed runs, all consumers
    handled = models.JSONField(default=list, blank=True)  # consumers done with it
    given_up = models.JSONField(default=list, blank=True)  # consumers that failed too often
    failures = models.JSONField(default=dict, blank=True)  # failed runs, per consumer
    retry_at = models.DateTimeField(null=True, blank=True)  # after a failure: not before
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(
                fields=["id"], condition=Q(dispatched_at__isnull=True), name="outbox_pending"
            )
        ]


class IdempotencyRecord(models.Model):
    """The first answer to a create carrying an Idempotency-Key, replayed to retries."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key")
        ]


class JobTick(models.Model):
    """Guard for periodic jobs: one row per (job, tick), so a tick runs once however many
    workers run."""

    job = models.CharField(max_length=64)
    tick = models.DateTimeField()
    claimed_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["job", "tick"], name="jobtick_once")
        ]


class ConfigState(models.Model):
    """One row per cache group (core.config) whose ``token`` changes (to a new random value)
    whenever what that group caches changes: ``config`` for routing and escalation rules,
    SLA policies, calendars, tiers, categories; ``kb`` for the knowledge base's articles. A
    process compares it — one tiny query — before trusting its cache. Random, not a
    counter, so a rolled-back change can never make an old cache look current."""

    name = models.CharField(max_length=40, unique=True)
    token = models.CharField(max_length=32)
