"""`tierdesk calendar …`, in-process against the test database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import Cast
from tierdesk.cli import main
from tierdesk.sla.models import BusinessCalendar


@pytest.fixture
def run(db: None):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def create_berlin(run: Any, *extra: str) -> Any:
    return run(
        "calendar", "create", "--name", "berlin", "--title", "Berlin office",
        "--time-zone", "Europe/Berlin", "--hours", "mon-fri 08:00-17:00",
        "--country", "DE", "--years", "2026,2027", *extra,
    )  # fmt: skip


def test_create_list_show_and_ask_when_it_is_due(run: Any) -> None:
    r = create_berlin(run, "--holiday", "2026-12-24=Heiligabend", "--json")
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    assert created["hours"]["fri"] == ["08:00-17:00"]
    assert r.exit_code == 0
    assert run("calendar", "create", "--name", "always", "--24x7").exit_code == 0

    r = run("calendar", "list")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["always", "24x7"]
    assert lines[1].split()[:3] == ["berlin", "Europe/Berlin", "MSP-wide"]

    r = run("calendar", "show", "berlin", "--json")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["time_zone"] == "Europe/Berlin"
    assert shown["hours"] == {
        "mon": ["08:00-17:00"],
        "tue": ["08:00-17:00"],
        "wed": ["08:00-17:00"],
        "thu": ["08:00-17:00"],
        "fri": ["08:00-17:00"],
        "sat": [],
        "sun": [],
    }
    assert {"date": "2026-12-24", "name": "Heiligabend"} in shown["holidays"]
    assert {"date": "2027-10-03", "name": "Tag der Deutschen Einheit"} in shown["holidays"]
    text = run("calendar", "show", "berlin").stdout
    assert "sat  closed" in text

    # The docs example: Friday 16:30 Berlin + 4 business hours -> Monday 11:30 Berlin.
    r = run("calendar", "due", "berlin", "--from", "2026-11-20T16:30:00+01:00", "--minutes", "240")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "2026-11-23T10:30:00Z"
    r = run("calendar", "between", "berlin", "2026-11-20T15:30:00Z", "2026-11-23T10:30:00Z")
    assert r.stdout.strip() == "240"
    r = run(
        "calendar", "between", "berlin", "2026-11-20T15:30:00Z", "2026-11-23T10:31:59Z", "--json"
    )
    assert json.loads(r.stdout) == {
        "calendar": "berlin",
        "start": "2026-11-20T15:30:00Z",
        "end": "2026-11-23T10:31:59Z",
        "minutes": 241,  # rounded down
        "seconds": 241 * 60 + 59,
    }


def test_instants_without_an_offset_are_refused(run: Any) -> None:
    create_berlin(run)
    r = run("calendar", "due", "berlin", "--from", "2026-11-20T16:30", "--minutes", "240")
    assert r.exit_code == 1
    assert "no UTC offset" in r.stderr
    r = run("calendar", "between", "berlin", "2026-11-20T15:30:00Z", "tomorrow")
    assert r.exit_code == 1
    assert "to:" in r.stderr


def test_bad_definitions_exit_non_zero_with_one_clear_line(run: Any) -> None:
    r = create_berlin(run, "--hours", "mon 11:00-13:00")
    assert r.exit_code == 1
    assert r.stderr.strip() == "error: hours: Monday: 08:00-17:00 overlaps 11:00-13:00"
    r = run("calendar", "create", "--name", "x", "--time-zone", "Europe/Berlin")
    assert r.exit_code == 1
    assert "opening hours" in r.stderr
    r = run(
        "calendar", "create", "--name", "x", "--time-zone", "Mars/Base", "--hours", "mon 8:00-9:00"
    )
    assert r.exit_code == 1
    assert "time_zone" in r.stderr
    r = create_berlin(run, "--country", "XX")
    assert r.exit_code == 1
    assert "no holidays known for 'XX'" in r.stderr
    r = run(
        "calendar", "create", "--name", "x", "--time-zone", "UTC", "--hours", "fri-mon 8:00-9:00"
    )
    assert r.exit_code == 2  # a usage error, from click
    assert "runs forward" in r.stderr
    assert not BusinessCalendar.objects.exists()
    r = run("calendar", "show", "nope")
    assert r.exit_code == 1
    assert "No calendar 'nope'" in r.stderr


def test_acting_as_someone_shows_what_they_see(run: Any, cast: Cast) -> None:
    create_berlin(run, "--org", "GLOBEX")
    assert run("calendar", "list", "--as", cast.lena.email).stdout == ""
    r = run("calendar", "show", "berlin", "--as", cast.lena.email)
    assert r.exit_code == 1
    assert "No calendar" in r.stderr
    r = run("calendar", "due", "berlin", "--from", "2026-11-20T16:00:00Z", "--minutes", "1",
            "--as", cast.gus.email)  # fmt: skip
    assert r.stdout.strip() == "2026-11-23T07:01:00Z"
    r = run("calendar", "create", "--name", "mine", "--24x7", "--as", cast.lena.email)
    assert r.exit_code == 1
    assert "Only admins" in r.stderr
