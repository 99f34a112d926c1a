"""Received mail, from stored bytes to a ticket or a reply.

Two steps, each crash-safe on its own:

1. ``store``: the raw message is written under a unique (mailbox, key) — its Message-ID,
   else a hash of its bytes — and committed; only then does the fetcher (channels.imap)
   flag it as taken on the server. A crash in between fetches it again, and ``store``
   finds it stored: no second copy.
2. ``process``: one stored message becomes a new ticket, a reply on its ticket, a bounce
   recorded on a requester, or nothing (a loop, an automatic reply), all in one
   transaction with the message's new status. A crash rolls all of it back and the
   message is processed again: no duplicate ticket or comment. A message that cannot be
   read, or whose sender may not write here, is quarantined with the reason; an admin
   can look at it and process it again (``retry``).

The organization is always the receiving mailbox's. A reply joins a ticket only through a
reply token (channels.tokens) that verifies for this organization and this sender; a
ticket number in the subject is ignored (anyone can type one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q

from tierdesk.channels import loops, mailparse, tokens
from tierdesk.channels.models import InboundMessage, InboundStatus, Mailbox, UnknownSenders
from tierdesk.core import clock, faults, policy
from tierdesk.core.errors import DomainError, NotFound, ValidationFailed
from tierdesk.core.models import Role, User
from tierdesk.core.outbox import backoff
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Source, Status, Ticket

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # failed processing runs before a message is quarantined
BATCH = 50


# --- step 1: store ------------------------------------------------------------------------


def store(mailbox: Mailbox, raw: bytes, *, size: int | None = None) -> tuple[InboundMessage, bool]:
    """Keep ``raw`` for ``mailbox`` and commit; the message and whether it is new. ``size``
    is the size the server announced when ``raw`` is only its header (too large to take)."""
    message_id = mailparse.message_id_of(raw)
    key = mailparse.key_for(message_id, raw)
    found = InboundMessage.objects.filter(mailbox=mailbox, key=key).first()
    if found is not None:
        return found, False
    message = InboundMessage(
        mailbox=mailbox,
        organization_id=mailbox.organization_id,
        key=key,
        raw=raw,
        size=size if size is not None else len(raw),
        message_id=message_id,
        received_at=clock.now(),
    )
    if size is not None and size > len(raw):
        message.status = InboundStatus.QUARANTINED
        message.reason = f"too large: {size:,} bytes (only its header was taken)"
        message.sender, subject = mailparse.summary(raw)
        message.subject = subject[:300]
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:  # stored by another worker meanwhile
        return InboundMessage.objects.get(mailbox=mailbox, key=key), False
    return message, True


# --- step 2: process ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str = ""
    ticket: Ticket | None = None
    comment_id: int | None = None


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def process_pending(limit: int = BATCH) -> int:
    """Process up to ``limit`` stored messages that are due, oldest first; how many were
    taken."""
    ids = list(
        InboundMessage.objects.filter(status=InboundStatus.RECEIVED)
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=clock.now()))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        process(pk)
    return len(ids)


@dataclass(frozen=True)
class Reading:
    """What the stored bytes say, read before the transaction (reading a hostile message
    may take a while: no lock is held meanwhile)."""

    sender: str
    subject: str
    parsed: mailparse.Parsed | None  # None: unreadable, see ``refused``
    refused: str = ""


def _read(message: InboundMessage) -> Reading:
    raw = bytes(message.raw)
    if message.size > len(raw):
        sender, subject = mailparse.summary(raw)
        return Reading(sender, subject, None, f"too large: {message.size:,} bytes")
    try:
        parsed = mailparse.parse(raw)
    except mailparse.Malformed as exc:
        sender, subject = mailparse.summary(raw)
        return Reading(sender, subject, None, exc.reason)
    return Reading(parsed.sender, parsed.subject, parsed)


def process(pk: int) -> None:
    """Process stored message ``pk`` (nothing when another worker did it already)."""
    found = (
        InboundMessage.objects.select_related("mailbox__organization")
        .filter(pk=pk, status=InboundStatus.RECEIVED)
        .first()
    )
    if found is None:
        return
    try:
        reading = _read(found)
        with transaction.atomic():
            # the row alone is locked (not its mailbox or organization), and taken only if
            # no other worker processed it meanwhile
            message = (
                InboundMessage.objects.select_for_update(of=("self",))
                .filter(pk=pk, status=InboundStatus.RECEIVED)
                .first()
            )
            if message is None:
                return
            message.mailbox = found.mailbox
            outcome = _outcome(message, reading)
            faults.point("inbound.processing")  # the ticket written, not committed
            InboundMessage.objects.filter(pk=pk).update(
                sender=reading.sender,
                subject=reading.subject[:300],
                auto_generated=bool(reading.parsed and reading.parsed.auto_generated),
                status=outcome.status,
                reason=outcome.reason[:500],
                ticket=outcome.ticket,
                comment_id=outcome.comment_id,
                processed_at=clock.now(),
            )
    except Exception as exc:  # a bug or an outage: tried again later, then quarantined
        log.exception("processing inbound message %s failed", pk)
        attempts = found.attempts + 1
        why = f"{type(exc).__name__}: {exc}"
        failed = InboundMessage.objects.filter(pk=pk, status=InboundStatus.RECEIVED)
        if attempts >= MAX_ATTEMPTS:
            failed.update(
                attempts=attempts,
                status=InboundStatus.QUARANTINED,
                reason=f"processing failed {MAX_ATTEMPTS} times; last: {why}"[:500],
            )
        else:  # after 1, 2, 4 … minutes: an outage of a minute does not quarantine mail
            failed.update(
                attempts=attempts, reason=why[:500], retry_at=clock.now() + backoff(attempts)
            )
        return
    faults.point("inbound.processed")


def _outcome(message: InboundMessage, reading: Reading) -> Outcome:
    mailbox = message.mailbox
    parsed = reading.parsed
    if parsed is None:
        return Outcome(InboundStatus.QUARANTINED, reading.refused)
    if parsed.sender and loops.is_own(parsed.sender):
        return Outcome(InboundStatus.IGNORED, f"sent from our own address {parsed.sender}: a loop")
    if parsed.bounce is not None:
        return _bounced(mailbox, parsed.bounce, bytes(message.raw).decode("latin-1"))
    if parsed.null_sender and not parsed.sender:
        return Outcome(InboundStatus.IGNORED, "a null sender and no From address")
    if parsed.auto_reply:
        return Outcome(InboundStatus.IGNORED, f"an automatic reply ({parsed.auto_generated})")
    if not parsed.sender:
        return Outcome(InboundStatus.QUARANTINED, "no sender address (From)")
    try:
        author = _author(mailbox, parsed)
        ticket_id = tokens.verify(
            parsed.references, organization_id=mailbox.organization_id, sender=parsed.sender
        )
        if ticket_id is not None:
            ticket = Ticket.objects.filter(pk=ticket_id, organization=mailbox.organization).first()
            if ticket is not None and ticket.status != Status.CLOSED:
                return _reply(message, parsed, author, ticket)
            if ticket is not None:
                return _new_ticket(message, parsed, author, follows=ticket)
        if author.role != Role.REQUESTER:
            raise Refused(
                f"{parsed.sender} is staff and wrote without a valid reply token: "
                "staff open tickets in the console"
            )
        return _new_ticket(message, parsed, author)
    except Refused as exc:
        return Outcome(InboundStatus.QUARANTINED, exc.reason)


def _bounced(mailbox: Mailbox, bounce: mailparse.Bounce, text: str) -> Outcome:
    """Record the bounce on the organization's requesters it names, each only when the
    notice quotes a reply token of a message we sent to that address (a bounce is easy to
    forge; a real one carries the returned message's headers, our Message-ID among them)."""
    vouched = [
        address
        for address in bounce.recipients
        if tokens.verify(text, organization_id=mailbox.organization_id, sender=address)
    ]
    marked = User.objects.filter(
        email__in=vouched,
        role=Role.REQUESTER,
        organization_id=mailbox.organization_id,
    ).update(email_bounced_at=clock.now(), email_bounce_reason=bounce.reason[:300])
    names = ", ".join(bounce.recipients)[:250]
    return Outcome(
        InboundStatus.IGNORED,
        f"a bounce for {names}; {marked} requester(s) marked"
        + (
            ""
            if len(vouched) == len(bounce.recipients)
            else " (the rest not vouched for by a token)"
        ),
    )


def _author(mailbox: Mailbox, parsed: mailparse.Parsed) -> User:
    """Who wrote it, in this organization: its requester, staff serving it, or a new
    requester as the mailbox allows; ``Refused`` otherwise."""
    organization = mailbox.organization
    user = User.objects.filter(email=parsed.sender).first()
    if user is not None:
        if not user.is_active:
            raise Refused(f"{parsed.sender} is deactivated")
        if user.role == Role.REQUESTER and user.organization_id == organization.pk:
            return user
        if user.is_staff_member and policy.can_see_organization(user, organization.pk):
            return user
        raise Refused(f"{parsed.sender} is not a requester of {organization.code}")
    domain = parsed.sender.rpartition("@")[2]
    allowed = mailbox.unknown_senders == UnknownSenders.ANYONE or (
        mailbox.unknown_senders == UnknownSenders.DOMAINS and domain in organization.email_domains
    )
    if not allowed:
        raise Refused(f"{parsed.sender} is not known here and this mailbox takes no new senders")
    from tierdesk.core import services as people

    try:
        with transaction.atomic():
            return people.user_create(
                actor=None,
                email=parsed.sender,
                full_name=parsed.sender_name or parsed.sender.partition("@")[0],
                role=Role.REQUESTER,
                organization=organization,
            )
    except ValidationFailed as exc:
        raise Refused(f"{parsed.sender} cannot become a requester: {exc}") from None


def _files(actor: User, ticket: Ticket, parsed: mailparse.Parsed) -> list[str]:
    """Keep the message's files on ``ticket``, as uploads are kept; what was refused."""
    refused = []
    for item in parsed.files:
        try:
            with transaction.atomic():
                tickets.attachment_add(
                    actor=actor, ticket=ticket, filename=item.filename, content=item.content
                )
        except DomainError as exc:
            refused.append(f"{item.filename[:100]}: {_said(exc)}")
    return refused


def _said(exc: DomainError) -> str:
    if exc.errors:
        return "; ".join(e.message for e in exc.errors)[:200]
    return exc.detail[:200]


def _with_notes(text: str, notes: list[str]) -> str:
    if not notes:
        return text
    listed = "\n".join(f"- {n}" for n in notes)
    return f"{text}\n\n[Not kept from the email:\n{listed}]".strip()


def _new_ticket(
    message: InboundMessage,
    parsed: mailparse.Parsed,
    author: User,
    follows: Ticket | None = None,
) -> Outcome:
    text = parsed.text
    if follows is not None:
        text = f"Follow-up to {follows.key}, which is closed.\n\n{parsed.reply_text}"
    ticket = tickets.ticket_create(
        actor=author,
        organization=message.mailbox.organization,
        subject=parsed.subject,
        description=text[: tickets.BODY_MAX - 2_000],
        source=Source.EMAIL,
        requester=author,
    )
    refused = _files(author, ticket, parsed)
    notes = parsed.notes + refused
    if notes:
        ticket.description = _with_notes(ticket.description, notes)[: tickets.BODY_MAX]
        Ticket.objects.filter(pk=ticket.pk).update(description=ticket.description)
    why = (
        "a new ticket" if follows is None else f"a new ticket (its ticket {follows.key} is closed)"
    )
    return Outcome(InboundStatus.PROCESSED, why, ticket=ticket)


def _reply(
    message: InboundMessage, parsed: mailparse.Parsed, author: User, ticket: Ticket
) -> Outcome:
    body = parsed.reply_text or parsed.text or "(an empty reply)"
    refused = _files(author, ticket, parsed) if parsed.files else []
    comment = tickets.ticket_comment(
        actor=author,
        ticket=ticket,
        body=_with_notes(body, parsed.notes + refused)[: tickets.BODY_MAX],
    )
    return Outcome(InboundStatus.PROCESSED, "a reply", ticket=ticket, comment_id=comment.pk)


# --- quarantine -----------------------------------------------------------------------------


def retry(*, actor: User | None, message_id: int) -> InboundMessage:
    """Process a quarantined message again (after the cause was fixed: a sender added, a
    mailbox's rule changed). ``actor`` None is the operator (the command line)."""
    if actor is not None:
        policy.require(actor, "mailbox.manage")
    updated = InboundMessage.objects.filter(pk=message_id, status=InboundStatus.QUARANTINED).update(
        status=InboundStatus.RECEIVED, attempts=0, reason=""
    )
    if not updated:
        raise NotFound("No such quarantined message.")
    process(message_id)
    return InboundMessage.objects.get(pk=message_id)
