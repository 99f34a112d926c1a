"""Directories (configured by admins, one per client organization) and the runs of
runbooks against them: who may run what, for whom, through which channel, and the
approvals some runbooks wait for.

Every attempt is audited, allowed or refused. Passwords (the directory's own and any set
for a person) are never stored in clear, never in an audit entry, a log line or an event.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from tierdesk.automation import engine, ldap, runbooks
from tierdesk.automation.models import (
    ActionRun,
    Channel,
    Directory,
    DirectoryKind,
    DirectorySecurity,
    RunStatus,
)
from tierdesk.core import clock, crypto, parse, policy
from tierdesk.core.audit import AuditAction, record
from tierdesk.core.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tierdesk.core.events import emit
from tierdesk.core.models import Organization, Role, User

log = logging.getLogger(__name__)

EDITABLE = (
    "kind", "host", "port", "security", "ca_certificate", "bind_dn", "base_dn",
    "login_attribute", "email_attribute", "allowed_ous", "protected_groups",
    "allowed_groups", "new_accounts_ou", "min_password_length", "is_active",
)  # fmt: skip
DN_LISTS = ("allowed_ous", "protected_groups", "allowed_groups")
ATTRIBUTE = r"[A-Za-z][A-Za-z0-9-]{0,63}"
SECRET_TYPES = ("password",)
SWEEP_BATCH = 200  # runs closed per sweep and tick


def _require(actor: User | None) -> None:
    if actor is not None:
        policy.require(actor, "directory.manage", "Only admins manage directories.")


def _dn(value: Any, name: str) -> str:
    text = str(value or "").strip()
    if not text or len(text) > 500 or any(not c.isprintable() for c in text):
        raise ValidationFailed.for_field(name, "a distinguished name, 1 to 500 characters")
    try:
        ldap.normalize_dn(text)
    except ValueError:
        raise ValidationFailed.for_field(name, f"{text!r} is not a distinguished name") from None
    return text


def _clean(values: dict[str, Any], d: Directory) -> None:
    kind = values.get("kind", d.kind)
    if kind not in DirectoryKind.values:
        raise ValidationFailed.for_field("kind", f"one of {', '.join(DirectoryKind.values)}")
    d.kind = kind
    d.host = parse.host(values.get("host", d.host))
    d.port = parse.port(values.get("port", d.port))
    security = values.get("security", d.security)
    if security not in DirectorySecurity.values:
        raise ValidationFailed.for_field(
            "security", f"one of {', '.join(DirectorySecurity.values)} (TLS is required)"
        )
    d.security = security
    d.ca_certificate = parse.ca_certificate(values.get("ca_certificate", d.ca_certificate))
    d.bind_dn = _dn(values.get("bind_dn", d.bind_dn), "bind_dn")
    d.base_dn = _dn(values.get("base_dn", d.base_dn), "base_dn")
    default_login = "sAMAccountName" if d.kind == DirectoryKind.ACTIVE_DIRECTORY else "uid"
    for name, default in (("login_attribute", default_login), ("email_attribute", "mail")):
        value = str(values.get(name, getattr(d, name)) or default).strip()
        if not re.fullmatch(ATTRIBUTE, value):
            raise ValidationFailed.for_field(name, "an attribute name (letters, digits, -)")
        setattr(d, name, value)
    for name in DN_LISTS:
        raw = values.get(name, getattr(d, name))
        if not isinstance(raw, list) or len(raw) > 50:
            raise ValidationFailed.for_field(name, "a list of at most 50 distinguished names")
        cleaned = [_dn(v, name) for v in raw]
        # groups may lie elsewhere in the domain (CN=Users, CN=Builtin), OUs not
        container = d.base_dn if name == "allowed_ous" else ldap.suffix(d.base_dn)
        outside = [v for v in cleaned if not ldap.within(v, container)]
        if outside:
            where = "the base DN" if name == "allowed_ous" else f"the domain {container}"
            raise ValidationFailed.for_field(name, f"{outside[0]} is not below {where}")
        setattr(d, name, cleaned)
    if not d.allowed_ous:
        raise ValidationFailed.for_field("allowed_ous", "at least one OU where actions are allowed")
    both = {ldap.normalize_dn(g) for g in d.allowed_groups} & {
        ldap.normalize_dn(g) for g in d.protected_groups
    }
    if both:
        raise ValidationFailed.for_field(
            "allowed_groups", "a protected group cannot also be an allowed one"
        )
    new_ou = str(values.get("new_accounts_ou", d.new_accounts_ou) or "").strip()
    if new_ou:
        new_ou = _dn(new_ou, "new_accounts_ou")
        if not any(ldap.within(new_ou, ou) for ou in d.allowed_ous):
            raise ValidationFailed.for_field("new_accounts_ou", "one of the allowed OUs (or below)")
    d.new_accounts_ou = new_ou
    length = values.get("min_password_length", d.min_password_length)
    if not isinstance(length, int) or isinstance(length, bool) or not 8 <= length <= 64:
        raise ValidationFailed.for_field("min_password_length", "a number from 8 to 64")
    d.min_password_length = length
    if "password" in values:
        password = str(values["password"] or "")
        if not password or len(password) > 500:
            raise ValidationFailed.for_field("password", "1 to 500 characters")
        d.password_sealed = crypto.seal(password)
    if not d.password_sealed:
        raise ValidationFailed.for_field("password", "required")
    active = values.get("is_active", d.is_active)
    if not isinstance(active, bool):
        raise ValidationFailed.for_field("is_active", "true or false")
    d.is_active = active


def _audit(actor: User | None, d: Directory, action: AuditAction, changes: dict[str, Any]) -> None:
    record(
        actor=actor,
        action=action,
        target_type="directory",
        target_id=d.pk,
        organization=d.organization,
        changes=changes,
    )


@transaction.atomic
def directory_create(*, actor: User | None, organization: Organization, **values: Any) -> Directory:
    """The directory of ``organization`` (one each)."""
    _require(actor)
    if Directory.objects.filter(organization=organization).exists():
        raise Conflict.for_field("organization", "this organization has a directory already")
    now = clock.now()
    d = Directory(organization=organization, created_at=now, updated_at=now)
    _clean(values, d)
    d.save()
    shown = {f: getattr(d, f) for f in EDITABLE if f != "ca_certificate"}
    _audit(actor, d, AuditAction.DIRECTORY_CREATED, shown | {"password": "(set)"})
    return d


@transaction.atomic
def directory_update(*, actor: User | None, directory: Directory, **values: Any) -> Directory:
    """Change what ``values`` names (the password only when one is given); only what
    really changes is written and audited, each as old and new."""
    _require(actor)
    before = {f: getattr(directory, f) for f in EDITABLE}
    draft = copy.copy(directory)
    _clean(values, draft)
    changed = [f for f in EDITABLE if getattr(draft, f) != before[f]]
    if not changed and "password" not in values:
        return directory
    for name in (*EDITABLE, "password_sealed"):
        setattr(directory, name, getattr(draft, name))
    directory.updated_at = clock.now()
    directory.save()
    changes: dict[str, Any] = {
        f: {"old": before[f], "new": getattr(directory, f)}
        for f in changed
        if f != "ca_certificate"
    }
    if "ca_certificate" in changed:
        changes["ca_certificate"] = "(changed)"
    if "password" in values:
        changes["password"] = "(changed)"  # never the password itself
    _audit(actor, directory, AuditAction.DIRECTORY_UPDATED, changes)
    return directory


@transaction.atomic
def directory_delete(*, actor: User | None, directory: Directory) -> None:
    _require(actor)
    _audit(actor, directory, AuditAction.DIRECTORY_DELETED, {"host": directory.host})
    directory.delete()


def test_connection(*, actor: User | None, directory: Directory) -> list[str]:
    """Connect, bind as the service account, and look for the base DN, the allowed OUs
    and the groups: what was found, line by line. ``ldap.DirectoryError`` (its ``kind``
    and message) says what is wrong: unreachable, certificate, credentials, base_dn."""
    _require(actor)
    try:
        settings = engine.settings_for(directory)
    except crypto.Unreadable as exc:
        raise ldap.DirectoryError("credentials", str(exc)) from None
    found = []
    with ldap.Connection(settings) as connection:
        found.append(
            f"connected to {directory.host}:{directory.port} and bound as {directory.bind_dn}"
        )
        if not connection.entry_exists(directory.base_dn):
            raise ldap.DirectoryError("base_dn", f"the base DN {directory.base_dn} does not exist")
        found.append(f"base DN {directory.base_dn} found")
        for name in DN_LISTS:
            missing = [dn for dn in getattr(directory, name) if not connection.entry_exists(dn)]
            label = name.replace("_", " ")
            if missing:
                found.append(f"{label}: not found: {'; '.join(missing)}")
            elif getattr(directory, name):
                found.append(f"{label}: all {len(getattr(directory, name))} found")
    record(
        actor=actor,
        action=AuditAction.DIRECTORY_TESTED,
        target_type="directory",
        target_id=directory.pk,
        organization=directory.organization,
        changes={"result": "ok"},
    )
    return found


def resolve_group(directory: Directory, group: str) -> str:
    """``group`` (a DN, or the value of a group's first name part, such as its cn) as one
    of ``directory``'s allowed groups; ``ldap.DirectoryError`` (refused) otherwise."""
    wanted = group.strip()
    for dn in directory.allowed_groups:
        parts = ldap.normalize_dn(dn)
        try:
            same = ldap.normalize_dn(wanted) == parts
        except ValueError:
            same = False
        if same or any(value == wanted.lower() for _attr, value in parts[0]):
            return str(dn)
    raise ldap.DirectoryError("refused", f"{wanted!r} is not one of the groups actions may change")


# --- runs ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    run: ActionRun
    # A generated password, for the one display that follows; None on a repeated request.
    secret: str | None = field(default=None, repr=False)
    repeated: bool = False


def _refuse(
    actor: User,
    organization: Organization | None,
    runbook: str,
    account: str,
    why: str,
    channel: str,
) -> None:
    record(
        actor=actor,
        action=AuditAction.AUTOMATION_REFUSED,
        target_type="runbook",
        target_id=runbook[:64] or "?",
        organization=organization,
        changes={"account": account[:254], "channel": channel, "reason": why},
    )  # fmt: skip


def _parameters(book: runbooks.Runbook, given: dict[str, Any]) -> dict[str, Any]:
    unknown = set(given) - {p.name for p in book.parameters}
    if unknown:
        raise ValidationFailed.for_field(sorted(unknown)[0], f"not a parameter of {book.name}")
    values: dict[str, Any] = {}
    for p in book.parameters:
        raw = given.get(p.name)
        if raw is None or raw == "":
            if p.required:
                raise ValidationFailed.for_field(p.name, "required")
            values[p.name] = p.default
            continue
        if p.type == "boolean":
            if not isinstance(raw, bool):
                raise ValidationFailed.for_field(p.name, "true or false")
            values[p.name] = raw
            continue
        if not isinstance(raw, str):
            raise ValidationFailed.for_field(p.name, "text")
        limit = 128 if p.type == "password" else 200
        if len(raw) > limit or any(not c.isprintable() for c in raw):
            raise ValidationFailed.for_field(p.name, f"at most {limit} printable characters")
        if p.type == "email":
            try:
                validate_email(raw)
            except DjangoValidationError:
                raise ValidationFailed.for_field(p.name, "not a valid email address") from None
        values[p.name] = raw if p.type == "password" else raw.strip()
    return values


def _stored(book: runbooks.Runbook, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters as kept on the run: a password only as whether one was chosen."""
    return {
        name: ("(chosen)" if value else "(generated)")
        if (p := book.parameter(name)) and p.type in SECRET_TYPES
        else value
        for name, value in values.items()
    }


def directory_of(organization: Organization) -> Directory:
    found = Directory.objects.filter(organization=organization, is_active=True).first()
    if found is None:
        raise ValidationFailed.for_field(
            "organization", f"{organization.code} has no active directory configured"
        )
    return found


def may_approve(actor: User) -> bool:
    """An L2 (or higher) agent, a manager or an admin."""
    if actor.role in (Role.MANAGER, Role.ADMIN):
        return True
    tier = getattr(actor, "agent_profile", None)
    level = getattr(getattr(tier, "tier", None), "level", 0) if tier else 0
    return actor.role == Role.AGENT and level >= 2


def run_action(
    *,
    actor: User,
    organization: Organization,
    runbook: str,
    account: str,
    parameters: dict[str, Any],
    channel: str,
    idempotency_key: str,
    ticket: Any = None,
    verified: bool = False,
) -> RunResult:
    """Run ``runbook`` for ``account`` (a login or an email address) in
    ``organization``'s directory, or find the run this ``idempotency_key`` made before.

    ``channel`` says who asks: ``self_service`` (a requester for their own account, once
    ``verified`` by a one-time code; ``account`` must be their own address), ``ticket``
    (staff, for the ticket's requester) or ``api`` (staff). A runbook that needs an
    approval waits for one (``approve``), unless it is self-service."""
    book = runbooks.get(runbook)
    if not account.strip() and ticket is not None and ticket.requester is not None:
        account = ticket.requester.email  # a ticket's action is for its requester
    if not account.strip():
        raise ValidationFailed.for_field("account", "required (a login or an email address)")
    key = str(idempotency_key or "").strip()
    if not key or len(key) > 100 or any(not c.isprintable() for c in key):
        raise ValidationFailed.for_field("idempotency_key", "1 to 100 printable characters")
    why = _why_not(actor, organization, book, account, channel, ticket, verified)
    if why is not None:
        status, message = why
        _refuse(actor, organization, runbook, account, message, channel)
        error: DomainError = PermissionDenied(message) if status == 403 else NotFound(message)
        if status == 422:
            error = ValidationFailed.for_field("runbook", message)
        raise error
    assert book is not None
    existing = ActionRun.objects.filter(organization=organization, idempotency_key=key).first()
    if existing is not None:
        return _repeat(existing, actor, book, account)
    try:
        values = _parameters(book, parameters)
    except ValidationFailed as exc:
        _refuse(actor, organization, runbook, account, exc.detail, channel)
        raise
    try:
        directory = directory_of(organization)
    except ValidationFailed as exc:
        _refuse(actor, organization, runbook, account, exc.detail, channel)
        raise
    if channel != Channel.SELF_SERVICE and not may_approve(actor):
        # L1 hands out generated passwords that must be changed: no agent keeps one
        if any(values.get(p.name) for p in book.parameters if p.type == "password"):
            why_not = "a chosen password is for L2, managers and admins; L1 gives a generated one"
            _refuse(actor, organization, runbook, account, why_not, channel)
            raise PermissionDenied(f"password: {why_not}")
        if "must_change" in values:
            values["must_change"] = True
    chosen = next(
        (values[p.name] for p in book.parameters if p.type == "password" and values.get(p.name)),
        None,
    )
    if chosen:
        problem = engine.password_problem(
            chosen, min_length=directory.min_password_length, account=None
        )
        if problem:
            _refuse(actor, organization, runbook, account, f"password: {problem}", channel)
            raise ValidationFailed.for_field(
                next(p.name for p in book.parameters if p.type == "password"), problem
            )
    # Who may approve needs nobody else's approval: the run is theirs, and recorded so.
    approver = may_approve(actor)
    waits = book.needs_approval and channel != Channel.SELF_SERVICE and not approver
    now = clock.now()
    try:
        with transaction.atomic():
            run = ActionRun.objects.create(
                organization=organization,
                runbook=book.name,
                title=book.title,
                channel=channel,
                requested_by=actor,
                ticket=ticket,
                account=account,
                parameters=_stored(book, values),
                idempotency_key=key,
                status=RunStatus.AWAITING_APPROVAL if waits else RunStatus.RUNNING,
                created_at=now,
                started_at=None if waits else now,
                decided_by=actor if book.needs_approval and not waits else None,
                decided_at=now if book.needs_approval and not waits else None,
            )
            record(
                actor=actor,
                action=AuditAction.AUTOMATION_REQUESTED,
                target_type="action_run",
                target_id=run.pk,
                organization=organization,
                changes={
                    "runbook": book.name, "account": account, "channel": channel,
                    "parameters": run.parameters, "waits_for_approval": waits,
                },
            )  # fmt: skip
            if waits:
                emit(
                    "automation.approval_needed",
                    organization=organization,
                    aggregate_type="action_run",
                    aggregate_id=run.pk,
                    payload=_payload(run),
                )
    except IntegrityError:  # the same key, sent twice at once: the other one runs it
        existing = ActionRun.objects.get(organization=organization, idempotency_key=key)
        return _repeat(existing, actor, book, account)
    if waits:
        # A chosen password is not kept while the run waits: the approved run generates
        # one, shown once to the approver.
        _note(run, actor, f"{book.title} for {account}: waits for an approval (L2 or a manager).")
        return RunResult(run)
    return _execute(run, actor, book, directory, values)


def _why_not(
    actor: User,
    organization: Organization,
    book: runbooks.Runbook | None,
    account: str,
    channel: str,
    ticket: Any,
    verified: bool,
) -> tuple[int, str] | None:
    if book is None:
        return 404, "No such runbook."
    if channel == Channel.SELF_SERVICE:
        if actor.role != Role.REQUESTER or actor.organization_id != organization.pk:
            return 403, "Self-service is for a requester's own account."
        if not book.self_service:
            return 403, f"{book.name} is not offered as self-service."
        if not verified:
            return 403, "Self-service needs the one-time code first."
        if account.strip().lower() != actor.email.lower():
            return 403, "Self-service acts on the requester's own account only."
        return None
    if channel not in (Channel.TICKET, Channel.API):
        return 422, f"unknown channel {channel!r}"
    if not policy.can_see_organization(actor, organization.pk):
        return 404, "No such organization."
    if not actor.is_staff_member:
        return 403, "Runbooks are run by staff; requesters use self-service."
    if actor.role not in book.roles:
        return 403, f"{book.name} may be run by {', '.join(sorted(book.roles)) or 'nobody'}."
    if channel == Channel.TICKET and (ticket is None or ticket.organization_id != organization.pk):
        return 404, "No such ticket."
    if not may_approve(actor):
        # L1 acts for a ticket's requester, on that ticket: never on an account of its choice
        requester = getattr(ticket, "requester", None) if channel == Channel.TICKET else None
        if requester is None:
            return 403, "L1 runs runbooks from a ticket, for the ticket's requester."
        if account.strip().lower() != requester.email.lower():
            return 403, "L1 runs runbooks for the ticket's requester only."
    return None


def _repeat(run: ActionRun, actor: User, book: runbooks.Runbook, account: str) -> RunResult:
    if run.runbook != book.name or run.account != account:
        raise Conflict.for_field(
            "idempotency_key", "this key was used for another action: use a new key"
        )
    return RunResult(run, repeated=True)


def _payload(run: ActionRun) -> dict[str, Any]:
    return {
        "run_id": run.pk, "runbook": run.runbook, "status": run.status,
        "channel": run.channel, "ticket_id": run.ticket_id,
    }  # fmt: skip


def _find_by(directory: Directory, account: str) -> tuple[str, str]:
    if "@" in account:
        return directory.email_attribute, account
    return directory.login_attribute, account


def _execute(
    run: ActionRun,
    actor: User,
    book: runbooks.Runbook,
    directory: Directory,
    values: dict[str, Any],
) -> RunResult:
    find_by = None if book.creates_account else _find_by(directory, run.account)
    try:
        outcome = engine.execute(run, directory, book.steps, values, find_by)
    except Exception as exc:  # the engine's own records failed (the database): say so
        log.exception("run %s failed outside its steps", run.pk)
        outcome = engine.Outcome(
            False,
            f"the run failed unexpectedly ({type(exc).__name__})",
            "unknown: the run stopped without a record of every step; check the account",
        )
    run.status = RunStatus.SUCCEEDED if outcome.ok else RunStatus.FAILED
    run.outcome = outcome.summary[:500]
    run.remains = outcome.remains
    run.finished_at = clock.now()
    audited = AuditAction.AUTOMATION_REFUSED if outcome.refused else AuditAction.AUTOMATION_RUN
    with transaction.atomic():
        # The sweep closes a run it takes for cut short (close_interrupted); one that ends
        # after all records its real outcome, and says so in its audit entry.
        late = not ActionRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists()
        run.save(update_fields=["status", "outcome", "remains", "finished_at", "account_dn"])
        record(
            actor=actor,
            action=audited,
            target_type="action_run",
            target_id=run.pk,
            organization=run.organization,
            changes={
                "runbook": run.runbook, "account": run.account, "dn": run.account_dn,
                "status": run.status, "outcome": run.outcome, "remains": run.remains,
            } | ({"after_presumed_interrupted": True} if late else {}),
        )  # fmt: skip
        emit(
            "automation.succeeded" if run.status == RunStatus.SUCCEEDED else "automation.failed",
            organization=run.organization,
            aggregate_type="action_run",
            aggregate_id=run.pk,
            payload=_payload(run),
        )
        if outcome.protected:
            # someone asked tierdesk to change an account it never touches: an alert
            emit(
                "security.protected_account",
                organization=run.organization,
                aggregate_type="action_run",
                aggregate_id=run.pk,
                payload=_payload(run)
                | {
                    "account": run.account, "account_dn": run.account_dn,
                    "requested_by": actor.pk, "reason": run.outcome,
                },
            )  # fmt: skip
    words = "done" if run.status == RunStatus.SUCCEEDED else "failed"
    text = f"{run.title} for {run.account}: {words}. {run.outcome}"
    if run.remains:
        text += f"\nLeft in the directory: {run.remains}"
    _note(run, actor, text)
    return RunResult(run, secret=outcome.secret)


def _note(run: ActionRun, actor: User, text: str) -> None:
    """An internal note on the run's ticket (never with a password: outcomes hold none).
    A ticket that takes no more notes (closed meanwhile) keeps the run's record only."""
    if run.ticket is None or run.channel == Channel.SELF_SERVICE:
        return
    from tierdesk.tickets import services as tickets

    try:
        tickets.ticket_comment(
            actor=actor, ticket=run.ticket, body=f"Automation: {text}", internal=True
        )
    except DomainError:
        log.info("run %s: no note on ticket %s", run.pk, run.ticket_id)


def decide(*, actor: User, run: ActionRun, approve: bool) -> RunResult:
    """Approve (and so run) or refuse a run that waits for approval: by an L2 agent, a
    manager or an admin who can see the organization and did not ask for it."""
    if not actor.is_staff_member or not policy.can_see_organization(actor, run.organization_id):
        raise NotFound("No such run.")
    if not may_approve(actor):
        _refuse(
            actor,
            run.organization,
            run.runbook,
            run.account,
            "approval needs L2 or a manager",
            run.channel,
        )
        raise PermissionDenied("Approvals are for L2 agents, managers and admins.")
    if actor.pk == run.requested_by_id:
        _refuse(actor, run.organization, run.runbook, run.account, "own request", run.channel)
        raise PermissionDenied("Someone other than who asked approves it.")
    book = runbooks.get(run.runbook)
    with transaction.atomic():
        claimed = ActionRun.objects.filter(pk=run.pk, status=RunStatus.AWAITING_APPROVAL).update(
            status=RunStatus.RUNNING if approve else RunStatus.REJECTED,
            decided_by=actor,
            decided_at=clock.now(),
            started_at=clock.now() if approve else None,
            finished_at=None if approve else clock.now(),
        )
        if not claimed:
            raise Conflict.for_field("status", "this run is not waiting for an approval")
        record(
            actor=actor,
            action=AuditAction.AUTOMATION_APPROVED if approve else AuditAction.AUTOMATION_REJECTED,
            target_type="action_run",
            target_id=run.pk,
            organization=run.organization,
            changes={"runbook": run.runbook, "account": run.account},
        )
    run.refresh_from_db()
    if not approve:
        _note(run, actor, f"{run.title} for {run.account}: approval refused; nothing was done.")
        return RunResult(run)
    if book is None:
        run.status = RunStatus.FAILED
        run.outcome = "the runbook no longer exists"
        run.finished_at = clock.now()
        run.save(update_fields=["status", "outcome", "finished_at"])
        return RunResult(run)
    values = {
        name: (None if (p := book.parameter(name)) and p.type in SECRET_TYPES else value)
        for name, value in run.parameters.items()
    }
    try:
        directory = directory_of(run.organization)
    except ValidationFailed as exc:
        run.status = RunStatus.FAILED
        run.outcome = exc.detail[:500]
        run.finished_at = clock.now()
        run.save(update_fields=["status", "outcome", "finished_at"])
        return RunResult(run)
    return _execute(run, run.requested_by, book, directory, values)


# --- sweeps (the worker's, every minute) --------------------------------------------------


def expire_approvals() -> int:
    """Close the runs that have waited for an approval longer than
    ``AUTOMATION_APPROVAL_HOURS``: nothing is done, the ticket says so, and whoever still
    needs it asks again. How many expired."""
    from django.conf import settings

    cutoff = clock.now() - dt.timedelta(hours=settings.AUTOMATION_APPROVAL_HOURS)
    expired = 0
    waiting = ActionRun.objects.filter(
        status=RunStatus.AWAITING_APPROVAL, created_at__lt=cutoff
    ).select_related("organization", "requested_by", "ticket")
    for run in waiting.order_by("pk")[:SWEEP_BATCH]:
        with transaction.atomic():
            claimed = ActionRun.objects.filter(
                pk=run.pk, status=RunStatus.AWAITING_APPROVAL
            ).update(status=RunStatus.EXPIRED, finished_at=clock.now())
            if not claimed:  # decided meanwhile
                continue
            run.status = RunStatus.EXPIRED
            run.outcome = f"no approval within {settings.AUTOMATION_APPROVAL_HOURS} h"
            run.save(update_fields=["outcome"])
            record(
                actor=None,
                action=AuditAction.AUTOMATION_EXPIRED,
                target_type="action_run",
                target_id=run.pk,
                organization=run.organization,
                changes={"runbook": run.runbook, "account": run.account},
            )
            emit(
                "automation.approval_expired",
                organization=run.organization,
                aggregate_type="action_run",
                aggregate_id=run.pk,
                payload=_payload(run),
            )
        expired += 1
        _note(
            run,
            run.requested_by,
            f"{run.title} for {run.account}: nobody approved it within "
            f"{settings.AUTOMATION_APPROVAL_HOURS} hours, so nothing was done. Ask again if it "
            "is still needed.",
        )
    return expired


def close_interrupted() -> int:
    """Close the runs still ``running`` ``AUTOMATION_STALE_RUN_MINUTES`` after they started:
    their process ended mid-run (a run's directory calls time out within a minute or two).
    Each is marked failed with what its step records say may be left in the directory:
    every step done and not taken back, and the step that had started without an end.
    How many were closed."""
    from django.conf import settings

    from tierdesk.automation.models import StepStatus

    cutoff = clock.now() - dt.timedelta(minutes=settings.AUTOMATION_STALE_RUN_MINUTES)
    closed = 0
    stale = ActionRun.objects.filter(status=RunStatus.RUNNING, started_at__lt=cutoff)
    for run in stale.select_related("organization", "requested_by", "ticket").order_by("pk")[
        :SWEEP_BATCH
    ]:
        steps = list(run.steps.order_by("position"))
        # Undos run in reverse: each taken-back step is the latest done one of its name
        # that no earlier undo took back.
        done = [s for s in steps if s.status == StepStatus.DONE and s.name in engine.STEPS]
        for undo in (s for s in steps if s.status == StepStatus.UNDONE):
            name = undo.name.removeprefix("undo_")
            taken = next((s for s in reversed(done) if s.name == name), None)
            if taken is not None:
                done.remove(taken)
        lines = []
        for step in steps:
            if step.status == StepStatus.STARTED:
                lines.append(f"unknown whether step {step.name} changed anything")
            elif step in done:
                lines.append(f"{engine.STEPS[step.name].remains} ({step.detail})")
        with transaction.atomic():
            claimed = ActionRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                status=RunStatus.FAILED,
                outcome="the run stopped before it finished (its process ended)",
                remains="\n".join(lines),
                finished_at=clock.now(),
            )
            if not claimed:  # it finished meanwhile
                continue
            run.refresh_from_db()
            record(
                actor=None,
                action=AuditAction.AUTOMATION_INTERRUPTED,
                target_type="action_run",
                target_id=run.pk,
                organization=run.organization,
                changes={
                    "runbook": run.runbook, "account": run.account, "dn": run.account_dn,
                    "remains": run.remains,
                },
            )  # fmt: skip
            emit(
                "automation.failed",
                organization=run.organization,
                aggregate_type="action_run",
                aggregate_id=run.pk,
                payload=_payload(run),
            )
        closed += 1
        text = f"{run.title} for {run.account}: stopped before it finished."
        text += (
            f"\nLeft in the directory: {run.remains}" if run.remains else " Nothing was changed."
        )
        _note(run, run.requested_by, text)
    return closed
