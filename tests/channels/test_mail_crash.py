"""The crash test of email in: a worker process polling a real IMAP server (Dovecot) and
acknowledging over a real SMTP server (aiosmtpd) is killed with SIGKILL at each step —
fetched but not stored, stored but not flagged on the server, a ticket written but not
committed, committed, an acknowledgement taken by the mail server but not recorded —
again and again over a few hundred messages, and started again each time. At the end
every message has made exactly one ticket and every sender got exactly one
acknowledgement: none lost, none twice."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.channels.mails import mail
from tests.imap import imap_server
from tests.processes import django_eval, fresh_install
from tests.smtp import smtp_server

ROUNDS, PER_ROUND = 5, 40
MESSAGES = ROUNDS * PER_ROUND
# each step, and at most how many times a worker passes it before the kill (a chunk of
# messages is fetched at once, each is stored, processed and committed alone)
STAGES = {
    "imap.fetched": 2,
    "imap.stored": 15,
    "inbound.processing": 15,
    "inbound.processed": 15,
    "notify.sent": 5,  # an acknowledgement taken by the mail server, not yet recorded
}

SETUP = """
from tierdesk.core.services import organization_create
from tierdesk.channels import mailboxes
acme = organization_create(actor=None, code="ACME", name="Acme", email_domains=["acme.example"])
box = mailboxes.mailbox_create(
    actor=None, organization=acme, name="Support", address="support@acme.example",
    host="127.0.0.1", port=int(os.environ["IMAP_PORT"]), security="tls", username="crash@test",
    password=os.environ["IMAP_PASSWORD"], ca_certificate=os.environ["IMAP_CA"],
)
print(box.pk)
"""
POLL = """
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "tierdesk.settings"
django.setup()
from tierdesk.channels import mailboxes, notify
from tierdesk.channels.models import Notification
from tierdesk.core import clock
from tierdesk.core.outbox import relay
print(mailboxes.poll_all())
# the acknowledgements: each run comes minutes after the one before, so whatever a killed
# run had claimed is free again
Notification.objects.filter(status="pending").update(next_attempt_at=clock.now())
relay()
while notify.send_due():
    pass
"""
COUNT = """
from tierdesk.channels.models import InboundMessage, Notification
from tierdesk.tickets.models import Ticket
import json
print(json.dumps({
    "messages": list(InboundMessage.objects.values_list("status", flat=True)),
    "subjects": list(Ticket.objects.values_list("subject", flat=True)),
    "acknowledgements": list(Notification.objects.values_list("status", flat=True)),
}))
"""


def _poll(env: dict[str, str], fault: str | None) -> int:
    run_env = dict(env)
    run_env.pop("TIERDESK_FAULT", None)
    if fault:
        run_env["TIERDESK_FAULT"] = fault
    done = subprocess.run(
        [sys.executable, "-c", POLL], env=run_env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done.returncode


def test_killing_the_worker_at_every_step_loses_and_repeats_nothing(tmp_path: Path) -> None:
    chooser = random.Random(9)
    with (
        imap_server() as server,
        smtp_server() as outbox,
        fresh_install(tmp_path / "install") as env,
    ):
        env |= {
            "IMAP_PORT": str(server.imaps_port),
            "IMAP_PASSWORD": server.password,
            "IMAP_CA": server.ca_pem,
            "TIERDESK_EMAIL_HOST": "127.0.0.1",
            "TIERDESK_EMAIL_PORT": str(outbox.port),
            "TIERDESK_EMAIL_USE_TLS": "false",
            "TIERDESK_EMAIL_FROM": "desk@msp.example",
        }
        django_eval(env, SETUP)
        kills: Counter[str] = Counter()
        for round_ in range(ROUNDS):
            # a batch arrives; the worker is killed at each step in turn, at the n-th time
            # it passes it (n at random); then a run without a crash finishes the batch
            first = round_ * PER_ROUND
            server.deliver_many(
                "crash@test",
                [
                    mail(sender=f"user{i}@acme.example", subject=f"message {i}", text=f"b {i}")
                    for i in range(first, first + PER_ROUND)
                ],
            )
            for stage, most in STAGES.items():
                if _poll(env, f"{stage}:{chooser.randint(1, most)}") != 0:
                    kills[stage] += 1
            assert _poll(env, None) == 0
        assert _poll(env, None) == 0
        counted = json.loads(django_eval(env, COUNT))
        acknowledged = Counter(str(m["To"]) for m in outbox.messages)
    assert set(counted["messages"]) == {"processed"}, Counter(counted["messages"])
    assert len(counted["messages"]) == MESSAGES
    subjects = Counter(counted["subjects"])
    assert sorted(subjects) == sorted(f"message {i}" for i in range(MESSAGES)), "lost"
    assert max(subjects.values()) == 1, "duplicated"
    assert all(kills[s] >= 3 for s in STAGES), kills
    # each sender's acknowledgement went once at most: none twice, however the worker died
    assert max(acknowledged.values()) == 1
    assert set(counted["acknowledgements"]) <= {"sent", "skipped"}
    # skipped: only those a killed run had handed to the server (and so did arrive)
    assert len(acknowledged) == MESSAGES
