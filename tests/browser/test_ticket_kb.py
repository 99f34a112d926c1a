"""The knowledge base on the agent's ticket page in a real browser, against its own
`tierdesk serve` with the demo's articles: an L1 agent opens a ticket and sees the relevant
articles, finds another with the panel's search, inserts a link and an article's text into
the reply at the caret and sends it (both recorded as linked), resolves with "solved
with", and is offered "Create article from this ticket". Screenshot: the panel beside a
reply with an inserted link, at 1280 px (docs/screenshots/kb-ticket-panel.png)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations
from tests.processes import tierdesk
from tierdesk.demo import DEMO_PASSWORD

PUBLIC = "VPN connects but nothing loads"  # the demo's public article (slug below)
PUBLIC_SLUG = "vpn-connected-but-nothing-loads"
INTERNAL = "VPN connection problems — agent diagnostics and escalation"  # internal


@pytest.fixture(scope="module")
def ticket_key(server: Server) -> str:
    """The demo's people and articles (no tickets), and one VPN ticket of Alice's."""
    done = tierdesk(server.env, "demo", "--tickets", "0", "--workers", "1")
    assert done.returncode == 0, done.stderr
    done = tierdesk(
        server.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", "VPN connected but nothing loads",
        "--description", "The VPN says connected, but the intranet and the S: drive do not load.",
        "--category", "network", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def test_an_agent_links_articles_in_a_reply_and_resolves_with_one(
    page: Any, server: Server, ticket_key: str, axe_source: str
) -> None:
    sign_in(page, "lena.l1@msp.example")
    page.goto(f"/console/tickets/{ticket_key}")
    panel = page.locator("#tkb-panel")
    results = page.locator("#tkb-results")
    expect(panel.get_by_role("heading", name="Relevant articles")).to_be_visible()
    expect(results.get_by_role("link", name=PUBLIC)).to_be_visible()
    assert results.locator(".tkb-item").count() <= 5

    # the link goes in at the caret, between what was typed before and after it
    body = page.get_by_label("Body")
    body.fill("Hello Alice, please follow . Thanks!")
    body.evaluate("box => box.setSelectionRange(27, 27)")
    results.get_by_role("button", name=f"Insert link to {PUBLIC}").click()
    link = f"[{PUBLIC}]({server.url}/portal/kb/{PUBLIC_SLUG})"
    expect(body).to_have_value(f"Hello Alice, please follow {link}. Thanks!")
    inserted = page.get_by_role("group", name="Articles in this reply")
    expect(inserted.get_by_label(PUBLIC)).to_be_checked()
    expect(page.locator("#tkb-status")).to_have_text(f"Inserted “{PUBLIC}” into the reply.")
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "kb-ticket-panel.png"), full_page=True)
    assert axe_violations(page, axe_source) == []

    # an agents-only article, found with the search box, waits for an internal note
    search = page.get_by_label("Search the knowledge base")
    search.fill("vpn diagnostics")
    internal_link = results.get_by_role("button", name=f"Insert link to {INTERNAL}")
    expect(internal_link).to_be_disabled()
    internal_item = results.locator(".tkb-item").filter(has_text=INTERNAL)
    expect(internal_item).to_contain_text("For agents only: it can go into an internal note")
    page.get_by_label("Internal note (agents only)").check()
    expect(internal_link).to_be_enabled()
    page.get_by_label("Internal note (agents only)").uncheck()
    expect(internal_link).to_be_disabled()

    # the search box finds another article while typing; its text goes in at the end
    search.fill("forticlient")
    forti = results.get_by_role("button", name=re.compile(r"^Insert text of FortiClient"))
    expect(forti).to_be_visible()
    body.evaluate("box => box.setSelectionRange(box.value.length, box.value.length)")
    forti.click()
    expect(body).to_have_value(re.compile(r"Thanks!\n\n## Symptoms\n.+\n$", re.S))
    expect(inserted.get_by_role("checkbox")).to_have_count(2)
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status").first).to_have_text("Reply sent.")
    used = page.locator(".tkb-used")
    expect(used).to_contain_text(PUBLIC)
    expect(used).to_contain_text("FortiClient")
    expect(page.locator(".timeline")).to_contain_text(link)

    # resolve with "solved with": the linked articles are offered first
    page.locator("summary", has_text="Resolve").click()
    page.get_by_label("Resolution:", exact=True).select_option("fixed")
    page.get_by_label("Resolution note").fill("Reconnected after the DNS fix in the article.")
    page.get_by_role("group", name="Solved with").get_by_label(PUBLIC).check()
    page.get_by_role("button", name="Resolve", exact=True).click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("status").first).to_have_text(f"Resolved, solved with “{PUBLIC}”.")
    expect(used.locator("div").filter(has_text="Solved with")).to_contain_text(PUBLIC)

    # a resolved ticket can become an article
    create = page.get_by_role("link", name="Create article from this ticket")
    expect(create).to_have_attribute("href", f"/console/kb/new?ticket={ticket_key}")
    assert axe_violations(page, axe_source) == []
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    assert page.problems == []
