"""The console's knowledge base in a real browser, against `tierdesk serve` with the demo's
knowledge base: the knowledge loop from a resolved L2 ticket (an L2 agent writes an article
from it, previews it by keyboard, saves it with Ctrl+S and sends it for review; a manager
publishes it), then the manager's edit and the diff between the two versions; and an image
uploaded in the editor, inserted into the text and shown in the preview. Every page passes
axe-core (no serious or critical violation), keeps every request on the server and
logs no console error (a Content-Security-Policy violation is one). Screenshots for
docs/knowledge-base.md at 1280 px."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations
from tests.processes import tierdesk
from tierdesk.demo import DEMO_PASSWORD

DESKTOP = {"width": 1280, "height": 900}
L2_AGENT = "omar.l2@msp.example"
MANAGER = "manager@msp.example"
SUBJECT = "Outlook closes right after start for the finance team"
TITLE = "Outlook closes at start: a broken PDF add-in"


def api_as(server: Server, email: str) -> httpx.Client:
    done = tierdesk(server.env, "token", "create", "--user", email, "--name", "browser test")
    assert done.returncode == 0, done.stderr
    return httpx.Client(
        base_url=f"{server.url}/api/v1",
        headers={"Authorization": f"Bearer {done.stdout.strip()}"},
        timeout=30,
    )


@pytest.fixture(scope="module")
def desk(server: Server) -> tuple[Server, str]:
    """The demo (people, catalog, its 156 articles, a few tickets), one published article
    past its review date (for the stale badge), and a ticket Omar resolved at L2 with his
    steps on it: the ticket's key."""
    done = tierdesk(server.env, "demo", "--tickets", "10", "--workers", "1")
    assert done.returncode == 0, done.stderr
    with api_as(server, "admin@msp.example") as admin:
        read = admin.get("/kb/articles/vpn-connected-but-nothing-loads")
        assert read.status_code == 200, read.text
        stale = admin.patch(
            "/kb/articles/vpn-connected-but-nothing-loads",
            json={"review_by": "2024-01-31"},
            headers={"If-Match": read.headers["ETag"]},
        )
        assert stale.status_code == 200, stale.text
    with api_as(server, L2_AGENT) as omar:
        made = omar.post(
            "/tickets",
            json={
                "organization": "ACME", "requester": "alice@acme.example",
                "subject": SUBJECT, "category": "software", "tier": "L2",
                "assignee": L2_AGENT,
                "description": "Outlook opens, shows its splash screen and closes again. "
                "Three people in finance since this morning's update.",
            },
        )  # fmt: skip
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        for body, internal in (
            ("Started Outlook with `outlook.exe /safe`: it stays open.", True),
            ("Disabled the PDF add-in under File > Options > Add-ins > COM Add-ins.", False),
        ):
            said = omar.post(f"/tickets/{key}/comments", json={"body": body, "internal": internal})
            assert said.status_code == 201, said.text
        read = omar.get(f"/tickets/{key}")
        resolved = omar.post(
            f"/tickets/{key}/status",
            json={
                "status": "resolved", "resolution_code": "fixed",
                "resolution_note": "The PDF add-in from the update crashes Outlook; "
                "disabling it fixes the start. The vendor's fix is on the way.",
            },
            headers={"If-Match": read.headers["ETag"]},
        )  # fmt: skip
        assert resolved.status_code == 200, resolved.text
    return server, key


def new_page(browser: Any, server: Server, email: str) -> Any:
    """A signed-in page at 1280 px that records requests and console errors."""
    context = browser.new_context(base_url=server.url, viewport=DESKTOP)
    page = context.new_page()
    page.requested = []
    page.problems = []
    page.on("request", lambda r: page.requested.append(r.url))
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    return page


def checked(page: Any, server: Server, axe_source: str, what: str) -> None:
    """No serious accessibility violation, nothing fetched from elsewhere, no console error,
    nothing wider than the screen."""
    assert axe_violations(page, axe_source) == [], what
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], (what, outside)
    assert page.problems == [], (what, page.problems)
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"], what


def test_an_l2_agent_writes_an_article_from_a_ticket_and_a_manager_publishes_it(
    browser: Any, desk: tuple[Server, str], axe_source: str
) -> None:
    server, key = desk
    SCREENSHOTS.mkdir(exist_ok=True)
    page = new_page(browser, server, L2_AGENT)

    # the list: every status, the stale badge, votes; searched
    page.get_by_role("link", name="Knowledge", exact=True).click()
    expect(page.get_by_role("heading", name="Knowledge base")).to_be_visible()
    expect(page.locator("table.kb-articles tbody tr")).to_have_count(25)  # a page
    page.keyboard.press("/")  # the console's search key
    expect(page.get_by_label("Search")).to_be_focused()
    page.keyboard.type("vpn connected nothing loads")
    page.keyboard.press("Enter")
    first = page.locator("table.kb-articles tbody tr").first
    expect(first).to_contain_text("VPN connects but nothing loads")
    expect(first).to_contain_text("Stale")
    expect(page.locator("table.kb-articles mark").first).to_be_visible()  # matched words
    checked(page, server, axe_source, "list")
    page.screenshot(path=str(SCREENSHOTS / "kb-console-list.png"))

    # "Create article from this ticket" on the resolved ticket (the link, once the ticket
    # page has it; the same address otherwise)
    page.goto(f"/console/tickets/{key}")
    create = page.get_by_role("link", name="Create article from this ticket")
    if create.count():
        create.click()
    else:
        page.goto(f"/console/kb/new?ticket={key}")
    expect(page.get_by_role("heading", name="New article")).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text(f"Written from ticket {key}")
    expect(page.get_by_label("Title")).to_have_value(SUBJECT)
    body = page.get_by_label("Text (Markdown)")
    expect(body).to_have_value(
        "## Problem\n\nOutlook opens, shows its splash screen and closes again. Three people "
        "in finance since this morning's update.\n\n## Steps\n\n"
        "1. (internal note) Started Outlook with `outlook.exe /safe`: it stays open.\n"
        "2. Disabled the PDF add-in under File > Options > Add-ins > COM Add-ins.\n\n"
        "## Resolution\n\nThe PDF add-in from the update crashes Outlook; disabling it fixes "
        "the start. The vendor's fix is on the way.\n"
    )
    expect(page.get_by_label("Audience")).to_have_value("internal")
    checked(page, server, axe_source, "editor from a ticket")
    page.screenshot(path=str(SCREENSHOTS / "kb-console-from-ticket.png"), full_page=True)

    # write by keyboard: the title, then the text; Alt+P shows the preview beside it
    page.get_by_label("Title").fill(TITLE)
    body.focus()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n## If it comes back\n\nCheck **COM Add-ins** again after updates.\n")
    preview = page.locator("#kb-preview")
    expect(preview).to_be_hidden()
    page.keyboard.press("Alt+p")
    expect(preview).to_be_visible()
    expect(preview.get_by_role("heading", name="If it comes back")).to_be_visible()
    expect(preview.locator("code")).to_have_text("outlook.exe /safe")
    expect(page.get_by_role("button", name="Hide preview")).to_have_attribute(
        "aria-expanded", "true"
    )
    expect(body).to_be_focused()  # the keys never take the writer out of the text
    checked(page, server, axe_source, "editor with its preview")
    page.screenshot(path=str(SCREENSHOTS / "kb-console-editor.png"), full_page=True)
    # the preview follows the text while it is shown
    page.keyboard.type("<script>document.title='x'</script>Ask the vendor.")
    expect(preview).to_contain_text("Ask the vendor.")
    assert preview.locator("script").count() == 0
    page.keyboard.press("Control+Shift+P")
    expect(preview).to_be_hidden()
    page.keyboard.press("Control+Shift+P")
    expect(preview).to_be_visible()
    # Tab moves on to the next field: the text does not trap the keyboard
    page.keyboard.press("Tab")
    expect(page.get_by_label("Category")).to_be_focused()
    page.get_by_label("Tags").fill("outlook, add-in, email")
    page.get_by_label("Change note").fill(f"From {key}")
    body.focus()
    page.keyboard.press("Control+s")
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    expect(page.locator(".kb-facts")).to_contain_text(f"Written from{key}")
    assert page.title() != "x"

    # send it for review; an agent has no Publish button
    assert page.get_by_role("button", name="Publish").count() == 0
    page.get_by_label("Note (optional)").fill("Please check the steps.")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator(".kb-badges")).to_contain_text("In review")
    slug = page.url.rstrip("/").rsplit("/", 1)[1]
    checked(page, server, axe_source, "article in review")
    page.context.close()

    # a manager publishes it
    page = new_page(browser, server, MANAGER)
    page.goto("/console/kb/?text=outlook+add-in&status=in_review")
    page.get_by_role("link", name=TITLE).click()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".kb-badges")).to_contain_text("Published")
    expect(page.locator(".kb-facts")).to_contain_text("ReviewerMax Manager")
    expect(page.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
    checked(page, server, axe_source, "published article")
    page.screenshot(path=str(SCREENSHOTS / "kb-console-article.png"), full_page=True)

    # the manager edits it (a reviewer changes a published article), then compares
    page.keyboard.press("e")  # the page's key for its Edit link
    body = page.get_by_label("Text (Markdown)")
    text = body.input_value().replace(
        "The vendor's fix is on the way.", "Version 24.2 of the add-in fixes it."
    )
    body.fill(text)
    page.get_by_label("Change note").fill("The vendor's fix is out")
    page.keyboard.press("Control+s")
    expect(page.get_by_text("Saved: version 2 of the text.")).to_be_visible()
    page.get_by_role("link", name="Versions and changes").click()
    expect(page.locator("table.kb-versions tbody tr")).to_have_count(2)
    expect(page.locator("table.kb-versions")).to_contain_text("The vendor's fix is out")
    checked(page, server, axe_source, "versions")
    page.get_by_role("button", name="Compare").click()
    assert page.url.endswith(f"/console/kb/{slug}/diff?old=1&new=2")
    expect(page.get_by_role("heading", name="Changes from version 1 to version 2")).to_be_visible()
    expect(page.locator("tr.diff-del")).to_contain_text("\N{MINUS SIGN} removed")
    expect(page.locator("tr.diff-del")).to_contain_text("The vendor's fix is on the way.")
    expect(page.locator("tr.diff-add")).to_contain_text("+ added")
    expect(page.locator("tr.diff-add")).to_contain_text("Version 24.2 of the add-in fixes it.")
    checked(page, server, axe_source, "diff")
    page.screenshot(path=str(SCREENSHOTS / "kb-console-diff.png"), full_page=True)
    page.context.close()


def png(width: int, height: int) -> bytes:
    """A valid PNG: a window with a dark title bar (a stand-in for a screenshot)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rows = b"".join(
        b"\x00" + (b"\x2a\x4d\x6f" if y < height // 5 else b"\xf4\xf6\xf8") * width
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(rows)),
         chunk(b"IEND", b""))
    )  # fmt: skip


def test_an_agent_uploads_an_image_inserts_it_and_sees_it_in_the_preview(
    browser: Any, desk: tuple[Server, str], axe_source: str
) -> None:
    server, _ = desk
    with api_as(server, L2_AGENT) as omar:
        made = omar.post(
            "/kb/articles",
            json={"title": "Printer tray jams", "body": "## Steps\n\nOpen the tray.\n"},
        )
        assert made.status_code == 201, made.text
        slug = made.json()["slug"]
    page = new_page(browser, server, L2_AGENT)
    page.goto(f"/console/kb/{slug}/edit")
    body = page.get_by_label("Text (Markdown)")
    typed = "## Steps\n\nOpen the tray.\n\nTyped, not saved yet.\n"
    body.fill(typed)
    images = page.locator("#kb-images")
    field = page.get_by_label("Image file")

    # a refusal is said beside the field, which takes the focus; the typed text stays
    field.set_input_files(files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"x"}])
    page.get_by_role("button", name="Upload image").click()
    expect(images).to_contain_text("Images are .png, .jpg, .gif or .webp, not .txt")
    expect(page.get_by_label("Image file")).to_be_focused()
    expect(page.get_by_label("Image file")).to_have_attribute("aria-invalid", "true")
    expect(body).to_have_value(typed)
    # the refusal's status, which the browser reports: expected, and the only problem
    assert page.problems == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.problems.clear()

    # an upload: listed with its thumbnail, which loads
    shot = png(160, 96)
    page.get_by_label("Image file").set_input_files(
        files=[{"name": "tray.png", "mimeType": "image/png", "buffer": shot}]
    )
    page.get_by_role("button", name="Upload image").click()
    expect(images.get_by_text("Added tray.png")).to_be_focused()
    expect(images.locator("code")).to_have_text("![tray.png](attachment:tray.png)")
    expect(images.locator("img.kb-thumb")).to_have_js_property("naturalWidth", 160)
    expect(body).to_have_value(typed)

    # Insert puts it at the caret; the preview shows it
    body.focus()
    page.keyboard.press("Control+Home")
    page.keyboard.press("ArrowDown")
    page.get_by_role("button", name="Insert tray.png into the text").click()
    expect(body).to_have_value(
        re.compile(r"^## Steps\n\n!\[tray\.png\]\(attachment:tray\.png\)\n\nOpen the tray\.")
    )
    expect(body).to_be_focused()
    page.keyboard.press("Alt+p")
    expect(page.locator("#kb-preview img")).to_have_js_property("naturalWidth", 160)
    checked(page, server, axe_source, "editor with an image")
    page.screenshot(path=str(SCREENSHOTS / "kb-console-images.png"), full_page=True)

    # Remove asks first, in a dialog whose Cancel has the focus: cancelled, nothing happens
    dialog = page.get_by_role("dialog", name="Remove tray.png?")
    page.get_by_role("button", name="Remove tray.png", exact=True).click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    checked(page, server, axe_source, "the removal's dialog")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Remove tray.png", exact=True).click()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(images.locator("img.kb-thumb")).to_have_count(1)
    # confirmed: gone from the list, the text still as typed
    page.get_by_role("button", name="Remove tray.png", exact=True).click()
    dialog.get_by_role("button", name="Remove image").click()
    expect(images.get_by_text("Removed tray.png.")).to_be_focused()
    expect(images.locator("img.kb-thumb")).to_have_count(0)
    expect(body).to_have_value(re.compile(r"Typed, not saved yet\."))

    # The upload and the removal moved the article's version, and the editor's with it:
    # the text typed all along saves without a conflict with the writer's own changes.
    page.keyboard.press("Control+s")
    expect(page.get_by_role("status")).to_contain_text("Saved: version 2 of the text.")
    with api_as(server, L2_AGENT) as omar:
        read = omar.get(f"/kb/articles/{slug}")
        assert "Typed, not saved yet." in read.json()["body"]
        assert read.headers["ETag"] == '"v4"'  # created, an image added, removed, the text

    # someone else's change meanwhile: an upload is refused, said beside the field
    page.goto(f"/console/kb/{slug}/edit")
    with api_as(server, MANAGER) as manager:
        etag = manager.get(f"/kb/articles/{slug}").headers["ETag"]
        changed = manager.patch(
            f"/kb/articles/{slug}", json={"title": "Printer trays jam"}, headers={"If-Match": etag}
        )
        assert changed.status_code == 200, changed.text
    page.get_by_label("Image file").set_input_files(
        files=[{"name": "tray.png", "mimeType": "image/png", "buffer": shot}]
    )
    page.get_by_role("button", name="Upload image").click()
    expect(images).to_contain_text("Someone else changed this article since you opened the editor")
    expect(page.get_by_label("Image file")).to_be_focused()
    expect(images.locator("img.kb-thumb")).to_have_count(0)
    assert page.problems == [
        "Failed to load resource: the server responded with a status of 409 (Conflict)"
    ]
    page.problems.clear()
    page.context.close()
