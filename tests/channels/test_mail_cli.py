"""`tierdesk mailbox …` and `tierdesk mail …`: an operator adds a mailbox (the password from
a prompt or a file, never an argument), lists and tests it, and works the quarantine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.channels.mails import mail
from tests.conftest import Cast
from tests.imap import ImapServer, imap_server
from tierdesk.channels import mailboxes
from tierdesk.channels.models import InboundMessage, Mailbox
from tierdesk.cli import main

PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[ImapServer]:
    with imap_server(PASSWORD) as found:
        yield found


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def create_args(server: ImapServer, user: str, ca: Path, *more: str) -> list[str]:
    return [
        "mailbox", "create", "--org", "acme", "--name", "ACME support",
        "--address", f"{user}@acme.example", "--host", "127.0.0.1",
        "--port", str(server.imaps_port), "--security", "tls", "--username", user,
        "--ca-file", str(ca), *more,
    ]  # fmt: skip


@pytest.fixture
def ca(server: ImapServer, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text(server.ca_pem)
    return path


def test_an_operator_adds_lists_and_tests_a_mailbox(
    server: ImapServer, cast: Cast, ca: Path, tmp_path: Path
) -> None:
    # the password from a prompt, not echoed
    made = run(*create_args(server, "cli1", ca, "--json"), stdin=f"{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    created: dict[str, Any] = json.loads(made.stdout[made.stdout.index("{") :])
    assert created["address"] == "cli1@acme.example"
    assert created["organization"] == "ACME"
    assert PASSWORD not in made.output
    assert "password" not in made.stdout.split("{", 1)[1]
    # or from a file
    secret = tmp_path / "pw"
    secret.write_text(f"{PASSWORD}\n")
    other = run(*create_args(server, "cli2", ca, "--password-file", str(secret)))
    assert other.exit_code == 0, other.output
    assert "created mailbox" in other.output
    assert mailboxes.test_connection(actor=None, mailbox=Mailbox.objects.get(username="cli2"))
    listed = run("mailbox", "list", "--json")
    assert [b["address"] for b in json.loads(listed.stdout)] == [
        "cli1@acme.example",
        "cli2@acme.example",
    ]
    assert PASSWORD not in listed.stdout
    assert "cli1@acme.example" in run("mailbox", "list").stdout
    tested = run("mailbox", "test", str(created["id"]))
    assert tested.exit_code == 0, tested.output
    assert "connected; 0 message(s) waiting in INBOX" in tested.stdout
    # a wrong password: the reason, exit status 1
    box = Mailbox.objects.get(pk=created["id"])
    mailboxes.mailbox_update(actor=None, mailbox=box, password="wrong-pw")
    failed = run("mailbox", "test", str(box.pk))
    assert failed.exit_code == 1
    assert "refused the user name or password" in failed.stderr
    assert run("mailbox", "test", "9999").exit_code == 1


def test_a_password_is_no_argument_and_bad_input_is_refused(
    server: ImapServer, cast: Cast, ca: Path
) -> None:
    refused = CliRunner().invoke(main, [*create_args(server, "cli3", ca), "--password", "x"])
    assert refused.exit_code == 2
    assert "No such option" in refused.output
    bad = run(*create_args(server, "cli3", ca, "--address", "a+b@acme.example"), stdin="pw\n")
    assert bad.exit_code == 1
    assert "address" in bad.stderr
    assert run(*create_args(server, "cli3", ca, "--org", "NOPE"), stdin="pw\n").exit_code == 1
    assert not Mailbox.objects.exists()


def test_the_quarantine_is_listed_and_retried(server: ImapServer, cast: Cast, ca: Path) -> None:
    assert run(*create_args(server, "cli4", ca), stdin=f"{PASSWORD}\n").exit_code == 0
    server.deliver("cli4", mail(sender="stranger@elsewhere.example", subject="Let me in"))
    mailboxes.poll_all()
    stuck = InboundMessage.objects.get()
    listed = json.loads(run("mail", "quarantine", "--json").stdout)
    assert [(m["id"], m["sender"], m["subject"]) for m in listed] == [
        (stuck.pk, "stranger@elsewhere.example", "Let me in")
    ]
    assert "takes no new senders" in listed[0]["reason"]
    assert "Let me in" in run("mail", "quarantine").stdout
    still = run("mail", "retry", str(stuck.pk))
    assert still.exit_code == 1
    assert "still quarantined" in still.stderr
    box = Mailbox.objects.get()
    mailboxes.mailbox_update(actor=None, mailbox=box, unknown_senders="anyone")
    done = run("mail", "retry", str(stuck.pk))
    assert done.exit_code == 0, done.output
    assert "processed" in done.stdout
    assert "ACME-" in done.stdout
    again = run("mail", "retry", str(stuck.pk))
    assert again.exit_code == 1
    assert "No such quarantined message" in again.stderr
    assert json.loads(run("mail", "quarantine", "--json").stdout) == []
