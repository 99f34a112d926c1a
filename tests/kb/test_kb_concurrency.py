"""The knowledge base's writers at the same time, on a real database (SQLite's file and
PostgreSQL): a double "this solved my problem" is one deflection, and embedding runs that
overlap (the worker's minute, `tierdesk kb embed`, the demo seed's run) leave one current
vector per article."""

from __future__ import annotations

import pytest

from tests.conftest import Cast, in_threads, needs_shared_database
from tierdesk.kb import semantic, services
from tierdesk.kb.models import ArticleEmbedding, Deflection

# serialized_rollback: these tests commit for real (see tests/tickets/test_concurrency.py).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _published(cast: Cast, slug: str, body: str) -> int:
    return services.article_create(
        actor=None, owner=cast.admin, title=f"Article {slug}", slug=slug, body=body,
        status="published", audience="public",
    ).pk  # fmt: skip


def test_solved_clicked_at_once_in_several_tabs_is_one_deflection(cast: Cast) -> None:
    needs_shared_database()
    article = services.article_create(
        actor=None, owner=cast.admin, title="Reset your password", slug="reset",
        body="Use the portal's Forgot password link.", status="published", audience="public",
    )  # fmt: skip

    def solved(_: int) -> int:
        return services.deflection_record(actor=cast.alice, article=article, query="password").pk

    results = in_threads(4, solved)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Deflection.objects.count() == 1
    assert set(results) == {Deflection.objects.get().pk}


@pytest.mark.skipif(not semantic.available(), reason="the semantic extra is not installed")
def test_overlapping_embedding_runs_leave_one_current_vector_each(
    cast: Cast, settings: object
) -> None:
    needs_shared_database()
    settings.KB_SEMANTIC = None  # type: ignore[attr-defined]
    ids = [
        _published(cast, f"a{i}", f"Step {i}: restart the print spooler and try again.")
        for i in range(semantic.STORE_BATCH + 3)  # two batches each
    ]

    def run(_: int) -> semantic.Refreshed:
        return semantic.refresh()

    results = in_threads(2, run)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert semantic.stale_ids() == []
    stored = list(ArticleEmbedding.objects.order_by("article_id"))
    assert [e.article_id for e in stored] == ids
    assert all(e.article_version == 1 and e.model == semantic.MODEL_NAME for e in stored)
    # Between them the two runs did every article; each may have redone some of the other's.
    assert all(r.embedded + r.unchanged <= len(ids) for r in results)
    assert sum(r.embedded + r.unchanged for r in results) >= len(ids)
    semantic.forget()
