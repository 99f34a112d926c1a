"""Email ingest under a steady load (issue #9's targets: at least 20 messages/s sustained,
99th percentile time-to-ticket under 10 s).

A throwaway Dovecot on loopback (the tests' own, tests/imap.py) receives messages at a
steady rate for a while; the real worker (`tierdesk worker`, its mail tick polling every
TIERDESK_MAIL_POLL_SECONDS) takes them into a fresh installation. Each message's
time-to-ticket is its ticket's creation time minus the moment the IMAP server accepted it.

    .venv/bin/python bench/mail_bench.py --rate 25 --duration 120
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/mail_bench.py

With DATABASE_URL, a scratch database is made on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.channels.mails import mail  # noqa: E402 - after the path
from tests.imap import imap_server  # noqa: E402
from tests.processes import TIERDESK, django_eval, fresh_install  # noqa: E402

SETUP = """
from tierdesk.core.services import organization_create
from tierdesk.channels import mailboxes
acme = organization_create(actor=None, code="ACME", name="Acme", email_domains=["acme.example"])
mailboxes.mailbox_create(
    actor=None, organization=acme, name="Support", address="support@acme.example",
    host="127.0.0.1", port=int(os.environ["IMAP_PORT"]), security="tls", username="bench@test",
    password=os.environ["IMAP_PASSWORD"], ca_certificate=os.environ["IMAP_CA"],
)
"""
POLLED = """
from tierdesk.channels.models import Mailbox
print(Mailbox.objects.filter(last_polled_at__isnull=False).count())
"""
TICKETS = """
import json
from tierdesk.tickets.models import Ticket
rows = Ticket.objects.values_list("subject", "created_at")
print(json.dumps({s: c.timestamp() for s, c in rows}))
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=25.0, help="messages per second")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--senders", type=int, default=200, help="distinct requesters")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    with (
        imap_server() as server,
        fresh_install(Path(tempfile.mkdtemp(prefix="tierdesk-mailbench-"))) as env,
    ):
        env |= {
            "IMAP_PORT": str(server.imaps_port),
            "IMAP_PASSWORD": server.password,
            "IMAP_CA": server.ca_pem,
        }
        django_eval(env, SETUP)
        worker = subprocess.Popen(
            [TIERDESK, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            print("waiting for the worker's first mail tick (at the next minute)", flush=True)
            deadline = time.monotonic() + 90
            while django_eval(env, POLLED) == "0":
                assert time.monotonic() < deadline, "the worker never polled"
                assert worker.poll() is None, "the worker stopped"
                time.sleep(1)
            count = int(args.rate * args.duration)
            accepted: dict[str, float] = {}
            print(f"delivering {count} messages at {args.rate:g}/s", flush=True)
            started = time.monotonic()

            def deliver() -> None:
                client = server.client("bench@test")  # one connection, as an MTA keeps
                for i in range(count):
                    due = started + i / args.rate
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    raw = mail(
                        sender=f"user{i % args.senders}@acme.example",
                        subject=f"bench {i}",
                        text=f"Message {i}.\n\nThe printer on floor {i % 7} is out of toner.",
                    )
                    status, _ = client.append("INBOX", "", None, raw)
                    assert status == "OK"
                    accepted[f"bench {i}"] = time.time()
                client.logout()

            sender = threading.Thread(target=deliver)
            sender.start()
            sender.join()
            sent_for = time.monotonic() - started
            deadline = time.monotonic() + 180
            while True:
                created = json.loads(django_eval(env, TICKETS))
                if len(created) >= count or time.monotonic() > deadline:
                    break
                time.sleep(2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    latencies = [created[s] - accepted[s] for s in accepted if s in created]
    first, last = min(accepted.values()), max(created.values())
    windows: dict[int, int] = {}
    for stamp in created.values():
        windows[int((stamp - first) // 10)] = windows.get(int((stamp - first) // 10), 0) + 1
    figures = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "database": "PostgreSQL" if env.get("DATABASE_URL") else "SQLite",
        "offered_rate": args.rate,
        "sent": count,
        "sent_seconds": round(sent_for, 1),
        "tickets": len(latencies),
        "lost": count - len(latencies),
        "ingest_rate": round(len(latencies) / (last - first), 1),
        "ticket_rate_per_10s_window": [windows.get(i, 0) / 10 for i in range(max(windows) + 1)],
        "time_to_ticket_p50": round(statistics.median(latencies), 2),
        "time_to_ticket_p99": round(percentile(latencies, 0.99), 2),
        "time_to_ticket_max": round(max(latencies), 2),
    }
    for key, value in figures.items():
        print(f"{key:>28}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
