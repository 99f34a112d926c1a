"""Changing and removing webhooks: the same scope rules as registering them, events checked
against the catalogue, every change audited and announced without the secret, and the
notice when a webhook is disabled after failures."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from tests.channels.test_webhooks import START, Receiver, receiver  # noqa: F401 - a fixture
from tests.conftest import Cast, make_ticket
from tierdesk.channels import queries, webhooks
from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import clock
from tierdesk.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent
from tierdesk.core.outbox import relay


def acme_hook(cast: Cast, **kw: Any) -> tuple[Webhook, str]:
    return webhooks.webhook_create(
        actor=cast.manager,
        organization=cast.acme,
        url=kw.pop("url", "https://hooks.acme.example/desk?token=acme-receiver-token"),
        events=kw.pop("events", ["ticket.created"]),
        **kw,
    )


def secretless(hook: Webhook, *secrets: str) -> None:
    """No audit entry or event mentions the secrets."""
    for text in [
        *(json.dumps(a.changes) for a in AuditEntry.objects.filter(target_type="webhook")),
        *(json.dumps(e.payload) for e in OutboxEvent.objects.filter(name__startswith="webhook.")),
    ]:
        for secret in (hook.secret, hook.previous_secret, *secrets):
            assert not secret or secret not in text


def test_edit_changes_only_what_is_given_and_audits_old_and_new(cast: Cast) -> None:
    hook, secret = acme_hook(cast, description="Ops board")
    webhooks.webhook_update(
        actor=cast.manager, webhook=hook, events=["ticket.*", "ticket.resolved"]
    )
    hook.refresh_from_db()
    assert hook.events == ["ticket.*", "ticket.resolved"]
    assert hook.description == "Ops board"
    assert hook.url.startswith("https://hooks.acme.example/desk")
    entry = AuditEntry.objects.filter(action="webhook.updated").get()
    assert entry.changes == {
        "events": {"old": ["ticket.created"], "new": ["ticket.*", "ticket.resolved"]}
    }
    assert (entry.actor, entry.organization, entry.target_id) == (
        cast.manager, cast.acme, str(hook.pk),
    )  # fmt: skip
    # Nothing changed: nothing audited.
    webhooks.webhook_update(actor=cast.manager, webhook=hook, description="Ops board")
    assert AuditEntry.objects.filter(action="webhook.updated").count() == 1
    secretless(hook, secret)


def test_the_event_carries_the_addresss_origin_not_its_token(cast: Cast) -> None:
    hook, _ = acme_hook(cast)
    webhooks.webhook_update(actor=cast.admin, webhook=hook, url="https://new.acme.example/x?k=1")
    created, updated = OutboxEvent.objects.filter(name__startswith="webhook.").order_by("pk")
    assert created.payload["changes"]["origin"] == "https://hooks.acme.example"
    assert updated.payload["changes"]["origin"] == {
        "old": "https://hooks.acme.example",
        "new": "https://new.acme.example",
    }
    assert "acme-receiver-token" not in json.dumps(created.payload)
    assert created.organization == cast.acme  # organizations' webhooks never receive it


def test_turning_off_and_on_by_edit_and_enable(cast: Cast) -> None:
    hook, _ = acme_hook(cast)
    webhooks.webhook_update(actor=cast.manager, webhook=hook, is_active=False)
    hook.refresh_from_db()
    assert not hook.is_active
    assert hook.disabled_reason == "Turned off by manager@msp.example."
    webhooks.webhook_update(actor=cast.manager, webhook=hook, is_active=False)  # again: no-op
    webhooks.webhook_enable(actor=cast.manager, webhook=hook)
    hook.refresh_from_db()
    assert (hook.is_active, hook.disabled_reason) == (True, "")
    actions = AuditEntry.objects.filter(target_type="webhook").order_by("id")
    assert list(actions.values_list("action", flat=True)) == [
        "webhook.created", "webhook.disabled", "webhook.enabled",
    ]  # fmt: skip


def test_delete_and_rotate_are_audited_without_the_secret(cast: Cast) -> None:
    hook, first = acme_hook(cast)
    second = webhooks.webhook_rotate_secret(actor=cast.manager, webhook=hook)
    hook.refresh_from_db()
    secretless(hook, first, second)
    webhooks.webhook_delete(actor=cast.manager, webhook=hook)
    assert not Webhook.objects.exists()
    deleted = AuditEntry.objects.get(action="webhook.deleted")
    assert deleted.changes["events"] == ["ticket.created"]
    assert AuditEntry.objects.filter(action="webhook.secret_rotated").exists()
    for text in (json.dumps(a.changes) for a in AuditEntry.objects.all()):
        assert first not in text
        assert second not in text


@pytest.mark.parametrize("change", ["update", "delete", "rotate", "enable"])
def test_the_scope_rules_of_create_hold_for_every_change(cast: Cast, change: str) -> None:
    org_hook, _ = webhooks.webhook_create(
        actor=cast.admin, organization=cast.globex, url="https://g.example/", events=["*"]
    )
    msp_hook, _ = webhooks.webhook_create(
        actor=cast.admin, organization=None, url="https://m.example/", events=["*"]
    )
    act = {
        "update": lambda a, h: webhooks.webhook_update(actor=a, webhook=h, description="x"),
        "delete": lambda a, h: webhooks.webhook_delete(actor=a, webhook=h),
        "rotate": lambda a, h: webhooks.webhook_rotate_secret(actor=a, webhook=h),
        "enable": lambda a, h: webhooks.webhook_enable(actor=a, webhook=h),
    }[change]
    with pytest.raises(ValidationFailed):  # another tenant's organization: "no such"
        act(cast.manager, org_hook)
    with pytest.raises(PermissionDenied):  # MSP-wide: admins only
        act(cast.manager, msp_hook)
    with pytest.raises(PermissionDenied):  # agents: never
        act(cast.omar, org_hook)
    act(cast.admin, org_hook)  # the admin may


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        (["ticket.exploded"], "no event 'ticket.exploded'"),
        (["sla.breached"], "ticket events only"),
        (["sla.*"], "ticket events only"),
        (["nope.*"], "no event group"),
        ([], "at least one"),
    ],
)
def test_events_are_checked_against_the_catalogue(
    cast: Cast, events: list[str], problem: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        acme_hook(cast, events=events)
    assert refused.value.errors[0].field == "events"
    assert problem in refused.value.errors[0].message
    assert not Webhook.objects.exists()


def test_msp_wide_webhooks_take_any_catalogued_event_or_group(cast: Cast) -> None:
    hook, _ = webhooks.webhook_create(
        actor=cast.admin, organization=None, url="https://m.example/",
        events=["sla.*", "organization.created", "ticket.*"],
    )  # fmt: skip
    assert hook.events == ["organization.created", "sla.*", "ticket.*"]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://[fd00::1]/",
        "https://2130706433/",  # 127.0.0.1, spelled as a number
        "https://0x7f.1/",
        "https://localhost/",
        "https://api.localhost/",
        "https://intranet/",
        "http://hooks.acme.example/",
    ],
)
def test_private_and_plain_addresses_are_refused(cast: Cast, url: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        acme_hook(cast, url=url)
    assert refused.value.errors[0].field == "url"


def test_a_long_description_is_refused_not_cut(cast: Cast) -> None:
    with pytest.raises(ValidationFailed) as refused:
        acme_hook(cast, description="x" * 10_000)
    assert refused.value.errors[0].field == "description"
    assert not Webhook.objects.exists()
    assert not AuditEntry.objects.filter(target_type="webhook").exists()


def test_groups_reach_the_webhook_and_others_do_not(
    cast: Cast,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    from tierdesk.tickets import services as tickets

    OutboxEvent.objects.update(dispatched_at=clock.now())
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/sla",
                            events=["sla.*"])  # fmt: skip
    webhooks.webhook_create(actor=cast.admin, organization=None, url=f"{receiver.url}/res",
                            events=["ticket.resolved"])  # fmt: skip
    webhooks.webhook_create(actor=cast.manager, organization=cast.acme,
                            url=f"{receiver.url}/acme", events=["ticket.*"])  # fmt: skip
    OutboxEvent.objects.update(dispatched_at=clock.now())
    with clock.frozen_at(START):
        ticket = make_ticket(cast.lena, cast.acme, cast.alice)
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Between us", internal=True)
        relay()
        webhooks.deliver_due()
    got = sorted((p, json.loads(b)["event"]) for p, _, b in receiver.got)
    assert ("/acme", "ticket.created") in got
    assert all(p == "/acme" and e.startswith("ticket.") for p, e in got)
    assert ("/acme", "ticket.commented") not in got  # an internal note


def test_auto_disable_is_audited_announced_and_logged(
    cast: Cast,
    receiver: Receiver,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(webhooks, "DISABLE_AFTER", 2)
    monkeypatch.setattr(webhooks, "DISABLE_AFTER_TIME", dt.timedelta(minutes=1))
    OutboxEvent.objects.update(dispatched_at=clock.now())
    hook, secret = webhooks.webhook_create(
        actor=cast.admin, organization=None, url=f"{receiver.url}/fail",
        events=["ticket.created"],
    )  # fmt: skip
    with clock.frozen_at(START):
        make_ticket(cast.lena, cast.acme, cast.alice)
        relay()
        webhooks.deliver_due()
    with clock.frozen_at(START + dt.timedelta(minutes=5)), caplog.at_level(logging.WARNING):
        webhooks.deliver_due()
    hook.refresh_from_db()
    assert not hook.is_active
    entry = AuditEntry.objects.get(action="webhook.disabled")
    assert entry.actor is None
    assert "failures in a row" in entry.changes["disabled_reason"]["new"]
    event = OutboxEvent.objects.get(name="webhook.disabled")
    assert event.payload["id"] == hook.pk
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"webhook {hook.pk}" in r.getMessage() for r in warned)
    assert all("/fail" not in r.getMessage() and secret not in r.getMessage() for r in warned)
    secretless(hook, secret)


def test_replay_refuses_a_pending_delivery_and_audits(cast: Cast) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    acme_hook(cast)
    make_ticket(cast.lena, cast.acme, cast.alice)
    relay()
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(Conflict):
        webhooks.delivery_replay(actor=cast.manager, delivery=delivery)
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, attempts=8)
    webhooks.delivery_replay(actor=cast.manager, delivery=delivery)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert AuditEntry.objects.get(action="webhook.delivery_replayed").changes["delivery"] == str(
        delivery.delivery_id
    )
    with pytest.raises(PermissionDenied):  # agents replay nothing
        webhooks.delivery_replay(actor=cast.gus, delivery=delivery)


def test_queries_show_a_manager_their_organizations_webhooks_only(cast: Cast) -> None:
    mine, _ = acme_hook(cast)
    theirs, _ = webhooks.webhook_create(
        actor=cast.admin, organization=cast.globex, url="https://g.example/", events=["*"]
    )
    msp, _ = webhooks.webhook_create(
        actor=cast.admin, organization=None, url="https://m.example/", events=["*"]
    )
    assert [h.pk for h in queries.webhook_list(actor=cast.manager)] == [mine.pk]
    assert [h.pk for h in queries.webhook_list(actor=cast.admin)] == [msp.pk, mine.pk, theirs.pk]
    for hidden in (theirs, msp):
        with pytest.raises(NotFound):
            queries.webhook_get(actor=cast.manager, webhook_id=hidden.pk)
    with pytest.raises(NotFound):  # agents manage none: missing, like another tenant's
        queries.webhook_get(actor=cast.lena, webhook_id=mine.pk)
    with pytest.raises(PermissionDenied):
        queries.webhook_list(actor=cast.lena)


def test_an_internal_attachment_never_reaches_an_organizations_webhook(
    cast: Cast,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    from tierdesk.tickets import services as tickets

    OutboxEvent.objects.update(dispatched_at=clock.now())
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    webhooks.webhook_create(
        actor=cast.manager, organization=cast.acme, url=f"{receiver.url}/acme",
        events=["ticket.attachment_added"],
    )  # fmt: skip
    OutboxEvent.objects.update(dispatched_at=clock.now())
    with clock.frozen_at(START):
        tickets.attachment_add(actor=cast.lena, ticket=ticket, filename="salaries.txt",
                               content=b"x", internal=True)  # fmt: skip
        tickets.attachment_add(actor=cast.alice, ticket=ticket, filename="screen.txt",
                               content=b"y")  # fmt: skip
        relay()
        webhooks.deliver_due()
    names = [json.loads(b)["data"]["filename"] for _, _, b in receiver.got]
    assert names == ["screen.txt"]


def test_an_organization_has_at_most_so_many_webhooks(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "WEBHOOKS_MAX", 2)
    for n in range(2):
        webhooks.webhook_create(
            actor=cast.manager, organization=cast.acme, url=f"https://hooks.acme.example/{n}",
            events=["ticket.*"],
        )  # fmt: skip
    with pytest.raises(ValidationFailed, match="ACME has 2 webhooks") as caught:
        webhooks.webhook_create(
            actor=cast.manager, organization=cast.acme, url="https://hooks.acme.example/3",
            events=["ticket.*"],
        )  # fmt: skip
    assert caught.value.errors[0].field == "organization"
    # another organization's count is its own
    webhooks.webhook_create(actor=cast.admin, organization=cast.globex,
                            url="https://hooks.globex.example/1", events=["ticket.*"])  # fmt: skip
