"""CPU per ticket create, in process: robust against a busy machine, unlike the load test.

Prepares a database like bench/api_bench.py (fewer fixture tickets by default), then calls
the WSGI application directly, one request at a time, and reports process CPU per request
and the queries of one create, for ``POST /api/v1/tickets`` and the bare insert.

    .venv/bin/python bench/create_cpu.py                      # SQLite, temporary data dir
    .venv/bin/python bench/create_cpu.py --database-url postgres://postgres@127.0.0.1:5432/tierdesk_bench_cpu
    .venv/bin/python bench/create_cpu.py --profile create.prof   # CPU-time cProfile of creates
    .venv/bin/python bench/create_cpu.py --data-dir /tmp/cpu    # keep the fixture for next time

PostgreSQL databases are created and dropped (the name must contain "bench"); with
``--data-dir`` the database is kept, and reused with the cast recorded there.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench


def wsgi_post(app: Any, path: str, body: bytes, auth: str) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if auth:
        environ["HTTP_AUTHORIZATION"] = auth
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(s)

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return status[0], content


def backend_cpu() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (0 on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WALL: list[float] = []
BACKEND: list[float] = []


def run(app: Any, path: str, bodies: list[bytes], auth: str, n: int, expect: str) -> list[float]:
    times = []
    wall = time.perf_counter()
    backend = backend_cpu()
    for i in range(n):
        body = bodies[i % len(bodies)]
        start = time.process_time()
        status, content = wsgi_post(app, path, body, auth)
        times.append(time.process_time() - start)
        if not status.startswith(expect):
            raise SystemExit(f"{path} answered {status}: {content[:300]!r}")
    WALL.append((time.perf_counter() - wall) / n)
    BACKEND.append((backend_cpu() - backend) / n)
    return times


def summary(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return (
        f"mean {statistics.fmean(ms):.3f} ms, median {statistics.median(ms):.3f} ms, "
        f"p10 {ms[len(ms) // 10]:.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("-n", type=int, default=2000, help="creates to time")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of n/rounds")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the creates here")
    parser.add_argument("--print-sql", action="store_true")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help=(
            "keep the fixture and reuse it on the next run (faster): the SQLite database lives "
            "here; with --database-url the PostgreSQL database is kept and only the cast is here"
        ),
    )
    args = parser.parse_args()
    pg = api_bench.pg_target(args.database_url) if args.database_url else None

    with tempfile.TemporaryDirectory(prefix="tierdesk-cpu-") as tmp:
        data_dir = str(args.data_dir) if args.data_dir else tmp
        cast_file = Path(data_dir) / "cast.json"
        keep = args.data_dir is not None
        os.environ.pop("DATABASE_URL", None)
        os.environ |= {
            "TIERDESK_DATA_DIR": str(Path(data_dir) / "data"),
            "TIERDESK_SECRET_KEY": secrets.token_urlsafe(48),
            "TIERDESK_BENCH_ENDPOINTS": "1",
            "DJANGO_SETTINGS_MODULE": "tierdesk.settings",
        }
        if pg:
            if not (keep and cast_file.exists()):
                api_bench.pg_recreate(pg)
            os.environ["DATABASE_URL"] = pg.url
        import django

        django.setup()
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application
        from django.db import connection, connections
        from django.test.utils import CaptureQueriesContext

        settings.ALLOWED_HOSTS = ["*"]
        try:
            if cast_file.exists():
                cast = api_bench.Cast(**json.loads(cast_file.read_text()))
            else:
                cast, _ = api_bench.prepare(args.tickets, 42)
                cast_file.write_text(json.dumps(cast.__dict__))
            app = get_wsgi_application()
            auth = f"Bearer {cast.token}"
            categories = ["access", "email", "software", "hardware", "network"]
            create_bodies = [
                json.dumps(
                    {
                        "organization": org,
                        "subject": f"Benchmark ticket {i}: cannot open the shared mailbox",
                        "description": "Opened by bench/api_bench.py. " * 4,
                        "requester": email,
                        "category": categories[i % len(categories)],
                        "urgency": 1 + i % 3,
                    }
                ).encode()
                for i, (org, email) in enumerate(cast.requesters)
            ]
            bare_bodies = [json.dumps({"label": f"bench-{i}"}).encode() for i in range(16)]
            # warm up both, including the token's last-use write
            run(app, "/api/v1/tickets", create_bodies, auth, 50, "201")
            run(app, "/bench/bare-insert", bare_bodies, "", 50, "20")

            with CaptureQueriesContext(connection) as ctx:
                run(app, "/api/v1/tickets", create_bodies[1:2], auth, 1, "201")
            create_sql = [q["sql"] for q in ctx.captured_queries]
            with CaptureQueriesContext(connection) as ctx:
                run(app, "/bench/bare-insert", bare_bodies, "", 1, "20")
            bare_sql = [q["sql"] for q in ctx.captured_queries]

            per_round = max(1, args.n // args.rounds)
            create_times: list[float] = []
            bare_times: list[float] = []
            profiler = None
            if args.profile:
                import cProfile

                # CPU time, not wall time: waits on the database are not the cost sought here
                profiler = cProfile.Profile(time.process_time)
            bare_wall: list[float] = []
            create_wall: list[float] = []
            bare_backend: list[float] = []
            create_backend: list[float] = []
            for _ in range(args.rounds):
                bare_times += run(app, "/bench/bare-insert", bare_bodies, "", per_round, "20")
                bare_wall.append(WALL[-1])
                bare_backend.append(BACKEND[-1])
                if profiler:
                    profiler.enable()
                create_times += run(app, "/api/v1/tickets", create_bodies, auth, per_round, "201")
                if profiler:
                    profiler.disable()
                create_wall.append(WALL[-1])
                create_backend.append(BACKEND[-1])
            if profiler and args.profile:
                profiler.dump_stats(str(args.profile))

            db = connection.vendor
            create_ms = statistics.median(create_times) * 1000
            bare_ms = statistics.median(bare_times) * 1000
            print(f"database: {db}, {args.tickets:,} fixture tickets, {len(create_times)} creates")
            print(f"create CPU/request: {summary(create_times)}; queries {len(create_sql)}")
            print(f"bare   CPU/request: {summary(bare_times)}; queries {len(bare_sql)}")
            print(f"bare/create (median CPU): {bare_ms / create_ms:.3f}")
            print(
                f"wall per request: create {min(create_wall) * 1000:.3f} ms, "
                f"bare {min(bare_wall) * 1000:.3f} ms (best round)"
            )
            if db == "postgresql":
                create_be = statistics.fmean(create_backend) * 1000
                bare_be = statistics.fmean(bare_backend) * 1000
                print(
                    f"PostgreSQL backend CPU per request: create {create_be:.3f} ms, "
                    f"bare {bare_be:.3f} ms"
                )
                print(
                    f"with the backend: create {create_ms + create_be:.3f} ms, bare "
                    f"{bare_ms + bare_be:.3f} ms, bare/create "
                    f"{(bare_ms + bare_be) / (create_ms + create_be):.3f}"
                )
            if args.print_sql:
                for label, sqls in (("create", create_sql), ("bare", bare_sql)):
                    print(f"-- {label}: {len(sqls)} queries")
                    for q in sqls:
                        print(f"   {q[:300]}")
        finally:
            connections.close_all()
            if pg and not keep:
                api_bench.pg_drop(pg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
