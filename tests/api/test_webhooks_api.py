"""/api/v1/webhooks, its delivery log with replay, and /api/v1/webhook-events.

The manager serves ACME: they manage ACME's webhooks, and find GLOBEX's and the MSP-wide
ones missing. Agents and requesters manage none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.channels import webhooks
from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import clock
from tierdesk.core.models import AuditEntry, OutboxEvent, User
from tierdesk.core.outbox import relay

ApiAs = Callable[[User | None], Api]


def acme_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": "https://hooks.acme.example/desk",
        "events": ["ticket.created", "ticket.resolved"],
        "organization": "ACME",
        "description": "ACME's ops board",
    }
    body.update(over)
    return body


def stored() -> tuple[int, int, int]:
    return (
        Webhook.objects.count(),
        AuditEntry.objects.filter(target_type="webhook").count(),
        OutboxEvent.objects.filter(name__startswith="webhook.").count(),
    )


@pytest.fixture
def globex_hook(cast: Cast) -> Webhook:
    hook, _ = webhooks.webhook_create(
        actor=cast.admin, organization=cast.globex, url="https://g.example/", events=["*"]
    )
    return hook


def delivered(cast: Cast, hook: Webhook, count: int) -> list[WebhookDelivery]:
    """``count`` deliveries to ``hook`` (ACME tickets), the oldest given up on."""
    OutboxEvent.objects.update(dispatched_at=clock.now())
    for i in range(count):
        make_ticket(cast.lena, cast.acme, cast.alice, subject=f"Printer {i}")
    relay()
    found = list(WebhookDelivery.objects.filter(webhook=hook).order_by("pk"))
    WebhookDelivery.objects.filter(pk=found[0].pk).update(
        status=DeliveryStatus.FAILED, attempts=8, last_status_code=500, last_error="answered 500"
    )
    return found


# --- the whole life -------------------------------------------------------------------------


def test_create_list_get_patch_rotate_delete(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    created = api.post("/webhooks", acme_body())
    assert created.status_code == 201, created.content
    hook = created.json()
    secret = hook.pop("secret")
    assert len(secret) == 64
    assert created["Cache-Control"] == "no-store"
    assert created["Location"] == f"/api/v1/webhooks/{hook['id']}"
    assert hook["organization"] == "ACME"
    assert hook["events"] == ["ticket.created", "ticket.resolved"]
    assert (hook["is_active"], hook["disabled_reason"], hook["last_delivery"]) == (True, None, None)
    assert hook["created_by"]["email"] == "manager@msp.example"

    listed = api.get("/webhooks")
    assert listed.status_code == 200
    assert listed.json() == [hook]
    got = api.get(f"/webhooks/{hook['id']}")
    assert got.json() == hook
    assert secret not in listed.content.decode() + got.content.decode()

    patched = api.patch(
        f"/webhooks/{hook['id']}", {"events": ["ticket.*"], "description": "Renamed"}
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["events"], patched.json()["description"]) == (["ticket.*"], "Renamed")
    assert patched.json()["url"] == hook["url"]  # untouched

    rotated = api.post(f"/webhooks/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.content
    new_secret = rotated.json()["secret"]
    assert new_secret != secret
    assert rotated["Cache-Control"] == "no-store"
    after = api.get(f"/webhooks/{hook['id']}").json()
    assert after["previous_secret_valid_until"] == rotated.json()["previous_secret_valid_until"]
    assert new_secret not in str(after)

    gone = api.delete(f"/webhooks/{hook['id']}")
    assert gone.status_code == 204
    assert api.get(f"/webhooks/{hook['id']}").status_code == 404
    actions = AuditEntry.objects.filter(target_type="webhook").order_by("id")
    assert list(actions.values_list("action", flat=True)) == [
        "webhook.created", "webhook.updated", "webhook.secret_rotated", "webhook.deleted",
    ]  # fmt: skip
    for entry in actions:
        assert secret not in str(entry.changes)
        assert new_secret not in str(entry.changes)


def test_turn_off_shows_the_reason_and_enable_turns_it_on(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    hook = api.post("/webhooks", acme_body()).json()
    off = api.patch(f"/webhooks/{hook['id']}", {"is_active": False})
    assert off.status_code == 200, off.content
    assert off.json()["is_active"] is False
    assert off.json()["disabled_reason"] == "Turned off by manager@msp.example."
    on = api.post(f"/webhooks/{hook['id']}/enable")
    assert on.status_code == 200, on.content
    assert (on.json()["is_active"], on.json()["disabled_reason"]) == (True, None)


def test_admins_make_msp_wide_webhooks_that_managers_never_see(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    made = admin.post("/webhooks", acme_body(organization=None, events=["sla.*", "ticket.*"]))
    assert made.status_code == 201, made.content
    assert made.json()["organization"] is None
    manager = api_as(cast.manager)
    assert manager.get("/webhooks").json() == []
    hook_id = made.json()["id"]
    assert manager.get(f"/webhooks/{hook_id}").status_code == 404
    assert manager.patch(f"/webhooks/{hook_id}", {"description": "x"}).status_code == 404
    refused = manager.post("/webhooks", acme_body(organization=None))
    assert refused.status_code == 403
    assert Webhook.objects.count() == 1


# --- permissions and tenants ---------------------------------------------------------------


def test_another_tenants_webhook_is_not_found_everywhere(
    cast: Cast, api_as: ApiAs, globex_hook: Webhook
) -> None:
    OutboxEvent.objects.update(dispatched_at=clock.now())
    make_ticket(cast.gus, cast.globex, cast.gerd, subject="GLOBEX payroll")
    relay()
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED)
    api = api_as(cast.manager)
    before = (stored(), list(Webhook.objects.values()), list(WebhookDelivery.objects.values()))
    path = f"/webhooks/{globex_hook.pk}"
    for method, url in [
        ("GET", path),
        ("PATCH", path),
        ("DELETE", path),
        ("POST", f"{path}/rotate-secret"),
        ("POST", f"{path}/enable"),
        ("GET", f"{path}/deliveries"),
        ("POST", f"{path}/deliveries/{delivery.delivery_id}/replay"),
    ]:
        answer = api.call(method, url, {"description": "mine now"} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, url, answer.content)
        assert b"GLOBEX" not in answer.content
    after = (stored(), list(Webhook.objects.values()), list(WebhookDelivery.objects.values()))
    assert after == before
    assert "g.example" not in api.get("/webhooks").content.decode()


def test_a_delivery_of_another_webhook_is_not_found(
    cast: Cast, api_as: ApiAs, globex_hook: Webhook
) -> None:
    api = api_as(cast.manager)
    mine = api.post("/webhooks", acme_body()).json()
    OutboxEvent.objects.update(dispatched_at=clock.now())
    make_ticket(cast.gus, cast.globex, cast.gerd)
    relay()
    theirs = WebhookDelivery.objects.get(webhook=globex_hook)
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED)
    answer = api.post(f"/webhooks/{mine['id']}/deliveries/{theirs.delivery_id}/replay")
    assert answer.status_code == 404
    assert WebhookDelivery.objects.get(pk=theirs.pk).status == DeliveryStatus.FAILED


@pytest.mark.parametrize("who", ["lena", "omar", "alice", "carol"])
def test_agents_and_requesters_manage_no_webhooks(cast: Cast, api_as: ApiAs, who: str) -> None:
    hook, _ = webhooks.webhook_create(
        actor=cast.manager, organization=cast.acme, url="https://a.example/", events=["*"]
    )
    api = api_as(getattr(cast, who))
    assert api.get("/webhooks").status_code == 403
    assert api.get("/webhook-events").status_code == 403
    assert api.get(f"/webhooks/{hook.pk}").status_code == 404
    assert api.post(f"/webhooks/{hook.pk}/rotate-secret").status_code == 404
    before = stored()
    assert api.post("/webhooks", acme_body()).status_code == 403
    assert stored() == before


def test_unauthenticated_calls_are_refused(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(None)
    assert api.get("/webhooks").status_code == 401
    assert api.post("/webhooks", acme_body()).status_code == 401
    assert api.get("/webhook-events").status_code == 401


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "http://hooks.acme.example/"}, "url"),
        ({"url": "https://10.0.0.7/hook"}, "url"),
        ({"url": "https://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "https://localhost:8080/"}, "url"),
        ({"url": "not a url at all"}, "url"),
        ({"url": "https://x.example/" + "a" * 600}, "url"),
        ({"url": 5}, "url"),
        ({"events": ["ticket.exploded"]}, "events"),
        ({"events": ["sla.breached"]}, "events"),  # not for an organization's webhook
        ({"events": []}, "events"),
        ({"events": "ticket.created"}, "events"),
        ({"events": [1, 2]}, "events.0"),
        ({"description": "x" * 10_000}, "description"),
        ({"description": ["a"]}, "description"),
        ({"organization": "GLOBEX"}, "organization"),  # another tenant's: no such
        ({"organization": "NOPE"}, "organization"),
        ({"secret": "mine"}, "secret"),  # not settable
        ({"is_active": "yes"}, "is_active"),
    ],
)
def test_bad_creates_name_the_field_and_store_nothing(
    cast: Cast, api_as: ApiAs, change: dict[str, Any], field: str
) -> None:
    api = api_as(cast.manager)
    before = stored()
    answer = api.post("/webhooks", acme_body(**change))
    assert answer.status_code == 422, answer.content
    assert field in problem_fields(answer)
    assert stored() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "http://plain.example/"}, "url"),
        ({"events": ["organization.created"]}, "events"),
        ({"description": "x" * 201}, "description"),
        ({"is_active": None}, "is_active"),
        ({"url": None}, "url"),
        ({"is_active": "sometimes"}, "is_active"),
        ({"organization": "GLOBEX"}, "organization"),  # permanent: not a field of a change
    ],
)
def test_bad_changes_name_the_field_and_change_nothing(
    cast: Cast, api_as: ApiAs, change: dict[str, Any], field: str
) -> None:
    api = api_as(cast.manager)
    hook = api.post("/webhooks", acme_body()).json()
    before = (stored(), list(Webhook.objects.values()))
    answer = api.patch(f"/webhooks/{hook['id']}", change)
    assert answer.status_code == 422, answer.content
    assert field in problem_fields(answer)
    assert (stored(), list(Webhook.objects.values())) == before


def test_malformed_ids_and_bodies(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    assert api.get("/webhooks/abc").status_code == 422
    assert api.get("/webhooks/0").status_code == 422
    assert api.get("/webhooks/99999").status_code == 404
    assert api.post("/webhooks", raw=b"{not json").status_code == 400
    hook = api.post("/webhooks", acme_body()).json()
    bad = api.post(f"/webhooks/{hook['id']}/deliveries/not-a-uuid/replay")
    assert bad.status_code == 422
    missing = api.post(
        f"/webhooks/{hook['id']}/deliveries/00000000-0000-4000-8000-000000000000/replay"
    )
    assert missing.status_code == 404
    assert api.get("/webhooks", params={"organization": "ACME"}).status_code == 422


# --- the delivery log -----------------------------------------------------------------------


def test_the_delivery_log_pages_and_filters(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    hook_id = api.post("/webhooks", acme_body(events=["ticket.created"])).json()["id"]
    made = delivered(cast, Webhook.objects.get(pk=hook_id), 3)
    first = api.get(f"/webhooks/{hook_id}/deliveries", params={"limit": 2})
    assert first.status_code == 200, first.content
    page = first.json()
    assert [d["delivery_id"] for d in page["items"]] == [
        str(made[2].delivery_id), str(made[1].delivery_id),
    ]  # fmt: skip
    assert page["items"][0]["event"] == "ticket.created"
    assert page["items"][0]["status"] == "pending"
    assert page["items"][0]["next_attempt_at"] is not None
    rest = api.get(
        f"/webhooks/{hook_id}/deliveries", params={"limit": 2, "cursor": page["next_cursor"]}
    ).json()
    assert [d["delivery_id"] for d in rest["items"]] == [str(made[0].delivery_id)]
    assert rest["next_cursor"] is None
    failed = api.get(f"/webhooks/{hook_id}/deliveries", params={"status": "failed"}).json()
    assert [(d["status"], d["last_status_code"], d["last_error"]) for d in failed["items"]] == [
        ("failed", 500, "answered 500")
    ]
    listed = api.get("/webhooks").json()[0]
    assert listed["last_delivery"]["event"] == "ticket.created"
    assert listed["last_delivery"]["status"] == "pending"
    for params in ({"status": "lost"}, {"cursor": "x1"}, {"limit": 0}, {"sort": "pk"}):
        answer = api.get(f"/webhooks/{hook_id}/deliveries", params=params)
        assert answer.status_code == 422, (params, answer.content)
        assert problem_fields(answer) == [next(iter(params))]


def test_replay_queues_a_finished_delivery_again_and_refuses_a_pending_one(
    cast: Cast, api_as: ApiAs
) -> None:
    api = api_as(cast.manager)
    hook_id = api.post("/webhooks", acme_body(events=["ticket.created"])).json()["id"]
    made = delivered(cast, Webhook.objects.get(pk=hook_id), 2)
    replayed = api.post(f"/webhooks/{hook_id}/deliveries/{made[0].delivery_id}/replay")
    assert replayed.status_code == 202, replayed.content
    body = replayed.json()
    assert (body["delivery_id"], body["status"], body["attempts"]) == (
        str(made[0].delivery_id), "pending", 0,
    )  # fmt: skip
    again = api.post(f"/webhooks/{hook_id}/deliveries/{made[1].delivery_id}/replay")
    assert again.status_code == 409
    assert problem_fields(again) == ["delivery"]


def test_the_event_catalogue(cast: Cast, api_as: ApiAs) -> None:
    answer = api_as(cast.manager).get("/webhook-events")
    assert answer.status_code == 200
    body = answer.json()
    names = {e["name"]: e for e in body["events"]}
    assert names["ticket.created"]["organizations"] is True
    assert names["sla.breached"]["organizations"] is False
    assert "webhook.disabled" in names
    assert {"ticket", "sla"} <= set(body["groups"])


def test_the_list_costs_the_same_however_many_webhooks(cast: Cast, api_as: ApiAs) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = api_as(cast.admin)
    api.get("/webhooks")  # the token's first use is noted once
    counts = []
    for _ in range(2):
        for org in (None, cast.acme, cast.globex):
            webhooks.webhook_create(
                actor=cast.admin, organization=org, url="https://x.example/", events=["*"]
            )
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/webhooks").status_code == 200
        counts.append(len(queries))
    # the token with its user, then one query for the webhooks with their organization,
    # creator and newest delivery (subqueries): none per webhook
    assert counts == [2, 2], counts
