"""The outbox relay: hands committed domain events to their consumers, at least once.

Consumers register a handler for an event name (or ``*``) under a name of their own. Each
consumer's handling of an event runs in its own transaction, which also records that it
is done (``OutboxEvent.handled``): a handler that only writes to the database runs once
per event, and one consumer's failure neither re-runs nor blocks the others. A failed
consumer is tried again with a growing delay, and given up on (logged, kept on the event)
after ``MAX_ATTEMPTS`` runs. A handler with effects outside the database (mail, HTTP) may
still run twice when the process dies between its effect and its commit: it must
deduplicate (e.g. by event and recipient). Channels (email, webhooks) and automations
register here as they land.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from tierdesk.core import clock
from tierdesk.core.models import JobTick, OutboxEvent

log = logging.getLogger(__name__)

Handler = Callable[[OutboxEvent], None]
MAX_ATTEMPTS = 10  # failed runs of one consumer before it gives up on an event
RELAY_SECONDS = 45  # a relay tick stops taking new batches after this: the next tick's turn
BACKOFF_CAP = dt.timedelta(hours=1)
ERROR_KEPT = 2000  # characters of the last error kept on the event


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Handler


_handlers: dict[str, list[Consumer]] = {}


def subscribe(name: str, handler: Handler, *, consumer: str | None = None) -> None:
    """Call ``handler`` for every event called ``name`` (``*`` for all). ``consumer`` names
    it in the events' records (default: the handler's module and name); keep it stable."""
    label = consumer or f"{handler.__module__}.{handler.__qualname__}"
    if any(c.name == label for registered in _handlers.values() for c in registered):
        raise ValueError(f"outbox: a consumer called {label!r} is registered already")
    _handlers.setdefault(name, []).append(Consumer(label, handler))


def claim_tick(job: str) -> bool:
    """Claim this minute's run of ``job``; False when another worker has it already."""
    tick = clock.now().replace(second=0, microsecond=0)
    try:
        with transaction.atomic():
            JobTick.objects.create(job=job, tick=tick, claimed_at=clock.now())
    except IntegrityError:
        return False
    return True


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed run: 1, 2, 4 ... minutes, at most an hour."""
    return min(dt.timedelta(minutes=2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def relay(batch: int = 500) -> int:
    """Hand pending events to their consumers in order; return how many events were
    looked at (``batch`` means: there may be more). An event is done when every consumer
    has handled it or given up; until then it waits ``backoff`` after each failed run."""
    now = clock.now()
    pending = list(
        OutboxEvent.objects.filter(dispatched_at__isnull=True)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .order_by("id")[:batch]
    )
    for event in pending:
        _dispatch(event)
    return len(pending)


def _dispatch(event: OutboxEvent) -> None:
    consumers = _handlers.get(event.name, []) + _handlers.get("*", [])
    failed: list[str] = []
    errors: list[str] = []
    for consumer in consumers:
        if consumer.name in event.handled or consumer.name in event.given_up:
            continue
        try:
            with transaction.atomic():
                consumer.handler(event)
                handled = [*event.handled, consumer.name]
                OutboxEvent.objects.filter(pk=event.pk).update(handled=handled)
            event.handled = handled  # only once it is committed
        except Exception as exc:  # one consumer's failure must not stop the others
            log.exception("outbox: %s failed on event %s (%s)", consumer.name, event.pk,
                          event.name)  # fmt: skip
            failed.append(consumer.name)
            errors.append(f"{consumer.name}: {type(exc).__name__}: {exc}")
    now = clock.now()
    if not failed:
        OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=now)
        return
    # Each consumer's failures are its own: one that failed often does not make another,
    # failing once, give up with it.
    failures = dict(event.failures)
    for name in failed:
        failures[name] = failures.get(name, 0) + 1
    given_up = [name for name in failed if failures[name] >= MAX_ATTEMPTS]
    if given_up:
        log.error("outbox: gave up on event %s (%s) for %s after %s runs", event.pk,
                  event.name, ", ".join(given_up), MAX_ATTEMPTS)  # fmt: skip
    changes: dict[str, object] = {
        "attempts": event.attempts + 1,
        "failures": failures,
        "last_error": "\n".join(errors)[:ERROR_KEPT],
        "given_up": [*event.given_up, *given_up],
    }
    if set(failed) <= set(given_up):
        changes["dispatched_at"] = now
    else:
        changes["retry_at"] = now + backoff(max(failures[n] for n in failed if n not in given_up))
    OutboxEvent.objects.filter(pk=event.pk).update(**changes)
