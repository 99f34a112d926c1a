"""SLA policies, business calendars and escalation rules in a real browser, against
`tierdesk serve` with the demo data: the manager (who serves every demo client) changes a
calendar's hours and adds a holiday, changes an SLA policy's target, adds an escalation
rule; a refused form keeps what was typed; axe-core on the pages; the phone layout."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.processes import tierdesk

LISTS = ("/console/config/sla/", "/console/config/calendars/", "/console/config/escalation/")


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "10", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    """No request left the server and the console stayed clean, except Chromium's note of
    the ``answered`` statuses the test provoked (a refused form answers 400 or 422)."""
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def calendar_json(server: Server, name: str) -> dict[str, Any]:
    done = tierdesk(server.env, "calendar", "show", name, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_manager_changes_a_calendars_hours_and_adds_a_holiday(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, "manager@msp.example")
    page.goto("/console/config/calendars/")
    page.get_by_role("link", name="ACME business hours (New York)").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_label("Friday").input_value() == "08:00-18:00"
    assert axe_violations(page, axe_source) == [], "calendar page"

    # a typo is refused beside the weekday, and what was typed stays
    page.get_by_label("Friday").fill("08:00-12:00; 13:00-16:00")
    page.get_by_role("button", name="Save calendar").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_label("Friday").input_value() == "08:00-12:00; 13:00-16:00"
    assert "not a time range" in page.locator("#id_hours_fri_error").inner_text()

    page.get_by_label("Friday").fill("08:00-12:00, 13:00-16:00")
    page.get_by_label("Saturday").fill("10:00-14:00")
    first_blank = page.locator("#id_holidays-INITIAL_FORMS").input_value()
    page.locator(f"#id_holidays-{first_blank}-date").fill("2027-08-13")
    page.locator(f"#id_holidays-{first_blank}-name").fill("Company picnic")
    page.get_by_role("button", name="Save calendar").click()
    page.wait_for_load_state("networkidle")
    assert "saved" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Friday").input_value() == "08:00-12:00, 13:00-16:00"

    stored = calendar_json(desk, "acme-new-york")
    assert stored["hours"]["fri"] == ["08:00-12:00", "13:00-16:00"]
    assert stored["hours"]["sat"] == ["10:00-14:00"]
    assert {"date": "2027-08-13", "name": "Company picnic"} in stored["holidays"]
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "config-calendar.png"))
    stayed_home(page, desk, answered=(400,))


def test_a_manager_changes_an_sla_target(page: Any, desk: Server, axe_source: str) -> None:
    sign_in(page, "manager@msp.example")
    page.goto("/console/config/sla/")
    assert page.get_by_role("link", name="MSP standard").is_visible()
    page.get_by_role("link", name="ACME standard").click()
    page.wait_for_load_state("networkidle")
    cell = page.get_by_label("P3 resolution (minutes)")
    assert cell.input_value() == "1440"
    # the service refuses a first response due after the resolution, beside the cell
    page.get_by_label("P3 first response (minutes)").fill("2000")
    page.get_by_role("button", name="Save policy").click()
    page.wait_for_load_state("networkidle")
    assert "cannot be due after" in page.locator("#id_p3_first_response_minutes_error").inner_text()
    assert page.get_by_label("P3 first response (minutes)").input_value() == "2000"
    assert axe_violations(page, axe_source) == [], "policy page with an error"

    page.get_by_label("P3 first response (minutes)").fill("240")
    page.get_by_label("P3 resolution (minutes)").fill("1500")
    page.get_by_role("button", name="Save policy").click()
    page.wait_for_url(re.compile(r"/console/config/sla/$"))
    assert "saved" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="ACME standard").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_label("P3 resolution (minutes)").input_value() == "1500"
    page.screenshot(path=str(SCREENSHOTS / "config-sla.png"), full_page=True)
    stayed_home(page, desk, answered=(422,))


def test_a_manager_adds_an_escalation_rule(page: Any, desk: Server) -> None:
    sign_in(page, "manager@msp.example")
    page.goto("/console/config/escalation/")
    page.get_by_role("link", name="New escalation rule").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Name").fill("ACME P3 waiting in L1")
    page.get_by_label("Organization").select_option("ACME")
    page.get_by_label("Trigger").select_option("time_in_tier")
    page.get_by_label("Minutes in the tier").fill("0")  # the service wants 1 to 525,600
    page.get_by_label("Priority").select_option("P3")
    page.get_by_label("Only tickets in tier").select_option("L1")
    page.get_by_role("button", name="Add rule").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_label("Minutes in the tier").input_value() == "0"
    assert "1 to 525600" in page.locator("#id_minutes_error").inner_text()
    assert page.get_by_label("Name").input_value() == "ACME P3 waiting in L1"
    page.get_by_label("Minutes in the tier").fill("90")
    page.get_by_role("button", name="Add rule").click()
    page.wait_for_url(re.compile(r"/console/config/escalation/$"))
    row = page.locator("tr", has_text="ACME P3 waiting in L1")
    assert "90 minutes in the tier" in row.inner_text()
    done = tierdesk(desk.env, "escalation", "rules", "--as", "admin@msp.example", "--json")
    assert done.returncode == 0, done.stderr
    made = [r for r in json.loads(done.stdout) if r["name"] == "ACME P3 waiting in L1"]
    assert len(made) == 1
    assert (made[0]["organization"], made[0]["minutes"], made[0]["from_tier"]) == (
        "ACME", 90, "L1",
    )  # fmt: skip
    stayed_home(page, desk, answered=(422,))


def test_the_lists_pass_axe_and_fit_a_phone(browser: Any, desk: Server, axe_source: str) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, "manager@msp.example")
        for path in (*LISTS, "/console/config/escalation/new/", "/console/config/sla/new/"):
            page.goto(path)
            assert page.locator("h1").count() == 1
            assert axe_violations(page, axe_source) == [], path
        page.set_viewport_size({"width": 390, "height": 844})
        for path in (*LISTS, "/console/config/calendars/acme-new-york/", "/console/config/sla/new/",
                     "/console/config/escalation/new/"):  # fmt: skip
            page.goto(path)
            width = page.evaluate("document.documentElement.scrollWidth")
            wide = page.evaluate(
                "[...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right > 391)"
                ".slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"
            )
            assert width <= 390 + 1, (path, width, wide)
    finally:
        context.close()
