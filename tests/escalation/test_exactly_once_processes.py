"""Automatic escalation rules fire exactly once per ticket, proven with real OS processes
against a real, freshly migrated database (SQLite in a temporary data directory, or a
scratch PostgreSQL database when DATABASE_URL names a server — the PostgreSQL CI pass):

- two sweeping processes started at the same moment, racing over the same 200 tickets —
  for a time-in-tier rule (the escalation sweep) and for an SLA-percentage rule (the SLA
  sweep, which also raises each clock's breach exactly once);
- a sweeping process killed with SIGKILL part-way, then a restarted one finishing the job.

Nothing is mocked: the processes take real row locks (PostgreSQL) or the write lock
(SQLite, IMMEDIATE transactions) and meet the (rule, ticket) unique constraint for real.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.processes import django_eval, fresh_install, tierdesk

TICKETS = 200

PRELUDE = (
    "import django, os\n"
    "os.environ['DJANGO_SETTINGS_MODULE'] = 'tierdesk.settings'\n"
    "django.setup()\n"
)

# 200 open L1 tickets that entered their tier two hours ago, and one MSP-wide rule: an hour
# in L1 without resolution escalates to the next tier. Built through the services.
SEED = f"""
import datetime as dt
from tierdesk.core import clock
from tierdesk.core.services import organization_create, user_create
from tierdesk.escalation.services import escalation_rule_create
from tierdesk.tickets.services import ticket_create
from tierdesk.tiers.services import agent_create, tier_by_code

org = organization_create(actor=None, code="ACME", name="Acme", time_zone="UTC",
                          email_domains=["acme.example"])
admin = agent_create(actor=None, email="admin@msp.example", full_name="Admin", role="admin",
                     tier=tier_by_code("L3"), served_organizations=[])
alice = user_create(actor=None, email="alice@acme.example", full_name="Alice",
                    role="requester", organization=org)
escalation_rule_create(actor=admin, name="Stuck in L1", trigger="time_in_tier", minutes=60,
                       from_tier=tier_by_code("L1"))
with clock.frozen_at(clock.now() - dt.timedelta(hours=2)):
    for i in range({TICKETS}):
        ticket_create(actor=admin, organization=org, requester=alice, subject=f"stuck {{i}}",
                      priority="P3", tier=tier_by_code("L1"))
from tierdesk.tickets.models import Ticket
print(json.dumps(dict(Ticket.objects.values_list("pk", "version"))))
"""

# The same tickets held to an SLA instead: round the clock, P3 answered within 30 and
# resolved within 60 minutes, and a rule that escalates once half the resolution time is
# gone. Two hours on, every clock is breached and every ticket past the rule's 50 %.
SEED_SLA = SEED.replace(
    """escalation_rule_create(actor=admin, name="Stuck in L1", trigger="time_in_tier", minutes=60,
                       from_tier=tier_by_code("L1"))""",
    """from tierdesk.sla.services import Target, calendar_create, sla_policy_create
calendar = calendar_create(actor=None, name="always", title="24x7", time_zone="UTC",
                           always_open=True)
sla_policy_create(actor=None, name="default", calendar=calendar,
                  targets=[Target("P3", 30, 60)])
escalation_rule_create(actor=admin, name="Half the time gone", trigger="sla_resolution_used",
                       percent=50)""",
)
assert SEED_SLA != SEED

# A worker's sweep, in a loop: wait for the starting gun (a file), then sweep ``limit``
# tickets per rule at a time until nothing is due any more, printing each batch's count
# after its commit. The last line reports the total and when the process swept. A process
# that loses every race keeps sweeping too: it stops only when no ticket is left.
SWEEPER = """
import json, os, sys, time
from tierdesk.core import clock
from tierdesk.escalation.models import EscalationRule, Trigger
from tierdesk.escalation.rules import due_for, sweep_time_in_tier
from tierdesk.sla import clocks
from tierdesk.sla.models import SlaClock

def anything_due():
    if kind == "sla":
        return SlaClock.objects.filter(next_check_at__lte=clock.now()).exists()
    rules = EscalationRule.objects.filter(trigger=Trigger.TIME_IN_TIER, is_active=True)
    return any(due_for(r, clock.now(), 1) for r in rules.select_related("to_tier"))

def sweep(limit):
    if kind == "sla":  # the SLA sweep's watchers fire the rule: one per clock it passed
        return clocks.sweep(limit=limit)["watched"]
    return sweep_time_in_tier(limit=limit)

limit = int(sys.argv[1])
go = sys.argv[2]
kind = sys.argv[3]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.002)
start = time.monotonic()
total = sweeps = 0
while True:
    fired = sweep(limit)
    total += fired
    sweeps += 1
    print(f"fired {fired}", flush=True)
    if fired == 0 and not anything_due():
        break
print(json.dumps({"total": total, "sweeps": sweeps, "start": start, "end": time.monotonic()}),
      flush=True)
"""

CENSUS = """
from django.db.models import Count
from tierdesk.core.models import OutboxEvent
from tierdesk.escalation.models import Escalation, EscalationFiring
from tierdesk.tickets.models import Ticket, TimelineEntry

per_ticket = Escalation.objects.values("ticket").annotate(n=Count("id"))
print(json.dumps({
    "firings": EscalationFiring.objects.count(),
    "escalations": Escalation.objects.count(),
    "tickets_escalated": per_ticket.count(),
    "most_per_ticket": max((row["n"] for row in per_ticket), default=0),
    "events": OutboxEvent.objects.filter(name="ticket.escalated").count(),
    "timeline": TimelineEntry.objects.filter(kind="escalated").count(),
    "versions": dict(Ticket.objects.values_list("pk", "version")),
    "tiers": sorted(set(Ticket.objects.values_list("tier__code", flat=True))),
    "breaches": OutboxEvent.objects.filter(name="sla.breached").count(),
}))
"""


def _eval(env: dict[str, str], code: str) -> Any:
    return json.loads(django_eval(env, "import json\n" + code).splitlines()[-1])


def _sweeper(
    env: dict[str, str], limit: int, go: Path, kind: str = "time_in_tier"
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + SWEEPER, str(limit), str(go), kind],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], wanted: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == wanted, (line, proc.stderr.read() if proc.stderr else "")


def _assert_each_ticket_escalated_once(
    env: dict[str, str], versions_before: dict[str, int], breaches: int = 0
) -> None:
    census = _eval(env, CENSUS)
    assert census["breaches"] == breaches
    assert census["firings"] == TICKETS
    assert census["escalations"] == TICKETS
    assert census["tickets_escalated"] == TICKETS
    assert census["most_per_ticket"] == 1
    assert census["events"] == TICKETS
    assert census["timeline"] == TICKETS
    assert census["tiers"] == ["L2"], "each ticket went up one tier, not two"
    bumped = {pk: census["versions"][pk] - v for pk, v in versions_before.items()}
    assert set(bumped.values()) == {1}, "each ticket's version moved exactly once"


@pytest.mark.parametrize("kind", ["time_in_tier", "sla"])
def test_two_workers_sweeping_at_once_escalate_each_ticket_exactly_once(
    tmp_path: Path, kind: str
) -> None:
    """Runs against PostgreSQL in the PostgreSQL CI pass (real row locks between two server
    connections), and against SQLite otherwise."""
    with fresh_install(tmp_path) as env:
        versions = _eval(env, SEED_SLA if kind == "sla" else SEED)
        assert len(versions) == TICKETS
        go = tmp_path / "go"
        # Small batches so that both processes keep re-reading the due list and contend
        # for the same tickets all the way through.
        workers = [_sweeper(env, 10, go, kind), _sweeper(env, 10, go, kind)]
        try:
            for w in workers:
                _wait_for_line(w, "ready")  # both are set up and connected
            go.touch()
            outputs = [w.communicate(timeout=120) for w in workers]
        finally:
            for w in workers:
                if w.poll() is None:
                    w.kill()
        for w, (_out, err) in zip(workers, outputs, strict=True):
            assert w.returncode == 0, err
        reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        # They really ran at the same time: each started before the other finished.
        assert max(r["start"] for r in reports) < min(r["end"] for r in reports), reports
        assert sum(r["total"] for r in reports) == TICKETS, reports
        # Under an SLA, each ticket's two clocks (first response, resolution) breached once.
        _assert_each_ticket_escalated_once(env, versions, 2 * TICKETS if kind == "sla" else 0)
        # A third sweep afterwards finds nothing left to do.
        if kind == "sla":
            done = tierdesk(env, "sla", "sweep", "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["checked"] == 0
        else:
            done = tierdesk(env, "escalation", "sweep")
            assert (done.returncode, done.stdout.strip()) == (0, "fired 0"), done.stderr


def test_a_worker_killed_mid_sweep_and_restarted_escalates_each_ticket_exactly_once(
    tmp_path: Path,
) -> None:
    with fresh_install(tmp_path) as env:
        versions = _eval(env, SEED)
        go = tmp_path / "go"
        go.touch()
        # One ticket per sweep, so that the kill lands between or inside the per-ticket
        # transactions, never after the last one.
        first = _sweeper(env, 1, go)
        try:
            _wait_for_line(first, "ready")
            for _ in range(30):
                _wait_for_line(first, "fired 1")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        # At least the 30 it reported committed, perhaps one more; an escalation that was
        # in flight when it died rolled back as a whole with its firing row.
        fired_before = _eval(
            env,
            "from tierdesk.escalation.models import EscalationFiring, Escalation\n"
            "print(json.dumps([EscalationFiring.objects.count(), Escalation.objects.count()]))",
        )
        assert fired_before[0] == fired_before[1]
        assert 30 <= fired_before[0] < TICKETS
        # The restarted worker finishes the rest, and only the rest.
        restarted = tierdesk(env, "escalation", "sweep", "--json")
        assert restarted.returncode == 0, restarted.stderr
        assert json.loads(restarted.stdout) == {"fired": TICKETS - fired_before[0]}
        again = tierdesk(env, "escalation", "sweep")
        assert (again.returncode, again.stdout.strip()) == (0, "fired 0"), again.stderr
        _assert_each_ticket_escalated_once(env, versions)
