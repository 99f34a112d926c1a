"""Email out and back in, through real servers: a notification tierdesk sends over SMTP
(aiosmtpd) is answered by its recipient into the organization's IMAP mailbox (Dovecot), and
the answer joins the ticket; acknowledgements of tickets opened by email are never sent to
automatic mail and at most once an hour to one address."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import pytest

from tests.channels.mails import mail
from tests.channels.test_notify import deliver, use_smtp
from tests.channels.test_notify_automation import self_service_blocked
from tests.conftest import Cast, make_ticket
from tests.imap import ImapServer, imap_server
from tests.smtp import Inbox, smtp_server
from tierdesk.channels import mailboxes
from tierdesk.channels.models import InboundMessage, InboundStatus, Mailbox
from tierdesk.core import clock
from tierdesk.core.models import OutboxEvent
from tierdesk.tickets.models import Comment, Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def server() -> Iterator[ImapServer]:
    with imap_server() as found:
        yield found


@pytest.fixture
def inbox(settings: Any, cast: Cast) -> Iterator[Inbox]:
    with smtp_server() as smtp:
        use_smtp(settings, smtp.port)
        settings.DEFAULT_FROM_EMAIL = "Service Desk <desk@msp.example>"
        OutboxEvent.objects.update(dispatched_at=clock.now())
        yield smtp


@pytest.fixture
def box(server: ImapServer, cast: Cast) -> Mailbox:
    return mailboxes.mailbox_create(
        actor=None, organization=cast.acme, name="Support", address="support@acme.example",
        host="127.0.0.1", port=server.imaps_port, security="tls", username="roundtrip@test",
        password=server.password, ca_certificate=server.ca_pem,
    )  # fmt: skip


def _reply_to(message: EmailMessage, text: str, *, sender: str, by_address: bool) -> bytes:
    """A reply as a mail program writes it: to the Reply-To address, with In-Reply-To
    (left out when ``by_address``: then only the address carries the token)."""
    headers = {} if by_address else {"In-Reply-To": str(message["Message-ID"])}
    quoted = "\n".join(
        f"> {line}" for line in str(message.get_body(("plain",)).get_content()).splitlines()
    )  # type: ignore[union-attr]
    return mail(
        sender=sender,
        to=str(message["Reply-To"]),
        subject=f"Re: {message['Subject']}",
        text=f"{text}\n\nOn Mon, Service Desk wrote:\n{quoted}",
        headers=headers,
    )


@pytest.mark.parametrize("by_address", [False, True])
def test_a_reply_to_a_notification_joins_its_ticket(
    server: ImapServer, inbox: Inbox, cast: Cast, box: Mailbox, by_address: bool
) -> None:
    server.deliver("roundtrip@test", mail(subject="Laptop will not boot", text="Black screen."))
    mailboxes.poll_all()
    ticket = Ticket.objects.get()
    deliver()
    acknowledgement = inbox.wait_for("alice@acme.example")[0]
    reply_to = parseaddr(str(acknowledgement["Reply-To"]))[1]
    assert reply_to.startswith("support+tdk-")
    assert reply_to.endswith("@acme.example")
    server.deliver(
        "roundtrip@test",
        _reply_to(
            acknowledgement,
            "It beeps three times.",
            sender="alice@acme.example",
            by_address=by_address,
        ),
    )
    mailboxes.poll_all()
    comment = Comment.objects.get(ticket=ticket)
    assert (comment.author, comment.body) == (cast.alice, "It beeps three times.")
    # forwarded to a colleague who answers: not theirs to answer, so a new ticket
    server.deliver(
        "roundtrip@test",
        _reply_to(acknowledgement, "Me too!", sender="bob@acme.example", by_address=by_address),
    )
    mailboxes.poll_all()
    assert Comment.objects.filter(ticket=ticket).count() == 1
    assert Ticket.objects.filter(requester=cast.bob).count() == 1


def test_acknowledgements_skip_automatic_mail_and_repeat_senders(
    server: ImapServer, inbox: Inbox, cast: Cast, box: Mailbox
) -> None:
    server.deliver_many(
        "roundtrip@test",
        [
            mail(sender="bob@acme.example", subject="first"),
            mail(sender="bob@acme.example", subject="second, minutes later"),
            mail(
                sender="carol@acme.example",
                subject="alert",
                headers={"Auto-Submitted": "auto-generated"},
            ),
        ],
    )
    mailboxes.poll_all()
    assert Ticket.objects.count() == 3
    deliver()
    deliver()
    to_bob = inbox.to("bob@acme.example")
    assert len(to_bob) == 1  # the second ticket's acknowledgement is held back
    assert "first" in str(to_bob[0]["Subject"])
    assert inbox.to("carol@acme.example") == []


def test_a_reply_to_a_security_alert_lands_on_no_ticket(
    server: ImapServer, inbox: Inbox, cast: Cast, box: Mailbox
) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)  # ACME-1: something to land on
    self_service_blocked(cast.alice)
    deliver()
    alert = inbox.wait_for("admin@msp.example")[0]
    assert alert["Reply-To"] is None  # no reply address with a token, though ACME has one
    thread = {"In-Reply-To": str(alert["Message-ID"]), "References": str(alert["Message-ID"])}
    answer = mail(sender="admin@msp.example", subject=f"Re: {alert['Subject']}",
                  text="Looking into it.", headers=thread)  # fmt: skip
    server.deliver("roundtrip@test", answer)
    mailboxes.poll_all()
    assert not Comment.objects.filter(ticket=ticket).exists()
    assert Ticket.objects.count() == 1
    reply = InboundMessage.objects.get(sender="admin@msp.example")
    assert reply.status == InboundStatus.QUARANTINED
    assert "without a valid reply token" in reply.reason
