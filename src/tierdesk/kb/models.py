"""Knowledge base articles, their versions, feedback, and what they did for tickets.

An article's audience says who reads it: every requester (``public``), one organization's
requesters (``organization``, which then names it), agents only (``internal``), or agents of
a tier and above (``tier``, which then names the lowest tier). Staff read every audience
within the organizations they serve; the search index follows the same rules (kb.queries).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q

from tierdesk.core.models import Organization, User
from tierdesk.tickets.models import Tag, Ticket
from tierdesk.tiers.models import Category, Tier


class Audience(models.TextChoices):
    PUBLIC = "public", "All requesters"
    ORGANIZATION = "organization", "One organization's requesters"
    INTERNAL = "internal", "Agents"
    TIER = "tier", "Agents of a tier and above"


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"
    ARCHIVED = "archived", "Archived"


class Article(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    # Markdown as written (sanitized on input), the HTML shown (rendered from it through the
    # allow-list), and the plain text the search index and snippets read.
    body = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="articles")
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.INTERNAL)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="articles"
    )
    min_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT
    )
    owner = models.ForeignKey(User, on_delete=models.PROTECT, related_name="owned_articles")
    reviewer = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviewed_articles"
    )
    review_by = models.DateField(null=True, blank=True)
    related = models.ManyToManyField("self", blank=True, symmetrical=True)
    # The ticket the article was written from ("Create article from this ticket"), if any.
    source_ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The number of the latest version; also the concurrency token (ETag / If-Match).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["title", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.CheckConstraint(
                condition=(
                    Q(audience="organization", organization__isnull=False)
                    | (~Q(audience="organization") & Q(organization__isnull=True))
                ),
                name="kb_article_organization_audience",
            ),
            models.CheckConstraint(
                condition=(
                    Q(audience="tier", min_tier__isnull=False)
                    | (~Q(audience="tier") & Q(min_tier__isnull=True))
                ),
                name="kb_article_tier_audience",
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "audience"], name="kb_article_status_audience"),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def audience_label(self) -> str:
        """The audience as the import files and the API write it: ``public``, ``internal``,
        ``tier:L2`` or an organization's code."""
        if self.audience == Audience.TIER and self.min_tier is not None:
            return f"tier:{self.min_tier.code}"
        if self.audience == Audience.ORGANIZATION and self.organization is not None:
            return self.organization.code
        return str(self.audience)


class ArticleVersion(models.Model):
    """One saved state of an article's text; number 1 is the first."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    author = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar[list[str]] = ["article", "-number"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["article", "number"], name="kb_version_unique")
        ]


class FeedbackKind(models.TextChoices):
    HELPFUL = "helpful", "Helpful"
    NOT_HELPFUL = "not_helpful", "Not helpful"
    OUTDATED = "outdated", "Flagged as outdated"


class ArticleFeedback(models.Model):
    """A reader's vote (one per reader and article, changeable) or an agent's flag that the
    article is outdated (with what is wrong), which stays open until the article's owner or
    a reviewer resolves it (kb.services.article_flag_resolve), with an optional note."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=FeedbackKind.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["article", "user"],
                condition=Q(kind__in=["helpful", "not_helpful"]),
                name="kb_one_vote_per_reader",
            )
        ]
        indexes: ClassVar[list[models.Index]] = [
            # "has open flags": the article list's filter and its count.
            models.Index(
                fields=["article"],
                condition=Q(kind="outdated", resolved_at__isnull=True),
                name="kb_feedback_open_flags",
            ),
        ]


class UseKind(models.TextChoices):
    SUGGESTED = "suggested", "Suggested when the ticket was opened"
    LINKED = "linked", "Linked by an agent"
    SOLVED = "solved", "Solved the ticket"


class ArticleUse(models.Model):
    """An article's part in a ticket, with the tier the ticket was at: which knowledge
    resolved which work at which tier (the L2 → L1 loop's evidence)."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="uses")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="article_uses")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=UseKind.choices)
    tier = models.ForeignKey(Tier, null=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["article", "ticket", "kind"], name="kb_use_unique")
        ]


class Deflection(models.Model):
    """A requester who found the answer in an article and opened no ticket."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="deflections")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    requester = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    query = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["organization", "created_at"], name="kb_deflection_org_time"),
        ]


class ArticleAttachment(models.Model):
    """An image shown in an article's text (``![alt](attachment:NAME)``), stored like a
    ticket's files (core.files) and read by whoever may read the article."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    storage_key = models.CharField(max_length=64, unique=True)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar[list[str]] = ["filename", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["article", "filename"], name="kb_attachment_name")
        ]

    def __str__(self) -> str:
        return self.filename


class ArticleEmbedding(models.Model):
    """An article's sentence embedding for the optional semantic re-ranking (kb.semantic):
    made by the worker or ``tierdesk kb embed``, never in a request. A changed text gets a
    new row (a new id), which is how the searching processes notice it."""

    article = models.OneToOneField(Article, on_delete=models.CASCADE, related_name="embedding")
    model = models.CharField(max_length=64)  # another model's vector is stale
    content_hash = models.CharField(max_length=64)  # sha256 of the embedded text
    # The article's version when the embedding was last found current: every change of the
    # article moves its version, so a differing one marks the embedding to be checked.
    article_version = models.PositiveIntegerField()
    vector = models.BinaryField()  # float32, little-endian, unit length
    computed_at = models.DateTimeField()


class TsVectorField(models.Field):
    """PostgreSQL's ``tsvector`` (text elsewhere), written and read in SQL by kb.search
    only: Django's own (``SearchVectorField``) needs ``django.contrib.postgres`` installed,
    which the SQLite default has no use for."""

    def db_type(self, connection: Any) -> str:
        return "tsvector" if connection.vendor == "postgresql" else "text"


class SearchDocument(models.Model):
    """PostgreSQL: an article's full-text search document (kb.search writes and reads it
    in SQL), in a narrow table of its own: a search reads the document of every article
    matching any of its words, and in the wide article rows that cost more than ranking
    them. A model so that Django knows the table (flushes, cascades); on SQLite, where
    FTS5 keeps its own index, it stays empty."""

    article = models.OneToOneField(
        Article, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    document = TsVectorField()

    class Meta:
        db_table = "kb_search_document"


class SearchWord(models.Model):
    """PostgreSQL: how many articles' search documents hold each word (stem), kept by a
    trigger on ``kb_search_document`` in the same transaction as every change of one (the
    kb 0008 migration). Search's typo tolerance and common-word rule read these counts
    (kb.search.vocabulary); ``ts_stat`` computed them from every document, which cost a
    process ~150 ms at 10,000 articles after each article change. A word no article holds
    any more stays with a count of 0. On SQLite, FTS5's ``fts5vocab`` table is the same
    thing, and this table stays empty."""

    word = models.TextField(primary_key=True)
    documents = models.IntegerField()

    class Meta:
        db_table = "kb_search_word"
