"""Mailboxes: configured by admins, one or more per organization, polled by the worker.

The password is encrypted at rest (core.crypto) and never shown or logged again; to
change it, enter a new one. ``test_connection`` says plainly what is wrong (unreachable,
refused credentials, an untrusted certificate, a missing folder).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction

from tierdesk.channels import imap, inbound
from tierdesk.channels.models import Mailbox, MailSecurity, UnknownSenders
from tierdesk.core import clock, crypto, parse, policy
from tierdesk.core.errors import ValidationFailed
from tierdesk.core.models import Organization, User

log = logging.getLogger(__name__)

# What an admin changes (besides the password); the rest is the worker's.
EDITABLE = (
    "name",
    "address",
    "host",
    "port",
    "security",
    "username",
    "folder",
    "ca_certificate",
    "unknown_senders",
    "is_active",
)


def _require(actor: User | None) -> None:
    if actor is not None:
        policy.require(actor, "mailbox.manage", "Only admins manage mailboxes.")


def _clean(values: dict[str, Any], instance: Mailbox) -> None:
    address = str(values.get("address", instance.address) or "").strip().lower()
    try:
        validate_email(address)
    except DjangoValidationError:
        raise ValidationFailed.for_field("address", "not a valid email address") from None
    if "+" in address.partition("@")[0]:
        raise ValidationFailed.for_field("address", "the address itself, without +…")
    taken = Mailbox.objects.filter(address=address).exclude(pk=instance.pk).exists()
    if taken:
        raise ValidationFailed.for_field("address", "another mailbox has this address")
    instance.address = address
    for name, limit in (("name", 100), ("username", 200), ("folder", 200)):
        value = str(values.get(name, getattr(instance, name)) or "").strip()
        if not value or len(value) > limit or any(not c.isprintable() for c in value):
            raise ValidationFailed.for_field(name, f"1 to {limit} printable characters")
        setattr(instance, name, value)
    instance.host = parse.host(values.get("host", instance.host))
    instance.port = parse.port(values.get("port", instance.port))
    security = values.get("security", instance.security)
    if security not in MailSecurity.values:
        raise ValidationFailed.for_field("security", f"one of {', '.join(MailSecurity.values)}")
    instance.security = security
    unknown = values.get("unknown_senders", instance.unknown_senders)
    if unknown not in UnknownSenders.values:
        raise ValidationFailed.for_field(
            "unknown_senders", f"one of {', '.join(UnknownSenders.values)}"
        )
    instance.unknown_senders = unknown
    ca = parse.ca_certificate(values.get("ca_certificate", instance.ca_certificate))
    instance.ca_certificate = ca
    if "password" in values:
        password = str(values["password"] or "")
        if not password or len(password) > 500:
            raise ValidationFailed.for_field("password", "1 to 500 characters")
        instance.password_sealed = crypto.seal(password)
    if not instance.password_sealed:
        raise ValidationFailed.for_field("password", "required")
    if "is_active" in values:
        if not isinstance(values["is_active"], bool):
            raise ValidationFailed.for_field("is_active", "true or false")
        instance.is_active = values["is_active"]


def _record(
    actor: User | None,
    mailbox: Mailbox,
    action: str,
    fields: list[str],
    before: dict[str, Any] | None = None,
) -> None:
    from tierdesk.core.audit import AuditAction, record

    def change(field: str) -> Any:
        if field == "password":
            return "(changed)"  # never the password itself
        if before is None:
            return getattr(mailbox, field)
        return {"old": before[field], "new": getattr(mailbox, field)}

    record(
        actor=actor,
        action=AuditAction(action),
        target_type="mailbox",
        target_id=mailbox.pk,
        organization=mailbox.organization,
        changes={f: change(f) for f in fields},
    )


@transaction.atomic
def mailbox_create(*, actor: User | None, organization: Organization, **values: Any) -> Mailbox:
    """A mailbox for ``organization``: name, address, host, port, security, username,
    password, and optionally folder, ca_certificate, unknown_senders."""
    _require(actor)
    mailbox = Mailbox(organization=organization, created_at=clock.now())
    _clean(values, mailbox)
    mailbox.save()
    _record(actor, mailbox, "mailbox.created", ["address", "host", "port", "username"])
    return mailbox


@transaction.atomic
def mailbox_update(*, actor: User | None, mailbox: Mailbox, **values: Any) -> Mailbox:
    """Change what ``values`` names (a password only when one is given). Only what really
    changes is written and audited; nothing changed, nothing is written. The worker's own
    columns (``last_polled_at``, ``last_error``) are left to it, except that a change
    clears the last error (the next poll tells whether it persists)."""
    _require(actor)
    before = {f: getattr(mailbox, f) for f in EDITABLE}
    draft = copy.copy(mailbox)  # checked whole before the caller's object changes
    _clean(values, draft)
    changed = [f for f in EDITABLE if getattr(draft, f) != before[f]]
    if "password" in values:
        changed.append("password")
    if not changed:
        return mailbox
    for field in (*EDITABLE, "password_sealed"):
        setattr(mailbox, field, getattr(draft, field))
    mailbox.last_error = ""
    columns = [("password_sealed" if f == "password" else f) for f in changed]
    mailbox.save(update_fields=[*columns, "last_error"])
    _record(actor, mailbox, "mailbox.updated", sorted(changed), before | {"password": None})
    return mailbox


TEST_TIMEOUT = 8  # seconds per network step: the test holds a web worker while it runs


def test_connection(*, actor: User | None, mailbox: Mailbox) -> str:
    """Log in and open the folder; what was found, or ``imap.MailError`` with the reason."""
    _require(actor)
    with imap.Connection(mailbox, timeout=TEST_TIMEOUT) as connection:
        waiting = len(connection.waiting())
    return f"connected; {waiting} message(s) waiting in {mailbox.folder}"


def poll_all(
    *,
    until: float | None = None,
    stop: threading.Event | None = None,
    relieved: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Take what waits in every active mailbox, then process what was stored; again every
    ``settings.MAIL_POLL_SECONDS`` until ``until`` (a ``time.monotonic()`` value; once
    when None, though until nothing waits), until ``stop`` is set (the worker is
    stopping) or until ``relieved()`` says another poller has taken over. Connections stay
    open between rounds. Returns at once when no mailbox is active."""
    from django.conf import settings

    counts = {"stored": 0, "processed": 0, "failed": 0}
    connections: dict[int, imap.Connection] = {}
    try:
        while True:
            active = list(Mailbox.objects.filter(is_active=True).select_related("organization"))
            if not active:
                return counts
            # a chunk from each mailbox in turn, then their processing: the first tickets
            # of a large arrival appear at once, and no mailbox waits behind another's
            more = False
            for mailbox in active:
                taken = _poll_one(mailbox, connections, counts)
                more = more or taken >= imap.CHUNK_MESSAGES
            while (done := inbound.process_pending()) > 0:
                counts["processed"] += done
                if done < inbound.BATCH:
                    break
            left = 0.0 if until is None else until - time.monotonic()
            if (stop is not None and stop.is_set()) or (relieved is not None and relieved()):
                return counts
            if more and (until is None or left > 0):
                continue
            if left <= 0:
                return counts
            if stop is not None:
                stop.wait(min(settings.MAIL_POLL_SECONDS, left))
            else:
                time.sleep(min(settings.MAIL_POLL_SECONDS, left))
    finally:
        for connection in connections.values():
            connection.close()


def _poll_one(
    mailbox: Mailbox, connections: dict[int, imap.Connection], counts: dict[str, int]
) -> int:
    """Take a chunk from ``mailbox`` over its open connection (opened when there is
    none); how many messages were taken. A failure is recorded on the mailbox."""
    connection = connections.get(mailbox.pk)
    try:
        if connection is None:
            connection = imap.Connection(mailbox)
            connection.open()
            connections[mailbox.pk] = connection
        taken, stored = connection.take(limit=imap.CHUNK_MESSAGES)
    except Exception as exc:  # one mailbox's trouble is its own
        counts["failed"] += 1
        if connection is not None:
            connection.close()
        connections.pop(mailbox.pk, None)
        if isinstance(exc, imap.MailError):
            reason = str(exc)
            log.warning("mailbox %s: %s", mailbox.pk, reason)
        else:  # not the server's doing: a bug, kept with its traceback
            reason = imap.describe(exc, mailbox)
            log.exception("mailbox %s: polling failed", mailbox.pk)
        Mailbox.objects.filter(pk=mailbox.pk).update(
            last_error=reason[:500], last_polled_at=clock.now()
        )
        return 0
    Mailbox.objects.filter(pk=mailbox.pk).update(last_error="", last_polled_at=clock.now())
    counts["stored"] += stored
    return taken
