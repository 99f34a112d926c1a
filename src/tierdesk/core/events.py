"""Domain events: written to the outbox in the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tierdesk.core import clock
from tierdesk.core.models import Organization, OutboxEvent


def emit(
    name: str,
    *,
    organization: Organization | None,
    aggregate_type: str,
    aggregate_id: str | int,
    payload: dict[str, Any],
) -> OutboxEvent:
    """Record event ``name`` (e.g. ``ticket.created``). Must run inside the transaction that
    made the change, so the event exists exactly when the change does."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit() must be called inside the transaction that made the change")
    return OutboxEvent.objects.create(
        name=name,
        organization=organization,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
        created_at=clock.now(),
    )
