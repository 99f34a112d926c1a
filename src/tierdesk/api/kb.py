"""Knowledge base: articles, their versions and review, search, feedback, and what they did
for tickets (uses) and for requesters who needed no ticket (deflections)."""

from __future__ import annotations

import datetime as dt
import logging
import urllib.parse
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from django.conf import settings
from django.db.models import Count, Q
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from ninja import File, Query, Router, Schema
from ninja.files import UploadedFile
from pydantic import Field, StringConstraints

from tierdesk.api.common import (
    IDEMPOTENCY_HEADER,
    actor,
    etag_for,
    expected_version,
    idempotent,
    json_response,
    optional_actor,
    reject_unknown_query,
)
from tierdesk.api.schemas import ERRORS, CleanInput, Problem, StrictInput
from tierdesk.core import files
from tierdesk.core.errors import ContentTooLarge, NotFound, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, Organization, Role, User
from tierdesk.kb import queries, services
from tierdesk.kb.models import (
    Article,
    ArticleAttachment,
    ArticleFeedback,
    ArticleStatus,
    ArticleUse,
    ArticleVersion,
    Deflection,
    FeedbackKind,
)
from tierdesk.tickets import queries as ticket_queries
from tierdesk.tiers.models import Category

log = logging.getLogger(__name__)
router = Router(tags=["knowledge base"])

StatusName = Literal["draft", "in_review", "published", "archived"]
AudienceKind = Literal["public", "organization", "internal", "tier"]
UseKindName = Literal["suggested", "linked", "solved"]
ArticleRef = Annotated[str, StringConstraints(min_length=1, max_length=254)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=services.TITLE_MAX)]
Body = Annotated[str, StringConstraints(max_length=services.BODY_MAX)]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=80, pattern=r"^[-a-zA-Z0-9_]+$")]
AudienceLabel = Annotated[str, StringConstraints(min_length=1, max_length=20)]
CategoryRef = Annotated[str, StringConstraints(min_length=1, max_length=50)]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=services.TAG_MAX)]
Note = Annotated[str, StringConstraints(max_length=services.NOTE_MAX)]
VersionNumber = Annotated[int, Field(ge=1, le=2**31)]
MAX_RELATED = 20

AUDIENCE_HELP = (
    "Who reads it: 'public' (every requester), an organization's code (that organization's "
    "requesters), 'internal' (agents), or 'tier:<code>' (agents of that tier and above). "
    "Staff read every audience within the organizations they serve."
)


# --- schemas ------------------------------------------------------------------------------


class ArticleOut(Schema):
    id: int
    slug: str
    title: str
    status: StatusName
    audience: str = Field(description=AUDIENCE_HELP)
    category: str | None = Field(description="The category's slug.")
    tags: list[str]
    owner: str = Field(description="The owner's email.")
    reviewer: str | None = Field(description="Who published it (email).")
    review_by: dt.date | None
    stale: bool = Field(description="Published and past its review-by date.")
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    published_at: dt.datetime | None


class ArticleDetail(ArticleOut):
    body: str | None = Field(
        description="Markdown, as written; for staff only (null for requesters, who read "
        "body_html: the source may hold what the rendering leaves out, such as comments)."
    )
    body_html: str = Field(description="The body rendered and sanitized (an allow-list).")
    related: list[str] = Field(description="Slugs of the related articles the caller may read.")
    helpful: int
    not_helpful: int


class ArticlePage(Schema):
    items: list[ArticleOut]
    next_offset: int | None = Field(
        None, description="Pass as ?offset= for the next page; null on the last page."
    )


class ArticleListParams(CleanInput):
    status: list[StatusName] = Field(default_factory=list)
    category: list[CategoryRef] = Field(
        default_factory=list, max_length=20, description="Category slug or id."
    )
    tag: list[TagName] = Field(
        default_factory=list,
        max_length=10,
        description="Articles that carry every one of these tags.",
    )
    audience: list[AudienceKind] = Field(default_factory=list)
    stale: bool | None = Field(None, description="true: published and past review-by.")
    open_flags: bool | None = Field(
        None,
        description="Staff only. true: flagged as outdated and not resolved yet; false: not.",
    )
    text: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="In the title, any case."
    )
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class ArticleCreate(StrictInput):
    title: Title
    body: Body = Field("", description="Markdown; raw HTML is sanitized.")
    slug: Slug | None = Field(None, description="Default: made from the title.")
    category: CategoryRef | None = Field(
        None,
        description="Category slug: MSP-wide, or the audience organization's own.",
    )
    tags: list[TagName] = Field(default_factory=list, max_length=services.MAX_TAGS)
    audience: AudienceLabel = Field("internal", description=AUDIENCE_HELP)
    review_by: dt.date | None = None
    related: list[ArticleRef] = Field(
        default_factory=list, max_length=MAX_RELATED, description="Slugs or ids."
    )
    status: StatusName = Field("draft", description="Reviewers only may create other statuses.")
    note: Note = Field("", description="The first version's note.")


class ArticlePatch(StrictInput):
    title: Title | None = None
    body: Body | None = None
    category: CategoryRef | None = Field(None, description="null removes the category.")
    tags: list[TagName] | None = Field(None, max_length=services.MAX_TAGS)
    audience: AudienceLabel | None = Field(None, description=AUDIENCE_HELP)
    review_by: dt.date | None = Field(None, description="null removes the date.")
    related: list[ArticleRef] | None = Field(
        None, max_length=MAX_RELATED, description="Replaces the related articles."
    )
    note: Note = Field("", description="The new version's note, when the text changes.")


class ArticleStatusChange(StrictInput):
    status: StatusName
    note: Note = ""


class ArticleVersionOut(Schema):
    number: int
    title: str
    author: str | None = Field(description="The author's email.")
    note: str
    created_at: dt.datetime


class ArticleDiffParams(CleanInput):
    old: VersionNumber | None = Field(None, description="Required. A version number.")
    new: VersionNumber | None = Field(None, description="Required. A version number.")


class ArticleDiffLine(Schema):
    op: Literal["+", "-", " "]
    text: str


class ArticleDiffOut(Schema):
    title_changed: bool
    lines: list[ArticleDiffLine]


class ArticleVoteIn(StrictInput):
    helpful: bool


class ArticleFlagIn(StrictInput):
    comment: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="What is out of date."
    )


class ArticleFlagOut(Schema):
    id: int
    article: str
    comment: str
    created_at: dt.datetime


class ArticleFlagDetail(ArticleFlagOut):
    flagged_by: str | None = Field(description="Who flagged it (email).")
    resolved_at: dt.datetime | None
    resolved_by: str | None = Field(description="Who resolved it (email).")
    resolution_note: str


class ArticleFlagResolveIn(StrictInput):
    note: Note = Field("", description="What was done about it (optional); audited.")


class ArticleUseIn(StrictInput):
    ticket: ArticleRef = Field(description="The ticket's key (ACME-12) or id.")
    kind: UseKindName


class ArticleUseOut(Schema):
    id: int
    article: str
    ticket: str
    kind: UseKindName
    tier: str | None = Field(description="The tier the ticket was at.")
    created_at: dt.datetime


class DeflectionIn(StrictInput):
    article: ArticleRef = Field(description="The article's slug or id.")
    query: Annotated[str, StringConstraints(max_length=500)] = Field(
        "", description="What the requester searched for."
    )


class DeflectionOut(Schema):
    id: int
    article: str
    query: str
    created_at: dt.datetime


class KbSearchParams(CleanInput):
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="The searcher's words; any may match, more matches rank higher."
    )
    category: list[CategoryRef] = Field(default_factory=list, max_length=20)
    tag: list[TagName] = Field(default_factory=list, max_length=10)
    audience: list[AudienceKind] = Field(default_factory=list)
    status: list[StatusName] = Field(
        default_factory=list,
        description="Staff only: search these statuses (default: published). Requesters "
        "find published articles only: another status from them is refused (422).",
    )
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    prefix: bool = Field(False, description="The last word may be unfinished (search as you type).")


class KbSearchHit(Schema):
    id: int
    slug: str
    title: str
    snippet: str = Field(description="HTML: escaped text, the matched words in <mark>.")
    score: float


class KbSearchPage(Schema):
    items: list[KbSearchHit]


# --- rendering ----------------------------------------------------------------------------


def article_out(article: Article) -> dict[str, Any]:
    """An article as lists show it; ``article`` with category, organization, min_tier,
    owner, reviewer and tags loaded (kb.queries does), else they are read here."""
    category = article.category
    reviewer = article.reviewer
    return {
        "id": article.pk,
        "slug": article.slug,
        "title": article.title,
        "status": article.status,
        "audience": article.audience_label,
        "category": category.slug if category else None,
        "tags": sorted(t.name for t in article.tags.all()),
        "owner": article.owner.email,
        "reviewer": reviewer.email if reviewer else None,
        "review_by": article.review_by,
        "stale": queries.is_stale(article),
        "version": article.version,
        "created_at": article.created_at,
        "updated_at": article.updated_at,
        "published_at": article.published_at,
    }


def _votes(article: Article) -> dict[str, int]:
    # kb.queries counts votes only on its lists (article_list); one aggregate for one article.
    counts = ArticleFeedback.objects.filter(article=article).aggregate(
        helpful=Count("pk", filter=Q(kind=FeedbackKind.HELPFUL)),
        not_helpful=Count("pk", filter=Q(kind=FeedbackKind.NOT_HELPFUL)),
    )
    return {"helpful": counts["helpful"] or 0, "not_helpful": counts["not_helpful"] or 0}


def article_detail(user: User, article: Article) -> dict[str, Any]:
    return {
        **article_out(article),
        "body": article.body if user.role in STAFF_ROLES else None,
        "body_html": article.body_html,
        "related": [a.slug for a in queries.related_articles(actor=user, article=article)],
        **_votes(article),
    }


def article_response(user: User, article: Article, status: int = 200) -> HttpResponse:
    # Built straight from the row like tickets; the contract tests check it against
    # ArticleDetail.
    return json_response(status, article_detail(user, article), ETag=etag_for(article.version))


def version_out(version: ArticleVersion) -> dict[str, Any]:
    author = version.author
    return {
        "number": version.number,
        "title": version.title,
        "author": author.email if author else None,
        "note": version.note,
        "created_at": version.created_at,
    }


# --- parsing references -------------------------------------------------------------------


def _category(organization: Organization | None, ref: str | None) -> Category | None:
    return services.category_for(organization, ref) if ref is not None else None


def _articles(user: User, field: str, refs: Sequence[str]) -> list[Article]:
    """The articles ``refs`` name that the caller may read; any other is refused beside
    ``field``, a hidden one exactly like a missing one."""
    found = []
    for ref in refs:
        try:
            found.append(queries.article_get(actor=user, ref=ref))
        except NotFound:
            raise ValidationFailed.for_field(field, f"no article {ref.strip()[:80]!r}") from None
    return found


# --- articles -----------------------------------------------------------------------------

IF_MATCH = {
    "parameters": [
        {
            "in": "header",
            "name": "If-Match",
            "required": True,
            "schema": {"type": "string"},
            "description": "The ETag last read; a stale one gets 412.",
        }
    ]
}


@router.get("/kb/articles", response={200: ArticlePage, **ERRORS}, summary="List articles")
def list_articles(request: HttpRequest, params: Query[ArticleListParams]) -> HttpResponse:
    reject_unknown_query(request, ArticleListParams)
    # One more than asked tells whether another page follows.
    rows = queries.article_list(
        actor=actor(request),
        filters=queries.ArticleFilters(
            status=list(params.status),
            category=params.category,
            tags=params.tag,
            audience=list(params.audience),
            stale=params.stale,
            open_flags=params.open_flags,
            text=params.text,
        ),
        limit=params.limit + 1,
        offset=params.offset,
    )
    more = len(rows) > params.limit
    return json_response(
        200,
        {
            "items": [article_out(a) for a in rows[: params.limit]],
            "next_offset": params.offset + params.limit if more else None,
        },
    )


@router.post(
    "/kb/articles",
    response={201: ArticleDetail, 409: Problem, **ERRORS},
    summary="Write an article (a draft, unless a reviewer says otherwise)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_article(request: HttpRequest, payload: ArticleCreate) -> HttpResponse:
    user = actor(request)
    audience, organization, min_tier = services.audience_from_label(user, payload.audience)
    article = services.article_create(
        actor=user,
        title=payload.title,
        body=payload.body,
        slug=payload.slug or "",
        category=_category(organization, payload.category),
        tags=payload.tags,
        audience=audience,
        organization=organization,
        min_tier=min_tier,
        status=payload.status,
        review_by=payload.review_by,
        related=_articles(user, "related", payload.related),
        note=payload.note,
    )
    # Rendered from what the service returns, not re-read through the caller's scope: an
    # agent may write for a tier above their own, which they then cannot read.
    response = article_response(user, article, 201)
    response["Location"] = f"/api/v1/kb/articles/{article.slug}"
    return response


@router.get(
    "/kb/articles/{article_ref}",
    response={200: ArticleDetail, **ERRORS},
    summary="Read an article (ref: its slug or id)",
)
def get_article(request: HttpRequest, article_ref: ArticleRef) -> HttpResponse:
    user = actor(request)
    return article_response(user, queries.article_get(actor=user, ref=article_ref))


@router.patch(
    "/kb/articles/{article_ref}",
    response={200: ArticleDetail, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Change an article; a new title or body is a new version",
    openapi_extra=IF_MATCH,
)
def update_article(
    request: HttpRequest, article_ref: ArticleRef, payload: ArticlePatch
) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    version = expected_version(request)
    given = payload.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("title", "body", "tags"):
        if name in given:
            value = getattr(payload, name)
            if value is None:
                raise ValidationFailed.for_field(name, "may not be null")
            changes[name] = value
    if "review_by" in given:
        changes["review_by"] = payload.review_by
    organization = article.organization
    if "audience" in given:
        if payload.audience is None:
            raise ValidationFailed.for_field("audience", "may not be null")
        audience, organization, min_tier = services.audience_from_label(user, payload.audience)
        changes.update(audience=audience, organization=organization, min_tier=min_tier)
    if "category" in given:
        changes["category"] = _category(organization, payload.category)
    if "related" in given:
        if payload.related is None:
            raise ValidationFailed.for_field("related", "may not be null")
        changes["related"] = _articles(user, "related", payload.related)
    updated = services.article_update(
        actor=user, article=article, expected_version=version, note=payload.note, **changes
    )
    return article_response(user, updated)


@router.post(
    "/kb/articles/{article_ref}/status",
    response={200: ArticleDetail, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Move an article: draft, in review, published, archived",
    openapi_extra=IF_MATCH,
)
def change_status(
    request: HttpRequest, article_ref: ArticleRef, payload: ArticleStatusChange
) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    moved = services.article_transition(
        actor=user,
        article=article,
        to=payload.status,
        note=payload.note,
        expected_version=expected_version(request),
    )
    return article_response(user, moved)


@router.get(
    "/kb/articles/{article_ref}/versions",
    response={200: list[ArticleVersionOut], **ERRORS},
    summary="The article's versions, newest first",
)
def list_versions(request: HttpRequest, article_ref: ArticleRef) -> list[dict[str, Any]]:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    return [version_out(v) for v in queries.version_list(actor=user, article=article)]


@router.get(
    "/kb/articles/{article_ref}/diff",
    response={200: ArticleDiffOut, **ERRORS},
    summary="What changed in the text between two versions",
)
def diff_versions(
    request: HttpRequest, article_ref: ArticleRef, params: Query[ArticleDiffParams]
) -> dict[str, Any]:
    # The article first: a hidden one answers 404 whatever the query says.
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    reject_unknown_query(request, ArticleDiffParams)
    if params.old is None or params.new is None:
        raise ValidationFailed.for_field("old" if params.old is None else "new", "required")
    diff = queries.version_diff(actor=user, article=article, old=params.old, new=params.new)
    return {
        "title_changed": diff.title_changed,
        "lines": [{"op": op, "text": text} for op, text in diff.lines],
    }


# --- feedback, flags, uses, deflections ---------------------------------------------------


@router.post(
    "/kb/articles/{article_ref}/feedback",
    response={204: None, **ERRORS},
    summary="Vote on a published article; voting again replaces the vote",
)
def vote(request: HttpRequest, article_ref: ArticleRef, payload: ArticleVoteIn) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    services.article_vote(actor=user, article=article, helpful=payload.helpful)
    return HttpResponse(status=204)


@router.post(
    "/kb/articles/{article_ref}/flags",
    response={201: ArticleFlagOut, 409: Problem, **ERRORS},
    summary="Flag an article as out of date (staff)",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def flag(request: HttpRequest, article_ref: ArticleRef, payload: ArticleFlagIn) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    flagged = services.article_flag_outdated(actor=user, article=article, comment=payload.comment)
    body = {
        "id": flagged.pk,
        "article": article.slug,
        "comment": flagged.comment,
        "created_at": flagged.created_at,
    }
    return json_response(201, body)


def flag_out(flag: ArticleFeedback, article: Article) -> dict[str, Any]:
    resolved_by = flag.resolved_by
    return {
        "id": flag.pk,
        "article": article.slug,
        "comment": flag.comment,
        "created_at": flag.created_at,
        "flagged_by": flag.user.email,
        "resolved_at": flag.resolved_at,
        "resolved_by": resolved_by.email if resolved_by else None,
        "resolution_note": flag.resolution_note,
    }


@router.get(
    "/kb/articles/{article_ref}/flags",
    response={200: list[ArticleFlagDetail], **ERRORS},
    summary="The article's open outdated flags, oldest first (its owner and reviewers; an "
    "empty list for anyone else)",
)
def list_flags(request: HttpRequest, article_ref: ArticleRef) -> list[dict[str, Any]]:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    return [flag_out(f, article) for f in queries.outdated_flags(actor=user, article=article)]


@router.post(
    "/kb/articles/{article_ref}/flags/{flag_id}/resolve",
    response={200: ArticleFlagDetail, 409: Problem, **ERRORS},
    summary="Resolve an outdated flag (the article's owner, reviewers), with an optional note",
)
def resolve_flag(
    request: HttpRequest,
    article_ref: ArticleRef,
    flag_id: Annotated[int, Field(ge=1, le=2**62)],
    payload: ArticleFlagResolveIn,
) -> dict[str, Any]:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    resolved = services.article_flag_resolve(
        actor=user, article=article, flag_id=flag_id, note=payload.note
    )
    return flag_out(resolved, article)


def use_out(use: ArticleUse, article: Article, ticket_key: str) -> dict[str, Any]:
    tier = use.tier
    return {
        "id": use.pk,
        "article": article.slug,
        "ticket": ticket_key,
        "kind": use.kind,
        "tier": tier.code if tier else None,
        "created_at": use.created_at,
    }


@router.post(
    "/kb/articles/{article_ref}/uses",
    response={201: ArticleUseOut, 409: Problem, **ERRORS},
    summary="Record the article's part in a ticket: suggested, linked, or solved it",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def add_use(request: HttpRequest, article_ref: ArticleRef, payload: ArticleUseIn) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    try:
        ticket = ticket_queries.ticket_get(actor=user, ref=payload.ticket)
    except NotFound:
        raise ValidationFailed.for_field("ticket", "no such ticket") from None
    use = services.article_use(actor=user, article=article, ticket=ticket, kind=payload.kind)
    return json_response(201, use_out(use, article, ticket.key))


@router.post(
    "/kb/deflections",
    response={201: DeflectionOut, 409: Problem, **ERRORS},
    summary="A requester found the answer in an article and opens no ticket",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def add_deflection(request: HttpRequest, payload: DeflectionIn) -> HttpResponse:
    user = actor(request)
    [article] = _articles(user, "article", [payload.article])
    deflection: Deflection = services.deflection_record(
        actor=user, article=article, query=payload.query
    )
    body = {
        "id": deflection.pk,
        "article": article.slug,
        "query": deflection.query,
        "created_at": deflection.created_at,
    }
    return json_response(201, body)


# --- search -------------------------------------------------------------------------------


@router.get(
    "/kb/search",
    response={200: KbSearchPage, **ERRORS},
    summary="Search the articles the caller may read, best first",
)
def search(request: HttpRequest, params: Query[KbSearchParams]) -> HttpResponse:
    reject_unknown_query(request, KbSearchParams)
    user = actor(request)
    statuses = list(params.status)
    if user.role == Role.REQUESTER:
        # Requesters read published articles only: another status is not theirs to choose.
        if any(s != ArticleStatus.PUBLISHED for s in statuses):
            raise ValidationFailed.for_field("status", "requesters search published articles")
        statuses = []
    hits = queries.article_search(
        actor=user,
        text=params.q,
        filters=queries.ArticleFilters(
            status=statuses,
            category=params.category,
            tags=params.tag,
            audience=list(params.audience),
        ),
        published_only=not statuses,
        limit=params.limit,
        prefix=params.prefix,
    )
    items = [
        {
            "id": h.article_id,
            "slug": h.slug,
            "title": h.title,
            "snippet": h.snippet,
            "score": h.score,
        }
        for h in hits
    ]
    return json_response(200, {"items": items})


# --- images in articles -------------------------------------------------------------------

FileName = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class ArticleFileOut(Schema):
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str = Field(description="Where the image is read, with a token or a session.")
    markdown: str = Field(description="What to write in the article's body to show it.")
    created_at: dt.datetime


def file_out(attachment: ArticleAttachment, slug: str) -> dict[str, Any]:
    quoted = urllib.parse.quote(attachment.filename)
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "url": services.files_url(slug) + quoted,
        "markdown": f"![{attachment.filename}](attachment:{quoted})",
        "created_at": attachment.created_at,
    }


@router.get(
    "/kb/articles/{article_ref}/files",
    response={200: list[ArticleFileOut], **ERRORS},
    summary="List an article's images",
)
def list_files(request: HttpRequest, article_ref: ArticleRef) -> list[dict[str, Any]]:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    return [file_out(f, article.slug) for f in queries.file_list(article=article)]


@router.post(
    "/kb/articles/{article_ref}/files",
    response={201: ArticleFileOut, 412: Problem, 413: Problem, 428: Problem, **ERRORS},
    summary="Add an image (multipart/form-data, field 'file'; PNG, JPEG, GIF or WebP); one "
    "of the same name is replaced. Changes the article's ETag",
    openapi_extra=IF_MATCH,
)
def add_file(
    request: HttpRequest, article_ref: ArticleRef, file: File[UploadedFile]
) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    version = expected_version(request)
    if file.size is not None and file.size > settings.ATTACHMENT_MAX_BYTES:
        raise ContentTooLarge.for_field(
            "file", f"larger than the limit of {settings.ATTACHMENT_MAX_BYTES} bytes"
        )
    attachment = services.article_file_add(
        actor=user,
        article=article,
        filename=file.name or "",
        content=file.read(settings.ATTACHMENT_MAX_BYTES + 1),
        expected_version=version,
    )
    body = ArticleFileOut.model_validate(file_out(attachment, article.slug)).model_dump(mode="json")
    # The ETag is the article's (changed by this upload), for the next If-Match.
    return json_response(201, body, Location=body["url"], ETag=etag_for(article.version))


@router.get(
    "/kb/articles/{article_ref}/files/{filename}",
    response={200: None, **ERRORS},
    summary="Read an article's image",
    auth=None,
    openapi_extra={"security": [{"TokenAuth": []}]},
)
def read_file(
    request: HttpRequest, article_ref: ArticleRef, filename: FileName
) -> HttpResponseBase:
    # As ticket attachments: an anonymous request is answered like a missing file (404).
    reader = optional_actor(request)
    if reader is None:
        raise NotFound("No such file.")
    attachment = queries.file_get(actor=reader, ref=article_ref, filename=filename)
    try:
        handle = open(files.path(attachment.storage_key), "rb")  # noqa: SIM115 - FileResponse closes it
    except FileNotFoundError:
        log.error("article file %s: %s is missing", attachment.pk, attachment.storage_key)
        raise NotFound("The file is missing; an administrator was told.") from None
    # Only checked raster images are stored (core.files.check_image), so inline is safe;
    # the headers keep a browser from reading it as anything else.
    response = FileResponse(handle, content_type=attachment.content_type)
    response["Content-Disposition"] = content_disposition_header(False, attachment.filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=300"
    response["ETag"] = f'"{attachment.sha256}"'
    return response


@router.delete(
    "/kb/articles/{article_ref}/files/{filename}",
    response={204: None, 412: Problem, 428: Problem, **ERRORS},
    summary="Remove an article's image. Changes the article's ETag",
    openapi_extra=IF_MATCH,
)
def remove_file(request: HttpRequest, article_ref: ArticleRef, filename: FileName) -> HttpResponse:
    user = actor(request)
    article = queries.article_get(actor=user, ref=article_ref)
    services.article_file_remove(
        actor=user, article=article, filename=filename, expected_version=expected_version(request)
    )
    response = HttpResponse(status=204)
    response["ETag"] = etag_for(article.version)  # the article's, changed by this removal
    return response
