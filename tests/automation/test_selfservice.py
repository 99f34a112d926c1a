"""Self-service through the portal's pages: a code mailed (over real SMTP) to the address
on file, checked once and in time, then the directory (a real slapd) changes and a ticket
records it, resolved by automation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests import ldapserver
from tests.conftest import Cast, make_ticket
from tests.smtp import Inbox, body, mail_to_smtp
from tierdesk.automation import selfservice
from tierdesk.automation.models import ActionRun, Directory, Verification
from tierdesk.core.models import AuditEntry, OutboxEvent
from tierdesk.tickets.models import Ticket

OLD = ldapserver.USER_PASSWORD
IP = "192.0.2.44"


@pytest.fixture
def inbox(settings: Any) -> Iterator[Inbox]:
    with mail_to_smtp(settings) as server:
        yield server


def ask(client: Client, email: str, action: str = "reset-password", ip: str = IP) -> Any:
    return client.post("/self-service", {"action": action, "email": email}, REMOTE_ADDR=ip)


def code_for(inbox: Inbox, email: str, count: int = 1) -> str:
    message = inbox.wait_for(email, count)[-1]
    found = re.search(r"The code is (\d{6})", body(message))
    assert found, body(message)
    return found.group(1)


def enter(client: Client, code: str, ip: str = IP, **extra: str) -> Any:
    return client.post("/self-service/code", {"code": code, **extra}, REMOTE_ADDR=ip)


def test_a_forgotten_password_is_reset_after_the_code(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    client = Client()
    asked = ask(client, "Alice@acme.example")
    assert asked.status_code == 302
    page = client.get("/self-service/code")
    assert "a six-digit code is on its way" in page.content.decode()
    code = code_for(inbox, "alice@acme.example")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = enter(client, wrong)
    assert refused.status_code == 422
    assert "That is not the code." in refused.content.decode()
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    done = enter(client, code)
    assert done.status_code == 200, done.content.decode()
    assert "no-store" in done["Cache-Control"]
    password = re.search(r'id="new-password"[^>]*>([^<]+)<', done.content.decode())
    assert password, done.content.decode()
    secret = password.group(1).replace("&amp;", "&")
    assert slapd.bind_works(slapd.dn("alice"), secret)
    assert not slapd.bind_works(slapd.dn("alice"), OLD)
    run = ActionRun.objects.get()
    assert run.channel == "self_service"
    assert run.requested_by == cast.alice
    ticket = Ticket.objects.get()
    assert run.ticket == ticket
    assert ticket.requester == cast.alice
    assert ticket.status == "resolved"
    assert ticket.resolution_code == "automated"
    everything = str(Ticket.objects.values().get()) + str(list(AuditEntry.objects.values()))
    assert secret not in everything
    assert code not in str(list(Verification.objects.values()))
    # the code works once, and the page's request is over
    with pytest.raises(selfservice.CodeRefused, match="used already"):
        selfservice.complete(verification_id=Verification.objects.get().pk, code=code)
    assert enter(client, code).status_code == 302


def test_a_chosen_password_is_checked_before_the_code_is_spent(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    client = Client()
    ask(client, "alice@acme.example")
    code = code_for(inbox, "alice@acme.example")
    weak = enter(client, code, password="short", password2="short")
    assert weak.status_code == 422
    assert "at least 12 characters" in weak.content.decode()
    differ = enter(client, code, password="Harbour-Lights-77", password2="Harbour-Lights-78")
    assert "The two passwords differ." in differ.content.decode()
    chosen = "Harbour-Lights-77"
    done = enter(client, code, password=chosen, password2=chosen)
    assert done.status_code == 200, done.content.decode()
    assert 'id="new-password"' not in done.content.decode()
    assert slapd.bind_works(slapd.dn("alice"), chosen)


def test_a_locked_account_is_unlocked(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    assert not slapd.bind_works(slapd.dn("bob"), OLD)
    client = Client()
    ask(client, "bob@acme.example", action="unlock-account")
    done = enter(client, code_for(inbox, "bob@acme.example"))
    assert done.status_code == 200, done.content.decode()
    assert "Done" in done.content.decode()
    assert slapd.bind_works(slapd.dn("bob"), OLD)


def test_unknown_addresses_get_the_same_answers_and_no_mail(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    def answers(email: str, *entries: dict[str, str]) -> list[str]:
        """The pages a person sees: asking for a code, then entering ``entries``."""
        client = Client()
        pages = [client.get(ask(client, email)["Location"])]
        pages += [enter(client, **e) for e in entries]
        assert all(p.status_code in (200, 422) for p in pages)
        text = [p.content.decode() for p in pages]
        # the same words whoever asked: only the address, the form token and nonces differ
        varying = r'name="csrfmiddlewaretoken" value="[^"]+"|nonce="[^"]+"|"X-CSRFToken": "\w+"'
        return [re.sub(varying, "", t).replace(email, "EMAIL") for t in text]

    entries = [
        {"code": "000001"},
        {"code": "000002", "password": "short", "password2": "short"},
        *({"code": f"00000{n}"} for n in range(3, 7)),
    ]
    known = answers("alice@acme.example", *entries)
    for email in ("nobody@acme.example", "gerd@globex.example", "lena@msp.example"):
        # no account; no directory; staff
        assert answers(email, *entries) == known, email
    assert "That is not the code." in known[1]
    assert "at least 12 characters" in known[2]
    assert "that was the last try" in known[-1]
    assert len(inbox.wait_for("alice@acme.example")) == 1
    assert len(inbox.messages) == 1  # and none to the others
    assert Verification.objects.count() == 1


def test_codes_expire_run_out_of_tries_and_requests_are_limited(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox,
    settings: Any,
) -> None:  # fmt: skip
    client = Client()
    ask(client, "alice@acme.example")
    code = code_for(inbox, "alice@acme.example")
    for _ in range(5):
        enter(client, "000000" if code != "000000" else "111111")
    last = enter(client, code)
    assert "ask for a new one" in last.content.decode()
    # a new code voids the one before it; a code expires
    ask(client, "alice@acme.example")
    first = code_for(inbox, "alice@acme.example", 2)
    first_id = Verification.objects.order_by("pk").last().pk  # type: ignore[union-attr]
    ask(client, "alice@acme.example")
    second = code_for(inbox, "alice@acme.example", 3)
    with pytest.raises(selfservice.CodeRefused, match="expired"):
        selfservice.complete(verification_id=first_id, code=first)
    Verification.objects.update(expires_at="2000-01-01T00:00:00Z")
    assert "expired" in enter(client, second).content.decode()
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    # three requests per account within the window: the fourth sends nothing
    assert len(inbox.to("alice@acme.example")) == 3
    ask(client, "alice@acme.example", ip="192.0.2.99")
    assert len(inbox.to("alice@acme.example")) == 3
    # and per source address
    settings.SELF_SERVICE_LIMIT_PER_ADDRESS = 1
    assert ask(client, "carol@acme.example", ip="192.0.2.77").status_code == 302
    limited = ask(client, "carol@acme.example", ip="192.0.2.77")
    assert limited.status_code == 429


def test_bad_input_is_refused_beside_the_field(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    client = Client()
    bad = client.post("/self-service", {"action": "disable-account", "email": "x"}, REMOTE_ADDR=IP)
    assert bad.status_code == 422
    text = bad.content.decode()
    assert "Select a valid choice" in text
    assert "Enter a valid email address." in text
    assert client.get("/self-service/code").status_code == 302  # nothing asked yet
    ask(client, "alice@acme.example")
    assert "The code is six digits." in enter(client, "12ab56").content.decode()


def test_a_reset_asked_for_by_mail_makes_a_ticket_and_nothing_else(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    from tierdesk.channels import inbound, mailboxes

    box = mailboxes.mailbox_create(
        actor=None, organization=cast.acme, name="ACME", address="help@acme.example",
        host="imap.acme.example", port=993, security="tls", username="help",
        password="x-secret",
    )  # fmt: skip
    raw = (
        b"From: Alice <alice@acme.example>\r\nTo: help@acme.example\r\n"
        b"Subject: Please reset my password\r\nMessage-ID: <reset-1@acme.example>\r\n\r\n"
        b"I forgot my password, please reset it and send me the new one.\r\n"
    )
    inbound.store(box, raw)
    assert inbound.process_pending() == 1
    ticket = Ticket.objects.get()
    assert ticket.subject == "Please reset my password"
    assert ticket.status != "resolved"
    assert not ActionRun.objects.exists()
    assert not Verification.objects.exists()
    assert slapd.bind_works(slapd.dn("alice"), OLD)


def test_a_self_service_reset_counts_as_resolved_by_automation(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    from tierdesk.core.outbox import relay
    from tierdesk.reports import facts, queries

    client = Client()
    ask(client, "alice@acme.example")
    assert enter(client, code_for(inbox, "alice@acme.example")).status_code == 200
    make_ticket(cast.lena, cast.acme, cast.bob)  # and one that is not
    relay()  # the events mark the tickets' report facts stale, as the worker does
    facts.refresh_stale()
    today = Ticket.objects.get(subject__contains="self-service").created_at.date()
    figures = queries.summary(
        actor=cast.manager, organization="ACME", first_day=today, last_day=today
    )
    assert figures["resolved"] == 1
    assert figures["resolved_by_automation"] == 1


def test_ten_wrong_codes_in_a_day_block_the_account_with_one_alert(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox
) -> None:
    for round_ in range(2):
        verification = selfservice.start(email="alice@acme.example", runbook="unlock-account")
        assert verification is not None
        right = code_for(inbox, "alice@acme.example", round_ + 1)
        wrong = "000000" if right != "000000" else "111111"
        for _ in range(selfservice.CODE_ATTEMPTS):
            with pytest.raises(selfservice.CodeRefused):
                selfservice.complete(verification_id=verification.pk, code=wrong)
        alerts = OutboxEvent.objects.filter(name="security.self_service_blocked")
        assert alerts.count() == round_  # the tenth wrong code raises it, not the fifth
    alert = alerts.get()
    assert alert.payload["email"] == "alice@acme.example"
    assert alert.payload["wrong_codes_today"] == selfservice.DAILY_WRONG_CODES
    # blocked: no more codes today, audited each time, and no second alert
    assert selfservice.start(email="alice@acme.example", runbook="unlock-account") is None
    assert selfservice.start(email="alice@acme.example", runbook="unlock-account") is None
    assert len(inbox.to("alice@acme.example")) == 2
    assert AuditEntry.objects.filter(action="self_service.blocked").count() == 3
    assert alerts.count() == 1


def test_refused_answers_take_the_same_time_for_every_address(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, inbox: Inbox,
    settings: Any,
) -> None:  # fmt: skip
    """A known address costs a few writes an unknown one does not: both answers are held
    to the same floor, so their timing does not tell them apart."""
    settings.SELF_SERVICE_ANSWER_MS = 300
    for email in ("alice@acme.example", "nobody@acme.example"):
        client = Client()
        began = time.monotonic()
        assert ask(client, email).status_code == 302
        assert time.monotonic() - began >= 0.3, email
        began = time.monotonic()
        assert enter(client, "000000").status_code == 422
        assert time.monotonic() - began >= 0.3, email
