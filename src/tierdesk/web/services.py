"""Changes to what the pages keep per person."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from tierdesk.core import clock
from tierdesk.core.errors import Conflict, NotFound, ValidationFailed
from tierdesk.core.models import User
from tierdesk.web.models import SavedView

MAX_VIEWS = 50


@transaction.atomic
def saved_view_create(*, actor: User, name: str, queue: str, query: str) -> SavedView:
    """Save ``queue`` with ``query`` (already checked by the caller against the queue's
    filters) as ``name``, for ``actor`` only."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 60 or not name.isprintable():
        raise ValidationFailed.for_field("name", "1 to 60 printable characters")
    if SavedView.objects.filter(user=actor).count() >= MAX_VIEWS:
        raise ValidationFailed.for_field("name", f"at most {MAX_VIEWS} saved views")
    try:
        with transaction.atomic():
            return SavedView.objects.create(
                user=actor, name=name, queue=queue, query=query[:1000], created_at=clock.now()
            )
    except IntegrityError:
        raise Conflict.for_field("name", "you already have a view with this name") from None


@transaction.atomic
def saved_view_delete(*, actor: User, view_id: int) -> None:
    deleted, _ = SavedView.objects.filter(user=actor, pk=view_id).delete()
    if not deleted:
        raise NotFound("No such view.")
