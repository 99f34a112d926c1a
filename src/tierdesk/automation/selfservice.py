"""Self-service: a requester resets their own password or unlocks their own account from
the portal, after proving they read the mail of their address on file.

1. ``start``: for an active requester whose organization has an active directory, a
   six-digit code goes to their address (the same answer either way: the page never says
   whether an account exists). Earlier unused codes of theirs stop working.
2. ``complete``: the code is checked in constant time against its keyed hash; it is valid
   for ``CODE_MINUTES``, for ``CODE_ATTEMPTS`` tries, and once. Then the runbook runs for
   the requester's own account (``services.run_action``, channel ``self_service``), and a
   ticket records it: created by the requester and resolved by automation with the
   outcome (never the password).

Rate limits per account and per source address are the portal's (web.services), like
those of tierdesk's own password reset.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import threading

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction

from tierdesk.automation import engine, runbooks, services
from tierdesk.automation.models import Directory, RunStatus, Verification
from tierdesk.core import clock
from tierdesk.core.errors import DomainError, ValidationFailed
from tierdesk.core.models import Role, User

log = logging.getLogger(__name__)

CODE_MINUTES = 10
CODE_ATTEMPTS = 5
OFFERED = ("reset-password", "unlock-account")


class CodeRefused(DomainError):
    status = 422
    slug = "code-refused"
    title = "The code was not accepted"


def _digest(verification_key: str, code: str) -> str:
    key = hashlib.sha256(f"tierdesk.selfservice:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{verification_key}:{code}".encode(), hashlib.sha256).hexdigest()


def offered(runbook: str) -> runbooks.Runbook | None:
    book = runbooks.get(runbook)
    return book if book is not None and book.self_service and runbook in OFFERED else None


def start(*, email: str, runbook: str) -> Verification | None:
    """Send a code to ``email`` when it is an active requester's whose organization has
    an active directory; the verification, or None (the caller answers the same)."""
    if offered(runbook) is None:
        raise ValidationFailed.for_field("action", "not offered as self-service")
    user = (
        User.objects.filter(email__iexact=email.strip(), role=Role.REQUESTER, is_active=True)
        .select_related("organization")
        .first()
    )
    if user is None or user.organization_id is None:
        return None
    if not Directory.objects.filter(organization_id=user.organization_id, is_active=True).exists():
        return None
    now = clock.now()
    code = f"{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        Verification.objects.filter(user=user, used_at__isnull=True, expires_at__gt=now).update(
            expires_at=now
        )
        verification = Verification.objects.create(
            user=user,
            runbook=runbook,
            code_hash="",
            created_at=now,
            expires_at=now + dt.timedelta(minutes=CODE_MINUTES),
        )
        verification.code_hash = _digest(str(verification.pk), code)
        verification.save(update_fields=["code_hash"])
    _send(user, code, offered(runbook))
    return verification


def _send(user: User, code: str, book: runbooks.Runbook | None) -> None:
    """The code by mail, after the answer has gone: a reply that waits on SMTP only when
    an account exists would tell who has one."""
    title = book.title.lower() if book else "a self-service action"
    message = EmailMessage(
        subject=f"Your code: {code}",
        body=(
            f"Someone (we hope you) asked to {title} for {user.email}.\n\n"
            f"The code is {code}. It works once, for {CODE_MINUTES} minutes.\n\n"
            "If that was not you, ignore this mail: nothing changes without the code.\n"
        ),
        to=[user.email],
    )

    def send() -> None:
        try:
            message.send()
        except Exception:
            log.exception("could not send a self-service code to user %s", user.pk)

    threading.Thread(target=send, name="tierdesk-selfservice-code", daemon=True).start()


def _use(verification_id: int, code: str) -> Verification:
    """Check ``code``; the verification, marked used. ``CodeRefused`` says why not (and a
    wrong code counts as a try)."""
    now = clock.now()
    with transaction.atomic():
        verification = (
            Verification.objects.select_for_update(of=("self",))
            .select_related("user__organization")
            .filter(pk=verification_id)
            .first()
        )
        if verification is None or verification.used_at is not None:
            raise CodeRefused("This code was used already: ask for a new one.")
        if verification.expires_at <= now:
            raise CodeRefused("This code has expired: ask for a new one.")
        if verification.attempts >= CODE_ATTEMPTS:
            raise CodeRefused("Too many wrong codes: ask for a new one.")
        given = code.strip()
        right = hmac.compare_digest(_digest(str(verification.pk), given), verification.code_hash)
        if right:
            verification.used_at = now
            verification.save(update_fields=["used_at"])
        else:  # counted, and committed: the refusal is raised after the transaction
            verification.attempts += 1
            verification.save(update_fields=["attempts"])
    if not right:
        left = CODE_ATTEMPTS - verification.attempts
        raise CodeRefused(
            f"That is not the code. {left} more tries."
            if left
            else "That is not the code, and that was the last try: ask for a new one."
        )
    return verification


def complete(*, verification_id: int, code: str, password: str = "") -> services.RunResult:
    """Check the code, then run the action for the requester's own account and record it
    on a ticket resolved by automation. A chosen ``password`` is checked before the code
    is spent, so a refused password leaves the code usable."""
    pending = Verification.objects.select_related("user").filter(pk=verification_id).first()
    if pending is None:
        raise CodeRefused("Ask for a code first.")
    if password:
        directory = Directory.objects.filter(
            organization_id=pending.user.organization_id or 0
        ).first()
        problem = engine.password_problem(
            password, min_length=directory.min_password_length if directory else 12, account=None
        )
        if problem:
            raise ValidationFailed.for_field("password", problem)
    verification = _use(verification_id, code)
    user = verification.user
    assert user.organization is not None
    parameters: dict[str, object] = {}
    if password and verification.runbook == "reset-password":
        parameters["password"] = password
    done = services.run_action(
        actor=user,
        organization=user.organization,
        runbook=verification.runbook,
        account=user.email,
        parameters=parameters,
        channel="self_service",
        idempotency_key=f"self-service:{verification.pk}",
        verified=True,
    )
    _record_on_ticket(user, done)
    return done


def _record_on_ticket(user: User, done: services.RunResult) -> None:
    """A ticket for what self-service did: resolved by automation when it worked, left
    open for L1 when it did not (the person still needs help)."""
    from tierdesk.tickets import services as tickets

    run = done.run
    assert user.organization is not None
    lines = [f"Self-service: {run.title}, for {user.email}.", f"Outcome: {run.outcome}"]
    if run.remains:
        lines.append(f"Left in the directory: {run.remains}")
    with transaction.atomic():
        ticket = tickets.ticket_create(
            actor=user,
            organization=user.organization,
            subject=f"{run.title} (self-service)",
            description="\n".join(lines),
            source="portal",
            requester=user,
        )
        if run.status == RunStatus.SUCCEEDED:
            tickets.ticket_transition(
                actor=None,
                ticket=ticket,
                to_status="resolved",
                resolution_code="automated",
                resolution_note=f"Done by self-service: {run.outcome}",
            )
        type(run).objects.filter(pk=run.pk).update(ticket=ticket)
        run.ticket = ticket
