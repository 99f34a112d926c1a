"""The tierdesk command, in-process against the test database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tierdesk.cli import main
from tierdesk.core.models import ApiToken, User
from tierdesk.core.services import token_authenticate
from tierdesk.tickets.models import Ticket


@pytest.fixture
def run(db: None):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_set_up_a_client_and_work_a_ticket(run) -> None:  # type: ignore[no-untyped-def]
    r = run(
        "org",
        "create",
        "--code",
        "acme",
        "--name",
        "Acme",
        "--time-zone",
        "America/New_York",
        "--domain",
        "acme.example",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["code"] == "ACME"
    assert (
        run(
            "user",
            "create",
            "--email",
            "alice@acme.example",
            "--name",
            "Alice",
            "--role",
            "requester",
            "--org",
            "ACME",
        ).exit_code
        == 0
    )
    r = run(
        "user",
        "create",
        "--email",
        "lena@msp.example",
        "--name",
        "Lena",
        "--role",
        "agent",
        "--tier",
        "L1",
        "--skill",
        "accounts",
        "--serves",
        "ACME",
        "--hours",
        "mon-fri 8:00-16:30",
        "--time-zone",
        "Europe/Berlin",
    )
    assert r.exit_code == 0, r.output
    lena = User.objects.get(email="lena@msp.example")
    assert lena.agent_profile.hours.count() == 5

    r = run(
        "ticket",
        "create",
        "--as",
        "lena@msp.example",
        "--org",
        "ACME",
        "--subject",
        "Locked out",
        "--requester",
        "alice@acme.example",
        "--category",
        "access",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["key"] == "ACME-1"
    r = run("ticket", "list", "--as", "lena@msp.example", "--status", "new")
    assert "ACME-1" in r.stdout
    r = run(
        "ticket",
        "resolve",
        "ACME-1",
        "--as",
        "lena@msp.example",
        "--code",
        "fixed",
        "--note",
        "Unlocked in AD",
    )
    assert r.exit_code == 0, r.output
    assert Ticket.objects.get().status == "resolved"
    r = run("ticket", "show", "ACME-1", "--as", "lena@msp.example")
    assert "status_changed" in r.stdout


def test_token_create_prints_the_token_alone(run) -> None:  # type: ignore[no-untyped-def]
    run("user", "create", "--email", "admin@msp.example", "--name", "Ada", "--role", "admin")
    r = run("token", "create", "--user", "admin@msp.example")
    assert r.exit_code == 0
    token = r.stdout
    assert token.endswith("\n")
    assert token.count("\n") == 1
    assert token_authenticate(token.strip()) == User.objects.get(email="admin@msp.example")
    assert ApiToken.objects.count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["org", "create", "--code", "A", "--name", "x"], "code"),
        (
            ["org", "create", "--code", "ACME", "--name", "x", "--time-zone", "Mars/Base"],
            "time zone",
        ),
        (
            ["org", "create", "--code", "ACME", "--name", "x", "--domain", "not a domain"],
            "email_domains",
        ),
        (
            ["user", "create", "--email", "x@y.example", "--name", "X", "--role", "requester"],
            "--org",
        ),
        (["user", "create", "--email", "nope", "--name", "X", "--role", "admin"], "email"),
        (
            [
                "user",
                "create",
                "--email",
                "a@b.example",
                "--name",
                "X",
                "--role",
                "agent",
                "--tier",
                "L7",
            ],
            "tier",
        ),
        (
            [
                "user",
                "create",
                "--email",
                "a@b.example",
                "--name",
                "X",
                "--role",
                "agent",
                "--hours",
                "someday",
            ],
            "mon-fri",
        ),
        (
            [
                "user",
                "create",
                "--email",
                "a@b.example",
                "--name",
                "X",
                "--role",
                "agent",
                "--hours",
                "mon 8:5-12:00",
            ],
            "mon-fri",
        ),
        (["token", "create", "--user", "ghost@msp.example"], "no user"),
        (["ticket", "list", "--as", "ghost@msp.example"], "no active user"),
    ],
)
def test_errors_are_one_clear_line_and_a_non_zero_exit(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    r = run(*args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert not User.objects.filter(email__in=["x@y.example", "a@b.example"]).exists()


def test_check_reports_the_configuration(run) -> None:  # type: ignore[no-untyped-def]
    r = run("check", "--json")
    assert r.exit_code == 0, r.output
    names = {item["name"]: item["level"] for item in json.loads(r.stdout)}
    assert names["database"] == names["migrations"] == "ok"


def test_run_refuses_a_port_that_is_taken(run) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run("run", "--port", str(port))
    assert r.exit_code == 1
    assert "in use" in r.output


def test_backup_into_a_missing_directory_is_a_clear_error(run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    r = run("backup", str(tmp_path / "missing" / "b.tar.gz"))
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert ("does not exist" if connection.vendor == "sqlite" else "pg_dump") in r.output


def test_demo_logins_are_printed_only_when_they_have_the_demo_password(run) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.hashers import make_password

    from tierdesk.cli import _demo_logins_present
    from tierdesk.demo import DEMO_PASSWORD

    run(
        "user",
        "create",
        "--email",
        "admin@msp.example",
        "--name",
        "Ada",
        "--role",
        "admin",
        "--password",
        "a-real-operator-password",
    )
    assert _demo_logins_present(User, DEMO_PASSWORD, ["admin@msp.example"]) == set()
    User.objects.filter(email="admin@msp.example").update(password=make_password(DEMO_PASSWORD))
    assert _demo_logins_present(User, DEMO_PASSWORD, ["admin@msp.example"]) == {"admin@msp.example"}


def test_the_cli_refuses_staff_options_for_requesters_like_the_api(run) -> None:  # type: ignore[no-untyped-def]
    run("org", "create", "--code", "ACME", "--name", "Acme")
    r = run(
        "user",
        "create",
        "--email",
        "dora@acme.example",
        "--name",
        "Dora",
        "--role",
        "requester",
        "--org",
        "ACME",
        "--skill",
        "network",
    )
    assert r.exit_code == 1
    assert "requesters have no tier, skills" in r.output
    assert not User.objects.filter(email="dora@acme.example").exists()
