"""Email in, against a real IMAP server (Dovecot on loopback): new tickets, replies that
join their ticket only with a valid reply token, files, automatic mail and loops, bounces,
unknown senders, quarantine and retry, and fetching that neither loses nor repeats."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.channels.mails import mail
from tests.conftest import Cast, make_ticket
from tests.imap import ImapServer, imap_server
from tierdesk.channels import imap, inbound, mailboxes, tokens
from tierdesk.channels.models import InboundMessage, InboundStatus, Mailbox
from tierdesk.core import clock
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, Organization, User
from tierdesk.tickets import services as ticket_services
from tierdesk.tickets.models import Attachment, Comment, Source, Status, Ticket

_users = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[ImapServer]:
    with imap_server("s3cret-pw") as found:
        yield found


def _mailbox(server: ImapServer, org: Organization, **values: Any) -> tuple[Mailbox, str]:
    user = f"box{next(_users)}@test"
    fields: dict[str, Any] = {
        "name": f"{org.code} support",
        "address": f"support-{user.split('@')[0]}@{org.code.lower()}.example",
        "host": "127.0.0.1",
        "port": server.imaps_port,
        "security": "tls",
        "username": user,
        "password": "s3cret-pw",
        "ca_certificate": server.ca_pem,
    } | values
    return mailboxes.mailbox_create(actor=None, organization=org, **fields), user


@pytest.fixture
def acme_box(server: ImapServer, cast: Cast) -> tuple[Mailbox, str]:
    return _mailbox(server, cast.acme)


def _token_for(ticket: Ticket, recipient: str) -> str:
    token = tokens.make(
        organization_id=ticket.organization_id, ticket_id=ticket.pk, recipient=recipient, nonce="n1"
    )
    return f"<{token}@desk.example>"


def _only(box: Mailbox) -> InboundMessage:
    found = list(InboundMessage.objects.filter(mailbox=box))
    assert len(found) == 1, found
    return found[0]


def test_a_new_message_becomes_a_ticket_and_is_flagged_after_it_is_stored(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    server.deliver(user, mail(subject="VPN down", text="Since this morning."))
    assert mailboxes.poll_all() == {"stored": 1, "processed": 1, "failed": 0}
    ticket = Ticket.objects.get(organization=cast.acme)
    assert (ticket.subject, ticket.description, ticket.source) == (
        "VPN down",
        "Since this morning.",
        Source.EMAIL,
    )
    assert ticket.requester == cast.alice
    assert _only(box).ticket == ticket
    assert "$TierdeskStored" in server.flags(user)[0]
    assert "\\Seen" in server.flags(user)[0]
    # polling again takes nothing and makes nothing
    assert mailboxes.poll_all() == {"stored": 0, "processed": 0, "failed": 0}
    assert Ticket.objects.count() == 1


def test_a_message_fetched_again_after_a_crash_is_not_stored_twice(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    raw = mail(subject="once")
    server.deliver(user, raw)
    # stored and committed, then the worker died before flagging it on the server
    inbound.store(box, raw)
    assert "$TierdeskStored" not in server.flags(user)[0]
    counts = mailboxes.poll_all()
    assert counts["stored"] == 0  # fetched again, recognised
    assert "$TierdeskStored" in server.flags(user)[0]
    assert Ticket.objects.filter(subject="once").count() == 1
    # the same message delivered twice (to two aliases of the mailbox) is one message
    server.deliver(user, raw)
    mailboxes.poll_all()
    assert Ticket.objects.filter(subject="once").count() == 1


def test_a_reply_with_a_valid_token_joins_its_ticket_trimmed(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    ticket = make_ticket(cast.alice, cast.acme)
    reply = mail(
        subject=f"Re: [{ticket.key}] Printer on fire",
        text="It works now.\n\nOn Mon, 2 Mar 2026, Desk wrote:\n> What do you see?",
        headers={"In-Reply-To": _token_for(ticket, "alice@acme.example")},
    )
    server.deliver(user, reply)
    mailboxes.poll_all()
    comment = Comment.objects.get(ticket=ticket)
    assert (comment.author, comment.body, comment.is_internal) == (
        cast.alice,
        "It works now.",
        False,
    )
    assert Ticket.objects.count() == 1
    assert _only(box).comment == comment


def test_the_token_in_the_reply_address_counts_too(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    ticket = make_ticket(cast.alice, cast.acme)
    token = _token_for(ticket, "alice@acme.example").strip("<>").split("@")[0]
    local, domain = box.address.split("@")
    server.deliver(user, mail(to=f"{local}+{token}@{domain}", text="more"))
    mailboxes.poll_all()
    assert Comment.objects.get(ticket=ticket).body == "more"


@pytest.mark.parametrize(
    "how",
    ["subject number only", "someone else's token", "forged token", "another organization's"],
)
def test_a_reply_without_a_valid_token_opens_a_new_ticket(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str], how: str
) -> None:
    _box, user = acme_box
    ticket = make_ticket(cast.alice, cast.acme)
    headers: dict[str, str] = {}
    if how == "someone else's token":
        headers["In-Reply-To"] = _token_for(ticket, "alice@acme.example")
    elif how == "forged token":
        token = _token_for(ticket, "bob@acme.example")
        headers["In-Reply-To"] = token[:-15] + ("0" if token[-15] != "0" else "1") + token[-14:]
    elif how == "another organization's":
        other = make_ticket(cast.gerd, cast.globex)
        headers["References"] = _token_for(other, "bob@acme.example")
    server.deliver(
        user,
        mail(sender="bob@acme.example", subject=f"Re: [{ticket.key}] gimme", headers=headers),
    )
    mailboxes.poll_all()
    assert not Comment.objects.exists()
    new = Ticket.objects.get(requester=cast.bob)
    assert new.organization == cast.acme
    assert new.pk != ticket.pk


def test_a_token_is_only_good_at_its_organizations_mailbox(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    globex_box, globex_user = _mailbox(server, cast.globex)
    # Alice's ACME token, arriving at GLOBEX's mailbox: refused as not hers here
    server.deliver(
        globex_user,
        mail(text="let me in", headers={"In-Reply-To": _token_for(ticket, "alice@acme.example")}),
    )
    # a token made for GLOBEX's own requester but naming ACME's ticket (as a leaked key
    # would make one): GLOBEX's mailbox checks it against GLOBEX, so it does not verify
    forged = tokens.make(
        organization_id=cast.acme.pk, ticket_id=ticket.pk, recipient="gerd@globex.example",
        nonce="n2",
    )  # fmt: skip
    server.deliver(
        globex_user,
        mail(sender="gerd@globex.example", subject="sneaky", text="me too",
             headers={"In-Reply-To": f"<{forged}@desk.example>"}),
    )  # fmt: skip
    mailboxes.poll_all()
    by_subject = {m.subject: m for m in InboundMessage.objects.filter(mailbox=globex_box)}
    alice_at_globex = by_subject["Printer on fire"]
    assert alice_at_globex.status == InboundStatus.QUARANTINED
    assert "not a requester of GLOBEX" in alice_at_globex.reason
    # Gerd's opened a new GLOBEX ticket: the ACME ticket got nothing
    assert by_subject["sneaky"].status == InboundStatus.PROCESSED
    assert by_subject["sneaky"].ticket.organization == cast.globex
    assert not Comment.objects.exists()
    assert Ticket.objects.filter(organization=cast.acme).count() == 1


def test_staff_reply_by_token_and_are_quarantined_without_one(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    ticket = make_ticket(cast.alice, cast.acme)
    server.deliver(
        user,
        mail(
            sender="lena@msp.example",
            text="Try again now.",
            headers={"In-Reply-To": _token_for(ticket, "lena@msp.example")},
        ),
    )
    server.deliver(user, mail(sender="lena@msp.example", subject="no token"))
    server.deliver(user, mail(sender="gus@msp.example", subject="not serving ACME"))
    mailboxes.poll_all()
    comment = Comment.objects.get(ticket=ticket)
    assert (comment.author, comment.is_internal) == (cast.lena, False)
    ticket.refresh_from_db()
    assert ticket.first_response_at is not None
    reasons = dict(InboundMessage.objects.filter(mailbox=box).values_list("subject", "reason"))
    assert "staff open tickets in the console" in reasons["no token"]
    assert "not a requester of ACME" in reasons["not serving ACME"]


def test_a_reply_to_a_closed_ticket_opens_a_follow_up(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    _box, user = acme_box
    ticket = make_ticket(cast.alice, cast.acme)
    Ticket.objects.filter(pk=ticket.pk).update(status=Status.CLOSED)
    server.deliver(
        user,
        mail(
            text="It broke again.",
            headers={"In-Reply-To": _token_for(ticket, "alice@acme.example")},
        ),
    )
    mailboxes.poll_all()
    follow = Ticket.objects.exclude(pk=ticket.pk).get()
    assert follow.description.startswith(f"Follow-up to {ticket.key}, which is closed.")
    assert "It broke again." in follow.description


def test_files_are_kept_as_attachments_and_refused_ones_named(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    _box, user = acme_box
    files = [
        ("error.log", b"boom\n", "text/plain"),
        ("tool.exe", b"MZ\x90\x00", "application/octet-stream"),
        ("screen.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image/png"),
    ]
    server.deliver(user, mail(text="see files", files=files))
    mailboxes.poll_all()
    ticket = Ticket.objects.get()
    assert sorted(Attachment.objects.filter(ticket=ticket).values_list("filename", flat=True)) == [
        "error.log",
        "screen.png",
    ]
    assert "tool.exe: files of type .exe are not accepted" in ticket.description
    assert ticket.description.startswith("see files")


def test_html_mail_arrives_as_safe_text(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    _box, user = acme_box
    html = "<p>Hi</p><script>alert(1)</script><p onmouseover='x()'>the <b>disk</b> is full</p>"
    server.deliver(user, mail(text=None, html=html))
    mailboxes.poll_all()
    description = Ticket.objects.get().description
    assert "Hi" in description
    assert "the disk is full" in description
    assert "alert" not in description
    assert "<" not in description


def test_loops_and_automatic_replies_make_nothing(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str], settings: Any
) -> None:
    box, user = acme_box
    settings.DEFAULT_FROM_EMAIL = "Desk <desk@msp.example>"
    server.deliver(user, mail(sender=box.address, subject="from ourselves"))
    server.deliver(user, mail(sender="desk@msp.example", subject="from our sender"))
    server.deliver(user, mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    server.deliver(user, mail(subject="alert", headers={"Auto-Submitted": "auto-generated"}))
    mailboxes.poll_all()
    by_subject = {m.subject: m for m in InboundMessage.objects.filter(mailbox=box)}
    assert by_subject["from ourselves"].status == InboundStatus.IGNORED
    assert "loop" in by_subject["from ourselves"].reason
    assert by_subject["from our sender"].status == InboundStatus.IGNORED
    assert by_subject["Out of office"].status == InboundStatus.IGNORED
    # monitoring mail still opens a ticket, marked so that nothing answers it
    alert = by_subject["alert"]
    assert alert.status == InboundStatus.PROCESSED
    assert alert.auto_generated
    assert Ticket.objects.get().subject == "alert"


def test_a_bounce_is_recorded_on_the_requester_of_this_organization_only(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    # what we sent Bob (and Gerd, elsewhere) came back: the notice quotes its headers
    bobs = make_ticket(cast.bob, cast.acme)
    gerds = make_ticket(cast.gerd, cast.globex)
    returned = (
        f"Message-ID: {_token_for(bobs, 'bob@acme.example')}\r\n"
        f"References: {_token_for(gerds, 'gerd@globex.example')}\r\n"
    ).encode()

    def report(headers: bytes, message_id: bytes) -> bytes:
        return (
            b"From: MAILER-DAEMON@mx.acme.example\r\nTo: " + box.address.encode() + b"\r\n"
            b"Subject: Undelivered Mail\r\nReturn-Path: <>\r\nMessage-ID: " + message_id + b"\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
            b"--r\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
            b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            b"Final-Recipient: rfc822; bob@acme.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            b"Final-Recipient: rfc822; gerd@globex.example\r\nAction: failed\r\n"
            b"Status: 5.1.1\r\n\r\n"
            b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\n" + headers + b"\r\n"
            b"--r--\r\n"
        )

    # a forged notice first (no token of ours): it marks nobody
    server.deliver(user, report(b"Message-ID: <made-up@evil.example>\r\n", b"<b0@mx>"))
    mailboxes.poll_all()
    assert User.objects.get(pk=cast.bob.pk).email_bounced_at is None
    server.deliver(user, report(returned, b"<b1@mx>"))
    mailboxes.poll_all()
    assert Ticket.objects.count() == 2  # the two made above: no ticket from a bounce
    assert set(InboundMessage.objects.filter(mailbox=box).values_list("status", flat=True)) == {
        InboundStatus.IGNORED
    }
    bob = User.objects.get(pk=cast.bob.pk)
    assert bob.email_bounced_at is not None
    assert bob.email_bounce_reason.startswith("5.1.1")
    # Gerd's token is GLOBEX's: not vouched for at ACME's mailbox
    assert User.objects.get(pk=cast.gerd.pk).email_bounced_at is None


def test_unknown_senders_follow_the_mailbox_rule_and_retry_after_a_change(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, user = acme_box
    server.deliver(user, mail(sender="New Person <newbie@acme.example>", subject="in domain"))
    server.deliver(user, mail(sender="stranger@elsewhere.example", subject="outside"))
    mailboxes.poll_all()
    newbie = User.objects.get(email="newbie@acme.example")
    assert (newbie.role, newbie.organization, newbie.full_name) == (
        "requester",
        cast.acme,
        "New Person",
    )
    assert Ticket.objects.get().requester == newbie
    outside = InboundMessage.objects.get(mailbox=box, subject="outside")
    assert outside.status == InboundStatus.QUARANTINED
    assert "takes no new senders" in outside.reason
    # an admin lets anyone in and processes it again
    with pytest.raises(PermissionDenied):
        inbound.retry(actor=cast.manager, message_id=outside.pk)
    mailboxes.mailbox_update(actor=cast.admin, mailbox=box, unknown_senders="anyone")
    retried = inbound.retry(actor=cast.admin, message_id=outside.pk)
    assert retried.status == InboundStatus.PROCESSED
    assert retried.ticket is not None
    assert retried.ticket.requester.email == "stranger@elsewhere.example"


def test_a_failing_step_is_retried_then_quarantined_and_loses_nothing(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, user = acme_box
    server.deliver(user, mail(subject="unlucky"))

    def broken(**kwargs: Any) -> Ticket:
        raise RuntimeError("database went away")

    monkeypatch.setattr(ticket_services, "ticket_create", broken)
    start = clock.now()
    mailboxes.poll_all()
    mailboxes.poll_all()  # at once again: not yet due (an outage of a minute is waited out)
    assert _only(box).attempts == 1
    assert _only(box).status == InboundStatus.RECEIVED
    for hours in range(1, inbound.MAX_ATTEMPTS):
        with clock.frozen_at(start + dt.timedelta(hours=hours)):
            mailboxes.poll_all()
    message = _only(box)
    assert message.status == InboundStatus.QUARANTINED
    assert "failed 5 times" in message.reason
    assert "database went away" in message.reason
    assert not Ticket.objects.exists()
    monkeypatch.undo()
    assert inbound.retry(actor=None, message_id=message.pk).status == InboundStatus.PROCESSED
    assert Ticket.objects.get().subject == "unlucky"


def test_malformed_and_oversized_mail_is_quarantined_and_the_rest_goes_on(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str], settings: Any
) -> None:
    box, user = acme_box
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\np%d\r\n" % i for i in range(3000))
    bomb = (
        b"From: alice@acme.example\r\nSubject: bomb\r\nMessage-ID: <bomb@x>\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    )
    big = mail(subject="big", text="x" * 300_000)
    settings.MAIL_MAX_BYTES = 200_000
    assert len(bomb) < settings.MAIL_MAX_BYTES
    server.deliver_many(user, [bomb, big, mail(subject="fine")])
    mailboxes.poll_all()
    got = {m.subject or m.message_id: m for m in InboundMessage.objects.filter(mailbox=box)}
    assert got["bomb"].status == InboundStatus.QUARANTINED
    assert "MIME parts" in got["bomb"].reason
    oversized = got["big"]
    assert oversized.status == InboundStatus.QUARANTINED
    assert "too large" in oversized.reason
    assert len(bytes(oversized.raw)) < 1_000  # its header only
    assert Ticket.objects.get().subject == "fine"
    # a retry of the oversized one is refused again: its body was never taken
    assert inbound.retry(actor=None, message_id=oversized.pk).status == InboundStatus.QUARANTINED


def test_starttls_works_too(server: ImapServer, cast: Cast) -> None:
    _box, user = _mailbox(server, cast.acme, security="starttls", port=server.imap_port)
    server.deliver(user, mail(subject="over starttls"))
    mailboxes.poll_all()
    assert Ticket.objects.get().subject == "over starttls"


def test_test_connection_says_what_is_wrong(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    box, _user = acme_box
    assert "0 message(s) waiting" in mailboxes.test_connection(actor=cast.admin, mailbox=box)
    cases = [
        ({"password": "wrong"}, "refused the user name or password"),
        ({"ca_certificate": ""}, "certificate is not trusted"),
        ({"port": server.imap_port}, "TLS failed"),
        ({"folder": "Nope"}, "no folder 'Nope'"),
    ]
    for change, said in cases:
        fresh = Mailbox.objects.get(pk=box.pk)
        mailboxes.mailbox_update(actor=None, mailbox=fresh, **change)
        with pytest.raises(imap.MailError, match=said):
            mailboxes.test_connection(actor=None, mailbox=fresh)
        mailboxes.mailbox_update(
            actor=None, mailbox=fresh, password="s3cret-pw", ca_certificate=server.ca_pem,
            port=server.imaps_port, folder="INBOX",
        )  # fmt: skip
    closed = Mailbox.objects.get(pk=box.pk)
    from tests.processes import free_port

    mailboxes.mailbox_update(actor=None, mailbox=closed, port=free_port())
    with pytest.raises(imap.MailError, match="connection refused"):
        mailboxes.test_connection(actor=None, mailbox=closed)
    # a failing mailbox is recorded and does not stop the others
    server.deliver(_mailbox(server, cast.acme)[1], mail(subject="other box"))
    counts = mailboxes.poll_all()
    assert counts["failed"] == 1
    assert "connection refused" in Mailbox.objects.get(pk=box.pk).last_error
    assert Ticket.objects.get().subject == "other box"


def test_mailbox_configuration_is_for_admins_and_the_password_stays_secret(
    server: ImapServer, cast: Cast
) -> None:
    with pytest.raises(PermissionDenied):
        _mailbox(server, cast.acme) if False else mailboxes.mailbox_create(
            actor=cast.manager, organization=cast.acme, name="x", address="x@acme.example",
            host="h", port=993, security="tls", username="u", password="p",
        )  # fmt: skip
    box = mailboxes.mailbox_create(
        actor=cast.admin, organization=cast.acme, name="Support", address="Help@Acme.Example",
        host="imap.acme.example", port=993, security="tls", username="help", password="hunter2-pw",
    )  # fmt: skip
    assert box.address == "help@acme.example"
    assert "hunter2" not in box.password_sealed
    entries = AuditEntry.objects.filter(target_type="mailbox")
    assert entries.count() == 1
    assert "hunter2" not in str(list(entries.values()))
    mailboxes.mailbox_update(actor=cast.admin, mailbox=box, password="new-pw-123")
    assert "new-pw" not in str(list(AuditEntry.objects.filter(target_type="mailbox").values()))
    bad = [
        ({"address": "not an address"}, "address"),
        ({"address": "help+x@acme.example"}, "address"),
        ({"address": "help@acme.example", "name": "dup"}, "address"),
        ({"port": 0}, "port"),
        ({"port": "993"}, "port"),
        ({"security": "none"}, "security"),
        ({"host": "bad\nhost"}, "host"),
        ({"host": "imaps://imap.acme.example"}, "host"),
        ({"host": "imap.acme.example:993"}, "host"),
        ({"is_active": "false"}, "is_active"),
        ({"ca_certificate": "not pem"}, "ca_certificate"),
        ({"password": ""}, "password"),
    ]
    base = {
        "name": "Other", "address": "other@acme.example", "host": "h", "port": 993,
        "security": "tls", "username": "u", "password": "p",
    }  # fmt: skip
    for change, field in bad:
        with pytest.raises(ValidationFailed) as caught:
            mailboxes.mailbox_create(actor=cast.admin, organization=cast.acme, **(base | change))
        assert [e.field for e in caught.value.errors] == [field], change
    assert Mailbox.objects.count() == 1
    # a refused change leaves the caller's object as it was, and the database too
    with pytest.raises(ValidationFailed):
        mailboxes.mailbox_update(actor=cast.admin, mailbox=box, name="Renamed", port=0)
    assert box.name == "Support"
    assert Mailbox.objects.get(pk=box.pk).name == "Support"
    mailboxes.mailbox_update(actor=cast.admin, mailbox=box, name="Renamed")
    entry = AuditEntry.objects.filter(target_type="mailbox").order_by("-pk").first()
    assert entry is not None
    assert entry.changes == {"name": {"old": "Support", "new": "Renamed"}}


def test_a_fetch_answer_naming_the_uid_after_the_literal_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Servers may put UID before or after the message's bytes in a FETCH answer (Dovecot
    puts it before; the order is the server's to choose): both are read, none skipped."""
    answer: list[object] = [
        (b"1 (UID 5 BODY[] {3}", b"one"),
        b")",
        (b"2 (BODY[] {3}", b"two"),
        b" UID 6)",
    ]
    connection = imap.Connection(Mailbox())
    monkeypatch.setattr(connection, "_uid", lambda *args: answer)
    assert connection._bodies([b"5", b"6"], "BODY.PEEK[]") == {b"5": b"one", b"6": b"two"}


def test_a_poller_hands_over_when_relieved(
    server: ImapServer, cast: Cast, acme_box: tuple[Mailbox, str]
) -> None:
    """The mail tick polls until the next minute's tick has started: told it is relieved,
    it ends after its round, long before its time is up."""
    import time

    _box, user = acme_box
    server.deliver(user, mail(subject="before the handover"))
    started = time.monotonic()
    counts = mailboxes.poll_all(until=started + 60, relieved=lambda: True)
    assert time.monotonic() - started < 10
    assert counts["processed"] == 1
