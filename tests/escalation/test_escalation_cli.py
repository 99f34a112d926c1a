"""`tierdesk ticket escalate / de-escalate` and `tierdesk routing dry-run`, in-process."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from tests.conftest import Cast, make_ticket
from tierdesk.cli import main
from tierdesk.core import clock
from tierdesk.escalation.models import Escalation
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.models import RoutingRule
from tierdesk.tiers.services import tier_by_code


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_escalate_and_de_escalate_from_the_command_line(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    r = run("ticket", "escalate", ticket.key, "--as", cast.lena.email, "--reason", "needs L2")
    assert r.exit_code == 2
    assert "--handoff" in r.output
    r = run(
        "ticket", "escalate", ticket.key, "--as", cast.lena.email,
        "--reason", "needs L2", "--handoff", "rebooted twice", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out: dict[str, Any] = json.loads(r.output)
    assert out["tier"] == "L2"
    assert out["escalation_id"] == Escalation.objects.get().pk
    r = run("ticket", "escalate", ticket.key, "--as", cast.lena.email, "--to", "L1",
            "--reason", "x", "--handoff", "y")  # fmt: skip
    assert r.exit_code == 1
    assert "escalation goes up" in r.output
    r = run("ticket", "de-escalate", ticket.key, "--as", cast.omar.email, "--note", "back")
    assert r.exit_code == 0
    assert "L2 -> L1" in r.output
    r = run("ticket", "de-escalate", ticket.key, "--as", cast.omar.email, "--note", "again")
    assert r.exit_code == 1
    assert "lowest tier" in r.output
    assert Ticket.objects.get(pk=ticket.pk).tier.code == "L1"


def test_routing_dry_run_explains_and_writes_nothing(cast: Cast) -> None:
    now = clock.now()
    RoutingRule.objects.create(
        organization=cast.acme,
        name="VPN to L2",
        position=10,
        conditions={"keywords": ["vpn"]},
        set_tier=tier_by_code("L2"),
        created_at=now,
        updated_at=now,
    )
    before = Ticket.objects.count()
    args = ("routing", "dry-run", "--as", cast.lena.email, "--org", "ACME")
    r = run(*args, "--subject", "VPN drops every hour", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["matched_rule"] == "VPN to L2"
    assert out["tier"] == "L2"
    assert out["rules"][0]["checks"][0]["actual"] == ["vpn"]
    r = run(*args, "--subject", "Printer jam")
    assert r.exit_code == 0
    assert "no    #" in r.output
    assert "lowest tier routed to L1" in r.output
    r = run("routing", "dry-run", "--as", cast.alice.email, "--org", "ACME", "--subject", "x")
    assert r.exit_code == 1
    assert "only staff" in r.output
    r = run("routing", "dry-run", "--as", cast.gus.email, "--org", "ACME", "--subject", "x")
    assert r.exit_code == 1
    assert "no organization ACME" in r.output
    assert Ticket.objects.count() == before
    r = run("routing", "list", "--as", cast.lena.email)
    assert "VPN to L2" in r.output
