"""Webhook fan-out (issue #9's target: 1,000 events to 10 endpoints without starving the
other jobs).

A fresh installation with 10 MSP-wide webhooks, each on its own receiver on loopback
(answering after ``--latency`` ms; one of them after ``--slow`` ms, a slow endpoint), gets
1,000 tickets; the real worker (`tierdesk worker`) relays their events and sends the
10,000 deliveries. Printed: how long the fan-out took from the first delivery queued to
the last delivered, the delivery rate, and for the other periodic jobs of those minutes
(SLA, escalation, assignment, facts, notifications, mail) when each minute's run started.
Huey's scheduler enqueues periodic jobs every 60 s counted from the worker's start, not
at the turn of the minute, so every job starts the same number of seconds into its
minute; a starved job would start later and later than that, or skip minutes: printed
are each job's runs and the spread of its start offsets (latest minus earliest).

    .venv/bin/python bench/webhooks_bench.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/webhooks_bench.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import TIERDESK, django_eval, fresh_install  # noqa: E402

ENDPOINTS = 10
SETUP = """
import json
from tierdesk.core.services import organization_create, user_create
from tierdesk.channels import webhooks
from tierdesk.tickets.services import ticket_create
acme = organization_create(actor=None, code="ACME", name="Acme", email_domains=["acme.example"])
alice = user_create(actor=None, email="alice@acme.example", full_name="Alice",
                    role="requester", organization=acme)
for url in json.loads(os.environ["RECEIVERS"]):
    webhooks.webhook_create(actor=None, organization=None, url=url, events=["ticket.created"])
for i in range(int(os.environ["EVENTS"])):
    ticket_create(actor=alice, organization=acme, subject=f"fan-out {i}", requester=alice)
print("ok")
"""
STATE = """
import json
from django.db.models import Count, Max, Min
from tierdesk.channels.models import WebhookDelivery
from tierdesk.core.models import JobTick
d = WebhookDelivery.objects.aggregate(
    n=Count("id"), queued=Min("created_at"), last=Max("delivered_at"))
done = WebhookDelivery.objects.filter(status="delivered").count()
ticks = [(t.job, t.tick.timestamp(), t.claimed_at.timestamp())
         for t in JobTick.objects.order_by("tick")]
print(json.dumps({"queued": d["n"], "delivered": done,
                  "first_queued": d["queued"].timestamp() if d["queued"] else None,
                  "last_delivered": d["last"].timestamp() if d["last"] else None,
                  "ticks": ticks}))
"""


class Receiver:
    def __init__(self, delay: float) -> None:
        self.count = 0
        self.last = 0.0  # when its last delivery arrived (time.time())
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                receiver.count += 1
                receiver.last = time.time()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=20, help="ms per answer")
    parser.add_argument("--slow", type=float, default=2000, help="ms per answer, one endpoint")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    receivers = [Receiver(args.latency / 1000) for _ in range(ENDPOINTS - 1)]
    receivers.append(Receiver(args.slow / 1000))
    with fresh_install(Path(tempfile.mkdtemp(prefix="tierdesk-hookbench-"))) as env:
        env |= {
            "TIERDESK_OUTBOUND_ALLOW_LOOPBACK": "1",
            "RECEIVERS": json.dumps([r.url for r in receivers]),
            "EVENTS": str(args.events),
        }
        print(f"making {args.events} tickets and {ENDPOINTS} webhooks", flush=True)
        django_eval(env, SETUP)
        worker = subprocess.Popen(
            [TIERDESK, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        started = time.time()
        wanted = args.events * ENDPOINTS
        try:
            while True:
                state = json.loads(django_eval(env, STATE))
                if state["delivered"] >= wanted:
                    break
                assert worker.poll() is None, "the worker stopped"
                assert time.time() - started < 900, f"not done in 15 minutes: {state}"
                time.sleep(3)
            time.sleep(65)  # one more minute of the other jobs' runs, after the fan-out
            state = json.loads(django_eval(env, STATE))
        finally:
            worker.terminate()
            worker.wait(timeout=90)
    took = state["last_delivered"] - state["first_queued"]
    window = (state["first_queued"] - 60, state["last_delivered"] + 60)
    late: dict[str, list[float]] = {}
    for job, tick, claimed in state["ticks"]:
        if window[0] <= tick <= window[1] and job not in ("webhooks", "outbox_relay"):
            late.setdefault(job, []).append(round(claimed - tick, 1))
    minutes = int((window[1] - window[0]) // 60)
    figures = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "database": "PostgreSQL" if env.get("DATABASE_URL") else "SQLite",
        "deliveries": state["delivered"],
        "received": sum(r.count for r in receivers),
        "fan_out_seconds": round(took, 1),
        "fast_endpoints_done_after_seconds": round(
            max(r.last for r in receivers[:-1]) - state["first_queued"], 1
        ),
        "slow_endpoint_done_after_seconds": round(receivers[-1].last - state["first_queued"], 1),
        "deliveries_per_second": round(state["delivered"] / took, 1),
        "minutes_observed": minutes,
        "other_jobs_start_offset_seconds": {job: min(d) for job, d in sorted(late.items())},
        "other_jobs_start_spread_seconds": {
            job: round(max(d) - min(d), 1) for job, d in sorted(late.items())
        },
        "other_jobs_runs": {job: len(d) for job, d in sorted(late.items())},
    }
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
