"""Directories, in a real browser against `tierdesk serve` with the demo data and a real
directory (slapd on loopback): an admin adds ACME's directory with the test CA pasted in,
sees a mistake refused beside its field, tests the connection, sees the clear error after
a wrong password, and deletes the directory after confirming. A manager finds no such
page. The pages pass axe-core; a screenshot for docs/automation.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import ldapserver
from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.processes import tierdesk

BASE = ldapserver.BASE


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "0", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


@pytest.fixture(scope="module")
def slapd() -> Iterator[ldapserver.Directory]:
    with ldapserver.directory() as running:
        yield running


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    """No request left the server and the console stayed clean, except Chromium's note of
    the ``answered`` statuses the test provoked."""
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def submit(page: Any, button: str) -> None:
    page.get_by_role("button", name=button).click()
    page.wait_for_load_state("networkidle")


def test_an_admin_connects_tests_and_deletes_a_directory(
    page: Any, desk: Server, slapd: ldapserver.Directory, axe_source: str
) -> None:
    sign_in(page, "admin@msp.example")
    page.goto("/console/config/")
    page.get_by_role("navigation", name="Configuration").get_by_role(
        "link", name="Directories"
    ).click()
    page.wait_for_load_state("networkidle")
    assert "No directories yet." in page.content()
    assert axe_violations(page, axe_source) == [], "directories list"
    page.get_by_role("link", name="New directory").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Organization").select_option("ACME")
    page.get_by_label("Kind").select_option("openldap")
    page.get_by_label("Server").fill(f"ldaps://{slapd.host}")
    page.get_by_label("Port").fill(str(slapd.ldaps_port))
    page.get_by_label("Security").select_option("ldaps")
    page.get_by_label("CA certificate").fill(slapd.ca_pem)
    page.get_by_label("Service account (bind DN)").fill(ldapserver.SERVICE_DN)
    page.get_by_label("Service account password").fill(ldapserver.SERVICE_PASSWORD)
    page.get_by_label("Base DN").fill(BASE)
    page.get_by_label("Allowed OUs").fill(f"ou=Staff,ou=People,{BASE}")
    page.get_by_label("Protected groups").fill(f"cn=Domain Admins,ou=Groups,{BASE}")
    page.get_by_label("Allowed groups").fill(f"cn=VPN Users,ou=Groups,{BASE}")
    # a scheme in the host is refused beside the field; what was typed stays, the
    # password does not come back
    submit(page, "Add directory")
    error = page.locator("#id_host_error")
    assert "no scheme, port or path" in error.inner_text()
    assert "id_host_error" in (page.get_by_label("Server").get_attribute("aria-describedby") or "")
    assert page.get_by_label("Base DN").input_value() == BASE
    assert page.get_by_label("Service account password").input_value() == ""
    assert axe_violations(page, axe_source) == [], "directory form with an error"
    page.get_by_label("Server").fill(slapd.host)
    page.get_by_label("Service account password").fill(ldapserver.SERVICE_PASSWORD)
    submit(page, "Add directory")
    page.wait_for_url(re.compile(r"/console/config/directories/\d+/$"))
    assert "Leave empty to keep the stored password" in page.content()
    assert ldapserver.SERVICE_PASSWORD not in page.content()

    submit(page, "Test connection")
    result = page.locator("#test-result")
    assert "Connection works" in result.inner_text()
    assert f"base DN {BASE} found" in result.inner_text()
    assert "allowed groups: all 1 found" in result.inner_text()
    assert axe_violations(page, axe_source) == [], "directory page after a test"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "config-directory.png"), full_page=True)

    # a wrong password: saved, and the test says so plainly
    page.get_by_label("Service account password").fill("not-the-password")
    submit(page, "Save directory")
    submit(page, "Test connection")
    failed = page.locator("#test-result").inner_text()
    assert "Connection failed (credentials): the directory refused the service account" in failed
    assert axe_violations(page, axe_source) == [], "directory page after a failed test"

    # listed; then deleted after confirming
    page.goto("/console/config/directories/")
    row = page.locator("table.config tbody tr", has_text="ACME")
    assert f"{slapd.host}:{slapd.ldaps_port}" in row.inner_text()
    assert "Active" in row.inner_text()
    row.get_by_role("link", name="ACME").click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="Delete this directory").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Delete the directory of ACME?").is_visible()
    assert axe_violations(page, axe_source) == [], "delete confirmation"
    submit(page, "Delete directory")
    page.wait_for_url(re.compile(r"/console/config/directories/$"))
    assert "Directory of ACME deleted." in page.content()
    assert "No directories yet." in page.content()
    stayed_home(page, desk, answered=(400, 422))


def test_a_manager_reaches_no_directory_page(page: Any, desk: Server) -> None:
    sign_in(page, "manager@msp.example")
    page.goto("/console/config/")
    nav = page.get_by_role("navigation", name="Configuration")
    assert nav.get_by_role("link", name="Directories").count() == 0
    for url in ("/console/config/directories/", "/console/config/directories/new/"):
        assert page.goto(url).status == 404
    stayed_home(page, desk, answered=(404,))
