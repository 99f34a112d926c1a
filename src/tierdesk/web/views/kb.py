"""The knowledge base in the agent console: the article list with search and filters, the
editor (with a server-rendered preview), an article's page with its review workflow,
feedback and flags, its versions and the diff between any two, "create article from this
ticket", and the article's images under its editor. Staff only; every read goes through
kb.queries (the reader's scope) and every change through kb.services, so a page shows and
does exactly what the API would.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_POST

from tierdesk.core import config, policy
from tierdesk.core.errors import (
    Conflict,
    ContentTooLarge,
    DomainError,
    FieldIssue,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.models import Role, User
from tierdesk.kb import markup, queries, services
from tierdesk.kb.models import Article, ArticleStatus, Audience, UseKind
from tierdesk.kb.scope import scope_for
from tierdesk.tickets import queries as ticket_queries
from tierdesk.tickets.models import Ticket
from tierdesk.tiers import queries as tier_queries
from tierdesk.tiers.models import Category
from tierdesk.tiers.queries import tiers_by_level
from tierdesk.web import queries as web_queries
from tierdesk.web.forms import DomainErrors, choice_field
from tierdesk.web.views.common import View, staff_required
from tierdesk.web.views.console import category_groups, queues

PAGE_SIZE = 25
# A search ranks at most this many articles; the filters and pages work within them.
SEARCH_MAX = 200
MAX_TAG_FILTERS = 10
MAX_RELATED = 20
FLAG_MAX = 2000
# Unchanged lines kept around each change in a diff; longer unchanged runs are folded.
DIFF_CONTEXT = 3

STATUS_NAMES = dict(ArticleStatus.choices)


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """A knowledge-base page inside the console's frame: the queue navigation with the
    Knowledge link marked current."""
    user: User = request.user  # type: ignore[assignment]
    frame = {
        "queues": [(q, None) for q in queues()],
        "saved_views": web_queries.saved_views(actor=user),
        "nav_kb": True,
    }
    return render(request, f"web/console/kb/{template}", {**frame, **context}, status=status)


def requesters_to_portal(portal_view: str) -> Callable[[View], View]:
    """A console page staff open (staff_required) that a requester following a link to it
    finds in the portal instead, at ``portal_view`` with the same arguments: the portal
    decides what they may read there (a hidden article is "not found" in either place)."""

    def decorate(view: View) -> View:
        guarded = staff_required(view)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if user.is_authenticated and user.is_active and user.role == Role.REQUESTER:
                return redirect(portal_view, *args, **kwargs)
            return guarded(request, *args, **kwargs)

        return wrapper

    return decorate


def _load(user: User, slug: str) -> Article:
    try:
        return queries.article_get(actor=user, ref=slug)
    except NotFound:
        raise Http404("No such article.") from None


def _refusal_status(exc: DomainError) -> int:
    """403 for "your role may not", 409 for a conflict (a stale version included), 404 for
    hidden, 413 for a file over the limit, else 400 (bad input)."""
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, Conflict | PreconditionFailed):
        return 409
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, ContentTooLarge):
        return 413
    return 400


def audience_text(article: Article) -> str:
    """Who reads ``article``, in words (organization and tier loaded)."""
    if article.audience == Audience.ORGANIZATION and article.organization is not None:
        return f"{article.organization.code} requesters"
    if article.audience == Audience.TIER and article.min_tier is not None:
        return f"{article.min_tier.code} and above"
    if article.audience == Audience.PUBLIC:
        return "Public"
    return "Internal"


# --- the list --------------------------------------------------------------------------------


class ArticleFilterForm(forms.Form):
    """The filters above the article list. Values outside the choices are refused beside
    the field, and the form keeps what was typed."""

    text = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text="Words in the title, tags or text; every status.",
    )
    status = forms.ChoiceField(
        required=False, choices=[("", "Any"), *ArticleStatus.choices], label="Status"
    )
    category = forms.ChoiceField(required=False, label="Category")
    tags = forms.CharField(
        required=False, max_length=300, label="Tags", help_text="All of them; commas between."
    )
    audience = forms.ChoiceField(
        required=False, choices=[("", "Any"), *Audience.choices], label="Audience"
    )
    stale = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), ("yes", "Stale: review date passed"), ("no", "Not stale")],
        label="Review",
    )
    flags = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), ("open", "Has open flags"), ("none", "No open flags")],
        label="Outdated flags",
    )

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read only when the form is shown or a value is checked.
        choice_field(self, "category").choices = lambda: [
            ("", "Any"),
            *category_groups(actor),
        ]

    def clean_tags(self) -> list[str]:
        names = sorted({n.strip().lower() for n in self.cleaned_data["tags"].split(",")} - {""})
        if len(names) > MAX_TAG_FILTERS:
            raise forms.ValidationError(f"At most {MAX_TAG_FILTERS} tags.")
        if too_long := [n for n in names if len(n) > services.TAG_MAX]:
            raise forms.ValidationError(f"A tag has at most 50 characters: {too_long[0][:50]}…")
        return names

    def filters(self) -> queries.ArticleFilters:
        data = self.cleaned_data
        return queries.ArticleFilters(
            status=[data["status"]] if data["status"] else [],
            category=[data["category"]] if data["category"] else [],
            tags=data["tags"],
            audience=[data["audience"]] if data["audience"] else [],
            stale={"yes": True, "no": False}.get(data["stale"]),
            open_flags={"open": True, "none": False}.get(data["flags"]),
        )


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 100_000 else 1


@requesters_to_portal("web:portal-kb")
@config.pinned()
def article_list(request: HttpRequest) -> HttpResponse:
    """The articles the agent may read, by title, or ranked by a search; 25 a page. The
    same number of queries whatever the page holds."""
    user: User = request.user  # type: ignore[assignment]
    form = ArticleFilterForm(request.GET or None, actor=user)
    page = _page_number(request)
    rows: list[Article] = []
    snippets: dict[int, str] = {}
    more = False
    text = ""
    if not form.is_bound or form.is_valid():
        filters = form.filters() if form.is_bound else queries.ArticleFilters()
        text = form.cleaned_data["text"].strip() if form.is_bound else ""
        if text:
            # The search ranks; the list reads the rows (with votes) and the stale filter,
            # which the index does not know, within the ranked ones.
            hits = queries.article_search(
                actor=user, text=text, filters=filters, published_only=False, limit=SEARCH_MAX
            )
            rank = {h.article_id: i for i, h in enumerate(hits)}
            snippets = {h.article_id: h.snippet for h in hits}
            found = queries.article_list(
                actor=user,
                filters=queries.ArticleFilters(
                    ids=list(rank), stale=filters.stale, open_flags=filters.open_flags
                ),
                limit=SEARCH_MAX,
            )
            found.sort(key=lambda a: rank[a.pk])
            start = (page - 1) * PAGE_SIZE
            rows = found[start : start + PAGE_SIZE]
            more = len(found) > start + PAGE_SIZE
        else:
            # One more than shown tells whether another page follows.
            rows = queries.article_list(
                actor=user, filters=filters, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
            )
            more = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE]
    # The pages' links keep the filters that are set, not the empty ones.
    query = urlencode(
        [(k, v) for k, values in request.GET.lists() if k != "page" for v in values if v]
    )
    base = reverse("web:kb") + (f"?{query}&" if query else "?")
    return _render(
        request,
        "list.html",
        {
            "form": form,
            "rows": [
                {
                    "article": a,
                    "audience": audience_text(a),
                    "stale": queries.is_stale(a),
                    "snippet": snippets.get(a.pk, ""),
                }
                for a in rows
            ],
            "searching": bool(text),
            "page": page,
            "previous_url": f"{base}page={page - 1}" if page > 1 else "",
            "next_url": f"{base}page={page + 1}" if more else "",
            "article_base": reverse("web:kb-article", args=["x"])[:-1],
        },
        status=200 if not form.errors else 400,
    )


# --- the editor ------------------------------------------------------------------------------


def _audience_choices(actor: User) -> list[Any]:
    """public, internal, each tier the writer reaches (a tier above their own would hide the
    article from them), and each organization they serve."""
    scope = scope_for(actor)
    tiers = [t for t in tiers_by_level() if scope.everything or t.pk in scope.tier_ids]
    organizations = policy.visible_organizations(actor).order_by("code")
    return [
        ("public", "Public — every requester"),
        ("internal", "Internal — agents"),
        ("Agents of a tier and above", [(f"tier:{t.code}", f"{t.code} and above") for t in tiers]),
        (
            "One organization's requesters",
            [(o.code, f"{o.code} — {o.name}") for o in organizations],
        ),
    ]


class ArticleForm(DomainErrors, forms.Form):
    """An article as the editor sends it. ``version`` is the concurrency token the page
    showed (a change made meanwhile is refused, not overwritten), ``base`` the text version
    the editor started from (for the diff shown then), ``source_ticket`` the ticket a new
    article is written from (checked again when it is saved)."""

    title = forms.CharField(max_length=services.TITLE_MAX, label="Title")
    body = forms.CharField(
        required=False,
        max_length=services.BODY_MAX,
        strip=False,
        label="Text (Markdown)",
        widget=forms.Textarea(attrs={"rows": 22, "spellcheck": "true"}),
        help_text="Markdown: ## headings, 1. steps, **bold**, `code`, [links](https://…).",
    )
    category = forms.ChoiceField(required=False, label="Category")
    tags = forms.CharField(
        required=False, max_length=1100, label="Tags", help_text="Separate with commas."
    )
    audience = forms.ChoiceField(label="Audience", help_text="Who may read it once published.")
    review_by = forms.DateField(
        required=False,
        label="Review by",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="After this date a published article is marked stale.",
    )
    related = forms.CharField(
        required=False,
        max_length=2000,
        label="Related articles",
        help_text="Their slugs (the last part of an article's address), commas between.",
    )
    note = forms.CharField(
        required=False,
        max_length=services.NOTE_MAX,
        label="Change note",
        help_text="What changed and why; the versions list shows it.",
    )
    version = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    base = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    source_ticket = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)

    def __init__(self, *args: Any, actor: User, article: Article | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.article = article
        choice_field(self, "category").choices = [("", "None"), *category_groups(actor)]
        choice_field(self, "audience").choices = _audience_choices(actor)
        if article is not None:
            del self.fields["source_ticket"]
        else:
            del self.fields["version"]
            del self.fields["base"]

    def clean_category(self) -> Category | None:
        value = self.cleaned_data["category"]
        if not value:
            return None
        found = tier_queries.category_list(actor=self.actor).filter(pk=int(value)).first()
        if found is None:
            raise forms.ValidationError("No such category.")
        current = self.article.category_id if self.article is not None else None
        if not found.is_active and found.pk != current:
            raise forms.ValidationError("This category is retired: choose another.")
        return found

    def clean_tags(self) -> list[str]:
        return [t for t in (n.strip() for n in self.cleaned_data["tags"].split(",")) if t]

    def clean_related(self) -> list[str]:
        slugs = [s for s in re.split(r"[\s,]+", self.cleaned_data["related"]) if s]
        if len(slugs) > MAX_RELATED:
            raise forms.ValidationError(f"At most {MAX_RELATED} related articles.")
        return list(dict.fromkeys(slugs))

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.article is not None and "version" in self.fields and not self.data.get("version"):
            self.add_error(None, "This form is out of date: reload the page and try again.")
        return cleaned

    def add_domain_error(self, exc: DomainError) -> None:
        # The services name the audience's parts; the form has one field for them.
        renamed = [
            FieldIssue(
                "audience" if i.field in ("organization", "min_tier") else i.field, i.message
            )
            for i in exc.errors
        ]
        clone = type(exc)(exc.detail, errors=renamed)
        super().add_domain_error(clone)


def _initial(user: User, article: Article) -> dict[str, Any]:
    return {
        "title": article.title,
        "body": article.body,
        "category": article.category_id or "",
        "tags": ", ".join(sorted(t.name for t in article.tags.all())),
        "audience": article.audience_label,
        "review_by": article.review_by,
        "related": ", ".join(a.slug for a in queries.related_articles(actor=user, article=article)),
        "version": article.version,
        "base": queries.text_version(article),
    }


def _draft_initial(draft: queries.ArticleDraft) -> dict[str, Any]:
    return {
        "title": draft.title,
        "body": draft.body,
        "category": draft.category.pk if draft.category else "",
        "tags": ", ".join(draft.tags),
        "audience": draft.audience,
        "source_ticket": draft.source_ticket.key,
    }


def _ticket(user: User, ref: str) -> Ticket | None:
    try:
        return ticket_queries.ticket_get(actor=user, ref=ref)
    except NotFound:
        return None


def _related(user: User, slugs: list[str]) -> list[Article]:
    """The articles ``slugs`` name that ``user`` may read; any other is refused beside the
    field, a hidden one exactly like a missing one."""
    found = []
    for slug in slugs:
        try:
            found.append(queries.article_get(actor=user, ref=slug))
        except NotFound:
            raise ValidationFailed.for_field("related", f"no article {slug[:80]!r}") from None
    return found


def _article_values(user: User, form: ArticleForm) -> dict[str, Any]:
    """What the services take, from a valid form: the audience's parts, the related
    articles. ValidationFailed names the field."""
    data = form.cleaned_data
    audience, organization, min_tier = services.audience_from_label(user, data["audience"])
    return {
        "title": data["title"],
        "body": data["body"],
        "category": data["category"],
        "tags": data["tags"],
        "audience": audience,
        "organization": organization,
        "min_tier": min_tier,
        "review_by": data["review_by"],
        "related": _related(user, data["related"]),
        "note": data["note"],
    }


def _editor(
    request: HttpRequest,
    user: User,
    form: ArticleForm,
    *,
    article: Article | None,
    source: Ticket | None = None,
    conflict: dict[str, Any] | None = None,
    image_form: ImageForm | None = None,
    images_error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {"form": form, "article": article, "source": source, "conflict": conflict}
    if article is not None:
        context |= _images_context(article, form=image_form, error=images_error)
    return _render(request, "editor.html", context, status=status)


@staff_required
@config.pinned()
def article_new(request: HttpRequest) -> HttpResponse:
    """A new draft, owned by the writer. ``?ticket=ACME-12`` fills it from a ticket the
    writer may open (its problem, steps and resolution) and records that ticket."""
    user: User = request.user  # type: ignore[assignment]
    if request.method != "POST":
        source = None
        initial: dict[str, Any] = {}
        if ref := request.GET.get("ticket", "").strip():
            source = _ticket(user, ref)
            if source is None:
                raise Http404("No such ticket.")
            initial = _draft_initial(queries.draft_from_ticket(actor=user, ticket=source))
        form = ArticleForm(initial=initial, actor=user, article=None)
        return _editor(request, user, form, article=None, source=source)
    form = ArticleForm(request.POST, actor=user, article=None)
    ref = str(form.data.get("source_ticket", "")).strip()
    # Checked again: the page may be old, or the value not the page's.
    source = _ticket(user, ref) if ref else None
    if ref and source is None:
        # Shown without it: saving again writes the article from no ticket.
        data = request.POST.copy()
        data["source_ticket"] = ""
        form = ArticleForm(data, actor=user, article=None)
        form.is_valid()
        form.add_error(
            None,
            f"The ticket {ref[:40]} is not one you can open, so the article cannot record it. "
            "Nothing was saved; save again to keep the article without it.",
        )
        return _editor(request, user, form, article=None, status=400)
    status = 400
    if form.is_valid():
        try:
            article = services.article_create(
                actor=user, source_ticket=source, **_article_values(user, form)
            )
        except DomainError as exc:
            status = _refusal_status(exc)
            form.add_domain_error(exc)
        else:
            messages.success(request, "Draft saved. Send it for review when it is ready.")
            return redirect("web:kb-article", slug=article.slug)
    return _editor(request, user, form, article=None, source=source, status=status)


def _edit_refusal(user: User, article: Article) -> tuple[int, str] | None:
    if article.status == ArticleStatus.ARCHIVED:
        return 409, "An archived article is not edited: restore it as a draft first."
    if services.may_edit(actor=user, article=article):
        return None
    if article.status == ArticleStatus.PUBLISHED:
        return 403, (
            "Only reviewers change a published article. If it is wrong, flag it as outdated "
            "and say what is wrong."
        )
    return 403, "Only its owner and reviewers change an article that is not published."


@staff_required
@config.pinned()
def article_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Change an article. When someone else saved it meanwhile, the editor comes back with
    what was typed, a message and a link to what they changed; saving again applies it."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    if request.method != "POST":
        refusal = _edit_refusal(user, found)
        if refusal is not None:
            return _render(
                request, "refused.html", {"article": found, "reason": refusal[1]}, refusal[0]
            )
        form = ArticleForm(initial=_initial(user, found), actor=user, article=found)
        return _editor(request, user, form, article=found)
    form = ArticleForm(request.POST, actor=user, article=found)
    status = 400
    conflict = None
    if form.is_valid():
        try:
            updated = services.article_update(
                actor=user,
                article=found,
                expected_version=form.cleaned_data["version"],
                **_article_values(user, form),
            )
        except PreconditionFailed:
            status = 409
            # Shown against the article as it is now, with what was typed: saving again
            # applies it to the current version.
            found = _load(user, slug)
            now = queries.text_version(found)
            had = form.cleaned_data["base"] or now
            conflict = {"old": had, "new": now, "text_changed": now != had}
            data = request.POST.copy()
            data["version"] = str(found.version)
            data["base"] = str(now)
            form = ArticleForm(data, actor=user, article=found)
            form.is_valid()
            form.add_error(
                None,
                "Someone else saved this article since you opened it. What you typed is kept "
                "below: compare it with their change, then save again to replace it.",
            )
        except DomainError as exc:
            status = _refusal_status(exc)
            form.add_domain_error(exc)
        else:
            if updated.version == found.version:
                messages.success(request, "Nothing changed.")
            else:
                messages.success(
                    request, f"Saved: version {queries.text_version(updated)} of the text."
                )
            return redirect("web:kb-article", slug=updated.slug)
    return _editor(request, user, form, article=found, conflict=conflict, status=status)


@require_POST
@staff_required
def preview(request: HttpRequest) -> HttpResponse:
    """The editor's text rendered as the article will show it (the same Markdown and
    allow-list): an HTML fragment for the preview beside the text. ``article`` (the slug
    of the article being edited, if the reader may read it) resolves its attached images."""
    user: User = request.user  # type: ignore[assignment]
    body = request.POST.get("body", "")
    files_url = None
    # An article the reader cannot read is previewed as a new one: no attachments.
    if slug := request.POST.get("article", "").strip():
        with contextlib.suppress(NotFound):
            files_url = services.files_url(queries.article_get(actor=user, ref=slug).slug)
    if len(body) > services.BODY_MAX:
        return render(
            request,
            "web/console/kb/_preview.html",
            {"error": f"The text is longer than {services.BODY_MAX:,} characters."},
            status=413,
        )
    html = markup.render(body, files_url=files_url)
    return render(request, "web/console/kb/_preview.html", {"html": html})


# --- images in the editor --------------------------------------------------------------------

IMAGE_ACCEPT = ".png,.jpg,.jpeg,.gif,.webp,image/png,image/jpeg,image/gif,image/webp"


OUT_OF_DATE = "This form is out of date: reload the page and try again."
STALE_IMAGES = (
    "Someone else changed this article since you opened the editor, so nothing was uploaded "
    "or removed. Save your text first (you will see what they changed), then try again."
)


class ImageForm(forms.Form):
    """An image for the article being edited. The form checks the size before the file is
    read; the service checks the rest (what the file is, who may add it, and that the
    article is still at ``version``, the one the editor showed). Every refusal is shown
    beside the file field."""

    file = forms.FileField(
        label="Image file",
        widget=forms.FileInput(attrs={"accept": IMAGE_ACCEPT}),
        error_messages={"required": "Choose an image file to upload."},
    )
    # Rendered by hand (the editor's own form has a "version" too: one id on the page).
    version = forms.IntegerField(
        min_value=1, widget=forms.HiddenInput, error_messages={"required": OUT_OF_DATE}
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            f"PNG, JPEG, GIF or WebP, up to {filesizeformat(settings.ATTACHMENT_MAX_BYTES)}; "
            "an image of the same name is replaced."
        )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if upload.size is not None and upload.size > settings.ATTACHMENT_MAX_BYTES:
            raise forms.ValidationError(
                f"{upload.name}: larger than the limit of "
                f"{filesizeformat(settings.ATTACHMENT_MAX_BYTES)}."
            )
        return upload

    def add_domain_error(self, exc: DomainError) -> None:
        if isinstance(exc, PreconditionFailed):
            self.add_error("file", STALE_IMAGES)
            return
        messages_ = [i.message for i in exc.errors if i.field == "file"] or [exc.detail]
        for message in messages_:
            self.add_error("file", message[:1].upper() + message[1:])

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if "version" in self.errors:  # hidden: said where the writer looks
            self.add_error("file", OUT_OF_DATE)
        return cleaned


@dataclass(frozen=True)
class ImageRow:
    name: str
    size: int
    url: str
    markdown: str


def image_markdown(name: str) -> str:
    """What the text says to show image ``name``: ``![name](attachment:name)``, the name
    escaped for the alt text and quoted for the address (as the API's ``markdown``)."""
    alt = re.sub(r"([\\\[\]])", r"\\\1", name)
    return f"![{alt}](attachment:{quote(name, safe='')})"


def _images_context(
    article: Article,
    *,
    form: ImageForm | None = None,
    said: str = "",
    error: str = "",
    version: int | None = None,
) -> dict[str, Any]:
    """The editor's Images section: the article's images (one query), the upload form, and
    what the last upload or removal did. ``version`` is what its forms send back: the
    version the editor's text was opened at (default: the article's now)."""
    base = services.files_url(article.slug)
    return {
        "article": article,
        "images": [
            ImageRow(
                f.filename, f.size, base + quote(f.filename, safe=""), image_markdown(f.filename)
            )
            for f in queries.file_list(article=article)
        ],
        "image_form": form or ImageForm(),
        "images_said": said,
        "images_error": error,
        "images_max": services.MAX_FILES,
        "images_version": version or article.version,
    }


def _images_answer(
    request: HttpRequest,
    user: User,
    article: Article,
    *,
    form: ImageForm | None = None,
    said: str = "",
    error: str = "",
    status: int = 200,
    sent_version: int | None = None,
) -> HttpResponse:
    """After an upload or a removal. Asked by HTMX: the Images section alone, so the text
    typed in the editor stays as it is; after a change, the editor's own version moves on
    with it (out of band), since the article's version moved by the writer's own change.
    After a refusal the section keeps ``sent_version``, the one the editor's text is at, so
    a change made by someone else meanwhile goes on being refused until the writer saves
    (and sees it) or reloads. Without scripts: back to the editor (a redirect after a
    change; after a refusal the editor with the message, or the page saying why the
    article cannot be edited at all)."""
    if request.htmx:  # type: ignore[attr-defined]
        changed = status < 400
        context = _images_context(
            article,
            form=form,
            said=said,
            error=error,
            version=article.version if changed else sent_version,
        )
        context["editor_version"] = article.version if changed else None
        return render(request, "web/console/kb/_images.html", context, status=status)
    if status < 400:
        messages.success(request, said)
        return redirect(reverse("web:kb-edit", args=[article.slug]) + "#kb-images")
    refusal = _edit_refusal(user, article)
    if refusal is not None:
        return _render(
            request, "refused.html", {"article": article, "reason": refusal[1]}, refusal[0]
        )
    editor = ArticleForm(initial=_initial(user, article), actor=user, article=article)
    return _editor(
        request, user, editor, article=article, image_form=form, images_error=error, status=status
    )


def _sent_version(request: HttpRequest) -> int | None:
    """The article version an images form sent (the editor's), if it is one."""
    raw = request.POST.get("version", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


@require_POST
@staff_required
@config.pinned()
def images(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload an image to the article (whoever may edit it; one of the same name is
    replaced). A refusal is shown beside the file field and stores nothing."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    form = ImageForm(request.POST, request.FILES)
    sent = _sent_version(request)
    if not form.is_valid():
        return _images_answer(request, user, found, form=form, status=400, sent_version=sent)
    upload: UploadedFile = form.cleaned_data["file"]
    had = {f.filename for f in queries.file_list(article=found)}
    try:
        added = services.article_file_add(
            actor=user,
            article=found,
            filename=upload.name or "",
            content=upload.read(settings.ATTACHMENT_MAX_BYTES + 1),
            expected_version=form.cleaned_data["version"],
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _images_answer(
            request, user, found, form=form, status=_refusal_status(exc), sent_version=sent
        )
    said = (
        f"Replaced {added.filename} with the new file."
        if added.filename in had
        else f"Added {added.filename}: insert it where the text should show it."
    )
    return _images_answer(request, user, found, said=said)


@require_POST
@staff_required
@config.pinned()
def image_remove(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """Remove the image ``name`` from the article (whoever may edit it), at the version the
    editor showed."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    sent = _sent_version(request)
    if sent is None:
        return _images_answer(request, user, found, error=OUT_OF_DATE, status=400)
    try:
        services.article_file_remove(
            actor=user, article=found, filename=name, expected_version=sent
        )
    except DomainError as exc:
        error = STALE_IMAGES if isinstance(exc, PreconditionFailed) else exc.detail
        return _images_answer(
            request, user, found, error=error, status=_refusal_status(exc), sent_version=sent
        )
    said = f"Removed {name}. If the text still shows it, take it out of the text too."
    return _images_answer(request, user, found, said=said)


# --- an article's page -----------------------------------------------------------------------


class StatusForm(forms.Form):
    to = forms.ChoiceField(choices=ArticleStatus.choices)
    note = forms.CharField(
        required=False,
        max_length=services.NOTE_MAX,
        label="Note (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why: the audit log keeps it.",
    )
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class FlagForm(DomainErrors, forms.Form):
    comment = forms.CharField(
        max_length=FLAG_MAX,
        label="What is out of date?",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say what is out of date."},
    )


class ResolveFlagForm(DomainErrors, forms.Form):
    """Resolve one open flag; the note says what was done (the audit log keeps it)."""

    note = forms.CharField(required=False, max_length=services.NOTE_MAX, label="Note (optional)")


def _move_label(user: User, article: Article, to: str) -> str:
    if to == ArticleStatus.IN_REVIEW:
        return "Submit for review"
    if to == ArticleStatus.PUBLISHED:
        return "Publish"
    if to == ArticleStatus.ARCHIVED:
        return "Archive"
    if article.status == ArticleStatus.IN_REVIEW:
        return "Withdraw from review" if article.owner_id == user.pk else "Send back to draft"
    if article.status == ArticleStatus.PUBLISHED:
        return "Unpublish"
    return "Restore as draft"


# What the page says after each move (by its button's label).
DONE = {
    "Submit for review": "Sent for review: a reviewer publishes it or sends it back.",
    "Publish": "Published.",
    "Archive": "Archived.",
    "Withdraw from review": "Withdrawn from review: a draft again.",
    "Send back to draft": "Sent back to its owner as a draft.",
    "Unpublish": "Unpublished: a draft again.",
    "Restore as draft": "Restored as a draft.",
}


@dataclass
class PageForms:
    status: StatusForm | None = None
    flag: FlagForm | None = None
    resolve: ResolveFlagForm | None = None
    resolve_flag_id: int | None = None  # the flag ``resolve`` was sent for
    error: str = ""


def _article_page(
    request: HttpRequest,
    user: User,
    article: Article,
    sent: PageForms | None = None,
    status: int = 200,
) -> HttpResponse:
    sent = sent or PageForms()
    source: Ticket | None = None
    if article.source_ticket_id is not None:
        source = _ticket(user, str(article.source_ticket_id))
    published = article.status == ArticleStatus.PUBLISHED
    usage = queries.usage_counts(actor=user, article=article)
    return _render(
        request,
        "article.html",
        {
            "article": article,
            "body_html": markup.sanitize(article.body_html),
            "audience": audience_text(article),
            "tags": sorted(t.name for t in article.tags.all()),
            "stale": queries.is_stale(article),
            "text_version": queries.text_version(article),
            "related": queries.related_articles(actor=user, article=article),
            "source": source,
            "source_hidden": article.source_ticket_id is not None and source is None,
            "may_edit": services.may_edit(actor=user, article=article),
            "moves": [
                (to, _move_label(user, article, to))
                for to in services.transitions_for(actor=user, article=article)
            ],
            "status_form": sent.status or StatusForm(initial={"version": article.version}),
            "votes": queries.article_votes(actor=user, article=article) if published else None,
            "may_flag": policy.allowed(user, "kb.write"),
            "flag_form": sent.flag or FlagForm(),
            "flags": queries.outdated_flags(actor=user, article=article),
            "may_resolve": services.may_resolve_flags(actor=user, article=article),
            "resolve_form": sent.resolve,
            "resolve_flag_id": sent.resolve_flag_id,
            "usage": [(UseKind(k).label, usage[k]) for k in UseKind.values],
            "used": any(usage.values()),
            "error": sent.error,
        },
        status=status,
    )


@requesters_to_portal("web:portal-kb-article")
@config.pinned()
def article(request: HttpRequest, slug: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return _article_page(request, user, _load(user, slug))


@require_POST
@staff_required
@config.pinned()
def change_status(request: HttpRequest, slug: str) -> HttpResponse:
    """Move the article through its workflow: one button per move the viewer may make,
    with an optional note."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    form = StatusForm(request.POST)
    if not form.is_valid():
        sent = PageForms(status=form, error="Choose one of the buttons to change the status.")
        return _article_page(request, user, found, sent, 400)
    to = form.cleaned_data["to"]
    label = _move_label(user, found, to)
    try:
        moved = services.article_transition(
            actor=user,
            article=found,
            to=to,
            note=form.cleaned_data["note"],
            expected_version=form.cleaned_data["version"],
        )
    except PreconditionFailed:
        found = _load(user, slug)
        data = request.POST.copy()
        data["version"] = str(found.version)
        kept = StatusForm(data)
        kept.is_valid()
        message = (
            "Someone else changed this article since you opened it; it is shown as it is now. "
            "Choose again if the change still applies."
        )
        return _article_page(request, user, found, PageForms(status=kept, error=message), 409)
    except DomainError as exc:
        return _article_page(
            request, user, found, PageForms(status=form, error=exc.detail), _refusal_status(exc)
        )
    messages.success(request, DONE.get(label, f"Status: {STATUS_NAMES[moved.status]}."))
    return redirect("web:kb-article", slug=moved.slug)


@require_POST
@staff_required
def vote(request: HttpRequest, slug: str) -> HttpResponse:
    """Helpful or not: one vote per reader, a second vote replaces the first."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    helpful = request.POST.get("helpful")
    if helpful not in ("yes", "no"):
        return _article_page(
            request, user, found, PageForms(error="Choose helpful or not helpful."), 400
        )
    try:
        services.article_vote(actor=user, article=found, helpful=helpful == "yes")
    except NotFound:
        raise Http404("Only a published article takes votes.") from None
    messages.success(request, "Thank you: your vote is counted.")
    return redirect(reverse("web:kb-article", args=[found.slug]) + "#feedback")


def _feedback_sent(
    request: HttpRequest,
    form: FlagForm | ResolveFlagForm,
    act: Callable[[dict[str, Any]], object],
    done: str,
    article: Article,
) -> HttpResponse | int:
    """``act`` with the form's valid data, then ``done`` and back to the article's feedback;
    otherwise the status to show the page again with (the refusal added to the form)."""
    if not form.is_valid():
        return 400
    try:
        act(form.cleaned_data)
    except DomainError as exc:
        form.add_domain_error(exc)
        return _refusal_status(exc)
    messages.success(request, done)
    return redirect(reverse("web:kb-article", args=[article.slug]) + "#feedback")


@require_POST
@staff_required
def flag(request: HttpRequest, slug: str) -> HttpResponse:
    """Flag the article as outdated, saying what is wrong; its owner and reviewers see it."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    form = FlagForm(request.POST)
    answer = _feedback_sent(
        request,
        form,
        lambda data: services.article_flag_outdated(
            actor=user, article=found, comment=data["comment"]
        ),
        "Flagged as outdated: the owner and reviewers see your note.",
        found,
    )
    if isinstance(answer, HttpResponse):
        return answer
    return _article_page(request, user, found, PageForms(flag=form), answer)


@require_POST
@staff_required
def flag_resolve(request: HttpRequest, slug: str, flag_id: int) -> HttpResponse:
    """Resolve an open outdated flag (the article's owner, reviewers), with an optional
    note. A refusal comes back on the article page, beside that flag."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    form = ResolveFlagForm(request.POST)
    answer = _feedback_sent(
        request,
        form,
        lambda data: services.article_flag_resolve(
            actor=user, article=found, flag_id=flag_id, note=data["note"]
        ),
        "Flag resolved.",
        found,
    )
    if isinstance(answer, HttpResponse):
        return answer
    sent = PageForms(resolve=form, resolve_flag_id=flag_id)
    if flag_id not in {f.pk for f in queries.outdated_flags(actor=user, article=found)}:
        # Resolved meanwhile, or not this article's: said at the top, the flag is gone.
        sent.error = " ".join(str(e) for e in form.non_field_errors()) or (
            "This flag is not open any more."
        )
    return _article_page(request, user, found, sent, answer)


# --- versions and the diff -------------------------------------------------------------------


class CompareForm(forms.Form):
    old = forms.TypedChoiceField(coerce=int, label="From version")
    new = forms.TypedChoiceField(coerce=int, label="To version")

    def __init__(self, *args: Any, numbers: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offered = [(str(n), f"Version {n}") for n in numbers]
        choice_field(self, "old").choices = offered
        choice_field(self, "new").choices = offered


def _versions_page(
    request: HttpRequest, user: User, article: Article, form: CompareForm | None, status: int
) -> HttpResponse:
    versions = queries.version_list(actor=user, article=article)
    numbers = [v.number for v in versions]
    if form is None:
        newest = numbers[0] if numbers else 1
        form = CompareForm(
            initial={"old": numbers[1] if len(numbers) > 1 else newest, "new": newest},
            numbers=numbers,
        )
    return _render(
        request,
        "versions.html",
        {"article": article, "versions": versions, "form": form},
        status=status,
    )


@staff_required
@config.pinned()
def versions(request: HttpRequest, slug: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return _versions_page(request, user, _load(user, slug), None, 200)


@dataclass(frozen=True)
class DiffLine:
    op: str  # "+", "-", " ", or "…" for folded unchanged lines
    text: str


def _folded(lines: list[tuple[str, str]], context: int = DIFF_CONTEXT) -> list[DiffLine]:
    """The diff's lines with long unchanged runs folded to ``context`` lines on each side of
    a change (one "… n unchanged lines" line in between)."""
    changed = [i for i, (op, _) in enumerate(lines) if op != " "]
    keep = {j for i in changed for j in range(i - context, i + context + 1)}
    out: list[DiffLine] = []
    folded = 0
    for i, (op, text) in enumerate(lines):
        if op == " " and i not in keep:
            folded += 1
            continue
        if folded:
            out.append(DiffLine("…", f"{folded} unchanged line{'s' if folded > 1 else ''}"))
            folded = 0
        out.append(DiffLine(op, text))
    if folded:
        out.append(DiffLine("…", f"{folded} unchanged line{'s' if folded > 1 else ''}"))
    return out


@staff_required
@config.pinned()
def diff(request: HttpRequest, slug: str) -> HttpResponse:
    """What changed in the text from version ``old`` to version ``new`` (any two), line by
    line; a bad choice comes back on the versions page beside the field."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, slug)
    numbers = [v.number for v in queries.version_list(actor=user, article=found)]
    form = CompareForm(request.GET, numbers=numbers)
    if not form.is_valid():
        return _versions_page(request, user, found, form, 400)
    try:
        changes = queries.version_diff(
            actor=user, article=found, old=form.cleaned_data["old"], new=form.cleaned_data["new"]
        )
    except ValidationFailed as exc:  # removed meanwhile: cannot happen today, said anyway
        form.add_error(None, exc.detail)
        return _versions_page(request, user, found, form, 400)
    lines = _folded(changes.lines)
    return _render(
        request,
        "diff.html",
        {
            "article": found,
            "diff": changes,
            "lines": lines,
            "added": sum(1 for op, _ in changes.lines if op == "+"),
            "removed": sum(1 for op, _ in changes.lines if op == "-"),
            "form": form,
        },
    )
