"""The agent console in a real browser, against `tierdesk serve` with the demo data: sign
in, the tier queue, a ticket page, another organization's ticket, and markup in a subject.
Every page is checked for requests leaving the server and for console errors (a
Content-Security-Policy violation is one)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.processes import tierdesk
from tierdesk.demo import DEMO_PASSWORD

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


# A working morning in the L1 queue (the demo's own tickets are mostly done by now):
# organization, requester, subject, category, priority, assignee. No P1: routing sends
# those straight to L2.
MORNING = [
    ("ACME", "it-lead@acme.example", "Site VPN tunnel down at the Hamburg branch", "network",
     "P2", None),
    ("GLOBEX", "bernd@globex.example", "Wi-Fi drops in meeting room B", "network", "P2",
     "jonas.l1@msp.example"),
    ("ACME", "it-lead@acme.example", "New starter needs an account on Monday", "access", "P2",
     None),
    ("ACME", "alice@acme.example", "Outlook keeps asking for password", "email", "P3",
     "lena.l1@msp.example"),
    ("GLOBEX", "bernd@globex.example", "Excel crashes when opening the budget macro file",
     "software", "P3", None),
    ("ACME", "alice@acme.example", "Docking station gives no display", "hardware", "P4", None),
    ("GLOBEX", "bernd@globex.example", "Teams has no audio in calls", "software", "P4",
     "lena.l1@msp.example"),
]  # fmt: skip


def api_as(server: Server, email: str) -> httpx.Client:
    """The REST API as ``email``, through a token made for the test: another person at work
    while the browser watches."""
    done = tierdesk(server.env, "token", "create", "--user", email, "--name", "browser test")
    assert done.returncode == 0, done.stderr
    return httpx.Client(
        base_url=f"{server.url}/api/v1",
        headers={"Authorization": f"Bearer {done.stdout.strip()}"},
        timeout=30,
    )


def api_change(client: httpx.Client, key: str, **fields: str | None) -> None:
    """PATCH a ticket's fields against the version just read."""
    read = client.get(f"/tickets/{key}")
    assert read.status_code == 200, read.text
    done = client.patch(f"/tickets/{key}", json=fields, headers={"If-Match": read.headers["ETag"]})
    assert done.status_code == 200, done.text


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "60", "--workers", "1")
    assert done.returncode == 0, done.stderr
    # and one that is surely open in L1 now
    done = tierdesk(
        server.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", "Cannot print the quarterly report", "--category", "hardware",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with api_as(server, "admin@msp.example") as admin:
        for org, requester, subject, category, priority, assignee in MORNING:
            made = admin.post(
                "/tickets",
                json={
                    "organization": org, "requester": requester, "subject": subject,
                    "category": category, "priority": priority, "tier": "L1",
                    "assignee": assignee, "source": "phone",
                },
            )  # fmt: skip
            assert made.status_code == 201, made.text
            assert made.json()["tier"] == "L1", made.text
    return server


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    """No request left the server and the console stayed clean, except Chromium's note of
    the ``answered`` statuses the test provoked (a refused form answers 422 or 409)."""
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def test_an_agent_signs_in_works_the_l1_queue_and_opens_a_ticket(page: Any, desk: Server) -> None:
    sign_in(page, "lena.l1@msp.example")
    assert page.url.endswith("/console/queue/l1")
    assert page.get_by_role("heading", name="L1 queue").is_visible()
    rows = page.locator("table.tickets tbody tr")
    assert rows.count() > 0
    # Lena serves ACME and GLOBEX only
    orgs = set(page.locator("table.tickets tbody tr td:nth-child(4)").all_inner_texts())
    assert orgs
    assert orgs <= {"ACME", "GLOBEX"}, orgs
    for _, _, subject, *_ in MORNING:
        assert rows.filter(has_text=subject).count() == 1, subject
    # the whole table, SLA and Created columns included, fits beside the queue list
    assert table_fit(page)["wrapper_scrolls"] is False, table_fit(page)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-queue.png"), full_page=True)

    first = rows.first.locator("td a").first
    key = first.inner_text()
    first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".ticket-head .key").inner_text().split()[0] == key  # then "Next in…"
    assert page.get_by_role("heading", name="Timeline").is_visible()
    assert page.locator(".timeline .entry").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "console-ticket.png"), full_page=True)
    stayed_home(page, desk)


TABLE_FIT = """() => {
  const wrapper = document.getElementById('queue-rows');
  const table = wrapper.querySelector('table.tickets');
  const rights = (selector) => [...table.querySelectorAll(selector)]
    .filter(e => e.offsetParent !== null).map(e => e.getBoundingClientRect().right);
  return {
    page_width: document.documentElement.scrollWidth,
    window_width: innerWidth,
    wrapper_right: wrapper.getBoundingClientRect().right,
    table_right: table.getBoundingClientRect().right,
    last_column_right: Math.max(...rights('thead th')),
    sla_right: Math.max(...rights('td .sla')),
    wrapper_scrolls: wrapper.scrollWidth > wrapper.clientWidth,
  };
}"""


def table_fit(page: Any) -> dict[str, Any]:
    """Where the queue table's right edges are, against its scrolling wrapper and the
    window."""
    fit: dict[str, Any] = page.evaluate(TABLE_FIT)
    return fit


def test_the_queue_table_fits_at_1280_px_and_scrolls_inside_itself_on_a_phone(
    page: Any, desk: Server
) -> None:
    new_ticket(desk, "Laptop-docking-station-firmware-update-" * 4)  # one long word
    sign_in(page, "lena.l1@msp.example")
    page.goto("/console/queue/l1")
    fit = table_fit(page)
    assert fit["page_width"] <= fit["window_width"], fit
    # nothing clipped: the last column and every SLA badge end inside the wrapper
    assert fit["table_right"] <= fit["wrapper_right"] + 0.5, fit
    assert fit["last_column_right"] <= fit["wrapper_right"] + 0.5, fit
    assert fit["sla_right"] <= fit["wrapper_right"] + 0.5, fit
    assert fit["wrapper_scrolls"] is False, fit

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    fit = table_fit(page)
    assert fit["page_width"] <= fit["window_width"], fit
    # on a phone the table may be wider than the screen: it scrolls inside its wrapper,
    # and the wrapper stays on the screen
    assert fit["wrapper_right"] <= fit["window_width"] + 0.5, fit
    stayed_home(page, desk)


def test_filters_keep_what_was_typed_and_show_the_error_beside_the_field(
    page: Any, desk: Server
) -> None:
    sign_in(page, "lena.l1@msp.example")
    page.goto("/console/queue/l1?organization=INITECH&text=printer")
    assert page.locator("#id_text").input_value() == "printer"
    error = page.locator(".field.invalid", has=page.locator("#id_organization")).locator(".error")
    assert error.is_visible()
    assert "valid choice" in error.inner_text()
    stayed_home(page, desk)


def test_another_organizations_ticket_is_not_found(page: Any, desk: Server) -> None:
    done = tierdesk(
        desk.env, "ticket", "list", "--as", "admin@msp.example", "--org", "INITECH", "--json"
    )
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)[0]["key"]
    sign_in(page, "lena.l1@msp.example")
    response = page.goto(f"/console/tickets/{key}")
    assert response is not None
    assert response.status == 404
    sign_in(page, "omar.l2@msp.example")  # serves every client
    response = page.goto(f"/console/tickets/{key}")
    assert response is not None
    assert response.status == 200


def test_markup_in_a_subject_and_a_name_shows_as_text(page: Any, desk: Server) -> None:
    done = tierdesk(
        desk.env, "ticket", "create", "--as", "lena.l1@msp.example", "--org", "ACME",
        "--requester", "alice@acme.example", "--subject", HOSTILE, "--description", HOSTILE,
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, "lena.l1@msp.example")
    page.goto("/console/queue/l1")
    assert page.get_by_text(HOSTILE, exact=True).first.is_visible()
    page.goto(f"/console/tickets/{key}")
    assert page.locator(".ticket-head h1").inner_text() == HOSTILE
    assert HOSTILE in page.locator(".description .body").inner_text()
    page.wait_for_timeout(300)
    assert dialogs == []
    stayed_home(page, desk)


def test_category_questions_arrive_live_and_a_hostile_file_name_stays_text(
    page: Any, desk: Server
) -> None:
    hostile_name = "<img src=x onerror=alert(3)>.png"
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, "alice@acme.example")
    page.goto("/portal/new")
    assert page.get_by_label("Which device?").count() == 0
    page.get_by_label("Subject").fill("Printer prints blank pages")
    page.get_by_label("What is it about?").select_option(label="Hardware")
    # the hardware questions arrive without a reload; what was typed stays
    page.get_by_label("Which device?").select_option("Printer")
    page.get_by_label("Asset tag").fill(HOSTILE)
    assert page.get_by_label("Subject").input_value() == "Printer prints blank pages"
    page.get_by_label("Describe the problem").fill("Since the toner change")
    page.get_by_label("Screenshots or files").set_input_files(
        [{"name": hostile_name, "mimeType": "image/png", "buffer": b"\x89PNG\r\n\x1a\n"}]
    )
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_load_state("networkidle")
    key = page.locator(".ticket-head .key").inner_text()
    facts = page.locator(".ticket-head .facts").inner_text()
    assert "Which device?\nPrinter" in facts
    assert HOSTILE in facts
    assert page.get_by_text(hostile_name).count() >= 1
    sign_in(page, "lena.l1@msp.example")
    page.goto(f"/console/tickets/{key}")
    assert HOSTILE in page.locator(".ticket-head .facts").inner_text()
    assert page.get_by_text(hostile_name).count() >= 1
    page.wait_for_timeout(300)
    assert dialogs == []
    stayed_home(page, desk)


def test_sign_in_errors_and_the_phone_layout(browser: Any, desk: Server) -> None:
    context = browser.new_context(base_url=desk.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto("/login")
        page.get_by_label("Email").fill("lena.l1@msp.example")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").inner_text().startswith("That email and password")
        assert page.get_by_label("Email").input_value() == "lena.l1@msp.example"
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/console/queue/l1$"))
        # nothing is wider than the phone's screen
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > 391)"
            ".slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"
        )
        assert width <= 390 + 1, (width, wide)
    finally:
        context.close()


def new_ticket(server: Server, subject: str) -> str:
    done = tierdesk(
        server.env, "ticket", "create", "--as", "alice@acme.example",
        "--subject", subject, "--category", "hardware", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["key"])


def test_escalating_through_the_dialog(page: Any, desk: Server) -> None:
    key = new_ticket(desk, "Scanner driver crashes")
    sign_in(page, "lena.l1@msp.example")
    page.goto(f"/console/tickets/{key}")
    page.get_by_role("button", name="Escalate…").click()
    dialog = page.get_by_role("dialog", name=f"Escalate {key}")
    assert dialog.is_visible()
    dialog.get_by_label("What was tried").fill("Reinstalled the driver, other USB port")
    page.screenshot(path=str(SCREENSHOTS / "console-escalate.png"))
    dialog.get_by_role("button", name="Escalate").click()  # no reason yet
    page.wait_for_load_state("networkidle")
    dialog = page.get_by_role("dialog", name=f"Escalate {key}")
    assert dialog.is_visible()  # back, open, with the message and the text kept
    assert "This field is required." in dialog.inner_text()
    assert dialog.get_by_label("What was tried").input_value() == (
        "Reinstalled the driver, other USB port"
    )
    dialog.get_by_label("Reason").fill("Needs the vendor's debug build")
    dialog.get_by_role("button", name="Escalate").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Escalated to L2."
    timeline = page.locator(".timeline").inner_text()
    assert "Needs the vendor's debug build" in timeline
    assert "Reinstalled the driver, other USB port" in timeline
    stayed_home(page, desk, answered=(422,))


def test_a_stale_edit_in_another_tab_is_refused_and_loses_nothing(page: Any, desk: Server) -> None:
    key = new_ticket(desk, "Monitor flickers")
    sign_in(page, "lena.l1@msp.example")
    other = page.context.new_page()
    page.goto(f"/console/tickets/{key}")
    other.goto(f"/console/tickets/{key}")
    # tab 2 changes the priority
    other.locator("summary", has_text="Priority, category, assignee").click()
    other.get_by_label("Priority").select_option("P2")
    other.get_by_role("button", name="Save").click()
    other.wait_for_load_state("networkidle")
    assert other.get_by_role("status").inner_text() == "Ticket updated."
    # tab 1, still showing the old version, resolves
    page.locator("summary", has_text="Resolve").click()
    page.get_by_label("Resolution note").fill("Replaced the cable")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state("networkidle")
    assert "Someone else changed this ticket" in page.get_by_role("alert").first.inner_text()
    assert page.get_by_label("Resolution note").input_value() == "Replaced the cable"
    assert page.locator(".facts").inner_text().count("P2") == 1  # the current state shown
    # sending it again now applies it
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Resolved."
    other.close()
    stayed_home(page, desk, answered=(409,))


def test_the_console_pages_pass_axe(page: Any, desk: Server, axe_source: str) -> None:
    key = new_ticket(desk, "Laptop fan is loud")
    page.goto("/login")
    assert axe_violations(page, axe_source) == []
    sign_in(page, "lena.l1@msp.example")
    for path in ("/console/queue/l1", "/console/queue/unassigned", f"/console/tickets/{key}"):
        page.goto(path)
        assert axe_violations(page, axe_source) == [], path
    page.get_by_role("button", name="Escalate…").click()
    assert axe_violations(page, axe_source) == [], "escalate dialog"
    # and axe does see a problem when there is one: an image without alternative text
    page.evaluate(
        "() => { const img = document.createElement('img');"
        " img.src = '/static/web/favicon.svg'; img.width = 32; img.height = 32;"
        " document.querySelector('dialog[open] form').append(img); }"
    )
    assert any("image-alt" in v for v in axe_violations(page, axe_source))
    stayed_home(page, desk)


def focused_text(page: Any) -> str:
    return str(page.evaluate("document.activeElement?.textContent ?? ''"))


def press_until(page: Any, key: str, shortcut: str = "j") -> None:
    """Move through the queue with j (or k) until ``key``'s row has focus."""
    for _ in range(60):
        page.keyboard.press(shortcut)
        if focused_text(page) == key:
            return
    raise AssertionError(f"{shortcut} never reached {key}")


def test_the_queue_follows_another_agents_changes_and_keeps_the_readers_place(
    page: Any, desk: Server
) -> None:
    taken = new_ticket(desk, "Badge reader at the side door ignores my card")
    raised = new_ticket(desk, "Projector in room 4 shows no picture")
    left = new_ticket(desk, "Headset microphone is silent")
    watched = new_ticket(desk, "Second monitor flickers after docking")
    for n in range(6):
        new_ticket(desk, f"Filler to make the page scroll {n}")
    page.set_viewport_size({"width": 1280, "height": 600})  # so that the page scrolls
    sign_in(page, "lena.l1@msp.example")
    page.goto("/console/queue/unassigned")
    search = page.get_by_label("Search")
    search.fill("half-typ")  # not applied yet
    search.evaluate("e => e.blur()")
    press_until(page, raised)
    page.evaluate("window.scrollBy(0, 120)")
    scrolled = page.evaluate("scrollY")
    assert scrolled > 0
    before = page.locator("#queue-nav").inner_text()
    rows = page.locator("table.tickets tbody tr")
    raised_row = rows.filter(has_text=raised)
    expect(raised_row.locator(".prio")).to_have_text("P4")

    with api_as(desk, "jonas.l1@msp.example") as jonas:
        # another L1 agent takes one ticket and raises another's priority
        api_change(jonas, taken, assignee="jonas.l1@msp.example")
        api_change(jonas, raised, priority="P1")
        expect(rows.filter(has_text=taken)).to_have_count(0, timeout=15_000)
        expect(raised_row.locator(".prio")).to_have_text("P1", timeout=15_000)
        page.wait_for_timeout(2_500)  # and one more refresh, with nothing new in it
        assert search.input_value() == "half-typ"
        assert page.evaluate("scrollY") == scrolled
        # the same ticket's row kept the keyboard focus through every swap
        assert focused_text(page) == raised
        assert page.locator("#queue-nav").inner_text() != before  # the counts moved too
        page.keyboard.press("j")  # and j goes on from there
        after_raised = focused_text(page)
        assert after_raised not in ("", raised)

        # the focused ticket itself leaves the queue: the row now at its place takes focus
        press_until(page, left, "k")
        index = rows.evaluate_all("(rs, key) => rs.findIndex(r => r.innerText.includes(key))", left)
        api_change(jonas, left, assignee="jonas.l1@msp.example")
        expect(rows.filter(has_text=left)).to_have_count(0, timeout=15_000)
        assert focused_text(page) == rows.nth(index).locator("a[data-row-link]").inner_text()

        # in the L1 queue a ticket someone takes stays, with its new assignee
        page.goto("/console/queue/l1")
        press_until(page, watched)
        assignee = rows.filter(has_text=watched).locator("td").nth(8)
        expect(assignee).to_have_text("unassigned")
        api_change(jonas, watched, assignee="jonas.l1@msp.example")
        expect(assignee).to_have_text("Jonas Weber", timeout=15_000)
        assert focused_text(page) == watched
    stayed_home(page, desk)


def test_journey_from_the_portal_through_l1_and_l2_back_to_a_rating(
    page: Any, desk: Server, axe_source: str
) -> None:
    # the requester opens a ticket in the portal
    sign_in(page, "alice@acme.example")
    assert page.url.endswith("/portal/")
    page.get_by_role("link", name="New ticket").click()
    page.get_by_label("What is it about?").select_option(label="Email")
    page.get_by_label("Subject").fill("Shared mailbox missing in Outlook")
    page.get_by_label("Describe the problem").fill("Since this morning the Sales mailbox is gone.")
    page.get_by_label("How urgent is it for you?").select_option(label="It slows me down")
    assert axe_violations(page, axe_source) == [], "portal form"
    page.screenshot(path=str(SCREENSHOTS / "portal-new.png"))
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_load_state("networkidle")
    key = page.locator(".ticket-head .key").inner_text()
    assert page.get_by_role("status").inner_text() == f"Thank you: your ticket is {key}."

    # L1 sees it in the L1 queue, replies, escalates with a handoff
    sign_in(page, "lena.l1@msp.example")
    page.locator("table.tickets").get_by_role("link", name=key).click()
    page.get_by_label("Body").fill("Could you sign out and in again, please?")
    page.get_by_role("button", name="Send", exact=True).click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Escalate…").click()
    dialog = page.get_by_role("dialog", name=f"Escalate {key}")
    dialog.get_by_label("Reason").fill("Mailbox permissions need Exchange admin rights")
    dialog.get_by_label("What was tried").fill("Re-login, new Outlook profile")
    dialog.get_by_role("button", name="Escalate").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Escalated to L2."

    # L2 sees the handoff and resolves
    sign_in(page, "omar.l2@msp.example")
    page.goto("/console/queue/l2")
    page.locator("table.tickets").get_by_role("link", name=key).click()
    timeline = page.locator(".timeline").inner_text()
    assert "Mailbox permissions need Exchange admin rights" in timeline
    assert "Re-login, new Outlook profile" in timeline
    page.locator("summary", has_text="Resolve").click()
    page.get_by_label("Resolution note").fill("Full access re-granted on the Sales mailbox.")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Resolved."

    # the requester sees the resolution, not the internals, and rates it
    sign_in(page, "alice@acme.example")
    page.goto(f"/portal/tickets/{key}")
    assert (
        "Full access re-granted on the Sales mailbox." in page.locator(".resolution").inner_text()
    )
    assert "Could you sign out and in again, please?" in page.locator(".timeline").inner_text()
    body = page.locator("main").inner_text()
    assert "Exchange admin rights" not in body
    assert "L2" not in body
    assert axe_violations(page, axe_source) == [], "portal ticket"
    page.screenshot(path=str(SCREENSHOTS / "portal-ticket.png"), full_page=True)
    page.get_by_label("5 — very good").check()
    page.get_by_label("Anything to add? (optional)").fill("Fixed before lunch, thanks")
    page.get_by_role("button", name="Send rating").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Thank you for your rating."
    assert "You rated this ticket 5 of 5" in page.locator("main").inner_text()
    stayed_home(page, desk)


def test_keyboard_shortcuts(page: Any, desk: Server) -> None:
    new_ticket(desk, "Keyboard test one")
    new_ticket(desk, "Keyboard test two")
    sign_in(page, "lena.l1@msp.example")
    # Only this test's tickets: the demo's older ones may be escalated or breached by the
    # worker's sweeps while the test runs, and a take would then rightly be refused.
    page.goto("/console/queue/unassigned?text=Keyboard+test")
    page.keyboard.press("?")
    shortcuts = page.get_by_role("dialog", name="Keyboard shortcuts")
    assert shortcuts.is_visible()
    listed = shortcuts.locator("tbody").inner_text()
    for key in ("?", "/", "j", "k", "r", "n", "t", "e", "s"):
        assert re.search(rf"(^|\s){re.escape(key)}(\s|$)", listed), key
    page.keyboard.press("Escape")
    expect(shortcuts).to_be_hidden()
    # / goes to the search field, without typing itself into it
    page.keyboard.press("/")
    search = page.get_by_label("Search")
    assert search.evaluate("e => e === document.activeElement")
    assert search.input_value() == "Keyboard test"
    page.keyboard.press("End")
    page.keyboard.press("j")  # typed into the field now, not a shortcut
    assert search.input_value() == "Keyboard testj"
    search.fill("Keyboard test")
    search.evaluate("e => e.blur()")
    page.keyboard.press("j")
    first = page.locator("a[data-row-link]").first
    assert first.evaluate("e => e === document.activeElement")
    page.keyboard.press("j")
    second = page.locator("a[data-row-link]").nth(1)
    assert second.evaluate("e => e === document.activeElement")
    page.keyboard.press("k")  # back up
    assert first.evaluate("e => e === document.activeElement")
    page.keyboard.press("k")  # and not past the first row
    assert first.evaluate("e => e === document.activeElement")
    # from a row's checkbox too
    page.get_by_label(f"Select {first.inner_text()}").focus()
    page.keyboard.press("j")
    assert second.evaluate("e => e === document.activeElement")
    key = second.inner_text()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/tickets/{key}")
    page.keyboard.press("n")
    assert page.get_by_label("Internal note (agents only)").is_checked()
    assert page.get_by_label("Body").evaluate("e => e === document.activeElement")
    page.get_by_label("Body").evaluate("e => e.blur()")
    page.keyboard.press("r")
    assert not page.get_by_label("Internal note (agents only)").is_checked()
    page.get_by_label("Body").evaluate("e => e.blur()")
    page.keyboard.press("e")
    escalate_dialog = page.get_by_role("dialog", name=f"Escalate {key}")
    assert escalate_dialog.is_visible()
    page.keyboard.press("Escape")
    expect(escalate_dialog).to_be_hidden()
    # t takes it
    assignee = page.locator(".facts div", has_text="Assignee").locator("dd")
    assert assignee.inner_text() == "unassigned"
    page.keyboard.press("t")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "The ticket is yours."
    assert assignee.inner_text() == "Lena Fischer"
    expect(page.get_by_role("button", name="Take it")).to_have_count(0)
    # s opens the resolve form with the focus in it (pressed twice: still open)
    resolution = page.get_by_label(re.compile(r"^Resolution:?$"))
    assert not resolution.is_visible()
    page.locator("body").focus()
    page.keyboard.press("s")
    assert resolution.evaluate("e => e === document.activeElement")
    resolution.evaluate("e => e.blur()")
    page.keyboard.press("s")
    assert resolution.is_visible()
    resolution.select_option(label="Workaround provided")
    page.get_by_label("Resolution note").fill("Use the spare headset until the new one arrives.")
    page.get_by_role("button", name="Resolve").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("status").inner_text() == "Resolved."
    assert "Resolved" in page.locator(".facts").inner_text()
    # next in the tier's queue, from a freshly loaded page
    page.goto(f"/console/tickets/{key}")
    next_link = page.locator("a.next")
    expect(next_link).to_have_count(1)
    page.locator("body").focus()
    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(rf".*/console/tickets/(?!{re.escape(key)}$)[A-Z]+-\d+$"))
    stayed_home(page, desk)


def test_bulk_take_and_the_refresh_keeps_the_selection(page: Any, desk: Server) -> None:
    one = new_ticket(desk, "Bulk one")
    two = new_ticket(desk, "Bulk two")
    sign_in(page, "lena.l1@msp.example")
    page.goto("/console/queue/unassigned")
    page.get_by_label(f"Select {one}").check()
    page.get_by_label(f"Select {two}").check()
    new_ticket(desk, "Arrives while selecting")
    page.wait_for_timeout(4500)  # two refresh periods: they wait while rows are selected
    assert page.get_by_label(f"Select {one}").is_checked()
    page.get_by_text("Bulk action on the selected tickets").click()
    page.get_by_label("With the selected").select_option(label="Assign to me")
    page.get_by_role("button", name="Apply to selected").click()
    page.wait_for_load_state("networkidle")
    message = page.get_by_role("status").inner_text()
    assert message.startswith("Done for 2:")
    assert one in message
    assert two in message
    stayed_home(page, desk)
