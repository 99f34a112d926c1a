"""Email notification settings in a real browser, against `tierdesk serve` with the demo
data: a requester finds the page from the profile, switches replies off, and finds it off
after a reload; axe-core on the page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Server, axe_violations, sign_in
from tests.processes import tierdesk


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "5", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def test_a_requester_switches_reply_emails_off(page: Any, desk: Server, axe_source: str) -> None:
    sign_in(page, "alice@acme.example")
    page.goto("/account/")
    page.get_by_role("link", name="Choose which emails you receive").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Email notifications", level=1).is_visible()
    replies = page.get_by_label("A reply on a ticket")
    assert replies.is_checked()
    assert page.get_by_label("Your ticket was received").is_checked()
    assert page.get_by_label("A ticket missed its SLA target").count() == 0  # staff only
    assert axe_violations(page, axe_source) == []
    replies.uncheck()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Your notification settings have been saved.").is_visible()
    page.reload()
    assert not page.get_by_label("A reply on a ticket").is_checked()
    assert page.get_by_label("Your ticket was received").is_checked()
    outside = [u for u in page.requested if not u.startswith(desk.url + "/")]
    assert outside == []
    assert page.problems == []
