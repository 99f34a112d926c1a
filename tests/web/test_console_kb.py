"""The knowledge base in the agent console, through Django's test client: the list with its
search, filters and pages; the editor (validation, preview, concurrency, "create article
from this ticket"); an article's page with its workflow, votes, flags and use; versions and
the diff. Who may do what: agents write and send to review, reviewers (managers, admins)
publish, requesters find no console, and nobody sees an article of an organization they do
not serve. Query counts do not grow with the rows. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.core.errors import ValidationFailed
from tierdesk.core.models import User
from tierdesk.kb import services
from tierdesk.kb.models import Article, ArticleFeedback, ArticleStatus
from tierdesk.tickets import services as ticket_services
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.services import tier_by_code
from tierdesk.web.views import kb as kb_views

pytestmark = pytest.mark.django_db

HOSTILE = (
    "## Fix\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
    '<a href="javascript:alert(3)">click</a> [md](javascript:alert(4))\n\n'
    '<iframe src="https://evil.example"></iframe>\n\n'
    '<a href="data:text/html,x">data</a> <form action=/x><input name=q></form>\n\n**bold**\n'
)


def write(actor: User, title: str, **kw: Any) -> Article:
    return services.article_create(actor=actor, title=title, body=kw.pop("body", "Text."), **kw)


def publish(cast: Cast, article: Article) -> Article:
    if article.status == ArticleStatus.DRAFT:
        services.article_transition(actor=article.owner, article=article, to="in_review")
    return services.article_transition(actor=cast.admin, article=article, to="published")


def page(client: Client, path: str, status: int = 200) -> str:
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.content[:500])
    return r.content.decode()


def editor_data(**kw: Any) -> dict[str, Any]:
    data = {
        "title": "Printer shows offline",
        "body": "## Steps\n\n1. Turn it off and on.\n",
        "category": "",
        "tags": "printer, hardware",
        "audience": "internal",
        "review_by": "",
        "related": "",
        "note": "",
    }
    return data | kw


def edit_data(client: Client, article: Article, **kw: Any) -> dict[str, Any]:
    """The edit form as the page fills it (hidden tokens included), with ``kw`` typed."""
    form = page(client, f"/console/kb/{article.slug}/edit")
    tokens = dict(re.findall(r'<input type="hidden" name="(version|base)" value="(\d+)"', form))
    assert set(tokens) == {"version", "base"}
    current = {
        "title": article.title,
        "body": article.body,
        "category": str(article.category_id or ""),
        "tags": ", ".join(sorted(t.name for t in article.tags.all())),
        "audience": article.audience_label,
        "review_by": article.review_by.isoformat() if article.review_by else "",
        "related": "",
        "note": "",
    }
    return current | tokens | kw


# --- who may open what -----------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    article = write(cast.lena, "VPN drops")
    for path in (
        "/console/kb/",
        "/console/kb/new",
        f"/console/kb/{article.slug}",
        f"/console/kb/{article.slug}/edit",
        f"/console/kb/{article.slug}/versions",
        f"/console/kb/{article.slug}/diff?old=1&new=1",
    ):
        r = Client().get(path)
        assert r.status_code == 302, path
        assert r["Location"].startswith("/login"), path
    r = Client().post("/console/kb/preview", {"body": "x"})
    assert r.status_code == 302


def test_requesters_find_no_console_knowledge_base(cast: Cast) -> None:
    article = publish(cast, write(cast.lena, "VPN drops", audience="public"))
    draft = write(cast.lena, "Internal draft")
    client = signed_in(cast.alice)
    # a link to the list or an article leads to the portal's, which decides what she reads
    r = client.get("/console/kb/")
    assert (r.status_code, r["Location"]) == (302, "/portal/kb/")
    for slug in (article.slug, draft.slug, "no-such-article"):
        r = client.get(f"/console/kb/{slug}")
        assert (r.status_code, r["Location"]) == (302, f"/portal/kb/{slug}")
    assert client.get(f"/portal/kb/{draft.slug}").status_code == 404
    for path in (
        "/console/kb/new",
        f"/console/kb/{article.slug}/edit",
        f"/console/kb/{article.slug}/versions",
        f"/console/kb/{article.slug}/diff?old=1&new=1",
    ):
        assert client.get(path).status_code == 404, path
    for path, data in (
        ("/console/kb/new", editor_data()),
        ("/console/kb/preview", {"body": "x"}),
        (f"/console/kb/{article.slug}/status", {"to": "archived", "version": article.version}),
        (f"/console/kb/{article.slug}/vote", {"helpful": "yes"}),
        (f"/console/kb/{article.slug}/flag", {"comment": "old"}),
    ):
        assert client.post(path, data).status_code == 404, path
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert not ArticleFeedback.objects.exists()
    assert Article.objects.count() == 2


def test_agents_never_see_articles_of_organizations_they_do_not_serve(cast: Cast) -> None:
    globex = write(cast.omar, "Globex Citrix gateway", audience="organization",
                   organization=cast.globex, body="Citrix gateway steps")  # fmt: skip
    publish(cast, globex)
    lena = signed_in(cast.lena)  # serves ACME only
    for path in (
        f"/console/kb/{globex.slug}",
        f"/console/kb/{globex.slug}/edit",
        f"/console/kb/{globex.slug}/versions",
        f"/console/kb/{globex.slug}/diff?old=1&new=1",
    ):
        assert lena.get(path).status_code == 404, path
    for path, data in (
        (f"/console/kb/{globex.slug}/status", {"to": "archived", "version": globex.version}),
        (f"/console/kb/{globex.slug}/vote", {"helpful": "yes"}),
        (f"/console/kb/{globex.slug}/flag", {"comment": "old"}),
        (f"/console/kb/{globex.slug}/edit", edit_data(signed_in(cast.admin), globex)),
    ):
        assert lena.post(path, data).status_code == 404, path
    assert "Globex Citrix" not in page(lena, "/console/kb/")
    assert "Globex Citrix" not in page(lena, "/console/kb/?text=citrix+gateway")
    # a related article she cannot read is refused like a missing one
    r = lena.post("/console/kb/new", editor_data(related=globex.slug))
    assert r.status_code == 400
    assert f"no article &#x27;{globex.slug}&#x27;" in r.content.decode()
    # Omar serves GLOBEX
    omar = signed_in(cast.omar)
    assert "Globex Citrix" in page(omar, f"/console/kb/{globex.slug}")
    assert "Globex Citrix" in page(omar, "/console/kb/?text=citrix+gateway")
    globex.refresh_from_db()
    assert globex.status == ArticleStatus.PUBLISHED
    assert not ArticleFeedback.objects.exists()


def test_an_agent_does_not_see_articles_for_tiers_above_their_own(cast: Cast) -> None:
    runbook = write(cast.omar, "L2 runbook: DNS", audience="tier", min_tier=tier_by_code("L2"))
    assert page(signed_in(cast.lena), f"/console/kb/{runbook.slug}", 404)
    assert "L2 runbook" in page(signed_in(cast.omar), "/console/kb/")
    # the editor offers Lena no tier above her own: choosing one is refused
    choices = page(signed_in(cast.lena), "/console/kb/new")
    assert 'value="tier:L1"' in choices
    assert 'value="tier:L2"' not in choices
    r = signed_in(cast.lena).post("/console/kb/new", editor_data(audience="tier:L2"))
    assert r.status_code == 400
    assert "Select a valid choice" in r.content.decode()


def test_the_console_navigation_links_to_the_knowledge_base(cast: Cast) -> None:
    queue = page(signed_in(cast.lena), "/console/queue/l1")
    assert '<a href="/console/kb/">Knowledge</a>' in queue
    kb = page(signed_in(cast.lena), "/console/kb/")
    assert '<a href="/console/kb/" aria-current="page">Knowledge</a>' in kb


# --- the list --------------------------------------------------------------------------------


def test_the_list_shows_status_audience_owner_stale_and_votes(cast: Cast) -> None:
    old = publish(
        cast,
        write(cast.lena, "Outlook keeps asking for a password", audience="public",
              tags=["email"], review_by=clock.now().date() - dt.timedelta(days=3)),
    )  # fmt: skip
    write(cast.omar, "Acme label printer", audience="organization", organization=cast.acme)
    services.article_vote(actor=cast.alice, article=old, helpful=True)
    services.article_vote(actor=cast.bob, article=old, helpful=True)
    services.article_vote(actor=cast.carol, article=old, helpful=False)
    text = page(signed_in(cast.lena), "/console/kb/")
    rows = re.findall(r"<tr>(.*?)</tr>", text, re.S)
    outlook = next(r for r in rows if "Outlook keeps" in r)
    assert "Published" in outlook
    assert "Public" in outlook
    assert "Lena" in outlook  # owner
    assert '<span class="kb-stale">Stale</span>' in outlook
    assert 'aria-label="2 helpful, 1 not helpful"' in outlook
    label = next(r for r in rows if "Acme label printer" in r)
    assert "Draft" in label
    assert "ACME requesters" in label
    assert "Stale" not in label


def test_the_list_searches_every_status_and_filters(cast: Cast) -> None:
    draft = write(cast.lena, "Shared mailbox permissions", body="Grant full access in Exchange",
                  tags=["email"])  # fmt: skip
    stale = publish(
        cast,
        write(cast.lena, "Exchange quota", body="Raise the mailbox quota in Exchange",
              audience="public", review_by=clock.now().date() - dt.timedelta(days=1)),
    )  # fmt: skip
    publish(cast, write(cast.lena, "Printer queue stuck", body="Restart the spooler"))
    client = signed_in(cast.lena)
    found = page(client, "/console/kb/?text=exchange")
    assert draft.title in found  # a draft is found: staff search every status
    assert stale.title in found
    assert "Printer queue" not in found
    assert "<mark>" in found  # the snippet shows the matched word
    assert draft.title not in page(client, "/console/kb/?text=exchange&status=published")
    only_stale = page(client, "/console/kb/?text=exchange&stale=yes")
    assert (stale.title in only_stale, draft.title in only_stale) == (True, False)
    fresh = page(client, "/console/kb/?stale=no")
    assert (stale.title in fresh, "Printer queue" in fresh) == (False, True)
    tagged = page(client, "/console/kb/?tags=Email")
    assert (draft.title in tagged, "Printer queue" in tagged) == (True, False)
    public = page(client, "/console/kb/?audience=public")
    assert (stale.title in public, draft.title in public) == (True, False)
    nothing = page(client, "/console/kb/?text=zeppelin")
    assert "No article matches." in nothing
    bad = page(client, "/console/kb/?status=lost&text=exchange", 400)
    assert "Select a valid choice" in bad
    assert 'value="exchange"' in bad  # what was typed stays
    assert draft.title not in bad


def test_the_list_is_paged(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kb_views, "PAGE_SIZE", 2)
    for n in range(5):
        write(cast.lena, f"Backup job {n} fails", body="backup job failure")
    client = signed_in(cast.lena)
    first = page(client, "/console/kb/?status=draft")
    assert "Backup job 0" in first
    assert "Backup job 2" not in first
    assert 'href="/console/kb/?status=draft&amp;page=2" rel="next"' in first
    third = page(client, "/console/kb/?status=draft&page=3")
    assert "Backup job 4" in third
    assert 'rel="next"' not in third
    assert 'href="/console/kb/?status=draft&amp;page=2" rel="prev"' in third
    searched = page(client, "/console/kb/?text=backup&page=2")
    assert len(re.findall(r"data-row-link>Backup job", searched)) == 2


def test_the_list_query_count_does_not_grow_with_its_rows(cast: Cast) -> None:
    def count(path: str) -> int:
        client = signed_in(cast.omar)
        client.get(path)  # warm the per-process caches (configuration, vocabulary)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        return len(ctx.captured_queries)

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            a = publish(
                cast,
                write(cast.omar, f"Disk space alert {i}", body="disk space", tags=["disk", f"t{i}"],
                      audience="public", category=None),
            )  # fmt: skip
            services.article_vote(actor=cast.alice, article=a, helpful=True)

    add(2, 0)
    few, few_search = count("/console/kb/"), count("/console/kb/?text=disk+space")
    add(20, 2)
    assert count("/console/kb/") == few
    assert count("/console/kb/?text=disk+space") == few_search


# --- the editor ------------------------------------------------------------------------------


def test_an_agent_writes_a_draft_they_own(cast: Cast) -> None:
    related = write(cast.lena, "Printer drivers")
    client = signed_in(cast.lena)
    form = page(client, "/console/kb/new")
    assert 'aria-keyshortcuts="Control+S Meta+S"' in form
    assert "<kbd>Alt</kbd>+<kbd>P</kbd>" in form  # the shortcuts are listed on the page
    assert '<label for="id_body">' in form
    r = client.post(
        "/console/kb/new",
        editor_data(audience="ACME", review_by="2031-01-31", related=related.slug,
                    note="First cut"),
    )  # fmt: skip
    assert r.status_code == 302
    article = Article.objects.get(title="Printer shows offline")
    assert r["Location"] == f"/console/kb/{article.slug}"
    assert (article.status, article.owner, article.audience, article.organization) == (
        "draft",
        cast.lena,
        "organization",
        cast.acme,
    )
    assert article.review_by == dt.date(2031, 1, 31)
    assert sorted(t.name for t in article.tags.all()) == ["hardware", "printer"]
    assert list(article.related.all()) == [related]
    assert article.versions.get().note == "First cut"
    assert article.source_ticket is None
    shown = page(client, r["Location"])
    assert "Draft saved." in shown
    assert "<h2>Steps</h2>" in shown


def test_bad_input_is_shown_beside_the_field_and_the_text_kept(cast: Cast) -> None:
    client = signed_in(cast.lena)
    body = "## Keep me\n\nEvery word <of> this."
    before = Article.objects.count()
    for data, field, message in (
        (editor_data(title="", body=body), "title", "This field is required."),
        (editor_data(title="x" * 201, body=body), "title", "at most 200 characters"),
        (editor_data(body=body, tags="good, bad tag!"), "tags", "letters, digits, dashes"),
        (editor_data(body=body, related="no-such-article"), "related", "no article"),
        (editor_data(body=body, review_by="31/31/2030"), "review_by", "Enter a valid date."),
        (editor_data(body=body, audience="NOPE"), "audience", "Select a valid choice"),
    ):
        r = client.post("/console/kb/new", data)
        text = r.content.decode()
        assert r.status_code == 400, data
        error = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', text, re.S)
        assert error, (field, text[:3000])
        assert message in html.unescape(error.group(1)), (field, error.group(1))
        assert f'aria-describedby="id_{field}_helptext id_{field}_error"' in text or (
            f'aria-describedby="id_{field}_error"' in text
        )
        assert html.escape(body) in text  # the text as typed
    assert Article.objects.count() == before


def test_the_preview_renders_markdown_through_the_allow_list(cast: Cast) -> None:
    client = signed_in(cast.lena)
    r = client.post("/console/kb/preview", {"body": HOSTILE})
    assert r.status_code == 200
    shown = r.content.decode()
    assert "<h2>Fix</h2>" in shown
    assert "<strong>bold</strong>" in shown
    for bad in (
        "<script",
        "onerror",
        'href="javascript',
        "<iframe",
        "data:text",
        "<form",
        "<input",
    ):
        assert bad not in shown, bad
    assert (
        "Nothing to preview yet"
        in client.post("/console/kb/preview", {"body": ""}).content.decode()
    )
    # an attached image resolves for the article being edited, if the writer may read it
    mine = write(cast.lena, "Mine")
    theirs = write(cast.gus, "Globex's", audience="organization", organization=cast.globex)
    image = "![screen](attachment:the-screen.png)"
    for slug, src in (
        (mine.slug, f'src="/api/v1/kb/articles/{mine.slug}/files/the-screen.png"'),
        (theirs.slug, None),
        ("", None),
    ):
        shown = client.post("/console/kb/preview", {"body": image, "article": slug}).content
        assert 'alt="screen"' in shown.decode(), slug
        assert (src in shown.decode()) if src else ("src=" not in shown.decode()), slug
    too_long = client.post("/console/kb/preview", {"body": "x" * (services.BODY_MAX + 1)})
    assert too_long.status_code == 413
    assert client.get("/console/kb/preview").status_code == 405


def test_the_article_page_shows_the_body_sanitized(cast: Cast) -> None:
    article = write(cast.lena, "<script>alert('title')</script> VPN", body=HOSTILE)
    shown = page(signed_in(cast.lena), f"/console/kb/{article.slug}")
    main = shown.split('<main id="main"', 1)[1]
    assert "<strong>bold</strong>" in main
    for bad in ("<script", "onerror", 'href="javascript', "<iframe", "data:text", "<form action"):
        assert bad not in main, bad
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt; VPN" in main


def test_a_change_saved_meanwhile_is_not_overwritten_and_the_text_is_kept(cast: Cast) -> None:
    article = write(cast.lena, "VPN drops", body="one\ntwo\nthree\n")
    client = signed_in(cast.lena)
    mine = edit_data(client, article, body="one\nTWO (Lena)\nthree\n", note="Lena's fix")
    # the manager saves first
    services.article_update(actor=cast.manager, article=article, body="one\ntwo\n3\n")
    r = client.post(f"/console/kb/{article.slug}/edit", mine)
    assert r.status_code == 409
    text = r.content.decode()
    assert "Someone else saved this article since you opened it." in text
    assert "TWO (Lena)" in text  # what she typed
    assert f'href="/console/kb/{article.slug}/diff?old=1&amp;new=2"' in text
    article.refresh_from_db()
    assert article.body == "one\ntwo\n3\n"  # nothing of hers was written
    # the form now carries the current version: sending it again applies her text
    again = dict(re.findall(r'<input type="hidden" name="(version|base)" value="(\d+)"', text))
    assert again == {"version": str(article.version), "base": "2"}
    r = client.post(f"/console/kb/{article.slug}/edit", mine | again)
    assert r.status_code == 302
    article.refresh_from_db()
    assert article.body == "one\nTWO (Lena)\nthree\n"
    assert article.versions.order_by("-number").first().note == "Lena's fix"  # type: ignore[union-attr]


def test_a_status_change_meanwhile_is_a_conflict_without_a_text_diff(cast: Cast) -> None:
    article = write(cast.lena, "VPN drops")
    client = signed_in(cast.lena)
    mine = edit_data(client, article, body="Better text")
    services.article_transition(actor=cast.lena, article=article, to="in_review")
    r = client.post(f"/console/kb/{article.slug}/edit", mine)
    assert r.status_code == 409
    text = r.content.decode()
    assert "Their change was not to the text" in text
    assert "Better text" in text


def test_who_may_open_the_editor(cast: Cast) -> None:
    article = publish(cast, write(cast.lena, "Printer jams"))
    refused = page(signed_in(cast.lena), f"/console/kb/{article.slug}/edit", 403)
    assert "flag it as outdated" in refused
    assert f"/console/kb/{article.slug}/edit" not in page(
        signed_in(cast.lena), f"/console/kb/{article.slug}"
    )
    assert page(signed_in(cast.manager), f"/console/kb/{article.slug}/edit")
    other = write(cast.omar, "Omar's draft")
    assert page(signed_in(cast.lena), f"/console/kb/{other.slug}/edit", 403)
    # a post is refused too, and what was typed stays on the page
    r = signed_in(cast.lena).post(
        f"/console/kb/{other.slug}/edit",
        edit_data(signed_in(cast.omar), other, body="Lena was here"),
    )
    assert r.status_code == 403
    assert "Lena was here" in r.content.decode()
    other.refresh_from_db()
    assert other.body == "Text."
    services.article_transition(actor=cast.manager, article=article, to="archived")
    assert "restore it as a draft" in page(
        signed_in(cast.manager), f"/console/kb/{article.slug}/edit", 409
    )


# --- from a ticket ---------------------------------------------------------------------------


def resolved_ticket(cast: Cast) -> Ticket:
    ticket = make_ticket(
        cast.omar, cast.acme, cast.alice, subject="Outlook crashes on start",
        description="Outlook closes right after the splash screen.", tier=tier_by_code("L2"),
    )  # fmt: skip
    ticket_services.ticket_comment(actor=cast.alice, ticket=ticket, body="Still broken")
    ticket_services.ticket_comment(
        actor=cast.omar, ticket=ticket, body="Started Outlook with /safe", internal=True
    )
    ticket_services.ticket_comment(actor=cast.omar, ticket=ticket, body="Removed the add-in")
    return ticket_services.ticket_transition(
        actor=cast.omar, ticket=ticket, to_status="resolved", resolution_code="fixed",
        resolution_note="A broken PDF add-in; removing it fixed the start.",
    )  # fmt: skip


def test_an_article_is_written_from_a_ticket_and_records_it(cast: Cast) -> None:
    ticket = resolved_ticket(cast)
    client = signed_in(cast.omar)
    form = page(client, f"/console/kb/new?ticket={ticket.key}")
    assert f'href="/console/tickets/{ticket.key}">{ticket.key}</a> — Outlook crashes on start' in (
        form
    )
    assert 'value="Outlook crashes on start"' in form
    body = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", form, re.S).group(1))  # type: ignore[union-attr]
    assert "## Problem\n\nOutlook closes right after the splash screen." in body
    assert "1. (internal note) Started Outlook with /safe\n2. Removed the add-in" in body
    assert "Still broken" not in body  # the requester's words are not steps
    assert "## Resolution\n\nA broken PDF add-in" in body
    assert f'<input type="hidden" name="source_ticket" value="{ticket.key}"' in form
    r = client.post(
        "/console/kb/new",
        editor_data(title="Outlook crashes: a broken add-in", body=body,
                    source_ticket=ticket.key),
    )  # fmt: skip
    assert r.status_code == 302
    article = Article.objects.get(title="Outlook crashes: a broken add-in")
    assert (article.source_ticket, article.owner, article.status) == (ticket, cast.omar, "draft")
    shown = page(client, r["Location"])
    assert f'<a href="/console/tickets/{ticket.key}">{ticket.key}</a> — Outlook crashes' in shown
    # a reader who cannot open the ticket learns only that there is one
    services.article_transition(actor=cast.omar, article=article, to="in_review")
    hidden = page(signed_in(cast.gus), f"/console/kb/{article.slug}")
    assert ticket.key not in hidden
    assert "a ticket you cannot open" in hidden


def test_another_organizations_ticket_is_refused(cast: Cast) -> None:
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd, subject="Globex secret")
    client = signed_in(cast.lena)  # serves ACME only
    assert client.get(f"/console/kb/new?ticket={theirs.key}").status_code == 404
    assert client.get("/console/kb/new?ticket=NOPE-1").status_code == 404
    r = client.post("/console/kb/new", editor_data(body="My own words", source_ticket=theirs.key))
    assert r.status_code == 400
    text = r.content.decode()
    assert f"The ticket {theirs.key} is not one you can open" in text
    assert "My own words" in text
    assert "Globex secret" not in text
    assert not Article.objects.exists()
    # the form comes back without it: saving again writes the article from no ticket
    assert '<input type="hidden" name="source_ticket" value=""' in text or (
        'name="source_ticket" id="id_source_ticket"' in text
    )
    # and the service refuses it too, whoever calls it
    with pytest.raises(ValidationFailed):
        services.article_create(actor=cast.lena, title="x", source_ticket=theirs)


# --- an article's page: workflow, votes, flags, use ------------------------------------------


def moves(client: Client, article: Article) -> list[str]:
    text = page(client, f"/console/kb/{article.slug}")
    return re.findall(r'<button type="submit" name="to" value="(\w+)"', text)


def move(client: Client, article: Article, to: str, **kw: Any) -> Any:
    article.refresh_from_db()
    data = {"to": to, "version": article.version, "note": ""} | kw
    return client.post(f"/console/kb/{article.slug}/status", data)


def test_agents_send_to_review_and_reviewers_publish(cast: Cast) -> None:
    article = write(cast.lena, "Reset MFA")
    lena, manager = signed_in(cast.lena), signed_in(cast.manager)
    assert moves(lena, article) == ["in_review"]
    assert "Submit for review" in page(lena, f"/console/kb/{article.slug}")
    assert move(lena, article, "in_review", note="ready").status_code == 302
    assert moves(lena, article) == ["draft"]  # withdraw
    assert "Withdraw from review" in page(lena, f"/console/kb/{article.slug}")
    r = move(lena, article, "published")
    assert r.status_code == 403
    assert "Only reviewers" in r.content.decode()
    article.refresh_from_db()
    assert article.status == ArticleStatus.IN_REVIEW
    assert moves(manager, article) == ["draft", "published"]
    assert "Send back to draft" in page(manager, f"/console/kb/{article.slug}")
    r = move(manager, article, "published", note="Checked the steps")
    assert r.status_code == 302
    shown = page(manager, r["Location"])
    assert '<p class="message message-success">Published.</p>' in shown
    article.refresh_from_db()
    assert (article.status, article.reviewer) == ("published", cast.manager)
    assert moves(lena, article) == []
    assert moves(manager, article) == ["draft", "archived"]
    assert "Unpublish" in page(manager, f"/console/kb/{article.slug}")
    # a second tab, still showing the old version, is told instead of overwriting
    stale = {"to": "archived", "version": article.version - 1, "note": ""}
    r = manager.post(f"/console/kb/{article.slug}/status", stale)
    assert r.status_code == 409
    assert "Someone else changed this article" in r.content.decode()
    assert move(manager, article, "archived").status_code == 302
    assert moves(manager, article) == ["draft"]
    assert "Restore as draft" in page(manager, f"/console/kb/{article.slug}")
    r = move(manager, article, "published")  # not from archived
    assert r.status_code == 409
    # the manager's own article needs another reviewer
    own = write(cast.manager, "Manager's article")
    services.article_transition(actor=cast.manager, article=own, to="in_review")
    assert "published" not in moves(manager, own)
    assert move(manager, own, "published").status_code == 403


def test_readers_vote_and_agents_flag_an_article_as_outdated(cast: Cast) -> None:
    article = publish(cast, write(cast.lena, "Wi-Fi certificate", audience="public"))
    omar = signed_in(cast.omar)
    assert omar.post(f"/console/kb/{article.slug}/vote", {"helpful": "yes"}).status_code == 302
    assert "1 helpful, 0 not helpful; your vote: helpful" in page(
        omar, f"/console/kb/{article.slug}"
    )
    assert omar.post(f"/console/kb/{article.slug}/vote", {"helpful": "no"}).status_code == 302
    assert "0 helpful, 1 not helpful; your vote: not helpful" in page(
        omar, f"/console/kb/{article.slug}"
    )
    assert omar.post(f"/console/kb/{article.slug}/vote", {"helpful": "maybe"}).status_code == 400
    r = omar.post(f"/console/kb/{article.slug}/flag", {"comment": "   "})
    assert r.status_code == 400
    assert re.search(r'id="id_comment_error"><li>Say what is out of date.</li>', r.content.decode())
    r = omar.post(f"/console/kb/{article.slug}/flag", {"comment": "The SSID is now <Corp-5G>"})
    assert r.status_code == 302
    flag = ArticleFeedback.objects.get(kind="outdated")
    assert (flag.user, flag.comment) == (cast.omar, "The SSID is now <Corp-5G>")
    # the owner and reviewers see the open flags, others do not
    for reader, sees in ((cast.lena, True), (cast.manager, True), (cast.omar, False)):
        shown = page(signed_in(reader), f"/console/kb/{article.slug}")
        assert ("The SSID is now &lt;Corp-5G&gt;" in shown) is sees, reader
    # a draft takes no votes
    draft = write(cast.lena, "Draft")
    assert (
        signed_in(cast.lena).post(f"/console/kb/{draft.slug}/vote", {"helpful": "yes"}).status_code
        == 404
    )
    assert "Readers vote once the article is published." in page(
        signed_in(cast.lena), f"/console/kb/{draft.slug}"
    )


def test_the_owner_and_reviewers_resolve_open_flags_on_the_article_page(cast: Cast) -> None:
    article = publish(cast, write(cast.lena, "Wi-Fi certificate", audience="public"))
    first = services.article_flag_outdated(actor=cast.omar, article=article, comment="Old SSID")
    second = services.article_flag_outdated(actor=cast.omar, article=article, comment="Old CA")
    path = f"/console/kb/{article.slug}"
    resolve = f"/console/kb/{article.slug}/flags/{first.pk}/resolve"
    # the owner and reviewers get a Resolve button per open flag; other agents neither see
    # the flags nor may resolve them
    lena, omar = signed_in(cast.lena), signed_in(cast.omar)
    shown = page(lena, path)
    assert "Open outdated flags" in shown
    assert shown.count(">Resolve</button>") == 2
    assert f'action="{resolve}"' in shown
    assert ">Resolve</button>" in page(signed_in(cast.manager), path)
    assert ">Resolve</button>" not in page(omar, path)
    refused = omar.post(resolve, {"note": "done"})
    assert refused.status_code == 403
    assert (
        "Only the article&#x27;s owner and reviewers resolve its flags." in refused.content.decode()
    )
    # a note too long is named beside its field, the flag stays open
    long = lena.post(resolve, {"note": "x" * 501})
    assert long.status_code == 400
    assert f'id="flag-{first.pk}-note-error"' in long.content.decode()
    assert ArticleFeedback.objects.get(pk=first.pk).resolved_at is None
    # resolved with a note: gone from the page, the other stays
    done = lena.post(resolve, {"note": "Renamed the SSID"})
    assert done.status_code == 302
    assert done["Location"] == f"{path}#feedback"
    stored = ArticleFeedback.objects.get(pk=first.pk)
    assert (stored.resolved_by, stored.resolution_note) == (cast.lena, "Renamed the SSID")
    shown = page(lena, path)
    assert "Old SSID" not in shown
    assert "Old CA" in shown
    assert "Flag resolved." in shown
    # resolved meanwhile by someone else: said at the top, nothing changes
    again = signed_in(cast.manager).post(resolve, {"note": "me too"})
    assert again.status_code == 409
    assert "This flag is already resolved." in again.content.decode()
    assert ArticleFeedback.objects.get(pk=first.pk).resolution_note == "Renamed the SSID"
    # the list filters on open flags and counts them
    write(cast.lena, "Printer toner")
    flagged = page(lena, "/console/kb/?flags=open")
    assert (article.title in flagged, "Printer toner" in flagged) == (True, False)
    assert "1 open flag<" in flagged
    clean = page(lena, "/console/kb/?flags=none")
    assert (article.title in clean, "Printer toner" in clean) == (False, True)
    assert article.title in page(lena, "/console/kb/?flags=open&text=certificate")
    services.article_flag_resolve(actor=cast.admin, article=article, flag_id=second.pk)
    assert article.title not in page(lena, "/console/kb/?flags=open")


def test_the_article_page_counts_its_use_by_tier(cast: Cast) -> None:
    article = publish(cast, write(cast.lena, "VPN profile", audience="public"))
    at_l1 = make_ticket(cast.lena, cast.acme, cast.alice, tier=tier_by_code("L1"))
    at_l2 = make_ticket(cast.omar, cast.acme, cast.alice, tier=tier_by_code("L2"))
    at_l2b = make_ticket(cast.omar, cast.acme, cast.bob, tier=tier_by_code("L2"))
    globex = make_ticket(cast.omar, cast.globex, cast.gerd, tier=tier_by_code("L1"))
    services.article_use(actor=cast.alice, article=article, ticket=at_l1, kind="suggested")
    for t in (at_l1, at_l2, at_l2b, globex):
        services.article_use(actor=cast.omar, article=article, ticket=t, kind="solved")
    shown = page(signed_in(cast.lena), f"/console/kb/{article.slug}")  # ACME only
    usage = re.search(r'<table class="kb-usage-table">(.*?)</table>', shown, re.S).group(1)  # type: ignore[union-attr]
    rows = dict(re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td>', usage))
    assert rows == {
        "Suggested when the ticket was opened": "L1: 1",
        "Linked by an agent": "0",
        "Solved the ticket": "L1: 1, L2: 2",
    }
    omar = page(signed_in(cast.omar), f"/console/kb/{article.slug}")
    assert "L1: 2, L2: 2" in omar  # he serves GLOBEX too


def test_the_article_page_query_count_does_not_grow(cast: Cast) -> None:
    article = publish(cast, write(cast.lena, "Mailbox full", audience="public", tags=["email"]))

    def count() -> int:
        client = signed_in(cast.lena)
        client.get(f"/console/kb/{article.slug}")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/console/kb/{article.slug}").status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for i in range(6):
        other = write(cast.lena, f"Related {i}")
        services.article_update(actor=cast.admin, article=article,
                                related=[*article.related.all(), other])  # fmt: skip
        services.article_flag_outdated(actor=cast.omar, article=article, comment=f"flag {i}")
        services.article_vote(actor=cast.omar if i % 2 else cast.alice, article=article,
                              helpful=bool(i % 2))  # fmt: skip
    assert count() == before


# --- versions and the diff -------------------------------------------------------------------


def test_versions_and_a_readable_diff_between_any_two(cast: Cast) -> None:
    lines = [f"line {i}" for i in range(1, 21)]
    article = write(cast.lena, "VPN", body="\n".join(lines), note="First")
    changed = [*lines]
    changed[1] = "line two, reworded"
    changed.insert(15, "a new step")
    services.article_update(actor=cast.lena, article=article, body="\n".join(changed),
                            note="Reworded")  # fmt: skip
    services.article_update(actor=cast.manager, article=article, title="VPN drops", note="Title")
    client = signed_in(cast.lena)
    listed = page(client, f"/console/kb/{article.slug}/versions")
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>.*?</tr>", listed, re.S)
    assert rows == ["3", "2", "1"]
    assert "Reworded" in listed
    assert "Manager" in listed  # the author of version 3
    assert f'href="/console/kb/{article.slug}/diff?old=1&amp;new=2"' in listed
    assert re.search(r'<option value="2" selected>Version 2</option>', listed)  # old
    shown = page(client, f"/console/kb/{article.slug}/diff?old=1&new=3")
    assert "1 line added" not in shown
    assert "2 lines added, 1 line removed, title changed." in shown
    assert '<td class="diff-op">\N{MINUS SIGN} removed</td><td><del>line 2</del></td>' in shown
    assert '<td class="diff-op">+ added</td><td><ins>line two, reworded</ins></td>' in shown
    assert '<td class="diff-op">+ added</td><td><ins>a new step</ins></td>' in shown
    assert '<del><span class="visually-hidden">removed: </span>VPN</del>' in shown
    # unchanged runs far from a change are folded, the lines next to one stay
    assert "line 5" in shown
    assert "line 9" not in shown
    assert "unchanged lines …" in shown
    # any two, either way round
    assert "1 line added, 2 lines removed" in page(
        client, f"/console/kb/{article.slug}/diff?old=3&new=1"
    )
    for query in ("old=1&new=9", "old=x&new=1", "new=2", ""):
        bad = page(client, f"/console/kb/{article.slug}/diff?{query}", 400)
        assert "<h1>Versions</h1>" in bad, query
        assert 'class="errorlist"' in bad or "is required" in bad or "valid choice" in bad


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/console/kb/new", {"title": "Forged", "body": "x", "audience": "internal"}),
        ("/console/kb/preview", {"body": "x"}),
        ("/console/kb/csrf-target/edit", {"title": "Forged", "body": "x", "version": "1"}),
        ("/console/kb/csrf-target/status", {"status": "archived", "version": "1"}),
        ("/console/kb/csrf-target/vote", {"helpful": "1"}),
        ("/console/kb/csrf-target/flag", {"comment": "forged"}),
        ("/console/kb/csrf-target/flags/FLAG/resolve", {"note": "forged"}),
    ],
)
def test_every_knowledge_base_post_needs_the_csrf_token(
    cast: Cast, path: str, data: dict[str, str]
) -> None:
    article = services.article_create(
        actor=None, owner=cast.admin, title="CSRF target", slug="csrf-target",
        body="Unchanged", audience="public", status="published",
    )  # fmt: skip
    flag = services.article_flag_outdated(actor=cast.lena, article=article, comment="Old")
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.admin)
    refused = client.post(path.replace("FLAG", str(flag.pk)), data)
    assert refused.status_code == 403
    article.refresh_from_db()
    assert (article.title, article.status, article.version) == ("CSRF target", "published", 1)
    assert not Article.objects.filter(title="Forged").exists()
    assert list(ArticleFeedback.objects.values_list("pk", "resolved_at")) == [(flag.pk, None)]
