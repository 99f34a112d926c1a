"""What the pages keep per person: saved queue views."""

from __future__ import annotations

from typing import ClassVar

from django.db import models

from tierdesk.core.models import User


class SavedView(models.Model):
    """A personal view: a console queue with its filters, under a name of the user's."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=60)
    queue = models.SlugField(max_length=32)
    # The filters as a query string the queue page accepts (checked when saved).
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["user", "name"], name="saved_view_user_name")
        ]


class RateLimitHit(models.Model):
    """One counted attempt (a reset request, a wrong sign-in code) against a limit. Kept in
    the database so that every server process counts the same attempts; the key (an email
    or an address) is stored only as a keyed hash."""

    scope = models.CharField(max_length=32)
    key = models.CharField(max_length=64)
    at = models.DateTimeField()

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["scope", "key", "at"], name="rate_limit_scope_key_at")
        ]
