"""What the console's article pages ask of the knowledge base: which workflow moves and
edits to offer (always the same answer as the services give), the source ticket of an
article written from one, the latest text version, votes, open "outdated" flags and the
use on tickets by tier, each within what the reader may see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import DomainError, ValidationFailed
from tierdesk.core.models import User
from tierdesk.kb import queries, services
from tierdesk.kb.models import Article, ArticleStatus
from tierdesk.kb.scope import scope_for
from tierdesk.tiers.services import tier_by_code

pytestmark = pytest.mark.django_db


class Undo(Exception):
    pass


def works(service: Callable[..., Any], **kwargs: Any) -> bool:
    """Whether ``service(**kwargs)`` succeeds; whatever it wrote is rolled back."""
    try:
        with transaction.atomic():
            service(**kwargs)
            raise Undo
    except Undo:
        return True
    except DomainError:
        return False


def at(cast: Cast, status: str) -> Article:
    """Lena's article, moved to ``status`` (by her and the admin)."""
    article = services.article_create(actor=cast.lena, title=f"Article {status}", audience="public")
    path = {
        "draft": [],
        "in_review": ["in_review"],
        "published": ["in_review", "published"],
        "archived": ["archived"],
    }[status]
    for to in path:
        article = services.article_transition(actor=cast.admin, article=article, to=to)
    return article


def test_the_offered_moves_and_edits_are_the_ones_the_services_allow(cast: Cast) -> None:
    readers: list[User] = [cast.lena, cast.omar, cast.manager, cast.admin]
    for status in ArticleStatus.values:
        article = at(cast, status)
        for reader in readers:
            offered = services.transitions_for(actor=reader, article=article)
            allowed = [
                to
                for to in ArticleStatus.values
                if to != status
                and works(services.article_transition, actor=reader, article=article, to=to)
            ]
            assert offered == allowed, (status, reader.email)
            editable = works(services.article_update, actor=reader, article=article, body="changed")
            assert services.may_edit(actor=reader, article=article) is editable, (
                status,
                reader.email,
            )
    # spot checks of the rules themselves
    draft = at(cast, "draft")
    assert services.transitions_for(actor=cast.lena, article=draft) == ["in_review"]
    review = at(cast, "in_review")
    assert services.transitions_for(actor=cast.lena, article=review) == ["draft"]
    assert services.transitions_for(actor=cast.manager, article=review) == ["draft", "published"]
    assert services.transitions_for(actor=cast.omar, article=review) == []


def test_an_article_records_only_a_ticket_its_writer_may_open(cast: Cast) -> None:
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd)
    with pytest.raises(ValidationFailed) as refused:
        services.article_create(actor=cast.lena, title="From Globex", source_ticket=theirs)
    assert refused.value.errors[0].field == "source_ticket"
    assert not Article.objects.exists()
    made = services.article_create(actor=cast.omar, title="From Globex", source_ticket=theirs)
    assert made.source_ticket == theirs


def test_draft_from_ticket_is_written_from_the_staff_side_of_the_ticket(cast: Cast) -> None:
    from tierdesk.tickets import services as ticket_services

    ticket = make_ticket(
        cast.omar, cast.acme, cast.alice, subject="Printer offline", description="Since 9:00"
    )
    ticket_services.ticket_comment(actor=cast.alice, ticket=ticket, body="Please hurry")
    ticket_services.ticket_comment(actor=cast.omar, ticket=ticket, body="Power-cycled it")
    draft = queries.draft_from_ticket(actor=cast.omar, ticket=ticket)
    assert draft.title == "Printer offline"
    assert draft.body == (
        "## Problem\n\nSince 9:00\n\n## Steps\n\n1. Power-cycled it\n\n"
        "## Resolution\n\n_Describe the fix._\n"
    )
    assert (draft.audience, draft.source_ticket) == ("internal", ticket)


def test_text_version_votes_flags_and_a_search_narrowed_to_ids(cast: Cast) -> None:
    article = at(cast, "published")
    assert queries.text_version(article) == 1
    services.article_update(actor=cast.admin, article=article, body="two")
    services.article_update(actor=cast.admin, article=article, tags=["x"])  # not the text
    assert queries.text_version(article) == 2
    services.article_vote(actor=cast.alice, article=article, helpful=True)
    services.article_vote(actor=cast.bob, article=article, helpful=False)
    services.article_vote(actor=cast.omar, article=article, helpful=False)
    assert queries.article_votes(actor=cast.omar, article=article) == queries.Votes(
        1, 2, "not_helpful"
    )
    assert queries.article_votes(actor=cast.lena, article=article).mine is None
    services.article_flag_outdated(actor=cast.omar, article=article, comment="Old screenshots")
    for reader, sees in ((cast.lena, 1), (cast.manager, 1), (cast.admin, 1), (cast.omar, 0)):
        assert len(queries.outdated_flags(actor=reader, article=article)) == sees, reader.email
    other = at(cast, "draft")
    listed = queries.article_list(
        actor=cast.lena, filters=queries.ArticleFilters(ids=[other.pk, 10**9])
    )
    assert listed == [other]
    assert queries.article_list(actor=cast.lena, filters=queries.ArticleFilters(ids=[])) == []


def test_usage_counts_by_tier_within_the_readers_organizations(cast: Cast) -> None:
    article = at(cast, "published")
    acme_l1 = make_ticket(cast.lena, cast.acme, cast.alice, tier=tier_by_code("L1"))
    acme_l2 = make_ticket(cast.omar, cast.acme, cast.alice, tier=tier_by_code("L2"))
    globex_l2 = make_ticket(cast.omar, cast.globex, cast.gerd, tier=tier_by_code("L2"))
    for ticket in (acme_l1, acme_l2, globex_l2):
        services.article_use(actor=cast.omar, article=article, ticket=ticket, kind="solved")
    services.article_use(actor=cast.omar, article=article, ticket=acme_l2, kind="linked")
    assert queries.usage_counts(actor=cast.lena, article=article) == {
        "suggested": [],
        "linked": [("L2", 1)],
        "solved": [("L1", 1), ("L2", 1)],
    }
    assert queries.usage_counts(actor=cast.admin, article=article)["solved"] == [
        ("L1", 1),
        ("L2", 2),
    ]
    assert queries.usage_counts(actor=cast.outsider, article=article)["solved"] == []


def test_a_draft_from_a_ticket_is_internal_and_marks_internal_notes(cast: Cast) -> None:
    from tierdesk.tickets import services as tickets
    from tierdesk.tiers.services import category_create

    own = category_create(
        actor=cast.admin,
        name="Acme ERP",
        slug="acme-erp",
        organization=cast.acme,
        default_tier=tier_by_code("L1"),
    )
    ticket = make_ticket(
        cast.alice, cast.acme, cast.alice, subject="ERP login loops", category=own,
        description="The ERP asks for the password again and again.",
    )  # fmt: skip
    tickets.ticket_comment(actor=cast.alice, ticket=ticket, body="Still broken")
    tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Cleared the cookies")
    tickets.ticket_comment(
        actor=cast.lena, ticket=ticket, body="The SSO cert expired", internal=True
    )
    draft = queries.draft_from_ticket(actor=cast.lena, ticket=ticket)
    assert draft.audience == "internal"
    assert draft.category is None  # Acme's own category is for Acme's articles
    assert draft.title == "ERP login loops"
    assert "The ERP asks for the password again and again." in draft.body
    assert "1. Cleared the cookies\n2. (internal note) The SSO cert expired" in draft.body
    assert "Still broken" not in draft.body  # the requester's words are not steps
    # what it proposes is what an agent may save
    article = services.article_create(
        actor=cast.lena,
        title=draft.title,
        body=draft.body,
        category=draft.category,
        source_ticket=ticket,
    )
    assert (article.audience, article.source_ticket) == ("internal", ticket)


def test_the_ticket_pages_reads_come_from_kb_queries_within_the_readers_scope(
    cast: Cast,
) -> None:
    """What the ticket page's panel shows (console.py only renders it): the search's hits and
    the articles used on the ticket, each with whether the ticket's requester may open it
    and its uses there; articles used on the ticket that the reader may not read are left
    out, and only published ones go into a reply."""

    def published(slug: str, **kw: Any) -> Article:
        return services.article_create(
            actor=None, owner=cast.admin, title=f"Printer {slug}", slug=slug,
            body="Printer queue stuck: restart the spooler.", status="published", **kw,
        )  # fmt: skip

    public = published("public", audience="public")
    internal = published("internal", audience="internal")
    globex = published("globex", audience="organization", organization=cast.globex)
    l2 = published("l2", audience="tier", min_tier=tier_by_code("L2"))
    draft = services.article_create(actor=cast.lena, title="Printer draft", audience="public")
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="Printer queue stuck")
    services.article_use(actor=cast.alice, article=public, ticket=ticket, kind="suggested")
    for article in (public, globex, l2):
        services.article_use(actor=cast.admin, article=article, ticket=ticket, kind="linked")

    found = queries.ticket_kb(actor=cast.lena, ticket=ticket, limit=5)  # L1, ACME only
    assert {h.slug for h in found.hits} == {"public", "internal"}
    assert [a.slug for a in found.articles.values()] == ["internal", "public"]  # by title
    shown = found.articles[public.pk]
    assert shown.for_requester  # type: ignore[attr-defined]
    assert (shown.used_suggested, shown.used_linked, shown.used_solved) == (True, True, False)  # type: ignore[attr-defined]
    assert not found.articles[internal.pk].for_requester  # type: ignore[attr-defined]
    omar = queries.ticket_kb(actor=cast.omar, ticket=ticket, query="spoo")  # L2, both orgs
    assert {h.slug for h in omar.hits} == {"public", "internal", "globex", "l2"}
    assert not omar.articles[globex.pk].for_requester  # type: ignore[attr-defined]

    ids = [draft.pk, l2.pk, public.pk, internal.pk]
    assert [a.slug for a in queries.ticket_articles(actor=cast.lena, ticket=ticket, ids=ids)] == [
        "public",
        "internal",
    ]
    assert queries.ticket_articles(actor=cast.lena, ticket=ticket, ids=[]) == []
    assert queries.requester_scope(ticket) == scope_for(cast.alice)
