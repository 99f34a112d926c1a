"""The crash test of email in: a worker process polling a real IMAP server (Dovecot) is
killed with SIGKILL at each step of ingest — fetched but not stored, stored but not
flagged on the server, a ticket written but not committed, committed — again and again
over a few hundred messages, and started again each time. At the end every message has
made exactly one ticket: none lost, none twice."""

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

ROUNDS, PER_ROUND = 5, 40
MESSAGES = ROUNDS * PER_ROUND
# each step, and at most how many times a worker passes it before the kill (a chunk of
# messages is fetched at once, each is stored, processed and committed alone)
STAGES = {"imap.fetched": 2, "imap.stored": 15, "inbound.processing": 15, "inbound.processed": 15}

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
from tierdesk.channels import mailboxes
print(mailboxes.poll_all())
"""
COUNT = """
from tierdesk.channels.models import InboundMessage
from tierdesk.tickets.models import Ticket
import json
print(json.dumps({
    "messages": list(InboundMessage.objects.values_list("status", flat=True)),
    "subjects": list(Ticket.objects.values_list("subject", flat=True)),
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
    with imap_server() as server, fresh_install(tmp_path / "install") as env:
        env |= {
            "IMAP_PORT": str(server.imaps_port),
            "IMAP_PASSWORD": server.password,
            "IMAP_CA": server.ca_pem,
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
                    mail(sender=f"user{i % 25}@acme.example", subject=f"message {i}", text=f"b {i}")
                    for i in range(first, first + PER_ROUND)
                ],
            )
            for stage, most in STAGES.items():
                if _poll(env, f"{stage}:{chooser.randint(1, most)}") != 0:
                    kills[stage] += 1
            assert _poll(env, None) == 0
        assert _poll(env, None) == 0
        counted = json.loads(django_eval(env, COUNT))
    assert set(counted["messages"]) == {"processed"}, Counter(counted["messages"])
    assert len(counted["messages"]) == MESSAGES
    subjects = Counter(counted["subjects"])
    assert sorted(subjects) == sorted(f"message {i}" for i in range(MESSAGES)), "lost"
    assert max(subjects.values()) == 1, "duplicated"
    assert all(kills[s] >= 3 for s in STAGES), kills
