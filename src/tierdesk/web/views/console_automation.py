"""The ticket page's account actions: the runbooks an agent may run for the ticket's
requester against their organization's directory, the runs made from this ticket, and
the approvals they wait for (automation.services does the work and the checks).

A generated password is shown once, on the page that answers the run: that page is
rendered, not redirected to (a message stored for the next page would keep it in the
session), and is not cached."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from tierdesk.automation import runbooks, services
from tierdesk.automation.models import ActionRun, Directory, RunStatus
from tierdesk.core import config
from tierdesk.core.errors import DomainError
from tierdesk.core.models import User
from tierdesk.tickets.models import OPEN_STATUSES, Ticket
from tierdesk.web.views.common import staff_required


def _directory(ticket: Ticket) -> Directory | None:
    return Directory.objects.filter(organization_id=ticket.organization_id).first()


def offered(
    user: User, ticket: Ticket, directory: Directory | None = None
) -> list[runbooks.Runbook]:
    """The runbooks ``user`` may run for the ticket's requester (none on a closed ticket,
    without a requester, or without an active directory for the organization)."""
    if ticket.requester_id is None or ticket.status not in OPEN_STATUSES:
        return []
    directory = directory or _directory(ticket)
    if directory is None or not directory.is_active:
        return []
    return [
        b for b in runbooks.catalogue().values() if user.role in b.roles and not b.creates_account
    ]


def panel(
    user: User,
    ticket: Ticket,
    *,
    result: services.RunResult | None = None,
    error: str = "",
    chosen: str = "",
) -> dict[str, Any]:
    directory = _directory(ticket)
    books = offered(user, ticket, directory) if directory else []
    groups = [
        (dn, dn.split(",", 1)[0].partition("=")[2])
        for dn in (directory.allowed_groups if directory else [])
    ]
    runs = list(
        ActionRun.objects.filter(ticket=ticket)
        .select_related("requested_by", "decided_by")
        .order_by("-pk")[:20]
    )
    waiting = any(r.status == RunStatus.AWAITING_APPROVAL for r in runs)
    approver = waiting and services.may_approve(user)  # read only when it matters
    return {
        "runbooks": books,
        "groups": groups,
        "runs": [
            {
                "run": r,
                "decidable": approver
                and r.status == RunStatus.AWAITING_APPROVAL
                and r.requested_by_id != user.pk,
            }
            for r in runs
        ],
        "token": uuid.uuid4().hex,  # one per page: sending the same form twice acts once
        "result": result,
        "error": error,
        "chosen": chosen,
    }


def _parameters(book: runbooks.Runbook, data: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in book.parameters:
        if p.type == "boolean":
            values[p.name] = data.get(p.name) == "on"
        elif p.type == "password":
            continue  # chosen passwords are the person's own, in self-service
        elif data.get(p.name):
            values[p.name] = data.get(p.name)
    return values


def _answer(
    request: HttpRequest, user: User, ticket: Ticket, automation: dict[str, Any], status: int
) -> HttpResponse:
    from tierdesk.web.views.console import _ticket_page

    response = _ticket_page(request, user, ticket, status=status, automation=automation)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_required
@config.pinned()
def run(request: HttpRequest, ref: str) -> HttpResponse:
    from tierdesk.web.views.console import _load

    user: User = request.user  # type: ignore[assignment]
    ticket = _load(user, ref)
    name = request.POST.get("runbook", "")
    book = next((b for b in offered(user, ticket) if b.name == name), None)
    if book is None or ticket.requester is None:
        raise Http404("No such action for this ticket.")
    token = request.POST.get("token", "")
    if len(token) != 32 or not token.isalnum():
        automation = panel(user, ticket, error="This form is from an old page: send it again.")
        return _answer(request, user, ticket, automation, 422)
    try:
        done = services.run_action(
            actor=user,
            organization=ticket.organization,
            runbook=book.name,
            account=ticket.requester.email,
            parameters=_parameters(book, request.POST),
            channel="ticket",
            idempotency_key=f"console:{user.pk}:{token}",
            ticket=ticket,
        )
    except DomainError as exc:
        automation = panel(user, ticket, error=exc.detail, chosen=book.name)
        return _answer(request, user, ticket, automation, exc.status if exc.status >= 400 else 422)
    ticket = _load(user, ref)  # the run's note is on it now
    return _answer(request, user, ticket, panel(user, ticket, result=done, chosen=book.name), 200)


@require_POST
@staff_required
@config.pinned()
def decide(request: HttpRequest, ref: str, run_id: int, decision: str) -> HttpResponse:
    from tierdesk.web.views.console import _load

    user: User = request.user  # type: ignore[assignment]
    ticket = _load(user, ref)
    found = ActionRun.objects.filter(pk=run_id, ticket=ticket).first()
    if found is None or decision not in ("approve", "reject"):
        raise Http404("No such run on this ticket.")
    try:
        done = services.decide(actor=user, run=found, approve=decision == "approve")
    except DomainError as exc:
        automation = panel(user, ticket, error=exc.detail)
        return _answer(request, user, ticket, automation, exc.status if exc.status >= 400 else 422)
    ticket = _load(user, ref)
    return _answer(request, user, ticket, panel(user, ticket, result=done), 200)
