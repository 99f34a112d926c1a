"""The webhook pages: list, add (the secret shown once), change, delete, rotate, enable,
and the delivery log with replay.

The manager serves ACME: they manage ACME's webhooks and find GLOBEX's and the MSP-wide
ones missing. Agents and requesters find no such pages."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.channels import webhooks
from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import clock
from tierdesk.core.models import AuditEntry, OutboxEvent
from tierdesk.core.outbox import relay

pytestmark = pytest.mark.django_db
BASE = "/console/config/webhooks/"


@dataclass
class Hooks:
    cast: Cast
    msp: Webhook
    acme: Webhook
    globex: Webhook


@pytest.fixture
def hooks(cast: Cast) -> Hooks:
    def make(org: object, url: str, events: list[str]) -> Webhook:
        return webhooks.webhook_create(
            actor=cast.admin,
            organization=org,
            url=url,
            events=events,  # type: ignore[arg-type]
        )[0]

    return Hooks(
        cast,
        make(None, "https://msp.example/all", ["*"]),
        make(cast.acme, "https://hooks.acme.example/desk", ["ticket.created"]),
        make(cast.globex, "https://hooks.globex.example/b-only", ["ticket.*"]),
    )


def error_beside(html: str, field: str) -> str:
    match = re.search(rf'<ul class="errorlist"[^>]*id="id_{field}_error">(.*?)</ul>', html, re.S)
    assert match, f"no error beside {field}"
    return re.sub(r"<[^>]+>", " ", match[1]).strip()


def deliveries(cast: Cast, count: int) -> list[WebhookDelivery]:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    for i in range(count):
        make_ticket(cast.lena, cast.acme, cast.alice, subject=f"Printer {i}")
    relay()
    return list(WebhookDelivery.objects.order_by("pk"))


def test_the_list_shows_a_manager_their_organizations_webhooks(hooks: Hooks) -> None:
    page = signed_in(hooks.cast.manager).get(BASE)
    assert page.status_code == 200
    html = page.content.decode()
    assert "https://hooks.acme.example/desk" in html
    assert "hooks.globex.example" not in html
    assert "msp.example/all" not in html
    assert hooks.acme.secret not in html
    admin = signed_in(hooks.cast.admin).get(BASE).content.decode()
    assert "All organizations" in admin
    assert "hooks.globex.example" in admin


def test_the_list_shows_state_reason_and_last_delivery_in_a_fixed_number_of_queries(
    hooks: Hooks,
) -> None:
    deliveries(hooks.cast, 2)
    WebhookDelivery.objects.filter(webhook=hooks.acme).update(last_status_code=503)
    Webhook.objects.filter(pk=hooks.msp.pk).update(
        is_active=False,
        disabled_reason="20 or more failures in a row over 24 h; last: answered 500",
    )
    client = signed_in(hooks.cast.admin)
    client.get(BASE)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(BASE).content.decode()
    # session, user, the webhooks with organization, creator and newest delivery (one
    # query with subqueries), and the messages/session bookkeeping: no query per row.
    assert len(queries) <= 6, [q["sql"] for q in queries]
    assert "Disabled" in html
    assert "20 or more failures in a row" in html
    assert f'action="{BASE}{hooks.msp.pk}/enable/"' in html
    assert "HTTP 503" in html


@pytest.mark.parametrize("who", ["lena", "omar", "alice"])
def test_agents_and_requesters_find_no_pages(hooks: Hooks, who: str) -> None:
    client = signed_in(getattr(hooks.cast, who))
    for url in (
        BASE,
        f"{BASE}new/",
        f"{BASE}{hooks.acme.pk}/",
        f"{BASE}{hooks.acme.pk}/deliveries/",
    ):
        assert client.get(url).status_code == 404, url


def test_another_tenants_and_msp_wide_webhooks_are_missing_for_a_manager(hooks: Hooks) -> None:
    client = signed_in(hooks.cast.manager)
    for hook in (hooks.globex, hooks.msp):
        for suffix in ("", "delete/", "rotate/", "deliveries/"):
            assert client.get(f"{BASE}{hook.pk}/{suffix}").status_code == 404
        for suffix in ("delete/", "rotate/", "enable/"):
            assert client.post(f"{BASE}{hook.pk}/{suffix}").status_code == 404
    assert Webhook.objects.count() == 3
    assert not AuditEntry.objects.filter(actor=hooks.cast.manager).exists()


def test_adding_shows_the_secret_once(hooks: Hooks) -> None:
    client = signed_in(hooks.cast.manager)
    form = client.get(f"{BASE}new/").content.decode()
    assert 'value="sla.breached"' not in form  # a manager's webhooks are organizations'
    assert 'value="ticket.*"' in form
    answer = client.post(
        f"{BASE}new/",
        {
            "url": "https://hooks.acme.example/second",
            "organization": "ACME",
            "events": ["ticket.created", "ticket.resolved"],
            "description": "Second board",
        },
    )
    assert answer.status_code == 200, answer.content
    assert "no-store" in answer["Cache-Control"]
    made = Webhook.objects.get(url="https://hooks.acme.example/second")
    html = answer.content.decode()
    assert made.secret in html
    assert "it will not be shown again" in html
    assert made.events == ["ticket.created", "ticket.resolved"]
    assert made.secret not in client.get(BASE).content.decode()
    assert made.secret not in client.get(f"{BASE}{made.pk}/").content.decode()


@pytest.mark.parametrize(
    ("data", "field", "says"),
    [
        ({"url": "http://hooks.acme.example/"}, "url", "https://"),
        ({"url": "https://192.168.1.20/hook"}, "url", "public address"),
        ({"events": ["sla.breached"]}, "events", "valid choice"),
        ({"events": []}, "events", "required"),
        ({"description": "x" * 10_000}, "description", "at most 200"),
        ({"organization": "GLOBEX"}, "organization", "valid choice"),
    ],
)
def test_refusals_are_shown_beside_the_field(
    hooks: Hooks, data: dict[str, object], field: str, says: str
) -> None:
    body = {"url": "https://ok.example/", "organization": "ACME", "events": ["ticket.created"]}
    body.update(data)
    answer = signed_in(hooks.cast.manager).post(f"{BASE}new/", body)
    assert answer.status_code in (400, 422)
    assert says in error_beside(answer.content.decode(), field)
    assert Webhook.objects.count() == 3


def test_an_admin_sees_the_catalogue_refusal_for_an_organizations_webhook(hooks: Hooks) -> None:
    answer = signed_in(hooks.cast.admin).post(
        f"{BASE}new/",
        {"url": "https://ok.example/", "organization": "ACME", "events": ["sla.*"]},
    )
    assert answer.status_code == 422
    assert "ticket events only" in error_beside(answer.content.decode(), "events")
    assert Webhook.objects.count() == 3


def test_editing_turning_off_and_enabling(hooks: Hooks) -> None:
    client = signed_in(hooks.cast.manager)
    url = f"{BASE}{hooks.acme.pk}/"
    assert 'value="https://hooks.acme.example/desk"' in client.get(url).content.decode()
    saved = client.post(
        url, {"url": "https://hooks.acme.example/v2", "events": ["ticket.*"], "description": ""}
    )
    assert saved.status_code == 302
    hooks.acme.refresh_from_db()
    assert (hooks.acme.url, hooks.acme.events) == ("https://hooks.acme.example/v2", ["ticket.*"])
    assert not hooks.acme.is_active  # "Active" was not ticked
    assert "Turned off by manager@msp.example." in client.get(BASE).content.decode()
    assert client.post(f"{url}enable/").status_code == 302
    hooks.acme.refresh_from_db()
    assert hooks.acme.is_active
    refused = client.post(url, {"url": "ftp://x.example/", "events": ["ticket.*"]})
    assert "http" in error_beside(refused.content.decode(), "url")


def test_deleting_asks_first(hooks: Hooks) -> None:
    client = signed_in(hooks.cast.manager)
    url = f"{BASE}{hooks.acme.pk}/delete/"
    assert (
        "Delete the webhook to https://hooks.acme.example/desk?" in client.get(url).content.decode()
    )
    assert Webhook.objects.filter(pk=hooks.acme.pk).exists()
    assert client.post(url).status_code == 302
    assert not Webhook.objects.filter(pk=hooks.acme.pk).exists()


def test_rotating_shows_the_new_secret_once(hooks: Hooks) -> None:
    client = signed_in(hooks.cast.manager)
    url = f"{BASE}{hooks.acme.pk}/rotate/"
    old = hooks.acme.secret
    assert "Make a new secret" in client.get(url).content.decode()
    hooks.acme.refresh_from_db()
    assert hooks.acme.secret == old  # a GET changes nothing
    answer = client.post(url)
    hooks.acme.refresh_from_db()
    assert hooks.acme.secret != old
    assert hooks.acme.secret in answer.content.decode()
    assert "no-store" in answer["Cache-Control"]
    assert old not in answer.content.decode()


def test_the_delivery_log_pages_filters_and_replays(hooks: Hooks, monkeypatch: object) -> None:
    from tierdesk.web.views.config import webhooks as pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 2)  # type: ignore[attr-defined]
    made = [d for d in deliveries(hooks.cast, 3) if d.webhook_id == hooks.acme.pk]
    WebhookDelivery.objects.filter(pk=made[0].pk).update(
        status=DeliveryStatus.FAILED, attempts=8, last_status_code=500, last_error="answered 500"
    )
    client = signed_in(hooks.cast.manager)
    log = f"{BASE}{hooks.acme.pk}/deliveries/"
    first = client.get(log).content.decode()
    assert str(made[2].delivery_id) in first
    assert str(made[1].delivery_id) in first
    assert str(made[0].delivery_id) not in first
    older = re.search(r'href="\?cursor=(\d+)" rel="next"', first)
    assert older
    second = client.get(log, {"cursor": older[1]}).content.decode()
    assert str(made[0].delivery_id) in second
    assert "HTTP 500: answered 500" in second
    assert second.count("Replay<") == 1  # pending ones are queued already
    failed = client.get(log, {"status": "failed"}).content.decode()
    assert str(made[0].delivery_id) in failed
    assert str(made[1].delivery_id) not in failed
    assert client.get(log, {"cursor": "nonsense"}).status_code == 200  # starts again
    replay = client.post(f"{log}{made[0].delivery_id}/replay/", {"status": "failed"})
    assert replay.status_code == 302
    assert replay["Location"].endswith("?status=failed")
    assert WebhookDelivery.objects.get(pk=made[0].pk).status == DeliveryStatus.PENDING
    again = client.post(f"{log}{made[0].delivery_id}/replay/", follow=True)
    assert "Not replayed: still pending" in again.content.decode()


def test_a_delivery_of_another_webhook_is_missing(hooks: Hooks) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    make_ticket(hooks.cast.gus, hooks.cast.globex, hooks.cast.gerd)
    relay()
    theirs = WebhookDelivery.objects.get(webhook=hooks.globex)
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED)
    client = signed_in(hooks.cast.manager)
    answer = client.post(f"{BASE}{hooks.acme.pk}/deliveries/{theirs.delivery_id}/replay/")
    assert answer.status_code == 404
    assert WebhookDelivery.objects.get(pk=theirs.pk).status == DeliveryStatus.FAILED


def test_the_section_is_in_the_configuration_navigation(hooks: Hooks) -> None:
    html = signed_in(hooks.cast.manager).get("/console/config/").content.decode()
    assert 'href="/console/config/webhooks/"' in html
