"""Mail that must not be answered automatically, and the limit on what is.

A message from one of tierdesk's own addresses is a loop and is dropped; auto-generated
mail (``mailparse``: Auto-Submitted, Precedence bulk/list/junk, a null sender, bounces,
lists) may open a ticket but never gets an automatic answer; and an organization sends
at most one automatic message to an address per ``AUTO_REPLY_WINDOW`` however much it
writes (``claim_auto_reply``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction

from tierdesk.channels.models import AutoReply, Mailbox
from tierdesk.core import clock

AUTO_REPLY_WINDOW = dt.timedelta(hours=1)


def own_addresses() -> set[str]:
    """Every address tierdesk sends from or receives at."""
    from email.utils import parseaddr

    found = {a.lower() for a in Mailbox.objects.values_list("address", flat=True)}
    found.add(parseaddr(settings.DEFAULT_FROM_EMAIL)[1].lower())
    found.discard("")
    return found


def is_own(address: str) -> bool:
    """``address`` or its plus-address base is one of ours (support+tdk-…@ is support@)."""
    local, _, domain = address.lower().partition("@")
    base = f"{local.split('+', 1)[0]}@{domain}"
    ours = own_addresses()
    return address.lower() in ours or base in ours


def claim_auto_reply(organization_id: int, address: str) -> bool:
    """May ``organization_id`` send an automatic message to ``address`` now? True at most
    once per window (and records it); call it when the message is about to go."""
    address = address.strip().lower()
    now = clock.now()
    claimed = AutoReply.objects.filter(
        organization_id=organization_id, address=address, last_sent_at__lte=now - AUTO_REPLY_WINDOW
    ).update(last_sent_at=now)
    if claimed:
        return True
    try:
        with transaction.atomic():
            AutoReply.objects.create(
                organization_id=organization_id, address=address, last_sent_at=now
            )
    except IntegrityError:
        return False  # one went within the window
    return True
