"""Email in, in a real browser against `tierdesk serve` with the demo data and a real IMAP
server (Dovecot on loopback): an admin adds ACME's mailbox with the test CA pasted in,
tests the connection, sees the clear error after a wrong password, finds a stranger's
message in the quarantine, lets anyone in and retries it into a ticket. A manager finds
neither page. The pages pass axe-core; screenshots for docs/channels.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.channels.mails import mail
from tests.imap import ImapServer, imap_server
from tests.processes import django_eval, tierdesk

PASSWORD = "s3cret-pw"
USER = "support-desk"  # the mailbox's IMAP user name
POLL = "from tierdesk.channels import mailboxes\nprint(mailboxes.poll_all())"


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "10", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


@pytest.fixture(scope="module")
def dovecot() -> Iterator[ImapServer]:
    with imap_server(PASSWORD) as found:
        yield found


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


def test_an_admin_sets_up_a_mailbox_and_works_the_quarantine(
    page: Any, desk: Server, dovecot: ImapServer, axe_source: str
) -> None:
    sign_in(page, "admin@msp.example")
    page.goto("/console/config/")
    page.get_by_role("navigation", name="Configuration").get_by_role(
        "link", name="Mailboxes"
    ).click()
    page.wait_for_load_state("networkidle")
    assert "No mailboxes yet." in page.content()
    page.get_by_role("link", name="New mailbox").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Organization").select_option("ACME")
    page.locator("#id_name").fill("ACME support")
    page.get_by_label("Address").fill("support@acme.example")
    page.get_by_label("IMAP server").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(dovecot.imaps_port))
    page.get_by_label("Security").select_option("tls")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("CA certificate").fill(dovecot.ca_pem)
    # a plus-address is refused beside the field, and what was typed stays
    page.get_by_label("Address").fill("support+x@acme.example")
    submit(page, "Add mailbox")
    assert "without +" in page.locator("#id_address_error").inner_text()
    assert page.get_by_label("IMAP server").input_value() == "127.0.0.1"
    assert page.get_by_label("Password").input_value() == ""  # never sent back
    page.get_by_label("Address").fill("support@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    submit(page, "Add mailbox")
    page.wait_for_url(re.compile(r"/console/config/mailboxes/\d+/$"))
    assert "Leave empty to keep the stored password" in page.content()
    assert PASSWORD not in page.content()

    submit(page, "Test connection")
    result = page.locator("#test-result")
    assert "Connection works: connected; 0 message(s) waiting in INBOX" in result.inner_text()
    assert axe_violations(page, axe_source) == [], "mailbox page"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "config-mailbox.png"), full_page=True)

    # a wrong password: saved, and the test says so plainly
    page.get_by_label("Password").fill("not-the-password")
    submit(page, "Save mailbox")
    submit(page, "Test connection")
    failed = page.locator("#test-result").inner_text()
    assert "Connection failed: the server refused the user name or password" in failed
    page.get_by_label("Password").fill(PASSWORD)
    submit(page, "Save mailbox")

    # a stranger writes; the domains rule holds it back
    dovecot.deliver(USER, mail(sender="Sam <sam@elsewhere.example>", subject="Printer jam"))
    assert "'stored': 1" in django_eval(desk.env, POLL)
    page.goto("/console/config/mailboxes/")
    assert "support@acme.example" in page.content()
    page.get_by_role("navigation", name="Configuration").get_by_role(
        "link", name="Mail quarantine"
    ).click()
    page.wait_for_load_state("networkidle")
    row = page.locator("table.config tbody tr", has_text="Printer jam")
    assert "sam@elsewhere.example" in row.inner_text()
    assert "takes no new senders" in row.inner_text()
    assert row.get_by_role("link", name="Download").get_attribute("href")
    assert axe_violations(page, axe_source) == [], "quarantine page"
    page.screenshot(path=str(SCREENSHOTS / "config-quarantine.png"), full_page=True)

    # the admin lets anyone in and retries: a ticket
    page.goto("/console/config/mailboxes/")
    page.get_by_role("link", name="support@acme.example").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Mail from unknown senders").select_option("anyone")
    submit(page, "Save mailbox")
    page.goto("/console/config/quarantine/")
    page.locator("table.config tbody tr", has_text="Printer jam").get_by_role(
        "button", name="Retry"
    ).click()
    page.wait_for_load_state("networkidle")
    outcome = page.locator("#retry-result")
    assert "processed" in outcome.inner_text()
    assert "The quarantine is empty." in page.content()
    outcome.get_by_role("link", name=re.compile(r"^ACME-\d+$")).click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name=re.compile("Printer jam")).first.is_visible()
    stayed_home(page, desk, answered=(400, 422))


def test_a_manager_reaches_neither_page(page: Any, desk: Server) -> None:
    sign_in(page, "manager@msp.example")
    page.goto("/console/config/")
    nav = page.get_by_role("navigation", name="Configuration")
    assert nav.get_by_role("link", name="Mailboxes").count() == 0
    assert nav.get_by_role("link", name="Mail quarantine").count() == 0
    for url in ("/console/config/mailboxes/", "/console/config/quarantine/"):
        assert page.goto(url).status == 404
    stayed_home(page, desk, answered=(404,))
