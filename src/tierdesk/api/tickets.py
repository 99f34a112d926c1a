"""Tickets: create, read, list, update, move through states, comment, attach."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from ninja import File, Form, Query, Router, Schema
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
from tierdesk.api.schemas import ERRORS, CleanInput, PersonRef, Problem, StrictInput, person
from tierdesk.core import config, lookups
from tierdesk.core.errors import ContentTooLarge, NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.parse import as_id
from tierdesk.core.services import organization_get
from tierdesk.kb import queries as kb_queries
from tierdesk.kb import services as kb_services
from tierdesk.kb.models import Article, UseKind
from tierdesk.sla import queries as sla_queries
from tierdesk.tickets import queries, services
from tierdesk.tickets.models import Attachment, Comment, Status, Ticket, TimelineEntry
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import tier_by_code

log = logging.getLogger(__name__)
router = Router(tags=["tickets"])

StatusName = Literal[
    "new", "open", "in_progress", "pending_customer", "pending_third_party", "resolved", "closed"
]
PriorityName = Literal["P1", "P2", "P3", "P4"]
SourceName = Literal["portal", "api", "email", "phone", "monitoring", "chat"]
ResolutionName = Literal[
    "fixed", "workaround", "answered", "duplicate", "not_reproducible", "no_response", "wont_fix"
]
Level = Annotated[int, Field(ge=1, le=3)]
Subject = Annotated[str, StringConstraints(min_length=1, max_length=services.SUBJECT_MAX)]
Body = Annotated[str, StringConstraints(max_length=services.BODY_MAX)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=254)]


class CategoryRef(Schema):
    id: int
    slug: str
    name: str


class SlaClockOut(Schema):
    kind: Literal["first_response", "next_update", "resolution"]
    state: Literal["running", "paused", "met", "breached"]
    policy: str
    target_minutes: int
    started_at: dt.datetime
    due_at: dt.datetime = Field(description="Absolute UTC instant; moves when paused time ends.")
    business_seconds_left: int = Field(
        description="Business time until due (negative: overdue); frozen while paused or stopped."
    )
    paused_at: dt.datetime | None
    warned_at: dt.datetime | None
    breached_at: dt.datetime | None
    stopped_at: dt.datetime | None


class TicketOut(Schema):
    id: int
    key: str
    organization: str
    number: int
    subject: str
    description: str
    details: dict[str, str] = Field(description="Answers to the category's own questions.")
    status: StatusName
    priority: PriorityName
    impact: int
    urgency: int
    tier: str
    category: CategoryRef | None
    source: SourceName
    requester: PersonRef
    assignee: PersonRef | None
    resolution_code: str
    resolution_note: str
    reopen_count: int
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    tier_entered_at: dt.datetime
    tags: list[str]
    sla: list[SlaClockOut]
    version: int


class TicketPage(Schema):
    items: list[TicketOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class TicketCreate(StrictInput):
    organization: Annotated[str, StringConstraints(max_length=10)] | None = Field(
        None, description="Organization code; requesters may leave it out (their own)."
    )
    subject: Subject
    description: Body = ""
    requester: Ref | None = Field(
        None, description="Requester's id or email; requesters may leave it out (themself)."
    )
    category: Annotated[str, StringConstraints(max_length=50)] | None = Field(
        None, description="Category slug or id."
    )
    impact: Level | None = None
    urgency: Level | None = None
    priority: PriorityName | None = Field(
        None, description="Set explicitly; otherwise from the impact x urgency matrix."
    )
    tier: Annotated[str, StringConstraints(max_length=8)] | None = None
    assignee: Ref | None = Field(None, description="Assignee's id or email.")
    source: SourceName = "api"
    details: dict[Annotated[str, StringConstraints(max_length=40)], str | int] | None = Field(
        None,
        description="Answers to the category's own questions (its form_fields), by key.",
        max_length=20,
    )


class TicketPatch(StrictInput):
    subject: Subject | None = None
    description: Body | None = None
    category: Annotated[str, StringConstraints(max_length=50)] | None = None
    impact: Level | None = None
    urgency: Level | None = None
    priority: PriorityName | None = Field(
        None, description="null returns the priority to the impact x urgency matrix."
    )
    tier: Annotated[str, StringConstraints(max_length=8)] | None = None
    assignee: Ref | None = None


SOLVED_WITH_MAX = 20


class StatusChange(StrictInput):
    status: StatusName
    resolution_code: ResolutionName | None = None
    resolution_note: Body | None = None
    solved_with: list[Annotated[str, StringConstraints(min_length=1, max_length=254)]] = Field(
        default_factory=list,
        max_length=SOLVED_WITH_MAX,
        description=(
            "When resolving: the knowledge base articles (ids or slugs) that solved the "
            "ticket, each recorded as its solution at the ticket's tier."
        ),
    )


class CommentIn(StrictInput):
    body: Annotated[str, StringConstraints(min_length=1, max_length=services.BODY_MAX)]
    internal: bool = False


class CommentOut(Schema):
    id: int
    author: PersonRef
    body: str
    internal: bool
    created_at: dt.datetime


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    internal: bool
    created_at: dt.datetime
    download_url: str


class TimelineOut(Schema):
    id: int
    at: dt.datetime
    actor: PersonRef | None
    kind: str
    field: str
    old_value: str
    new_value: str
    comment_id: int | None
    internal: bool


class TicketListParams(CleanInput):
    status: list[StatusName] = Field(default_factory=list)
    tier: list[Annotated[str, StringConstraints(max_length=8)]] = Field(default_factory=list)
    organization: list[Annotated[str, StringConstraints(max_length=10)]] = Field(
        default_factory=list
    )
    priority: list[PriorityName] = Field(default_factory=list)
    category: list[Annotated[str, StringConstraints(max_length=50)]] = Field(default_factory=list)
    assignee: Annotated[str, StringConstraints(pattern=r"^(me|none|\d{1,18})$")] | None = None
    requester: Annotated[int, Field(ge=1, le=2**62)] | None = None
    tag: list[Annotated[str, StringConstraints(min_length=1, max_length=50)]] = Field(
        default_factory=list,
        max_length=10,
        description="Tickets that carry every one of these tags.",
    )
    text: Annotated[str, StringConstraints(max_length=200)] | None = None
    breached: bool | None = Field(
        None, description="true: an SLA clock has breached (and is not stopped); false: none has."
    )
    breaching_within: Annotated[int, Field(ge=0, le=525_600)] | None = Field(
        None, description="Minutes: a running SLA clock falls due within them."
    )
    ordering: Literal[
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "priority",
        "-priority",
        "number",
        "-number",
    ] = "-created_at"
    cursor: Annotated[str, StringConstraints(max_length=500)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def ticket_out(ticket: Ticket) -> dict[str, Any]:
    category = ticket.category
    return {
        "id": ticket.pk,
        "key": ticket.key,
        "organization": ticket.organization.code,
        "number": ticket.number,
        "subject": ticket.subject,
        "description": ticket.description,
        "details": ticket.details,
        "status": ticket.status,
        "priority": ticket.priority,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "tier": ticket.tier.code,
        "category": (
            {"id": category.pk, "slug": category.slug, "name": category.name} if category else None
        ),
        "source": ticket.source,
        "requester": person(ticket.requester),
        "assignee": person(ticket.assignee),
        "resolution_code": ticket.resolution_code,
        "resolution_note": ticket.resolution_note,
        "reopen_count": ticket.reopen_count,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "first_response_at": ticket.first_response_at,
        "resolved_at": ticket.resolved_at,
        "closed_at": ticket.closed_at,
        "tier_entered_at": ticket.tier_entered_at,
        "tags": queries.tag_names(ticket),
        "sla": sla_queries.clock_summary(ticket),
        "version": ticket.version,
    }


def ticket_response(ticket: Ticket, status: int = 200) -> HttpResponse:
    # Built straight from the row (no second pass through pydantic): the contract tests
    # check every answer against TicketOut.
    return json_response(status, ticket_out(ticket), ETag=etag_for(ticket.version))


def user_ref(field: str, ref: str | None, missing: str) -> User | None:
    """Look up a user by id or email. Whether they may take part is the service's call; an
    unknown one gets the same message as one who may not, so nobody can probe for people."""
    if ref is None:
        return None
    ref = ref.strip()
    user_id = as_id(ref)
    user = (
        lookups.user_by_id(user_id) if user_id is not None else lookups.user_by_email(ref.lower())
    )
    if user is None:
        raise ValidationFailed.for_field(field, missing)
    return user


def _category_ref(organization: Organization, ref: str | None) -> Any:
    if ref is None:
        return None
    category = category_for_organization(organization, ref)
    if category is None:
        raise ValidationFailed.for_field("category", "no such category")
    return category


def _organization_for_create(request: HttpRequest, code: str | None) -> Organization:
    user = actor(request)
    if code is None:
        if user.organization is None:
            raise ValidationFailed.for_field("organization", "required")
        return user.organization
    try:
        return organization_get(actor=user, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None


@router.post(
    "/tickets",
    response={201: TicketOut, 409: Problem, **ERRORS},
    summary="Open a ticket",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
@config.pinned()  # the category looked up here and the create see one configuration
def create_ticket(request: HttpRequest, payload: TicketCreate) -> HttpResponse:
    user = actor(request)
    organization = _organization_for_create(request, payload.organization)
    ticket = services.ticket_create(
        actor=user,
        organization=organization,
        subject=payload.subject,
        description=payload.description,
        source=payload.source,
        requester=user_ref("requester", payload.requester, services.NO_SUCH_REQUESTER),
        category=_category_ref(organization, payload.category),
        impact=payload.impact,
        urgency=payload.urgency,
        priority=payload.priority,
        tier=tier_by_code(payload.tier) if payload.tier else None,
        assignee=user_ref("assignee", payload.assignee, services.NO_SUCH_ASSIGNEE),
        details=payload.details,
    )
    # The service hands back the ticket with every related row it was given: no re-read.
    response = ticket_response(ticket, 201)
    response["Location"] = f"/api/v1/tickets/{ticket.key}"
    return response


@router.get("/tickets", response={200: TicketPage, **ERRORS}, summary="List tickets")
def list_tickets(request: HttpRequest, params: Query[TicketListParams]) -> HttpResponse:
    reject_unknown_query(request, TicketListParams)
    page = queries.ticket_list(
        actor=actor(request),
        filters=queries.TicketFilters(
            status=list(params.status),
            tier=params.tier,
            organization=params.organization,
            priority=list(params.priority),
            category=params.category,
            assignee=params.assignee,
            requester=params.requester,
            tags=params.tag,
            text=params.text,
            breached=params.breached,
            breaching_within=params.breaching_within,
        ),
        ordering=params.ordering,
        cursor=params.cursor,
        limit=params.limit,
    )
    # Built straight from the rows like a single ticket: a pydantic pass over 50 answers
    # cost a third of the request. The contract tests check it against TicketPage.
    return json_response(
        200, {"items": [ticket_out(t) for t in page.items], "next_cursor": page.next_cursor}
    )


@router.get("/tickets/{ref}", response={200: TicketOut, **ERRORS}, summary="Read a ticket")
def get_ticket(request: HttpRequest, ref: Ref) -> HttpResponse:
    return ticket_response(queries.ticket_get(actor=actor(request), ref=ref))


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


@router.patch(
    "/tickets/{ref}",
    response={200: TicketOut, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Change a ticket's fields",
    openapi_extra=IF_MATCH,
)
def update_ticket(request: HttpRequest, ref: Ref, payload: TicketPatch) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    version = expected_version(request)
    given = payload.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("subject", "description", "impact", "urgency", "priority"):
        if name in given:
            value = getattr(payload, name)
            if value is None and name != "priority":
                raise ValidationFailed.for_field(name, "may not be null")
            changes[name] = value
    if "category" in given:
        changes["category"] = _category_ref(ticket.organization, payload.category)
    if "assignee" in given:
        changes["assignee"] = user_ref("assignee", payload.assignee, services.NO_SUCH_ASSIGNEE)
    if "tier" in given:
        if payload.tier is None:
            raise ValidationFailed.for_field("tier", "may not be null")
        changes["tier"] = tier_by_code(payload.tier)
    return ticket_response(
        services.ticket_update(actor=user, ticket=ticket, expected_version=version, **changes)
    )


@router.post(
    "/tickets/{ref}/status",
    response={200: TicketOut, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Move a ticket to another status (resolve, reopen, close, ...)",
    openapi_extra=IF_MATCH,
)
def change_status(request: HttpRequest, ref: Ref, payload: StatusChange) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    if payload.solved_with and payload.status != Status.RESOLVED:
        raise ValidationFailed.for_field("solved_with", "only when resolving")
    # One transaction: resolved with its "solved with" records, or neither.
    with transaction.atomic():
        moved = services.ticket_transition(
            actor=user,
            ticket=ticket,
            to_status=payload.status,
            expected_version=expected_version(request),
            resolution_code=payload.resolution_code,
            resolution_note=payload.resolution_note,
        )
        for article in _solving_articles(user, payload.solved_with):
            kb_services.article_use(actor=user, article=article, ticket=moved, kind=UseKind.SOLVED)
    return ticket_response(moved)


def _solving_articles(user: User, refs: list[str]) -> list[Article]:
    """The articles ``refs`` name (ids or slugs), each once; one the caller may not read is
    refused like one that does not exist."""
    found: dict[int, Article] = {}
    for ref in refs:
        try:
            article = kb_queries.article_get(actor=user, ref=ref)
        except NotFound:
            raise ValidationFailed.for_field(
                "solved_with", f"no article {ref.strip()[:80]!r}"
            ) from None
        found.setdefault(article.pk, article)
    return list(found.values())


def comment_out(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.pk,
        "author": person(comment.author),
        "body": comment.body,
        "internal": comment.is_internal,
        "created_at": comment.created_at,
    }


@router.get(
    "/tickets/{ref}/comments", response={200: list[CommentOut], **ERRORS}, summary="Comments"
)
def list_comments(request: HttpRequest, ref: Ref) -> list[dict[str, Any]]:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    return [comment_out(c) for c in queries.comment_list(actor=user, ticket=ticket)]


@router.post(
    "/tickets/{ref}/comments",
    response={201: CommentOut, 409: Problem, **ERRORS},
    summary="Reply publicly or add an internal note",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def add_comment(request: HttpRequest, ref: Ref, payload: CommentIn) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    comment = services.ticket_comment(
        actor=user, ticket=ticket, body=payload.body, internal=payload.internal
    )
    return json_response(
        201, CommentOut.model_validate(comment_out(comment)).model_dump(mode="json")
    )


@router.get(
    "/tickets/{ref}/timeline", response={200: list[TimelineOut], **ERRORS}, summary="History"
)
def timeline(request: HttpRequest, ref: Ref) -> list[dict[str, Any]]:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    entries: list[TimelineEntry] = list(queries.timeline_list(actor=user, ticket=ticket))
    return [
        {
            "id": e.pk,
            "at": e.at,
            "actor": person(e.actor),
            "kind": e.kind,
            "field": e.field,
            "old_value": e.old_value,
            "new_value": e.new_value,
            "comment_id": e.comment_id,
            "internal": e.is_internal,
        }
        for e in entries
    ]


def attachment_out(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "internal": attachment.is_internal,
        "created_at": attachment.created_at,
        "download_url": f"/api/v1/attachments/{attachment.pk}",
    }


@router.get(
    "/tickets/{ref}/attachments",
    response={200: list[AttachmentOut], **ERRORS},
    summary="Attachments",
)
def list_attachments(request: HttpRequest, ref: Ref) -> list[dict[str, Any]]:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    return [attachment_out(a) for a in queries.attachment_list(actor=user, ticket=ticket)]


@router.post(
    "/tickets/{ref}/attachments",
    response={201: AttachmentOut, 409: Problem, 413: Problem, **ERRORS},
    summary="Attach a file (multipart/form-data, field 'file')",
)
def add_attachment(
    request: HttpRequest,
    ref: Ref,
    file: File[UploadedFile],
    internal: Form[bool] = False,
) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    if file.size is not None and file.size > settings.ATTACHMENT_MAX_BYTES:
        raise ContentTooLarge.for_field(
            "file", f"larger than the limit of {settings.ATTACHMENT_MAX_BYTES} bytes"
        )
    attachment = services.attachment_add(
        actor=user,
        ticket=ticket,
        filename=file.name or "",
        content=file.read(settings.ATTACHMENT_MAX_BYTES + 1),
        internal=internal,
    )
    body = AttachmentOut.model_validate(attachment_out(attachment)).model_dump(mode="json")
    return json_response(201, body, Location=body["download_url"])


@router.get(
    "/attachments/{attachment_id}",
    response={200: None, **ERRORS},
    summary="Download an attachment (always as a download)",
    auth=None,
    openapi_extra={"security": [{"TokenAuth": []}]},
)
def download_attachment(
    request: HttpRequest, attachment_id: Annotated[int, Field(ge=1, le=2**62)]
) -> HttpResponseBase:
    # Authenticated here rather than by the router so that an anonymous request is answered
    # exactly like a missing or hidden file: 404, never 401, so links leak nothing.
    reader = optional_actor(request)
    if reader is None:
        raise NotFound("No such attachment.")
    attachment = queries.attachment_get(actor=reader, attachment_id=attachment_id)
    try:
        handle = open(services.attachment_path(attachment), "rb")  # noqa: SIM115 - FileResponse closes it
    except FileNotFoundError:
        log.error("attachment %s: its file %s is missing", attachment.pk, attachment.storage_key)
        raise NotFound(
            "The file of this attachment is missing; an administrator was told."
        ) from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.filename,
        content_type="application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


# --- Links between tickets, and merging ------------------------------------------------

LinkKindName = Literal["duplicate_of", "related_to", "caused_by"]
LinkId = Annotated[int, Field(ge=1, le=2**62)]


class LinkedTicketRef(Schema):
    id: int
    key: str
    subject: str
    status: StatusName


class TicketLinkOut(Schema):
    id: int
    kind: LinkKindName = Field(description="How the link's source relates to its target.")
    direction: Literal["outgoing", "incoming"] = Field(
        description="outgoing: this ticket is the link's source."
    )
    label: str = Field(description="How it reads from this ticket: 'Duplicate of', 'Causes', …")
    ticket: LinkedTicketRef = Field(description="The ticket at the other end.")
    merge: bool = Field(description="Made by a merge; cannot be removed.")
    created_at: dt.datetime


class TicketLinkIn(StrictInput):
    target: Ref = Field(description="The other ticket: its key (ACME-12) or id.")
    kind: LinkKindName


class MergeIn(StrictInput):
    target: Ref = Field(description="The ticket to merge into: its key (ACME-12) or id.")
    public: bool = Field(
        False,
        description="Copy the duplicate's thread as a public reply (the target's requester "
        "sees it); default: an internal note.",
    )
    target_version: Annotated[int, Field(ge=1, le=2**31)] | None = Field(
        None, description="The target's version last read; a stale one gets 412."
    )


class MergeOut(Schema):
    source: TicketOut = Field(description="The merged ticket, now closed.")
    target: TicketOut
    note_id: int = Field(description="The comment on the target carrying the duplicate.")


def link_out(linked: queries.LinkedTicket) -> dict[str, Any]:
    other = linked.other
    return {
        "id": linked.link.pk,
        "kind": linked.link.kind,
        "direction": "outgoing" if linked.outgoing else "incoming",
        "label": linked.label,
        "ticket": {
            "id": other.pk,
            "key": other.key,
            "subject": other.subject,
            "status": other.status,
        },
        "merge": linked.link.is_merge,
        "created_at": linked.link.created_at,
    }


def optional_version(request: HttpRequest) -> int | None:
    """``If-Match`` when sent (checked like everywhere), else no version check: links only
    add to a ticket, like comments."""
    return expected_version(request) if "If-Match" in request.headers else None


IF_MATCH_OPTIONAL = {
    "parameters": [
        {
            "in": "header",
            "name": "If-Match",
            "required": False,
            "schema": {"type": "string"},
            "description": "The ticket's ETag last read; when sent, a stale one gets 412.",
        }
    ]
}


@router.get(
    "/tickets/{ref}/links",
    response={200: list[TicketLinkOut], **ERRORS},
    summary="The ticket's links to other tickets",
)
def list_links(request: HttpRequest, ref: Ref) -> list[dict[str, Any]]:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    return [link_out(x) for x in queries.link_list(actor=user, ticket=ticket)]


@router.post(
    "/tickets/{ref}/links",
    response={201: TicketLinkOut, 409: Problem, 412: Problem, **ERRORS},
    summary="Link the ticket to another of its organization",
    openapi_extra={
        "parameters": IDEMPOTENCY_HEADER["parameters"] + IF_MATCH_OPTIONAL["parameters"]
    },
)
@idempotent
def add_link(request: HttpRequest, ref: Ref, payload: TicketLinkIn) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    other = queries.link_target_get(actor=user, ticket=ticket, ref=payload.target, bare="id")
    link = services.ticket_link(
        actor=user,
        ticket=ticket,
        other=other,
        kind=payload.kind,
        expected_version=optional_version(request),
    )
    [linked] = [x for x in queries.link_list(actor=user, ticket=ticket) if x.link.pk == link.pk]
    return json_response(
        201, link_out(linked), Location=f"/api/v1/tickets/{ticket.key}/links/{link.pk}"
    )


@router.delete(
    "/tickets/{ref}/links/{link_id}",
    response={204: None, 409: Problem, 412: Problem, **ERRORS},
    summary="Remove a link (from either of its tickets)",
    openapi_extra=IF_MATCH_OPTIONAL,
)
def delete_link(request: HttpRequest, ref: Ref, link_id: LinkId) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    services.ticket_unlink(
        actor=user, ticket=ticket, link_id=link_id, expected_version=optional_version(request)
    )
    return HttpResponse(status=204)


@router.post(
    "/tickets/{ref}/merge",
    response={200: MergeOut, 409: Problem, 412: Problem, 428: Problem, **ERRORS},
    summary="Merge the ticket (a duplicate) into another: it is closed, its thread copied",
    openapi_extra=IF_MATCH,
)
def merge_ticket(request: HttpRequest, ref: Ref, payload: MergeIn) -> HttpResponse:
    user = actor(request)
    ticket = queries.ticket_get(actor=user, ref=ref)
    version = expected_version(request)
    target = queries.link_target_get(actor=user, ticket=ticket, ref=payload.target, bare="id")
    result = services.ticket_merge(
        actor=user,
        source=ticket,
        target=target,
        public=payload.public,
        expected_version=version,
        target_version=payload.target_version,
    )
    source = queries.ticket_get(actor=user, ref=result.source.pk)
    merged_into = queries.ticket_get(actor=user, ref=result.target.pk)
    body = {
        "source": ticket_out(source),
        "target": ticket_out(merged_into),
        "note_id": result.note.pk,
    }
    return json_response(200, body, ETag=etag_for(source.version))
