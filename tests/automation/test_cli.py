"""`tierdesk directory …` and `tierdesk runbook …`: an operator connects a directory (the
password from a prompt or a file, never an argument or the settings file), lists and
tests it, and checks runbook files before they are used."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests import ldapserver
from tests.automation.conftest import directory_fields
from tests.conftest import Cast
from tierdesk.automation.models import Directory
from tierdesk.cli import main


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def test_an_operator_connects_lists_and_tests_a_directory(
    slapd: ldapserver.Directory, cast: Cast, tmp_path: Path
) -> None:
    fields = directory_fields(slapd)
    del fields["password"]
    settings = tmp_path / "acme.json"
    settings.write_text(json.dumps(fields))
    made = run(
        "directory", "create", "--org", "acme", "--settings-file", str(settings),
        "--password-file", "-", "--json", stdin=ldapserver.SERVICE_PASSWORD + "\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert ldapserver.SERVICE_PASSWORD not in made.output
    created = json.loads(made.output)
    listed = run("directory", "list")
    assert "ACME" in listed.output
    assert "openldap" in listed.output
    tested = run("directory", "test", str(created["id"]))
    assert tested.exit_code == 0, tested.output
    assert "base DN dc=acme,dc=test found" in tested.output
    Directory.objects.update(port=1)
    broken = run("directory", "test", str(created["id"]))
    assert broken.exit_code == 1
    assert "unreachable:" in broken.output
    # the password never in the settings file
    settings.write_text(json.dumps(fields | {"password": "x", "base_dn": "dc=other"}))
    refused = run(
        "directory", "create", "--org", "globex", "--settings-file", str(settings),
        "--password-file", "-", stdin="x\n",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "no password here" in refused.output


def test_runbook_files_are_checked_with_their_reasons(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: unlock-again\ntitle: Unlock again\nroles: [agent]\nsteps: [unlock]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntitle: Bad\nsteps: [format_disk]\n")
    checked = run("runbook", "check", str(good), str(bad))
    assert checked.exit_code == 1
    assert f"{good}: unlock-again, usable" in checked.output
    assert f"{bad}: step 1: unknown step 'format_disk'" in checked.output
    assert run("runbook", "check").output.strip().endswith("all usable")
    listed = run("runbook", "list", "--json")
    assert {"reset-password", "unlock-account"} <= {r["name"] for r in json.loads(listed.output)}
