"""Reading the knowledge base, always through the reader's scope (kb.scope)."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)

from tierdesk.core import clock, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Role, User
from tierdesk.core.parse import as_id
from tierdesk.kb import search as engine
from tierdesk.kb.models import (
    Article,
    ArticleAttachment,
    ArticleFeedback,
    ArticleStatus,
    ArticleUse,
    ArticleVersion,
    FeedbackKind,
    UseKind,
)
from tierdesk.kb.scope import KbScope, scope_for
from tierdesk.tickets.models import Comment, Ticket
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
    open_flags: bool | None = None  # True: flagged as outdated, not resolved yet
    text: str | None = None  # in the title
    ids: Sequence[int] | None = None  # only these articles (e.g. a search's hits)


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
    if filters.open_flags is not None:
        flagged = Q(pk__in=_open_flags().values("article_id"))
        where &= flagged if filters.open_flags else ~flagged
    if filters.text:
        where &= Q(title__icontains=filters.text.strip())
    if filters.ids is not None:
        where &= Q(pk__in=list(filters.ids))
    return where


def _open_flags() -> QuerySet[ArticleFeedback]:
    return ArticleFeedback.objects.filter(kind=FeedbackKind.OUTDATED, resolved_at__isnull=True)


def article_list(
    *, actor: User, filters: ArticleFilters | None = None, limit: int = 50, offset: int = 0
) -> list[Article]:
    """A page of the articles the actor may read, by title, with category, audience,
    owner and tags loaded, and ``helpful``/``not_helpful``/``open_flags`` counts
    annotated. Only staff filter on flags (requesters never see them)."""
    filters = filters or ArticleFilters()
    if filters.open_flags is not None and actor.role not in STAFF_ROLES:
        raise ValidationFailed.for_field("open_flags", "only staff filter on flags")
    qs = _loaded(article_scope(actor).filter(_where(filters)))
    qs = qs.defer("body", "body_html", "body_text").annotate(
        helpful=Count("feedback", filter=Q(feedback__kind=FeedbackKind.HELPFUL)),
        not_helpful=Count("feedback", filter=Q(feedback__kind=FeedbackKind.NOT_HELPFUL)),
        open_flags=Count(
            "feedback",
            filter=Q(feedback__kind=FeedbackKind.OUTDATED, feedback__resolved_at__isnull=True),
        ),
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


def _history_readable(actor: User) -> None:
    """An article's earlier texts are staff's: an article published for requesters may have
    been written internal, or with what was taken out before it was published."""
    if actor.role not in STAFF_ROLES:
        raise NotFound("No such article.")


def version_list(*, actor: User, article: Article) -> list[ArticleVersion]:
    """``article``'s versions, newest first (``article`` from article_get: authorized);
    staff only."""
    _history_readable(actor)
    return list(article.versions.select_related("author").order_by("-number"))


@dataclass(frozen=True)
class Diff:
    old: ArticleVersion
    new: ArticleVersion
    title_changed: bool
    lines: list[tuple[str, str]]  # (" ", "+" or "-", the line)


def version_diff(*, actor: User, article: Article, old: int, new: int) -> Diff:
    """What changed in the text from version ``old`` to version ``new`` (any two), line by
    line; staff only. Lines are compared whole (difflib's SequenceMatcher: about linear for
    texts that share most lines; ``ndiff``'s character matching took a minute for two long,
    different bodies)."""
    _history_readable(actor)
    found = {v.number: v for v in article.versions.filter(number__in=[old, new])}
    for field, number in (("old", old), ("new", new)):
        if number not in found:
            raise ValidationFailed.for_field(field, f"no version {number} of this article")
    a, b = found[old], found[new]
    before, after = a.body.splitlines(), b.body.splitlines()
    lines: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, before, after)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            lines += [(" ", line) for line in before[i1:i2]]
            continue
        lines += [("-", line) for line in before[i1:i2]]
        lines += [("+", line) for line in after[j1:j2]]
    return Diff(old=a, new=b, title_changed=a.title != b.title, lines=lines)


def text_version(article: Article) -> int:
    """The number of ``article``'s latest text version (what versions and diffs count)."""
    return article.versions.order_by("-number").values_list("number", flat=True).first() or 1


@dataclass(frozen=True)
class Votes:
    helpful: int
    not_helpful: int
    mine: str | None  # the reader's own vote: "helpful", "not_helpful" or None


def article_votes(*, actor: User, article: Article) -> Votes:
    """``article``'s helpful and not-helpful votes and ``actor``'s own (``article`` from
    article_get: authorized). One query."""
    counts = ArticleFeedback.objects.filter(
        article=article, kind__in=[FeedbackKind.HELPFUL, FeedbackKind.NOT_HELPFUL]
    ).aggregate(
        helpful=Count("pk", filter=Q(kind=FeedbackKind.HELPFUL)),
        not_helpful=Count("pk", filter=Q(kind=FeedbackKind.NOT_HELPFUL)),
        mine_helpful=Count("pk", filter=Q(kind=FeedbackKind.HELPFUL, user=actor)),
        mine_not=Count("pk", filter=Q(kind=FeedbackKind.NOT_HELPFUL, user=actor)),
    )
    mine = (
        FeedbackKind.HELPFUL.value
        if counts["mine_helpful"]
        else FeedbackKind.NOT_HELPFUL.value
        if counts["mine_not"]
        else None
    )
    return Votes(counts["helpful"] or 0, counts["not_helpful"] or 0, mine)


def outdated_flags(*, actor: User, article: Article) -> list[ArticleFeedback]:
    """The open "outdated" flags on ``article`` (``article`` from article_get), oldest
    first, with who raised them loaded: for its owner and reviewers (kb.review), who act
    on them; an empty list for anyone else."""
    if article.owner_id != actor.pk and not policy.allowed(actor, "kb.review"):
        return []
    return list(
        _open_flags().filter(article=article).select_related("user").order_by("created_at", "id")
    )


def usage_counts(*, actor: User, article: Article) -> dict[str, list[tuple[str, int]]]:
    """How often ``article`` was suggested, linked and the solution, by the tier the ticket
    was at: {kind: [(tier code, count), …]} in tier order, counting the tickets of the
    organizations the actor sees (admins: all). One query."""
    uses = ArticleUse.objects.filter(article=article)
    if actor.role != Role.ADMIN:
        uses = uses.filter(organization_id__in=policy.visible_organizations(actor).values("pk"))
    rows = (
        uses.values("kind", "tier__code", "tier__level")
        .annotate(n=Count("pk"))
        .order_by("kind", F("tier__level").asc(nulls_last=True))
    )
    counts: dict[str, list[tuple[str, int]]] = {kind: [] for kind in UseKind.values}
    for row in rows:
        counts[row["kind"]].append((row["tier__code"] or "no tier", row["n"]))
    return counts


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
    hits = engine.search(
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
    return relative_scores(hits)


def relative_scores(hits: list[SearchHit]) -> list[SearchHit]:
    """``hits`` with each score relative to the best one's (1.0), to three places. An
    engine's raw score can carry statistics of the whole index (SQLite's BM25 weighs a
    word by how many articles of every tenant contain it); the order is all a reader needs
    to see."""
    top = hits[0].score if hits else 0.0
    return [replace(h, score=round(h.score / top, 3) if top > 0 else 0.0) for h in hits]


def article_export(*, actor: User) -> QuerySet[Article]:
    """Every article the actor may read, by slug, with what an export file names loaded."""
    return (
        article_scope(actor)
        .select_related("category", "organization", "min_tier")
        .prefetch_related("tags", "related")
        .order_by("slug")
    )


# --- suggestions, and articles from tickets ----------------------------------------------

SUGGESTION_WORDS = 40  # of a ticket's text: enough to find its subject, not a whole log


def _suggestion_text(*parts: str) -> str:
    words: list[str] = []
    for part in parts:
        words += part.split()
        if len(words) >= SUGGESTION_WORDS:
            break
    return " ".join(words[:SUGGESTION_WORDS])


def suggestions(
    *, actor: User, subject: str, description: str = "", limit: int = 5
) -> list[SearchHit]:
    """Published articles for a ticket being typed (the portal's new-ticket form): the
    subject and the start of the description, whose last word may be unfinished. What the
    actor may read only; for a requester, public articles and their organization's."""
    text = _suggestion_text(subject, description)
    if not text:
        return []
    return article_search(actor=actor, text=text, limit=limit, prefix=True)


def relevant_for_ticket(*, actor: User, ticket: Ticket, limit: int = 5) -> list[SearchHit]:
    """Published articles that may help with ``ticket`` (the agent's ticket page), as the
    agent may read them: its subject, then the start of its description."""
    text = _suggestion_text(ticket.subject, ticket.description)
    if not text:
        return []
    return article_search(actor=actor, text=text, limit=limit)


def requester_scope(ticket: Ticket) -> KbScope:
    """What ``ticket``'s requester reads: kb.scope's rule for requesters, or, for a ticket
    without a requester account (opened by staff for a contact), what every requester of
    the ticket's organization reads."""
    requester = ticket.requester
    if requester is not None and requester.role == Role.REQUESTER and requester.is_active:
        return scope_for(requester)
    return KbScope((ArticleStatus.PUBLISHED.value,), organization_ids=(ticket.organization_id,))


def _with_ticket_facts(qs: QuerySet[Article], ticket: Ticket) -> QuerySet[Article]:
    """``qs`` with, per article, whether the ticket's requester may read it
    (``for_requester``, in the same SQL as kb.scope's rule) and its uses on ``ticket``
    (``used_<kind>`` for each UseKind); organization and lowest tier joined, for the
    audience; the body deferred."""
    uses = ArticleUse.objects.filter(ticket=ticket, article=OuterRef("pk"))
    return (
        qs.select_related("organization", "min_tier")
        .only("id", "slug", "title", "audience", "status", "organization__code", "min_tier__code")
        .annotate(
            for_requester=ExpressionWrapper(
                requester_scope(ticket).as_q(), output_field=BooleanField()
            ),
            **{f"used_{k}": Exists(uses.filter(kind=k)) for k in UseKind.values},
        )
    )


@dataclass
class TicketKb:
    """The knowledge base beside a ticket (the agent's ticket page)."""

    hits: list[SearchHit]  # the search's, best first
    # The hits and the articles used on the ticket that the reader may read, by title, each
    # with the ticket's facts (see _with_ticket_facts).
    articles: dict[int, Article]


def ticket_kb(*, actor: User, ticket: Ticket, query: str = "", limit: int = 5) -> TicketKb:
    """For ``ticket`` (from tickets.queries.ticket_get for ``actor``): the top published
    articles for ``query`` (the last word may be unfinished) or, without one, for the
    ticket's own text; and those and the articles used on the ticket, with its facts.

    Queries: the search (two for the reader's scope, one to search), then one for those
    articles and the ones used on the ticket with their uses; only when the ticket has uses
    of articles the search did not return, three more to keep those the reader may read."""
    if query:
        hits = article_search(actor=actor, text=query, limit=limit, prefix=True)
    else:
        hits = relevant_for_ticket(actor=actor, ticket=ticket, limit=limit)
    hit_ids = [h.article_id for h in hits]
    used_ids = ArticleUse.objects.filter(ticket=ticket).values("article_id")
    rows = {
        a.pk: a
        for a in _with_ticket_facts(
            Article.objects.filter(Q(pk__in=hit_ids) | Q(pk__in=used_ids)), ticket
        ).order_by("title", "id")
    }
    # The search read through the reader's scope; an article used on the ticket may be one
    # they may not read (another tier's, another organization's): ask the scope.
    unsure = [pk for pk in rows if pk not in hit_ids]
    if unsure:
        readable = set(article_scope(actor).filter(pk__in=unsure).values_list("pk", flat=True))
        rows = {pk: a for pk, a in rows.items() if pk in hit_ids or pk in readable}
    return TicketKb(hits=hits, articles=rows)


def ticket_articles(*, actor: User, ticket: Ticket, ids: Sequence[int]) -> list[Article]:
    """The published articles among ``ids`` that ``actor`` may read, in the order given,
    each with ``ticket``'s facts (see _with_ticket_facts); the others (drafts, archived
    ones, the unreadable) are left out: only a published article goes into a reply or
    solves a ticket."""
    if not ids:
        return []
    readable = article_scope(actor).filter(pk__in=ids, status=ArticleStatus.PUBLISHED)
    found = {a.pk: a for a in _with_ticket_facts(readable, ticket)}
    return [found[i] for i in ids if i in found]


@dataclass
class ArticleDraft:
    """What "Create article from this ticket" fills in; the agent edits it before saving."""

    title: str
    body: str
    category: Category | None
    tags: list[str]
    audience: str  # as written in files and the API: internal, or an organization's code
    source_ticket: Ticket


def draft_from_ticket(*, actor: User, ticket: Ticket) -> ArticleDraft:
    """A draft article made of ``ticket`` (from tickets.queries.ticket_get for ``actor``):
    the problem (its description), the resolution (its note) and the steps the staff wrote
    on it (replies, and internal notes marked as such), in order. Always internal to agents:
    the writer decides who else reads it, and takes out what they should not (an article's
    earlier versions stay staff's). The ticket's category only if it is MSP-wide (an
    organization's own category belongs to articles for that organization)."""
    steps = [
        ("(internal note) " if c.is_internal else "") + c.body.strip()
        for c in Comment.objects.filter(ticket=ticket)
        .exclude(author__role=Role.REQUESTER)
        .order_by("created_at", "id")
        if c.body.strip()
    ]
    sections = [f"## Problem\n\n{ticket.description.strip() or ticket.subject}"]
    if steps:
        lines = "\n".join(f"{i}. " + step.replace("\n", "\n   ") for i, step in enumerate(steps, 1))
        sections.append(f"## Steps\n\n{lines}")
    sections.append("## Resolution\n\n" + (ticket.resolution_note.strip() or "_Describe the fix._"))
    category = ticket.category
    return ArticleDraft(
        title=ticket.subject[:200],
        body="\n\n".join(sections) + "\n",
        category=category if category is not None and category.organization_id is None else None,
        tags=sorted(t.name for t in ticket.tags.all()),
        audience="internal",
        source_ticket=ticket,
    )


# --- images in articles -------------------------------------------------------------------


def file_list(*, article: Article) -> list[ArticleAttachment]:
    """The images of ``article`` (from article_get, so already readable), by name."""
    return list(ArticleAttachment.objects.filter(article=article).order_by("filename", "id"))


def file_get(*, actor: User, ref: str | int, filename: str) -> ArticleAttachment:
    """The image ``filename`` of article ``ref`` (slug or id), if the actor may read the
    article; else NotFound, the same for a hidden article as for a missing one."""
    article = article_get(actor=actor, ref=ref)
    found = ArticleAttachment.objects.filter(article=article, filename=filename).first()
    if found is None:
        raise NotFound("No such file.")
    found.article = article
    return found
