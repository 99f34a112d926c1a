"""The knowledge base in the portal, in a real browser: a requester types a new ticket,
articles that may answer it appear as they type, one is read in place (the typed ticket
stays), and "This solved my problem" ends the flow with a deflection and no ticket. The
other way: the ticket is sent anyway and remembers the articles that were suggested. Then
an article's own page and its vote. Screenshots for docs/knowledge-base.md."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations
from tests.processes import django_eval, tierdesk
from tierdesk.demo import DEMO_PASSWORD


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    """The demo's people and knowledge base (156 articles), no tickets."""
    done = tierdesk(server.env, "demo", "--tickets", "0", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/portal/$"))


def ask(server: Server, code: str) -> Any:
    """The answer of ``code`` (which prints JSON) in the server's installation."""
    return json.loads(django_eval(server.env, code))


def type_and_wait(page: Any, label: str, text: str) -> None:
    """Type ``text`` into the field ``label`` key by key, and wait until the suggestions
    for all of it are in (the requests for what was typed before may come first)."""
    name = {"Subject": "subject", "Describe the problem": "description"}[label]

    def for_all_of_it(response: Any) -> bool:
        url = urlsplit(response.url)
        if url.path != "/portal/kb/suggest":
            return False
        # what is typed travels in the body, never in the address (access logs, history)
        assert response.request.method == "POST", response.request.method
        assert url.query == "", response.url
        return parse_qs(response.request.post_data or "").get(name) == [text]

    with page.expect_response(for_all_of_it):
        page.get_by_label(label).press_sequentially(text)
    expect(page.locator("#kb-suggestions")).not_to_have_class(re.compile("htmx-request"))


def stayed_home(page: Any, server: Server) -> None:
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    assert page.problems == [], page.problems


def test_an_article_solves_the_problem_and_no_ticket_is_opened(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, "alice@acme.example")
    page.get_by_role("link", name="New ticket", exact=True).click()
    type_and_wait(page, "Subject", "cannot print")
    hits = page.locator("#kb-suggestions .kb-hit")
    expect(hits.first).to_be_visible()
    expect(page.locator("#kb-suggest-status")).to_contain_text("may answer this")
    count = hits.count()
    assert 1 <= count <= 5
    shown = page.locator("#kb-shown").input_value().split(",")
    assert len(shown) == count
    first = hits.first
    title = first.locator("h3").inner_text()
    assert first.locator(".snippet mark").count() >= 1  # the matched words highlighted
    assert axe_violations(page, axe_source) == []

    # read in place, with the keyboard: the form and what was typed stay
    first.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(first.locator(".kb-read .kb-body")).to_be_visible()
    assert page.url.endswith("/portal/new")
    expect(page.get_by_label("Subject")).to_have_value("cannot print")
    assert axe_violations(page, axe_source) == []
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "kb-portal-suggestions.png"))

    first.get_by_role("button", name="This solved my problem").click()
    expect(
        page.get_by_role("heading", name="Glad it helped — no ticket was opened")
    ).to_be_visible()
    expect(page.get_by_role("link", name=title)).to_be_visible()
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(SCREENSHOTS / "kb-portal-deflected.png"))
    page.get_by_role("link", name="Back to the portal").click()
    expect(page.get_by_role("heading", name="My open tickets")).to_be_visible()

    found = ask(
        desk,
        "import json\n"
        "from tierdesk.kb.models import Deflection\n"
        "from tierdesk.tickets.models import Ticket\n"
        "print(json.dumps({'deflections': [[d.article.title, d.requester.email, d.query]"
        " for d in Deflection.objects.all()], 'tickets': Ticket.objects.count()}))",
    )
    assert found == {
        "deflections": [[title, "alice@acme.example", "cannot print"]],
        "tickets": 0,
    }
    stayed_home(page, desk)


def test_a_ticket_sent_anyway_remembers_the_suggestions_and_an_article_takes_a_vote(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, "bernd@globex.example")
    page.get_by_role("link", name="New ticket", exact=True).click()
    page.get_by_label("What is it about?").select_option(label="Hardware")
    type_and_wait(page, "Subject", "cannot print")
    expect(page.locator("#kb-suggestions .kb-hit").first).to_be_visible()
    before = page.locator("#kb-shown").input_value().split(",")
    # the description brings other articles too; the form keeps every one shown (max 10)
    type_and_wait(page, "Describe the problem", "The printer shows offline")
    now = [
        h.get_attribute("id").removeprefix("kb-hit-")
        for h in page.locator("#kb-suggestions .kb-hit h3").all()
    ]
    shown = page.locator("#kb-shown").input_value().split(",")
    assert set(shown) == set(now) | set(before)
    assert now == shown[: len(now)]  # the latest first
    assert len(shown) <= 10
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Thank you: your ticket is")
    org, number = page.locator(".ticket-head .key").inner_text().split("-")

    uses = ask(
        desk,
        "import json\n"
        "from tierdesk.kb.models import ArticleUse\n"
        "uses = ArticleUse.objects.filter(\n"
        f"    ticket__organization__code={org!r}, ticket__number={number})\n"
        "print(json.dumps(sorted([u.article_id, u.kind, u.actor.email] for u in uses)))",
    )
    assert uses == [[i, "suggested", "bernd@globex.example"] for i in sorted(map(int, shown))]

    # the knowledge base's own pages: search, an article, a vote
    page.get_by_role("link", name="Knowledge base").click()
    page.get_by_label("Search the articles").fill("printer offline")
    page.get_by_role("button", name="Search").click()
    page.locator(".kb-results a").first.click()
    expect(page.get_by_role("heading", name="Was this helpful?")).to_be_visible()
    yes = page.get_by_role("button", name="Yes")
    yes.click()
    expect(page.locator(".kb-voted")).to_have_text("You said it helped: thank you.")
    expect(page.get_by_role("button", name="Yes")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Yes")).to_be_focused()  # the focus stays put
    assert axe_violations(page, axe_source) == []
    page.screenshot(path=str(SCREENSHOTS / "kb-portal-article.png"), full_page=True)
    vote_url = page.url
    votes = ask(
        desk,
        "import json\n"
        "from tierdesk.kb.models import ArticleFeedback\n"
        "print(json.dumps([[f.user.email, f.kind] for f in ArticleFeedback.objects.all()]))",
    )
    assert votes == [["bernd@globex.example", "helpful"]]
    stayed_home(page, desk)

    # A refused vote is shown, not dropped: the server's 422 (a value that is neither yes nor
    # no, as a tampered page sends) comes back as the vote's section with its message ...
    page.goto(vote_url)
    page.locator("#vote-no").evaluate("button => { button.value = 'maybe'; }")
    page.get_by_role("button", name="No").click()
    expect(page.get_by_role("alert")).to_have_text("Choose Yes or No.")
    expect(page.locator(".kb-voted")).to_have_text("You said it helped.")
    # the refusal's status, which the browser reports: expected, and the only problem
    assert [p.split(" (")[0] for p in page.problems] == [
        "Failed to load resource: the server responded with a status of 422"
    ], page.problems
    page.problems.clear()
    # ... and any other failure, here a session whose CSRF token no longer holds (403), is
    # said in words in the same place
    page.goto(vote_url)
    page.evaluate(
        "() => { document.body.setAttribute('hx-headers', '{\"X-CSRFToken\": \"stale\"}');"
        " document.querySelector('#vote [name=csrfmiddlewaretoken]').value = 'stale'; }"
    )
    page.get_by_role("button", name="No").click()
    expect(page.get_by_role("alert")).to_contain_text("It was refused (403)")
    expect(page.get_by_role("button", name="Yes")).to_have_attribute("aria-pressed", "true")
    assert axe_violations(page, axe_source) == []
    assert any("status of 403" in p for p in page.problems), page.problems
    page.problems.clear()
    votes = ask(
        desk,
        "import json\n"
        "from tierdesk.kb.models import ArticleFeedback\n"
        "print(json.dumps([[f.user.email, f.kind] for f in ArticleFeedback.objects.all()]))",
    )
    assert votes == [["bernd@globex.example", "helpful"]]
