"""Skills configuration in a real browser, against `tierdesk serve` with the demo data: an
admin adds a skill (a taken slug first, refused beside the field), gives it to an agent on
the people page and sees the list count them; axe-core on the list, wide and on a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Server, axe_violations, sign_in
from tests.processes import tierdesk

ADMIN = "admin@msp.example"
SKILLS = "/console/config/skills/"


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "5", "--workers", "1")
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


def cells(page: Any, slug: str) -> list[str]:
    found = page.locator(f"#skill-{slug} th, #skill-{slug} td")
    return [c.strip() for c in found.all_inner_texts()]


def test_an_admin_adds_a_skill_and_gives_it_to_an_agent(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, ADMIN)
    page.goto("/console/config/")
    page.get_by_role("link", name="Skills", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Skills", level=1).is_visible()
    assert cells(page, "network")[:2] == ["network", "Networking"]
    assert axe_violations(page, axe_source) == []

    # a taken slug: refused beside the field, what was typed kept
    page.get_by_role("link", name="Add a skill").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Slug").fill("network")
    page.get_by_label("Name").fill("Printers and scanners")
    page.get_by_role("button", name="Add skill").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#id_slug_error").inner_text() == "a skill with this slug exists"
    assert page.get_by_label("Name").input_value() == "Printers and scanners"
    assert axe_violations(page, axe_source) == []

    page.get_by_label("Slug").fill("printing")
    page.get_by_role("button", name="Add skill").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Skill “Printers and scanners” added."
    assert cells(page, "printing")[:4] == ["printing", "Printers and scanners", "0", "0"]

    # the new skill is offered on an agent's form at once
    page.goto("/console/config/people/?text=lena.l1")
    page.locator("table.people").get_by_role("link", name="Lena Fischer", exact=True).click()
    page.wait_for_load_state("networkidle")
    box = page.get_by_role("checkbox", name="Printers and scanners")
    assert box.is_visible()
    assert not box.is_checked()
    box.check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Lena Fischer saved."
    page.reload()
    assert page.get_by_role("checkbox", name="Printers and scanners").is_checked()

    page.goto(SKILLS)
    assert cells(page, "printing")[2] == "1"
    stayed_home(page, desk, answered=(400,))


def test_the_skills_list_passes_axe_and_fits_a_phone(
    browser: Any, desk: Server, axe_source: str
) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, ADMIN)
        page.goto(SKILLS)
        assert page.get_by_role("heading", name="Skills", level=1).is_visible()
        assert axe_violations(page, axe_source) == []
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1, width
        edit = page.get_by_role("link", name=re.compile(r"^Edit network$"))
        assert edit.is_visible()
    finally:
        context.close()
