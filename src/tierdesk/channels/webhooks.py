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
import ipaddress
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from tierdesk.channels import catalogue, http
from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import clock, outbox, policy
from tierdesk.core.audit import AuditAction, record, record_and_emit
from tierdesk.core.errors import Conflict, NotFound, ValidationFailed
from tierdesk.core.models import Organization, OutboxEvent, User
from tierdesk.core.unset import UNSET

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # per delivery
# A webhook is disabled when its deliveries have failed this many times in a row and for
# at least this long (a short outage during a burst of events does not disable it).
DISABLE_AFTER = 20
DISABLE_AFTER_TIME = dt.timedelta(hours=24)
ROTATION_OVERLAP = dt.timedelta(hours=24)
BATCH = 100  # deliveries sent per round
PER_WEBHOOK = 4  # of one webhook's in flight (or in one round) at most
SENDERS = 16  # requests in flight at once
# A worker holds the deliveries it sends this long: another worker does not send them too.
LEASE = dt.timedelta(seconds=http.DEADLINE * 4)
EVENT_NAME_MAX = 64
# Webhooks per organization (and MSP-wide): each costs the worker a share of every round.
WEBHOOKS_MAX = 25
EVENTS_MAX = 100  # names asked for by one webhook
URL_MAX = 500
DESCRIPTION_MAX = 200
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# --- registration -------------------------------------------------------------------------


def _check(actor: User | None, organization: Organization | None) -> None:
    policy.require_config_scope(actor, organization, "webhook", "webhooks")


def _host_is_private(host: str) -> bool:
    """Is ``host`` (as written in an address) one that can only be this machine or a
    private network? Judged without DNS: an IP address in any spelling the resolver
    accepts (``10.0.0.1``, ``[::1]``, ``2130706433``, ``0x7f.1``), ``localhost`` and its
    subdomains, and single-label names (resolved through the server's search domains).
    Names are checked again, resolved, when each delivery connects (channels.http)."""
    name = host.strip("[]").lower().rstrip(".")
    try:
        address: http.Address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return name == "localhost" or name.endswith(".localhost") or "." not in name
    return not http.allowed(address)


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > URL_MAX:
        raise ValidationFailed.for_field("url", f"at most {URL_MAX} characters")
    try:
        parsed = http.check_url(url)
    except http.Refused as exc:
        raise ValidationFailed.for_field("url", exc.reason) from exc
    local = settings.OUTBOUND_ALLOW_LOOPBACK and parsed.host in LOOPBACK_HOSTS
    if parsed.scheme != "https" and not local:
        raise ValidationFailed.for_field("url", "an https:// address")
    if not local and _host_is_private(parsed.host):
        raise ValidationFailed.for_field(
            "url", "a public address: not this machine, a private network or a local name"
        )
    return str(parsed)


def _clean_events(events: list[str], organization: Organization | None) -> list[str]:
    """The event names and groups asked for, checked against the catalogue, sorted and
    without repeats. An organization's webhook may only ask for its tickets' events."""
    if not isinstance(events, list | tuple):
        raise ValidationFailed.for_field("events", "a list of event names")
    names = sorted({e.strip() for e in events if isinstance(e, str) and e.strip()})
    if not names:
        raise ValidationFailed.for_field("events", "at least one event name, or *")
    if len(names) > EVENTS_MAX:
        raise ValidationFailed.for_field("events", f"at most {EVENTS_MAX} names")
    for name in names:
        if len(name) > EVENT_NAME_MAX or not all(c.isalnum() or c in "._*" for c in name):
            raise ValidationFailed.for_field("events", f"not an event name: {name[:40]!r}")
        problem = catalogue.problem_with(name, organization=organization is not None)
        if problem:
            raise ValidationFailed.for_field("events", problem)
    return names


def _clean_description(description: str) -> str:
    cleaned = (description or "").replace("\x00", "").strip()
    if len(cleaned) > DESCRIPTION_MAX:
        raise ValidationFailed.for_field("description", f"at most {DESCRIPTION_MAX} characters")
    return cleaned


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a webhook's address: what events and logs may show
    (a path or query often holds the receiver's own token)."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


def _summary(hook: Webhook) -> dict[str, Any]:
    """What the audit keeps of a webhook (never its secret)."""
    return {
        "organization": hook.organization.code if hook.organization else None,
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "is_active": hook.is_active,
    }


def _announce(
    hook: Webhook, actor: User | None, action: AuditAction, changes: dict[str, Any]
) -> None:
    """Audit a change of ``hook`` and announce it as the event of the same name. The
    event (read by MSP-wide webhooks and, later, notifications) carries the address's
    origin only; the audit entry, read by the MSP's staff, the whole address."""
    public = {k: v for k, v in changes.items() if k != "url"}
    url = changes.get("url")
    if isinstance(url, dict):  # a change: {"old": …, "new": …}
        public["origin"] = {k: origin_of(v) for k, v in url.items()}
    elif url is not None:
        public["origin"] = origin_of(url)
    record_and_emit(
        actor=actor,
        action=action,
        target_type="webhook",
        target_id=hook.pk,
        organization=hook.organization,
        changes=changes,
        payload={
            "id": hook.pk,
            "organization": hook.organization.code if hook.organization else None,
            "changes": public,
        },
    )


@transaction.atomic
def webhook_create(
    *,
    actor: User | None,
    organization: Organization | None,
    url: str,
    events: list[str],
    description: str = "",
) -> tuple[Webhook, str]:
    """Register a webhook; it and its secret (shown this once: only the caller's answer
    carries it, never the audit, the event or a log)."""
    _check(actor, organization)
    if Webhook.objects.filter(organization=organization).count() >= WEBHOOKS_MAX:
        whose = organization.code if organization else "MSP-wide"
        raise ValidationFailed.for_field(
            "organization", f"{whose} has {WEBHOOKS_MAX} webhooks: remove one first"
        )
    secret = secrets.token_hex(32)
    hook = Webhook.objects.create(
        organization=organization,
        url=_clean_url(url),
        events=_clean_events(events, organization),
        description=_clean_description(description),
        secret=secret,
        created_by=actor,
        created_at=clock.now(),
    )
    _announce(hook, actor, AuditAction.WEBHOOK_CREATED, _summary(hook))
    return hook, secret


def _locked(webhook: Webhook) -> Webhook:
    """``webhook`` read again under a row lock, its organization with it; NotFound when
    it was deleted meanwhile."""
    found = Webhook.objects.select_for_update(of=("self",)).select_related("organization")
    hook = found.filter(pk=webhook.pk).first()
    if hook is None:
        raise NotFound("No such webhook.")
    return hook


@transaction.atomic
def webhook_update(
    *,
    actor: User | None,
    webhook: Webhook,
    url: str = UNSET,
    events: list[str] = UNSET,
    description: str = UNSET,
    is_active: bool = UNSET,
) -> Webhook:
    """Change a webhook; only the given fields change. Its organization is permanent (a
    webhook of another scope is a new one). ``is_active`` False turns it off (its
    deliveries wait), True on again like ``webhook_enable``. Returns the webhook as
    stored."""
    _check(actor, webhook.organization)
    hook = _locked(webhook)
    before = _summary(hook)
    fields = []
    if url is not UNSET:
        hook.url = _clean_url(url)
        fields.append("url")
    if events is not UNSET:
        hook.events = _clean_events(events, hook.organization)
        fields.append("events")
    if description is not UNSET:
        hook.description = _clean_description(description)
        fields.append("description")
    after = _summary(hook)
    changes = {k: {"old": before[k], "new": v} for k, v in after.items() if before[k] != v}
    if changes:
        hook.save(update_fields=fields)
        _announce(hook, actor, AuditAction.WEBHOOK_UPDATED, changes)
    if is_active is True:
        _enable(actor, hook)
    elif is_active is False:
        who = actor.email if actor is not None else "the operator"
        _disable(hook, actor, f"Turned off by {who}."[:200])
    return hook


def _enable(actor: User | None, hook: Webhook) -> None:
    if hook.is_active and not hook.failures:
        return
    was = {"is_active": hook.is_active, "disabled_reason": hook.disabled_reason}
    Webhook.objects.filter(pk=hook.pk).update(
        is_active=True, failures=0, failing_since=None, disabled_reason=""
    )
    hook.is_active, hook.failures, hook.failing_since, hook.disabled_reason = True, 0, None, ""
    if not was["is_active"]:
        _announce(
            hook,
            actor,
            AuditAction.WEBHOOK_ENABLED,
            {
                "is_active": {"old": False, "new": True},
                "disabled_reason": {"old": was["disabled_reason"], "new": ""},
            },
        )


def _disable(hook: Webhook, actor: User | None, reason: str) -> None:
    """Turn a locked webhook off with ``reason``, audited and announced."""
    if not hook.is_active:
        return
    Webhook.objects.filter(pk=hook.pk).update(is_active=False, disabled_reason=reason)
    hook.is_active, hook.disabled_reason = False, reason
    _announce(
        hook,
        actor,
        AuditAction.WEBHOOK_DISABLED,
        {
            "is_active": {"old": True, "new": False},
            "disabled_reason": {"old": "", "new": reason},
        },
    )


@transaction.atomic
def webhook_rotate_secret(*, actor: User | None, webhook: Webhook) -> str:
    """A new secret (shown this once); the old one signs too for ``ROTATION_OVERLAP``."""
    _check(actor, webhook.organization)
    hook = _locked(webhook)
    secret = secrets.token_hex(32)
    until = clock.now() + ROTATION_OVERLAP
    Webhook.objects.filter(pk=hook.pk).update(
        previous_secret=F("secret"), previous_until=until, secret=secret
    )
    _announce(
        hook,
        actor,
        AuditAction.WEBHOOK_SECRET_ROTATED,
        {"old_secret_signs_until": until.isoformat()},
    )
    webhook.refresh_from_db()
    return secret


@transaction.atomic
def webhook_enable(*, actor: User | None, webhook: Webhook) -> Webhook:
    """Deliver again after a disable (the failure count starts over); the deliveries
    that waited go out on the worker's next round."""
    _check(actor, webhook.organization)
    hook = _locked(webhook)
    _enable(actor, hook)
    webhook.refresh_from_db()
    return webhook


@transaction.atomic
def webhook_delete(*, actor: User | None, webhook: Webhook) -> None:
    """Remove a webhook and its delivery log; the audit keeps what it was."""
    _check(actor, webhook.organization)
    hook = _locked(webhook)
    summary = _summary(hook)
    _announce(hook, actor, AuditAction.WEBHOOK_DELETED, summary)
    hook.delete()


def webhooks_visible(actor: User) -> Any:
    """The webhooks ``actor`` manages: an admin's all, a manager's those of the
    organizations they serve (not the MSP-wide ones). PermissionDenied for other roles."""
    policy.require(actor, "webhook.manage")
    found = Webhook.objects.all()
    if actor.role != "admin":
        found = found.filter(organization__in=policy.visible_organizations(actor))
    return found


@transaction.atomic
def delivery_replay(*, actor: User | None, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivered or given-up delivery again (the same delivery id: the receiver
    may know it already), on the worker's next round. One still pending is refused
    (Conflict): it is queued already, and may be on its way this very moment. ``actor``
    None is the operator (the command line)."""
    if actor is not None and not webhooks_visible(actor).filter(pk=delivery.webhook_id).exists():
        raise NotFound("No such delivery.")
    replayed = (
        WebhookDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=DeliveryStatus.PENDING)
        .update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=clock.now())
    )
    if not replayed:
        raise Conflict.for_field("delivery", "still pending: it is queued already")
    delivery.refresh_from_db()
    hook = delivery.webhook
    record(
        actor=actor,
        action=AuditAction.WEBHOOK_DELIVERY_REPLAYED,
        target_type="webhook",
        target_id=hook.pk,
        organization=hook.organization,
        changes={"delivery": str(delivery.delivery_id), "event": delivery.event.name},
    )
    return delivery


# --- from the outbox ----------------------------------------------------------------------


def for_organizations(event: OutboxEvent) -> bool:
    """May an organization's webhook receive ``event``? Events about its tickets, but not
    internal notes (the MSP's own words); configuration, people and other events are the
    MSP's, for MSP-wide webhooks only."""
    group = event.name.split(".", 1)[0]
    return group == catalogue.ORGANIZATION_GROUP and not event.payload.get("internal")


def on_event(event: OutboxEvent) -> None:
    """Queue the event for every webhook that asked for it and may see it (a disabled
    one's wait for it to be enabled again)."""
    who = Q(organization__isnull=True)
    if event.organization_id is not None and for_organizations(event):
        who |= Q(organization_id=event.organization_id)
    now = clock.now()
    wanted = [h for h in Webhook.objects.filter(who) if catalogue.matches(h.events, event.name)]
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


# What an event says that is the MSP's own business: an escalation's reason and the rule
# or person behind it. An organization's webhook gets the event without these (the portal
# does not show them to the organization's people either); MSP-wide webhooks get all.
STAFF_ONLY_FIELDS = frozenset({"reason", "rule_id", "actor_id", "author_id", "managers"})


def data_for(delivery: WebhookDelivery) -> dict[str, Any]:
    payload = dict(delivery.event.payload)
    if delivery.webhook.organization_id is not None:
        for field in STAFF_ONLY_FIELDS:
            payload.pop(field, None)
    return payload


def body_of(delivery: WebhookDelivery) -> bytes:
    event = delivery.event
    return json.dumps(
        {
            "id": str(delivery.delivery_id),
            "event": event.name,
            "created_at": event.created_at.isoformat(),
            "organization": event.organization.code if event.organization else None,
            "data": data_for(delivery),
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


def _due(limit: int, busy: Mapping[int, int] | None = None) -> list[WebhookDelivery]:
    """Up to ``limit`` due deliveries: from each webhook with due ones its oldest, at most
    ``PER_WEBHOOK`` less those of it already in flight (``busy``), so that one endpoint's
    long queue, or a slow one, never holds up the others."""
    busy = busy or {}
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=clock.now(), webhook__is_active=True
    )
    hooks = list(due.values_list("webhook_id", flat=True).distinct().order_by("webhook_id"))
    taken: list[int] = []
    for hook in hooks:
        room = PER_WEBHOOK - busy.get(hook, 0)
        if room > 0:
            oldest = due.filter(webhook_id=hook).order_by("next_attempt_at", "pk")
            taken += oldest.values_list("pk", flat=True)[:room]
    found = WebhookDelivery.objects.filter(pk__in=taken).select_related(
        "webhook", "event__organization"
    )
    return sorted(found, key=lambda d: (d.next_attempt_at, d.pk))[:limit]


def _claim(delivery: WebhookDelivery) -> bool:
    """Take ``delivery`` (as read) for sending, by moving its time on: a worker that dies
    gives it back when the lease runs out; another worker that read it too finds it moved
    and leaves it."""
    lease = clock.now() + LEASE
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status=DeliveryStatus.PENDING,
        next_attempt_at=delivery.next_attempt_at,
        webhook__is_active=True,
    ).update(next_attempt_at=lease)
    if claimed:
        delivery.next_attempt_at = lease
    return bool(claimed)


def deliver_due(limit: int = BATCH) -> int:
    """Send up to ``limit`` deliveries whose time has come and wait for them; how many
    were tried (the command line and tests; the worker runs ``deliver_for``)."""
    due = _due(limit)
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        sent = [(d, pool.submit(_post, *_signed(d))) for d in due if _claim(d)]
        for delivery, future in sent:
            _record_safely(delivery, *future.result())
    return len(due)


def deliver_for(seconds: float, stop: threading.Event | None = None) -> int:
    """Send due deliveries for up to ``seconds``, ``SENDERS`` requests in flight and at
    most ``PER_WEBHOOK`` of one webhook's: as one request ends another starts, so a slow
    endpoint holds a few threads while the others' deliveries flow past it. Outcomes are
    written here, in this thread. How many were sent."""
    deadline = time.monotonic() + seconds
    flying: dict[Future[tuple[int | None, str]], WebhookDelivery] = {}
    busy: Counter[int] = Counter()
    sent = 0
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        while True:
            stopping = time.monotonic() >= deadline or (stop is not None and stop.is_set())
            found = []
            if not stopping and len(flying) < SENDERS:
                found = _due(SENDERS - len(flying), busy)
                for delivery in found:
                    if _claim(delivery):
                        flying[pool.submit(_post, *_signed(delivery))] = delivery
                        busy[delivery.webhook_id] += 1
            if not flying:
                return sent
            done, _ = wait(list(flying), timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                delivery = flying.pop(future)
                busy[delivery.webhook_id] -= 1
                _record_safely(delivery, *future.result())
                sent += 1


def _signed(delivery: WebhookDelivery) -> tuple[str, bytes, dict[str, str]]:
    """Where, what and the headers, signed now: a request starts as soon as it is
    submitted (a thread is free whenever one is submitted)."""
    body = body_of(delivery)
    return delivery.webhook.url, body, headers_for(delivery, body)


def _record_safely(delivery: WebhookDelivery, code: int | None, error: str) -> None:
    try:
        _record(delivery, code, error)
    except Exception:  # a bug must not stop the others; the lease brings it back
        log.exception("webhook delivery %s failed unexpectedly", delivery.pk)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """POST ``body``; the status code (None without an answer) and the error ("" for a
    2xx)."""
    try:
        answer = http.request("POST", url, headers=headers, content=body)
    except http.Refused as exc:
        return None, exc.reason
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    except Exception as exc:  # anything else is this delivery's failure, not the batch's
        return None, f"{type(exc).__name__}: {exc}"[:500]
    code = answer.status_code
    return code, "" if 200 <= code < 300 else f"answered {code}"


def _disabled_because(error: str) -> str:
    hours = DISABLE_AFTER_TIME.total_seconds() / 3600
    return f"{DISABLE_AFTER} or more failures in a row over {hours:g} h; last: {error}"[:200]


def _record(delivery: WebhookDelivery, code: int | None, error: str) -> None:
    now = clock.now()
    attempts = delivery.attempts + 1
    hook = Webhook.objects.filter(pk=delivery.webhook_id)
    # Only while still ours: a claim that ran out (and another worker's since) is left alone.
    mine = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.PENDING, next_attempt_at=delivery.next_attempt_at
    )
    with transaction.atomic():
        if not error:
            mine.update(
                status=DeliveryStatus.DELIVERED, attempts=F("attempts") + 1,
                last_status_code=code, last_error="", delivered_at=now,
            )  # fmt: skip
            hook.update(failures=0, failing_since=None)
            return
        given_up = attempts >= MAX_ATTEMPTS
        mine.update(
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
            # Audited and announced as ``webhook.disabled`` (actor: none, the system), in
            # this transaction: whoever should hear of it (notifications) reads the event.
            turned_off = Webhook.objects.select_related("organization").get(pk=delivery.webhook_id)
            _announce(
                turned_off,
                None,
                AuditAction.WEBHOOK_DISABLED,
                {
                    "is_active": {"old": True, "new": False},
                    "disabled_reason": {"old": "", "new": turned_off.disabled_reason},
                },
            )
    if disabled:
        log.warning(
            "webhook %s (%s) disabled after %s or more failures in a row",
            delivery.webhook_id,
            origin_of(delivery.webhook.url),
            DISABLE_AFTER,
        )
