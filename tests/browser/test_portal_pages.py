"""The requester's pages in a real browser, on a 390 px phone screen and at 1280 px: the
portal's ticket lists, the new-ticket form, a ticket with its conversation, the profile and
the password change. Each must fit the screen (nothing wider than it), pass axe-core with
no serious or critical violation, keep every request on the server, and show the status
and SLA in plain words. The not-found page is checked the same way."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations
from tests.processes import tierdesk
from tierdesk.demo import DEMO_PASSWORD

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# The words a requester may read for a ticket's status (tierdesk.web.views.portal).
STATUS_WORDS = (
    "Received — waiting for an agent",
    "Open — an agent is on it",
    "In progress",
    "Waiting for your answer",
    "Waiting for a supplier",
    "Resolved",
    "Closed",
)
LONG_SUBJECT = "The docking station at desk 4.17 drops both external monitors " * 3


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    """The demo's people, policies and some tickets, and two tickets of Alice's: one with a
    long subject (the layouts must wrap it) and one resolved, to rate."""
    done = tierdesk(server.env, "demo", "--tickets", "30", "--workers", "1")
    assert done.returncode == 0, done.stderr
    for subject in (LONG_SUBJECT.strip(), "Webcam shows a black picture"):
        done = tierdesk(
            server.env, "ticket", "create", "--as", "alice@acme.example",
            "--subject", subject, "--category", "hardware", "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    done = tierdesk(
        server.env, "ticket", "resolve", key, "--as", "admin@msp.example",
        "--code", "fixed", "--note", "Replaced the webcam's cable.",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return server


@pytest.fixture(params=[PHONE, DESKTOP], ids=["390px", "1280px"])
def screen(request: pytest.FixtureRequest, browser: Any, desk: Server) -> Iterator[Any]:
    """A page at the parameter's size, watching requests and console errors as ``page``
    does (see conftest)."""
    context = browser.new_context(base_url=desk.url, viewport=request.param)
    p = context.new_page()
    p.requested = []
    p.problems = []
    p.on("request", lambda r: p.requested.append(r.url))
    p.on("console", lambda m: p.problems.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: p.problems.append(str(e)))
    try:
        yield p
    finally:
        context.close()


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def fits(page: Any, what: str) -> None:
    """Nothing on the page reaches past the right edge of the screen, so that it never
    scrolls sideways."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, what
    wide = page.evaluate(
        """(width) => [...document.querySelectorAll('body *')]
            .filter(e => { const r = e.getBoundingClientRect();
                           return r.width > 0 && r.right > width + 0.5; })
            .slice(0, 5)
            .map(e => `${e.tagName}.${e.className}#${e.id} right=${
                Math.round(e.getBoundingClientRect().right)}`)""",
        width,
    )
    assert wide == [], (what, wide)


def checked(page: Any, axe_source: str, what: str) -> None:
    fits(page, what)
    assert axe_violations(page, axe_source) == [], what


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def test_the_portal_lists_and_a_ticket_fit_the_screen_and_read_in_plain_words(
    screen: Any, desk: Server, axe_source: str
) -> None:
    page = screen
    sign_in(page, "alice@acme.example")
    assert page.url.endswith("/portal/")
    checked(page, axe_source, "my open tickets")
    rows = page.locator("table.tickets tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        status = rows.nth(i).locator(".status-words").inner_text()
        assert status in STATUS_WORDS, status
    long_row = rows.filter(has_text=LONG_SUBJECT.strip()[:40])
    assert long_row.count() == 1
    # the demo's SLA gives a new ticket a promised first answer, in words and a time in
    # Alice's own time zone (New York)
    assert re.search(
        r"We will answer you by \w{3} \d{2} \w{3} \d{4}, \d{2}:\d{2} E[SD]T",
        long_row.inner_text(),
    ), long_row.inner_text()

    page.get_by_role("link", name="All my tickets").click()
    page.wait_for_load_state("networkidle")
    checked(page, axe_source, "all my tickets")
    if page.viewport_size["width"] == PHONE["width"]:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "portal-phone.png"))
    resolved = page.locator("table.tickets tbody tr", has_text="Webcam shows a black picture")
    assert resolved.locator(".status-words").inner_text() == "Resolved"

    long_row.locator("a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".status-words").inner_text() == "Received — waiting for an agent"
    facts = page.locator(".ticket-head .facts").inner_text()
    assert "What to expect" in facts
    assert "We will answer you by" in facts
    checked(page, axe_source, "a ticket")
    # a reply goes into the conversation; the page still fits
    page.get_by_label("Body").fill("It happens after every restart, too.")
    page.get_by_role("button", name="Send reply").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Your reply has been sent."
    assert "It happens after every restart, too." in page.locator(".timeline").inner_text()
    checked(page, axe_source, "a ticket after a reply")

    # a resolved ticket: its resolution, the rating form and the reopen button
    page.goto("/portal/?show=all")
    page.locator("table.tickets tbody tr", has_text="Webcam shows a black picture").locator(
        "a"
    ).first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".status-words").inner_text() == "Resolved"
    assert "Replaced the webcam's cable." in page.locator(".resolution").inner_text()
    assert "What to expect" not in page.locator(".ticket-head .facts").inner_text()
    assert page.get_by_role("button", name="Send rating").is_visible()
    checked(page, axe_source, "a resolved ticket")
    stayed_home(page, desk)


def test_the_new_ticket_form_fits_and_keeps_what_was_typed_when_refused(
    screen: Any, desk: Server, axe_source: str
) -> None:
    page = screen
    sign_in(page, "alice@acme.example")
    page.get_by_role("link", name="New ticket").click()
    page.wait_for_load_state("networkidle")
    checked(page, axe_source, "new ticket")
    page.get_by_label("What is it about?").select_option(label="Hardware")
    page.get_by_label("Which device?").wait_for()  # the category's questions, live
    checked(page, axe_source, "new ticket with the category's questions")
    # refused: a file of a type not accepted; the message by the field, the text kept
    page.get_by_label("Subject").fill("Keyboard types double letters")
    page.get_by_label("Describe the problem").fill("Since this morning, every key.")
    page.get_by_label("Screenshots or files").set_input_files(
        [{"name": "driver.exe", "mimeType": "application/octet-stream", "buffer": b"MZ"}]
    )
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_load_state("networkidle")
    error = page.locator("#id_attachments_error")
    assert error.inner_text() == "driver.exe: files of type .exe are not accepted."
    files = page.get_by_label("Screenshots or files")
    assert files.get_attribute("aria-invalid") == "true"
    assert "id_attachments_error" in (files.get_attribute("aria-describedby") or "")
    assert page.get_by_label("Subject").input_value() == "Keyboard types double letters"
    assert page.get_by_label("Describe the problem").input_value() == (
        "Since this morning, every key."
    )
    checked(page, axe_source, "new ticket, refused")
    stayed_home(page, desk, answered=(422,))


def test_the_profile_and_password_pages_fit_and_pass_axe(
    screen: Any, desk: Server, axe_source: str
) -> None:
    page = screen
    sign_in(page, "alice@acme.example")
    page.get_by_role("link", name="My profile").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/account/")
    checked(page, axe_source, "profile")
    page.goto("/account/password")
    checked(page, axe_source, "password change")
    # a wrong current password: said beside it, the page still fits
    page.get_by_label("Old password").fill("not my password")
    page.get_by_label("New password:", exact=True).fill("orchid lantern seventy 9")
    page.get_by_label("New password confirmation").fill("orchid lantern seventy 9")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state("networkidle")
    old = page.get_by_label("Old password")
    assert old.get_attribute("aria-invalid") == "true"
    assert page.locator("#id_old_password_error").is_visible()
    checked(page, axe_source, "password change, refused")
    stayed_home(page, desk, answered=(422,))


def test_a_ticket_that_is_not_theirs_reads_not_found_in_the_sites_layout(
    screen: Any, desk: Server, axe_source: str
) -> None:
    done = tierdesk(
        desk.env, "ticket", "list", "--as", "admin@msp.example", "--org", "GLOBEX", "--json"
    )
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)[0]["key"]
    page = screen
    sign_in(page, "alice@acme.example")
    for path in (f"/portal/tickets/{theirs}", "/portal/tickets/ACME-99999", "/no-such-page"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Not found").is_visible()
        assert theirs not in page.content()
        # the site's header, with the person's own links, and its styles (the nonce holds:
        # a CSP violation would be a console error)
        assert page.get_by_role("link", name="Profile").is_visible()
        checked(page, axe_source, f"not found: {path}")
    stayed_home(page, desk, answered=(404,))
