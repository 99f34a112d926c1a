"""Email in, for admins: the mailboxes the worker polls, a connection test, and the stored
messages with their quarantine (download the raw message, process it again).

The password is write-only: no answer contains it, and a PATCH without it keeps it. There
is no delete: stored messages refer to their mailbox; ``is_active=false`` stops polling.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field, StrictBool, StrictInt, StringConstraints

from tierdesk.api.common import (
    IDEMPOTENCY_HEADER,
    actor,
    idempotent,
    json_response,
    patch_changes,
    reject_unknown_query,
)
from tierdesk.api.schemas import ERRORS, CleanInput, Problem, StrictInput
from tierdesk.channels import imap, inbound, mail_queries, mailboxes
from tierdesk.channels.models import InboundMessage, InboundStatus, Mailbox
from tierdesk.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from tierdesk.core.services import organization_get

router = Router(tags=["mail"])

MailboxId = Annotated[int, Field(ge=1, le=2**62)]
MessageId = Annotated[int, Field(ge=1, le=2**62)]
Security = Literal["tls", "starttls"]
UnknownSendersName = Literal["domains", "anyone", "quarantine"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Address = Annotated[str, StringConstraints(min_length=3, max_length=254)]
Host = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
Username = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Folder = Annotated[str, StringConstraints(min_length=1, max_length=200)]
CaCertificate = Annotated[str, StringConstraints(max_length=50_000)]


class MailServerFailed(DomainError):
    """The mail server could not be reached or refused us; the detail says why."""

    status = 502
    slug = "mail-server-failed"
    title = "The mail server connection failed"


class MailboxIn(StrictInput):
    organization: Annotated[str, StringConstraints(min_length=1, max_length=10)] = Field(
        description="The organization's code: what arrives becomes its tickets."
    )
    name: Name
    address: Address = Field(
        description="The address people write to, without +…; replies come to "
        "address+token@…, so the server must deliver plus-addresses to this mailbox."
    )
    host: Host
    port: Port = Field(description="993 for tls, 143 for starttls, as a rule.")
    security: Security
    username: Username
    password: Password = Field(description="Write-only: never returned.")
    folder: Folder = "INBOX"
    ca_certificate: CaCertificate = Field(
        "", description="PEM certificates to trust besides the public ones (own CA)."
    )
    unknown_senders: UnknownSendersName = Field(
        "domains",
        description="domains: a new requester when the address is in one of the "
        "organization's domains; anyone: a new requester for any address; quarantine: "
        "an admin decides.",
    )
    is_active: StrictBool = True


class MailboxPatch(StrictInput):
    name: Name | None = None
    address: Address | None = None
    host: Host | None = None
    port: Port | None = None
    security: Security | None = None
    username: Username | None = None
    password: Password | None = Field(None, description="Leave out to keep the stored one.")
    folder: Folder | None = None
    ca_certificate: CaCertificate | None = Field(None, description="Empty string: none.")
    unknown_senders: UnknownSendersName | None = None
    is_active: StrictBool | None = None


class MailboxOut(Schema):
    id: int
    organization: str
    name: str
    address: str
    host: str
    port: int
    security: str
    username: str
    folder: str
    ca_certificate: str
    unknown_senders: str
    is_active: bool
    last_polled_at: dt.datetime | None
    last_error: str
    created_at: dt.datetime


class ConnectionTestOut(Schema):
    ok: bool
    detail: str = Field(description="What was found, e.g. '3 message(s) waiting in INBOX'.")


class InboundOut(Schema):
    id: int
    mailbox: int
    organization: str
    received_at: dt.datetime
    sender: str
    subject: str
    status: str
    reason: str
    size: int
    ticket: str | None = Field(description="The ticket's key, when it made or joined one.")
    processed_at: dt.datetime | None


class InboundPage(Schema):
    items: list[InboundOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class InboundListParams(CleanInput):
    status: Literal["received", "processed", "ignored", "quarantined"] | None = None
    mailbox: MailboxId | None = None
    cursor: Annotated[str, StringConstraints(max_length=20)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def mailbox_out(box: Mailbox) -> dict[str, Any]:
    """A mailbox as the API shows it: everything but the password."""
    return {
        "id": box.pk,
        "organization": box.organization.code,
        "name": box.name,
        "address": box.address,
        "host": box.host,
        "port": box.port,
        "security": box.security,
        "username": box.username,
        "folder": box.folder,
        "ca_certificate": box.ca_certificate,
        "unknown_senders": box.unknown_senders,
        "is_active": box.is_active,
        "last_polled_at": box.last_polled_at,
        "last_error": box.last_error,
        "created_at": box.created_at,
    }


def inbound_out(message: InboundMessage) -> dict[str, Any]:
    return {
        "id": message.pk,
        "mailbox": message.mailbox_id,
        "organization": message.mailbox.organization.code,
        "received_at": message.received_at,
        "sender": message.sender,
        "subject": message.subject,
        "status": message.status,
        "reason": message.reason,
        "size": message.size,
        "ticket": message.ticket.key if message.ticket else None,
        "processed_at": message.processed_at,
    }


@router.get(
    "/mailboxes",
    response={200: list[MailboxOut], **ERRORS},
    summary="List mailboxes (admins)",
)
def list_mailboxes(request: HttpRequest) -> list[dict[str, Any]]:
    return [mailbox_out(b) for b in mail_queries.mailbox_list(actor=actor(request))[:1000]]


@router.get(
    "/mailboxes/{mailbox_id}",
    response={200: MailboxOut, **ERRORS},
    summary="Read a mailbox (admins; never its password)",
)
def get_mailbox(request: HttpRequest, mailbox_id: MailboxId) -> dict[str, Any]:
    return mailbox_out(mail_queries.mailbox_get(actor=actor(request), mailbox_id=mailbox_id))


@router.post(
    "/mailboxes",
    response={201: MailboxOut, **ERRORS},
    summary="Add a mailbox for an organization (admins); the worker polls it",
    openapi_extra=IDEMPOTENCY_HEADER,
)
@idempotent
def create_mailbox(request: HttpRequest, payload: MailboxIn) -> HttpResponse:
    me = actor(request)
    mail_queries.mailbox_list(actor=me)  # admins only, before the organization is looked up
    try:
        organization = organization_get(actor=me, code=payload.organization)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None
    values = payload.model_dump(exclude={"organization"})
    box = mailboxes.mailbox_create(actor=me, organization=organization, **values)
    box = mail_queries.mailbox_get(actor=me, mailbox_id=box.pk)
    return json_response(201, MailboxOut.model_validate(mailbox_out(box)).model_dump())


@router.patch(
    "/mailboxes/{mailbox_id}",
    response={200: MailboxOut, **ERRORS},
    summary="Change a mailbox (admins); only the given fields change, the password only "
    "when given; is_active=false stops polling",
)
def update_mailbox(
    request: HttpRequest, mailbox_id: MailboxId, payload: MailboxPatch
) -> dict[str, Any]:
    me = actor(request)
    box = mail_queries.mailbox_get(actor=me, mailbox_id=mailbox_id)
    changes = patch_changes(payload)
    mailboxes.mailbox_update(actor=me, mailbox=box, **changes)
    return mailbox_out(mail_queries.mailbox_get(actor=me, mailbox_id=mailbox_id))


@router.post(
    "/mailboxes/{mailbox_id}/test",
    response={200: ConnectionTestOut, 502: Problem, **ERRORS},
    summary="Log in to the mailbox's server and open its folder (admins): 200 with what "
    "was found, or 502 with the reason (unreachable, refused credentials, untrusted "
    "certificate, no such folder)",
)
def test_mailbox(request: HttpRequest, mailbox_id: MailboxId) -> dict[str, Any]:
    me = actor(request)
    box = mail_queries.mailbox_get(actor=me, mailbox_id=mailbox_id)
    try:
        found = mailboxes.test_connection(actor=me, mailbox=box)
    except imap.MailError as exc:
        raise MailServerFailed(str(exc)) from None
    return {"ok": True, "detail": found}


@router.get(
    "/inbound-messages",
    response={200: InboundPage, **ERRORS},
    summary="Stored incoming messages, newest first (admins); ?status=quarantined for the "
    "quarantine",
)
def list_inbound(request: HttpRequest, params: Query[InboundListParams]) -> HttpResponse:
    reject_unknown_query(request, InboundListParams)
    before = None
    if params.cursor is not None:
        if not params.cursor.isdigit() or not 0 < int(params.cursor) < 2**62:
            raise ValidationFailed.for_field("cursor", "not a cursor from this list")
        before = int(params.cursor)
    page = mail_queries.inbound_page(
        actor=actor(request),
        status=params.status,
        mailbox_id=params.mailbox,
        before=before,
        limit=params.limit,
    )
    return json_response(
        200,
        {
            "items": [inbound_out(m) for m in page.items],
            "next_cursor": str(page.next_before) if page.next_before else None,
        },
    )


@router.get(
    "/inbound-messages/{message_id}",
    response={200: InboundOut, **ERRORS},
    summary="Read a stored incoming message's summary (admins)",
)
def get_inbound(request: HttpRequest, message_id: MessageId) -> dict[str, Any]:
    return inbound_out(mail_queries.inbound_get(actor=actor(request), message_id=message_id))


@router.get(
    "/inbound-messages/{message_id}/raw",
    response={200: None, **ERRORS},
    summary="Download a stored message as it arrived (message/rfc822, as an attachment; admins)",
    openapi_extra={
        "responses": {
            200: {  # ninja's own key is the int: a "200" beside it is a duplicate in the JSON
                "description": "The stored bytes",
                "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def raw_inbound(request: HttpRequest, message_id: MessageId) -> HttpResponse:
    message = mail_queries.inbound_get(actor=actor(request), message_id=message_id)
    return raw_response(message)


def raw_response(message: InboundMessage) -> HttpResponse:
    """The stored bytes as a download: never shown inline (it is a stranger's content),
    never sniffed as something else, never cached."""
    response = HttpResponse(bytes(message.raw), content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="message-{message.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@router.post(
    "/inbound-messages/{message_id}/retry",
    response={200: InboundOut, 409: Problem, **ERRORS},
    summary="Process a quarantined message again (admins), after its cause was fixed; "
    "answers the message as it is now (processed, or quarantined with the new reason)",
)
def retry_inbound(request: HttpRequest, message_id: MessageId) -> dict[str, Any]:
    me = actor(request)
    message = mail_queries.inbound_get(actor=me, message_id=message_id)
    if message.status != InboundStatus.QUARANTINED:
        raise Conflict.for_field(
            "status", f"only a quarantined message is retried; it is {message.status}"
        )
    try:
        inbound.retry(actor=me, message_id=message.pk)
    except NotFound:  # another admin retried it meanwhile
        raise Conflict.for_field("status", "no longer quarantined") from None
    return inbound_out(mail_queries.inbound_get(actor=me, message_id=message.pk))
