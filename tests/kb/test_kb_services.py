"""Articles through the services: versions, the review workflow, who may do what, and the
audiences' isolation (search and lists) — run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.models import AuditEntry, User
from tierdesk.kb import queries, services
from tierdesk.kb.models import Article, ArticleStatus, ArticleUse, Audience, Deflection
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import category_create, tier_by_code

pytestmark = pytest.mark.django_db


def publish(cast: Cast, article: Article) -> Article:
    services.article_transition(actor=article.owner, article=article, to="in_review")
    return services.article_transition(actor=cast.admin, article=article, to="published")


def test_an_agent_writes_a_draft_a_manager_publishes_it(cast: Cast) -> None:
    article = services.article_create(
        actor=cast.lena,
        title="  Reset   your password ",
        body="## Steps\n\n1. Open the portal\n2. Choose **Forgot password**",
        tags=["Password", "self-service"],
        audience=Audience.PUBLIC,
    )
    assert (article.slug, article.title, article.status) == (
        "reset-your-password",
        "Reset your password",
        "draft",
    )
    assert "<strong>Forgot password</strong>" in article.body_html
    assert article.body_text.startswith("Steps Open the portal")
    assert sorted(t.name for t in article.tags.all()) == ["password", "self-service"]
    assert [v.number for v in article.versions.all()] == [1]
    # requesters never see drafts
    assert not queries.article_search(actor=cast.alice, text="password")
    with pytest.raises(InvalidTransition):  # a draft is reviewed first
        services.article_transition(actor=cast.manager, article=article, to="published")
    services.article_transition(actor=cast.lena, article=article, to="in_review")
    with pytest.raises(PermissionDenied):  # an agent reviews nothing
        services.article_transition(actor=cast.lena, article=article, to="published")
    published = services.article_transition(actor=cast.manager, article=article, to="published")
    assert (published.status, published.reviewer) == ("published", cast.manager)
    assert published.published_at is not None
    hits = queries.article_search(actor=cast.alice, text="forgot my password")
    assert [h.slug for h in hits] == ["reset-your-password"]
    assert "<mark>" in hits[0].snippet
    actions = list(
        AuditEntry.objects.filter(target_type="article").values_list("action", flat=True)
    )
    assert actions.count("kb.article_status_changed") == 2


def test_edits_make_versions_and_a_diff_between_any_two(cast: Cast) -> None:
    article = services.article_create(actor=cast.lena, title="VPN", body="one\ntwo\nthree")
    services.article_update(actor=cast.lena, article=article, body="one\n2\nthree")
    services.article_update(actor=cast.lena, article=article, title="VPN drops", note="title")
    services.article_update(actor=cast.lena, article=article, tags=["vpn"])  # no new text
    article.refresh_from_db()
    assert [v.number for v in queries.version_list(actor=cast.lena, article=article)] == [3, 2, 1]
    assert article.version == 4  # every change moves the concurrency token
    diff = queries.version_diff(actor=cast.lena, article=article, old=1, new=3)
    assert diff.title_changed
    assert ("-", "two") in diff.lines
    assert ("+", "2") in diff.lines
    with pytest.raises(ValidationFailed):
        queries.version_diff(actor=cast.lena, article=article, old=1, new=9)
    with pytest.raises(PreconditionFailed):
        services.article_update(actor=cast.lena, article=article, body="x", expected_version=2)


def test_who_may_edit_what(cast: Cast) -> None:
    article = services.article_create(actor=cast.lena, title="Printer jams", body="Open tray 2.")
    with pytest.raises(PermissionDenied):  # another agent's draft
        services.article_update(actor=cast.omar, article=article, body="x")
    with pytest.raises(PermissionDenied):  # requesters write nothing
        services.article_create(actor=cast.alice, title="Mine")
    publish(cast, article)
    with pytest.raises(PermissionDenied, match="flag it as outdated"):
        services.article_update(actor=cast.lena, article=article, body="changed")
    services.article_update(actor=cast.manager, article=article, body="Open tray 3.")
    services.article_transition(actor=cast.manager, article=article, to="archived")
    with pytest.raises(InvalidTransition):
        services.article_update(actor=cast.manager, article=article, body="y")
    with pytest.raises(InvalidTransition):
        services.article_transition(actor=cast.manager, article=article, to="published")


def test_bad_input_is_refused_and_nothing_is_written(cast: Cast) -> None:
    before = Article.objects.count()
    for kwargs, field in (
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "audience": "everyone"}, "audience"),
        ({"title": "ok", "audience": "organization"}, "organization"),
        ({"title": "ok", "audience": "tier"}, "min_tier"),
        ({"title": "ok", "tags": ["bad tag!"]}, "tags"),
        ({"title": "ok", "body": "a\x00b"}, "body"),
        ({"title": "ok", "slug": "Not a slug"}, "slug"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            services.article_create(actor=cast.lena, **kwargs)
        assert caught.value.errors[0].field == field, kwargs
    services.article_create(actor=cast.lena, title="Taken", slug="taken")
    with pytest.raises(Conflict):
        services.article_create(actor=cast.lena, title="Taken again", slug="taken")
    # another tenant's category, or an organization the agent does not serve
    globex_erp = category_create(
        actor=cast.admin,
        organization=cast.globex,
        slug="erp",
        name="ERP",
        default_tier=tier_by_code("L1"),
    )
    with pytest.raises(ValidationFailed):
        services.article_create(
            actor=cast.lena,
            title="ERP",
            audience="organization",
            organization=cast.acme,
            category=globex_erp,
        )
    with pytest.raises(ValidationFailed):
        services.article_create(
            actor=cast.lena, title="Globex", audience="organization", organization=cast.globex
        )
    assert Article.objects.count() == before + 1


def _article(cast: Cast, slug: str, audience: str, **kw: object) -> Article:
    return services.article_create(
        actor=None,
        owner=cast.admin,
        title=f"Laptop battery {slug}",
        slug=slug,
        body="The laptop battery drains fast; calibrate it.",
        audience=audience,
        status="published",
        **kw,  # type: ignore[arg-type]
    )


def test_every_reader_sees_only_their_audiences(cast: Cast) -> None:
    _article(cast, "public", Audience.PUBLIC)
    _article(cast, "internal", Audience.INTERNAL)
    _article(cast, "for-l2", Audience.TIER, min_tier=tier_by_code("L2"))
    _article(cast, "for-acme", Audience.ORGANIZATION, organization=cast.acme)
    _article(cast, "for-globex", Audience.ORGANIZATION, organization=cast.globex)
    draft = services.article_create(
        actor=None, owner=cast.admin, title="Laptop battery draft", slug="draft"
    )
    assert draft.status == ArticleStatus.DRAFT

    def found(who: object) -> set[str]:
        hits = queries.article_search(actor=who, text="laptop battery", limit=50)  # type: ignore[arg-type]
        listed = {a.slug for a in queries.article_list(actor=who)}  # type: ignore[arg-type]
        searched = {h.slug for h in hits}
        # the list shows drafts to staff; search shows published articles only
        assert searched == listed - {"draft"}
        return searched

    assert found(cast.alice) == {"public", "for-acme"}
    assert found(cast.gerd) == {"public", "for-globex"}
    assert found(cast.lena) == {"public", "internal", "for-acme"}  # L1, serves ACME
    assert found(cast.omar) == {"public", "internal", "for-l2", "for-acme", "for-globex"}
    assert found(cast.manager) == {"public", "internal", "for-l2", "for-acme"}
    assert found(cast.admin) == {"public", "internal", "for-l2", "for-acme", "for-globex"}
    for who, slug in ((cast.alice, "internal"), (cast.alice, "for-globex"), (cast.lena, "for-l2")):
        with pytest.raises(NotFound):
            queries.article_get(actor=who, ref=slug)
    with pytest.raises(NotFound):
        queries.article_get(actor=cast.alice, ref="draft")


def test_search_ranks_title_matches_first_and_tolerates_typos(cast: Cast) -> None:
    services.article_create(
        actor=None,
        owner=cast.admin,
        title="Outlook keeps asking for your password",
        slug="outlook-password",
        body="Clear the saved credentials in Credential Manager.",
        status="published",
        audience="public",
    )
    services.article_create(
        actor=None,
        owner=cast.admin,
        title="Printer offline",
        slug="printer-offline",
        body="If Outlook prints nothing, check the printer is online. Password not needed.",
        status="published",
        audience="public",
    )
    slugs = [h.slug for h in queries.article_search(actor=cast.alice, text="outlook password")]
    assert slugs == ["outlook-password", "printer-offline"]
    typo = [h.slug for h in queries.article_search(actor=cast.alice, text="outlok pasword")]
    assert typo[0] == "outlook-password"
    typing = queries.article_search(actor=cast.alice, text="printer offl", prefix=True)
    assert typing[0].slug == "printer-offline"
    assert queries.article_search(actor=cast.alice, text="the and of") == []
    assert queries.article_search(actor=cast.alice, text='"); DROP TABLE kb_article; --') == []


def test_the_index_follows_every_change(cast: Cast) -> None:
    article = _article(cast, "battery", Audience.PUBLIC)
    assert queries.article_search(actor=cast.alice, text="calibrate")
    services.article_update(actor=cast.admin, article=article, body="Replace the battery.")
    assert not queries.article_search(actor=cast.alice, text="calibrate")
    assert queries.article_search(actor=cast.alice, text="replace")
    services.article_update(actor=cast.admin, article=article, tags=["power"])
    assert queries.article_search(actor=cast.alice, text="power")
    # The archive step, against a control: another published article that the same words
    # find, so an empty answer cannot pass for a search that found nothing at all.
    services.article_create(
        actor=None, owner=cast.admin, title="Charger cable", slug="charger", status="published",
        body="Replace the charger cable.", audience=Audience.PUBLIC, tags=["power"],
    )  # fmt: skip

    def found(reader: User, text: str, **kw: object) -> list[str]:
        return sorted(h.slug for h in queries.article_search(actor=reader, text=text, **kw))  # type: ignore[arg-type]

    assert found(cast.alice, "replace") == ["battery", "charger"]
    assert found(cast.alice, "power") == ["battery", "charger"]
    services.article_transition(actor=cast.admin, article=article, to="archived")
    assert found(cast.alice, "replace") == ["charger"]
    assert found(cast.alice, "power") == ["charger"]
    assert found(cast.alice, "battery") == []
    assert [a.slug for a in queries.article_list(actor=cast.alice)] == ["charger"]
    # still indexed, for staff who ask for archived articles: the readers' scope left it out
    archived = queries.ArticleFilters(status=[ArticleStatus.ARCHIVED])
    assert found(cast.admin, "replace", published_only=False, filters=archived) == ["battery"]
    # and back once it is published again
    services.article_transition(actor=cast.admin, article=article, to="draft")
    assert found(cast.alice, "replace") == ["charger"]  # a draft is not the readers' either
    publish(cast, article)
    assert found(cast.alice, "replace") == ["battery", "charger"]


def test_the_word_counts_follow_every_change(cast: Cast) -> None:
    """The counts that typo tolerance and the common-word rule read (kb.search.vocabulary):
    FTS5's own on SQLite, a trigger's table on PostgreSQL, checked against ``ts_stat``."""
    from django.db import connection

    from tierdesk.kb import search

    def count(word: str) -> int:
        stem = search._stemmer().stemWord(word)
        return search._load_vocabulary().documents.get(stem, 0)

    battery = services.article_create(
        actor=None, owner=cast.admin, title="Calibrate the battery", slug="calibrate",
        body="Calibrate it every month.", status="published", audience=Audience.PUBLIC,
    )  # fmt: skip
    charger = services.article_create(
        actor=None, owner=cast.admin, title="Battery charger", slug="charger",
        body="Use the charger that came with it.", status="published", audience="public",
    )  # fmt: skip
    assert (count("battery"), count("calibrate"), count("charger")) == (2, 1, 1)
    services.article_update(
        actor=cast.admin, article=battery, title="Replace the battery", body="Order one."
    )
    assert (count("battery"), count("calibrate"), count("replace")) == (2, 0, 1)
    # A word new to the index is one that a typo finds.
    assert [h.slug for h in queries.article_search(actor=cast.alice, text="ordr")] == ["calibrate"]
    if connection.vendor != "postgresql":
        return
    Article.objects.filter(pk=charger.pk).delete()  # the document goes by cascade
    assert (count("battery"), count("charger")) == (1, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT word, ndoc FROM ts_stat('SELECT document FROM kb_search_document')")
        truth = dict(cursor.fetchall())
    assert search._load_vocabulary().documents == truth


def test_feedback_uses_and_deflections(cast: Cast) -> None:
    article = _article(cast, "battery", Audience.PUBLIC)
    services.article_vote(actor=cast.alice, article=article, helpful=False)
    services.article_vote(actor=cast.alice, article=article, helpful=True)  # changes the vote
    services.article_vote(actor=cast.bob, article=article, helpful=True)
    listed = queries.article_list(actor=cast.admin)[0]
    assert (listed.helpful, listed.not_helpful) == (2, 0)  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied):
        services.article_flag_outdated(actor=cast.alice, article=article, comment="old")
    with pytest.raises(ValidationFailed):
        services.article_flag_outdated(actor=cast.lena, article=article, comment="  ")
    services.article_flag_outdated(actor=cast.lena, article=article, comment="New BIOS menu")
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    use = services.article_use(actor=cast.lena, article=article, ticket=ticket, kind="solved")
    assert (use.tier.code, use.organization) == ("L1", cast.acme)  # type: ignore[union-attr]
    services.article_use(actor=cast.lena, article=article, ticket=ticket, kind="solved")
    assert ArticleUse.objects.count() == 1
    services.deflection_record(actor=cast.alice, article=article, query="battery  drains")
    assert Deflection.objects.get().query == "battery drains"
    with pytest.raises(PermissionDenied):
        services.deflection_record(actor=cast.lena, article=article)
    internal = _article(cast, "internal", Audience.INTERNAL)
    with pytest.raises(NotFound):
        services.deflection_record(actor=cast.alice, article=internal)


def test_stale_articles(cast: Cast) -> None:
    article = _article(cast, "old", Audience.PUBLIC, review_by=dt.date(2020, 1, 1))
    fresh = _article(cast, "fresh", Audience.PUBLIC, review_by=dt.date(2999, 1, 1))
    assert queries.is_stale(article)
    assert not queries.is_stale(fresh)
    stale = queries.article_list(actor=cast.admin, filters=queries.ArticleFilters(stale=True))
    assert [a.slug for a in stale] == ["old"]


def test_category_filter(cast: Cast) -> None:
    hardware = category_for_organization(cast.acme, "hardware")
    _article(cast, "hw", Audience.PUBLIC, category=hardware)
    _article(cast, "none", Audience.PUBLIC)
    f = queries.ArticleFilters(category=["hardware"])
    assert [h.slug for h in queries.article_search(actor=cast.alice, text="laptop", filters=f)] == [
        "hw"
    ]
    f = queries.ArticleFilters(category=["nonexistent"])
    assert queries.article_search(actor=cast.alice, text="laptop", filters=f) == []


@pytest.mark.parametrize("slug", ["new", "preview", "suggest", "12345"])
def test_a_slug_the_pages_use_or_an_id_is_refused_and_never_made(cast: Cast, slug: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.article_create(actor=cast.admin, title="Anything", slug=slug)
    assert refused.value.errors[0].field == "slug"
    made = services.article_create(actor=cast.admin, title=slug)
    assert made.slug == f"article-{slug}"


def test_a_reviewer_does_not_publish_their_own_new_article_but_an_admin_may(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        services.article_create(actor=cast.manager, title="Mine", status="published")
    theirs = services.article_create(
        actor=cast.manager, title="Lena's", owner=cast.lena, status="published"
    )
    assert theirs.reviewer == cast.manager
    own = services.article_create(actor=cast.admin, title="The admin's", status="published")
    assert own.reviewer == cast.admin
    assert not Article.objects.filter(title="Mine").exists()


def test_the_same_deflection_sent_twice_counts_once(cast: Cast) -> None:
    article = _article(cast, "printer", Audience.PUBLIC)
    first = services.deflection_record(actor=cast.alice, article=article, query="printer")
    again = services.deflection_record(actor=cast.alice, article=article, query="printer")
    assert again.pk == first.pk
    services.deflection_record(actor=cast.bob, article=article)  # someone else: counted
    assert Deflection.objects.count() == 2


@pytest.mark.parametrize("slug", ["my_account", "two--dashes", "-leading", "UPPER_case"])
def test_a_slug_holds_to_the_files_rule_so_every_export_imports_again(
    cast: Cast, slug: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.article_create(actor=cast.admin, title="Anything", slug=slug)
    assert refused.value.errors[0].field == "slug"
    made = services.article_create(actor=cast.admin, title="Reset my_account -- password")
    assert made.slug == "reset-my-account-password"


def test_search_scores_are_relative_to_the_best_hit() -> None:
    from tierdesk.kb.queries import relative_scores
    from tierdesk.kb.search import Hit

    def hit(i: int, score: float) -> Hit:
        return Hit(article_id=i, slug=f"a{i}", title="t", score=score, snippet="")

    scored = relative_scores([hit(1, 7.25), hit(2, 3.625), hit(3, 0.0001)])
    assert [(h.article_id, h.score) for h in scored] == [(1, 1.0), (2, 0.5), (3, 0.0)]
    assert relative_scores([]) == []
    assert [h.score for h in relative_scores([hit(1, 0.0)])] == [0.0]
