"""Webhooks against a real receiver on loopback: who may register one, which events reach
it (a tenant's never another's), signed deliveries a receiver can verify, at most one
delivery per event and webhook however often the relay runs, retries, giving up,
disabling, secret rotation with an overlap, and replay."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import Cast, make_ticket
from tierdesk.channels import webhooks
from tierdesk.channels.models import DeliveryStatus, WebhookDelivery
from tierdesk.cli import main
from tierdesk.core import clock
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import OutboxEvent
from tierdesk.core.outbox import relay

START = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((self.path, dict(self.headers), body))
                if self.path == "/slow":
                    time.sleep(1)
                status = 500 if self.path == "/fail" else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    found = Receiver()
    thread = threading.Thread(target=found.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.httpd.shutdown()
        found.httpd.server_close()


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the signature over the timestamp and the body."""
    parts = dict(p.split("=", 1) for p in headers["Tierdesk-Signature"].split(",")[:1])
    stamp = parts["t"]
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    given = [p.split("=", 1)[1] for p in headers["Tierdesk-Signature"].split(",")[1:]]
    return any(hmac.compare_digest(expected, g) for g in given)


def test_who_may_register_and_what_is_refused(cast: Cast, settings: Any) -> None:
    hook, secret = webhooks.webhook_create(actor=cast.manager, organization=cast.acme,
                                           url="https://hooks.acme.example/desk",
                                           events=["ticket.created"])  # fmt: skip
    assert len(secret) == 64
    assert hook.secret == secret
    with pytest.raises(ValidationFailed):  # another tenant: not found, as a field error
        webhooks.webhook_create(actor=cast.manager, organization=cast.globex,
                                url="https://x.example/", events=["*"])  # fmt: skip
    with pytest.raises(PermissionDenied):  # MSP-wide: admins only
        webhooks.webhook_create(actor=cast.manager, organization=None,
                                url="https://x.example/", events=["*"])  # fmt: skip
    with pytest.raises(PermissionDenied):
        webhooks.webhook_create(actor=cast.lena, organization=cast.acme,
                                url="https://x.example/", events=["*"])  # fmt: skip
    for url, events in (("http://hooks.acme.example/", ["*"]), ("ftp://x.example/", ["*"]),
                        ("https://user:pw@x.example/", ["*"]), ("https://x.example/", []),
                        ("https://x.example/", ["ticket created\r\nX: y"]),
                        ("https://" + "x" * 600 + ".example/", ["*"])):  # fmt: skip
        with pytest.raises(ValidationFailed):
            webhooks.webhook_create(actor=cast.admin, organization=None, url=url, events=events)


def test_each_tenant_gets_its_own_events_signed_once(cast: Cast, receiver: Receiver) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())  # the cast's own events
    acme, acme_secret = webhooks.webhook_create(
        actor=cast.manager, organization=cast.acme, url=f"{receiver.url}/acme",
        events=["ticket.created"],
    )  # fmt: skip
    everything, msp_secret = webhooks.webhook_create(
        actor=cast.admin, organization=None, url=f"{receiver.url}/msp", events=["*"]
    )
    OutboxEvent.objects.update(dispatched_at=clock.now())  # the webhooks' own (webhook.created)
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice, subject="Printer")
        make_ticket(cast.gus, cast.globex, cast.gerd, subject="Globex secret")
        relay()
        relay()  # again: nothing is queued twice
        event = OutboxEvent.objects.filter(name="ticket.created").first()
        assert event is not None
        webhooks.on_event(event)  # as a relay that died before recording its run would
        assert webhooks.deliver_due() == 3
    paths = sorted(path for path, _, _ in receiver.got)
    assert paths == ["/acme", "/msp", "/msp"]
    for path, headers, body in receiver.got:
        data = json.loads(body)
        assert data["id"] == headers["Tierdesk-Delivery"]
        assert data["event"] == headers["Tierdesk-Event"] == "ticket.created"
        if path == "/acme":
            assert data["organization"] == "ACME"  # never GLOBEX's
            assert data["data"]["key"] == "ACME-1"
            assert verified(acme_secret, headers, body)
            assert not verified(msp_secret, headers, body)
        else:
            assert verified(msp_secret, headers, body)
    acme_bodies = b"".join(b for p, _, b in receiver.got if p == "/acme")
    assert b"GLOBEX" not in acme_bodies
    assert b"GLOBEX-1" in b"".join(b for p, _, b in receiver.got if p == "/msp")
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 3
    assert webhooks.deliver_due() == 0
    assert {acme.pk, everything.pk} == set(
        WebhookDelivery.objects.values_list("webhook_id", flat=True)
    )


def test_failures_are_retried_then_given_up_and_the_webhook_disabled(
    cast: Cast, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    monkeypatch.setattr(webhooks, "DISABLE_AFTER", 5)
    monkeypatch.setattr(webhooks, "DISABLE_AFTER_TIME", dt.timedelta(minutes=10))
    hook, _ = webhooks.webhook_create(
        actor=cast.admin, organization=None, url=f"{receiver.url}/fail", events=["ticket.created"]
    )
    moment = START
    with clock.frozen_at(moment):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
    delivery = WebhookDelivery.objects.get()
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        with clock.frozen_at(moment):
            tried = webhooks.deliver_due()
        delivery.refresh_from_db()
        hook.refresh_from_db()
        if attempt <= 5:
            assert tried == 1
            assert delivery.attempts == attempt
            assert delivery.last_status_code == 500
            assert delivery.next_attempt_at == moment + dt.timedelta(minutes=2 ** (attempt - 1))
        else:  # disabled after five failures in a row over 10 minutes: nothing is sent
            assert tried == 0
        moment = delivery.next_attempt_at
    assert not hook.is_active
    assert "5 or more failures in a row over 0.166667 h" in hook.disabled_reason
    assert len(receiver.got) == 5
    # Enabled again, the delivery goes on until it is given up on.
    webhooks.webhook_enable(actor=cast.admin, webhook=hook)
    for _ in range(webhooks.MAX_ATTEMPTS):
        with clock.frozen_at(moment):
            webhooks.deliver_due()
        delivery.refresh_from_db()
        moment = delivery.next_attempt_at
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == webhooks.MAX_ATTEMPTS


def test_rotation_signs_with_both_secrets_for_a_day_and_replay_keeps_the_id(
    cast: Cast, receiver: Receiver
) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    hook, old = webhooks.webhook_create(actor=cast.manager, organization=cast.acme,
                                        url=f"{receiver.url}/acme", events=["*"])  # fmt: skip
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
        new = webhooks.webhook_rotate_secret(actor=cast.manager, webhook=hook)
        webhooks.deliver_due()
    assert new != old
    _, headers, body = receiver.got[-1]
    assert verified(old, headers, body)
    assert verified(new, headers, body)
    delivery = WebhookDelivery.objects.get(delivery_id=headers["Tierdesk-Delivery"])
    with clock.frozen_at(START + webhooks.ROTATION_OVERLAP + dt.timedelta(minutes=1)):
        webhooks.delivery_replay(actor=cast.manager, delivery=delivery)
        assert webhooks.deliver_due() == 1
    _, replayed, body = receiver.got[-1]
    assert replayed["Tierdesk-Delivery"] == headers["Tierdesk-Delivery"]  # the same id
    assert verified(new, replayed, body)
    assert not verified(old, replayed, body)  # the overlap is over


def test_the_command_line(cast: Cast) -> None:
    run = CliRunner()
    made = run.invoke(main, ["webhook", "create", "--org", "acme", "--url",
                             "https://hooks.acme.example/", "--event", "ticket.created",
                             "--json"], catch_exceptions=False)  # fmt: skip
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert (created["organization"], created["events"]) == ("ACME", ["ticket.created"])
    assert len(created["secret"]) == 64
    listed = run.invoke(main, ["webhook", "list"], catch_exceptions=False)
    assert "https://hooks.acme.example/" in listed.output
    assert created["secret"] not in listed.output  # shown once
    rotated = run.invoke(main, ["webhook", "rotate", str(created["id"]), "--json"])
    assert json.loads(rotated.output)["secret"] != created["secret"]
    refused = run.invoke(main, ["webhook", "create", "--url", "http://plain.example/",
                                "--event", "*"])  # fmt: skip
    assert refused.exit_code == 1
    assert "https://" in refused.stderr
    assert run.invoke(main, ["webhook", "rotate", "999"]).exit_code == 1


def test_a_delivery_is_sent_by_one_worker_only(
    cast: Cast, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second worker's tick, while the first has sent but not yet recorded (a slow
    endpoint), finds the delivery claimed and leaves it."""
    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/msp",
                            events=["ticket.created"])  # fmt: skip
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
    real_record = webhooks._record
    second: list[int] = []

    def record_while_another_worker_runs(delivery: WebhookDelivery, *outcome: Any) -> None:
        monkeypatch.setattr(webhooks, "_record", real_record)
        second.append(webhooks.deliver_due())  # the other worker, a minute later
        real_record(delivery, *outcome)

    monkeypatch.setattr(webhooks, "_record", record_while_another_worker_runs)
    with clock.frozen_at(START):
        assert webhooks.deliver_due() == 1
    assert second == [0]
    assert len(receiver.got) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_internal_notes_and_configuration_stay_with_the_msp(cast: Cast, receiver: Receiver) -> None:
    from tierdesk.tickets import services as tickets

    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.manager, organization=cast.acme,
                            url=f"{receiver.url}/acme", events=["*"])  # fmt: skip
    with clock.frozen_at(START):
        ticket = make_ticket(cast.lena, cast.acme, cast.alice)
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Between us", internal=True)
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Try this")
        relay()
        webhooks.deliver_due()
    events = [json.loads(b)["event"] for _, _, b in receiver.got]
    assert events.count("ticket.commented") == 1  # the public reply only
    assert all(e.startswith("ticket.") for e in events)


def test_the_delivery_log_and_replay_from_the_command_line(cast: Cast, receiver: Receiver) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    hook, _ = webhooks.webhook_create(
        actor=cast.admin, organization=None, url=f"{receiver.url}/fail", events=["ticket.created"]
    )
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
        webhooks.deliver_due()
    run = CliRunner()
    log = run.invoke(main, ["webhook", "deliveries", str(hook.pk), "--json"],
                     catch_exceptions=False)  # fmt: skip
    (entry,) = json.loads(log.output)
    assert (entry["event"], entry["status"], entry["attempts"]) == ("ticket.created", "pending", 1)
    assert entry["last_status_code"] == 500
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED)
    replayed = run.invoke(main, ["webhook", "replay", entry["delivery"]], catch_exceptions=False)
    assert replayed.exit_code == 0, replayed.output
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    assert run.invoke(main, ["webhook", "replay", "nonsense"]).exit_code == 1
    assert run.invoke(main, ["webhook", "deliveries", "999"]).exit_code == 1


def test_a_slow_webhook_holds_a_few_threads_while_the_others_flow_past(
    cast: Cast, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook whose endpoint answers slowly has at most PER_WEBHOOK requests in flight;
    another webhook's delivery goes out at once, not after the slow ones; the requests
    go out together."""
    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/slow",
                            events=["ticket.created"])  # fmt: skip
    with clock.frozen_at(START):
        for _ in range(8):
            make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/quick",
                            events=["ticket.created"])  # fmt: skip
    with clock.frozen_at(START + dt.timedelta(minutes=1)):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
    monkeypatch.setattr(webhooks, "PER_WEBHOOK", 4)
    started = time.monotonic()
    with clock.frozen_at(START + dt.timedelta(minutes=2)):
        assert webhooks.deliver_for(30) == 10
    took = time.monotonic() - started
    paths = [path for path, _, _ in receiver.got]
    assert "/quick" in paths[:5]  # beside the first four slow ones, not after all nine
    assert paths.count("/slow") == 9
    assert 2 < took < 5, f"nine 1-second requests, four at a time, took {took:.1f} s"


def test_the_tick_serves_one_busy_webhook_round_after_round(
    cast: Cast, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One webhook with more than a round's share due gets all of them in one tick, not
    PER_WEBHOOK a minute."""
    from tierdesk.channels.tasks import webhooks_tick

    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/one",
                            events=["ticket.created"])  # fmt: skip
    with clock.frozen_at(START):
        for _ in range(25):
            make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
    monkeypatch.setattr(webhooks, "PER_WEBHOOK", 4)
    with clock.frozen_at(START + dt.timedelta(minutes=1)):
        webhooks_tick.call_local()  # type: ignore[attr-defined]
    assert len(receiver.got) == 25
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_an_outcome_is_not_written_over_a_claim_that_ran_out(
    cast: Cast, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send that outlived its lease (another worker took the delivery meanwhile and
    delivered it) does not put it back to pending."""
    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/x",
                            events=["ticket.created"])  # fmt: skip
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
    real_record = webhooks._record

    def late(delivery: WebhookDelivery, code: Any, error: str) -> None:
        # meanwhile the lease ran out, another worker claimed and delivered it
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.DELIVERED, next_attempt_at=START + dt.timedelta(hours=1)
        )
        real_record(delivery, None, "ReadTimeout: too slow")

    monkeypatch.setattr(webhooks, "_record", late)
    with clock.frozen_at(START):
        webhooks.deliver_due()
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED


def test_an_organizations_webhook_does_not_get_the_msps_reasons(
    cast: Cast, receiver: Receiver
) -> None:
    """An escalation's reason (and who or which rule moved the ticket) are the MSP's: the
    client's webhook gets the event without them; an MSP-wide one gets them all."""
    from tierdesk.escalation.services import escalate

    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.manager, organization=cast.acme,
                            url=f"{receiver.url}/acme", events=["ticket.escalated"])  # fmt: skip
    webhooks.webhook_create(actor=cast.admin, organization=None,
                            url=f"{receiver.url}/msp", events=["ticket.escalated"])  # fmt: skip
    with clock.frozen_at(START):
        ticket = make_ticket(cast.lena, cast.acme, cast.alice)
        escalate(actor=cast.lena, ticket=ticket, reason="customer is difficult, VIP",
                 handoff_note="Tried the usual; over to you.")  # fmt: skip
        relay()
        webhooks.deliver_due()
    data = {path: json.loads(body)["data"] for path, _, body in receiver.got}
    assert "reason" not in data["/acme"]
    assert "actor_id" not in data["/acme"]
    assert data["/acme"]["to_tier"] == "L2"
    assert data["/msp"]["reason"] == "customer is difficult, VIP"
