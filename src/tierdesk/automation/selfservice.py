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
from tierdesk.core.audit import AuditAction, record
from tierdesk.core.errors import DomainError, ValidationFailed
from tierdesk.core.events import emit
from tierdesk.core.models import Role, User

log = logging.getLogger(__name__)

CODE_MINUTES = 10
CODE_ATTEMPTS = 5
# Wrong codes per account in a day, over all its codes: then no more codes that day.
DAILY_WRONG_CODES = 10
# A chosen password is checked before the code is spent, the same for every address
# (a directory's own, longer minimum is checked again when the action runs).
CHOSEN_MIN_LENGTH = 12
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
    wrong_today = wrong_codes_today(user)
    if wrong_today >= DAILY_WRONG_CODES:
        _audit(user, AuditAction.SELF_SERVICE_BLOCKED, {"wrong_codes_today": wrong_today})
        return None
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
        _audit(user, AuditAction.SELF_SERVICE_CODE_SENT, {"action": runbook})
    _send(user, code, offered(runbook))
    return verification


def wrong_codes_today(user: User) -> int:
    """Wrong codes entered for ``user`` in the last 24 hours, over all their codes."""
    since = clock.now() - dt.timedelta(days=1)
    return sum(
        Verification.objects.filter(user=user, created_at__gt=since).values_list(
            "attempts", flat=True
        )
    )


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
            raise CodeRefused(wrong_code(verification.attempts))
        given = code.strip()
        blocks = False
        right = hmac.compare_digest(_digest(str(verification.pk), given), verification.code_hash)
        if right:
            verification.used_at = now
            verification.save(update_fields=["used_at"])
        else:  # counted, and committed: the refusal is raised after the transaction
            verification.attempts += 1
            verification.save(update_fields=["attempts"])
            # The person's row is the lock (after the code's, always in this order): of
            # wrong codes entered at once for two of their codes, exactly one is the tenth.
            list(User.objects.select_for_update().filter(pk=verification.user_id).values("pk"))
            blocks = wrong_codes_today(verification.user) == DAILY_WRONG_CODES
    if not right:
        user = verification.user
        with transaction.atomic():
            _audit(
                user,
                AuditAction.SELF_SERVICE_CODE_REFUSED,
                {"verification": verification.pk, "attempts": verification.attempts},
            )
            if blocks:  # this one blocked the account
                _audit(
                    user, AuditAction.SELF_SERVICE_BLOCKED, {"wrong_codes_today": DAILY_WRONG_CODES}
                )
                emit(
                    "security.self_service_blocked",
                    organization=user.organization,
                    aggregate_type="user",
                    aggregate_id=user.pk,
                    payload={"user_id": user.pk, "email": user.email,
                             "wrong_codes_today": DAILY_WRONG_CODES},
                )  # fmt: skip
        raise CodeRefused(wrong_code(verification.attempts))
    return verification


def wrong_code(attempts: int) -> str:
    """What a wrong code is answered, after ``attempts`` wrong ones: the same words for an
    address with an account and one without."""
    if attempts >= CODE_ATTEMPTS:
        return "That is not the code, and that was the last try: ask for a new one."
    return "That is not the code."


def _audit(user: User, action: AuditAction, changes: dict[str, object]) -> None:
    record(
        actor=user,
        action=action,
        target_type="user",
        target_id=user.pk,
        organization=user.organization,
        changes=changes,
    )


def password_problem(password: str) -> str:
    """Why a chosen password is refused before the code is spent (empty: it is not)."""
    return engine.password_problem(password, min_length=CHOSEN_MIN_LENGTH, account=None)


def complete(*, verification_id: int, code: str, password: str = "") -> services.RunResult:
    """Check the code, then run the action for the requester's own account and record it
    on a ticket resolved by automation. A chosen ``password`` is checked before the code
    is spent, so a refused password leaves the code usable."""
    if password and (problem := password_problem(password)):
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
    try:
        _record_on_ticket(user, done)
    except Exception:  # the action happened: its answer (a password) must still be shown
        log.exception("self-service run %s: no ticket recorded it", done.run.pk)
    return done


def _record_on_ticket(user: User, done: services.RunResult) -> None:
    """A ticket for what self-service did: resolved by automation when it worked, left
    open for L1 when it did not (the person still needs help)."""
    from tierdesk.tickets import services as tickets

    run = done.run
    assert user.organization is not None
    # The requester reads this ticket: the outcome in plain words; the directory's details
    # (names, groups, errors) stay on the run, for staff.
    worked = run.status == RunStatus.SUCCEEDED
    lines = [
        f"Self-service: {run.title}, for {user.email}.",
        "Done automatically." if worked else "It could not be done automatically: over to L1.",
        f"(Automation run {run.pk}.)",
    ]
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
                resolution_note=f"Done by self-service ({run.title.lower()}).",
            )
        type(run).objects.filter(pk=run.pk).update(ticket=ticket)
        run.ticket = ticket
