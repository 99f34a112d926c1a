"""Webhooks: who may register one, which events reach it, and their delivery.

An admin registers MSP-wide webhooks, which receive every organization's events; a
manager registers one for an organization they serve, which receives that organization's
events only (an event's organization is the one it was written for, never a field of its
payload). The secret is made by tierdesk and shown once, at creation or rotation; after a
rotation the old one keeps signing beside the new one for ``ROTATION_OVERLAP``.

Delivery: the outbox relay hands every event to ``on_event``, which queues one delivery
per matching webhook (a delivery is unique per webhook and event, so a relay that runs
twice queues it once); the worker's ``deliver_due`` posts them through the guarded client
(channels.http), at least once, each with a stable ``Tierdesk-Delivery`` id for the
receiver to deduplicate by, a timestamp and an HMAC-SHA256 signature over both and the
body. A failed delivery is tried again after 1, 2, 4 … minutes (at most an hour), and
given up after ``MAX_ATTEMPTS``; a webhook whose deliveries fail ``DISABLE_AFTER`` times
in a row is disabled, with the reason, until someone enables it again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from tierdesk.channels import http
from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import clock, outbox, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, OutboxEvent, User

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # per delivery
# A webhook is disabled when its deliveries have failed this many times in a row and for
# at least this long (a short outage during a burst of events does not disable it).
DISABLE_AFTER = 20
DISABLE_AFTER_TIME = dt.timedelta(hours=24)
ROTATION_OVERLAP = dt.timedelta(hours=24)
BATCH = 100  # deliveries sent per round
# A worker holds the deliveries it sends this long: another worker does not send them too.
LEASE = dt.timedelta(seconds=http.DEADLINE * 4)
EVENT_NAME_MAX = 64
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# --- registration -------------------------------------------------------------------------


def _check(actor: User | None, organization: Organization | None) -> None:
    policy.require_config_scope(actor, organization, "webhook", "webhooks")


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 500:
        raise ValidationFailed.for_field("url", "at most 500 characters")
    try:
        parsed = http.check_url(url)
    except http.Refused as exc:
        raise ValidationFailed.for_field("url", exc.reason) from exc
    local = settings.OUTBOUND_ALLOW_LOOPBACK and parsed.host in LOOPBACK_HOSTS
    if parsed.scheme != "https" and not local:
        raise ValidationFailed.for_field("url", "an https:// address")
    return str(parsed)


def _clean_events(events: list[str]) -> list[str]:
    names = sorted({e.strip() for e in events if isinstance(e, str) and e.strip()})
    if not names:
        raise ValidationFailed.for_field("events", "at least one event name, or *")
    for name in names:
        if len(name) > EVENT_NAME_MAX or not all(c.isalnum() or c in "._*" for c in name):
            raise ValidationFailed.for_field("events", f"not an event name: {name[:40]!r}")
    return names


def webhook_create(
    *,
    actor: User | None,
    organization: Organization | None,
    url: str,
    events: list[str],
    description: str = "",
) -> tuple[Webhook, str]:
    """Register a webhook; it and its secret (shown this once)."""
    _check(actor, organization)
    secret = secrets.token_hex(32)
    hook = Webhook.objects.create(
        organization=organization,
        url=_clean_url(url),
        events=_clean_events(events),
        description=description.strip()[:200],
        secret=secret,
        created_by=actor,
        created_at=clock.now(),
    )
    return hook, secret


def webhook_rotate_secret(*, actor: User | None, webhook: Webhook) -> str:
    """A new secret (shown this once); the old one signs too for ``ROTATION_OVERLAP``."""
    _check(actor, webhook.organization)
    secret = secrets.token_hex(32)
    Webhook.objects.filter(pk=webhook.pk).update(
        previous_secret=F("secret"), previous_until=clock.now() + ROTATION_OVERLAP, secret=secret
    )
    webhook.refresh_from_db()
    return secret


def webhook_enable(*, actor: User | None, webhook: Webhook) -> Webhook:
    """Deliver again after a disable (the failure count starts over)."""
    _check(actor, webhook.organization)
    Webhook.objects.filter(pk=webhook.pk).update(
        is_active=True, failures=0, failing_since=None, disabled_reason=""
    )
    webhook.refresh_from_db()
    return webhook


def webhooks_visible(actor: User) -> Any:
    """The webhooks ``actor`` manages: an admin's all, a manager's those of the
    organizations they serve."""
    policy.require(actor, "webhook.manage")
    found = Webhook.objects.all()
    if actor.role != "admin":
        found = found.filter(organization__in=policy.visible_organizations(actor))
    return found


def delivery_replay(*, actor: User | None, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (the same delivery id: the receiver may know it already).
    ``actor`` None is the operator (the command line)."""
    if actor is not None and not webhooks_visible(actor).filter(pk=delivery.webhook_id).exists():
        raise NotFound("No such delivery.")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=clock.now()
    )
    delivery.refresh_from_db()
    return delivery


# --- from the outbox ----------------------------------------------------------------------


def for_organizations(event: OutboxEvent) -> bool:
    """May an organization's webhook receive ``event``? Events about its tickets, but not
    internal notes (the MSP's own words); configuration, people and other events are the
    MSP's, for MSP-wide webhooks only."""
    return event.name.startswith("ticket.") and not event.payload.get("internal")


def on_event(event: OutboxEvent) -> None:
    """Queue the event for every webhook that asked for it and may see it (a disabled
    one's wait for it to be enabled again)."""
    who = Q(organization__isnull=True)
    if event.organization_id is not None and for_organizations(event):
        who |= Q(organization_id=event.organization_id)
    now = clock.now()
    wanted = [h for h in Webhook.objects.filter(who) if "*" in h.events or event.name in h.events]
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                webhook=h, event=event, delivery_id=uuid.uuid4(), next_attempt_at=now,
                created_at=now,
            )
            for h in wanted
        ],
        ignore_conflicts=True,  # queued already (the relay ran this consumer before)
    )  # fmt: skip


# --- sending ------------------------------------------------------------------------------


def body_of(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    return json.dumps(
        {
            "id": str(delivery.delivery_id),
            "event": event.name,
            "created_at": event.created_at.isoformat(),
            "organization": event.organization.code if event.organization else None,
            "data": event.payload,
        },
        separators=(",", ":"),
        sort_keys=True,
        default=str,
    ).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of ``{timestamp}.{body}`` with ``secret``, hex."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers_for(delivery: WebhookDelivery, body: bytes) -> dict[str, str]:
    hook, now = delivery.webhook, clock.now()
    stamp = int(now.timestamp())
    signed = [f"v1={signature(hook.secret, stamp, body)}"]
    if hook.previous_secret and hook.previous_until and hook.previous_until > now:
        signed.append(f"v1={signature(hook.previous_secret, stamp, body)}")
    return {
        "Content-Type": "application/json",
        "User-Agent": "tierdesk-webhooks",
        "Tierdesk-Delivery": str(delivery.delivery_id),
        "Tierdesk-Event": delivery.event.name,
        "Tierdesk-Signature": f"t={stamp}," + ",".join(signed),
    }


def deliver_due(limit: int = BATCH) -> int:
    """Send up to ``limit`` deliveries whose time has come; how many were tried."""
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=clock.now(),
            webhook__is_active=True,
        )
        .select_related("webhook", "event__organization")
        .order_by("next_attempt_at", "pk")[:limit]
    )
    for delivery in due:
        # Claimed by moving its time on (a worker that dies gives it back when the lease
        # runs out); another worker that read it too finds it moved and skips it.
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk,
            status=DeliveryStatus.PENDING,
            next_attempt_at=delivery.next_attempt_at,
            webhook__is_active=True,
        ).update(next_attempt_at=clock.now() + LEASE)
        if claimed:
            try:
                _send(delivery)
            except Exception:  # a bug must not stop the others; the lease brings it back
                log.exception("webhook delivery %s failed unexpectedly", delivery.pk)
    return len(due)


def _disabled_because(error: str) -> str:
    hours = DISABLE_AFTER_TIME.total_seconds() / 3600
    return f"{DISABLE_AFTER} or more failures in a row over {hours:g} h; last: {error}"[:200]


def _send(delivery: WebhookDelivery) -> None:
    body = body_of(delivery)
    code: int | None = None
    try:
        answer = http.request(
            "POST", delivery.webhook.url, headers=headers_for(delivery, body), content=body
        )
        code = answer.status_code
        error = "" if 200 <= code < 300 else f"answered {code}"
    except http.Refused as exc:
        error = exc.reason
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    now = clock.now()
    attempts = delivery.attempts + 1
    hook = Webhook.objects.filter(pk=delivery.webhook_id)
    with transaction.atomic():
        if not error:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.DELIVERED, attempts=F("attempts") + 1,
                last_status_code=code, last_error="", delivered_at=now,
            )  # fmt: skip
            hook.update(failures=0, failing_since=None)
            return
        given_up = attempts >= MAX_ATTEMPTS
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED if given_up else DeliveryStatus.PENDING,
            attempts=F("attempts") + 1, last_status_code=code, last_error=error[:500],
            next_attempt_at=now + outbox.backoff(attempts),
        )  # fmt: skip
        hook.update(failures=F("failures") + 1)
        hook.filter(failing_since__isnull=True).update(failing_since=now)
        disabled = hook.filter(
            is_active=True,
            failures__gte=DISABLE_AFTER,
            failing_since__lte=now - DISABLE_AFTER_TIME,
        ).update(
            is_active=False,
            disabled_reason=_disabled_because(error),
        )
    if disabled:
        log.warning("webhook %s disabled after %s failures", delivery.webhook_id, DISABLE_AFTER)
