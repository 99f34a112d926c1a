"""Journey 2 in a real browser: a manager reorders routing rules (by keyboard, with the
"Move up" / "Move down" buttons, and by dragging a row), dry-runs a sample and sees the
decision follow the new order, and a ticket created afterwards is routed the same way.
The tiers, categories and routing pages pass axe-core."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.processes import django_eval, tierdesk

MANAGER = "manager@msp.example"  # serves ACME, GLOBEX and INITECH in the demo

RULES = """
from tierdesk.core.models import Organization, User
from tierdesk.tiers.models import Category
from tierdesk.tiers.services import RuleConditions, routing_rule_create, tier_by_code
acme = Organization.objects.get(code="ACME")
vpn = routing_rule_create(
    actor=None, name="VPN to L2", organization=acme,
    conditions=RuleConditions(keywords=["vpn"]), tier=tier_by_code("L2"),
)
alice = routing_rule_create(
    actor=None, name="Alice to L1 access", organization=acme,
    conditions=RuleConditions(requesters=[User.objects.get(email="alice@acme.example")]),
    tier=tier_by_code("L1"),
    category=Category.objects.get(slug="access", organization__isnull=True),
)
print(vpn.pk, alice.pk)
"""


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "20", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def stayed_home(page: Any, server: Server) -> None:
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    assert page.problems == [], page.problems


def acme_order(page: Any) -> list[str]:
    return page.locator("#scope-ACME tbody tr th[scope=row]").all_inner_texts()


def dry_run(page: Any) -> str:
    """Try the sample ticket on the routing page; the decision's tier."""
    page.locator("#id_sample-organization").select_option("ACME")
    page.locator("#id_sample-category").select_option(label="Network")
    page.locator("#id_sample-subject").fill("VPN drops every hour")
    page.locator("#id_sample-requester").fill("alice@acme.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Show the decision").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#id_sample-subject").input_value() == "VPN drops every hour"
    return str(page.locator("#decision-tier").inner_text())


def focused(page: Any) -> dict[str, str]:
    return dict(
        page.evaluate(
            "() => ({row: document.activeElement?.closest('tr')?.id || '',"
            " value: document.activeElement?.value || ''})"
        )
    )


def test_a_manager_reorders_rules_dry_runs_and_new_tickets_follow(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, MANAGER)

    # A first rule through the form: network tickets of ACME go to L3.
    page.goto("/console/config/routing/new/?scope=ACME")
    assert page.locator("#id_organization").input_value() == "ACME"
    page.locator("#id_name").fill("Network to L3")
    page.locator("#id_categories").select_option(label="Network")
    page.locator("#id_tier").select_option("L3")
    assert axe_violations(page, axe_source) == []
    with page.expect_navigation():
        page.get_by_role("button", name="Add rule").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Rule “Network to L3” added").is_visible()
    done = django_eval(desk.env, RULES)
    vpn, alice = done.split()
    page.goto("/console/config/routing/")
    assert acme_order(page) == ["Network to L3", "VPN to L2", "Alice to L1 access"]
    # The MSP-wide list is the admins': no moving there for a manager.
    assert page.locator("#scope-msp button[name=move]").count() == 0
    assert dry_run(page).startswith("L3")
    assert "Network to L3" in page.locator("#decision .summary").inner_text()

    # Keyboard: "Move up" on "VPN to L2", with Enter. It reaches the top, so its "Move up"
    # is disabled and the focus stays on the row's "Move down".
    page.locator(f"#rule-{vpn} button[value='{vpn}:up']").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state("networkidle")
    assert acme_order(page) == ["VPN to L2", "Network to L3", "Alice to L1 access"]
    assert focused(page) == {"row": f"rule-{vpn}", "value": f"{vpn}:down"}
    assert dry_run(page).startswith("L2")
    assert "VPN to L2" in page.locator("#decision .summary").inner_text()

    # Drag: "Alice to L1 access" onto the first row; the scope's list comes back saved.
    page.goto("/console/config/routing/")
    page.locator(f"#rule-{alice} th").drag_to(
        page.locator(f"#rule-{vpn} th"), target_position={"x": 10, "y": 2}
    )
    page.wait_for_function(
        "() => document.querySelector('#scope-ACME p.message')?.textContent.includes('saved')"
    )
    assert acme_order(page) == ["Alice to L1 access", "VPN to L2", "Network to L3"]
    assert focused(page)["row"] == f"rule-{alice}"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "config-routing.png"), full_page=True)
    page.reload()
    assert acme_order(page) == ["Alice to L1 access", "VPN to L2", "Network to L3"]  # stored

    assert dry_run(page).startswith("L1")
    decision = page.locator("#decision")
    assert "Alice to L1 access" in decision.locator(".summary").inner_text()
    assert page.locator("#decision-category").inner_text() == "Access & accounts"
    decision.scroll_into_view_if_needed()
    assert axe_violations(page, axe_source) == []
    page.locator("#dry-run").screenshot(path=str(SCREENSHOTS / "config-dry-run.png"))

    # A real ticket, as Alice: routed by the rule now on top.
    done_ticket = tierdesk(
        desk.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", "VPN drops every hour", "--category", "network", "--json",
    )  # fmt: skip
    assert done_ticket.returncode == 0, done_ticket.stderr
    key = json.loads(done_ticket.stdout)["key"]
    page.goto(f"/console/tickets/{key}")
    facts = page.locator(".ticket-head .facts")
    assert facts.locator("div:has(dt:text-is('Tier')) dd").inner_text().startswith("L1")
    assert facts.locator("div:has(dt:text-is('Category')) dd").inner_text() == "Access & accounts"
    stayed_home(page, desk)


def test_the_catalog_pages_pass_axe_and_fit_a_phone(
    page: Any, browser: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, MANAGER)
    for url in (
        "/console/config/tiers/",
        "/console/config/tiers/L2/",
        "/console/config/categories/",
        "/console/config/routing/",
    ):
        page.goto(url)
        assert page.locator("h1").count() == 1
        assert axe_violations(page, axe_source) == [], url
    sign_in(page, "admin@msp.example")
    for url in ("/console/config/categories/new/", "/console/config/routing/new/"):
        page.goto(url)
        assert axe_violations(page, axe_source) == [], url
    stayed_home(page, desk)

    phone = browser.new_context(base_url=desk.url, viewport={"width": 390, "height": 844})
    small = phone.new_page()
    try:
        sign_in(small, MANAGER)
        for url in ("/console/config/routing/", "/console/config/categories/"):
            small.goto(url)
            width = small.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 390, (url, width)
    finally:
        phone.close()
