"""A client organization's directory, and the record of every action run against it."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from tierdesk.core.models import Organization, User


class DirectoryKind(models.TextChoices):
    OPENLDAP = "openldap", "OpenLDAP (ppolicy)"
    ACTIVE_DIRECTORY = "active_directory", "Active Directory"


class DirectorySecurity(models.TextChoices):
    LDAPS = "ldaps", "LDAPS (TLS from the start)"
    STARTTLS = "starttls", "StartTLS"


class Directory(models.Model):
    """How tierdesk reaches one client organization's directory, and where it may act:
    only on entries below ``allowed_ous``, never on members of ``protected_groups``, and
    only on the memberships of ``allowed_groups``."""

    organization = models.OneToOneField(Organization, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=DirectoryKind.choices)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField()
    security = models.CharField(max_length=10, choices=DirectorySecurity.choices)
    # Certificates to trust besides the public ones (PEM), for a directory with its own CA.
    ca_certificate = models.TextField(blank=True)
    bind_dn = models.CharField(max_length=500)
    password_sealed = models.TextField()  # core.crypto; never shown again
    base_dn = models.CharField(max_length=500)
    # How a person is found: by the name they sign in with, or by their email address.
    login_attribute = models.CharField(max_length=64)
    email_attribute = models.CharField(max_length=64, default="mail")
    allowed_ous = models.JSONField(default=list)
    protected_groups = models.JSONField(default=list)
    allowed_groups = models.JSONField(default=list)
    # Where new accounts are made (the create-user runbook); one of the allowed OUs.
    new_accounts_ou = models.CharField(max_length=500, blank=True)
    min_password_length = models.PositiveSmallIntegerField(default=12)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["pk"]


class Channel(models.TextChoices):
    SELF_SERVICE = "self_service", "Self-service (portal)"
    TICKET = "ticket", "From a ticket"
    API = "api", "API"


class RunStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Approval refused"
    EXPIRED = "expired", "Approval expired"


class ActionRun(models.Model):
    """One run of a runbook for one account. Unique per (organization, idempotency key):
    sending the same request again finds this run instead of acting twice. Parameters
    are kept without secrets; a generated or chosen password is never stored."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    runbook = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    account = models.CharField(max_length=254)  # as asked for (a login or an address)
    account_dn = models.CharField(max_length=500, blank=True)  # what it was found to be
    parameters = models.JSONField(default=dict)
    idempotency_key = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=RunStatus.choices)
    outcome = models.CharField(max_length=500, blank=True)
    # After a failure: what the completed steps left in the directory that could not be
    # taken back. Empty: the directory is as it was before the run.
    remains = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="action_run_once"
            )
        ]


class StepStatus(models.TextChoices):
    STARTED = "started", "Started"
    DONE = "done", "Done"
    UNCHANGED = "unchanged", "Nothing to change"
    FAILED = "failed", "Failed"
    UNDONE = "undone", "Taken back"
    UNDO_FAILED = "undo_failed", "Could not be taken back"


class ActionStep(models.Model):
    """One step of a run and its outcome, written as the step starts and again as it
    ends: a run cut short shows where."""

    run = models.ForeignKey(ActionRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=12, choices=StepStatus.choices)
    detail = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]


class Verification(models.Model):
    """A one-time code sent to a requester's address on file before a self-service action:
    kept only as a keyed hash, valid for minutes, for a few tries, and used once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    runbook = models.CharField(max_length=64)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
