"""Linking and merging tickets in a real browser, against its own `tierdesk serve`: link
through the "Link…" dialog, a refused merge that keeps what was typed, the merge through
"Merge into…", the banner on the merged ticket, and axe on the pages with links."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations
from tests.processes import tierdesk
from tierdesk.demo import DEMO_PASSWORD


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "0", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def new_ticket(server: Server, subject: str) -> str:
    done = tierdesk(
        server.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", subject, "--category", "hardware", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def sign_in(page: Any, email: str) -> None:
    page.context.clear_cookies()
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def test_link_then_merge_through_the_dialogs(page: Any, desk: Server, axe_source: str) -> None:
    primary = new_ticket(desk, "Docking station loses the monitors")
    duplicate = new_ticket(desk, "Second screen goes black when docked")
    related = new_ticket(desk, "New docking stations for the sales team")
    sign_in(page, "lena.l1@msp.example")
    page.goto(f"/console/tickets/{duplicate}")

    # link it to the related ticket by its number
    page.get_by_role("button", name="Link…").click()
    dialog = page.get_by_role("dialog", name=f"Link {duplicate} to another ticket")
    assert dialog.is_visible()
    dialog.get_by_label("Link type").select_option(label="Related to")
    dialog.get_by_label("Ticket:").fill(related.split("-")[1])
    dialog.get_by_role("button", name="Link", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == f"Linked: related to {related}."
    box = page.locator(".linked-tickets")
    assert f"Related to {related}" in box.inner_text()
    assert box.get_by_role("button", name=f"Unlink {related}").is_visible()
    assert axe_violations(page, axe_source) == []

    # a merge into a ticket that does not exist: refused beside the field, text kept
    page.get_by_role("button", name="Merge into…").click()
    dialog = page.get_by_role("dialog", name=f"Merge {duplicate} into another ticket")
    dialog.get_by_label("Merge into ticket").fill("ACME-999999")
    dialog.get_by_role("button", name="Merge", exact=True).click()
    page.wait_for_load_state("networkidle")
    dialog = page.get_by_role("dialog", name=f"Merge {duplicate} into another ticket")
    assert dialog.is_visible()  # open again, with the reason beside the field
    assert "no such ticket in this organization" in dialog.inner_text()
    field = dialog.get_by_label("Merge into ticket")
    assert field.input_value() == "ACME-999999"
    assert field.get_attribute("aria-invalid") == "true"
    assert axe_violations(page, axe_source) == []

    field.fill(primary)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-merge.png"))
    dialog.get_by_role("button", name="Merge", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == (
        f"Merged into {primary}; this ticket is closed."
    )
    banner = page.locator(".merged-banner")
    assert banner.inner_text().startswith(f"Merged into {primary}")
    assert "Closed" in page.locator(".facts").inner_text()
    assert page.get_by_role("button", name="Merge into…").count() == 0
    box = page.locator(".linked-tickets").inner_text()
    assert f"Duplicate of {primary}" in box
    assert f"Related to {related}" in box
    assert axe_violations(page, axe_source) == []

    # the primary has the duplicate's thread and shows the link the other way round
    banner.get_by_role("link", name=primary).click()
    page.wait_for_load_state("networkidle")
    assert f"Has duplicate {duplicate}" in page.locator(".linked-tickets").inner_text()
    assert f"Merged from {duplicate}" in page.locator(".timeline").inner_text()
    assert page.locator(".merged-banner").count() == 0
    assert axe_violations(page, axe_source) == []
    stayed_home(page, desk, answered=(422,))


def test_the_linked_tickets_box_fits_a_phone(browser: Any, desk: Server) -> None:
    first = new_ticket(desk, "Headset crackles")
    second = new_ticket(desk, "Headset crackles in Teams calls")
    context = browser.new_context(base_url=desk.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, "lena.l1@msp.example")
        page.goto(f"/console/tickets/{second}")
        page.get_by_role("button", name="Link…").click()
        dialog = page.get_by_role("dialog", name=f"Link {second} to another ticket")
        dialog.get_by_label("Ticket:").fill(first)
        dialog.get_by_role("button", name="Link", exact=True).click()
        page.wait_for_load_state("networkidle")
        assert f"Related to {first}" in page.locator(".linked-tickets").inner_text()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1
    finally:
        context.close()
