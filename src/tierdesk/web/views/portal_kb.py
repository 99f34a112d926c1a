"""The knowledge base in the self-service portal: articles suggested while a requester types
a new ticket ("this solved my problem" records a deflection, and no ticket is opened), the
articles a requester may read (search, and all of them by category), one article with its
related articles and a helpful / not helpful vote.

Requesters read published articles for all requesters and for their own organization only
(kb.scope); any other article answers 404, exactly like a slug that does not exist."""

from __future__ import annotations

from itertools import groupby

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tierdesk.core.errors import DomainError, NotFound
from tierdesk.core.models import User
from tierdesk.core.parse import as_id
from tierdesk.kb import queries, services
from tierdesk.kb.models import Article, ArticleStatus, UseKind
from tierdesk.tickets.models import Ticket
from tierdesk.web.views.common import requester_required

QUERY_MAX = 500  # characters of what is typed that are read (longer input is cut, not refused)
SUGGESTIONS = 5
SHOWN_MAX = 10  # article ids remembered per new ticket
LIST_PAGE = 200  # articles on the knowledge base's front page, grouped by category
SEARCH_LIMIT = 20


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _typed(values: QueryDict, name: str) -> str:
    return " ".join(values.get(name, "")[:QUERY_MAX].split())


def shown_ids(raw: str) -> list[int]:
    """The article ids in ``raw`` (the new-ticket form's hidden ``kb_shown``: ids separated
    by commas), in order, without repeats, at most SHOWN_MAX; anything that is not an id is
    left out. Nothing here says the ids are readable: see remember_suggestions."""
    ids: list[int] = []
    for part in raw[: SHOWN_MAX * 24].replace(",", " ").split():
        found = as_id(part)
        if found is not None and found not in ids:
            ids.append(found)
        if len(ids) == SHOWN_MAX:
            break
    return ids


def _shown_value(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def remember_suggestions(*, actor: User, ticket: Ticket, raw: str) -> int:
    """Record the articles suggested to ``actor`` while they typed ``ticket`` (which they
    just created) as ArticleUse(kind=suggested). Ids the requester may not read, unpublished
    articles and anything that is not an id are ignored: this never fails the ticket. How
    many were recorded."""
    ids = shown_ids(raw)
    if not ids:
        return 0
    # One query narrows the ids to the readable, published ones; the service checks each again.
    readable = queries.article_scope(actor).filter(pk__in=ids, status=ArticleStatus.PUBLISHED)
    recorded = 0
    for article in readable.only("pk", "status", "audience", "organization_id"):
        try:
            services.article_use(
                actor=actor, article=article, ticket=ticket, kind=UseKind.SUGGESTED
            )
        except DomainError:  # unpublished in between: the ticket stands without it
            continue
        recorded += 1
    return recorded


def _article(user: User, slug: str) -> Article:
    try:
        return queries.article_get(actor=user, ref=slug)
    except NotFound:
        raise Http404("No such article.") from None


# --- suggestions while a ticket is typed ----------------------------------------------------


@require_POST
@requester_required
def suggest(request: HttpRequest) -> HttpResponse:
    """The new-ticket form's suggestions (an HTMX fragment): the best published articles for
    the subject and description typed so far, and the hidden list of every article shown
    while this ticket was typed (out of band, into the form), which the ticket remembers.
    POST (with the CSRF token), never GET: what is typed, the description above all, must
    not end up in a URL, where access logs and the browser's history keep it."""
    user = _user(request)
    subject = _typed(request.POST, "subject")
    description = _typed(request.POST, "description")
    hits = queries.suggestions(
        actor=user, subject=subject, description=description, limit=SUGGESTIONS
    )
    earlier = shown_ids(request.POST.get("kb_shown", ""))
    shown = [h.article_id for h in hits]
    shown += [i for i in earlier if i not in shown]
    return render(
        request,
        "web/portal/kb/_suggestions.html",
        {
            "hits": hits,
            "query": subject or description,
            "kb_shown": _shown_value(shown[:SHOWN_MAX]),
            "typed": bool(subject or description),
        },
    )


@require_http_methods(["GET", "POST"])
@requester_required
def solved(request: HttpRequest, slug: str) -> HttpResponse:
    """POST: "this solved my problem" for a suggested article: a deflection with what the
    requester typed as its query, and no ticket. Then (GET) the page that says so."""
    user = _user(request)
    article = _article(user, slug)
    if request.method == "POST":
        query = " ".join(request.POST.get("query", "")[:QUERY_MAX].split())
        try:
            services.deflection_record(actor=user, article=article, query=query)
        except NotFound:
            raise Http404("No such article.") from None
        return redirect("web:portal-kb-solved", slug=article.slug)
    return render(request, "web/portal/kb/solved.html", {"article": article})


# --- the articles --------------------------------------------------------------------------


@require_GET
@requester_required
def index(request: HttpRequest) -> HttpResponse:
    """Search the articles the requester may read; without words, all of them by category
    (LIST_PAGE a page)."""
    user = _user(request)
    q = _typed(request.GET, "q")
    context: dict[str, object] = {"q": q}
    if q:
        context["hits"] = queries.article_search(actor=user, text=q, limit=SEARCH_LIMIT)
    else:
        offset = as_id(request.GET.get("from", "")) or 0
        page = queries.article_list(actor=user, limit=LIST_PAGE + 1, offset=offset)
        more = len(page) > LIST_PAGE
        page = sorted(
            page[:LIST_PAGE],
            key=lambda a: (a.category is None, a.category.name if a.category else "", a.title),
        )
        context["groups"] = [
            (name, list(articles))
            for name, articles in groupby(
                page, key=lambda a: a.category.name if a.category else "Other"
            )
        ]
        context["first"] = offset + 1
        context["last"] = offset + min(len(page), LIST_PAGE)
        context["previous"] = max(0, offset - LIST_PAGE) if offset else None
        context["next"] = offset + LIST_PAGE if more else None
    return render(request, "web/portal/kb/index.html", context)


@require_GET
@requester_required
def article(request: HttpRequest, slug: str) -> HttpResponse:
    """One article. Asked by HTMX (the new-ticket form's "read it here"), only its body, to
    open in place without leaving the form."""
    user = _user(request)
    found = _article(user, slug)
    if found.slug != slug:  # by id, or in capitals: the one address
        return redirect("web:portal-kb-article", slug=found.slug)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "web/portal/kb/article.html#read", {"article": found})
    return _article_page(request, user, found)


def _article_page(
    request: HttpRequest, user: User, found: Article, vote_error: str = "", status: int = 200
) -> HttpResponse:
    new_ticket = reverse("web:portal-new")
    context = {
        "article": found,
        "related": queries.related_articles(actor=user, article=found),
        "vote": queries.article_votes(actor=user, article=found).mine,
        "vote_error": vote_error,
        "new_ticket": new_ticket,
    }
    return render(request, "web/portal/kb/article.html", context, status=status)


@require_POST
@requester_required
def vote(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Was this helpful?": yes or no, changeable. HTMX gets the vote's part of the page
    back; without scripts, the article page again."""
    user = _user(request)
    found = _article(user, slug)
    choice = request.POST.get("helpful", "")
    if choice not in ("yes", "no"):
        if request.htmx:  # type: ignore[attr-defined]
            return render(
                request,
                "web/portal/kb/article.html#vote",
                {
                    "article": found,
                    "vote": queries.article_votes(actor=user, article=found).mine,
                    "vote_error": "Choose Yes or No.",
                },
                status=422,
            )
        return _article_page(request, user, found, "Choose Yes or No.", status=422)
    try:
        recorded = services.article_vote(actor=user, article=found, helpful=choice == "yes")
    except NotFound:
        raise Http404("No such article.") from None
    if request.htmx:  # type: ignore[attr-defined]
        return render(
            request,
            "web/portal/kb/article.html#vote",
            {"article": found, "vote": recorded.kind, "just_voted": True},
        )
    messages.success(request, "Thank you for your answer.")
    return redirect(reverse("web:portal-kb-article", args=[found.slug]) + "#vote")
