"""The outbox relay: hands committed domain events to their consumers, at least once.

Consumers register a handler for an event name (or ``*``); handlers must be idempotent,
since an event is handed over again when the relay stops between handling and marking.
Channels (email, webhooks) and automations register here as they land.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction

from tierdesk.core import clock
from tierdesk.core.models import JobTick, OutboxEvent

log = logging.getLogger(__name__)

Handler = Callable[[OutboxEvent], None]
_handlers: dict[str, list[Handler]] = {}


def subscribe(name: str, handler: Handler) -> None:
    """Call ``handler`` for every event called ``name`` (``*`` for all)."""
    _handlers.setdefault(name, []).append(handler)


def claim_tick(job: str) -> bool:
    """Claim this minute's run of ``job``; False when another worker has it already."""
    tick = clock.now().replace(second=0, microsecond=0)
    try:
        with transaction.atomic():
            JobTick.objects.create(job=job, tick=tick, claimed_at=clock.now())
    except IntegrityError:
        return False
    return True


def relay(batch: int = 500) -> int:
    """Hand pending events to their handlers in order; return how many were dispatched.
    An event whose handler fails is retried on the next run (its attempts counted)."""
    done = 0
    pending = list(OutboxEvent.objects.filter(dispatched_at__isnull=True).order_by("id")[:batch])
    for event in pending:
        handlers = _handlers.get(event.name, []) + _handlers.get("*", [])
        try:
            for handler in handlers:
                handler(event)
        except Exception:  # a consumer's failure must not stop the others; logged, retried
            log.exception("outbox handler failed for event %s (%s)", event.pk, event.name)
            OutboxEvent.objects.filter(pk=event.pk).update(attempts=event.attempts + 1)
            continue
        OutboxEvent.objects.filter(pk=event.pk, dispatched_at__isnull=True).update(
            dispatched_at=clock.now(), attempts=event.attempts + 1
        )
        done += 1
    return done
