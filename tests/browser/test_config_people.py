"""Configuration of organizations and people in a real browser, against `tierdesk serve`
with the demo data: an admin adds a requester and changes an agent's skills and shifts;
markup in a person's and an organization's name shows as text on the configuration pages
and on the console's ticket page; axe-core on the pages; the phone layout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.processes import tierdesk
from tierdesk.demo import DEMO_PASSWORD

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "10", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    """No request left the server and the console stayed clean, except Chromium's note of
    the ``answered`` statuses the test provoked (a refused form answers 400)."""
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def open_person(page: Any, text: str, name: str) -> None:
    page.goto("/console/config/people/")
    page.get_by_label("Name or email").fill(text)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_load_state("networkidle")
    page.locator("table.people").get_by_role("link", name=name, exact=True).click()
    page.wait_for_load_state("networkidle")


def test_an_admin_adds_a_requester_and_changes_an_agents_skills_and_shifts(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, "admin@msp.example")
    page.goto("/console/config/people/")
    assert page.get_by_role("heading", name="People", level=1).is_visible()
    assert page.locator("table.people tbody tr").count() > 10
    assert axe_violations(page, axe_source) == []
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "config-people.png"))

    # a new requester
    page.get_by_role("link", name="Add a requester").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Name").fill("Quentin Xylophone")
    page.get_by_label("Email").fill("qxylo@globex.example")
    page.locator("#id_organization").select_option("GLOBEX")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_role("button", name="Add requester").click()
    page.wait_for_load_state("networkidle")
    assert (
        page.get_by_role("status").inner_text() == "Quentin Xylophone <qxylo@globex.example> added."
    )
    assert page.get_by_role("heading", name="Quentin Xylophone", level=1).is_visible()
    page.goto("/console/config/people/?text=qxylo")
    row = page.locator("table.people tbody tr")
    assert row.count() == 1
    assert "qxylo@globex.example" in row.inner_text()
    assert "GLOBEX" in row.inner_text()

    # Lena's skills and shifts; a bad shift first, kept with its message
    open_person(page, "lena.l1", "Lena Fischer")
    assert axe_violations(page, axe_source) == []
    page.get_by_label("Backup and recovery").check()
    page.get_by_label("Tuesday").fill("9-17")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    error = page.locator("#id_shifts_tue_error")
    assert "is not a shift" in error.inner_text()
    assert page.get_by_label("Tuesday").input_value() == "9-17"
    assert page.get_by_label("Backup and recovery").is_checked()
    page.get_by_label("Tuesday").fill("07:00-11:00, 12:00-15:00")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Lena Fischer saved."
    page.reload()
    assert page.get_by_label("Backup and recovery").is_checked()
    assert page.get_by_label("Tuesday").input_value() == "07:00-11:00, 12:00-15:00"
    stayed_home(page, desk, answered=(400,))


def test_markup_in_a_person_and_an_organization_name_shows_as_text(
    page: Any, desk: Server, axe_source: str
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, "admin@msp.example")
    page.goto("/console/config/organizations/new/")
    page.get_by_label("Code").fill("EVIL")
    page.get_by_label("Name").fill(HOSTILE)
    page.get_by_label("Time zone").fill("UTC")
    page.get_by_label("Email domains").fill("evil.example")
    page.get_by_role("button", name="Add organization").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Organizations", level=1).is_visible()
    assert page.locator("table.config-table").get_by_text(HOSTILE, exact=True).is_visible()
    assert axe_violations(page, axe_source) == []

    page.goto("/console/config/people/new/requester/")
    page.get_by_label("Name").fill(HOSTILE)
    page.get_by_label("Email").fill("mallory@evil.example")
    page.locator("#id_organization").select_option("EVIL")
    page.get_by_role("button", name="Add requester").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", level=1).inner_text() == HOSTILE
    page.goto("/console/config/people/?organization=EVIL")
    assert page.locator("table.people").get_by_text(HOSTILE, exact=True).is_visible()

    done = tierdesk(
        desk.env, "ticket", "create", "--as", "admin@msp.example", "--org", "EVIL",
        "--requester", "mallory@evil.example", "--subject", "Strange name", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    page.goto(f"/console/tickets/{key}")
    facts = page.locator(".facts")
    assert f"EVIL — {HOSTILE}" in facts.inner_text()
    assert f"{HOSTILE} <mallory@evil.example>" in facts.inner_text()
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.evaluate("document.querySelectorAll('main img, main script').length") == 0
    stayed_home(page, desk)


@pytest.mark.parametrize("path", ["/console/config/people/", "/console/config/organizations/"])
def test_the_lists_fit_a_phone(browser: Any, desk: Server, path: str) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, "admin@msp.example")
        for url in (path, "/console/config/people/new/staff/"):
            page.goto(url)
            width = page.evaluate("document.documentElement.scrollWidth")
            wide = page.evaluate(
                "[...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right > 391"
                " && !e.closest('.table-wrap'))"
                ".slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"
            )
            assert width <= 390 + 1, (url, width, wide)
            assert wide == [], (url, wide)
    finally:
        context.close()


def test_a_manager_finds_another_clients_person_missing(page: Any, desk: Server) -> None:
    done = tierdesk(
        desk.env, "user", "create", "--email", "mona@msp.example", "--name", "Mona Manager",
        "--role", "manager", "--serves", "ACME", "--password", DEMO_PASSWORD,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = tierdesk(
        desk.env, "user", "create", "--email", "zed@initech.example", "--name", "Zed Zimmer",
        "--role", "requester", "--org", "INITECH", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    person = json.loads(done.stdout)["id"]
    sign_in(page, "mona@msp.example")
    response = page.goto(f"/console/config/people/{person}/")
    assert response is not None
    assert response.status == 404
    page.goto("/console/config/people/?text=zimmer")
    assert page.get_by_text("Nobody matches.").is_visible()
    response = page.goto("/console/config/people/new/staff/")
    assert response is not None
    assert response.status == 403
    sign_in(page, "admin@msp.example")
    response = page.goto(f"/console/config/people/{person}/")
    assert response is not None
    assert response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == "Zed Zimmer"
    stayed_home(page, desk, answered=(404, 403))
