"""Page speed benchmark: the console's queue page and a ticket page with 200 timeline
entries, with 100,000 tickets, measured at the web server (issue #6's targets: server
time p95 < 100 ms for each; queries per page that do not grow with the rows shown).

Prepares the database as bench/api_bench.py does, adds one ticket with a 200-entry
timeline, signs the bench agent in (a session cookie), starts ``tierdesk serve`` and
requests each page sequentially, reading the server's own request time from its access
log, then counts each page's queries in process.

    .venv/bin/python bench/pages_bench.py                 # SQLite, temporary data dir
    .venv/bin/python bench/pages_bench.py --database-url postgres://postgres@127.0.0.1:5432/tierdesk_bench_pages

PostgreSQL databases are created and dropped (the name must contain "bench").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench
from api_bench import http_get, log, percentile

TARGET_P95_MS = 100.0
TIMELINE_ENTRIES = 200


def long_ticket(agent_email: str) -> str:
    """A ticket whose timeline has ``TIMELINE_ENTRIES`` entries (replies and notes)."""
    from tierdesk.core.models import Organization, User
    from tierdesk.tickets import services

    agent = User.objects.get(email=agent_email)
    org = Organization.objects.get(code="ACME")
    requester = User.objects.filter(organization=org, role="requester").first()
    ticket = services.ticket_create(
        actor=agent,
        organization=org,
        subject="A long story: the VPN drops every afternoon",
        description="Started after the firewall update.",
        requester=requester,
    )
    have = ticket.timeline.count()
    for i in range(TIMELINE_ENTRIES - have):
        services.ticket_comment(
            actor=agent,
            ticket=ticket,
            body=f"Update {i}: checked the tunnel logs again, see attached notes. " * 3,
            internal=bool(i % 3 == 0),
        )
    assert ticket.timeline.count() == TIMELINE_ENTRIES
    return ticket.key


def session_cookie(agent_email: str) -> str:
    from django.test import Client

    from tierdesk.core.models import User

    client = Client()
    client.force_login(User.objects.get(email=agent_email))
    return f"sessionid={client.cookies['sessionid'].value}"


def query_counts(agent_email: str, key: str) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tierdesk.core.models import User

    client = Client()
    client.force_login(User.objects.get(email=agent_email))
    out = {}
    for label, path in (
        ("queue page (50 rows)", "/console/queue/l1"),
        ("ticket page, 200 entries", f"/console/tickets/{key}"),
    ):
        client.get(path)  # warm the caches
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200, path
        out[label] = len(ctx.captured_queries)
    return out


def measure(server: api_bench.Server, path: str, cookie: str, count: int) -> dict[str, float]:
    headers = {"Cookie": cookie, "Accept": "text/html"}
    for _ in range(5):  # warm-up
        http_get(server.port, path, headers)
    offset = server.log_offset()
    client: list[float] = []
    for _ in range(count):
        t0 = time.perf_counter()
        status, body = http_get(server.port, path, headers)
        client.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:300]!r}")
    time.sleep(0.3)
    times = server.server_times_ms(offset, path.split("?")[0])
    return {
        "requests": count,
        "server_p50_ms": percentile(times, 50),
        "server_p95_ms": percentile(times, 95),
        "server_p99_ms": percentile(times, 99),
        "client_p95_ms": percentile(client, 95),
        "bytes": len(body),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="sequential GETs per page")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    pg = api_bench.pg_target(args.database_url) if args.database_url else None

    with api_bench.temporary_dir(args.keep, "tierdesk-pages-") as data_dir:
        env = api_bench.bench_env(data_dir, bench_endpoints=False)
        if pg:
            api_bench.pg_recreate(pg)
            env["DATABASE_URL"] = pg.url
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        settings.ALLOWED_HOSTS = ["*"]
        server = None
        try:
            cast, fixture_seconds = api_bench.prepare(args.tickets, args.seed)
            key = long_ticket(cast.agent_email)
            cookie = session_cookie(cast.agent_email)
            counts = query_counts(cast.agent_email, key)
            connection.close()
            server = api_bench.Server(env, data_dir / "server.log", None)
            log(f"starting the server: {' '.join(server.command)}")
            server.start()
            results = {}
            for label, path in (
                ("queue page  /console/queue/l1", "/console/queue/l1"),
                ("ticket page /console/tickets/<200 entries>", f"/console/tickets/{key}"),
            ):
                log(f"measuring {label}, {args.requests} sequential requests")
                results[label] = measure(server, path, cookie, args.requests)
        finally:
            if server is not None:
                server.stop()
            if pg and not args.keep:
                connection.close()
                api_bench.pg_drop(pg)

    info = api_bench.machine_info()
    database = "PostgreSQL" if pg else "SQLite"
    print("=" * 100)
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']} RAM, Python {info['python']}"
    )
    print(f"date: {info['date']}; code: {info['code']}")
    print(f"database: {database}; fixture: {args.tickets:,} tickets in {fixture_seconds:.1f}s")
    print(f"{'page':48} {'server p50':>10} {'p95':>8} {'p99':>8} {'client p95':>11} {'KiB':>6}")
    ok = True
    for label, r in results.items():
        print(
            f"{label:48} {r['server_p50_ms']:10.1f} {r['server_p95_ms']:8.1f} "
            f"{r['server_p99_ms']:8.1f} {r['client_p95_ms']:11.1f} {r['bytes'] / 1024:6.0f}"
        )
        ok &= r["server_p95_ms"] < TARGET_P95_MS
    print("queries per page (in process):")
    for label, n in counts.items():
        print(f"  {label:30} {n}")
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}  server p95 < {TARGET_P95_MS:.0f} ms for both pages")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "queries": counts}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
