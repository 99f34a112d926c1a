"""The knowledge base on the agent's ticket page, through Django's test client: the
relevant articles and the panel's search within the agent's scope, "Insert link" and
"Insert text" (what the page offers and what the article endpoint serves), the inserted
articles recorded as linked when the reply is sent, "solved with" at resolve, "Create
article from this ticket", and the panel's queries. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.escalation.services import escalate
from tierdesk.kb import services as kb_services
from tierdesk.kb.models import Article, ArticleUse, Audience
from tierdesk.tickets import services as ticket_services
from tierdesk.tickets.models import Comment, Status, Ticket
from tierdesk.tiers.services import tier_by_code

pytestmark = pytest.mark.django_db


@dataclass
class Kb:
    """Published VPN articles for every audience, and a draft. Who reads which (kb.scope):
    ``public`` everyone; ``acme`` ACME's requesters and the staff serving ACME; ``globex``
    likewise for GLOBEX; ``internal`` all staff; ``l3`` staff of tier L3 (admin) and
    managers; ``draft`` staff only, and it is never a search result."""

    public: Article
    acme: Article
    globex: Article
    internal: Article
    l3: Article
    draft: Article


def _article(
    cast: Cast, slug: str, audience: str, status: str = "published", **kw: object
) -> Article:
    return kb_services.article_create(
        actor=None,
        owner=cast.admin,
        title=kw.pop("title", slug.replace("-", " ").capitalize()),  # type: ignore[arg-type]
        slug=slug,
        body=kw.pop("body", f"## Steps\n\n1. Check the VPN client ({slug}).\n"),  # type: ignore[arg-type]
        audience=audience,
        status=status,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def kb(cast: Cast) -> Kb:
    return Kb(
        public=_article(
            cast,
            "vpn-drops",
            Audience.PUBLIC,
            title="VPN drops [every hour]",
            body="## Steps\n\n1. Reconnect the VPN.\n2. Restart the laptop.\n",
        ),
        acme=_article(cast, "acme-vpn-profile", Audience.ORGANIZATION, organization=cast.acme),
        globex=_article(
            cast, "globex-vpn-profile", Audience.ORGANIZATION, organization=cast.globex
        ),
        internal=_article(cast, "vpn-gateway-runbook", Audience.INTERNAL),
        l3=_article(cast, "vpn-firmware-recovery", Audience.TIER, min_tier=tier_by_code("L3")),
        draft=_article(cast, "vpn-draft", Audience.PUBLIC, status="draft"),
    )


@pytest.fixture
def ticket(cast: Cast, kb: Kb) -> Ticket:
    return make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops every hour")


def _panel(page: str) -> str:
    """The "Relevant articles" section of a ticket page."""
    found = re.search(r'<section aria-labelledby="tkb-title".*?</section>', page, re.S)
    assert found, "no knowledge base panel"
    return found.group(0)


def _titles(fragment: str) -> set[str]:
    return {
        html.unescape(t)
        for t in re.findall(r'data-tkb-insert="link"[^>]*data-tkb-title="([^"]*)"', fragment)
    }


def _page(client: Client, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, r.status_code
    return r.content.decode()


def _fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.get(pk=ticket.pk)


# --- what the panel shows ------------------------------------------------------------------


def test_an_l1_agent_sees_the_articles_of_their_scope_only(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    panel = _panel(_page(signed_in(cast.lena), f"/console/tickets/{ticket.key}"))
    # lena: L1, serves ACME only — not GLOBEX's article, not the L3 one, never a draft
    assert _titles(panel) == {
        "VPN drops [every hour]",
        "Acme vpn profile",
        "Vpn gateway runbook",
    }
    for hidden in (kb.globex, kb.l3, kb.draft):
        assert hidden.slug not in panel
    assert "<mark>" in panel  # the search's snippets, highlighted


def test_staff_who_serve_more_or_rank_higher_see_more(cast: Cast, kb: Kb, ticket: Ticket) -> None:
    omar = _titles(_panel(_page(signed_in(cast.omar), f"/console/tickets/{ticket.key}")))
    assert "Globex vpn profile" in omar  # omar serves GLOBEX too
    assert "Vpn firmware recovery" not in omar  # an L2 agent: not L3's
    admin = _titles(_panel(_page(signed_in(cast.admin), f"/console/tickets/{ticket.key}")))
    assert "Vpn firmware recovery" in admin


def test_insert_link_points_requesters_to_the_portal_and_agents_to_the_console(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    panel = _panel(_page(signed_in(cast.lena), f"/console/tickets/{ticket.key}"))

    def button(slug: str) -> str:
        found = re.search(rf'<button[^>]*data-tkb-insert="link"[^>]*/{slug}\)"[^>]*>', panel)
        assert found, slug
        return html.unescape(found.group(0))

    public = button("vpn-drops")
    # the title's brackets are escaped: the Markdown link stays one link
    assert (
        'data-tkb-link="[VPN drops \\[every hour\\]](http://testserver/portal/kb/vpn-drops)"'
        in public
    )
    assert 'data-tkb-public="1"' in public
    acme = button("acme-vpn-profile")  # ACME's requesters read it: alice may open it
    assert "http://testserver/portal/kb/acme-vpn-profile" in acme
    assert 'data-tkb-public="1"' in acme
    internal = button("vpn-gateway-runbook")
    assert "(http://testserver/console/kb/vpn-gateway-runbook)" in internal
    assert 'data-tkb-public="0"' in internal
    assert "For agents only: it can go into an internal note, not a reply." in panel
    # every result has "Insert text", fetched from the article endpoint
    assert panel.count('data-tkb-insert="text"') == 3
    assert f'data-tkb-source="/console/tickets/{ticket.key}/kb/{kb.public.pk}"' in panel


def test_another_organizations_article_is_for_internal_notes_on_this_ticket(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    panel = _panel(_page(signed_in(cast.omar), f"/console/tickets/{ticket.key}"))
    globex = re.search(r'<button[^>]*data-tkb-insert="link"[^>]*globex-vpn-profile\)"[^>]*>', panel)
    assert globex
    assert 'data-tkb-public="0"' in globex.group(0)
    assert "For GLOBEX&#x27;s requesters only: it can go into an internal note" in panel


def test_the_search_box_asks_for_a_fragment_in_the_same_scope(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    path = f"/console/tickets/{ticket.key}/kb"
    lena = signed_in(cast.lena)
    found = _page(lena, f"{path}?q=profile")
    assert _titles(found) == {"Acme vpn profile"}
    assert "<html" not in found  # a fragment
    assert "No published article matches “printer toner”." in _page(lena, f"{path}?q=printer+toner")
    assert _titles(_page(lena, f"{path}?q=")) == _titles(
        _panel(_page(lena, f"/console/tickets/{ticket.key}"))
    )
    assert _titles(_page(signed_in(cast.omar), f"{path}?q=profile")) == {
        "Acme vpn profile",
        "Globex vpn profile",
    }
    # an agent who does not serve ACME finds no ticket, let alone its articles
    assert signed_in(cast.gus).get(f"{path}?q=vpn").status_code == 404
    assert signed_in(cast.alice).get(f"{path}?q=vpn").status_code == 404
    # the search without JavaScript: the ticket page with ?q=
    assert _titles(_panel(_page(lena, f"/console/tickets/{ticket.key}?q=runbook"))) == {
        "Vpn gateway runbook"
    }


def test_the_article_endpoint_serves_markdown_within_the_agents_scope(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    lena = signed_in(cast.lena)
    base = f"/console/tickets/{ticket.key}/kb"
    r = lena.get(f"{base}/{kb.public.pk}")
    assert r.status_code == 200
    assert r.json() == {
        "id": kb.public.pk,
        "slug": "vpn-drops",
        "title": "VPN drops [every hour]",
        "body": "## Steps\n\n1. Reconnect the VPN.\n2. Restart the laptop.\n",
        "link": "[VPN drops \\[every hour\\]](http://testserver/portal/kb/vpn-drops)",
        "for_requester": True,
    }
    assert lena.get(f"{base}/{kb.internal.pk}").json()["for_requester"] is False
    for hidden in (kb.globex, kb.l3):  # not lena's to read: as if missing
        assert lena.get(f"{base}/{hidden.pk}").status_code == 404
    assert lena.get(f"{base}/999999").status_code == 404
    assert signed_in(cast.omar).get(f"{base}/{kb.globex.pk}").json()["for_requester"] is False
    assert signed_in(cast.gus).get(f"{base}/{kb.public.pk}").status_code == 404  # not his ticket


# --- a reply carries its articles -----------------------------------------------------------


def _reply(
    client: Client, ticket: Ticket, *ids: object, internal: bool = False, body: str = "See it."
) -> Any:
    data: dict[str, object] = {
        "version": _fresh(ticket).version,
        "body": body,
        "kb_articles": [str(i) for i in ids],
    }
    if internal:
        data["internal"] = "on"
    return client.post(f"/console/tickets/{ticket.key}/comment", data)


def _uses(ticket: Ticket, kind: str) -> set[tuple[str, str | None]]:
    return {
        (u.article.slug, u.tier.code if u.tier else None)
        for u in ArticleUse.objects.filter(ticket=ticket, kind=kind).select_related(
            "article", "tier"
        )
    }


def test_a_reply_records_its_articles_as_linked_and_ignores_the_rest(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    lena = signed_in(cast.lena)
    # readable ids, a repeat, words, an id that does not exist, articles lena may not read
    # (GLOBEX's, L3's): the latter are not hers to record, and say nothing about them; and a
    # draft, which she reads but which is not yet an answer to give
    r = _reply(
        lena,
        ticket,
        kb.public.pk,
        kb.acme.pk,
        kb.public.pk,
        "abc",
        "",
        -3,
        999999,
        kb.globex.pk,
        kb.l3.pk,
        kb.draft.pk,
    )
    assert r.status_code == 302
    assert _uses(ticket, "linked") == {("vpn-drops", "L1"), ("acme-vpn-profile", "L1")}
    assert Comment.objects.get(ticket=ticket).is_internal is False
    # the page marks them, and lists them under "Articles used"
    page = _page(lena, f"/console/tickets/{ticket.key}")
    assert "Linked</span>" in _panel(page)
    used = re.search(r'<section aria-labelledby="tkb-used-title".*?</section>', page, re.S)
    assert used
    assert "VPN drops [every hour]" in html.unescape(used.group(0))
    # sending the same article again records nothing new
    assert _reply(lena, ticket, kb.public.pk).status_code == 302
    assert ArticleUse.objects.filter(ticket=ticket, kind="linked").count() == 2


def test_a_public_reply_may_not_carry_an_article_the_requester_cannot_open(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    """Decided: refused (422) with the reason beside the list and everything kept, not
    sent without the record: the article's link or text is most likely in the reply."""
    lena = signed_in(cast.lena)
    r = _reply(lena, ticket, kb.public.pk, kb.internal.pk, body="Per the runbook: restart gw-2")
    assert r.status_code == 422
    page = html.unescape(r.content.decode())
    assert (
        "The requester cannot open “Vpn gateway runbook”, so a public reply may not carry it: "
        "send this as an internal note, or take it out of the text and untick it here."
    ) in page
    assert "Per the runbook: restart gw-2</textarea>" in page  # what was typed is kept
    for article in (kb.public, kb.internal):  # and both still ticked
        assert (
            f'name="kb_articles" value="{article.pk}" id="tkb-article-{article.pk}" checked' in page
        )
    assert not Comment.objects.filter(ticket=ticket).exists()
    assert not ArticleUse.objects.filter(ticket=ticket).exists()
    # another organization's article, for a requester of this one: refused too
    omar = signed_in(cast.omar)
    assert _reply(omar, ticket, kb.globex.pk).status_code == 422
    # as an internal note, both go
    assert _reply(lena, ticket, kb.internal.pk, internal=True).status_code == 302
    assert _reply(omar, ticket, kb.globex.pk, internal=True).status_code == 302
    assert _uses(ticket, "linked") == {("vpn-gateway-runbook", "L1"), ("globex-vpn-profile", "L1")}


def test_a_refused_reply_records_no_article(cast: Cast, kb: Kb, ticket: Ticket) -> None:
    r = _reply(signed_in(cast.lena), ticket, kb.public.pk, body="")
    assert r.status_code == 422
    assert not ArticleUse.objects.exists()


# --- resolving with "solved with" -----------------------------------------------------------


def _resolve(client: Client, ticket: Ticket, *ids: object, version: int | None = None) -> Any:
    return client.post(
        f"/console/tickets/{ticket.key}/resolve",
        {
            "version": version or _fresh(ticket).version,
            "resolution_code": "fixed",
            "resolution_note": "Reconnected the VPN.",
            "solved_with": [str(i) for i in ids],
        },
    )


def test_the_resolve_form_offers_the_used_and_the_relevant_articles(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    kb_services.article_use(actor=cast.alice, article=kb.public, ticket=ticket, kind="suggested")
    page = html.unescape(_page(signed_in(cast.lena), f"/console/tickets/{ticket.key}"))
    form = re.search(r"<legend>Solved with.*?</fieldset>", page, re.S)
    assert form
    offered = re.findall(r'name="solved_with" value="(\d+)"', form.group(0))
    assert set(offered) == {str(a.pk) for a in (kb.public, kb.acme, kb.internal)}
    assert offered[0] == str(kb.public.pk)  # the suggested one first
    assert "Suggested to the requester" in page


def test_resolving_records_solved_with_at_the_tier_of_the_ticket(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    escalate(actor=cast.lena, ticket=_fresh(ticket), reason="needs L2", handoff_note="restarted")
    omar = signed_in(cast.omar)
    # a stale form: refused, and nothing recorded (one transaction)
    r = _resolve(omar, ticket, kb.public.pk, version=1)
    assert r.status_code == 409
    assert not ArticleUse.objects.exists()
    assert _fresh(ticket).status != Status.RESOLVED
    r = _resolve(omar, ticket, kb.public.pk, kb.internal.pk, "x", 999999, kb.l3.pk)
    assert r.status_code == 302
    assert _fresh(ticket).status == Status.RESOLVED
    assert _uses(ticket, "solved") == {("vpn-drops", "L2"), ("vpn-gateway-runbook", "L2")}
    page = html.unescape(_page(omar, r["Location"]))
    assert "Resolved, solved with “VPN drops [every hour]”, “Vpn gateway runbook”." in page


def test_resolving_without_articles_records_none(cast: Cast, kb: Kb, ticket: Ticket) -> None:
    assert _resolve(signed_in(cast.lena), ticket).status_code == 302
    assert _fresh(ticket).status == Status.RESOLVED
    assert not ArticleUse.objects.exists()


# --- "Create article from this ticket" ------------------------------------------------------


def test_resolved_and_closed_tickets_offer_create_article(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    lena = signed_in(cast.lena)
    button = f'href="/console/kb/new?ticket={ticket.key}">Create article from this ticket</a>'
    assert button not in _page(lena, f"/console/tickets/{ticket.key}")
    ticket_services.ticket_transition(
        actor=cast.lena,
        ticket=_fresh(ticket),
        to_status="resolved",
        resolution_code="fixed",
        resolution_note="ok",
    )
    page = _page(lena, f"/console/tickets/{ticket.key}")
    assert button in page
    assert 'data-tkb-insert="link"' in page  # a resolved ticket still takes replies
    ticket_services.ticket_transition(actor=cast.lena, ticket=_fresh(ticket), to_status="closed")
    page = _page(lena, f"/console/tickets/{ticket.key}")
    assert button in page
    assert 'data-tkb-insert="link"' not in page  # no reply form, nothing to insert into
    assert _titles(_panel(page)) == set()
    assert "Acme vpn profile" in _panel(page)  # the articles are still listed


# --- queries ------------------------------------------------------------------------------


# A search that finds something: one statement on PostgreSQL; on SQLite the ranking, then the
# snippets of what it found (kb.search.search).
SEARCH_STATEMENTS = {"sqlite": 2, "postgresql": 1}


def _count(client: Client, path: str) -> list[str]:
    """The SQL of one GET of ``path``, after a first one that refills the configuration
    caches (a new article moves the configuration token: the search's vocabulary)."""
    assert client.get(path).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_the_panel_takes_the_same_queries_however_many_articles_it_shows(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    """The panel's queries (console.py, _kb_panel): two for the agent's scope and one for
    the search (kb.queries), one for the articles shown with their uses on the ticket —
    and, only when the ticket used articles the search did not return, three to check the
    agent may read those (kb.queries.article_scope)."""
    lena = signed_in(cast.lena)
    path = f"/console/tickets/{ticket.key}"
    base = len(_count(lena, path))
    for i in range(6):
        _article(cast, f"vpn-extra-{i}", Audience.PUBLIC)
    assert len(_count(lena, path)) == base  # five results instead of three
    for article in (kb.public, kb.acme, kb.internal):
        kb_services.article_use(actor=cast.lena, article=article, ticket=ticket, kind="linked")
    assert len(_count(lena, path)) == base
    other = _article(cast, "printer-toner", Audience.PUBLIC)  # used, and no VPN article
    kb_services.article_use(actor=cast.lena, article=other, ticket=ticket, kind="solved")
    with_uses = len(_count(lena, path))
    assert with_uses == base + 3
    for i in range(4):
        more = _article(cast, f"printer-{i}", Audience.INTERNAL)
        kb_services.article_use(actor=cast.lena, article=more, ticket=ticket, kind="linked")
    assert len(_count(lena, path)) == with_uses
    # The search box's fragment: 1 the session, 2 the user, 3 the configuration token,
    # 4 the ticket, 5-6 the scope, 7 the search (and its snippets, on SQLite), then the
    # articles with their uses, and the scope again (three) for the used articles the
    # search did not return.
    fragment = _count(lena, f"{path}/kb?q=vpn")
    assert len(fragment) == 10 + SEARCH_STATEMENTS[connection.vendor], "\n".join(fragment)


def test_the_panel_hides_used_articles_the_agent_may_not_read(
    cast: Cast, kb: Kb, ticket: Ticket
) -> None:
    kb_services.article_use(actor=cast.admin, article=kb.l3, ticket=ticket, kind="solved")
    kb_services.article_use(actor=cast.omar, article=kb.globex, ticket=ticket, kind="linked")
    lena = _page(signed_in(cast.lena), f"/console/tickets/{ticket.key}")
    for hidden in ("vpn-firmware-recovery", "globex-vpn-profile"):
        assert hidden not in lena
    omar = _page(signed_in(cast.omar), f"/console/tickets/{ticket.key}")
    assert "globex-vpn-profile" in omar
    assert "vpn-firmware-recovery" not in omar
