"""Reads of the email-in configuration and of what arrived: mailboxes and stored messages,
for admins (``mailbox.manage``) only. Every read checks the permission first; a mailbox
or message of an organization the actor cannot see reads as missing."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from tierdesk.channels.models import InboundMessage, Mailbox
from tierdesk.core import policy
from tierdesk.core.errors import NotFound
from tierdesk.core.models import User

PERMISSION = "mailbox.manage"
MESSAGE = "Only admins manage mailboxes and their quarantine."


def mailbox_list(*, actor: User) -> QuerySet[Mailbox]:
    """Every mailbox ``actor`` may manage, with its organization loaded; by id."""
    policy.require(actor, PERMISSION, MESSAGE)
    return (
        Mailbox.objects.filter(organization__in=policy.visible_organizations(actor))
        .select_related("organization")
        .order_by("pk")
    )


def mailbox_get(*, actor: User, mailbox_id: int) -> Mailbox:
    """One mailbox (organization loaded); ``NotFound`` when missing or hidden."""
    found = mailbox_list(actor=actor).filter(pk=mailbox_id).first()
    if found is None:
        raise NotFound("No such mailbox.")
    return found


def inbound_list(
    *, actor: User, status: str | None = None, mailbox_id: int | None = None
) -> QuerySet[InboundMessage]:
    """Stored messages, newest first, optionally of one status and one mailbox; the
    mailbox, its organization and the ticket are loaded. ``raw`` is deferred: a list
    never reads the stored bytes."""
    policy.require(actor, PERMISSION, MESSAGE)
    found = InboundMessage.objects.filter(organization__in=policy.visible_organizations(actor))
    if status:
        found = found.filter(status=status)
    if mailbox_id is not None:
        found = found.filter(mailbox_id=mailbox_id)
    return (
        found.select_related("mailbox__organization", "ticket__organization")
        .defer("raw")
        .order_by("-pk")
    )


def inbound_get(*, actor: User, message_id: int) -> InboundMessage:
    """One stored message, its bytes included; ``NotFound`` when missing or hidden."""
    policy.require(actor, PERMISSION, MESSAGE)
    found = (
        InboundMessage.objects.filter(
            pk=message_id, organization__in=policy.visible_organizations(actor)
        )
        .select_related("mailbox__organization", "ticket__organization")
        .first()
    )
    if found is None:
        raise NotFound("No such message.")
    return found


@dataclass(frozen=True)
class Page:
    items: list[InboundMessage]
    next_before: int | None  # the id to continue below, None on the last page


def inbound_page(
    *,
    actor: User,
    status: str | None = None,
    mailbox_id: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> Page:
    """One page of ``inbound_list``: up to ``limit`` messages with an id below ``before``
    (the newest when None). One query."""
    found = inbound_list(actor=actor, status=status, mailbox_id=mailbox_id)
    if before is not None:
        found = found.filter(pk__lt=before)
    rows = list(found[: limit + 1])
    next_before = rows[limit - 1].pk if len(rows) > limit else None
    return Page(items=rows[:limit], next_before=next_before)
