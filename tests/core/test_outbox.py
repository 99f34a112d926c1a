"""The outbox relay and the once-per-tick guard of periodic jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils.module_loading import autodiscover_modules
from huey.contrib.djhuey import HUEY

from tests.conftest import Cast, make_ticket
from tierdesk.core import outbox
from tierdesk.core.models import JobTick, OutboxEvent
from tierdesk.core.tasks import housekeeping_tick, outbox_relay_tick


@pytest.fixture
def handlers() -> Iterator[dict[str, list[outbox.Handler]]]:
    saved = dict(outbox._handlers)
    outbox._handlers.clear()
    try:
        yield outbox._handlers
    finally:
        outbox._handlers.clear()
        outbox._handlers.update(saved)


def test_a_tick_is_claimed_once(db: None) -> None:
    assert outbox.claim_tick("job-a") is True
    assert outbox.claim_tick("job-a") is False
    assert outbox.claim_tick("job-b") is True
    assert JobTick.objects.count() == 2


def test_relay_hands_events_over_in_order_and_marks_them(
    cast: Cast, handlers: dict[str, list[outbox.Handler]]
) -> None:
    seen: list[str] = []
    outbox.subscribe("ticket.created", lambda e: seen.append(e.payload["key"]))
    outbox.subscribe("*", lambda e: seen.append(e.name))
    make_ticket(cast.lena, cast.acme, cast.alice)
    make_ticket(cast.lena, cast.acme, cast.bob)
    pending = OutboxEvent.objects.filter(dispatched_at__isnull=True).count()
    assert outbox.relay() == pending
    assert seen[-4:] == ["ACME-1", "ticket.created", "ACME-2", "ticket.created"]
    assert outbox.relay() == 0  # nothing is handed over twice once marked


def test_a_failing_handler_is_retried_and_does_not_block_others(
    cast: Cast, handlers: dict[str, list[outbox.Handler]]
) -> None:
    calls = {"n": 0}

    def flaky(event: OutboxEvent) -> None:
        calls["n"] += 1
        if event.payload.get("key") == "ACME-1" and calls["n"] == 1:
            raise ConnectionError("mail server down")

    OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")
    outbox.subscribe("ticket.created", flaky)
    make_ticket(cast.lena, cast.acme, cast.alice)
    make_ticket(cast.lena, cast.acme, cast.bob)
    assert outbox.relay() == 1
    failed = OutboxEvent.objects.get(name="ticket.created", dispatched_at__isnull=True)
    assert failed.attempts == 1
    assert outbox.relay() == 1
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_the_periodic_jobs_run_through_huey_once_per_tick(
    cast: Cast, handlers: dict[str, list[outbox.Handler]]
) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    autodiscover_modules("tasks")  # as `tierdesk worker` (run_huey) does at start
    # Huey's scheduler asks which periodic tasks are due at an instant (naive UTC).
    due_at_17 = {task.name for task in HUEY.read_periodic(dt.datetime(2026, 1, 1, 0, 17))}
    due_at_18 = {task.name for task in HUEY.read_periodic(dt.datetime(2026, 1, 1, 0, 18))}
    assert {"outbox_relay_tick", "housekeeping_tick"} <= due_at_17
    assert "attachment_orphans_tick" in {
        task.name for task in HUEY.read_periodic(dt.datetime(2026, 1, 1, 0, 41))
    }
    assert "housekeeping_tick" not in due_at_18
    HUEY.immediate = True
    try:
        outbox_relay_tick()
        assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()
        make_ticket(cast.lena, cast.acme, cast.bob)
        outbox_relay_tick()  # same minute: another worker's run, skipped
        housekeeping_tick()
    finally:
        HUEY.immediate = False
    assert OutboxEvent.objects.filter(dispatched_at__isnull=True).count() == 1
