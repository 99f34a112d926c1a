"""The agent console: tier queues and the ticket page. Staff only; every read goes through
the tickets app's queries, so a page shows exactly what the API would."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.db.models import F
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from tierdesk.core import config, lookups, policy
from tierdesk.core.errors import (
    Conflict,
    DomainError,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.models import User
from tierdesk.core.parse import as_id
from tierdesk.core.queries import colleagues
from tierdesk.escalation import services as escalation
from tierdesk.kb import queries as kb_queries
from tierdesk.kb import services as kb_services
from tierdesk.kb.models import Article, ArticleStatus, Audience, UseKind
from tierdesk.sla import queries as sla_queries
from tierdesk.tickets import queries, services
from tierdesk.tickets.models import OPEN_STATUSES, Priority, Status, Ticket
from tierdesk.tickets.services import TRANSITIONS
from tierdesk.tiers import queries as tier_queries
from tierdesk.tiers.form_fields import labelled
from tierdesk.tiers.queries import category_for_organization, tiers_by_level
from tierdesk.tiers.services import tier_by_code
from tierdesk.web import forms as forms_
from tierdesk.web import queries as web_queries
from tierdesk.web import services as web_services
from tierdesk.web.views.common import staff_required

PAGE_SIZE = 50
DEFAULT_SORT = "-created_at"
# ?sort= value -> its name in the filter form: what the queue may be sorted by.
SORTS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-updated_at": "Recently changed",
    "updated_at": "Longest unchanged",
    "priority": "Priority (P1 first)",
    "-priority": "Priority (P4 first)",
    "number": "Number, lowest first",
    "-number": "Number, highest first",
}
# Column -> the sort its header starts with; a second click reverses it.
SORTABLE_COLUMNS = {"number": "number", "priority": "priority", "created_at": "-created_at"}


@dataclass(frozen=True)
class Queue:
    slug: str
    title: str
    base: queries.TicketFilters

    def url(self) -> str:
        return reverse("web:queue", args=[self.slug])


def queues() -> list[Queue]:
    """The console's queues: one per tier, then the cross-tier views. All show open
    tickets only (new, open, in progress, pending)."""
    active = sorted(str(s) for s in OPEN_STATUSES)
    found = [
        Queue(
            t.code.lower(), f"{t.code} queue", queries.TicketFilters(status=active, tier=[t.code])
        )
        for t in tiers_by_level()
    ]
    found += [
        Queue("mine", "Mine", queries.TicketFilters(status=active, assignee="me")),
        Queue("unassigned", "Unassigned", queries.TicketFilters(status=active, assignee="none")),
        Queue(
            "breaching",
            "Breaching soon",
            queries.TicketFilters(
                status=active, breached=False, breaching_within=settings.BREACHING_SOON_MINUTES
            ),
        ),
        Queue("breached", "Breached", queries.TicketFilters(status=active, breached=True)),
    ]
    return found


MAX_TAG_FILTERS = 10


class FilterChoices:
    """What the queue page's forms offer that takes a query to read (organizations,
    categories, colleagues): each read at most once per request, and only when a form is
    shown or a value has to be checked, so a live refresh of the rows without such a
    filter reads none of them. Shared by the filter, bulk and saved-view forms of a
    request."""

    def __init__(self, actor: User) -> None:
        self.organizations = cache(partial(_organization_choices, actor))
        self.categories = cache(partial(category_groups, actor))
        self.people = cache(partial(colleagues, actor))


class QueueFilterForm(forms.Form):
    """The filters above a queue. Values outside the choices are refused with a message
    beside the field, and the form keeps what was typed. A queue that already fixes the
    assignee ("Mine", "Unassigned") has no assignee filter."""

    text = forms.CharField(required=False, max_length=200, label="Search")
    organization = forms.ChoiceField(required=False, label="Organization")
    category = forms.ChoiceField(required=False, label="Category")
    priority = forms.ChoiceField(
        required=False, choices=[("", "Any"), *list(Priority.choices)], label="Priority"
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any open")] + [(s, Status(s).label) for s in Status.values],
        label="Status",
    )
    assignee = forms.ChoiceField(required=False, label="Assignee")
    tags = forms.CharField(
        required=False,
        max_length=300,
        label="Tags",
        help_text="All of them; separate with commas.",
    )
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()), label="Sort")

    def __init__(
        self,
        *args: Any,
        actor: User,
        queue: Queue,
        choices: FilterChoices | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        offered = choices if choices is not None else FilterChoices(actor)
        # Callables: read when the form is shown or a value is checked (once, however
        # often Django walks the choices), not for a live refresh.
        forms_.choice_field(self, "organization").choices = lambda: [
            ("", "All"),
            *offered.organizations(),
        ]
        forms_.choice_field(self, "category").choices = lambda: [
            ("", "Any"),
            *offered.categories(),
        ]
        if queue.base.assignee is not None:
            del self.fields["assignee"]
        else:
            forms_.choice_field(self, "assignee").choices = lambda: [
                ("", "Anyone"),
                ("me", "Me"),
                ("none", "Nobody (unassigned)"),
                *[(str(u.pk), u.full_name or u.email) for u in offered.people()],
            ]

    def clean_tags(self) -> list[str]:
        names = sorted({n.strip().lower() for n in self.cleaned_data["tags"].split(",")} - {""})
        if len(names) > MAX_TAG_FILTERS:
            raise forms.ValidationError(f"At most {MAX_TAG_FILTERS} tags.")
        if too_long := [n for n in names if len(n) > 50]:
            raise forms.ValidationError(f"A tag has at most 50 characters: {too_long[0][:50]}…")
        return names

    def apply(self, filters: queries.TicketFilters) -> str:
        """Narrow ``filters`` (the queue's own) by the valid form; the sort it asks for."""
        data = self.cleaned_data
        filters.text = data["text"] or None
        filters.organization = [data["organization"]] if data["organization"] else []
        filters.category = [data["category"]] if data["category"] else []
        filters.priority = [data["priority"]] if data["priority"] else []
        if data["status"]:
            filters.status = [data["status"]]
        if data.get("assignee"):
            filters.assignee = data["assignee"]
        filters.tags = data["tags"]
        return str(data["sort"] or DEFAULT_SORT)


def _organization_choices(actor: User) -> list[tuple[str, str]]:
    return [
        (o.code, f"{o.code} — {o.name}")
        for o in policy.visible_organizations(actor).order_by("code")
    ]


def category_groups(actor: User) -> list[tuple[str, list[tuple[str, str]]]]:
    """The categories the actor sees, grouped by catalog (MSP-wide first, then each
    organization's own), retired ones marked: tickets keep a retired category."""
    groups: dict[str, list[tuple[str, str]]] = {}
    rows = (
        tier_queries.category_list(actor=actor)
        .prefetch_related(None)  # names only: not their skills
        .order_by(F("organization__code").asc(nulls_first=True), "name")
    )
    for c in rows:
        catalog = c.organization.code if c.organization else "MSP-wide"
        groups.setdefault(catalog, []).append(
            (str(c.pk), c.name if c.is_active else f"{c.name} (retired)")
        )
    return list(groups.items())


def home(request: HttpRequest) -> HttpResponse:
    return redirect_to_first_queue(request)


@staff_required
def redirect_to_first_queue(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    profile = getattr(user, "agent_profile", None)
    slug = profile.tier.code.lower() if profile is not None and profile.tier else "mine"
    return redirect("web:queue", queue=slug)


def _find_queue(all_queues: list[Queue], slug: str) -> Queue:
    found = next((q for q in all_queues if q.slug == slug), None)
    if found is None:
        raise Http404("No such queue.")
    return found


@staff_required
@config.pinned()  # one configuration read for the page
def queue(request: HttpRequest, queue: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    all_queues = queues()
    return _queue_page(
        request,
        user,
        all_queues,
        _find_queue(all_queues, queue),
        request.GET,
        FilterChoices(user),
        rows_only=bool(request.htmx and request.htmx.target == "queue-rows"),  # type: ignore[attr-defined]
    )


def _queue_page(
    request: HttpRequest,
    user: User,
    all_queues: list[Queue],
    current: Queue,
    params: QueryDict,
    choices: FilterChoices,
    *,
    bulk_form: forms_.BulkForm | None = None,
    view_form: forms_.SavedViewForm | None = None,
    selected: Collection[int] = (),
    status: int = 200,
    rows_only: bool = False,
) -> HttpResponse:
    """The queue ``current`` under the filters (and page) in ``params``. ``bulk_form`` or
    ``view_form``, a form that was just sent and refused, is shown as it was sent with its
    messages, and the rows in ``selected`` stay ticked."""
    form = QueueFilterForm(params or None, actor=user, queue=current, choices=choices)
    filters = queries.TicketFilters(**vars(current.base))
    sort = DEFAULT_SORT
    if form.is_bound and form.is_valid():
        sort = form.apply(filters)
    page: queries.Page | None = None
    cursor = params.get("cursor") or None
    if not form.errors:
        try:
            page = queries.ticket_list(
                actor=user, filters=filters, ordering=sort, cursor=cursor, limit=PAGE_SIZE
            )
        except ValidationFailed as exc:  # a cursor from another list: start again
            form.add_error(None, exc.detail)
    counts = queries.queue_counts(actor=user, queues={q.slug: q.base for q in all_queues})
    # The rows' own address: what the live refresh asks for, also after a form was sent.
    rows_url = current.url() + (f"?{params.urlencode()}" if params else "")
    context = {
        "queues": [(q, counts[q.slug]) for q in all_queues],
        "queue": current,
        "form": form,
        "page": page,
        "rows": [_row(t) for t in page.items] if page else [],
        "selected": set(selected),
        "query": _query_without_cursor(params),
        "filters_query": params.urlencode(),
        "rows_url": rows_url,
        "sorted_by": _column_sorts(current, params, sort),
        "refresh_seconds": settings.QUEUE_REFRESH_SECONDS,
        # one reverse() for the page, not one per row
        "ticket_base": reverse("web:ticket", args=["X"])[:-1],
        "bulk_form": bulk_form or forms_.BulkForm(actor=user, people=choices.people),
        "view_form": view_form or forms_.SavedViewForm(),
        "saved_views": web_queries.saved_views(actor=user),
    }
    if rows_only:
        return render(request, "web/console/queue.html#rows", context)
    return render(request, "web/console/queue.html", context, status=status)


def _query_without_cursor(params: QueryDict) -> str:
    params = params.copy()
    params.pop("cursor", None)
    return params.urlencode()


def _column_sorts(current: Queue, query: QueryDict, sort: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the link its header points at (the same filters, the column's
    sort, reversed when it is already the sort) and its ``aria-sort`` state."""
    out = {}
    for column, first in SORTABLE_COLUMNS.items():
        params = query.copy()
        params.pop("cursor", None)
        state = "none"
        if sort.lstrip("-") == column:
            state = "descending" if sort.startswith("-") else "ascending"
            params["sort"] = sort[1:] if sort.startswith("-") else f"-{sort}"
        else:
            params["sort"] = first
        out[column] = {"href": f"{current.url()}?{params.urlencode()}", "state": state}
    return out


def _row(ticket: Ticket) -> dict[str, Any]:
    return {"ticket": ticket, "sla": _badges(ticket)}


def _badges(ticket: Ticket) -> list[dict[str, Any]]:
    """The SLA badges of a ticket: one per clock kind, with a plain-words state."""
    out = []
    for c in sla_queries.clock_summary(ticket):
        state = c["state"]
        seconds = c["business_seconds_left"]
        if state == "running" and c["warned_at"] is not None:
            state = "warning"
        out.append(
            {
                "kind": c["kind"].replace("_", " "),
                "state": state,
                "text": _badge_text(state, seconds),
                "due_at": c["due_at"],
            }
        )
    return out


def _badge_text(state: str, seconds: int | None) -> str:
    if state == "breached":
        return "breached"
    if state == "met":
        return "met"
    if state == "paused":
        return "paused"
    if state in ("stopped", "cancelled"):
        return state
    if seconds is None:
        return state
    return f"{_duration(seconds)} left"


def _duration(seconds: int) -> str:
    minutes = max(0, seconds) // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def _load(user: User, ref: str) -> Ticket:
    try:
        return queries.ticket_get(actor=user, ref=ref)
    except NotFound:
        raise Http404("No such ticket.") from None


@staff_required
@config.pinned()
def ticket(request: HttpRequest, ref: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return _ticket_page(request, user, _load(user, ref), kb_query=request.GET.get("q", ""))


def _ticket_page(
    request: HttpRequest,
    user: User,
    found: Ticket,
    bound: forms_.TicketForm | None = None,
    bound_name: str = "",
    status: int = 200,
    kb_query: str = "",
    automation: dict[str, Any] | None = None,
) -> HttpResponse:
    """The ticket page with every action form the ticket's state allows; ``bound`` (the
    form that was just sent and refused) keeps what was typed, with its messages. The
    side column's knowledge base panel shows the articles relevant to the ticket, or those
    matching ``kb_query`` (the panel's search without JavaScript); its account actions
    panel what ``automation`` says (a run's result, shown once), else the actions offered."""
    from tierdesk.web.views import console_automation

    queries.load_related([found])
    timeline = list(queries.timeline_list(actor=user, ticket=found).order_by("at", "id"))
    attachments = list(queries.attachment_list(actor=user, ticket=found))
    related = queries.related_tickets(actor=user, ticket=found)
    following = queries.next_in_queue(actor=user, ticket=found)
    action_forms: dict[str, forms_.TicketForm] = {}
    for name, action in ACTIONS.items():
        if action.offered(found):
            key = name.replace("-", "_")  # as templates can name it
            if name == bound_name and bound is not None:
                action_forms[key] = bound
            else:
                action_forms[key] = action.form(ticket=found, actor=user)
    kb = _kb_panel(request, user, found, kb_query, insertable="comment" in action_forms)
    resolve_form = action_forms.get("resolve")
    return render(
        request,
        "web/console/ticket.html",
        {
            "ticket": found,
            "sla": _badges(found),
            "details": labelled(
                found.category.form_fields if found.category else [], found.details
            ),
            "timeline": timeline,
            "attachments": attachments,
            **related,
            "next_ticket": following,
            "queues": [(q, None) for q in queues()],
            "saved_views": web_queries.saved_views(actor=user),
            "forms": action_forms,
            "failed": bound_name if bound is not None else "",
            "links": queries.link_list(actor=user, ticket=found),
            "merged_into": (
                queries.merged_into(actor=user, ticket=found)
                if found.status == Status.CLOSED
                else None
            ),
            "kb": kb,
            "automation": automation or console_automation.panel(user, found),
            "solved_checked": (
                set(resolve_form.cleaned_data.get("solved_with_ids", ()))
                if isinstance(resolve_form, ResolveForm) and resolve_form.is_bound
                else set()
            ),
        },
        status=status,
    )


# --- The knowledge base on the ticket page ---------------------------------------------
# The side column shows the published articles relevant to the ticket (one search) and
# those already used on it; each can go into the reply, as a link or as its text, and the
# resolve form offers them as "solved with". What the reply carried is recorded as
# "linked" when it is sent, what the resolve form ticked as "solved" (kb.services).

KB_RESULTS = 5
KB_MAX_ARTICLES = 20  # per reply or resolve: more is not a reply that cites articles
KB_QUERY_MAX = 200
USE_ORDER = (UseKind.SUGGESTED, UseKind.LINKED, UseKind.SOLVED)


@dataclass(frozen=True)
class KbItem:
    """An article as the ticket page shows it."""

    id: int
    slug: str
    title: str
    snippet: SafeString  # from the search: escaped text with the matched words in <mark>
    audience: str  # who reads it, in words
    for_requester: bool  # published, and the ticket's requester may open it
    uses: tuple[str, ...]  # its uses recorded on this ticket (UseKind values), in USE_ORDER
    url: str  # the console's article page
    link: str  # what "Insert link" inserts: [title](absolute address)
    reason: str  # why it stays out of public replies; empty when it does not

    @property
    def use_labels(self) -> list[str]:
        return [USE_LABELS[u] for u in self.uses]


USE_LABELS: dict[str, str] = {
    UseKind.SUGGESTED: "Suggested to the requester",
    UseKind.LINKED: "Linked",
    UseKind.SOLVED: "Solved with",
}


@dataclass(frozen=True)
class KbPanel:
    ticket_key: str
    query: str
    results: list[KbItem]  # the relevant articles, or those matching ``query``
    used: list[tuple[str, list[KbItem]]]  # (kind's label, its articles), each kind
    candidates: list[KbItem]  # what "solved with" offers: the used ones, then the results
    insertable: bool  # the reply form is on the page
    can_write: bool  # may create articles ("Create article from this ticket")
    new_article_url: str


def _audience_words(article: Article) -> tuple[str, str]:
    """Who reads ``article``: as its badge says it, and as "for …" says it."""
    if article.audience == Audience.PUBLIC:
        return "All requesters", "all requesters"
    if article.audience == Audience.ORGANIZATION and article.organization is not None:
        code = article.organization.code
        return f"{code}'s requesters", f"{code}'s requesters only"
    if article.audience == Audience.TIER and article.min_tier is not None:
        words = f"agents of {article.min_tier.code} and above"
        return words[:1].upper() + words[1:], words
    return "Agents only", "agents only"


def _reason(article: Article, for_requester: bool, who: str) -> str:
    if for_requester:
        return ""
    if article.status != ArticleStatus.PUBLISHED:
        who = "agents only until it is published"
    return f"For {who}: it can go into an internal note, not a reply."


class KbLinks:
    """The addresses the panel shows and inserts, each name reversed once per request. The
    console's and the portal's article pages are named ``web:kb-article`` and
    ``web:portal-kb-article``; until one exists, its path is written out."""

    def __init__(self, request: HttpRequest) -> None:
        self.base = settings.PUBLIC_URL or f"{request.scheme}://{request.get_host()}"
        self.console = _url_prefix("web:kb-article", "/console/kb/")
        self.portal = _url_prefix("web:portal-kb-article", "/portal/kb/")

    def item(self, article: Article, snippet: str = "") -> KbItem:
        for_requester = bool(getattr(article, "for_requester", False))
        url = self.console + article.slug
        target = self.base + (self.portal if for_requester else self.console) + article.slug
        title = article.title.replace("[", "\\[").replace("]", "\\]")
        audience, who = _audience_words(article)
        return KbItem(
            id=article.pk,
            slug=article.slug,
            title=article.title,
            snippet=mark_safe(snippet),  # noqa: S308 - kb.search escapes all but its <mark>
            audience=audience,
            for_requester=for_requester,
            uses=tuple(k for k in USE_ORDER if getattr(article, f"used_{k}", False)),
            url=url,
            link=f"[{title}]({target})",
            reason=_reason(article, for_requester, who),
        )


def _url_prefix(name: str, fallback: str) -> str:
    try:
        return reverse(name, args=["x"])[:-1]
    except NoReverseMatch:
        return fallback


def _new_article_url(ticket: Ticket) -> str:
    try:
        path = reverse("web:kb-new")
    except NoReverseMatch:
        path = "/console/kb/new"
    return f"{path}?ticket={ticket.key}"


def _kb_panel(
    request: HttpRequest, user: User, ticket: Ticket, query: str, *, insertable: bool
) -> KbPanel:
    """The knowledge base panel of ``ticket`` for ``user``: the top articles for ``query``
    (or, without one, for the ticket's own text), and the articles used on the ticket, as
    kb.queries.ticket_kb reads them (its docstring counts the queries)."""
    query = " ".join(query.split())[:KB_QUERY_MAX]
    found = kb_queries.ticket_kb(actor=user, ticket=ticket, query=query, limit=KB_RESULTS)
    hits, rows = found.hits, found.articles
    links = KbLinks(request)
    results = [links.item(rows[h.article_id], h.snippet) for h in hits if h.article_id in rows]
    used_items = [links.item(a) for a in rows.values() if _used(a)]
    used = [(USE_LABELS[kind], [i for i in used_items if kind in i.uses]) for kind in USE_ORDER]
    seen: set[int] = set()
    candidates = []
    for item in used_items + results:
        if item.id not in seen:
            seen.add(item.id)
            candidates.append(item)
    return KbPanel(
        ticket_key=ticket.key,
        query=query,
        results=results,
        used=used,
        candidates=candidates,
        insertable=insertable,
        can_write=policy.allowed(user, "kb.write"),
        new_article_url=_new_article_url(ticket),
    )


def _used(article: Article) -> bool:
    return any(getattr(article, f"used_{k}", False) for k in USE_ORDER)


class ArticleIdsField(forms.Field):
    """Article ids sent as repeated values (the reply's "Articles in this reply" boxes, the
    resolve form's "Solved with"): the whole numbers among them, each once. What is not an
    id is left out, as are, later, the articles the sender may not read: a page opened
    earlier may name an article that is gone, which is not the sender's mistake."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        values = value if isinstance(value, list | tuple) else [value] if value else []
        ids: list[int] = []
        for v in values:
            found = as_id(str(v).strip())
            if found is not None and found not in ids:
                ids.append(found)
        if len(ids) > KB_MAX_ARTICLES:
            raise forms.ValidationError(f"At most {KB_MAX_ARTICLES} articles.")
        return ids


class ReplyForm(forms_.CommentForm):
    """A reply or an internal note, with the articles inserted into it (recorded as
    "linked" when it is sent). A public reply may carry only articles its requester can
    open: any other is refused beside the list, with what was typed kept."""

    kb_articles = ArticleIdsField(required=False, label="Articles in this reply")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kb_chosen: list[Article] = []  # shown again, ticked, when the form is refused

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean() or {}
        articles = kb_queries.ticket_articles(
            actor=self.actor, ticket=self.ticket, ids=cleaned.get("kb_articles") or []
        )
        self.kb_chosen = articles
        if "kb_articles" in cleaned:
            cleaned["kb_articles"] = articles
        if not cleaned.get("internal"):
            closed = [a for a in articles if not getattr(a, "for_requester", False)]
            if closed:
                names = ", ".join(f"“{a.title}”" for a in closed)
                it = "it" if len(closed) == 1 else "them"
                self.add_error(
                    "kb_articles",
                    f"The requester cannot open {names}, so a public reply may not carry "
                    f"{it}: send this as an internal note, or take {it} out of the text and "
                    f"untick {it} here.",
                )
        return cleaned


class ResolveForm(forms_.ResolveForm):
    """Resolving, with the articles that solved the ticket (recorded as "solved", in the
    resolve's transaction). Articles the agent may not read are left out."""

    solved_with = ArticleIdsField(required=False, label="Solved with")

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean() or {}
        ids = cleaned.get("solved_with") or []
        cleaned["solved_with_ids"] = ids
        cleaned["solved_with"] = kb_queries.ticket_articles(
            actor=self.actor, ticket=self.ticket, ids=ids
        )
        return cleaned


# --- Actions on a ticket ---------------------------------------------------------------
# Each is a form posted to /console/tickets/<key>/<action>. Success redirects back to the
# ticket (so a reload does not post again); a refusal shows the page again with the form as
# it was sent and the reason beside the field.


@dataclass(frozen=True)
class Action:
    form: type[forms_.TicketForm]
    apply: Callable[[User, Ticket, dict[str, Any]], str]
    offered: Callable[[Ticket], bool]


def _open(t: Ticket) -> bool:
    return t.status != Status.CLOSED


def _comment(user: User, t: Ticket, data: dict[str, Any]) -> str:
    internal = bool(data["internal"])
    # One transaction: the comment, its files and the articles it links are kept together
    # or not at all (a file written before a failure is removed by the attachment sweep).
    with transaction.atomic():
        services.ticket_comment(actor=user, ticket=t, body=data["body"], internal=internal)
        for f in data["attachments"]:
            services.attachment_add(
                actor=user, ticket=t, filename=f.name or "", content=f.read(), internal=internal
            )
        for article in data.get("kb_articles") or ():
            kb_services.article_use(actor=user, article=article, ticket=t, kind=UseKind.LINKED)
    return "Internal note added." if internal else "Reply sent."


def _details(user: User, t: Ticket, data: dict[str, Any]) -> str:
    changes: dict[str, Any] = {}
    if data["priority"] != t.priority:
        changes["priority"] = data["priority"]
    category_id = int(data["category"]) if data["category"] else None
    if category_id != t.category_id:
        changes["category"] = (
            category_for_organization(t.organization, category_id) if category_id else None
        )
    assignee_id = int(data["assignee"]) if data["assignee"] else None
    if assignee_id != t.assignee_id:
        changes["assignee"] = lookups.user_by_id(assignee_id) if assignee_id else None
    if not changes:
        return "Nothing to change."
    services.ticket_update(actor=user, ticket=t, expected_version=data["version"], **changes)
    return "Ticket updated."


def _take(user: User, t: Ticket, data: dict[str, Any]) -> str:
    services.ticket_update(actor=user, ticket=t, expected_version=data["version"], assignee=user)
    return "The ticket is yours."


def _status(user: User, t: Ticket, data: dict[str, Any]) -> str:
    services.ticket_transition(
        actor=user, ticket=t, to_status=data["status"], expected_version=data["version"]
    )
    return f"Status: {Status(data['status']).label}."


def _escalate(user: User, t: Ticket, data: dict[str, Any]) -> str:
    moved = escalation.escalate(
        actor=user,
        ticket=t,
        to_tier=tier_by_code(data["to_tier"]),
        reason=data["reason"],
        handoff_note=data["handoff_note"],
        expected_version=data["version"],
    )
    return f"Escalated to {moved.to_tier.code}."


def _de_escalate(user: User, t: Ticket, data: dict[str, Any]) -> str:
    moved = escalation.de_escalate(
        actor=user,
        ticket=t,
        to_tier=tier_by_code(data["to_tier"]),
        note=data["note"],
        expected_version=data["version"],
    )
    return f"Handed back to {moved.to_tier.code}."


def _resolve(user: User, t: Ticket, data: dict[str, Any]) -> str:
    articles = data.get("solved_with") or []
    # One transaction: resolved with its "solved with" records, or neither.
    with transaction.atomic():
        resolved = services.ticket_transition(
            actor=user,
            ticket=t,
            to_status=Status.RESOLVED,
            resolution_code=data["resolution_code"],
            resolution_note=data["resolution_note"],
            expected_version=data["version"],
        )
        for article in articles:
            kb_services.article_use(
                actor=user, article=article, ticket=resolved, kind=UseKind.SOLVED
            )
    if not articles:
        return "Resolved."
    return "Resolved, solved with " + ", ".join(f"“{a.title}”" for a in articles) + "."


def _reopen(user: User, t: Ticket, data: dict[str, Any]) -> str:
    services.ticket_transition(
        actor=user, ticket=t, to_status=Status.OPEN, expected_version=data["version"]
    )
    return "Reopened."


def _link(user: User, t: Ticket, data: dict[str, Any]) -> str:
    other = queries.link_target_get(actor=user, ticket=t, ref=data["target"])
    link = services.ticket_link(
        actor=user, ticket=t, other=other, kind=data["kind"], expected_version=data["version"]
    )
    return f"Linked: {services.link_label(link, t).lower()} {other.key}."


def _unlink(user: User, t: Ticket, data: dict[str, Any]) -> str:
    try:
        services.ticket_unlink(
            actor=user, ticket=t, link_id=data["link"], expected_version=data["version"]
        )
    except NotFound:  # removed meanwhile from the other side
        raise Conflict("That link is no longer there: someone removed it meanwhile.") from None
    return "Link removed."


def _merge(user: User, t: Ticket, data: dict[str, Any]) -> str:
    target = queries.link_target_get(actor=user, ticket=t, ref=data["target"])
    result = services.ticket_merge(
        actor=user,
        source=t,
        target=target,
        public=bool(data["public"]),
        expected_version=data["version"],
    )
    return f"Merged into {result.target.key}; this ticket is closed."


def _has_tier(t: Ticket, higher: bool) -> bool:
    return any(
        (x.level > t.tier.level) if higher else (x.level < t.tier.level) for x in tiers_by_level()
    )


ACTIONS: dict[str, Action] = {
    "comment": Action(ReplyForm, _comment, _open),
    "details": Action(forms_.DetailsForm, _details, _open),
    "take": Action(forms_.TicketForm, _take, _open),
    "status": Action(
        forms_.StatusForm, _status, lambda t: t.status not in (Status.RESOLVED, Status.CLOSED)
    ),
    "escalate": Action(
        forms_.EscalateForm, _escalate, lambda t: t.status in OPEN_STATUSES and _has_tier(t, True)
    ),
    "de-escalate": Action(
        forms_.DeEscalateForm,
        _de_escalate,
        lambda t: t.status in OPEN_STATUSES and _has_tier(t, False),
    ),
    "resolve": Action(ResolveForm, _resolve, lambda t: Status.RESOLVED in TRANSITIONS[t.status]),
    "reopen": Action(forms_.ReopenForm, _reopen, lambda t: t.status == Status.RESOLVED),
    "link": Action(forms_.LinkForm, _link, _open),
    "unlink": Action(forms_.UnlinkForm, _unlink, _open),
    "merge": Action(forms_.MergeForm, _merge, _open),
}


@require_POST
@staff_required
@config.pinned()
def act(request: HttpRequest, ref: str, action: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, ref)
    chosen = ACTIONS.get(action)
    if chosen is None or not chosen.offered(found):
        raise Http404("No such action on this ticket.")
    form = chosen.form(request.POST, request.FILES, ticket=found, actor=user)
    status = 422
    if form.is_valid():
        try:
            message = chosen.apply(user, found, form.cleaned_data)
        except PreconditionFailed:
            status = 409
            # Shown against the ticket as it is now, with what was typed: sending it again
            # applies it to the current version.
            found = _load(user, ref)
            data = request.POST.copy()
            data["version"] = str(found.version)
            form = chosen.form(data, request.FILES, ticket=found, actor=user)
            form.is_valid()
            form.add_error(
                None,
                "Someone else changed this ticket since you opened it. Its current state is "
                "shown below, and what you entered is kept: check it and send it again.",
            )
        except DomainError as exc:
            status = exc.status if exc.status >= 400 else 422
            form.add_domain_error(exc)
        else:
            messages.success(request, message)
            return redirect(reverse("web:ticket", args=[found.key]) + "#timeline-title")
    return _ticket_page(request, user, found, form, action, status)


@require_GET
@staff_required
@config.pinned()
def ticket_kb(request: HttpRequest, ref: str) -> HttpResponse:
    """The knowledge base panel's list for ``?q=`` (the relevant articles when empty): the
    panel's search box asks for it while the agent types."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, ref)
    kb = _kb_panel(request, user, found, request.GET.get("q", ""), insertable=_open(found))
    return render(request, "web/console/_kb_results.html", {"ticket": found, "kb": kb})


@require_GET
@staff_required
@config.pinned()
def ticket_kb_article(request: HttpRequest, ref: str, article_id: int) -> HttpResponse:
    """A published article the agent may read, as "Insert text" and "Insert link" put it
    into a reply to ``ref``: its Markdown, the link, and whether the ticket's requester
    may open it (if not, it goes into internal notes only). Anything else: not found."""
    user: User = request.user  # type: ignore[assignment]
    found = _load(user, ref)
    articles = kb_queries.ticket_articles(actor=user, ticket=found, ids=[article_id])
    if not articles:
        raise Http404("No such article.")
    article = articles[0]
    item = KbLinks(request).item(article)
    return JsonResponse(
        {
            "id": item.id,
            "slug": item.slug,
            "title": item.title,
            "body": article.body,  # deferred above: read now, for this one article
            "link": item.link,
            "for_requester": item.for_requester,
        }
    )


# --- Bulk actions on a queue's rows ----------------------------------------------------


def _bulk_one(user: User, ticket: Ticket, data: dict[str, Any]) -> None:
    action = data["action"]
    if action == "take":
        services.ticket_update(actor=user, ticket=ticket, assignee=user)
    elif action == "assign":
        assignee = lookups.user_by_id(int(data["assignee"]))
        services.ticket_update(actor=user, ticket=ticket, assignee=assignee)
    elif action == "status":
        services.ticket_transition(actor=user, ticket=ticket, to_status=data["status"])
    elif action == "escalate":
        escalation.escalate(
            actor=user,
            ticket=ticket,
            to_tier=tier_by_code(data["to_tier"]),
            reason=data["reason"],
            handoff_note=data["handoff_note"],
        )


# The queue's filters and page, sent along with a bulk action or a view to save: the page
# they came from, shown again when the form is refused or gone back to when it is done.
PAGE_KEYS = {*QueueFilterForm.base_fields, "cursor"}


def _sent_query(request: HttpRequest) -> QueryDict:
    """The queue's filters (and page) the posted form carries in ``query``; nothing else."""
    params = QueryDict(request.POST.get("query", "").lstrip("?"))
    kept = QueryDict(mutable=True)
    for key in params:
        if key in PAGE_KEYS and (value := params.get(key)):
            kept[key] = value
    return kept


@require_POST
@staff_required
@config.pinned()
def bulk(request: HttpRequest, queue: str) -> HttpResponse:
    """Apply one action to the selected tickets, each in its own transaction and with all
    of a single change's checks: the ones refused are listed, the others are done. A form
    that cannot be applied at all (nothing selected, a required field empty) changes
    nothing: the queue comes back with the messages beside the fields, what was typed
    and the rows still ticked."""
    user: User = request.user  # type: ignore[assignment]
    all_queues = queues()
    current = _find_queue(all_queues, queue)
    params = _sent_query(request)
    choices = FilterChoices(user)
    form = forms_.BulkForm(request.POST, actor=user, people=choices.people)
    if not form.is_valid():
        return _queue_page(
            request,
            user,
            all_queues,
            current,
            params,
            choices,
            bulk_form=form,
            selected=form.ticket_ids,
            status=400,
        )
    done: list[str] = []
    refused: list[str] = []
    for ticket_id in form.ticket_ids:
        try:
            ticket = queries.ticket_get(actor=user, ref=ticket_id)
        except NotFound:
            refused.append(f"#{ticket_id}: not found")
            continue
        try:
            _bulk_one(user, ticket, form.cleaned_data)
        except DomainError as exc:
            reason = exc.errors[0].message if exc.errors else exc.detail
            refused.append(f"{ticket.key}: {reason}")
        else:
            done.append(ticket.key)
    if done:
        messages.success(request, f"Done for {len(done)}: {', '.join(done)}.")
    if refused:
        messages.error(request, f"Not changed ({len(refused)}): " + "; ".join(refused) + ".")
    return redirect(current.url() + (f"?{params.urlencode()}" if params else ""))


# --- Saved views -----------------------------------------------------------------------


@require_POST
@staff_required
@config.pinned()
def save_view(request: HttpRequest) -> HttpResponse:
    """Save the queue and filters the user is looking at under a name of theirs. A refused
    name or filters come back on the queue page, with the message beside the name and
    what was typed kept (409 for a name already taken, else 400)."""
    user: User = request.user  # type: ignore[assignment]
    all_queues = queues()
    current = _find_queue(all_queues, request.POST.get("queue", ""))
    params = _sent_query(request)
    wanted = params.copy()
    wanted.pop("cursor", None)
    choices = FilterChoices(user)
    form = forms_.SavedViewForm(request.POST)
    status = 400
    named = form.is_valid()
    if not QueueFilterForm(wanted, actor=user, queue=current, choices=choices).is_valid():
        form.add_error(None, "Those filters are not valid: fix them before saving the view.")
    elif named:
        try:
            view = web_services.saved_view_create(
                actor=user,
                name=form.cleaned_data["name"],
                queue=current.slug,
                query=wanted.urlencode(),
            )
        except DomainError as exc:
            status = 409 if isinstance(exc, Conflict) else 400
            form.add_domain_error(exc)
        else:
            messages.success(request, f"Saved as “{view.name}”.")
            return redirect(current.url() + (f"?{wanted.urlencode()}" if wanted else ""))
    return _queue_page(
        request, user, all_queues, current, params, choices, view_form=form, status=status
    )


@require_POST
@staff_required
def delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        web_services.saved_view_delete(actor=user, view_id=view_id)
    except NotFound:
        raise Http404("No such view.") from None
    messages.success(request, "View deleted.")
    return redirect("web:console")
