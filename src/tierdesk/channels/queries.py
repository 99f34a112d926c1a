"""Reads of webhooks and their delivery logs, scoped to what the actor manages: an admin
every webhook, a manager those of the organizations they serve (not the MSP-wide ones),
nobody else any. A webhook the actor may not see reads as missing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import F, OuterRef, QuerySet, Subquery

from tierdesk.channels.models import DeliveryStatus, Webhook, WebhookDelivery
from tierdesk.core import policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Role, User

PAGE_MAX = 200


def _scoped(actor: User) -> QuerySet[Webhook]:
    found = Webhook.objects.all()
    if actor.role != Role.ADMIN:
        found = found.filter(organization__in=policy.visible_organizations(actor))
    return found


def webhook_list(*, actor: User) -> QuerySet[Webhook]:
    """The webhooks ``actor`` manages, MSP-wide first, then by organization and id.
    PermissionDenied for roles that manage none. Preloads organization and creator, and
    annotates the newest delivery: ``last_delivery_status``, ``last_delivery_at`` (when
    it was queued), ``last_delivery_code`` and ``last_delivery_event``."""
    policy.require(actor, "webhook.manage", "Only managers and admins manage webhooks.")
    newest = WebhookDelivery.objects.filter(webhook=OuterRef("pk")).order_by("-pk")
    return (
        _scoped(actor)
        .select_related("organization", "created_by")
        .annotate(
            last_delivery_status=Subquery(newest.values("status")[:1]),
            last_delivery_at=Subquery(newest.values("created_at")[:1]),
            last_delivery_code=Subquery(newest.values("last_status_code")[:1]),
            last_delivery_event=Subquery(newest.values("event__name")[:1]),
        )
        .order_by(F("organization_id").asc(nulls_first=True), "pk")
    )


def webhook_get(*, actor: User, webhook_id: int) -> Webhook:
    """One webhook ``actor`` manages (annotated as in ``webhook_list``); NotFound when it
    is missing, another tenant's, MSP-wide and the actor a manager, or the actor manages
    no webhooks at all."""
    if not policy.allowed(actor, "webhook.manage"):
        raise NotFound("No such webhook.")
    hook = webhook_list(actor=actor).filter(pk=webhook_id).first()
    if hook is None:
        raise NotFound("No such webhook.")
    return hook


@dataclass(frozen=True)
class DeliveryPage:
    items: list[WebhookDelivery]
    next_cursor: str | None  # pass back as ``cursor`` for the next (older) page


def delivery_list(
    *,
    webhook: Webhook,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> DeliveryPage:
    """A page of the delivery log of ``webhook`` (which the caller got from
    ``webhook_get``), the newest first; ``status`` filters. The cursor is the last row's
    id: rows queued meanwhile never shift a page. Preloads each delivery's event."""
    if status is not None and status not in DeliveryStatus.values:
        raise ValidationFailed.for_field("status", f"one of {', '.join(DeliveryStatus.values)}")
    limit = max(1, min(limit, PAGE_MAX))
    found = webhook.deliveries.select_related("event").order_by("-pk")
    if status:
        found = found.filter(status=status)
    if cursor:
        if not cursor.isdigit() or len(cursor) > 18:
            raise ValidationFailed.for_field("cursor", "not a cursor this list gave")
        found = found.filter(pk__lt=int(cursor))
    rows = list(found[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(rows, str(rows[-1].pk) if more and rows else None)


def delivery_get(*, webhook: Webhook, delivery_id: str | uuid.UUID) -> WebhookDelivery:
    """The delivery ``delivery_id`` (the id receivers see) of ``webhook``, which the
    caller got from ``webhook_get``; NotFound for another webhook's or a malformed id."""
    try:
        key = delivery_id if isinstance(delivery_id, uuid.UUID) else uuid.UUID(delivery_id)
    except ValueError:
        raise NotFound("No such delivery.") from None
    found = webhook.deliveries.select_related("event", "webhook__organization")
    delivery = found.filter(delivery_id=key).first()
    if delivery is None:
        raise NotFound("No such delivery.")
    return delivery
