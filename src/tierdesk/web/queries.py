"""Reads of what the pages keep per person."""

from __future__ import annotations

from tierdesk.core.models import User
from tierdesk.web.models import SavedView


def saved_views(*, actor: User) -> list[SavedView]:
    """The actor's own saved views, by name (nobody sees another's)."""
    return list(SavedView.objects.filter(user=actor).order_by("name"))
