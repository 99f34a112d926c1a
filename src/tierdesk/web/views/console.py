"""The agent console: tier queues and the ticket page. Staff only; every read goes through
the tickets app's queries, so a page shows exactly what the API would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from tierdesk.core import policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import User
from tierdesk.sla import queries as sla_queries
from tierdesk.tickets import queries
from tierdesk.tickets.models import OPEN_STATUSES, Priority, Status, Ticket
from tierdesk.tiers.queries import tiers_by_level
from tierdesk.web.views.common import staff_required

PAGE_SIZE = 50
# (?sort= value, column title): what the queue's columns may be sorted by.
SORTS = {
    "-created_at": "Newest first",
    "created_at": "Oldest first",
    "-updated_at": "Recently changed",
    "priority": "Priority (P1 first)",
    "number": "Number",
}


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


class QueueFilterForm(forms.Form):
    """The filters above a queue. Values outside the choices are refused with a message
    beside the field, and the form keeps what was typed."""

    text = forms.CharField(required=False, max_length=200, label="Search")
    organization = forms.ChoiceField(required=False, label="Organization")
    priority = forms.ChoiceField(
        required=False, choices=[("", "Any"), *list(Priority.choices)], label="Priority"
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any open")] + [(s, Status(s).label) for s in Status.values],
        label="Status",
    )
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()), label="Sort")

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        codes = policy.visible_organizations(actor).order_by("code")
        field = self.fields["organization"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All")] + [(o.code, f"{o.code} — {o.name}") for o in codes]


def home(request: HttpRequest) -> HttpResponse:
    return redirect_to_first_queue(request)


@staff_required
def redirect_to_first_queue(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    profile = getattr(user, "agent_profile", None)
    slug = profile.tier.code.lower() if profile is not None and profile.tier else "mine"
    return redirect("web:queue", queue=slug)


@staff_required
def queue(request: HttpRequest, queue: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    all_queues = queues()
    current = next((q for q in all_queues if q.slug == queue), None)
    if current is None:
        raise Http404("No such queue.")
    form = QueueFilterForm(request.GET or None, actor=user)
    filters = queries.TicketFilters(**vars(current.base))
    sort = "-created_at"
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters.text = data["text"] or None
        filters.organization = [data["organization"]] if data["organization"] else []
        filters.priority = [data["priority"]] if data["priority"] else []
        if data["status"]:
            filters.status = [data["status"]]
        sort = data["sort"] or sort
    page: queries.Page | None = None
    cursor = request.GET.get("cursor") or None
    if not form.errors:
        try:
            page = queries.ticket_list(
                actor=user, filters=filters, ordering=sort, cursor=cursor, limit=PAGE_SIZE
            )
        except ValidationFailed as exc:  # a cursor from another list: start again
            form.add_error(None, exc.detail)
    counts = queries.queue_counts(actor=user, queues={q.slug: q.base for q in all_queues})
    context = {
        "queues": [(q, counts[q.slug]) for q in all_queues],
        "queue": current,
        "form": form,
        "page": page,
        "rows": [_row(t) for t in page.items] if page else [],
        "query": _query_without_cursor(request),
        "refresh_seconds": settings.QUEUE_REFRESH_SECONDS,
    }
    if request.htmx and request.htmx.target == "queue-rows":  # type: ignore[attr-defined]
        return render(request, "web/console/queue.html#rows", context)
    return render(request, "web/console/queue.html", context)


def _query_without_cursor(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("cursor", None)
    return params.urlencode()


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


@staff_required
def ticket(request: HttpRequest, ref: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    try:
        found = queries.ticket_get(actor=user, ref=ref)
    except NotFound:
        raise Http404("No such ticket.") from None
    queries.load_related([found])
    timeline = list(queries.timeline_list(actor=user, ticket=found).order_by("at", "id"))
    attachments = list(queries.attachment_list(actor=user, ticket=found))
    others = queries.ticket_list(
        actor=user,
        filters=queries.TicketFilters(
            status=sorted(str(s) for s in OPEN_STATUSES), requester=found.requester_id
        ),
        limit=6,
    ).items
    recent = queries.ticket_list(
        actor=user,
        filters=queries.TicketFilters(organization=[found.organization.code]),
        limit=6,
    ).items
    return render(
        request,
        "web/console/ticket.html",
        {
            "ticket": found,
            "sla": _badges(found),
            "timeline": timeline,
            "attachments": attachments,
            "requester_open": [t for t in others if t.pk != found.pk][:5],
            "organization_recent": [t for t in recent if t.pk != found.pk][:5],
            "queues": [(q, None) for q in queues()],
        },
    )
