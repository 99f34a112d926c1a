"""The runbook engine: the steps a runbook may use, and the execution of a run against a
directory with a record of every step.

Before any step, whatever the runbook says, the engine finds the account (exactly one
entry, or the run stops), checks that it lies below one of the directory's allowed OUs and
that it is not a member of a protected group, directly or through nested groups. Each
step is recorded as it starts and as it ends, each record committed at once: a run cut
short by a crash shows the step it was in.

When a step fails, the steps done before it are taken back in reverse order where they
can be (a group membership, an enabled or disabled account, a created entry); what cannot
be taken back (a password that was set, a lock that was cleared) is said in the run's
``remains``, as is an undo that itself failed. A run is never started twice: the service
finds it by its idempotency key first.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tierdesk.automation import ldap
from tierdesk.automation.models import ActionRun, ActionStep, Directory, StepStatus
from tierdesk.core import clock, crypto

log = logging.getLogger(__name__)

UNCHANGED = "unchanged"  # a step's answer when the directory already was as wanted


class Refused(Exception):
    """A safety check stopped the run before anything was written. ``protected``: the
    account is one tierdesk never touches (a protected group's member, the service
    account, an account the directory itself protects), which is worth an alert."""

    def __init__(self, message: str, *, protected: bool = False) -> None:
        super().__init__(message)
        self.protected = protected


@dataclass
class Context:
    directory: Directory
    connection: ldap.Connection
    run: ActionRun
    values: dict[str, Any]  # the run's parameters, secrets included (never stored)
    account: ldap.Account | None = None
    secret: str | None = field(default=None, repr=False)  # a generated password, shown once


@dataclass(frozen=True)
class StepDefinition:
    name: str
    arguments: tuple[str, ...]
    apply: Callable[[Context, dict[str, Any]], str]
    undo: Callable[[Context, dict[str, Any]], str] | None
    # What stays in the directory when the step cannot be taken back.
    remains: str


def generate_password(length: int = 16) -> str:
    """A random password with lower and upper case letters, digits and punctuation, from
    the operating system's generator; no look-alike characters."""
    lower = "abcdefghijkmnpqrstuvwxyz"
    upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    digits = "23456789"
    symbols = "!#%+-=?@_"
    alphabet = lower + upper + digits + symbols
    while True:
        chosen = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in group for c in chosen) for group in (lower, upper, digits, symbols)):
            return chosen


def password_problem(password: str, *, min_length: int, account: ldap.Account | None) -> str:
    """Why ``password`` may not be chosen (empty: it may): the directory's length, three
    of the four kinds of character, and nothing of the person's name or login in it."""
    if len(password) < min_length:
        return f"at least {min_length} characters"
    if len(password) > 128:
        return "at most 128 characters"
    if any(not c.isprintable() for c in password):
        return "printable characters only"
    kinds = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if kinds < 3:
        return "three of: lower-case letters, capitals, digits, other characters"
    if account is not None:
        lowered = password.lower()
        parts = [account.login, *account.name.split(), account.email.partition("@")[0]]
        if any(len(p) >= 3 and p.lower() in lowered for p in parts):
            return "nothing of the account's name or login"
    return ""


def _value(ctx: Context, arguments: dict[str, Any], name: str, default: Any = None) -> Any:
    raw = arguments.get(name, default)
    if isinstance(raw, str) and raw.startswith("$"):
        return ctx.values.get(raw[1:], default)
    return raw


def _account(ctx: Context) -> ldap.Account:
    assert ctx.account is not None, "the account is found before any step"
    return ctx.account


def _group_dn(ctx: Context, group: str) -> str:
    """``group`` (a DN, or the name of one) as one of the directory's allowed groups."""
    from tierdesk.automation.services import resolve_group

    return resolve_group(ctx.directory, group)


def _set_password(ctx: Context, arguments: dict[str, Any]) -> str:
    account = _account(ctx)
    password = _value(ctx, arguments, "password") or None
    must_change = bool(_value(ctx, arguments, "must_change", True))
    if password is not None:
        problem = password_problem(
            password, min_length=ctx.directory.min_password_length, account=account
        )
        if problem:
            raise ldap.DirectoryError("refused", f"the chosen password: {problem}")
    if password is None:
        password = generate_password(max(16, ctx.directory.min_password_length))
        ctx.secret = password
    ctx.connection.set_password(account, password, must_change=must_change)
    chosen = "a generated password" if ctx.secret else "the chosen password"
    then = ", to be changed at the next sign-in" if must_change else ""
    return f"set {chosen}{then}"


def _unlock(ctx: Context, arguments: dict[str, Any]) -> str:
    account = _account(ctx)
    if not account.locked:
        return UNCHANGED
    ctx.connection.unlock(account)
    return "lockout cleared"


def _disable(ctx: Context, arguments: dict[str, Any]) -> str:
    account = _account(ctx)
    if account.disabled:
        return UNCHANGED
    ctx.connection.set_disabled(account, True)
    return "account disabled"


def _enable(ctx: Context, arguments: dict[str, Any]) -> str:
    account = _account(ctx)
    if not account.disabled:
        return UNCHANGED
    ctx.connection.set_disabled(account, False)
    return "account enabled"


def _add_to_group(ctx: Context, arguments: dict[str, Any]) -> str:
    group = _group_dn(ctx, str(_value(ctx, arguments, "group") or ""))
    # an allowed group inside a protected one would make its new member protected-level
    above = ctx.connection.protected_by(group, list(ctx.directory.protected_groups))
    if above:
        raise ldap.DirectoryError("refused", f"{group} is inside the protected group {above}")
    if not ctx.connection.set_membership(_account(ctx), group, True):
        return UNCHANGED
    return f"added to {group}"


def _remove_from_group(ctx: Context, arguments: dict[str, Any]) -> str:
    group = _group_dn(ctx, str(_value(ctx, arguments, "group") or ""))
    if not ctx.connection.set_membership(_account(ctx), group, False):
        return UNCHANGED
    return f"removed from {group}"


def _create_account(ctx: Context, arguments: dict[str, Any]) -> str:
    d = ctx.directory
    login = ctx.run.account
    given = str(_value(ctx, arguments, "given_name") or "")
    surname = str(_value(ctx, arguments, "surname") or "")
    email = str(_value(ctx, arguments, "email") or "")
    name = f"{given} {surname}".strip()
    if d.kind == ldap.ACTIVE_DIRECTORY:
        dn = ldap.child_dn("CN", name, d.new_accounts_ou)
        ctx.connection.add_entry(
            dn,
            ["top", "person", "organizationalPerson", "user"],
            {
                "cn": name, "givenName": given, "sn": surname, "displayName": name,
                d.login_attribute: login, d.email_attribute: email,
                "userPrincipalName": f"{login}@{_domain(d.base_dn)}",
                # created disabled; the password step that follows enables it
                "userAccountControl": str(ldap.AD_NORMAL_ACCOUNT | ldap.AD_ACCOUNTDISABLE),
            },
        )  # fmt: skip
    else:
        dn = ldap.child_dn(d.login_attribute, login, d.new_accounts_ou)
        ctx.connection.add_entry(
            dn,
            ["inetOrgPerson"],
            {
                "cn": name, "givenName": given, "sn": surname, "displayName": name,
                d.login_attribute: login, d.email_attribute: email,
            },
        )  # fmt: skip
    ctx.account = ctx.connection.reread(
        ldap.Account(dn, login, email, name, locked=False, disabled=False, must_change=False)
    )
    ctx.run.account_dn = dn
    ActionRun.objects.filter(pk=ctx.run.pk).update(account_dn=dn)
    return f"created {dn}"


def _domain(base_dn: str) -> str:
    parts = [v for rdn in ldap.normalize_dn(base_dn) for a, v in rdn if a == "dc"]
    return ".".join(parts) or "local"


def _undo_create(ctx: Context, arguments: dict[str, Any]) -> str:
    account = _account(ctx)
    ctx.connection.delete_entry(account.dn)
    return f"removed {account.dn} again"


def _undo_group(member: bool) -> Callable[[Context, dict[str, Any]], str]:
    def undo(ctx: Context, arguments: dict[str, Any]) -> str:
        group = _group_dn(ctx, str(_value(ctx, arguments, "group") or ""))
        ctx.connection.set_membership(_account(ctx), group, member)
        return f"{'added to' if member else 'removed from'} {group} again"

    return undo


def _undo_disabled(disabled: bool) -> Callable[[Context, dict[str, Any]], str]:
    def undo(ctx: Context, arguments: dict[str, Any]) -> str:
        ctx.connection.set_disabled(_account(ctx), disabled)
        return "disabled again" if disabled else "enabled again"

    return undo


def _after_create(ctx: Context) -> None:
    """A new Active Directory account is made disabled (it has no password yet): enabled
    once the password is set."""
    if ctx.directory.kind == ldap.ACTIVE_DIRECTORY and ctx.account and ctx.account.disabled:
        ctx.connection.set_disabled(ctx.account, False)


STEPS: dict[str, StepDefinition] = {
    s.name: s
    for s in (
        StepDefinition(
            "set_password", ("password", "must_change"), _set_password, None,
            "the password was changed",
        ),
        StepDefinition("unlock", (), _unlock, None, "the account was unlocked"),
        StepDefinition("disable", (), _disable, _undo_disabled(False), "the account is disabled"),
        StepDefinition("enable", (), _enable, _undo_disabled(True), "the account is enabled"),
        StepDefinition(
            "add_to_group", ("group",), _add_to_group, _undo_group(False),
            "the account was added to the group",
        ),
        StepDefinition(
            "remove_from_group", ("group",), _remove_from_group, _undo_group(True),
            "the account was removed from the group",
        ),
        StepDefinition(
            "create_account", ("given_name", "surname", "email"), _create_account,
            _undo_create, "the account was created",
        ),
    )
}  # fmt: skip


def _begin(run: ActionRun, position: int, name: str) -> ActionStep:
    return ActionStep.objects.create(
        run=run, position=position, name=name, status=StepStatus.STARTED, started_at=clock.now()
    )


def _end(step: ActionStep, status: str, detail: str) -> None:
    step.status = status
    step.detail = detail[:500]
    step.finished_at = clock.now()
    step.save(update_fields=["status", "detail", "finished_at"])


def settings_for(directory: Directory) -> ldap.Settings:
    return ldap.Settings(
        kind=directory.kind,
        host=directory.host,
        port=directory.port,
        security=directory.security,
        ca_certificate=directory.ca_certificate,
        bind_dn=directory.bind_dn,
        password=crypto.unseal(directory.password_sealed),
        base_dn=directory.base_dn,
        login_attribute=directory.login_attribute,
        email_attribute=directory.email_attribute,
    )


@dataclass
class Outcome:
    ok: bool
    summary: str
    remains: str = ""
    secret: str | None = field(default=None, repr=False)
    refused: bool = False
    protected: bool = False  # refused because the account is protected


def _guard(ctx: Context, find_by: tuple[str, str], position: int) -> int:
    """Find the account and check where it is; the next step's position.
    ``Refused`` when it may not be touched."""
    step = _begin(ctx.run, position, "find_account")
    try:
        ctx.account = ctx.connection.find_account(*find_by)
    except ldap.DirectoryError as exc:
        _end(step, StepStatus.FAILED, str(exc))
        if exc.kind in ("not_found", "ambiguous"):
            raise Refused(str(exc)) from None
        raise
    ctx.run.account_dn = ctx.account.dn
    ActionRun.objects.filter(pk=ctx.run.pk).update(account_dn=ctx.account.dn)
    _end(step, StepStatus.DONE, ctx.account.dn)
    return _check_place(ctx, ctx.account.dn, position + 1)


def _check_place(ctx: Context, dn: str, position: int) -> int:
    d = ctx.directory
    step = _begin(ctx.run, position, "check_scope")
    if not any(ldap.within(dn, ou) for ou in d.allowed_ous):
        _end(step, StepStatus.FAILED, "outside the allowed OUs")
        raise Refused(f"{dn} is outside the OUs where actions are allowed")
    _end(step, StepStatus.DONE, "within the allowed OUs")
    step = _begin(ctx.run, position + 1, "check_protected")
    if ldap.same_dn(dn, d.bind_dn):
        _end(step, StepStatus.FAILED, "the service account itself")
        raise Refused(f"{dn} is the service account tierdesk binds as", protected=True)
    try:
        protected = ctx.connection.protected_by(dn, list(d.protected_groups))
    except ldap.DirectoryError as exc:
        _end(step, StepStatus.FAILED, str(exc))
        if exc.kind == "refused":
            raise Refused(str(exc)) from None
        raise
    if protected:
        _end(step, StepStatus.FAILED, f"member of {protected}")
        why = (
            protected if protected.startswith("adminCount") else f"the protected group {protected}"
        )
        raise Refused(f"{dn} is protected: {why}", protected=True)
    _end(step, StepStatus.DONE, "in no protected group")
    return position + 2


def execute(
    run: ActionRun,
    directory: Directory,
    steps: tuple[Any, ...],
    values: dict[str, Any],
    find_by: tuple[str, str] | None,
) -> Outcome:
    """Run ``steps`` (runbook steps) for the account ``find_by`` names (attribute, value),
    or for a new account when ``find_by`` is None (the first step creates it)."""
    try:
        connection = ldap.Connection(settings_for(directory))
        connection.open()
    except (ldap.DirectoryError, crypto.Unreadable) as exc:
        step = _begin(run, 1, "connect")
        _end(step, StepStatus.FAILED, str(exc))
        return Outcome(False, f"the directory could not be reached: {exc}")
    ctx = Context(directory, connection, run, values)
    done: list[tuple[StepDefinition, dict[str, Any], str]] = []
    try:
        position = 1
        if find_by is not None:
            position = _guard(ctx, find_by, position)
        else:
            position = _check_new(ctx, position)
        for index, step_spec in enumerate(steps):
            definition = STEPS[step_spec.name]
            record = _begin(run, position, definition.name)
            position += 1
            try:
                detail = definition.apply(ctx, step_spec.arguments)
                if (
                    definition.name == "set_password"
                    and done
                    and done[0][0].name == "create_account"
                ):
                    _after_create(ctx)
            except ldap.DirectoryError as exc:
                _end(record, StepStatus.FAILED, str(exc))
                remains = _take_back(ctx, done, position)
                if exc.partial:
                    unseen = " to a generated one nobody has seen" if ctx.secret else ""
                    partial = exc.partial.replace("was changed", f"was changed{unseen}", 1)
                    remains = "\n".join(filter(None, [f"{partial} (step {index + 1})", remains]))
                summary = f"step {index + 1} ({definition.name}) failed: {exc}"
                return Outcome(False, summary, remains)
            except Exception as exc:  # not the directory's answer: a bug, or the database
                log.exception("run %s: step %s failed unexpectedly", run.pk, definition.name)
                _end(record, StepStatus.FAILED, f"unexpected error: {type(exc).__name__}")
                remains = _take_back(ctx, done, position)
                unknown = f"unknown whether step {index + 1} ({definition.name}) changed anything"
                remains = "\n".join(filter(None, [unknown, remains]))
                return Outcome(False, f"step {index + 1} failed unexpectedly", remains)
            if detail == UNCHANGED:
                _end(record, StepStatus.UNCHANGED, "already as wanted")
                continue
            _end(record, StepStatus.DONE, detail)
            done.append((definition, step_spec.arguments, detail))
            if ctx.account is not None and definition.name != "create_account":
                ctx.account = _fresh(ctx)
    except Refused as exc:
        return Outcome(False, f"refused: {exc}", refused=True, protected=exc.protected)
    except ldap.DirectoryError as exc:
        remains = _take_back(ctx, done, 90)
        return Outcome(False, f"the directory failed: {exc}", remains)
    except Exception as exc:  # before any step wrote: nothing to take back
        log.exception("run %s: the checks failed unexpectedly", run.pk)
        return Outcome(False, f"the checks failed unexpectedly ({type(exc).__name__})")
    finally:
        connection.close()
    summary = "; ".join(d for _, _, d in done) or "nothing to change: the account already was so"
    return Outcome(True, summary, secret=ctx.secret)


def _fresh(ctx: Context) -> ldap.Account:
    try:
        return ctx.connection.reread(_account(ctx))
    except ldap.DirectoryError:
        return _account(ctx)


def _check_new(ctx: Context, position: int) -> int:
    d = ctx.directory
    step = _begin(ctx.run, position, "check_scope")
    if not d.new_accounts_ou or not any(ldap.within(d.new_accounts_ou, ou) for ou in d.allowed_ous):
        _end(step, StepStatus.FAILED, "no OU for new accounts among the allowed OUs")
        raise Refused("the directory has no OU for new accounts among the allowed OUs")
    try:
        ctx.connection.find_account(d.login_attribute, ctx.run.account)
    except ldap.DirectoryError as exc:
        if exc.kind != "not_found":
            _end(step, StepStatus.FAILED, str(exc))
            raise Refused(str(exc)) from None
    else:
        _end(step, StepStatus.FAILED, "the login is taken")
        raise Refused(f"an account with {d.login_attribute} {ctx.run.account!r} exists already")
    _end(step, StepStatus.DONE, f"new account in {d.new_accounts_ou}")
    return position + 1


def _take_back(
    ctx: Context, done: list[tuple[StepDefinition, dict[str, Any], str]], position: int
) -> str:
    """Undo ``done`` in reverse; what could not be undone, one line each."""
    remains = []
    for definition, arguments, detail in reversed(done):
        if definition.undo is None:
            remains.append(f"{definition.remains} ({detail})")
            continue
        record = _begin(ctx.run, position, f"undo_{definition.name}")
        position += 1
        try:
            undone = definition.undo(ctx, arguments)
        except ldap.DirectoryError as exc:
            _end(record, StepStatus.UNDO_FAILED, str(exc))
            remains.append(f"{definition.remains} ({detail}); taking it back failed: {exc}")
            continue
        _end(record, StepStatus.UNDONE, undone)
    return "\n".join(remains)
