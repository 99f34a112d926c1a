"""The only code that changes the knowledge base.

Each service checks the actor (kb.write / kb.review in the policy, and that the article and
everything it names are within what the actor may read), validates, writes the article, its
version and its search index in one transaction, and audits the change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from tierdesk.core import clock, files, policy
from tierdesk.core.audit import AuditAction, record, record_and_emit
from tierdesk.core.errors import (
    Conflict,
    DomainError,
    FieldIssue,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.models import Organization, Role, User
from tierdesk.core.services import full_clean_or_raise
from tierdesk.core.unset import UNSET
from tierdesk.kb import markup, portable, search
from tierdesk.kb.models import (
    Article,
    ArticleAttachment,
    ArticleFeedback,
    ArticleStatus,
    ArticleUse,
    ArticleVersion,
    Audience,
    Deflection,
    FeedbackKind,
    UseKind,
)
from tierdesk.kb.scope import scope_for
from tierdesk.tickets.models import Tag, Ticket
from tierdesk.tickets.queries import ticket_scope
from tierdesk.tiers.models import Category, Tier

TITLE_MAX = 200
BODY_MAX = 200_000
MAX_TAGS = 20
TAG_MAX = 50
NOTE_MAX = 500
DEFLECTION_REPEAT = dt.timedelta(minutes=30)  # one requester, one article: counted once

# status -> statuses it may move to
TRANSITIONS: dict[str, frozenset[str]] = {
    ArticleStatus.DRAFT: frozenset({ArticleStatus.IN_REVIEW, ArticleStatus.ARCHIVED}),
    ArticleStatus.IN_REVIEW: frozenset({ArticleStatus.PUBLISHED, ArticleStatus.DRAFT}),
    ArticleStatus.PUBLISHED: frozenset({ArticleStatus.ARCHIVED, ArticleStatus.DRAFT}),
    ArticleStatus.ARCHIVED: frozenset({ArticleStatus.DRAFT}),
}


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ValidationFailed.for_field("title", "a title is required")
    if len(title) > TITLE_MAX:
        raise ValidationFailed.for_field("title", f"at most {TITLE_MAX} characters")
    if not title.isprintable():
        raise ValidationFailed.for_field("title", "printable characters only")
    return title


def _clean_body(body: str) -> str:
    if len(body) > BODY_MAX:
        raise ValidationFailed.for_field("body", f"at most {BODY_MAX:,} characters")
    if "\x00" in body:
        raise ValidationFailed.for_field("body", "must not contain NUL characters")
    return body.replace("\r\n", "\n")


def _clean_tags(tags: Iterable[str]) -> list[str]:
    names = sorted({t.strip().lower() for t in tags} - {""})
    if len(names) > MAX_TAGS:
        raise ValidationFailed.for_field("tags", f"at most {MAX_TAGS} tags")
    for name in names:
        if len(name) > TAG_MAX or not name.replace("-", "").replace("_", "").isalnum():
            raise ValidationFailed.for_field(
                "tags", f"{name[:TAG_MAX]!r}: letters, digits, dashes, at most {TAG_MAX}"
            )
    return names


def files_url(slug: str) -> str:
    """Where the images of article ``slug`` are served (api.kb), as its rendered text links
    them: readable with the reader's session or token."""
    return f"/api/v1/kb/articles/{slug}/files/"


def _set_text(article: Article, title: str, body: str) -> None:
    article.title = title
    article.body = body
    article.body_html = markup.render(body, files_url=files_url(article.slug))
    article.body_text = markup.plain_text(article.body_html)


def _check_audience(
    actor: User | None,
    audience: str,
    organization: Organization | None,
    min_tier: Tier | None,
    category: Category | None,
) -> None:
    if audience not in Audience.values:
        raise ValidationFailed.for_field("audience", f"one of {', '.join(Audience.values)}")
    if audience == Audience.ORGANIZATION:
        if organization is None:
            raise ValidationFailed.for_field("organization", "required for this audience")
        if actor is not None and not policy.can_see_organization(actor, organization.pk):
            raise ValidationFailed.for_field("organization", "no such organization")
    elif organization is not None:
        raise ValidationFailed.for_field("organization", "only for an organization's article")
    if audience == Audience.TIER and min_tier is None:
        raise ValidationFailed.for_field("min_tier", "required for a tier's article")
    if audience == Audience.TIER and actor is not None and min_tier is not None:
        scope = scope_for(actor)
        if not scope.everything and min_tier.pk not in scope.tier_ids:
            # The writer could not read it back.
            raise ValidationFailed.for_field("min_tier", "a tier above your own")
    if audience != Audience.TIER and min_tier is not None:
        raise ValidationFailed.for_field("min_tier", "only for a tier's article")
    if category is not None and category.organization_id is not None:
        # An organization's own category only fits that organization's articles.
        if organization is None or category.organization_id != organization.pk:
            raise ValidationFailed.for_field("category", "no such category for this article")
        if actor is not None and not policy.can_see_organization(actor, organization.pk):
            raise ValidationFailed.for_field("category", "no such category")


def _readable(actor: User, article: Article) -> bool:
    scope = scope_for(actor)
    return scope.everything or (
        type(article)._default_manager.filter(scope.as_q(), pk=article.pk).exists()
    )


def _all_readable(actor: User, articles: Sequence[Article]) -> bool:
    ids = {a.pk for a in articles}
    found = Article.objects.filter(scope_for(actor).as_q(), pk__in=ids).count()
    return found == len(ids)


def _may_edit(actor: User, article: Article) -> bool:
    if policy.allowed(actor, "kb.review"):
        return True
    return (
        policy.allowed(actor, "kb.write")
        and article.owner_id == actor.pk
        and article.status in (ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW)
    )


def _tags(names: Sequence[str]) -> list[Tag]:
    if not names:
        return []
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    return [existing[n] for n in names]


# Slugs the pages' own addresses use (console/kb/new, portal/kb/suggest, …).
SLUG_MAX = 80
NOT_SLUG = re.compile(r"[^a-z0-9]+")  # what slugify keeps but a slug may not hold: _, runs of -
RESERVED_SLUGS = frozenset({"new", "preview", "suggest", "search", "files"})


def _check_slug(slug: str) -> None:
    """A slug names one article in addresses and files: lower-case letters and digits in
    words joined by single dashes (the rule `kb import` holds files to, so that every
    article exported imports again), not a word the pages use, and not all digits (those
    are read as an article's id)."""
    if not portable.SLUG.match(slug) or len(slug) > SLUG_MAX:
        raise ValidationFailed.for_field(
            "slug", f"lower-case letters and digits joined by single dashes, at most {SLUG_MAX}"
        )
    if slug in RESERVED_SLUGS or slug.isdigit():
        raise ValidationFailed.for_field(
            "slug", f"{slug!r} is taken by the pages; add a word to it"
        )


def _free_slug(title: str) -> str:
    base = NOT_SLUG.sub("-", slugify(title))[:70].strip("-") or "article"
    if base in RESERVED_SLUGS or base.isdigit():
        base = f"article-{base}"
    slug, n = base, 1
    while Article.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _add_version(article: Article, author: User | None, note: str, now: dt.datetime) -> int:
    last = (
        ArticleVersion.objects.filter(article=article)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    number = (last or 0) + 1
    ArticleVersion.objects.create(
        article=article,
        number=number,
        title=article.title,
        body=article.body,
        author=author,
        note=note[:NOTE_MAX],
        created_at=now,
    )
    return number


def _summary(article: Article, tags: Sequence[str]) -> dict[str, Any]:
    return {
        "slug": article.slug,
        "title": article.title,
        "status": article.status,
        "audience": article.audience_label,
        "category": article.category.slug if article.category else None,
        "tags": list(tags),
    }


@transaction.atomic
def article_create(
    *,
    actor: User | None,
    title: str,
    body: str = "",
    slug: str = "",
    category: Category | None = None,
    tags: Iterable[str] = (),
    audience: str = Audience.INTERNAL,
    organization: Organization | None = None,
    min_tier: Tier | None = None,
    owner: User | None = None,
    status: str = ArticleStatus.DRAFT,
    review_by: dt.date | None = None,
    related: Iterable[Article] = (),
    note: str = "",
    source_ticket: Ticket | None = None,
) -> Article:
    """A new article, as a draft unless a reviewer (or the system: ``actor`` None, for
    imports and the demo) says otherwise; version 1 of its text. ``source_ticket``: the
    ticket it is written from, which the actor must be able to read (tickets.queries)."""
    if actor is not None:
        policy.require(actor, "kb.write")
        if status != ArticleStatus.DRAFT:
            policy.require(actor, "kb.review", "Only reviewers create articles in that status.")
    if status not in ArticleStatus.values:
        raise ValidationFailed.for_field("status", f"one of {', '.join(ArticleStatus.values)}")
    owner = owner or actor
    if owner is None or owner.role not in (Role.AGENT, Role.MANAGER, Role.ADMIN):
        raise ValidationFailed.for_field("owner", "an article's owner is a staff member")
    reviewer = None
    if actor is not None and status in (ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED):
        # As in article_transition: someone other than its owner reviews an article.
        if owner.pk == actor.pk and actor.role != Role.ADMIN:
            raise PermissionDenied("Someone other than its owner reviews an article.")
        reviewer = actor
    _check_audience(actor, audience, organization, min_tier, category)
    if (
        actor is not None
        and source_ticket is not None
        and not ticket_scope(actor).filter(pk=source_ticket.pk).exists()
    ):
        raise ValidationFailed.for_field("source_ticket", "no such ticket")
    names = _clean_tags(tags)
    now = clock.now()
    article = Article(
        slug=(slug.strip().lower() or _free_slug(title)),
        category=category,
        audience=audience,
        organization=organization,
        min_tier=min_tier,
        owner=owner,
        status=status,
        review_by=review_by,
        reviewer=reviewer,
        source_ticket=source_ticket,
        created_at=now,
        updated_at=now,
        published_at=now if status == ArticleStatus.PUBLISHED else None,
    )
    _set_text(article, _clean_title(title), _clean_body(body))
    _check_slug(article.slug)
    if Article.objects.filter(slug=article.slug).exists():
        raise Conflict.for_field("slug", f"an article with slug {article.slug!r} exists")
    full_clean_or_raise(article, exclude=["owner", "reviewer", "related", "tags"])
    try:
        with transaction.atomic():
            article.save()
    except IntegrityError:
        raise Conflict.for_field("slug", f"an article with slug {article.slug!r} exists") from None
    article.tags.set(_tags(names))
    related = [r for r in related if r.pk != article.pk]
    if actor is not None and related and not _all_readable(actor, related):
        raise ValidationFailed.for_field("related", "no such article")
    article.related.set(related)
    _add_version(article, actor, note or "Created", now)
    search.index(article, names)
    record_and_emit(
        actor=actor,
        action=AuditAction.ARTICLE_CREATED,
        target_type="article",
        target_id=article.pk,
        organization=organization,
        changes=_summary(article, names),
        payload={"article_id": article.pk, **_summary(article, names)},
    )
    return article


@transaction.atomic
def article_update(
    *,
    actor: User | None,
    article: Article,
    expected_version: int | None = None,
    title: str = UNSET,
    body: str = UNSET,
    category: Category | None = UNSET,
    tags: Iterable[str] = UNSET,
    audience: str = UNSET,
    organization: Organization | None = UNSET,
    min_tier: Tier | None = UNSET,
    review_by: dt.date | None = UNSET,
    related: Iterable[Article] = UNSET,
    note: str = "",
) -> Article:
    """Change an article. A new text (title or body) is a new version. Owners edit their
    drafts and articles in review; reviewers any article but an archived one."""
    article = Article.objects.select_for_update(of=("self",)).get(pk=article.pk)
    if actor is not None:
        if not _readable(actor, article):
            raise NotFound("No such article.")
        if not _may_edit(actor, article):
            raise PermissionDenied(
                "Only reviewers change a published article; flag it as outdated instead."
                if article.status == ArticleStatus.PUBLISHED
                else "You may not change this article."
            )
    if article.status == ArticleStatus.ARCHIVED:
        raise InvalidTransition("An archived article is not edited: move it back to draft.")
    if expected_version is not None and expected_version != article.version:
        raise PreconditionFailed(
            f"The article changed since you read it (version {article.version}, "
            f"you had {expected_version}): reload it and apply your change again."
        )
    changes: dict[str, Any] = {}
    new_title = _clean_title(title) if title is not UNSET else article.title
    new_body = _clean_body(body) if body is not UNSET else article.body
    text_changed = (new_title, new_body) != (article.title, article.body)
    if text_changed:
        if new_title != article.title:
            changes["title"] = {"old": article.title, "new": new_title}
        if new_body != article.body:
            changes["body"] = {"old_length": len(article.body), "new_length": len(new_body)}
        _set_text(article, new_title, new_body)
    wanted = {
        "category": category,
        "audience": audience,
        "organization": organization,
        "min_tier": min_tier,
        "review_by": review_by,
    }
    for name, value in wanted.items():
        if value is UNSET or getattr(article, name) == value:
            continue
        old = getattr(article, name)
        changes[name] = {"old": _shown(old), "new": _shown(value)}
        setattr(article, name, value)
    _check_audience(
        actor, article.audience, article.organization, article.min_tier, article.category
    )
    current_tags = sorted(article.tags.values_list("name", flat=True))
    names = current_tags
    if tags is not UNSET:
        names = _clean_tags(tags)
        if names != current_tags:
            changes["tags"] = {"old": current_tags, "new": names}
    if related is not UNSET:
        wanted_related = {r.pk for r in related if r.pk != article.pk}
        have = set(article.related.values_list("pk", flat=True))
        if actor is not None:
            readable = set(
                Article.objects.filter(
                    scope_for(actor).as_q(), pk__in=have | wanted_related
                ).values_list("pk", flat=True)
            )
            if wanted_related - readable:
                raise ValidationFailed.for_field("related", "no such article")
            wanted_related |= have - readable  # links the actor cannot see stay
        if wanted_related != have:
            changes["related"] = {"old": sorted(have), "new": sorted(wanted_related)}
            article.related.set(list(wanted_related))
    if not changes:
        return article
    now = clock.now()
    article.version += 1
    article.updated_at = now
    full_clean_or_raise(article, exclude=["owner", "reviewer", "related", "tags", "slug"])
    article.save()
    if "tags" in changes:
        article.tags.set(_tags(names))
    if text_changed:
        changes["version"] = _add_version(article, actor, note or "Edited", now)
    search.index(article, names)
    record(
        actor=actor,
        action=AuditAction.ARTICLE_UPDATED,
        target_type="article",
        target_id=article.pk,
        organization=article.organization,
        changes=changes,
    )
    return article


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, dt.date):
        return value.isoformat()
    return getattr(value, "code", None) or getattr(value, "slug", None) or str(value)


def _check_mover(actor: User, article: Article, old: str, to: str) -> None:
    """PermissionDenied unless ``actor`` may move ``article`` from ``old`` to ``to`` (an
    allowed transition): owners send to review and withdraw, reviewers do the rest, and
    nobody but an admin publishes their own article."""
    owner_move = article.owner_id == actor.pk and (
        (old, to)
        in {
            (ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW),
            (ArticleStatus.IN_REVIEW, ArticleStatus.DRAFT),
        }
    )
    if owner_move:
        policy.require(actor, "kb.write")
    else:
        policy.require(actor, "kb.review", "Only reviewers (managers, admins) do this.")
    if to == ArticleStatus.PUBLISHED and article.owner_id == actor.pk and actor.role != Role.ADMIN:
        raise PermissionDenied("Someone other than its owner reviews an article.")


def transitions_for(*, actor: User, article: Article) -> list[str]:
    """The statuses ``actor`` may move ``article`` (read through kb.queries: authorized) to
    now, in workflow order: the same rules as article_transition, for offering buttons."""
    offered = []
    for to in ArticleStatus.values:
        if to not in TRANSITIONS[article.status]:
            continue
        try:
            _check_mover(actor, article, article.status, to)
        except PermissionDenied:
            continue
        offered.append(to)
    return offered


def may_edit(*, actor: User, article: Article) -> bool:
    """Whether article_update would let ``actor`` change ``article`` (read through
    kb.queries: authorized): owners their drafts and articles in review, reviewers any
    article that is not archived."""
    return article.status != ArticleStatus.ARCHIVED and _may_edit(actor, article)


@transaction.atomic
def article_transition(
    *,
    actor: User | None,
    article: Article,
    to: str,
    note: str = "",
    expected_version: int | None = None,
) -> Article:
    """Move an article through draft → in review → published → archived (and back to
    draft). Owners send their drafts to review and withdraw them; reviewers publish (not
    their own article, unless they are admins), send back, unpublish and archive."""
    article = Article.objects.select_for_update(of=("self",)).get(pk=article.pk)
    if actor is not None and not _readable(actor, article):
        raise NotFound("No such article.")
    if to not in ArticleStatus.values:
        raise ValidationFailed.for_field("status", f"one of {', '.join(ArticleStatus.values)}")
    if expected_version is not None and expected_version != article.version:
        raise PreconditionFailed("The article changed since you read it: reload it.")
    old = article.status
    if to == old:
        if actor is not None and not _may_edit(actor, article):
            raise PermissionDenied("You may not change this article's status.")
        return article
    if to not in TRANSITIONS[old]:
        raise InvalidTransition(
            f"An article that is {ArticleStatus(old).label.lower()} cannot become "
            f"{ArticleStatus(to).label.lower()}."
        )
    if actor is not None:
        _check_mover(actor, article, old, to)
    now = clock.now()
    article.status = to
    article.version += 1
    article.updated_at = now
    fields = ["status", "version", "updated_at"]
    if to == ArticleStatus.PUBLISHED:
        article.published_at = now
        article.reviewer = actor
        fields += ["published_at", "reviewer"]
    article.save(update_fields=fields)
    record_and_emit(
        actor=actor,
        action=AuditAction.ARTICLE_STATUS_CHANGED,
        target_type="article",
        target_id=article.pk,
        organization=article.organization,
        changes={"status": {"old": old, "new": to}, "note": note[:NOTE_MAX]},
        payload={"article_id": article.pk, "slug": article.slug, "old": old, "new": to},
    )
    return article


# --- feedback, uses, deflections ------------------------------------------------------------


def _published_for(actor: User, article: Article) -> None:
    if article.status != ArticleStatus.PUBLISHED or not _readable(actor, article):
        raise NotFound("No such article.")


@transaction.atomic
def article_vote(*, actor: User, article: Article, helpful: bool) -> ArticleFeedback:
    """A reader's vote on a published article; voting again replaces the earlier vote."""
    _published_for(actor, article)
    kind = FeedbackKind.HELPFUL if helpful else FeedbackKind.NOT_HELPFUL
    votes = ArticleFeedback.objects.filter(
        article=article, user=actor, kind__in=[FeedbackKind.HELPFUL, FeedbackKind.NOT_HELPFUL]
    )
    vote = votes.first()
    if vote is None:
        try:
            with transaction.atomic():
                return ArticleFeedback.objects.create(
                    article=article, user=actor, kind=kind, created_at=clock.now()
                )
        except IntegrityError:  # the same vote sent twice at once: the other one landed
            vote = votes.get()
    if vote.kind != kind:
        vote.kind = kind
        vote.created_at = clock.now()
        vote.save(update_fields=["kind", "created_at"])
    return vote


@transaction.atomic
def article_flag_outdated(*, actor: User, article: Article, comment: str) -> ArticleFeedback:
    """An agent's note that an article is out of date, and what is wrong."""
    policy.require(actor, "kb.write")
    if not _readable(actor, article):
        raise NotFound("No such article.")
    comment = comment.strip()
    if not comment:
        raise ValidationFailed.for_field("comment", "say what is out of date")
    if len(comment) > 2000:
        raise ValidationFailed.for_field("comment", "at most 2,000 characters")
    return ArticleFeedback.objects.create(
        article=article,
        user=actor,
        kind=FeedbackKind.OUTDATED,
        comment=comment,
        created_at=clock.now(),
    )


def may_resolve_flags(*, actor: User, article: Article) -> bool:
    """Whether ``actor`` may resolve ``article``'s outdated flags (``article`` read through
    kb.queries: authorized): its owner (staff who write) and reviewers, who act on them."""
    return policy.allowed(actor, "kb.review") or (
        policy.allowed(actor, "kb.write") and article.owner_id == actor.pk
    )


@transaction.atomic
def article_flag_resolve(
    *, actor: User, article: Article, flag_id: int, note: str = ""
) -> ArticleFeedback:
    """Resolve the open outdated flag ``flag_id`` on ``article`` (from kb.queries for
    ``actor``), with an optional note: its owner or a reviewer. A flag of another article,
    or none, is NotFound; one already resolved is a Conflict (two people resolving it at
    once: the second is told). Audited."""
    if not _readable(actor, article):
        raise NotFound("No such article.")
    if not may_resolve_flags(actor=actor, article=article):
        raise PermissionDenied("Only the article's owner and reviewers resolve its flags.")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ValidationFailed.for_field("note", f"at most {NOTE_MAX} characters")
    flags = ArticleFeedback.objects.filter(pk=flag_id, article=article, kind=FeedbackKind.OUTDATED)
    flag = flags.select_related("user").first()
    if flag is None:
        raise NotFound("No such flag on this article.")
    now = clock.now()
    # A conditional update: of two resolves at once, one changes the row, the other is told.
    if not flags.filter(resolved_at__isnull=True).update(
        resolved_at=now, resolved_by=actor, resolution_note=note
    ):
        raise Conflict("This flag is already resolved.")
    flag.resolved_at, flag.resolved_by, flag.resolution_note = now, actor, note
    record(
        actor=actor,
        action=AuditAction.ARTICLE_FLAG_RESOLVED,
        target_type="article",
        target_id=article.pk,
        organization=article.organization,
        changes={
            "flag": flag.pk,
            "flagged_by": flag.user.email,
            "comment": flag.comment[:NOTE_MAX],
            "note": note,
        },
    )
    return flag


@transaction.atomic
def article_use(*, actor: User, article: Article, ticket: Ticket, kind: str) -> ArticleUse:
    """Record an article's part in a ticket (suggested to its requester, linked by an
    agent, or the solution), with the tier the ticket is at now. ``ticket`` comes from
    tickets.queries.ticket_get for ``actor`` (already authorized)."""
    if kind not in UseKind.values:
        raise ValidationFailed.for_field("kind", f"one of {', '.join(UseKind.values)}")
    if kind != UseKind.SUGGESTED:
        policy.require(actor, "kb.write")
    if not _readable(actor, article):
        raise NotFound("No such article.")
    use, _ = ArticleUse.objects.get_or_create(
        article=article,
        ticket=ticket,
        kind=kind,
        defaults={
            "organization_id": ticket.organization_id,
            "tier_id": ticket.tier_id,
            "actor": actor,
            "created_at": clock.now(),
        },
    )
    return use


@transaction.atomic
def deflection_record(*, actor: User, article: Article, query: str = "") -> Deflection:
    """A requester says a suggested article solved their problem: no ticket is opened."""
    if actor.role != Role.REQUESTER or actor.organization_id is None:
        raise PermissionDenied("Only requesters record that an article solved their problem.")
    _published_for(actor, article)
    # "This solved my problem" sent twice (a double click, the browser's back and again)
    # is one deflection, not two: the requester's row is locked so that two requests at
    # once cannot both find no earlier one (SQLite's writers queue at BEGIN already).
    User.objects.select_for_update().filter(pk=actor.pk).exists()
    now = clock.now()
    earlier = Deflection.objects.filter(
        article=article, requester=actor, created_at__gte=now - DEFLECTION_REPEAT
    ).first()
    if earlier is not None:
        return earlier
    return Deflection.objects.create(
        article=article,
        organization_id=actor.organization_id,
        requester=actor,
        query=" ".join(query.split())[:500],
        created_at=now,
    )


# --- audiences as words, and importing files ------------------------------------------------


def audience_from_label(
    actor: User | None, label: str
) -> tuple[str, Organization | None, Tier | None]:
    """``public``, ``internal``, ``tier:L2`` or an organization's code, as (audience,
    organization, lowest tier). An organization the actor does not see reads as unknown."""
    from tierdesk.tiers.services import tier_by_code

    text = label.strip()
    if text.lower() in (Audience.PUBLIC, Audience.INTERNAL):
        return text.lower(), None, None
    if text.lower().startswith("tier:"):
        try:
            return Audience.TIER, None, tier_by_code(text[5:])
        except ValidationFailed:
            raise ValidationFailed.for_field("audience", f"no tier {text[5:]!r}") from None
    org = (
        policy.visible_organization(actor, code=text.upper())
        if actor is not None
        else Organization.objects.filter(code=text.upper()).first()
    )
    if org is None:
        raise ValidationFailed.for_field(
            "audience", "public, internal, tier:<code> or the code of an organization you serve"
        )
    return Audience.ORGANIZATION, org, None


def category_for(organization: Organization | None, slug: str) -> Category:
    """The active category ``slug`` an article of ``organization`` may have: MSP-wide, or
    that organization's own (never another client's)."""
    from tierdesk.tiers.queries import category_for_organization

    found = (
        category_for_organization(organization, slug)
        if organization is not None
        else Category.objects.filter(
            organization__isnull=True, slug=slug.strip().lower(), is_active=True
        ).first()
    )
    if found is None:
        raise ValidationFailed.for_field("category", f"no category {slug!r} for this article")
    return found


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # images as "<slug>/<name>"
    images_added: list[str] = field(default_factory=list)
    images_replaced: list[str] = field(default_factory=list)
    images_removed: list[str] = field(default_factory=list)


@dataclass
class _Image:
    name: str
    content: bytes
    sha256: str


@dataclass
class _Plan:
    doc: Any  # kb.portable.Document
    audience: str
    organization: Organization | None
    min_tier: Tier | None
    category: Category | None
    tags: list[str]
    images: dict[str, _Image] = field(default_factory=dict)


def _plan(actor: User | None, doc: Any) -> _Plan:
    """What ``doc`` asks for, checked before anything is written: the audience and category
    by the rule an edit follows (_check_audience, as article_create and article_update
    apply it), so an importer sets no audience their role could not set in the editor."""
    _clean_title(doc.title)
    _clean_body(doc.body)
    if doc.status not in ArticleStatus.values:
        raise ValidationFailed.for_field("status", f"one of {', '.join(ArticleStatus.values)}")
    audience, organization, min_tier = audience_from_label(actor, doc.audience)
    category = category_for(organization, doc.category) if doc.category else None
    _check_audience(actor, audience, organization, min_tier, category)
    return _Plan(doc, audience, organization, min_tier, category, _clean_tags(doc.tags))


def _plan_images(doc: Any) -> tuple[dict[str, _Image], list[FieldIssue]]:
    """The images of ``doc`` (kb.portable.Image) by the name they are stored under, checked
    as an upload is (article_file_add); and the problems, each naming the image's file."""
    images: dict[str, _Image] = {}
    problems: list[FieldIssue] = []
    for image in doc.images:
        try:
            name = files.safe_filename(image.name)
            files.check_image(name, image.content)
        except DomainError as exc:
            problems.append(
                FieldIssue(image.path, exc.errors[0].message if exc.errors else exc.detail)
            )
            continue
        if name in images:
            problems.append(FieldIssue(image.path, f"another file is also named {name!r}"))
            continue
        images[name] = _Image(name, image.content, hashlib.sha256(image.content).hexdigest())
    if len(doc.images) > MAX_FILES:
        problems.append(
            FieldIssue(
                doc.path, f"an article has at most {MAX_FILES} images, not {len(doc.images)}"
            )
        )
    return images, problems


def article_import(
    *, actor: User | None, documents: Sequence[Any], owner: User | None = None
) -> ImportReport:
    """Create or update the articles ``documents`` (kb.portable) describe, with their
    images, all or nothing. An unchanged file changes nothing; a changed text makes a new
    version; the status is set as the file says; an article's images become those of its
    document (same bytes: untouched; other bytes: replaced; not there: removed). Reviewers
    (or the system: ``actor`` None) import; new articles belong to ``owner`` (default: the
    actor). Related articles must be imported too or readable by the actor; links to
    articles the actor cannot read (which their export left out) are kept.

    New images are stored (synced) before the transaction commits and discarded if it does
    not; the bytes of replaced and removed images go once it has. Called inside an outer
    transaction that later rolls back, the new bytes stay until core.files.sweep_orphans.
    """
    stored: list[str] = []  # keys of the bytes this import wrote
    try:
        with transaction.atomic():
            return _import(actor, documents, owner, stored)
    except BaseException:
        for key in stored:
            files.discard(key)
        raise


def _import(
    actor: User | None, documents: Sequence[Any], owner: User | None, stored: list[str]
) -> ImportReport:
    if actor is not None:
        policy.require(actor, "kb.review", "Only reviewers (managers, admins) import articles.")
    owner = owner or actor
    problems: list[FieldIssue] = []
    plans: list[_Plan] = []
    for doc in documents:
        images, image_problems = _plan_images(doc)
        problems += image_problems
        try:
            plans.append(_plan(actor, doc))
        except DomainError as exc:
            problems.append(FieldIssue(doc.path, exc.detail))
            continue
        plans[-1].images = images
    # A related article is one imported too, or one the actor may read; one they may not is
    # "no article", exactly like a missing one.
    named = Article.objects.filter(slug__in=[s for p in plans for s in p.doc.related])
    if actor is not None:
        named = named.filter(scope_for(actor).as_q())
    known = {p.doc.slug for p in plans} | set(named.values_list("slug", flat=True))
    for p in plans:
        missing = [s for s in p.doc.related if s not in known]
        if missing:
            problems.append(FieldIssue(p.doc.path, f"related: no article {missing[0]!r}"))
    if problems:
        raise ValidationFailed(
            f"{len(problems)} file(s) refused; nothing was imported: "
            + "; ".join(f"{i.field}: {i.message}" for i in problems[:20]),
            errors=problems,
        )
    report = ImportReport()
    by_slug: dict[str, Article] = {}
    for p in plans:
        try:
            by_slug[p.doc.slug] = _import_one(actor, owner, p, report, stored)
        except DomainError as exc:
            raise ValidationFailed(
                f"{p.doc.path}: {exc.detail}; nothing was imported",
                errors=[FieldIssue(p.doc.path, exc.detail)],
            ) from None
    # Related is symmetrical: a pair named in either file is related.
    pairs: dict[str, set[str]] = {p.doc.slug: set(p.doc.related) for p in plans}
    for p in plans:
        for other in p.doc.related:
            if other in pairs:
                pairs[other].add(p.doc.slug)
    links = Article.related.through.objects.filter(
        from_article__in=list(by_slug.values())
    ).values_list("from_article__slug", "to_article__slug")
    have: dict[str, set[str]] = {slug: set() for slug in by_slug}
    for source, target in links:
        have[source].add(target)
    hidden: set[str] = set()
    if actor is not None:
        linked = {s for targets in have.values() for s in targets}
        hidden = linked - set(
            Article.objects.filter(scope_for(actor).as_q(), slug__in=linked).values_list(
                "slug", flat=True
            )
        )
    for p in plans:
        article = by_slug[p.doc.slug]
        # Links to articles the actor cannot read stay: their export left them out.
        wanted = (pairs[p.doc.slug] | (have[article.slug] & hidden)) - {article.slug}
        if wanted != have[article.slug]:
            article.related.set(Article.objects.filter(slug__in=wanted))
            if p.doc.slug in report.unchanged:
                report.unchanged.remove(p.doc.slug)
                report.updated.append(p.doc.slug)
    return report


def _import_one(
    actor: User | None, owner: User | None, p: _Plan, report: ImportReport, stored: list[str]
) -> Article:
    doc = p.doc
    # Locked for the whole import of this file: its status and text are read, then changed.
    existing = Article.objects.select_for_update().filter(slug=doc.slug).first()
    if existing is None:
        article = article_create(
            actor=None if actor is None else actor,
            owner=owner,
            title=doc.title,
            body=doc.body,
            slug=doc.slug,
            category=p.category,
            tags=p.tags,
            audience=p.audience,
            organization=p.organization,
            min_tier=p.min_tier,
            status=doc.status,
            review_by=doc.review_by,
            note="Imported",
        )
        _import_images(actor, article, p.images, report, stored)
        report.created.append(doc.slug)
        return article
    if actor is not None and not _readable(actor, existing):
        # What article_create says of a slug in use: nothing about the article behind it.
        raise Conflict.for_field("slug", f"an article with slug {doc.slug!r} exists")
    before = existing.version
    images_changed = False
    if existing.status == ArticleStatus.ARCHIVED and doc.status != ArticleStatus.ARCHIVED:
        _set_status(actor, existing, ArticleStatus.DRAFT, "import")
    if existing.status != ArticleStatus.ARCHIVED:
        existing = article_update(
            actor=actor,  # the edit's own checks, as for the importer's edit in the editor
            article=existing,
            title=doc.title,
            body=doc.body,
            category=p.category,
            tags=p.tags,
            audience=p.audience,
            organization=p.organization,
            min_tier=p.min_tier,
            review_by=doc.review_by,
            note="Imported",
        )
        # Like its text, an archived article's images are not changed by an import.
        images_changed = _import_images(actor, existing, p.images, report, stored)
    if existing.status != doc.status:
        if (
            doc.status == ArticleStatus.PUBLISHED
            and actor is not None
            and existing.owner_id == actor.pk
            and actor.role != Role.ADMIN
        ):
            # The editor's rule (_check_mover): an import is no way around the review.
            raise PermissionDenied("Someone other than its owner publishes an article.")
        _set_status(actor, existing, doc.status, "import")
    changed = existing.version != before or images_changed
    (report.updated if changed else report.unchanged).append(doc.slug)
    return existing


def _import_images(
    actor: User | None,
    article: Article,
    images: dict[str, _Image],
    report: ImportReport,
    stored: list[str],
) -> bool:
    """Make ``article``'s images ``images``: the same bytes under the same name are left
    alone (no row, no file, no audit entry); whether anything changed. New bytes are noted
    in ``stored`` for the caller to discard if the transaction fails."""
    have = {a.filename: a for a in ArticleAttachment.objects.filter(article=article)}
    gone: list[str] = []
    changed = False
    for name, image in images.items():
        old = have.get(name)
        if old is not None and old.sha256 == image.sha256:
            continue
        changed = True
        new = files.store(image.content)
        stored.append(new.storage_key)
        if old is not None:
            old.delete()
            gone.append(old.storage_key)
        _file_row(actor, article, name, new, replaced=old is not None)
        (report.images_replaced if old else report.images_added).append(f"{article.slug}/{name}")
    for name, old in have.items():
        if name not in images:
            _file_row_removed(actor, article, old)
            gone.append(old.storage_key)
            report.images_removed.append(f"{article.slug}/{name}")
    if gone:
        transaction.on_commit(lambda: _discard(gone))
    if changed or gone:
        _touch(article)  # locked: article_create made it, or article_update locked it
    return changed or bool(gone)


def _discard(keys: Sequence[str]) -> None:
    for key in keys:
        files.discard(key)


def _set_status(actor: User | None, article: Article, to: str, note: str) -> None:
    """Set the status without the review workflow (imports by reviewers), audited."""
    old = article.status
    now = clock.now()
    article.status = to
    article.version += 1
    article.updated_at = now
    if to == ArticleStatus.PUBLISHED:
        article.published_at = article.published_at or now
        article.reviewer = actor
    article.save(update_fields=["status", "version", "updated_at", "published_at", "reviewer"])
    record_and_emit(
        actor=actor,
        action=AuditAction.ARTICLE_STATUS_CHANGED,
        target_type="article",
        target_id=article.pk,
        organization=article.organization,
        changes={"status": {"old": old, "new": to}, "note": note},
        payload={"article_id": article.pk, "slug": article.slug, "old": old, "new": to},
    )


# --- images in articles -------------------------------------------------------------------

MAX_FILES = 50  # per article


def _check_file_editor(actor: User, article: Article) -> None:
    if not may_edit(actor=actor, article=article):
        if article.status == ArticleStatus.ARCHIVED and _may_edit(actor, article):
            raise InvalidTransition("An archived article is not edited: move it back to draft.")
        raise PermissionDenied("You may not change this article.")


def _lock_for_files(article: Article, expected_version: int | None) -> Article:
    """``article``'s row, locked, when ``expected_version`` (None: any) is still current:
    images follow the same concurrency rule as edits (article_update)."""
    locked = Article.objects.select_for_update(of=("self",)).get(pk=article.pk)
    if expected_version is not None and expected_version != locked.version:
        raise PreconditionFailed(
            f"The article changed since you read it (version {locked.version}, you had "
            f"{expected_version}): reload it and apply your change again."
        )
    return locked


def _touch(article: Article) -> None:
    """A change of ``article``'s images (its row locked): a new concurrency token, like every
    other change, though not a new text version."""
    article.version += 1
    article.updated_at = clock.now()
    article.save(update_fields=["version", "updated_at"])


def article_file_add(
    *,
    actor: User,
    article: Article,
    filename: str,
    content: bytes,
    expected_version: int | None = None,
) -> ArticleAttachment:
    """Store an image for ``article`` (from queries.article_get for ``actor``), shown where
    its text says ``![alt](attachment:NAME)``. Whoever may edit the article may add one; a
    file of the same name is replaced. Like an edit, it is refused (PreconditionFailed)
    when ``expected_version`` is no longer the article's, and it moves the version:
    ``article.version`` is the new one afterwards. The bytes are synced before the row
    commits and removed again if it does not."""
    _check_file_editor(actor, article)
    name = files.safe_filename(filename)
    files.check_image(name, content)
    stored = files.store(content)
    replaced: str | None = None
    try:
        with transaction.atomic():
            locked = _lock_for_files(article, expected_version)
            _check_file_editor(actor, locked)  # as it is now: archived meanwhile, say
            old = ArticleAttachment.objects.filter(article=article, filename=name).first()
            if old is None and ArticleAttachment.objects.filter(article=article).count() >= (
                MAX_FILES
            ):
                raise ValidationFailed.for_field(
                    "file", f"an article has at most {MAX_FILES} images"
                )
            if old is not None:
                replaced = old.storage_key
                old.delete()
                # Once committed, also when this runs inside a larger transaction: a
                # rollback brings the old row back, and it must still have its bytes.
                transaction.on_commit(lambda: files.discard(replaced))
            attachment = _file_row(actor, article, name, stored, replaced=replaced is not None)
            _touch(locked)
    except BaseException:
        files.discard(stored.storage_key)
        raise
    article.version, article.updated_at = locked.version, locked.updated_at
    return attachment


def _file_row_removed(actor: User | None, article: Article, attachment: ArticleAttachment) -> None:
    """Delete ``attachment``'s row, audited; its bytes go once the transaction has
    committed (the caller discards them)."""
    attachment.delete()
    record(
        actor=actor,
        action=AuditAction.ARTICLE_FILE_REMOVED,
        target_type="article",
        target_id=article.pk,
        organization=article.organization,
        changes={"file": attachment.filename},
    )


def _file_row(
    actor: User | None, article: Article, name: str, stored: files.Stored, *, replaced: bool
) -> ArticleAttachment:
    """The row naming ``stored`` as ``article``'s image ``name`` (checked, and free: the row
    it replaces deleted), audited: for uploads and imports."""
    attachment = ArticleAttachment.objects.create(
        article=article,
        filename=name,
        storage_key=stored.storage_key,
        content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        size=stored.size,
        sha256=stored.sha256,
        uploaded_by=actor,
        created_at=clock.now(),
    )
    record(
        actor=actor,
        action=AuditAction.ARTICLE_FILE_ADDED,
        target_type="article",
        target_id=article.pk,
        organization=article.organization,
        changes={"file": name, "size": stored.size, "replaced": replaced},
    )
    return attachment


def article_file_remove(
    *, actor: User, article: Article, filename: str, expected_version: int | None = None
) -> None:
    """Remove the image ``filename`` from ``article``; its bytes go once the row is gone.
    The same concurrency rule as article_file_add: refused when ``expected_version`` is no
    longer current; ``article.version`` is the new one afterwards."""
    _check_file_editor(actor, article)
    with transaction.atomic():
        locked = _lock_for_files(article, expected_version)
        _check_file_editor(actor, locked)
        found = ArticleAttachment.objects.filter(article=article, filename=filename).first()
        if found is None:
            raise NotFound("No such file on this article.")
        _file_row_removed(actor, article, found)
        _touch(locked)
        key = found.storage_key
        transaction.on_commit(lambda: files.discard(key))  # see article_file_add
    article.version, article.updated_at = locked.version, locked.updated_at
