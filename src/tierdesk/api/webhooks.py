"""Webhooks: register, change, remove, rotate the secret, turn back on; the delivery log
with replay; the catalogue of events a webhook may ask for.

Managers manage the webhooks of the organizations they serve, admins MSP-wide ones too;
anyone else, and another tenant's webhook, finds nothing (404). The secret appears in the
answer to a create or a rotation only, which is why neither takes an Idempotency-Key (a
replayed answer would show it a second time)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field, StringConstraints

from tierdesk.api.common import actor, json_response, patch_changes, reject_unknown_query
from tierdesk.api.schemas import ERRORS, NoQuery, PersonRef, Problem, StrictInput, person
from tierdesk.channels import catalogue, queries, webhooks
from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import clock, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_get

router = Router(tags=["webhooks"])

WebhookId = Annotated[int, Field(ge=1, le=2**62)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=webhooks.URL_MAX)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=webhooks.EVENT_NAME_MAX)]
Events = Annotated[list[EventName], Field(min_length=1, max_length=webhooks.EVENTS_MAX)]
Description = Annotated[str, StringConstraints(max_length=webhooks.DESCRIPTION_MAX)]
OrgCode = Annotated[str, StringConstraints(min_length=1, max_length=10)]
NO_STORE = {"Cache-Control": "no-store"}


class WebhookIn(StrictInput):
    url: Url = Field(description="An https:// address on a public host.")
    events: Events = Field(
        description="Event names (GET /webhook-events), groups such as ticket.*, or * for "
        "all. An organization's webhook receives its tickets' events only."
    )
    organization: OrgCode | None = Field(
        None, description="The organization whose events it receives; empty: MSP-wide (admins)."
    )
    description: Description = ""


class WebhookPatch(StrictInput):
    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    is_active: bool | None = Field(
        None, description="false turns it off (its deliveries wait); true on again."
    )


class LastDelivery(Schema):
    event: str
    status: str
    queued_at: dt.datetime
    last_status_code: int | None


class WebhookOut(Schema):
    id: int
    organization: str | None = Field(description="null: MSP-wide, every organization.")
    url: str
    events: list[str]
    description: str
    is_active: bool
    disabled_reason: str | None = Field(description="Why it is off (failures, or who).")
    failures: int = Field(description="Failed attempts in a row.")
    failing_since: dt.datetime | None
    previous_secret_valid_until: dt.datetime | None = Field(
        description="After a rotation, the old secret signs too until then."
    )
    last_delivery: LastDelivery | None
    created_by: PersonRef | None
    created_at: dt.datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="Shown this once: store it now.")


class SecretOut(Schema):
    id: int
    secret: str = Field(description="Shown this once: store it now.")
    previous_secret_valid_until: dt.datetime


class DeliveryOut(Schema):
    delivery_id: uuid.UUID = Field(description="The Tierdesk-Delivery header: the same on retries.")
    event: str
    event_id: int
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(description="Pending ones only.")
    delivered_at: dt.datetime | None


class DeliveryPageOut(Schema):
    items: list[DeliveryOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next (older) page; null on the last page."
    )


class DeliveryListParams(NoQuery):
    status: DeliveryStatus | None = None
    cursor: Annotated[str, StringConstraints(max_length=40)] | None = None
    limit: Annotated[int, Field(ge=1, le=queries.PAGE_MAX)] = 50


class WebhookEventOut(Schema):
    name: str
    description: str
    organizations: bool = Field(description="An organization's webhook may ask for it.")


class WebhookEventsOut(Schema):
    events: list[WebhookEventOut]
    groups: list[str] = Field(description="Ask for group.* to receive every event of one.")


def webhook_out(hook: Webhook) -> dict[str, Any]:
    """``hook`` as the API shows it (never its secret); from ``queries.webhook_get`` or
    ``webhook_list``, whose annotations give the newest delivery."""
    status = getattr(hook, "last_delivery_status", None)
    rotated = hook.previous_until if hook.previous_secret else None
    return {
        "id": hook.pk,
        "organization": hook.organization.code if hook.organization else None,
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "is_active": hook.is_active,
        "disabled_reason": hook.disabled_reason or None,
        "failures": hook.failures,
        "failing_since": hook.failing_since,
        "previous_secret_valid_until": rotated if rotated and rotated > clock.now() else None,
        "last_delivery": (
            {
                "event": hook.last_delivery_event,  # type: ignore[attr-defined]
                "status": status,
                "queued_at": hook.last_delivery_at,  # type: ignore[attr-defined]
                "last_status_code": hook.last_delivery_code,  # type: ignore[attr-defined]
            }
            if status
            else None
        ),
        "created_by": person(hook.created_by),
        "created_at": hook.created_at,
    }


def delivery_out(delivery: WebhookDelivery) -> dict[str, Any]:
    pending = delivery.status == DeliveryStatus.PENDING
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event.name,
        "event_id": delivery.event_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "next_attempt_at": delivery.next_attempt_at if pending else None,
        "delivered_at": delivery.delivered_at,
    }


def _organization(me: User, code: str | None) -> Organization | None:
    """The organization a new webhook is for; one the actor cannot see reads as missing."""
    if not code:
        return None
    try:
        return organization_get(actor=me, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", f"no organization {code!r}") from None


def _one(me: User, webhook_id: int) -> dict[str, Any]:
    return webhook_out(queries.webhook_get(actor=me, webhook_id=webhook_id))


@router.get(
    "/webhook-events",
    response={200: WebhookEventsOut, **ERRORS},
    summary="The events a webhook may ask for (managers and admins)",
)
def list_webhook_events(request: HttpRequest) -> dict[str, Any]:
    reject_unknown_query(request, NoQuery)
    policy.require(actor(request), "webhook.manage", "Only managers and admins manage webhooks.")
    return {
        "events": [
            {"name": k.name, "description": k.description, "organizations": k.organizations}
            for k in catalogue.kinds()
        ],
        "groups": list(catalogue.GROUPS),
    }


@router.get(
    "/webhooks",
    response={200: list[WebhookOut], **ERRORS},
    summary="List the webhooks you manage (managers: their organizations'; admins: all)",
)
def list_webhooks(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    return [webhook_out(h) for h in queries.webhook_list(actor=actor(request))[:1000]]


@router.post(
    "/webhooks",
    response={201: WebhookWithSecret, **ERRORS},
    summary="Register a webhook; the answer carries its secret, this once",
)
def create_webhook(request: HttpRequest, payload: WebhookIn) -> HttpResponse:
    me = actor(request)
    hook, secret = webhooks.webhook_create(
        actor=me,
        organization=_organization(me, payload.organization),
        url=payload.url,
        events=list(payload.events),
        description=payload.description,
    )
    body = WebhookWithSecret.model_validate({**_one(me, hook.pk), "secret": secret}).model_dump()
    return json_response(201, body, Location=f"/api/v1/webhooks/{hook.pk}", **NO_STORE)


@router.get(
    "/webhooks/{webhook_id}", response={200: WebhookOut, **ERRORS}, summary="Read a webhook"
)
def get_webhook(request: HttpRequest, webhook_id: WebhookId) -> dict[str, Any]:
    return _one(actor(request), webhook_id)


@router.patch(
    "/webhooks/{webhook_id}",
    response={200: WebhookOut, **ERRORS},
    summary="Change a webhook's address, events, description or on/off; only the given fields",
)
def update_webhook(
    request: HttpRequest, webhook_id: WebhookId, payload: WebhookPatch
) -> dict[str, Any]:
    me = actor(request)
    hook = queries.webhook_get(actor=me, webhook_id=webhook_id)
    changes = patch_changes(payload)
    if "events" in changes:
        changes["events"] = list(changes["events"])
    webhooks.webhook_update(actor=me, webhook=hook, **changes)
    return _one(me, webhook_id)


@router.delete(
    "/webhooks/{webhook_id}",
    response={204: None, **ERRORS},
    summary="Remove a webhook and its delivery log",
)
def delete_webhook(request: HttpRequest, webhook_id: WebhookId) -> HttpResponse:
    me = actor(request)
    webhooks.webhook_delete(actor=me, webhook=queries.webhook_get(actor=me, webhook_id=webhook_id))
    return HttpResponse(status=204)


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response={200: SecretOut, **ERRORS},
    summary="Make a new secret (answered this once); the old one signs too for 24 hours",
)
def rotate_webhook_secret(request: HttpRequest, webhook_id: WebhookId) -> HttpResponse:
    me = actor(request)
    hook = queries.webhook_get(actor=me, webhook_id=webhook_id)
    secret = webhooks.webhook_rotate_secret(actor=me, webhook=hook)
    body = {"id": hook.pk, "secret": secret, "previous_secret_valid_until": hook.previous_until}
    return json_response(200, SecretOut.model_validate(body).model_dump(), **NO_STORE)


@router.post(
    "/webhooks/{webhook_id}/enable",
    response={200: WebhookOut, **ERRORS},
    summary="Turn a webhook back on (after failures, or turned off); its failures start over",
)
def enable_webhook(request: HttpRequest, webhook_id: WebhookId) -> dict[str, Any]:
    me = actor(request)
    webhooks.webhook_enable(actor=me, webhook=queries.webhook_get(actor=me, webhook_id=webhook_id))
    return _one(me, webhook_id)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response={200: DeliveryPageOut, **ERRORS},
    summary="A webhook's delivery log, the newest first, by pages",
)
def list_webhook_deliveries(
    request: HttpRequest, webhook_id: WebhookId, params: Query[DeliveryListParams]
) -> dict[str, Any]:
    reject_unknown_query(request, DeliveryListParams)
    hook = queries.webhook_get(actor=actor(request), webhook_id=webhook_id)
    page = queries.delivery_list(
        webhook=hook, status=params.status, cursor=params.cursor, limit=params.limit
    )
    return {"items": [delivery_out(d) for d in page.items], "next_cursor": page.next_cursor}


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/replay",
    response={202: DeliveryOut, 409: Problem, **ERRORS},
    summary="Send a delivered or failed delivery again, with the same delivery id",
)
def replay_webhook_delivery(
    request: HttpRequest, webhook_id: WebhookId, delivery_id: uuid.UUID
) -> HttpResponse:
    me = actor(request)
    hook = queries.webhook_get(actor=me, webhook_id=webhook_id)
    delivery = queries.delivery_get(webhook=hook, delivery_id=delivery_id)
    delivery = webhooks.delivery_replay(actor=me, delivery=delivery)
    return json_response(202, DeliveryOut.model_validate(delivery_out(delivery)).model_dump())
