"""The knowledge base in the portal, through the test client: suggestions while a ticket is
typed, "this solved my problem" (a deflection, no ticket), the suggestions a ticket
remembers, the article pages and their votes. A requester reads published articles for all
requesters and for their own organization, never internal, tier, draft or another
organization's ones (on SQLite and on PostgreSQL: the search engines differ)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.kb import services
from tierdesk.kb.models import (
    Article,
    ArticleFeedback,
    ArticleUse,
    Audience,
    Deflection,
)
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import tier_by_code

pytestmark = pytest.mark.django_db

SUGGEST = "/portal/kb/suggest"


@dataclass
class Library:
    public: Article  # every requester
    acme: Article  # ACME's requesters
    globex: Article  # GLOBEX's requesters
    internal: Article  # agents only
    l2: Article  # L2 agents and above
    draft: Article  # nobody in the portal

    def hidden_from_alice(self) -> list[Article]:
        return [self.globex, self.internal, self.l2, self.draft]


def _article(cast: Cast, slug: str, title: str, **kw: Any) -> Article:
    return services.article_create(
        actor=None,
        owner=cast.admin,
        title=title,
        slug=slug,
        body=kw.pop("body", f"{title}. Turn the printer off and on, then print a test page."),
        audience=kw.pop("audience", Audience.PUBLIC),
        status=kw.pop("status", "published"),
        **kw,
    )


@pytest.fixture
def library(cast: Cast) -> Library:
    internal = _article(cast, "printer-internal", "Printer spooler restart", audience="internal")
    return Library(
        public=_article(
            cast,
            "printer-offline",
            "Printer shows offline",
            category=category_for_organization(cast.acme, "hardware"),
            related=[internal],
        ),
        acme=_article(
            cast,
            "acme-label-printer",
            "Acme label printer prints blank labels",
            audience="organization",
            organization=cast.acme,
        ),
        globex=_article(
            cast,
            "globex-printer",
            "Globex printer asks for a badge",
            audience="organization",
            organization=cast.globex,
        ),
        internal=internal,
        l2=_article(
            cast,
            "printer-driver-l2",
            "Printer driver repackaging",
            audience="tier",
            min_tier=tier_by_code("L2"),
        ),
        draft=_article(cast, "printer-draft", "Printer draft notes", status="draft"),
    )


def suggested(client: Client, **params: str) -> tuple[list[str], str, str]:
    """The slugs the suggestion fragment offers, the hidden list of shown ids it sends to
    the form (out of band), and the fragment."""
    r = client.post(SUGGEST, params)
    assert r.status_code == 200
    html = r.content.decode()
    slugs = re.findall(r'action="/portal/kb/([\w-]+)/solved"', html)
    shown = re.search(r'<input type="hidden" name="kb_shown" id="kb-shown" value="([^"]*)"', html)
    assert shown is not None, html
    return slugs, shown.group(1), html


# --- suggestions ----------------------------------------------------------------------------


def test_suggestions_offer_only_what_the_requester_may_read(cast: Cast, library: Library) -> None:
    slugs, shown, html = suggested(signed_in(cast.alice), subject="printer", description="")
    assert sorted(slugs) == ["acme-label-printer", "printer-offline"]
    assert sorted(shown.split(",")) == sorted([str(library.public.pk), str(library.acme.pk)])
    assert "<mark>" in html  # the highlighted snippet
    assert 'hx-get="/portal/kb/printer-offline"' in html  # read in place
    slugs, _, _ = suggested(signed_in(cast.gerd), subject="print", description="")  # unfinished
    assert sorted(slugs) == ["globex-printer", "printer-offline"]
    # the description is read too; no hidden title appears anywhere in the fragment
    _, _, html = suggested(signed_in(cast.alice), subject="", description="printer spooler driver")
    for hidden in library.hidden_from_alice():
        assert hidden.title not in html
        assert hidden.slug not in html
    # for requesters only: staff get "not found", visitors the sign-in page
    assert signed_in(cast.lena).post(SUGGEST, {"subject": "printer"}).status_code == 404
    assert Client().post(SUGGEST, {"subject": "printer"}).status_code == 302


def test_what_is_typed_is_posted_never_put_in_an_address(cast: Cast, library: Library) -> None:
    """The description (and the subject) would stay in access logs and the browser's
    history if they were a GET's query: the suggestions take POST only, with the CSRF
    token like every other POST."""
    client = signed_in(cast.alice)
    refused = client.get(SUGGEST, {"subject": "printer", "description": "my password is x"})
    assert refused.status_code == 405
    assert refused["Allow"] == "POST"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(cast.alice)
    assert strict.post(SUGGEST, {"subject": "printer"}).status_code == 403
    token = strict.get("/portal/new").cookies["csrftoken"].value
    sent = strict.post(SUGGEST, {"subject": "printer"}, headers={"X-CSRFToken": token})
    assert sent.status_code == 200
    assert "printer-offline" in sent.content.decode()


def test_empty_short_and_overlong_input_is_answered_without_error(
    cast: Cast, library: Library
) -> None:
    client = signed_in(cast.alice)
    for params in ({}, {"subject": ""}, {"subject": "   "}, {"subject": "pr"}):
        slugs, shown, html = suggested(client, **params)
        assert (slugs, shown) == ([], ""), params
        # nothing typed: nothing said; two letters are too few to search, and it says so
        assert ("No article matches yet." in html) == (params.get("subject") == "pr"), params
    slugs, _, html = suggested(client, subject="printer " * 2000, description="x" * 100_000)
    assert "printer-offline" in slugs
    query = re.search(r'name="query" value="([^"]*)"', html)
    assert query is not None
    assert 0 < len(unescape(query.group(1))) <= 500
    # the shown list keeps earlier ids after the new ones, drops what is not an id, at most 10
    earlier = ",".join(str(i) for i in range(900, 915))
    _, shown, _ = suggested(
        client, subject="printer", kb_shown=f"x,-3,{library.public.pk},{earlier}"
    )
    ids = shown.split(",")
    assert len(ids) == 10
    assert ids[:2] == [str(library.public.pk), str(library.acme.pk)] or ids[:2] == [
        str(library.acme.pk),
        str(library.public.pk),
    ]
    assert ids[2:] == [str(i) for i in range(900, 908)]
    # a subject of markup is text
    _, _, html = suggested(client, subject='printer "><script>alert(1)</script>')
    assert "<script>" not in html


def test_the_new_ticket_form_asks_for_suggestions_while_typing(cast: Cast) -> None:
    client = signed_in(cast.alice)
    page = client.get("/portal/new").content.decode()
    assert 'hx-post="/portal/kb/suggest"' in page
    assert "input changed delay:300ms from:(#id_subject, #id_description)" in page
    assert 'aria-live="polite"' in page
    assert 'name="kb_shown" id="kb-shown" value=""' in page
    assert "load, input" not in page  # nothing typed yet
    # "Open a ticket" from an article brings its subject: suggestions come at once
    page = client.get("/portal/new", {"subject": "Printer shows offline"}).content.decode()
    assert 'value="Printer shows offline"' in page
    assert 'hx-trigger="load, input changed' in page
    assert "Knowledge base</a>" in page  # in the portal's navigation


# --- "this solved my problem" ---------------------------------------------------------------


def test_this_solved_my_problem_records_a_deflection_and_opens_no_ticket(
    cast: Cast, library: Library
) -> None:
    client = signed_in(cast.alice)
    r = client.post("/portal/kb/printer-offline/solved", {"query": "  cannot   print "})
    assert r.status_code == 302
    assert r["Location"] == "/portal/kb/printer-offline/solved"
    page = client.get(r["Location"]).content.decode()
    assert "Glad it helped — no ticket was opened" in page
    assert 'href="/portal/"' in page
    deflection = Deflection.objects.get()
    assert (
        deflection.article,
        deflection.requester,
        deflection.organization,
        deflection.query,
    ) == (
        library.public,
        cast.alice,
        cast.acme,
        "cannot print",
    )
    assert not Ticket.objects.exists()
    # an over-long query is cut, not refused
    client.post("/portal/kb/acme-label-printer/solved", {"query": "printer " * 500})
    assert len(Deflection.objects.get(article=library.acme).query) <= 500
    # what Alice may not read does not exist for her
    for hidden in library.hidden_from_alice():
        assert client.post(f"/portal/kb/{hidden.slug}/solved", {"query": "x"}).status_code == 404
        assert client.get(f"/portal/kb/{hidden.slug}/solved").status_code == 404
    assert client.post("/portal/kb/no-such-article/solved").status_code == 404
    assert client.get("/portal/kb/printer-offline/solved/").status_code == 404
    assert signed_in(cast.lena).post("/portal/kb/printer-offline/solved").status_code == 404
    assert Deflection.objects.count() == 2
    assert not Ticket.objects.exists()


def test_the_portal_forms_need_the_csrf_token(cast: Cast, library: Library) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.alice)
    assert client.post("/portal/kb/printer-offline/solved", {"query": "x"}).status_code == 403
    assert client.post("/portal/kb/printer-offline/vote", {"helpful": "yes"}).status_code == 403
    assert not Deflection.objects.exists()
    assert not ArticleFeedback.objects.exists()
    # with the page's token it goes through
    page = client.get("/portal/kb/printer-offline").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    r = client.post(
        "/portal/kb/printer-offline/vote",
        {"helpful": "yes", "csrfmiddlewaretoken": token.group(1)},
    )
    assert r.status_code == 302


# --- suggestions remembered on the ticket -------------------------------------------------


def _new_ticket(client: Client, cast: Cast, kb_shown: str, subject: str = "Printer") -> Any:
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    return client.post(
        "/portal/new",
        {
            "category": hardware.pk if subject else "",
            "subject": subject,
            "description": "It says offline",
            "urgency": "2",
            "kb_shown": kb_shown,
        },
    )


def test_a_ticket_remembers_the_articles_suggested_and_ignores_bad_ids(
    cast: Cast, library: Library
) -> None:
    client = signed_in(cast.alice)
    bad = [library.globex.pk, library.internal.pk, library.l2.pk, library.draft.pk]
    kb_shown = ",".join(
        [str(library.public.pk), "abc", "-5", "99999999999999999999999", "²", "0"]
        + [str(i) for i in bad]
        + [str(library.acme.pk), str(library.public.pk), "987654"]
    )
    r = _new_ticket(client, cast, kb_shown)
    assert r.status_code == 302
    ticket = Ticket.objects.get()
    uses = ArticleUse.objects.filter(ticket=ticket)
    assert sorted(u.article.slug for u in uses) == ["acme-label-printer", "printer-offline"]
    assert {(u.kind, u.tier.code, u.organization, u.actor) for u in uses} == {  # type: ignore[union-attr]
        ("suggested", "L1", cast.acme, cast.alice)
    }
    # garbage of any length never stands in the way of the ticket
    assert _new_ticket(client, cast, "1," * 50_000 + "<b>", subject="Printer 2").status_code == 302
    assert _new_ticket(client, cast, "", subject="Printer 3").status_code == 302
    assert Ticket.objects.count() == 3
    assert ArticleUse.objects.count() == 2


def test_a_refused_ticket_keeps_the_suggestions_shown(cast: Cast, library: Library) -> None:
    r = _new_ticket(signed_in(cast.alice), cast, f"{library.public.pk},x,{library.acme.pk}", "")
    assert r.status_code == 422
    page = r.content.decode()
    assert f'name="kb_shown" id="kb-shown" value="{library.public.pk},{library.acme.pk}"' in page
    assert not ArticleUse.objects.exists()


# --- the article pages -----------------------------------------------------------------------


def test_an_article_page_shows_the_article_related_ones_and_a_way_to_a_ticket(
    cast: Cast, library: Library
) -> None:
    services.article_update(
        actor=cast.admin, article=library.public, related=[library.internal, library.acme]
    )
    client = signed_in(cast.alice)
    r = client.get("/portal/kb/printer-offline")
    assert r.status_code == 200
    page = r.content.decode()
    assert '<h1 id="kb-title">Printer shows offline</h1>' in page
    assert library.public.body_html in page
    assert "Hardware" in page  # the category
    assert "Updated <time" in page
    assert 'href="/portal/kb/acme-label-printer"' in page  # related, readable
    assert "printer-internal" not in page  # related, but internal
    assert "Was this helpful?" in page
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    assert (
        f'href="/portal/new?subject=Printer%20shows%20offline&amp;category={hardware.pk}"' in page
    )
    assert 'aria-current="page">Knowledge base' in page
    # by id or in capitals: the one address
    assert client.get(f"/portal/kb/{library.public.pk}")["Location"] == "/portal/kb/printer-offline"
    # asked by HTMX (read in place on the new-ticket form): the body only
    r = client.get("/portal/kb/printer-offline", headers={"HX-Request": "true"})
    fragment = r.content.decode()
    assert fragment.lstrip().startswith('<div class="kb-body">')
    assert "<html" not in fragment
    assert 'target="_blank"' in fragment


def test_hidden_articles_are_not_found_like_missing_ones(cast: Cast, library: Library) -> None:
    client = signed_in(cast.alice)
    for hidden in library.hidden_from_alice():
        for path in (f"/portal/kb/{hidden.slug}", f"/portal/kb/{hidden.pk}"):
            r = client.get(path)
            assert r.status_code == 404, path
            assert hidden.title not in r.content.decode()
        r = client.get(f"/portal/kb/{hidden.slug}", headers={"HX-Request": "true"})
        assert r.status_code == 404
    assert client.get("/portal/kb/no-such-article").status_code == 404
    assert signed_in(cast.gerd).get("/portal/kb/acme-label-printer").status_code == 404
    assert signed_in(cast.gerd).get("/portal/kb/globex-printer").status_code == 200
    assert signed_in(cast.lena).get("/portal/kb/printer-offline").status_code == 404  # staff


def test_the_knowledge_base_lists_and_searches_what_the_requester_reads(
    cast: Cast, library: Library
) -> None:
    client = signed_in(cast.alice)
    page = client.get("/portal/kb/").content.decode()
    listed = re.findall(r'href="/portal/kb/([\w-]+)"', page)
    assert sorted(listed) == ["acme-label-printer", "printer-offline"]
    assert '<h2 id="kb-group-1">Hardware</h2>' in page  # grouped by category
    assert "Other</h2>" in page  # no category
    page = client.get("/portal/kb/", {"q": "printer badge spooler driver"}).content.decode()
    found = re.findall(r'<li><a href="/portal/kb/([\w-]+)"', page)
    assert sorted(found) == ["acme-label-printer", "printer-offline"]
    assert "<mark>" in page
    for q in ("x" * 5000, "the and of", "%", "pr"):
        r = client.get("/portal/kb/", {"q": q})
        assert r.status_code == 200, q
        assert "No article matches" in r.content.decode()


def test_a_requester_votes_and_sees_the_recorded_choice(cast: Cast, library: Library) -> None:
    client = signed_in(cast.alice)
    r = client.post("/portal/kb/printer-offline/vote", {"helpful": "yes"})
    assert r["Location"] == "/portal/kb/printer-offline#vote"
    page = client.get("/portal/kb/printer-offline").content.decode()
    assert 'id="vote-yes" name="helpful" value="yes" aria-pressed="true"' in page
    assert "You said it helped" in page
    # with HTMX: the vote's part of the page, the new choice recorded
    r = client.post(
        "/portal/kb/printer-offline/vote", {"helpful": "no"}, headers={"HX-Request": "true"}
    )
    fragment = r.content.decode()
    assert fragment.lstrip().startswith('<section id="vote"')
    assert 'value="no" aria-pressed="true"' in fragment
    assert "You said it did not help" in fragment
    vote = ArticleFeedback.objects.get()
    assert (vote.user, vote.kind, vote.article) == (cast.alice, "not_helpful", library.public)
    # neither yes nor no: said beside the buttons, nothing recorded
    r = client.post("/portal/kb/printer-offline/vote", {"helpful": "maybe"})
    assert r.status_code == 422
    assert "Choose Yes or No." in r.content.decode()
    assert ArticleFeedback.objects.get().kind == "not_helpful"
    for hidden in library.hidden_from_alice():
        assert client.post(f"/portal/kb/{hidden.slug}/vote", {"helpful": "yes"}).status_code == 404
    assert client.get("/portal/kb/printer-offline/vote").status_code == 405
    assert ArticleFeedback.objects.count() == 1


# --- query budget --------------------------------------------------------------------------


def _count(client: Client, path: str, **params: str) -> int:
    send = client.post if path == SUGGEST else client.get
    with CaptureQueriesContext(connection) as ctx:
        assert send(path, params).status_code == 200
    return len(ctx.captured_queries)


def test_the_suggestions_and_the_article_page_query_counts_do_not_grow(
    cast: Cast, library: Library
) -> None:
    client = signed_in(cast.alice)
    # the suggestions: session, user, the configuration token (the typo vocabulary is cached
    # per process under it), the search (on SQLite, and then the snippets of its hits) —
    # however many hits
    _count(client, SUGGEST, subject="badge")  # warm the per-process caches
    one = _count(client, SUGGEST, subject="offline")
    for i in range(8):
        _article(cast, f"more-printer-{i}", f"Printer offline case {i}")
    _count(client, SUGGEST, subject="badge")  # the vocabulary is read again after changes
    five = _count(client, SUGGEST, subject="offline", kb_shown="1,2,3,4,5,6,7,8,9")
    assert five == one <= (5 if connection.vendor == "sqlite" else 4), (one, five)
    # the article page: session, user, the article (with its category), its tags, the
    # related articles, the reader's vote; the list: session, user, the articles, their tags
    few = _count(client, "/portal/kb/printer-offline")
    services.article_update(
        actor=cast.admin,
        article=library.public,
        related=list(Article.objects.filter(slug__startswith="more-printer-")),
        tags=["printer", "offline", "network"],
    )
    services.article_vote(actor=cast.alice, article=library.public, helpful=True)
    many = _count(client, "/portal/kb/printer-offline")
    assert many == few <= 6, (few, many)
    assert _count(client, "/portal/kb/") <= 4
