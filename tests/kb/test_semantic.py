"""Semantic re-ranking with the extra installed — on SQLite and on PostgreSQL: the worker
and `tierdesk kb embed` keep the embeddings current, re-ranking brings up the article that
means what was asked, and it never widens what a reader may see."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from django.conf import settings

from tests.conftest import Cast
from tierdesk.cli import main
from tierdesk.core import clock
from tierdesk.core.models import User
from tierdesk.kb import queries, semantic, services, tasks
from tierdesk.kb.models import Article, ArticleEmbedding
from tierdesk.tiers.services import tier_by_code

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not semantic.available(),
        reason="the semantic extra is not installed (pip install --no-deps -r "
        "requirements/semantic.lock)",
    ),
]

# "computer won't turn on": full text matches "computer" and "turn"; the laptop that does
# not power up is what the requester means.
QUERY = "computer won't turn on"
LEXICAL = {
    "bluetooth": ("Turn on Bluetooth on your computer", "Open Settings, Bluetooth and "
                  "devices, and switch Bluetooth on to pair a headset or a mouse."),
    "notifications": ("Turn off notifications on your computer", "Settings, System, "
                      "Notifications: turn them off for apps that interrupt you."),
    "rename": ("Rename your computer", "Settings, System, About, Rename this PC. It "
               "restarts to take the new name."),
}  # fmt: skip
DEAD_LAPTOP = (
    "If your {word} shows no lights and the screen stays dark when you press the power "
    "button: plug in the charger, wait 15 minutes, then hold the power button for 30 "
    "seconds and try again. Still dead? Open a ticket."
)


@pytest.fixture(autouse=True)
def _fresh_vectors(settings: Any) -> Iterator[None]:
    # The searching process keeps the vectors it read; rolled-back rows' ids come again.
    settings.KB_SEMANTIC = None  # on when installed, whatever the environment says
    semantic.forget()
    yield
    semantic.forget()


def article(title: str, body: str, **kw: Any) -> Article:
    kw.setdefault("audience", "public")
    kw.setdefault("status", "published")
    return services.article_create(actor=None, owner=User.objects.get(role="admin"),
                                   title=title, body=body, **kw)  # fmt: skip


def lexical_articles() -> list[Article]:
    return [article(title, body, tags=["windows"]) for title, body in LEXICAL.values()]


def slugs(actor: User, text: str = QUERY, **kw: Any) -> list[str]:
    return [h.slug for h in queries.article_search(actor=actor, text=text, **kw)]


def embed_now() -> None:
    """What the worker does each minute (the next minute: one run per tick)."""
    now = clock.now() + dt.timedelta(minutes=len(ArticleEmbedding.objects.all()) + 1)
    with clock.frozen_at(now):
        tasks.embeddings_tick.call_local()


def test_the_worker_embeds_an_article_after_it_changes(cast: Cast) -> None:
    doc = article("Laptop does not power up", DEAD_LAPTOP.format(word="laptop"), tags=["power"])
    assert semantic.stale_ids() == [doc.pk]
    embed_now()
    stored = ArticleEmbedding.objects.get(article=doc)
    text = semantic.article_text(doc.title, ["power"], doc.body_text)
    assert (stored.model, stored.content_hash, stored.article_version) == (
        semantic.MODEL_NAME,
        semantic.text_hash(text),
        doc.version,
    )
    assert bytes(stored.vector) == semantic.embed([text])[0].astype("<f4").tobytes()
    assert semantic.stale_ids() == []

    # A new text: a new vector, by the worker (the request only made it stale).
    doc = services.article_update(actor=cast.admin, article=doc, title="Laptop is dead")
    assert semantic.stale_ids() == [doc.pk]
    assert ArticleEmbedding.objects.get(article=doc).pk == stored.pk
    embed_now()
    changed = ArticleEmbedding.objects.get(article=doc)
    assert changed.content_hash != stored.content_hash
    assert bytes(changed.vector) != bytes(stored.vector)

    # Only the status changed: the vector is kept, noted at the article's version.
    doc = services.article_transition(actor=cast.admin, article=doc, to="draft")
    assert semantic.stale_ids() == [doc.pk]
    assert semantic.refresh() == semantic.Refreshed(embedded=0, unchanged=1)
    kept = ArticleEmbedding.objects.get(article=doc)
    assert (bytes(kept.vector), kept.article_version) == (bytes(changed.vector), doc.version)
    # Off: the worker leaves everything alone.
    services.article_update(actor=cast.admin, article=doc, body="Hold the power button.")
    settings.KB_SEMANTIC = False
    embed_now()
    assert semantic.stale_ids() == [doc.pk]


def test_embeddings_now_takes_the_whole_backlog_after_this_minutes_run(cast: Cast) -> None:
    made = lexical_articles()
    now = clock.now()
    with clock.frozen_at(now):
        tasks.embeddings_tick.call_local()  # this minute's run: all three
        assert semantic.stale_ids() == []
        services.article_update(actor=cast.admin, article=made[0], title="Bluetooth on")
        tasks.embeddings_tick.call_local()  # the same minute: claimed already, nothing
        assert semantic.stale_ids() == [made[0].pk]
        settings.KB_SEMANTIC = False
        tasks.embeddings_now.call_local()  # off: nothing
        assert semantic.stale_ids() == [made[0].pk]
        settings.KB_SEMANTIC = None
        tasks.embeddings_now.call_local()  # whatever the minute
        assert semantic.stale_ids() == []


def test_kb_embed_makes_the_missing_embeddings_and_all_with_all(cast: Cast) -> None:
    made = lexical_articles()

    def kb_embed(*args: str) -> str:
        result = CliRunner().invoke(main, ["kb", "embed", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "embedded 3 articles (0 unchanged)" in kb_embed()
    assert set(ArticleEmbedding.objects.values_list("article_id", flat=True)) == {
        a.pk for a in made
    }
    assert "embedded 0 articles (0 unchanged)" in kb_embed()
    before = set(ArticleEmbedding.objects.values_list("pk", flat=True))
    assert "embedded 3 articles (0 unchanged)" in kb_embed("--all")
    assert not before & set(ArticleEmbedding.objects.values_list("pk", flat=True))

    settings.KB_SEMANTIC = False
    result = CliRunner().invoke(main, ["kb", "embed"])
    assert result.exit_code == 1
    assert "semantic re-ranking is off (TIERDESK_KB_SEMANTIC=false)" in result.output


def test_re_ranking_brings_up_the_article_that_means_the_query(cast: Cast) -> None:
    lexical_articles()
    # It says "computer" once, in the text: full text ranks it below the titles.
    dead = article("Laptop does not power up", DEAD_LAPTOP.format(word="computer"))
    settings.KB_SEMANTIC = False
    full_text = slugs(cast.alice)
    assert full_text[-1] == dead.slug
    settings.KB_SEMANTIC = None
    assert slugs(cast.alice) == full_text  # no embeddings yet: full text as it was
    semantic.refresh()
    reranked = slugs(cast.alice)
    assert sorted(reranked) == sorted(full_text)
    assert (full_text.index(dead.slug), reranked.index(dead.slug)) == (3, 1)  # last to second
    # A changed article ranks by full text until the worker embedded its new text.
    services.article_update(actor=cast.admin, article=dead, body="Is the computer plugged in?")
    settings.KB_SEMANTIC = False
    full_text = slugs(cast.alice)
    settings.KB_SEMANTIC = None
    assert slugs(cast.alice).index(dead.slug) == full_text.index(dead.slug)
    semantic.refresh()  # the searching process reads the new vector in place of the old
    assert slugs(cast.alice).index(dead.slug) < full_text.index(dead.slug)


def test_an_article_full_text_missed_joins_when_its_meaning_is_close(cast: Cast) -> None:
    lexical_articles()
    # No word of the query in it.
    dead = article("Laptop does not power up", DEAD_LAPTOP.format(word="laptop"))
    article("Connect to the office Wi-Fi", "Choose the network Office, sign in.")
    semantic.refresh()
    reranked = queries.article_search(actor=cast.alice, text=QUERY)
    assert dead.slug in [h.slug for h in reranked]
    joined = next(h for h in reranked if h.slug == dead.slug)
    assert joined.snippet.startswith("If your laptop shows no lights")
    assert "connect-to-the-office-wi-fi" not in [h.slug for h in reranked]  # not close
    assert queries.article_search(actor=cast.alice, text="the and of") == []

    settings.KB_SEMANTIC = False  # the plain path: full text only, with vectors stored
    assert dead.slug not in slugs(cast.alice)
    assert len(slugs(cast.alice)) == 3


def test_re_ranking_never_shows_what_the_reader_may_not_read(cast: Cast) -> None:
    """Articles that mean exactly what is asked, in every audience: each reader gets only
    those their scope allows, re-ranked or not (scope is in the SQL that finds them)."""
    body = DEAD_LAPTOP.format(word="laptop")
    l2 = tier_by_code("L2")
    made = {
        "public": article("Laptop does not power up", body),
        "internal": article("Laptop will not start: board diagnostics", body,
                            audience="internal"),
        "globex": article("Globex laptops that will not start", body,
                          audience="organization", organization=cast.globex),
        "acme": article("Acme laptops that will not start", body,
                        audience="organization", organization=cast.acme),
        "tier": article("Laptop will not start: reflash the firmware", body, audience="tier",
                        min_tier=l2),
        "draft": article("Laptop will not start (draft)", body, status="draft"),
    }  # fmt: skip
    lexical_articles()
    semantic.refresh()
    found = {k: a.slug for k, a in made.items()}

    def sees(actor: User, **kw: Any) -> set[str]:
        got = set(slugs(actor, **kw)) & set(found.values())
        readable = set(
            queries.article_scope(actor).filter(slug__in=got).values_list("slug", flat=True)
        )
        assert got <= readable, got - readable
        return {k for k, s in found.items() if s in got}

    assert sees(cast.alice) == {"public", "acme"}
    assert sees(cast.gerd) == {"public", "globex"}
    assert sees(cast.lena) == {"public", "acme", "internal"}  # L1: no L2 article
    assert sees(cast.omar) == {"public", "acme", "globex", "internal", "tier"}
    assert sees(cast.lena, published_only=False) == {"public", "acme", "internal", "draft"}
    # They are close enough to join: whoever may read them all gets them all.
    assert sees(cast.admin, published_only=False, limit=20) == set(found)
    # Filters hold as well.
    assert sees(cast.omar, filters=queries.ArticleFilters(audience=["internal"])) == {"internal"}
    # A change of audience or status narrows the very next search (the scope each process
    # keeps follows every article change), before any worker ran.
    services.article_update(actor=cast.admin, article=made["acme"], audience="internal",
                            organization=None)  # fmt: skip
    services.article_transition(actor=cast.admin, article=made["public"], to="draft")
    assert sees(cast.alice) == set()
    assert sees(cast.gerd) == {"globex"}
