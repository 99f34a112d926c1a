"""Sweep benchmark: one SLA sweep and one time-in-tier sweep at 10,000 and 100,000 open tickets
with the same number due.

Run from the repository root:

    .venv/bin/python bench/sweep_bench.py                       # SQLite in a temporary data dir
    .venv/bin/python bench/sweep_bench.py --database-url postgres://postgres@127.0.0.1:5432/tierdesk_bench_sweep

The target (issue 5, "Speed"): one SLA/escalation sweep at 10,000 and at 100,000 open tickets
with the same number due (100): the two times within 2x of each other, each < 200 ms, on
SQLite and on PostgreSQL.

What it does for each size N (each in its own process, on its own fresh database; see
bench/README.md):

1. migrates, creates a small cast, an office-hours business calendar, an MSP-wide SLA policy,
   an SLA-percentage escalation rule and a time-in-tier rule, all through the services;
2. bulk-inserts N open tickets whose SLA clocks (two per ticket) are not due and which entered
   their tier recently, plus D tickets whose resolution clock is due (past its warning, its
   due instant and the rule's percentage) and D tickets past the time-in-tier threshold;
3. with "now" frozen, runs ``tierdesk.sla.clocks.sweep()`` and
   ``tierdesk.escalation.rules.sweep_time_in_tier()`` once untimed (warm-up, queries counted),
   then ``--repeat`` times timed, restoring the D due rows before each run; after each timed
   run it times both sweeps again with nothing due;
4. EXPLAINs the selection queries and every other distinct query the sweeps sent that reads
   the tickets or clocks tables, and flags full scans.

PostgreSQL databases are created and dropped by this script (one per size, named
``<name>_<N>``); it refuses names without "bench" in them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from api_bench import log, machine_info  # noqa: E402 - the shared helpers

TARGET_MS = 200.0
TARGET_RATIO = 2.0

# "Now" for the whole run: a Wednesday, 11:00 in Berlin (10:00 UTC), inside business hours.
NOW = dt.datetime(2026, 11, 18, 10, 0, tzinfo=dt.UTC)
OFFICE = {d: [(8 * 60, 18 * 60)] for d in range(5)}  # Mon-Fri 08:00-18:00 Europe/Berlin
# priority -> (first response, resolution) in business minutes
TARGETS = {"P1": (30, 240), "P2": (60, 480), "P3": (240, 1440), "P4": (480, 2400)}
WARNING_PERCENT = 80
SLA_RULE_PERCENT = 90  # "resolution SLA 90 % used" escalates
TIER_RULE_MINUTES = 480  # "8 hours in a tier without resolution" escalates
ORGS = [
    ("ACME", "Acme Manufacturing Inc.", "America/New_York", "acme.example", 5),
    ("GLOBEX", "Globex GmbH", "Europe/Berlin", "globex.example", 3),
    ("INITECH", "Initech Pty Ltd", "Australia/Sydney", "initech.example", 2),
]
REQUESTERS_PER_ORG = 25
# Open statuses of the not-due tickets; pending ones have paused clocks (no next check).
STATUS_SHARE = {
    "new": 4,
    "open": 12,
    "in_progress": 8,
    "pending_customer": 4,
    "pending_third_party": 2,
}
TIER_SHARE = {"L1": 65, "L2": 25, "L3": 10}
BATCH = 5000
BIG_TABLES = ("tickets_ticket", "sla_slaclock")


# --- environment (parent process) ------------------------------------------------------------


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def pg_name_ok(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit("--database-url: only postgres:// URLs (SQLite is the default without it)")
    name = parts.path.lstrip("/")
    if not name or name in {"test", "postgres", "template0", "template1"} or "bench" not in name:
        sys.exit(
            f"--database-url: refusing database {name!r}: this script drops and recreates it, "
            "so its name must contain 'bench' (e.g. tierdesk_bench_sweep)"
        )
    return name


def pg_url_with(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def pg_exec(url: str, statement: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    admin = pg_url_with(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


def pg_recreate(url: str, name: str) -> None:
    pg_exec(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
    pg_exec(url, "CREATE DATABASE {}", name)


def pg_drop(url: str, name: str) -> None:
    pg_exec(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


# --- the fixture (child process) ---------------------------------------------------------------


class Fixture:
    """What a run needs to know about its data: the rules, the due rows and their originals."""

    def __init__(self) -> None:
        self.sla_rule: Any = None
        self.tier_rule: Any = None
        self.tiers: dict[str, Any] = {}
        # Originals of the due rows, to restore before each timed run.
        self.sla_due_tickets: list[Any] = []
        self.sla_due_clocks: list[Any] = []
        self.tier_due_tickets: list[Any] = []
        self.tier_due_clocks: list[Any] = []
        self.seconds = 0.0
        self.counts: dict[str, int] = {}


def make_cast(l2_strategy: str) -> tuple[Any, Any, list[Any], dict[str, list[Any]], list[Any]]:
    """Organizations, staff (an admin, agents on every tier) and requesters, via the services."""
    from tierdesk.core.services import organization_create, user_create
    from tierdesk.tiers.models import Tier
    from tierdesk.tiers.services import Shift, agent_create, tier_update

    tiers = {t.code: t for t in Tier.objects.all()}
    shifts = [Shift(d, dt.time(0), dt.time(23, 59)) for d in range(7)]
    orgs = [
        organization_create(actor=None, code=c, name=n, time_zone=z, email_domains=[d])
        for c, n, z, d, _ in ORGS
    ]
    admin = user_create(
        actor=None, email="bench.admin@msp.example", full_name="Bench Admin", role="admin"
    )
    staff = []
    for i, code in enumerate(["L1", "L1", "L1", "L1", "L2", "L2", "L3"]):
        staff.append(
            agent_create(
                actor=None,
                email=f"agent{i}.{code.lower()}@msp.example",
                full_name=f"Agent {i} {code}",
                role="agent",
                tier=tiers[code],
                shifts=shifts,
                served_organizations=orgs,
            )
        )
    if l2_strategy != "manual":
        tier_update(actor=admin, tier=tiers["L2"], assignment_strategy=l2_strategy)
    people = {
        org.code: [
            user_create(
                actor=None,
                email=f"person{i}@{org.email_domains[0]}",
                full_name=f"Person {i} of {org.code}",
                role="requester",
                organization=org,
                time_zone=org.time_zone,
            )
            for i in range(REQUESTERS_PER_ORG)
        ]
        for org in orgs
    }
    return admin, tiers, orgs, people, staff


def prepare(size: int, due: int, seed: int, calendar_kind: str, l2_strategy: str) -> Fixture:
    from django.core.management import call_command
    from django.db import connection, transaction

    from tierdesk.core import clock
    from tierdesk.escalation.services import escalation_rule_create
    from tierdesk.sla.clocks import calendar_of
    from tierdesk.sla.models import SlaClock
    from tierdesk.sla.services import Target, calendar_create, sla_policy_create
    from tierdesk.tickets.models import Ticket
    from tierdesk.tickets.services import priority_for
    from tierdesk.tiers.models import Category

    fx = Fixture()
    log("migrating")
    call_command("migrate", interactive=False, verbosity=0)
    log("creating the cast, calendar, SLA policy and escalation rules through the services")
    rnd = random.Random(seed)
    with clock.frozen_at(NOW - dt.timedelta(days=30)), transaction.atomic():
        admin, tiers, orgs, people, staff = make_cast(l2_strategy)
        fx.tiers = tiers
        if calendar_kind == "24x7":
            calendar = calendar_create(
                actor=None, name="bench-24x7", title="24x7", time_zone="UTC", always_open=True
            )
        else:
            calendar = calendar_create(
                actor=None,
                name="bench-office",
                title="Berlin office hours",
                time_zone="Europe/Berlin",
                hours=OFFICE,
            )
        policy = sla_policy_create(
            actor=None,
            name="MSP default",
            calendar=calendar,
            warning_percent=WARNING_PERCENT,
            targets=[Target(p, fr, res) for p, (fr, res) in TARGETS.items()],
        )
        # The rules come before the tickets: an SLA-percentage rule replans every running
        # resolution clock when it is created (one pass over them), which is not measured here.
        fx.sla_rule = escalation_rule_create(
            actor=admin,
            name=f"resolution {SLA_RULE_PERCENT}% used",
            trigger="sla_resolution_used",
            percent=SLA_RULE_PERCENT,
        )
        fx.tier_rule = escalation_rule_create(
            actor=admin,
            name=f"{TIER_RULE_MINUTES} minutes in a tier",
            trigger="time_in_tier",
            minutes=TIER_RULE_MINUTES,
        )
    cal = calendar_of(policy.calendar)
    categories = list(Category.objects.filter(organization__isnull=True))
    org_weights = [w for *_, w in ORGS]

    def at_percent(started: dt.datetime, minutes: int, percent: int, paused: dt.timedelta) -> Any:
        return cal.add(
            started, dt.timedelta(seconds=math.floor(minutes * 60 * percent / 100)) + paused
        )

    def clock_row(
        ticket: Ticket, kind: str, minutes: int, started: dt.datetime, status: str
    ) -> SlaClock:
        c = SlaClock(
            ticket=ticket,
            organization_id=ticket.organization_id,
            policy=policy,
            kind=kind,
            status=status,
            target_minutes=minutes,
            started_at=started,
            paused=dt.timedelta(0),
        )
        c.due_at = at_percent(started, minutes, 100, c.paused)
        c.warn_at = at_percent(started, minutes, WARNING_PERCENT, c.paused)
        if status == "running":
            checks = [c.warn_at, c.due_at]
            if kind == "resolution":
                checks.append(at_percent(started, minutes, SLA_RULE_PERCENT, c.paused))
            c.next_check_at = min(checks)
        elif status == "paused":
            c.paused_at = min(started + dt.timedelta(minutes=rnd.uniform(1, 30)), NOW)
        else:
            c.stopped_at = min(started + dt.timedelta(minutes=rnd.uniform(1, 20)), NOW)
        return c

    numbers = {o.code: 0 for o in orgs}

    def ticket_row(
        i: int, status: str, tier: str, priority: str | None, entered: dt.datetime
    ) -> Ticket:
        org = rnd.choices(orgs, weights=org_weights)[0]
        numbers[org.code] += 1
        category = rnd.choice(categories)
        impact, urgency = rnd.randint(1, 3), rnd.randint(1, 3)
        prio = priority or priority_for(impact, urgency)
        created = entered - (
            dt.timedelta(0) if tier == "L1" else dt.timedelta(minutes=rnd.uniform(0, 30))
        )
        return Ticket(
            organization=org,
            number=numbers[org.code],
            subject=f"Fixture ticket {i}: {category.name}",
            description="Bulk-inserted fixture row for the sweep benchmark. " * 2,
            requester=rnd.choice(people[org.code]),
            assignee=None if status == "new" else rnd.choice(staff),
            tier=tiers[tier],
            category=category,
            impact=impact,
            urgency=urgency,
            priority=prio,
            status=status,
            source=rnd.choice(["portal", "email", "phone", "api"]),
            created_at=created,
            tier_entered_at=entered,
            updated_at=entered,
            first_response_at=None if status == "new" else created + dt.timedelta(minutes=5),
            created_by=staff[0],
            version=1 if status == "new" else 3,
        )

    def clocks_for(t: Ticket) -> list[SlaClock]:
        fr, res = TARGETS[t.priority]
        paused = t.status.startswith("pending")
        fr_status = "running" if t.status == "new" else "stopped"
        return [
            clock_row(t, "first_response", fr, t.created_at, fr_status),
            clock_row(t, "resolution", res, t.created_at, "paused" if paused else "running"),
        ]

    log(f"bulk-inserting {size:,} open tickets, not due (bulk_create, batches of {BATCH})")
    started = time.monotonic()
    statuses, status_w = list(STATUS_SHARE), list(STATUS_SHARE.values())
    tier_codes, tier_w = list(TIER_SHARE), list(TIER_SHARE.values())
    for offset in range(0, size, BATCH):
        batch: list[Ticket] = []
        for i in range(offset, min(offset + BATCH, size)):
            status = rnd.choices(statuses, weights=status_w)[0]
            tier = rnd.choices(tier_codes, weights=tier_w)[0]
            t = ticket_row(i, status, tier, None, NOW)
            fr, res = TARGETS[t.priority]
            # Entered its tier recently (under the time-in-tier threshold) and its running
            # clocks are short of their first check: business time used <= wall time.
            limit = min(TIER_RULE_MINUTES - 30, 0.75 * res * WARNING_PERCENT / 100)
            if status == "new":
                limit = min(limit, 0.75 * fr * WARNING_PERCENT / 100)
            entered = NOW - dt.timedelta(minutes=rnd.uniform(0.5, limit))
            t.tier_entered_at = t.updated_at = entered
            t.created_at = entered if tier == "L1" else entered - dt.timedelta(minutes=5)
            if t.first_response_at is not None:
                t.first_response_at = min(t.created_at + dt.timedelta(minutes=2), NOW)
            batch.append(t)
        with transaction.atomic():
            Ticket.objects.bulk_create(batch)
            SlaClock.objects.bulk_create(c for t in batch for c in clocks_for(t))
        if (offset // BATCH) % 5 == 4:
            log(f"  {offset + len(batch):,} tickets")

    # D tickets whose resolution clock is due: opened Monday 09:00 Berlin as P2 (480 business
    # minutes), so by Wednesday 11:00 past the warning, the rule's 90 % and the due instant.
    # Their first response was given (that clock stopped, met): exactly D clocks are due. They
    # reached L2 a few hours ago, so the time-in-tier rule does not want them (yet).
    log(f"inserting {due} tickets with a due SLA clock and {due} past the time-in-tier threshold")
    monday_9 = dt.datetime(2026, 11, 16, 8, 0, tzinfo=dt.UTC)
    sla_due = []
    for i in range(due):
        entered = NOW - dt.timedelta(minutes=rnd.uniform(10, TIER_RULE_MINUTES - 60))
        t = ticket_row(size + i, "open", "L2", "P2", entered)
        t.created_at = monday_9 + dt.timedelta(seconds=i)
        t.first_response_at = t.created_at + dt.timedelta(minutes=5)
        sla_due.append(t)
    # D tickets in L1 for longer than the threshold, P4 (2400 business minutes): their clocks
    # are not due.
    tier_due = []
    for i in range(due):
        entered = NOW - dt.timedelta(minutes=TIER_RULE_MINUTES + 1 + rnd.uniform(0, 420))
        tier_due.append(ticket_row(size + due + i, "open", "L1", "P4", entered))
    with transaction.atomic():
        Ticket.objects.bulk_create(sla_due + tier_due)
        sla_clocks = [c for t in sla_due for c in clocks_for(t)]
        tier_clocks = [c for t in tier_due for c in clocks_for(t)]
        SlaClock.objects.bulk_create(sla_clocks + tier_clocks)
    from tierdesk.core.models import Organization

    for code, last in numbers.items():
        Organization.objects.filter(code=code).update(last_ticket_number=last)
    fx.sla_due_tickets, fx.tier_due_tickets = sla_due, tier_due
    fx.sla_due_clocks, fx.tier_due_clocks = sla_clocks, tier_clocks
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    fx.seconds = time.monotonic() - started
    fx.counts = {
        "tickets": Ticket.objects.count(),
        "clocks": SlaClock.objects.count(),
        "clocks_with_next_check": SlaClock.objects.filter(next_check_at__isnull=False).count(),
        "clocks_due": SlaClock.objects.filter(next_check_at__lte=NOW).count(),
    }
    from tierdesk.escalation.rules import due_for

    fx.counts["tickets_past_tier_threshold"] = len(due_for(fx.tier_rule, NOW, 10 * due + 10))
    log(f"fixture ready in {fx.seconds:.1f}s: {fx.counts}")
    if fx.counts["clocks_due"] != due or fx.counts["tickets_past_tier_threshold"] != due:
        raise SystemExit(f"fixture error: {fx.counts}, wanted {due} due of each")
    return fx


def restore(fx: Fixture) -> None:
    """Put the due rows back as the fixture made them (the sweeps escalated them, stamped their
    clocks and wrote firing guards)."""
    from django.db import transaction

    from tierdesk.escalation.models import EscalationFiring
    from tierdesk.sla.models import SlaClock
    from tierdesk.tickets.models import Ticket

    tickets = fx.sla_due_tickets + fx.tier_due_tickets
    clocks = fx.sla_due_clocks + fx.tier_due_clocks
    with transaction.atomic():
        EscalationFiring.objects.filter(ticket_id__in=[t.pk for t in tickets]).delete()
        Ticket.objects.bulk_update(
            tickets, ["tier", "tier_entered_at", "assignee", "status", "version", "updated_at"]
        )
        SlaClock.objects.bulk_update(
            clocks,
            ["status", "warned_at", "breached_at", "due_at", "warn_at", "next_check_at"],
        )


# --- measuring (child process) -----------------------------------------------------------------


def timed(fn: Any) -> tuple[float, Any]:
    from tierdesk.core import clock

    with clock.frozen_at(NOW):
        t0 = time.perf_counter()
        result = fn()
        return (time.perf_counter() - t0) * 1000, result


def counted(fn: Any) -> tuple[float, Any, list[tuple[str, Any]], int]:
    """Time ``fn`` and return the queries it sent as (sql, params), the way Django passed them
    to the driver (so they can be EXPLAINed with their parameters on either database); the
    count is the one CaptureQueriesContext sees."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sent: list[tuple[str, Any]] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append((sql, params))
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(wrapper):
        ms, result = timed(fn)
    # Transaction control (BEGIN, COMMIT, savepoints) is not sent through execute on every
    # backend; CaptureQueriesContext's count is the one reported.
    assert len(ctx.captured_queries) >= len(sent)
    return ms, result, sent, len(ctx.captured_queries)


def explain(query: tuple[str, Any]) -> str:
    from django.db import connection

    sql, params = query
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def shape(sql: str) -> str:
    """A query with its literals blanked, to group the repeats of one query."""
    sql = re.sub(r'"s\d+_x\d+"', "savepoint", sql)
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    return re.sub(r"\(\?(, \?)*\)", "(?...)", sql)


def full_scan(plan: str) -> list[str]:
    found = []
    for table in BIG_TABLES:
        if re.search(rf"Seq Scan on {table}\b", plan) or re.search(
            rf"^\s*SCAN {table}\b(?! USING)", plan, re.M
        ):
            found.append(table)
    return found


def measure(fx: Fixture, due: int, repeat: int) -> dict[str, Any]:
    from django.db import connection

    from tierdesk.escalation.rules import due_for, sweep_time_in_tier
    from tierdesk.sla.clocks import sweep

    def sla() -> dict[str, int]:
        return sweep(limit=1000)

    result: dict[str, Any] = {}
    log("warm-up run (queries counted, not timed)")
    restore(fx)
    connection.close()  # the worker's first tick opens its connection too
    cold_sla, sla_counts, sla_sql, n_sla = counted(sla)
    cold_tier, tier_fired, tier_sql, n_tier = counted(sweep_time_in_tier)
    _, _, _, n_sla_idle = counted(sla)
    _, _, _, n_tier_idle = counted(sweep_time_in_tier)
    expected = {"selected": due, "checked": due, "warned": due, "breached": due, "watched": due}
    result["sla_counts"], result["tier_fired"] = sla_counts, tier_fired
    result["warmup_ms"] = {"sla": cold_sla, "tier": cold_tier}
    if sla_counts != expected or tier_fired != due:
        log(f"WARNING: the sweeps did not do the expected work: {sla_counts}, {tier_fired} fired")
    result["queries"] = {
        "sla": n_sla,
        "tier": n_tier,
        "sla_nothing_due": n_sla_idle,
        "tier_nothing_due": n_tier_idle,
    }
    # Each distinct query of a sweep, with how often it ran (per due item, mostly).
    shapes: dict[tuple[str, str], dict[str, Any]] = {}
    for label, sent in (("sla", sla_sql), ("tier", tier_sql)):
        for q in sent:
            s = shapes.setdefault((label, shape(q[0])), {"count": 0, "query": q})
            s["count"] += 1
    shape_list = sorted(
        ({"sweep": k[0], "shape": k[1], **v} for k, v in shapes.items()),
        key=lambda s: -s["count"],
    )

    runs: dict[str, list[float]] = {"sla": [], "tier": [], "sla_idle": [], "tier_idle": []}
    for i in range(repeat):
        restore(fx)
        ms, counts = timed(sla)
        runs["sla"].append(ms)
        ms2, fired = timed(sweep_time_in_tier)
        runs["tier"].append(ms2)
        if counts != expected or fired != due:
            log(f"WARNING: run {i + 1}: {counts}, {fired} fired")
        runs["sla_idle"].append(timed(sla)[0])
        runs["tier_idle"].append(timed(sweep_time_in_tier)[0])
        log(
            f"run {i + 1}/{repeat}: SLA sweep {ms:.1f} ms ({counts['checked']} clocks), "
            f"time-in-tier {ms2:.1f} ms ({fired} fired); nothing due: "
            f"{runs['sla_idle'][-1]:.1f} / {runs['tier_idle'][-1]:.1f} ms"
        )
    result["runs_ms"] = runs
    result["median_ms"] = {k: statistics.median(v) for k, v in runs.items()}
    result["max_ms"] = {k: max(v) for k, v in runs.items()}

    # Plans: the two selection queries (with D due, as the sweep sees them), then every other
    # distinct query shape of the sweeps that reads a big table.
    restore(fx)
    plans: dict[str, tuple[str, Any]] = {}
    _, _, with_due, _ = counted(lambda: due_for(fx.tier_rule, NOW, 500))
    plans["SLA selection (clocks whose next check has come)"] = next(
        q for q in sla_sql if 'FROM "sla_slaclock"' in q[0] and "next_check_at" in q[0]
    )
    plans["time-in-tier selection (due_for)"] = with_due[-1]
    explained = {}
    for label, q in plans.items():
        plan = explain(q)
        explained[label] = {"sql": q[0], "params": q[1], "plan": plan, "full_scan": full_scan(plan)}
    for s in shape_list:
        sql = s["query"][0]
        if s["query"] in plans.values() or not sql.lstrip().upper().startswith("SELECT"):
            continue
        if any(t in sql for t in BIG_TABLES):
            s["plan"] = explain(s["query"])
            s["full_scan"] = full_scan(s["plan"])
    result["query_shapes"] = [
        {"sweep": s["sweep"], "count": s["count"], "sql": s["query"][0],
         "plan": s.get("plan"), "full_scan": s.get("full_scan", [])}
        for s in shape_list
    ]  # fmt: skip
    result["plans"] = explained
    return result


def child(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.db import connection

    import tierdesk

    fx = prepare(args.size, args.due, args.seed, args.calendar, args.l2_strategy)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = f"PostgreSQL {cursor.fetchone()[0]}"  # type: ignore[index]
        else:
            cursor.execute("SELECT sqlite_version()")
            version = f"SQLite {cursor.fetchone()[0]}"  # type: ignore[index]
    result = measure(fx, args.due, args.repeat)
    result |= {
        "database": "PostgreSQL" if connection.vendor == "postgresql" else "SQLite",
        "database_version": version,
        "size": args.size,
        "due": args.due,
        "fixture_seconds": fx.seconds,
        "fixture_counts": fx.counts,
        "tierdesk_package": str(Path(tierdesk.__file__).parent),
    }
    connection.close()
    Path(args.child_out).write_text(json.dumps(result, indent=2, default=str))


# --- parent ----------------------------------------------------------------------------------


def print_report(results: list[dict[str, Any]], machine: dict[str, str], args: Any) -> bool:
    first = results[0]
    print()
    print("=" * 108)
    print(f"tierdesk sweep benchmark, {first['database_version']}, {args.due} due per sweep")
    print(f"machine: {machine['nproc']} CPUs, {machine['cpu']}, Python {machine['python']}")
    print(f"date: {machine['date']}; code: {machine['code']}; load average: {machine['load']}")
    where = {r["tierdesk_package"] for r in results}
    if where != {str(REPO / "src" / "tierdesk")}:
        print(f"tierdesk imported from: {', '.join(sorted(where))} (not this working tree)")
    print(
        f"calendar: {args.calendar}; L2 assignment: {args.l2_strategy}; "
        f"{args.repeat} timed runs per size after one warm-up"
    )
    for r in results:
        print(
            f"fixture N={r['size']:,}: {r['fixture_counts']} in {r['fixture_seconds']:.0f}s; "
            f"warm-up SLA {r['warmup_ms']['sla']:.0f} ms, time-in-tier "
            f"{r['warmup_ms']['tier']:.0f} ms"
        )
    print()
    header = (
        f"{'database':11} {'N open':>8} {'D due':>5}  {'SLA sweep ms':>16} {'ratio':>5} "
        f"{'queries':>7}  {'time-in-tier ms':>16} {'ratio':>5} {'queries':>7}"
    )
    print(header)
    print(f"{'':27}  {'median / max':>16} {'':5} {'':7}  {'median / max':>16}")
    print("-" * len(header))
    base = results[0]

    def row(r: dict[str, Any], sla: str, tier: str, label: str) -> None:
        def cell(key: str) -> str:
            return f"{r['median_ms'][key]:7.1f} / {r['max_ms'][key]:6.1f}"

        def ratio(key: str) -> str:
            return f"{r['median_ms'][key] / base['median_ms'][key]:5.2f}"

        q_sla = r["queries"]["sla" if sla == "sla" else "sla_nothing_due"]
        q_tier = r["queries"]["tier" if tier == "tier" else "tier_nothing_due"]
        print(
            f"{r['database']:11} {r['size']:8,} {label:>5}  {cell(sla):>16} {ratio(sla)} "
            f"{q_sla:7}  {cell(tier):>16} {ratio(tier)} {q_tier:7}"
        )

    for r in results:
        row(r, "sla", "tier", str(r["due"]))
    for r in results:
        row(r, "sla_idle", "tier_idle", "0")
    print(f"ratio: median against N={base['size']:,}")
    for r in results:
        d = max(r["due"], 1)
        print(
            f"per due item at N={r['size']:,}: SLA {r['median_ms']['sla'] / d:.1f} ms and "
            f"{r['queries']['sla'] / d:.1f} queries per clock; time-in-tier "
            f"{r['median_ms']['tier'] / d:.1f} ms and {r['queries']['tier'] / d:.1f} queries "
            "per ticket"
        )
    last = results[-1]
    print()
    print(f"the most frequent queries of the sweeps with D due (N={last['size']:,}):")
    for s in last["query_shapes"][:12]:
        print(f"  {s['sweep']:4} x{s['count']:<5} {' '.join(s['sql'].split())[:120]}")
    print()
    print("plans (the first one of each sweep; * = a full scan of a big table):")
    for r in results:
        for label, p in r["plans"].items():
            mark = " *FULL SCAN*" if p["full_scan"] else ""
            print(f"  N={r['size']:,} {label}{mark}:")
            for line in p["plan"].splitlines()[:14]:
                print(f"      {line}")
    scans = [(r["size"], s) for r in results for s in r["query_shapes"] if s.get("full_scan")]
    if scans:
        print("other queries of the sweeps that scan a big table:")
        for size, s in scans:
            print(f"  N={size:,} {s['sweep']} x{s['count']}: {s['sql'][:300]}")
            for line in s["plan"].splitlines()[:10]:
                print(f"      {line}")
    else:
        print("no other query of the sweeps scans the tickets or clocks table.")
    print()
    checks = []
    for r in results:
        for key, name in (("sla", "SLA sweep"), ("tier", "time-in-tier sweep")):
            m = r["max_ms"][key]
            checks.append((f"{name} at N={r['size']:,}, max < {TARGET_MS:.0f} ms", m < TARGET_MS,
                           f"{m:.1f} ms"))  # fmt: skip
    last = results[-1]
    for key, name in (("sla", "SLA sweep"), ("tier", "time-in-tier sweep")):
        ratio = last["median_ms"][key] / base["median_ms"][key]
        checks.append(
            (
                f"{name} N={last['size']:,} / N={base['size']:,} within {TARGET_RATIO:.0f}x",
                ratio <= TARGET_RATIO and 1 / ratio <= TARGET_RATIO,
                f"{ratio:.2f}",
            )
        )
    # Not the issue's target (that is with D due), but its premise: "a sweep's cost grows with
    # the number of tickets that are due, not with the number open". Shown, not counted.
    info = []
    for key, name in (("sla_idle", "SLA sweep"), ("tier_idle", "time-in-tier sweep")):
        ratio = last["median_ms"][key] / base["median_ms"][key]
        info.append((f"{name}, nothing due, N={last['size']:,} / N={base['size']:,}",
                     ratio <= TARGET_RATIO, f"{ratio:.2f}"))  # fmt: skip
    ok_all = True
    print("targets:")
    for label, ok, figure in checks:
        ok_all = ok_all and ok
        print(f"  {'PASS' if ok else 'FAIL':4}  {label:60} {figure}")
    print("for information (not counted):")
    for label, ok, figure in info:
        print(f"  {'ok' if ok else 'GROWS':5} {label:60} {figure}")
    print("=" * 108)
    return ok_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help="postgres://... (one database per size, <name>_<N>, created and dropped; the name "
        "must contain 'bench'). Default: SQLite in a temporary data directory.",
    )
    parser.add_argument("--sizes", default="10000,100000", help="open tickets, comma-separated")
    parser.add_argument("--due", type=int, default=100, help="tickets due per sweep")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per size")
    parser.add_argument("--calendar", choices=["office", "24x7"], default="office")
    parser.add_argument(
        "--l2-strategy",
        choices=["manual", "round_robin", "least_loaded", "skill_match"],
        default="manual",
        help="assignment strategy of L2, where the sweeps escalate to (tierdesk's default: manual)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs and databases")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_out:
        child(args)
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    base_name = pg_name_ok(args.database_url) if args.database_url else None
    machine = machine_info()
    load_before = loadavg()
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="tierdesk-sweep-bench-"))
    try:
        for size in sizes:
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in {"DATABASE_URL", "TIERDESK_DATA_DIR"}
            }
            env |= {
                "TIERDESK_DATA_DIR": str(tmp / f"data-{size}"),
                "TIERDESK_SECRET_KEY": secrets.token_urlsafe(48),
                "DJANGO_SETTINGS_MODULE": "tierdesk.settings",
            }
            name = f"{base_name}_{size}" if base_name else None
            if name:
                log(f"creating PostgreSQL database {name}")
                pg_recreate(args.database_url, name)
                env["DATABASE_URL"] = pg_url_with(args.database_url, name)
            out = tmp / f"result-{size}.json"
            command = [
                sys.executable,
                __file__,
                "--size", str(size),
                "--due", str(args.due),
                "--repeat", str(args.repeat),
                "--calendar", args.calendar,
                "--l2-strategy", args.l2_strategy,
                "--seed", str(args.seed),
                "--child-out", str(out),
            ]  # fmt: skip
            log(f"N={size:,}: {args.due} due, load average {loadavg()}")
            try:
                subprocess.run(command, env=env, cwd=REPO, check=True)
            finally:
                if name and not args.keep:
                    pg_drop(args.database_url, name)
            results.append(json.loads(out.read_text()))
    finally:
        if args.keep:
            log(f"kept {tmp}" + (f" and the databases {base_name}_<N>" if base_name else ""))
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    machine["load"] = f"{load_before} before, {loadavg()} after"
    ok = print_report(results, machine, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "machine": machine,
            "options": {k: str(v) for k, v in vars(args).items() if k not in {"size", "child_out"}},
            "results": results,
            "all_targets_met": ok,
        }
        args.json.write_text(json.dumps(data, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
