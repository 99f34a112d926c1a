"""In-transaction hooks on a ticket's life.

Apps further along the flow (SLA clocks, automatic escalation) must react to a ticket's
changes in the same transaction as the change, so that a clock never lags its ticket. They
subscribe here, and the ticket services call ``notify`` — the tickets app never imports them.
Hooks run in subscription order (the order of ``INSTALLED_APPS``' ``ready``), inside the
service's transaction: an exception rolls the whole change back. A hook receives every
change of one ``notify`` at once (a batch escalation moves many tickets), so that it can
read and write what they need in a few statements instead of a few per ticket.

The outbox (``tierdesk.core.events``) is for everything that may happen later and more than
once; these hooks are for what must hold at commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tierdesk.core.models import User
    from tierdesk.tickets.models import Ticket


class Change(StrEnum):
    CREATED = "created"
    STATUS = "status"  # old and new status
    PRIORITY = "priority"  # old and new priority
    TIER = "tier"  # old and new tier code
    PUBLIC_REPLY = "public_reply"  # a staff member's public reply


@dataclass(frozen=True)
class TicketChange:
    ticket: Ticket
    change: Change
    actor: User | None
    at: dt.datetime
    old: str = ""
    new: str = ""


Hook = Callable[[list[TicketChange]], None]
_hooks: list[Hook] = []


def subscribe(hook: Hook) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def notify(changes: list[TicketChange]) -> None:
    if not changes:
        return
    for hook in _hooks:
        hook(changes)
