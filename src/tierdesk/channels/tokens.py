"""Reply tokens: what lets an emailed reply join its ticket.

A message tierdesk sends about a ticket carries a token in its Message-ID (and so in a
reply's In-Reply-To and References) and, where the organization's mailbox has an address,
in the reply address (``support+<token>@example.com``). The token is an HMAC, under a key
derived from the installation's secret, of the organization, the ticket, the recipient's
address and an expiry: a reply joins the ticket only when a token it carries verifies for
that organization (the receiving mailbox's, never a header's) and for the reply's sender.
A subject line's ticket number alone never does: anyone can type one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass

from django.utils.crypto import salted_hmac

from tierdesk.core import clock

LIFETIME = dt.timedelta(days=180)
SALT = "tierdesk.channels.reply-token"
PREFIX = "tdk"
SIGNATURE_CHARS = 20  # hex characters kept of the HMAC: 80 bits
# tdk-<ticket>-<expiry, unix days, base 36>-<nonce>-<signature>
_TOKEN = re.compile(
    rf"{PREFIX}-(?P<ticket>[0-9]{{1,12}})-(?P<expires>[0-9a-z]{{1,6}})"
    rf"-(?P<nonce>[0-9a-z]{{1,16}})-(?P<sig>[0-9a-f]{{{SIGNATURE_CHARS}}})",
    re.ASCII,
)


@dataclass(frozen=True)
class Token:
    ticket_id: int
    expires: dt.date
    nonce: str
    text: str


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _signature(
    organization_id: int, ticket_id: int, recipient: str, expires: str, nonce: str
) -> str:
    message = f"{organization_id}:{ticket_id}:{recipient.strip().lower()}:{expires}:{nonce}"
    return salted_hmac(SALT, message, algorithm="sha256").hexdigest()[:SIGNATURE_CHARS]


def make(*, organization_id: int, ticket_id: int, recipient: str, nonce: str) -> str:
    """A token for a message about ticket ``ticket_id`` to ``recipient``; ``nonce`` (lower
    case letters and digits, e.g. the notification's id in base 36) makes each message's
    own. Only for a ticket: a message about none carries no token, so a reply to it can
    join nothing."""
    if ticket_id < 1:
        raise ValueError("ticket_id: a token is for a ticket")
    if not re.fullmatch(r"[0-9a-z]{1,16}", nonce):
        raise ValueError("nonce: 1 to 16 lower-case letters or digits")
    days = (clock.now() + LIFETIME).date() - dt.date(1970, 1, 1)
    expires = _base36(days.days)
    sig = _signature(organization_id, ticket_id, recipient, expires, nonce)
    return f"{PREFIX}-{ticket_id}-{expires}-{nonce}-{sig}"


def find(text: str) -> list[Token]:
    """Every well-formed token in ``text`` (a header's value, an address), unverified."""
    found = []
    for match in _TOKEN.finditer(text.lower()):
        days = int(match["expires"], 36)
        if days > 200_000:  # past year 2500: not one of ours
            continue
        found.append(
            Token(
                ticket_id=int(match["ticket"]),
                expires=dt.date(1970, 1, 1) + dt.timedelta(days=days),
                nonce=match["nonce"],
                text=match.group(0),
            )
        )
    return found


def verify(text: str, *, organization_id: int, sender: str) -> int | None:
    """The ticket a token in ``text`` grants ``sender`` a reply to, in the organization
    ``organization_id``; None when no token verifies (forged, expired, for another sender
    or another organization)."""
    today = clock.now().date()
    for token in find(text):
        if token.expires < today:
            continue
        expires = token.text.split("-")[2]
        wanted = _signature(organization_id, token.ticket_id, sender, expires, token.nonce)
        if hmac.compare_digest(wanted, token.text.rsplit("-", 1)[1]):
            return token.ticket_id
    return None
