"""Domain events: written to the outbox in the caller's transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tierdesk.core import bulk, clock
from tierdesk.core.models import Organization, OutboxEvent


def event(
    name: str,
    *,
    organization: Organization | None,
    aggregate_type: str,
    aggregate_id: str | int,
    payload: dict[str, Any],
) -> OutboxEvent:
    """Event ``name`` (e.g. ``ticket.created``), not written yet: see ``emit_all``."""
    return OutboxEvent(
        name=name,
        organization=organization,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        payload=payload,
        created_at=clock.now(),
    )


def emit_all(events: list[OutboxEvent]) -> list[OutboxEvent]:
    """Record ``events`` in one statement. Must run inside the transaction that made the
    change, so the events exist exactly when the change does."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("emit() must be called inside the transaction that made the change")
    return bulk.insert_all(events)


def emit(
    name: str,
    *,
    organization: Organization | None,
    aggregate_type: str,
    aggregate_id: str | int,
    payload: dict[str, Any],
) -> OutboxEvent:
    """Record event ``name`` in the caller's transaction (see ``emit_all``)."""
    return emit_all(
        [
            event(
                name,
                organization=organization,
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                payload=payload,
            )
        ]
    )[0]
