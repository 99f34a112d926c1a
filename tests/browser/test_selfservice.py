"""Account self-service in a real browser against `tierdesk serve`, with a real directory
(slapd) and a real SMTP server on loopback: a requester who forgot their password gets a
code by mail, enters it, and signs in to the directory with the password shown once; a
locked account is unlocked the same way. axe-core checks each page."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import ldapserver
from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, serving, sign_in
from tests.processes import fresh_install, tierdesk
from tests.smtp import Inbox, body, smtp_server


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def slapd() -> Iterator[ldapserver.Directory]:
    with ldapserver.directory() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, inbox: Inbox, slapd: ldapserver.Directory
) -> Iterator[Server]:
    """`tierdesk serve` with the demo people, mail to ``inbox``, and ACME's directory."""
    with fresh_install(tmp_path_factory.mktemp("selfservice")) as env:
        env.update(
            TIERDESK_EMAIL_HOST=inbox.host,
            TIERDESK_EMAIL_PORT=str(inbox.port),
            TIERDESK_EMAIL_USE_TLS="false",
            TIERDESK_EMAIL_FROM="desk@msp.example",
        )
        done = tierdesk(env, "demo", "--tickets", "0", "--workers", "1")
        assert done.returncode == 0, done.stderr
        made = tierdesk(env, "token", "create", "--user", "admin@msp.example", "--name", "t")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        with serving(env) as running:
            base = ldapserver.BASE
            answer = httpx.post(
                f"{running.url}/api/v1/directories",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "organization": "ACME", "kind": "openldap", "host": slapd.host,
                    "port": slapd.ldaps_port, "security": "ldaps", "ca_certificate": slapd.ca_pem,
                    "bind_dn": ldapserver.SERVICE_DN, "password": ldapserver.SERVICE_PASSWORD,
                    "base_dn": base, "allowed_ous": [f"ou=Staff,ou=People,{base}"],
                    "protected_groups": [f"cn=Domain Admins,ou=Groups,{base}"],
                    "allowed_groups": [f"cn=VPN Users,ou=Groups,{base}"],
                },
                timeout=10,
            )  # fmt: skip
            assert answer.status_code == 201, answer.text
            yield running


def code_from(inbox: Inbox, email: str, count: int) -> str:
    found = re.search(r"The code is (\d{6})", body(inbox.wait_for(email, count)[-1]))
    assert found
    return found.group(1)


def stayed_home(page: Any, server: Server) -> None:
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    problems = [p for p in page.problems if "status of 422" not in p]
    assert problems == [], problems


def test_a_forgotten_password_and_a_locked_account_are_fixed_by_the_person(
    page: Any, server: Server, inbox: Inbox, slapd: ldapserver.Directory, axe_source: str
) -> None:
    page.goto("/login")
    page.get_by_role("link", name=re.compile("Locked out of your work account")).click()
    page.wait_for_url(re.compile(r"/self-service$"))
    assert axe_violations(page, axe_source) == [], "self-service start"
    page.get_by_label("I forgot my password").check()
    page.get_by_label("Your work email").fill("not an address")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_load_state("networkidle")
    assert "Enter a valid email address." in page.locator("form").inner_text()
    page.get_by_label("Your work email").fill("alice@acme.example")
    page.screenshot(path=str(SCREENSHOTS / "selfservice-start.png"))
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url(re.compile(r"/self-service/code$"))
    assert "a six-digit code is on its way" in page.get_by_role("status").inner_text()
    assert axe_violations(page, axe_source) == [], "self-service code"
    code = code_from(inbox, "alice@acme.example", 1)
    page.get_by_label("The code from the mail").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("networkidle")
    assert "That is not the code." in page.locator("form").inner_text()
    page.get_by_label("The code from the mail").fill(code)
    page.screenshot(path=str(SCREENSHOTS / "selfservice-code.png"))
    started = time.monotonic()
    page.get_by_role("button", name="Continue").click()
    shown = page.locator("#new-password")
    shown.wait_for()
    password = shown.inner_text()
    assert slapd.bind_works(slapd.dn("alice"), password)
    print(f"code entered to the new password working: {time.monotonic() - started:.2f} s")
    assert not slapd.bind_works(slapd.dn("alice"), ldapserver.USER_PASSWORD)
    assert "resolved" in page.locator(".signin").inner_text()
    assert axe_violations(page, axe_source) == [], "self-service done"
    page.screenshot(path=str(SCREENSHOTS / "selfservice-done.png"))
    # the page is not kept: going back does not show the password again
    page.goto("/self-service/code")
    page.wait_for_url(re.compile(r"/self-service$"))

    # locked out by wrong passwords, then unlocked
    for _ in range(3):
        assert not slapd.bind_works(slapd.dn("alice"), "wrong")
    assert not slapd.bind_works(slapd.dn("alice"), password)
    page.get_by_label("My account is locked").check()
    page.get_by_label("Your work email").fill("alice@acme.example")
    page.get_by_role("button", name="Send me a code").click()
    page.wait_for_url(re.compile(r"/self-service/code$"))
    assert page.get_by_label("New password (leave empty for a generated one)").count() == 0
    page.get_by_label("The code from the mail").fill(code_from(inbox, "alice@acme.example", 2))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Done").is_visible()
    assert slapd.bind_works(slapd.dn("alice"), password)
    stayed_home(page, server)

    # both recorded as tickets resolved by automation, without the password
    listed = tierdesk(
        server.env, "ticket", "list", "--as", "admin@msp.example", "--org", "ACME",
        "--status", "resolved", "--json",
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert password not in listed.stdout
    mine = [t for t in json.loads(listed.stdout) if "(self-service)" in t["subject"]]
    assert len(mine) == 2, listed.stdout


def test_an_l1_agent_unlocks_the_requester_from_the_ticket(
    page: Any, server: Server, slapd: ldapserver.Directory, axe_source: str
) -> None:
    made = tierdesk(
        server.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", "Locked out after the holidays", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    with slapd.as_root() as root:  # the ticket's requester is alice: lock her account
        assert root.modify(
            slapd.dn("alice"), {"pwdAccountLockedTime": [("MODIFY_REPLACE", ["20261124000000Z"])]}
        )
    sign_in(page, "lena.l1@msp.example")
    page.goto(f"/console/tickets/{key}")
    panel = page.get_by_role("region", name="Account actions")
    assert panel.is_visible()
    panel.locator("summary", has_text="Unlock an account").click()
    page.screenshot(path=str(SCREENSHOTS / "console-account-actions.png"))
    assert axe_violations(page, axe_source) == [], "ticket with account actions"
    panel.get_by_role("button", name="Run: Unlock an account").click()
    page.wait_for_load_state("networkidle")
    result = page.locator("#automation-result")
    assert "Unlock an account for alice@acme.example: succeeded." in result.inner_text()
    assert not slapd.read(slapd.dn("alice"), "pwdAccountLockedTime")["pwdAccountLockedTime"]
    timeline = page.get_by_role("region", name="Timeline").inner_text()
    assert "Automation: Unlock an account for alice@acme.example: done." in timeline
    stayed_home(page, server)


def test_an_l1_request_waits_for_an_l2_approval_on_the_ticket(
    page: Any, server: Server, slapd: ldapserver.Directory, axe_source: str
) -> None:
    """Adding to a group needs an approval: L1 asks from the ticket, nothing changes; an L2
    agent approves on the same ticket and the account joins the group."""
    made = tierdesk(
        server.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", "I need the VPN from home", "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["key"]
    group = f"cn=VPN Users,ou=Groups,{ldapserver.BASE}"
    members = slapd.read(group, "member")["member"]
    assert slapd.dn("alice") not in members
    sign_in(page, "lena.l1@msp.example")
    page.goto(f"/console/tickets/{key}")
    panel = page.get_by_role("region", name="Account actions")
    action = panel.locator("details", has_text="Add to a group")
    action.locator("summary").click()
    action.get_by_label("Group").select_option(label="VPN Users")
    action.get_by_role("button", name="Run: Add to a group").click()
    page.wait_for_load_state("networkidle")
    result = page.locator("#automation-result")
    assert "awaiting approval" in result.inner_text()
    assert slapd.dn("alice") not in slapd.read(group, "member")["member"]
    runs = panel.locator(".automation-runs")
    assert "Awaiting approval" in runs.inner_text()
    assert runs.get_by_role("button", name="Approve").count() == 0  # not by L1
    page.context.clear_cookies()

    sign_in(page, "omar.l2@msp.example")
    page.goto(f"/console/tickets/{key}")
    panel = page.get_by_role("region", name="Account actions")
    assert axe_violations(page, axe_source) == [], "a run waiting for approval"
    panel.get_by_role("button", name="Approve Add to a group").click()
    page.wait_for_load_state("networkidle")
    assert "succeeded" in page.locator("#automation-result").inner_text()
    assert slapd.dn("alice") in slapd.read(group, "member")["member"]
    runs_text = page.get_by_role("region", name="Account actions").inner_text()
    assert "decided by omar.l2@msp.example" in runs_text
    timeline = page.get_by_role("region", name="Timeline").inner_text()
    assert "waits for an approval" in timeline
    assert "Add to a group for alice@acme.example: done." in timeline
    stayed_home(page, server)
