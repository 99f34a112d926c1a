"""Reading the knowledge base, always through the reader's scope (kb.scope)."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from tierdesk.core import clock
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import User
from tierdesk.core.parse import as_id
from tierdesk.kb import search as engine
from tierdesk.kb.models import Article, ArticleStatus, ArticleVersion, FeedbackKind
from tierdesk.kb.scope import KbScope, scope_for
from tierdesk.tiers.models import Category


def article_scope(actor: User) -> QuerySet[Article]:
    """Every article the actor may read."""
    return Article.objects.filter(scope_for(actor).as_q())


def _loaded(qs: QuerySet[Article]) -> QuerySet[Article]:
    return qs.select_related(
        "category", "organization", "min_tier", "owner", "reviewer"
    ).prefetch_related("tags")


@dataclass
class ArticleFilters:
    status: Sequence[str] = ()
    category: Sequence[str] = ()  # slugs or ids
    tags: Sequence[str] = ()  # every one of them
    audience: Sequence[str] = ()
    stale: bool | None = None
    text: str | None = None  # in the title


def _where(filters: ArticleFilters) -> Q:
    where = Q()
    if filters.status:
        where &= Q(status__in=filters.status)
    if filters.category:
        ids = [i for c in filters.category if (i := as_id(c)) is not None]
        slugs = [c.strip().lower() for c in filters.category if as_id(c) is None]
        where &= Q(category_id__in=ids) | Q(category__slug__in=slugs)
    for tag in filters.tags:
        where &= Q(
            pk__in=Article.tags.through._default_manager.filter(
                tag__name=tag.strip().lower()
            ).values("article_id")
        )
    if filters.audience:
        where &= Q(audience__in=filters.audience)
    if filters.stale is not None:
        stale = Q(status=ArticleStatus.PUBLISHED, review_by__lt=clock.now().date())
        where &= stale if filters.stale else ~stale
    if filters.text:
        where &= Q(title__icontains=filters.text.strip())
    return where


def article_list(
    *, actor: User, filters: ArticleFilters | None = None, limit: int = 50, offset: int = 0
) -> list[Article]:
    """A page of the articles the actor may read, by title, with category, audience,
    owner and tags loaded, and ``helpful``/``not_helpful`` counts annotated."""
    qs = _loaded(article_scope(actor).filter(_where(filters or ArticleFilters())))
    qs = qs.defer("body", "body_html", "body_text").annotate(
        helpful=Count("feedback", filter=Q(feedback__kind=FeedbackKind.HELPFUL)),
        not_helpful=Count("feedback", filter=Q(feedback__kind=FeedbackKind.NOT_HELPFUL)),
    )
    return list(qs.order_by("title", "id")[offset : offset + limit])


def article_get(*, actor: User, ref: str | int) -> Article:
    """The article ``ref`` (id or slug) if the actor may read it, else NotFound."""
    qs = _loaded(article_scope(actor))
    text = str(ref).strip()
    article_id = as_id(text)
    found = (
        qs.filter(pk=article_id).first()
        if article_id is not None
        else qs.filter(slug=text.lower()).first()
    )
    if found is None:
        raise NotFound(f"No article {text[:80]!r}.")
    return found


def related_articles(*, actor: User, article: Article) -> list[Article]:
    """The article's related articles that the actor may read, by title."""
    return list(article_scope(actor).filter(related=article).order_by("title"))


def is_stale(article: Article, today: dt.date | None = None) -> bool:
    """Published and past its review-by date."""
    today = today or clock.now().date()
    return (
        article.status == ArticleStatus.PUBLISHED
        and article.review_by is not None
        and article.review_by < today
    )


def version_list(*, actor: User, article: Article) -> list[ArticleVersion]:
    """``article``'s versions, newest first (``article`` from article_get: authorized)."""
    return list(article.versions.select_related("author").order_by("-number"))


@dataclass(frozen=True)
class Diff:
    old: ArticleVersion
    new: ArticleVersion
    title_changed: bool
    lines: list[tuple[str, str]]  # (" ", "+" or "-", the line)


def version_diff(*, actor: User, article: Article, old: int, new: int) -> Diff:
    """What changed in the text from version ``old`` to version ``new`` (any two)."""
    found = {v.number: v for v in article.versions.filter(number__in=[old, new])}
    for field, number in (("old", old), ("new", new)):
        if number not in found:
            raise ValidationFailed.for_field(field, f"no version {number} of this article")
    a, b = found[old], found[new]
    lines = []
    for line in difflib.ndiff(a.body.splitlines(), b.body.splitlines()):
        mark = line[:1]
        if mark in ("+", "-", " "):
            lines.append((mark, line[2:]))
    return Diff(old=a, new=b, title_changed=a.title != b.title, lines=lines)


SearchHit = engine.Hit


def article_search(
    *,
    actor: User,
    text: str,
    filters: ArticleFilters | None = None,
    published_only: bool = True,
    limit: int = 10,
    prefix: bool = False,
) -> list[SearchHit]:
    """The articles best matching ``text`` that the actor may read (published ones unless
    ``published_only`` is False), ranked: id, slug, title, score and a highlighted
    snippet. One query (and one for the configuration token)."""
    scope: KbScope = scope_for(actor)
    if published_only:
        scope = scope.narrowed([ArticleStatus.PUBLISHED])
    f = filters or ArticleFilters()
    category_ids = [i for c in f.category if (i := as_id(c)) is not None]
    slugs = [c.strip().lower() for c in f.category if as_id(c) is None]
    if slugs:
        category_ids += Category.objects.filter(slug__in=slugs).values_list("pk", flat=True)
    if f.category and not category_ids:
        return []  # no such category: nothing matches
    return engine.search(
        scope=scope,
        text=text,
        filters=engine.Filters(
            category_ids=category_ids,
            tags=f.tags,
            audiences=f.audience,
            statuses=f.status,
        ),
        limit=limit,
        prefix=prefix,
    )


def article_export(*, actor: User) -> QuerySet[Article]:
    """Every article the actor may read, by slug, with what an export file names loaded."""
    return (
        article_scope(actor)
        .select_related("category", "organization", "min_tier")
        .prefetch_related("tags", "related")
        .order_by("slug")
    )
