"""The self-service portal: requesters open tickets, follow them in plain words, reply,
reopen and rate. They see their own tickets (their organization's when their role allows)
and only what is meant for them: no internal notes or files, no tiers, routing or
escalations."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.http import require_POST

from tierdesk.core import config
from tierdesk.core.errors import DomainError, NotFound
from tierdesk.core.models import User
from tierdesk.sla import queries as sla_queries
from tierdesk.tickets import queries, services
from tierdesk.tickets.models import (
    OPEN_STATUSES,
    Source,
    Status,
    Ticket,
    TimelineKind,
)
from tierdesk.tiers.form_fields import ANSWER_MAX, labelled
from tierdesk.tiers.queries import categories_for_organization, category_for_organization
from tierdesk.web.forms import BODY_MAX, CommentForm, DomainErrors, MultipleFileField, TicketForm
from tierdesk.web.views import portal_kb
from tierdesk.web.views.common import requester_required

# What the requester reads instead of the status codes.
STATUS_WORDS = {
    Status.NEW: "Received — waiting for an agent",
    Status.OPEN: "Open — an agent is on it",
    Status.IN_PROGRESS: "In progress",
    Status.PENDING_CUSTOMER: "Waiting for your answer",
    Status.PENDING_THIRD_PARTY: "Waiting for a supplier",
    Status.RESOLVED: "Resolved",
    Status.CLOSED: "Closed",
}
# The timeline entries a requester sees (public ones only).
SHOWN = {
    TimelineKind.CREATED,
    TimelineKind.COMMENT,
    TimelineKind.STATUS_CHANGED,
    TimelineKind.ATTACHMENT,
    TimelineKind.RATED,
}
PAGE_SIZE = 25


class NewTicketForm(DomainErrors, forms.Form):
    SUBJECT_MAX = 250
    category = forms.ChoiceField(label="What is it about?")
    subject = forms.CharField(label="Subject", max_length=SUBJECT_MAX)
    description = forms.CharField(
        label="Describe the problem",
        max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What happened, since when, and what you already tried.",
    )
    urgency = forms.TypedChoiceField(
        label="How urgent is it for you?",
        coerce=int,
        choices=[(3, "It can wait"), (2, "It slows me down"), (1, "I cannot work")],
        initial=2,
    )
    attachments = MultipleFileField(required=False, label="Screenshots or files")

    def __init__(self, *args: Any, requester: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["category"]
        assert isinstance(field, forms.ChoiceField)
        assert requester.organization is not None
        offered = categories_for_organization(requester.organization)
        field.choices = [("", "Choose…")] + [(c.pk, c.name) for c in offered]
        # with scripts, choosing a category brings its questions at once; without, the
        # first send shows them (required ones refused until answered, nothing lost)
        field.widget.attrs.update(
            {
                "hx-get": reverse("web:portal-new"),
                "hx-trigger": "change",
                "hx-target": "#category-questions",
                "hx-swap": "outerHTML",
            }
        )
        # The chosen category's own questions, as fields named ``details.<key>`` (the
        # names the service's refusals use): asked once a category is chosen.
        chosen = self.data.get("category") if self.is_bound else self.initial.get("category")
        self.chosen_category = next((c for c in offered if str(c.pk) == str(chosen)), None)
        for question in self.chosen_category.form_fields if self.chosen_category else []:
            self.fields[f"details.{question['key']}"] = question_field(question)

    def question_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("details.")]

    def answers(self) -> dict[str, str]:
        return {
            name.removeprefix("details."): value
            for name, value in self.cleaned_data.items()
            if name.startswith("details.")
        }


def question_field(question: dict[str, Any]) -> forms.Field:
    """The form field that asks one of a category's questions (see tiers.form_fields); the
    service checks the answer again, so the two never disagree for long."""
    common: dict[str, Any] = {
        "label": question["label"],
        "required": question["required"],
        "help_text": escape(question["help"]),  # Django renders help text unescaped
        "max_length": ANSWER_MAX[question["type"]],
    }
    kind = question["type"]
    if kind == "choice":
        del common["max_length"]
        return forms.ChoiceField(
            choices=[("", "Choose…"), *((c, c) for c in question["choices"])], **common
        )
    widget: forms.Widget = {
        "textarea": forms.Textarea(attrs={"rows": 3}),
        "date": forms.DateInput(attrs={"type": "date"}),
        "number": forms.TextInput(attrs={"inputmode": "numeric"}),
    }.get(kind, forms.TextInput())
    return forms.CharField(widget=widget, **common)


class RatingForm(TicketForm):
    score = forms.TypedChoiceField(
        label="How did we do?",
        coerce=int,
        choices=[(5, "5 — very good"), (4, "4"), (3, "3"), (2, "2"), (1, "1 — very poor")],
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Anything to add? (optional)",
        required=False,
        max_length=services.RATING_COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@requester_required
def home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    show = request.GET.get("show", "open")
    filters = queries.TicketFilters(
        status=sorted(str(s) for s in OPEN_STATUSES) if show == "open" else []
    )
    page = queries.ticket_list(
        actor=user, filters=filters, cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE
    )
    return render(
        request,
        "web/portal/home.html",
        {
            "rows": [(t, STATUS_WORDS[Status(t.status)], _expectation(t)) for t in page.items],
            "page": page,
            "show": show,
        },
    )


@requester_required
@config.pinned()
def new_ticket(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = NewTicketForm(
        request.POST or None,
        request.FILES or None,
        requester=user,
        # "Open a ticket" from a knowledge base article brings its title and category
        initial={
            "category": request.GET.get("category", ""),
            "subject": request.GET.get("subject", "")[: NewTicketForm.SUBJECT_MAX],
        },
    )
    if request.htmx and request.htmx.target == "category-questions":  # type: ignore[attr-defined]
        return render(request, "web/portal/new.html#questions", {"form": form})
    # the articles suggested while the ticket was typed (portal_kb.suggest keeps the list)
    kb_shown = ",".join(str(i) for i in portal_kb.shown_ids(request.POST.get("kb_shown", "")))
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            assert user.organization is not None
            try:
                with transaction.atomic():  # the ticket and its files, or nothing
                    ticket = services.ticket_create(
                        actor=user,
                        organization=user.organization,
                        subject=data["subject"],
                        description=data["description"],
                        source=Source.PORTAL,
                        category=category_for_organization(
                            user.organization, int(data["category"])
                        ),
                        urgency=data["urgency"],
                        details=form.answers(),
                    )
                    for f in data["attachments"]:
                        services.attachment_add(
                            actor=user, ticket=ticket, filename=f.name or "", content=f.read()
                        )
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                # after the ticket is saved, and never in its way: bad ids are left out
                portal_kb.remember_suggestions(actor=user, ticket=ticket, raw=kb_shown)
                messages.success(request, f"Thank you: your ticket is {ticket.key}.")
                return redirect("web:portal-ticket", ref=ticket.key)
    context = {
        "form": form,
        "kb_shown": kb_shown,
        # a subject there already (refused, or brought from an article): suggest at once
        "suggest_now": bool(form["subject"].value()),
    }
    return render(request, "web/portal/new.html", context, status=status)


def _load(user: User, ref: str) -> Ticket:
    try:
        return queries.ticket_get(actor=user, ref=ref)
    except NotFound:
        raise Http404("No such ticket.") from None


@requester_required
@config.pinned()
def ticket(request: HttpRequest, ref: str) -> HttpResponse:
    user = _user(request)
    return _ticket_page(request, user, _load(user, ref))


def _ticket_page(
    request: HttpRequest,
    user: User,
    found: Ticket,
    failed: dict[str, forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    failed = failed or {}
    timeline = [
        e
        for e in queries.timeline_list(actor=user, ticket=found).order_by("at", "id")
        if e.kind in SHOWN
    ]
    for e in timeline:  # a status change in the words the status list uses
        if e.kind == TimelineKind.STATUS_CHANGED and e.new_value in Status.values:
            e.words = STATUS_WORDS[Status(e.new_value)]  # type: ignore[attr-defined]
    attachments = list(queries.attachment_list(actor=user, ticket=found))
    rating = queries.rating_of(found)
    mine = found.requester_id == user.pk
    context = {
        "ticket": found,
        "status_words": STATUS_WORDS[Status(found.status)],
        "expectation": _expectation(found),
        "details": labelled(found.category.form_fields if found.category else [], found.details),
        "timeline": timeline,
        "attachments": attachments,
        "rating": rating,
        "reply_form": (
            failed.get("reply") or CommentForm(ticket=found, actor=user)
            if found.status != Status.CLOSED
            else None
        ),
        "can_reopen": services.may_reopen(user, found),
        "rating_form": (
            failed.get("rate") or RatingForm(ticket=found, actor=user)
            if mine and rating is None and found.status in (Status.RESOLVED, Status.CLOSED)
            else None
        ),
        "reopen_days": settings.REOPEN_WINDOW_DAYS,
    }
    return render(request, "web/portal/ticket.html", context, status=status)


# While the ticket waits (its clocks paused), what the requester reads instead of a time.
PAUSED_WORDS = {
    Status.PENDING_CUSTOMER: "The clock is stopped while we wait for you.",
    Status.PENDING_THIRD_PARTY: "The clock is stopped while we wait for a supplier.",
}
# A clock past its target, without a time that has gone by.
LATE_WORDS = {
    "first_response": "Later than we promised: an agent will answer you as soon as possible.",
    "resolution": "It is taking longer than we aimed: we are still working on it.",
}


def _expectation(ticket: Ticket) -> str:
    """What the requester may expect, in plain words, from the ticket's live SLA clocks:
    the first answer until there is one, then the resolution. A paused clock says whom
    we wait for, a late one says so without a time gone by. Empty for a resolved or closed
    ticket and when no SLA applies. Reads the clocks through clocks_of (loaded with list
    pages)."""
    if ticket.status in (Status.RESOLVED, Status.CLOSED):
        return ""
    live = {c["kind"]: c for c in sla_queries.clock_summary(ticket) if c["stopped_at"] is None}
    for kind in ("first_response", "resolution"):
        c = live.get(kind)
        if c is None:
            continue
        if c["paused_at"] is not None:
            return PAUSED_WORDS.get(Status(ticket.status), PAUSED_WORDS[Status.PENDING_CUSTOMER])
        if c["breached_at"] is not None:
            return LATE_WORDS[kind]
        if kind == "first_response":
            return "We will answer you by " + _when(c["due_at"])
        return "We aim to resolve it by " + _when(c["due_at"])
    return ""


def _when(instant: Any) -> str:
    """In the reader's time zone (see web.middleware.UserTimeZone)."""
    local = timezone.localtime(instant)
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()}"


@require_POST
@requester_required
def reply(request: HttpRequest, ref: str) -> HttpResponse:
    user = _user(request)
    found = _load(user, ref)
    form = CommentForm(request.POST, request.FILES, ticket=found, actor=user)
    if form.is_valid():
        try:
            with transaction.atomic():
                services.ticket_comment(actor=user, ticket=found, body=form.cleaned_data["body"])
                for f in form.cleaned_data["attachments"]:
                    services.attachment_add(
                        actor=user, ticket=found, filename=f.name or "", content=f.read()
                    )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, "Your reply has been sent.")
            return redirect(reverse("web:portal-ticket", args=[found.key]) + "#conversation")
    return _ticket_page(request, user, found, {"reply": form}, status=422)


@require_POST
@requester_required
def reopen(request: HttpRequest, ref: str) -> HttpResponse:
    user = _user(request)
    found = _load(user, ref)
    try:
        services.ticket_transition(actor=user, ticket=found, to_status=Status.OPEN)
    except DomainError as exc:
        messages.error(request, exc.errors[0].message if exc.errors else exc.detail)
    else:
        messages.success(request, "Reopened: an agent will look at it again.")
    return redirect("web:portal-ticket", ref=found.key)


@require_POST
@requester_required
def rate(request: HttpRequest, ref: str) -> HttpResponse:
    user = _user(request)
    found = _load(user, ref)
    form = RatingForm(request.POST, ticket=found, actor=user)
    if form.is_valid():
        try:
            services.ticket_rate(
                actor=user,
                ticket=found,
                score=form.cleaned_data["score"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as exc:
            form.add_domain_error(exc)
        else:
            messages.success(request, "Thank you for your rating.")
            return redirect("web:portal-ticket", ref=found.key)
    return _ticket_page(request, user, found, {"rate": form}, status=422)
