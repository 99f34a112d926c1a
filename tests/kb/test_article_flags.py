"""Outdated flags: any staff member flags an article with what is wrong; its owner or a
reviewer resolves the flag (with an optional note), audited, through the service, the API
and the filter "has open flags" — run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Cast, problem_fields
from tierdesk.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, User
from tierdesk.kb import queries, services
from tierdesk.kb.models import Article, ArticleFeedback, Audience

ApiAs = Callable[[User | None], Api]
pytestmark = pytest.mark.django_db


def _published(cast: Cast, slug: str, owner: User, **kw: Any) -> Article:
    return services.article_create(
        actor=None,
        owner=owner,
        title=f"Wi-Fi {slug}",
        slug=slug,
        body="Join Corp-WiFi.",
        audience=kw.pop("audience", Audience.PUBLIC),
        status="published",
        **kw,
    )


def _flag(actor: User, article: Article, comment: str = "The SSID is Corp-5G now") -> int:
    return services.article_flag_outdated(actor=actor, article=article, comment=comment).pk


def test_the_owner_resolves_a_flag_with_a_note_and_it_is_audited(cast: Cast) -> None:
    article = _published(cast, "wifi", owner=cast.lena)
    flag_id = _flag(cast.omar, article)
    other = _flag(cast.omar, article, "The password rotates monthly")
    assert [f.pk for f in queries.outdated_flags(actor=cast.lena, article=article)] == [
        flag_id,
        other,
    ]

    resolved = services.article_flag_resolve(
        actor=cast.lena, article=article, flag_id=flag_id, note="  Renamed the SSID  "
    )

    assert (resolved.resolved_by, resolved.resolution_note) == (cast.lena, "Renamed the SSID")
    stored = ArticleFeedback.objects.get(pk=flag_id)
    assert stored.resolved_at is not None
    assert (stored.resolved_by, stored.resolution_note) == (cast.lena, "Renamed the SSID")
    # the other flag stays open; the resolved one leaves the list
    assert [f.pk for f in queries.outdated_flags(actor=cast.lena, article=article)] == [other]
    entry = AuditEntry.objects.get(action="kb.article_flag_resolved")
    assert (entry.actor, entry.target_id) == (cast.lena, str(article.pk))
    assert entry.changes == {
        "flag": flag_id,
        "flagged_by": cast.omar.email,
        "comment": "The SSID is Corp-5G now",
        "note": "Renamed the SSID",
    }
    # resolving is not an edit: the article's text and ETag stay
    article.refresh_from_db()
    assert article.version == 1


def test_who_may_resolve_a_flag(cast: Cast) -> None:
    article = _published(cast, "wifi", owner=cast.lena)
    flag_id = _flag(cast.omar, article)
    # another agent (who flagged it, even) and a requester who reads the article: 403
    for actor in (cast.omar, cast.alice):
        with pytest.raises(PermissionDenied):
            services.article_flag_resolve(actor=actor, article=article, flag_id=flag_id)
    # an agent who cannot read the article: 404, like a missing one
    globex = _published(cast, "globex-wifi", owner=cast.omar, audience=Audience.ORGANIZATION,
                        organization=cast.globex)  # fmt: skip
    globex_flag = _flag(cast.omar, globex)
    with pytest.raises(NotFound):
        services.article_flag_resolve(actor=cast.lena, article=globex, flag_id=globex_flag)
    assert not ArticleFeedback.objects.filter(resolved_at__isnull=False).exists()
    # a reviewer (a manager) resolves any article's flag; nothing else is needed
    services.article_flag_resolve(actor=cast.manager, article=article, flag_id=flag_id)
    assert ArticleFeedback.objects.get(pk=flag_id).resolved_by == cast.manager


def test_a_flag_is_resolved_once_on_its_own_article(cast: Cast) -> None:
    article = _published(cast, "wifi", owner=cast.lena)
    elsewhere = _published(cast, "vpn", owner=cast.lena)
    flag_id = _flag(cast.omar, article)
    vote = services.article_vote(actor=cast.alice, article=article, helpful=True)
    with pytest.raises(NotFound):  # another article's flag
        services.article_flag_resolve(actor=cast.lena, article=elsewhere, flag_id=flag_id)
    with pytest.raises(NotFound):  # a vote is not a flag
        services.article_flag_resolve(actor=cast.lena, article=article, flag_id=vote.pk)
    with pytest.raises(ValidationFailed):
        services.article_flag_resolve(
            actor=cast.lena, article=article, flag_id=flag_id, note="x" * 501
        )
    services.article_flag_resolve(actor=cast.lena, article=article, flag_id=flag_id, note="done")
    with pytest.raises(Conflict):
        services.article_flag_resolve(actor=cast.admin, article=article, flag_id=flag_id)
    stored = ArticleFeedback.objects.get(pk=flag_id)
    assert (stored.resolved_by, stored.resolution_note) == (cast.lena, "done")
    assert AuditEntry.objects.filter(action="kb.article_flag_resolved").count() == 1


def test_publishing_a_new_version_leaves_the_flags_open(cast: Cast) -> None:
    # Resolving says what was done about a flag; an edit alone does not say it was this.
    article = _published(cast, "wifi", owner=cast.lena)
    _flag(cast.omar, article)
    services.article_update(actor=cast.manager, article=article, body="Join Corp-5G.")
    assert len(queries.outdated_flags(actor=cast.lena, article=article)) == 1


def test_the_list_filters_on_open_flags(cast: Cast) -> None:
    flagged = _published(cast, "flagged", owner=cast.lena)
    resolved = _published(cast, "resolved", owner=cast.lena)
    _published(cast, "clean", owner=cast.lena)
    _flag(cast.omar, flagged)
    _flag(cast.omar, flagged, "and another thing")
    services.article_flag_resolve(
        actor=cast.lena, article=resolved, flag_id=_flag(cast.omar, resolved)
    )

    def slugs(open_flags: bool | None) -> list[str]:
        rows = queries.article_list(
            actor=cast.lena, filters=queries.ArticleFilters(open_flags=open_flags)
        )
        return [a.slug for a in rows]

    assert slugs(True) == ["flagged"]
    assert slugs(False) == ["clean", "resolved"]
    counts = {a.slug: a.open_flags for a in queries.article_list(actor=cast.lena)}  # type: ignore[attr-defined]
    assert counts == {"clean": 0, "flagged": 2, "resolved": 0}
    with pytest.raises(ValidationFailed):  # requesters never see flags
        queries.article_list(actor=cast.alice, filters=queries.ArticleFilters(open_flags=True))


# --- the API --------------------------------------------------------------------------------


def test_the_api_lists_and_resolves_flags(cast: Cast, api_as: ApiAs) -> None:
    article = _published(cast, "wifi", owner=cast.lena)
    omar, lena = api_as(cast.omar), api_as(cast.lena)
    created = omar.post("/kb/articles/wifi/flags", {"comment": "The SSID is Corp-5G now"})
    assert created.status_code == 201, created.content
    flag_id = created.json()["id"]

    listed = lena.get("/kb/articles/wifi/flags")
    assert listed.status_code == 200
    assert [(f["id"], f["flagged_by"], f["resolved_at"]) for f in listed.json()] == [
        (flag_id, cast.omar.email, None)
    ]
    assert omar.get("/kb/articles/wifi/flags").json() == []  # not his article
    open_list = lena.get("/kb/articles", params={"open_flags": "true"}).json()["items"]
    assert [a["slug"] for a in open_list] == ["wifi"]

    # another agent: 403; a requester: 403; an agent who cannot read it: 404
    refused = omar.post(f"/kb/articles/wifi/flags/{flag_id}/resolve", {"note": "mine"})
    assert refused.status_code == 403
    assert (
        api_as(cast.alice).post(f"/kb/articles/wifi/flags/{flag_id}/resolve", {}).status_code == 403
    )
    globex = _published(cast, "globex-wifi", owner=cast.omar, audience=Audience.ORGANIZATION,
                        organization=cast.globex)  # fmt: skip
    globex_flag = _flag(cast.omar, globex)
    hidden = lena.post(f"/kb/articles/globex-wifi/flags/{globex_flag}/resolve", {})
    assert hidden.status_code == 404
    # bad input: 422 naming the field; a missing flag: 404
    too_long = lena.post(f"/kb/articles/wifi/flags/{flag_id}/resolve", {"note": "x" * 501})
    assert too_long.status_code == 422
    assert problem_fields(too_long) == ["note"]
    unknown = lena.post(f"/kb/articles/wifi/flags/{flag_id}/resolve", {"notes": "typo"})
    assert unknown.status_code == 422
    assert lena.post("/kb/articles/wifi/flags/999999/resolve", {}).status_code == 404
    assert ArticleFeedback.objects.get(pk=flag_id).resolved_at is None

    done = lena.post(f"/kb/articles/wifi/flags/{flag_id}/resolve", {"note": "Renamed"})
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["id"], body["resolved_by"], body["resolution_note"]) == (
        flag_id,
        cast.lena.email,
        "Renamed",
    )
    assert body["resolved_at"] is not None
    again = api_as(cast.manager).post(f"/kb/articles/wifi/flags/{flag_id}/resolve", {})
    assert again.status_code == 409
    assert lena.get("/kb/articles/wifi/flags").json() == []
    assert lena.get("/kb/articles", params={"open_flags": "true"}).json()["items"] == []
    # requesters may not filter on flags
    refused_filter = api_as(cast.alice).get("/kb/articles", params={"open_flags": "false"})
    assert refused_filter.status_code == 422
    assert problem_fields(refused_filter) == ["open_flags"]
    article.refresh_from_db()
    assert article.version == 1
