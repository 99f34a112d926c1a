"""The real worker takes mail: `tierdesk worker` runs the mail tick against a Dovecot on
loopback, makes the ticket within seconds of the message's arrival, and stops promptly
when asked although the tick polls for most of its minute."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.channels.mails import mail
from tests.imap import imap_server
from tests.processes import TIERDESK, django_eval, fresh_install

SETUP = """
from tierdesk.core.services import organization_create
from tierdesk.channels import mailboxes
acme = organization_create(actor=None, code="ACME", name="Acme", email_domains=["acme.example"])
mailboxes.mailbox_create(
    actor=None, organization=acme, name="Support", address="support@acme.example",
    host="127.0.0.1", port=int(os.environ["IMAP_PORT"]), security="tls", username="w@test",
    password=os.environ["IMAP_PASSWORD"], ca_certificate=os.environ["IMAP_CA"],
)
"""
ENQUEUE = "from tierdesk.channels.tasks import mail_tick\nmail_tick()\nprint('queued')"
POLLED = (
    "from tierdesk.channels.models import Mailbox\n"
    "print(Mailbox.objects.filter(last_polled_at__isnull=False).count())"
)
TICKETS = "from tierdesk.tickets.models import Ticket\nprint(Ticket.objects.count())"


def _wait(env: dict[str, str], code: str, wanted: str, seconds: float) -> float:
    started = time.monotonic()
    while django_eval(env, code) != wanted:
        assert time.monotonic() - started < seconds, f"not {wanted} within {seconds} s"
        time.sleep(0.5)
    return time.monotonic() - started


def test_the_worker_takes_mail_and_stops_promptly(tmp_path: Path) -> None:
    with imap_server() as server, fresh_install(tmp_path / "install") as env:
        env |= {
            "IMAP_PORT": str(server.imaps_port),
            "IMAP_PASSWORD": server.password,
            "IMAP_CA": server.ca_pem,
            "TIERDESK_MAIL_POLL_SECONDS": "1",
        }
        django_eval(env, SETUP)
        assert django_eval(env, ENQUEUE) == "queued"  # as the scheduler does each minute
        worker = subprocess.Popen(
            [TIERDESK, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            _wait(env, POLLED, "1", 60)
            server.deliver("w@test", mail(subject="through the worker"))
            assert _wait(env, TICKETS, "1", 30) < 10
        finally:
            stopping = time.monotonic()
            worker.send_signal(signal.SIGINT)
            code = worker.wait(timeout=60)
        log = worker.stdout.read() if worker.stdout else ""
        assert code == 0, log
        # the tick had ~50 s of polling left: it ended after its round instead
        assert time.monotonic() - stopping < 15, log
