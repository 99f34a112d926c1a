"""Automation: client organizations' directories (admins), the runbooks, and their runs
(staff), with approvals.

A directory's password is write-only. A run is asked for with an ``Idempotency-Key``
(required): the same key again answers with the same run and acts no second time. A
generated password is in the answer that created the run, once, and nowhere else: a
repeated request answers without it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import Field, StrictBool, StrictInt, StringConstraints

from tierdesk.api.common import actor, json_response, patch_changes, reject_unknown_query
from tierdesk.api.schemas import ERRORS, CleanInput, Problem, StrictInput
from tierdesk.automation import ldap, queries, runbooks, services
from tierdesk.automation.models import ActionRun, Directory
from tierdesk.core.errors import DomainError, NotFound, ValidationFailed
from tierdesk.core.services import organization_get
from tierdesk.tickets.queries import ticket_get

router = Router(tags=["automation"])

ObjectId = Annotated[int, Field(ge=1, le=2**62)]
Dn = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Attribute = Annotated[str, StringConstraints(min_length=1, max_length=64)]
OrgCode = Annotated[str, StringConstraints(min_length=1, max_length=10)]
Kind = Literal["openldap", "active_directory"]
Security = Literal["ldaps", "starttls"]

IDEMPOTENCY_REQUIRED = {
    "parameters": [
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": True,
            "schema": {"type": "string", "maxLength": 80},
            "description": "Required: the same key again answers with the same run instead "
            "of acting twice.",
        }
    ]
}


class DirectoryFailed(DomainError):
    """The directory could not be reached or refused the service account."""

    status = 502
    slug = "directory-failed"
    title = "The directory connection failed"


class DirectoryIn(StrictInput):
    organization: OrgCode = Field(description="The client organization's code (one each).")
    kind: Kind
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    port: Annotated[StrictInt, Field(ge=1, le=65535)] = Field(
        description="636 for ldaps, 389 for starttls, as a rule."
    )
    security: Security
    ca_certificate: Annotated[str, StringConstraints(max_length=50_000)] = ""
    bind_dn: Dn
    password: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="The service account's; write-only, never returned."
    )
    base_dn: Dn
    login_attribute: Attribute | None = Field(
        None, description="Default: uid (OpenLDAP), sAMAccountName (Active Directory)."
    )
    email_attribute: Attribute = "mail"
    allowed_ous: list[Dn] = Field(description="Actions only touch entries below these.")
    protected_groups: list[Dn] = Field(
        default_factory=list, description="Members (also through nested groups) are never touched."
    )
    allowed_groups: list[Dn] = Field(
        default_factory=list, description="The groups whose membership actions may change."
    )
    new_accounts_ou: Dn | Literal[""] = ""
    min_password_length: Annotated[StrictInt, Field(ge=8, le=64)] = 12
    is_active: StrictBool = True


class DirectoryPatch(StrictInput):
    kind: Kind | None = None
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    port: Annotated[StrictInt, Field(ge=1, le=65535)] | None = None
    security: Security | None = None
    ca_certificate: Annotated[str, StringConstraints(max_length=50_000)] | None = None
    bind_dn: Dn | None = None
    password: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    base_dn: Dn | None = None
    login_attribute: Attribute | None = None
    email_attribute: Attribute | None = None
    allowed_ous: list[Dn] | None = None
    protected_groups: list[Dn] | None = None
    allowed_groups: list[Dn] | None = None
    new_accounts_ou: Dn | Literal[""] | None = None
    min_password_length: Annotated[StrictInt, Field(ge=8, le=64)] | None = None
    is_active: StrictBool | None = None


class DirectoryOut(Schema):
    id: int
    organization: str
    kind: str
    host: str
    port: int
    security: str
    ca_certificate: str
    bind_dn: str
    base_dn: str
    login_attribute: str
    email_attribute: str
    allowed_ous: list[str]
    protected_groups: list[str]
    allowed_groups: list[str]
    new_accounts_ou: str
    min_password_length: int
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class DirectoryTestOut(Schema):
    ok: bool
    found: list[str]


class ParameterOut(Schema):
    name: str
    type: str
    required: bool
    default: Any = None
    help: str


class RunbookOut(Schema):
    name: str
    title: str
    description: str
    roles: list[str]
    self_service: bool
    needs_approval: bool
    creates_account: bool
    parameters: list[ParameterOut]
    steps: list[str]


class RunIn(StrictInput):
    organization: OrgCode
    runbook: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    account: Annotated[str, StringConstraints(max_length=254)] = Field(
        "",
        description="The account's login or email address; with a ticket, empty means "
        "the ticket's requester. For a runbook that creates an account: its new login.",
    )
    ticket: Annotated[str, StringConstraints(max_length=30)] | None = Field(
        None, description="The ticket this is done for (its key): the run is noted there."
    )
    parameters: dict[str, str | bool] = Field(default_factory=dict)


class StepOut(Schema):
    position: int
    name: str
    status: str
    detail: str
    started_at: dt.datetime
    finished_at: dt.datetime | None


class RunOut(Schema):
    id: int
    organization: str
    runbook: str
    title: str
    channel: str
    requested_by: str
    ticket: str | None
    account: str
    account_dn: str
    parameters: dict[str, Any]
    status: str
    outcome: str
    remains: str = Field(description="What a failure left that could not be taken back.")
    decided_by: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    steps: list[StepOut]
    password: str | None = Field(
        None,
        description="A generated password, in the answer that created the run only: "
        "show it once, store it nowhere.",
    )


class RunListParams(CleanInput):
    status: (
        Literal["awaiting_approval", "running", "succeeded", "failed", "rejected", "expired"] | None
    ) = None
    organization: OrgCode | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


def directory_out(d: Directory) -> dict[str, Any]:
    return {
        "id": d.pk, "organization": d.organization.code, "kind": d.kind, "host": d.host,
        "port": d.port, "security": d.security, "ca_certificate": d.ca_certificate,
        "bind_dn": d.bind_dn, "base_dn": d.base_dn, "login_attribute": d.login_attribute,
        "email_attribute": d.email_attribute, "allowed_ous": d.allowed_ous,
        "protected_groups": d.protected_groups, "allowed_groups": d.allowed_groups,
        "new_accounts_ou": d.new_accounts_ou, "min_password_length": d.min_password_length,
        "is_active": d.is_active, "created_at": d.created_at, "updated_at": d.updated_at,
    }  # fmt: skip


def run_out(run: ActionRun, password: str | None = None) -> dict[str, Any]:
    return {
        "id": run.pk, "organization": run.organization.code, "runbook": run.runbook,
        "title": run.title, "channel": run.channel, "requested_by": run.requested_by.email,
        "ticket": run.ticket.key if run.ticket else None, "account": run.account,
        "account_dn": run.account_dn, "parameters": run.parameters, "status": run.status,
        "outcome": run.outcome, "remains": run.remains,
        "decided_by": run.decided_by.email if run.decided_by else None,
        "created_at": run.created_at, "finished_at": run.finished_at,
        "steps": [
            {
                "position": s.position, "name": s.name, "status": s.status, "detail": s.detail,
                "started_at": s.started_at, "finished_at": s.finished_at,
            }
            for s in run.steps.all()
        ],
        "password": password,
    }  # fmt: skip


def runbook_out(book: runbooks.Runbook) -> dict[str, Any]:
    return {
        "name": book.name, "title": book.title, "description": book.description,
        "roles": sorted(book.roles), "self_service": book.self_service,
        "needs_approval": book.needs_approval, "creates_account": book.creates_account,
        "parameters": [
            {"name": p.name, "type": p.type, "required": p.required, "default": p.default,
             "help": p.help}
            for p in book.parameters
        ],
        "steps": [s.name for s in book.steps],
    }  # fmt: skip


@router.get(
    "/directories",
    response={200: list[DirectoryOut], **ERRORS},
    summary="List directories (admins)",
)
def list_directories(request: HttpRequest) -> list[dict[str, Any]]:
    return [directory_out(d) for d in queries.directory_list(actor=actor(request))[:1000]]


@router.get(
    "/directories/{directory_id}",
    response={200: DirectoryOut, **ERRORS},
    summary="Read a directory (admins; never its password)",
)
def get_directory(request: HttpRequest, directory_id: ObjectId) -> dict[str, Any]:
    return directory_out(queries.directory_get(actor=actor(request), directory_id=directory_id))


@router.post(
    "/directories",
    response={201: DirectoryOut, **ERRORS},
    summary="Connect a client organization's directory (admins; one per organization)",
)
def create_directory(request: HttpRequest, payload: DirectoryIn) -> HttpResponse:
    me = actor(request)
    queries.directory_list(actor=me)  # admins only, before the organization is looked up
    try:
        organization = organization_get(actor=me, code=payload.organization)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None
    values = payload.model_dump(exclude={"organization"})
    if values["login_attribute"] is None:
        del values["login_attribute"]
    d = services.directory_create(actor=me, organization=organization, **values)
    return json_response(201, DirectoryOut.model_validate(directory_out(d)).model_dump())


@router.patch(
    "/directories/{directory_id}",
    response={200: DirectoryOut, **ERRORS},
    summary="Change a directory (admins); only the given fields, the password only when given",
)
def update_directory(
    request: HttpRequest, directory_id: ObjectId, payload: DirectoryPatch
) -> dict[str, Any]:
    me = actor(request)
    d = queries.directory_get(actor=me, directory_id=directory_id)
    changes = patch_changes(payload)
    services.directory_update(actor=me, directory=d, **changes)
    return directory_out(queries.directory_get(actor=me, directory_id=directory_id))


@router.delete(
    "/directories/{directory_id}",
    response={204: None, **ERRORS},
    summary="Disconnect a directory (admins); the runs' records stay",
)
def delete_directory(request: HttpRequest, directory_id: ObjectId) -> HttpResponse:
    me = actor(request)
    services.directory_delete(
        actor=me, directory=queries.directory_get(actor=me, directory_id=directory_id)
    )
    return HttpResponse(status=204)


@router.post(
    "/directories/{directory_id}/test",
    response={200: DirectoryTestOut, 502: Problem, **ERRORS},
    summary="Connect, bind and look for the base DN, OUs and groups (admins): 200 with what "
    "was found, or 502 with what is wrong (unreachable, certificate not trusted, bad "
    "credentials, base DN missing)",
)
def test_directory(request: HttpRequest, directory_id: ObjectId) -> dict[str, Any]:
    me = actor(request)
    d = queries.directory_get(actor=me, directory_id=directory_id)
    try:
        found = services.test_connection(actor=me, directory=d)
    except ldap.DirectoryError as exc:
        raise DirectoryFailed(f"{exc.kind}: {exc}") from None
    return {"ok": True, "found": found}


@router.get("/runbooks", response={200: list[RunbookOut], **ERRORS}, summary="The runbooks (staff)")
def list_runbooks(request: HttpRequest) -> list[dict[str, Any]]:
    queries.run_list(actor=actor(request))  # staff only
    return [runbook_out(b) for b in runbooks.catalogue().values()]


@router.post(
    "/automation-runs",
    response={200: RunOut, 201: RunOut, **ERRORS},
    summary="Run a runbook for an account (staff): 201 with the run (its password, when "
    "generated, this once), or 200 with the run this Idempotency-Key made before",
    openapi_extra=IDEMPOTENCY_REQUIRED,
)
def create_run(request: HttpRequest, payload: RunIn) -> HttpResponse:
    me = actor(request)
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 80 or not key.isprintable():
        raise ValidationFailed.for_field(
            "Idempotency-Key", "required: 1 to 80 printable characters"
        )
    try:
        organization = organization_get(actor=me, code=payload.organization)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None
    ticket = None
    if payload.ticket is not None:
        try:
            ticket = ticket_get(actor=me, ref=payload.ticket)
        except NotFound:
            raise ValidationFailed.for_field("ticket", "no such ticket") from None
    done = services.run_action(
        actor=me,
        organization=organization,
        runbook=payload.runbook,
        account=payload.account.strip(),
        parameters=payload.parameters,
        channel="ticket" if ticket is not None else "api",
        idempotency_key=f"api:{me.pk}:{key}",
        ticket=ticket,
    )
    run = queries.run_get(actor=me, run_id=done.run.pk)
    body = RunOut.model_validate(run_out(run, done.secret)).model_dump()
    response = json_response(200 if done.repeated else 201, body)
    response["Cache-Control"] = "no-store"  # a password may be in it
    return response


@router.get(
    "/automation-runs", response={200: list[RunOut], **ERRORS}, summary="Runs, newest first (staff)"
)
def list_runs(request: HttpRequest, params: Query[RunListParams]) -> list[dict[str, Any]]:
    reject_unknown_query(request, RunListParams)
    me = actor(request)
    organization_id = None
    if params.organization is not None:
        try:
            organization_id = organization_get(actor=me, code=params.organization).pk
        except NotFound:
            raise ValidationFailed.for_field("organization", "no such organization") from None
    found = queries.run_list(actor=me, status=params.status, organization_id=organization_id)
    return [run_out(r) for r in found.prefetch_related("steps")[: params.limit]]


@router.get(
    "/automation-runs/{run_id}",
    response={200: RunOut, **ERRORS},
    summary="A run and its steps (staff)",
)
def get_run(request: HttpRequest, run_id: ObjectId) -> dict[str, Any]:
    return run_out(queries.run_get(actor=actor(request), run_id=run_id))


def _decide(request: HttpRequest, run_id: int, approve: bool) -> HttpResponse:
    me = actor(request)
    done = services.decide(actor=me, run=queries.run_get(actor=me, run_id=run_id), approve=approve)
    run = queries.run_get(actor=me, run_id=done.run.pk)
    response = json_response(200, RunOut.model_validate(run_out(run, done.secret)).model_dump())
    response["Cache-Control"] = "no-store"
    return response


@router.post(
    "/automation-runs/{run_id}/approve",
    response={200: RunOut, **ERRORS},
    summary="Approve a waiting run, which then runs (L2 agents, managers, admins; not the "
    "one who asked)",
)
def approve_run(request: HttpRequest, run_id: ObjectId) -> HttpResponse:
    return _decide(request, run_id, True)


@router.post(
    "/automation-runs/{run_id}/reject",
    response={200: RunOut, **ERRORS},
    summary="Refuse a waiting run: nothing is done",
)
def reject_run(request: HttpRequest, run_id: ObjectId) -> HttpResponse:
    return _decide(request, run_id, False)
