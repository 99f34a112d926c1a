"""The outbox relay and the once-per-tick guard of periodic jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils.module_loading import autodiscover_modules
from huey.contrib.djhuey import HUEY

from tests.conftest import Cast, make_ticket
from tierdesk.core import clock, outbox
from tierdesk.core.models import JobTick, OutboxEvent
from tierdesk.core.tasks import housekeeping_tick, outbox_relay_tick

START = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


@pytest.fixture
def handlers() -> Iterator[dict[str, list[outbox.Consumer]]]:
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
    cast: Cast, handlers: dict[str, list[outbox.Consumer]]
) -> None:
    seen: list[str] = []
    outbox.subscribe("ticket.created", lambda e: seen.append(e.payload["key"]), consumer="key")
    outbox.subscribe("*", lambda e: seen.append(e.name), consumer="name")
    with pytest.raises(ValueError, match="registered already"):
        outbox.subscribe("ticket.updated", lambda e: None, consumer="key")
    make_ticket(cast.lena, cast.acme, cast.alice)
    make_ticket(cast.lena, cast.acme, cast.bob)
    pending = OutboxEvent.objects.filter(dispatched_at__isnull=True).count()
    assert outbox.relay() == pending
    assert seen[-4:] == ["ACME-1", "ticket.created", "ACME-2", "ticket.created"]
    assert outbox.relay() == 0  # nothing is handed over twice once marked


def test_a_failing_handler_is_retried_and_does_not_block_others(
    cast: Cast, handlers: dict[str, list[outbox.Consumer]]
) -> None:
    calls = {"n": 0}

    def flaky(event: OutboxEvent) -> None:
        calls["n"] += 1
        if event.payload.get("key") == "ACME-1" and calls["n"] == 1:
            raise ConnectionError("mail server down")

    OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")
    outbox.subscribe("ticket.created", flaky)
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice)
        make_ticket(cast.lena, cast.acme, cast.bob)
        assert outbox.relay() == 2
        failed = OutboxEvent.objects.get(name="ticket.created", dispatched_at__isnull=True)
        assert failed.attempts == 1
        assert "ConnectionError: mail server down" in failed.last_error
        assert failed.retry_at == START + dt.timedelta(minutes=1)
        assert outbox.relay() == 0  # not before its time
    with clock.frozen_at(START + dt.timedelta(minutes=1)):
        assert outbox.relay() == 1
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_a_consumer_that_failed_is_retried_alone_and_its_writes_undone(
    cast: Cast, handlers: dict[str, list[outbox.Consumer]]
) -> None:
    """Three consumers; the second fails twice. The first and third ran once each, and
    the second's database writes of its failed runs are rolled back."""
    runs: dict[str, int] = {"first": 0, "second": 0, "third": 0}

    def counting(name: str, fails: int = 0) -> outbox.Handler:
        def handle(event: OutboxEvent) -> None:
            runs[name] += 1
            JobTick.objects.create(job=f"{name}-{runs[name]}", tick=clock.now(),
                                   claimed_at=clock.now())  # fmt: skip
            if runs[name] <= fails:
                raise RuntimeError(f"{name} down")

        return handle

    OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")
    outbox.subscribe("ticket.created", counting("first"), consumer="first")
    outbox.subscribe("ticket.created", counting("second", fails=2), consumer="second")
    outbox.subscribe("*", counting("third"), consumer="third")
    moment = START
    with clock.frozen_at(moment):
        make_ticket(cast.lena, cast.acme, cast.alice)
    for _ in range(3):
        with clock.frozen_at(moment):
            outbox.relay()
        moment += dt.timedelta(hours=1)
    event = OutboxEvent.objects.get(name="ticket.created")
    assert runs == {"first": 1, "second": 3, "third": 1}
    assert event.handled == ["first", "third", "second"]
    assert event.dispatched_at is not None
    assert event.attempts == 2
    # The failed runs' rows were rolled back with them; the successful run's stayed.
    assert set(JobTick.objects.filter(job__startswith="second").values_list("job", flat=True)) == {
        "second-3"
    }


def test_a_consumer_is_given_up_on_after_its_attempts(
    cast: Cast, handlers: dict[str, list[outbox.Consumer]]
) -> None:
    def broken(event: OutboxEvent) -> None:
        raise ValueError("always")

    OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")
    outbox.subscribe("ticket.created", broken, consumer="broken")
    outbox.subscribe("ticket.created", lambda e: None, consumer="fine")
    moment = START
    with clock.frozen_at(moment):
        make_ticket(cast.lena, cast.acme, cast.alice)
    for _ in range(outbox.MAX_ATTEMPTS):
        with clock.frozen_at(moment):
            assert outbox.relay() == 1
        moment += outbox.BACKOFF_CAP
    event = OutboxEvent.objects.get(name="ticket.created")
    assert (event.given_up, event.handled) == (["broken"], ["fine"])
    assert event.attempts == outbox.MAX_ATTEMPTS
    assert event.failures == {"broken": outbox.MAX_ATTEMPTS}
    assert event.dispatched_at is not None
    assert "ValueError: always" in event.last_error
    assert [outbox.backoff(n).total_seconds() / 60 for n in (1, 2, 3, 7, 8)] == [1, 2, 4, 60, 60]


def test_the_periodic_jobs_run_through_huey_once_per_tick(
    cast: Cast, handlers: dict[str, list[outbox.Consumer]]
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


def test_each_consumer_counts_its_own_failures(
    cast: Cast, handlers: dict[str, list[outbox.Consumer]]
) -> None:
    """A consumer that fails for good does not take another, failing once on the same run,
    down with it: the other is tried again and handles the event."""
    calls = {"n": 0}

    def once(event: OutboxEvent) -> None:
        calls["n"] += 1
        if calls["n"] == outbox.MAX_ATTEMPTS:
            raise TimeoutError("a hiccup on the broken one's last run")

    def broken(event: OutboxEvent) -> None:
        raise ValueError("always")

    OutboxEvent.objects.update(dispatched_at="2026-01-01T00:00:00Z")
    outbox.subscribe("ticket.created", broken, consumer="broken")
    outbox.subscribe("ticket.created", once, consumer="late")
    moment = START
    with clock.frozen_at(moment):
        make_ticket(cast.lena, cast.acme, cast.alice)
    # "late" succeeds on the first run; make it fail on the run where "broken" gives up.
    calls["n"] = outbox.MAX_ATTEMPTS - 1
    event = OutboxEvent.objects.get(name="ticket.created")
    OutboxEvent.objects.filter(pk=event.pk).update(failures={"broken": outbox.MAX_ATTEMPTS - 1})
    with clock.frozen_at(moment):
        outbox.relay()
    event.refresh_from_db()
    assert event.given_up == ["broken"]
    assert event.failures == {"broken": outbox.MAX_ATTEMPTS, "late": 1}
    assert event.dispatched_at is None  # "late" is tried again
    with clock.frozen_at(event.retry_at):
        outbox.relay()
    event.refresh_from_db()
    assert event.handled == ["late"]
    assert event.dispatched_at is not None
