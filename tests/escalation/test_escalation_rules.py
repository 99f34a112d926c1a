"""Automatic escalation rules as configuration: services, /api/v1/escalation-rules and
`tierdesk escalation`. Who may change what: managers the rules of organizations they serve,
admins MSP-wide ones too; agents read; requesters see none; another tenant's rule is 404."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.cli import main
from tierdesk.core import clock
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent, User
from tierdesk.escalation import queries, services
from tierdesk.escalation.models import Escalation, EscalationRule
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.services import tier_by_code

ApiAs = Callable[[User | None], Api]
T0 = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)


def written() -> tuple[int, int, int]:
    return (
        EscalationRule.objects.count(),
        AuditEntry.objects.count(),
        OutboxEvent.objects.count(),
    )


def acme_rule(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Stuck in L1",
        "organization": "ACME",
        "trigger": "time_in_tier",
        "minutes": 120,
        "from_tier": "L1",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def globex_rule(cast: Cast) -> EscalationRule:
    return services.escalation_rule_create(
        actor=cast.admin,
        name="globex secret rule",
        organization=cast.globex,
        trigger="reopened",
        count=2,
    )


# --- services --------------------------------------------------------------------------------


def test_a_manager_adds_a_rule_for_a_client_with_audit_and_event(cast: Cast) -> None:
    with clock.frozen_at(T0):
        rule = services.escalation_rule_create(
            actor=cast.manager,
            name="  Stuck in L1 ",
            organization=cast.acme,
            trigger="time_in_tier",
            minutes=120,
            priority="P2",
            from_tier=tier_by_code("L1"),
        )
    assert (rule.name, rule.minutes, rule.priority, rule.created_at) == (
        "Stuck in L1",
        120,
        "P2",
        T0,
    )
    entry = AuditEntry.objects.get(action="escalation_rule.created")
    assert (entry.actor, entry.organization, entry.target_id) == (
        cast.manager,
        cast.acme,
        str(rule.pk),
    )
    assert entry.changes["from_tier"] == "L1"
    event = OutboxEvent.objects.get(name="escalation_rule.created")
    assert event.payload["id"] == rule.pk


def test_update_audits_old_and_new_and_does_nothing_when_nothing_changes(cast: Cast) -> None:
    rule = services.escalation_rule_create(
        actor=cast.manager, name="r", organization=cast.acme, trigger="reopened", count=2
    )
    services.escalation_rule_update(actor=cast.manager, rule=rule, count=3, is_active=False)
    entry = AuditEntry.objects.get(action="escalation_rule.updated")
    assert entry.changes == {
        "count": {"old": 2, "new": 3},
        "is_active": {"old": True, "new": False},
    }
    before = written()
    services.escalation_rule_update(actor=cast.manager, rule=rule, count=3)
    assert written() == before
    # Switching trigger takes the new trigger's parameter and drops the old one.
    services.escalation_rule_update(
        actor=cast.manager, rule=rule, trigger="time_in_tier", minutes=30, count=None
    )
    rule.refresh_from_db()
    assert (rule.trigger, rule.minutes, rule.count) == ("time_in_tier", 30, None)


def test_delete_keeps_the_escalations_it_made(cast: Cast) -> None:
    rule = services.escalation_rule_create(
        actor=cast.admin, name="P1 to L2", trigger="priority", priority="P1",
        to_tier=tier_by_code("L2"),
    )  # fmt: skip
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, priority="P1")
    escalation = Escalation.objects.get(ticket=ticket)
    services.escalation_rule_delete(actor=cast.admin, rule=rule)
    assert not EscalationRule.objects.exists()
    escalation.refresh_from_db()
    assert (escalation.kind, escalation.rule) == ("P1 to L2", None)
    assert AuditEntry.objects.filter(action="escalation_rule.deleted").count() == 1


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"name": ""}, "name", "1 to 100"),
        ({"name": "x" * 101}, "name", "1 to 100"),
        ({"trigger": "moon_phase"}, "trigger", "unknown"),
        ({"minutes": None}, "minutes", "required"),
        ({"minutes": 0}, "minutes", "1 to 525600"),
        ({"minutes": 525_601}, "minutes", "1 to 525600"),
        ({"percent": 50}, "percent", "only for the sla_resolution_used"),
        ({"trigger": "sla_resolution_used", "minutes": None}, "percent", "required"),
        ({"trigger": "sla_resolution_used", "minutes": None, "percent": 101}, "percent", "1 to"),
        ({"trigger": "reopened", "minutes": None, "count": 0}, "count", "1 to 100"),
        ({"trigger": "reopened", "minutes": None, "count": 101}, "count", "1 to 100"),
        ({"trigger": "reopened", "count": 2}, "minutes", "only for the time_in_tier"),
        ({"trigger": "priority", "minutes": None, "to_tier": "L2"}, "priority", "required"),
        ({"trigger": "priority", "minutes": None, "priority": "P1"}, "to_tier", "required"),
        ({"priority": "P9"}, "priority", "P1, P2"),
        # cyclic or contradictory: sideways, down, into the lowest tier, out of the top
        ({"from_tier": "L2", "to_tier": "L2"}, "to_tier", "cyclic"),
        ({"from_tier": "L3", "to_tier": "L2"}, "to_tier", "cyclic"),
        ({"to_tier": "L1"}, "to_tier", "lowest"),
        ({"from_tier": "L3"}, "from_tier", "highest"),
        ({"organization": "globex"}, "organization", "no such organization"),
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_write_nothing(
    cast: Cast, kwargs: dict[str, Any], field: str, words: str
) -> None:
    args: dict[str, Any] = {
        "name": "rule",
        "organization": cast.acme,
        "trigger": "time_in_tier",
        "minutes": 60,
    } | kwargs
    for tier_field in ("from_tier", "to_tier"):
        if tier_field in args:
            args[tier_field] = tier_by_code(args[tier_field])
    if args["organization"] == "globex":
        args["organization"] = cast.globex
    before = written()
    with pytest.raises(ValidationFailed) as exc:
        services.escalation_rule_create(actor=cast.manager, **args)
    assert [e.field for e in exc.value.errors] == [field]
    assert words in exc.value.detail
    assert written() == before


def test_updates_are_validated_too_and_write_nothing(cast: Cast) -> None:
    rule = services.escalation_rule_create(
        actor=cast.manager, name="r", organization=cast.acme, trigger="time_in_tier", minutes=5,
        from_tier=tier_by_code("L1"),
    )  # fmt: skip
    before = written()
    with pytest.raises(ValidationFailed) as exc:
        services.escalation_rule_update(actor=cast.manager, rule=rule, to_tier=tier_by_code("L1"))
    assert exc.value.errors[0].field == "to_tier"
    with pytest.raises(ValidationFailed) as exc:
        services.escalation_rule_update(actor=cast.manager, rule=rule, trigger="reopened")
    assert exc.value.errors[0].field == "minutes"
    assert written() == before
    rule.refresh_from_db()
    assert (rule.trigger, rule.to_tier) == ("time_in_tier", None)


def test_who_may_manage_which_rules(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        services.escalation_rule_create(
            actor=cast.manager, name="global", trigger="reopened", count=2
        )
    for who in (cast.lena, cast.omar, cast.alice):
        with pytest.raises(PermissionDenied):
            services.escalation_rule_create(
                actor=who, name="r", organization=cast.acme, trigger="reopened", count=2
            )
    shared = services.escalation_rule_create(
        actor=cast.admin, name="global", trigger="reopened", count=2
    )
    with pytest.raises(PermissionDenied):
        services.escalation_rule_update(actor=cast.manager, rule=shared, count=3)
    with pytest.raises(PermissionDenied):
        services.escalation_rule_delete(actor=cast.manager, rule=shared)
    assert EscalationRule.objects.get().count == 2


def test_queries_are_scoped_like_routing_rules(cast: Cast, globex_rule: EscalationRule) -> None:
    acme = services.escalation_rule_create(
        actor=cast.manager, name="acme", organization=cast.acme, trigger="reopened", count=2
    )
    shared = services.escalation_rule_create(
        actor=cast.admin, name="shared", trigger="reopened", count=3
    )

    def names(who: User) -> list[str]:
        return [r.name for r in queries.escalation_rule_list(actor=who)]

    assert names(cast.admin) == ["shared", "acme", "globex secret rule"]
    assert names(cast.manager) == names(cast.lena) == ["shared", "acme"]
    assert names(cast.omar) == ["shared", "acme", "globex secret rule"]
    assert names(cast.gus) == ["shared", "globex secret rule"]
    assert names(cast.alice) == names(cast.carol) == []
    assert names(cast.outsider) == ["shared"]
    assert queries.escalation_rule_get(actor=cast.lena, rule_id=acme.pk) == acme
    assert queries.escalation_rule_get(actor=cast.lena, rule_id=shared.pk) == shared


# --- API -------------------------------------------------------------------------------------


def test_create_list_get_patch_delete(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    created = api.post("/escalation-rules", acme_rule(to_tier="l3", priority="P2"))
    assert created.status_code == 201, created.content
    rule = created.json()
    assert {k: rule[k] for k in ("organization", "trigger", "minutes", "from_tier", "to_tier")} == {
        "organization": "ACME",
        "trigger": "time_in_tier",
        "minutes": 120,
        "from_tier": "L1",
        "to_tier": "L3",
    }
    assert (rule["priority"], rule["percent"], rule["count"]) == ("P2", None, None)
    path = f"/escalation-rules/{rule['id']}"
    assert [r["id"] for r in api.get("/escalation-rules").json()] == [rule["id"]]
    assert api.get(path).json() == rule
    patched = api.patch(path, {"minutes": 30, "to_tier": None, "priority": None})
    assert patched.status_code == 200, patched.content
    assert (patched.json()["minutes"], patched.json()["to_tier"]) == (30, None)
    assert patched.json()["priority"] is None
    assert AuditEntry.objects.get(action="escalation_rule.updated").changes == {
        "minutes": {"old": 120, "new": 30},
        "to_tier": {"old": "L3", "new": None},
        "priority": {"old": "P2", "new": None},
    }
    assert api.patch(path, {"name": None}).status_code == 422
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert list(
        AuditEntry.objects.filter(target_type="escalation_rule")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == ["escalation_rule.created", "escalation_rule.updated", "escalation_rule.deleted"]


def test_create_honours_idempotency_keys(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    first = api.post("/escalation-rules", acme_rule(), headers={"Idempotency-Key": "e-1"})
    again = api.post("/escalation-rules", acme_rule(), headers={"Idempotency-Key": "e-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert EscalationRule.objects.count() == 1
    other = api.post(
        "/escalation-rules", acme_rule(name="Other"), headers={"Idempotency-Key": "e-1"}
    )
    assert other.status_code == 409
    assert problem_fields(other) == ["Idempotency-Key"]


@pytest.mark.parametrize(
    ("who", "over", "status", "field"),
    [
        ("manager", {"trigger": "moon_phase"}, 422, "trigger"),
        ("manager", {"minutes": 0}, 422, "minutes"),
        ("manager", {"minutes": None}, 422, "minutes"),
        ("manager", {"count": 3}, 422, "count"),
        ("manager", {"to_tier": "L9"}, 422, "to_tier"),
        ("manager", {"from_tier": "L9"}, 422, "from_tier"),
        ("manager", {"from_tier": "L2", "to_tier": "L2"}, 422, "to_tier"),
        ("manager", {"from_tier": None, "to_tier": "L1"}, 422, "to_tier"),
        ("manager", {"trigger": "priority", "minutes": None, "to_tier": "L2"}, 422, "priority"),
        ("manager", {"trigger": "priority", "minutes": None, "priority": "P1"}, 422, "to_tier"),
        ("manager", {"priority": "P0"}, 422, "priority"),
        ("manager", {"organization": "GLOBEX"}, 422, "organization"),
        ("manager", {"organization": None}, 403, None),
        ("admin", {"organization": "NOPE"}, 422, "organization"),
        ("lena", {}, 403, None),
        ("alice", {}, 403, None),
        ("gerd", {}, 422, "organization"),
    ],
)
def test_refused_creates_answer_a_problem_naming_the_field_and_write_nothing(
    cast: Cast, api_as: ApiAs, who: str, over: dict[str, Any], status: int, field: str | None
) -> None:
    api = api_as(getattr(cast, who))
    before = written()
    response = api.post("/escalation-rules", acme_rule(**over))
    assert response.status_code == status, response.content
    fields = problem_fields(response)
    if field is not None:
        assert field in fields, response.content
    assert written() == before


@pytest.mark.parametrize("who", ["manager", "lena", "gus", "alice", "carol"])
def test_another_tenants_rule_is_not_found(
    cast: Cast, api_as: ApiAs, globex_rule: EscalationRule, who: str
) -> None:
    api = api_as(getattr(cast, who))
    path = f"/escalation-rules/{globex_rule.pk}"
    if who == "gus":  # gus serves GLOBEX: he reads it, but only managers change it
        assert api.get(path).status_code == 200
        assert api.patch(path, {"name": "mine"}).status_code == 403
        return
    before = written()
    for response in (api.get(path), api.patch(path, {"name": "mine"}), api.delete(path)):
        assert response.status_code == 404, (who, response.content)
        assert b"globex secret rule" not in response.content
    assert written() == before
    assert EscalationRule.objects.get(pk=globex_rule.pk).name == "globex secret rule"
    listed = api.get("/escalation-rules")
    assert listed.status_code == 200
    assert globex_rule.pk not in [r["id"] for r in listed.json()]


def test_unknown_ids_and_anonymous_callers(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    assert admin.get("/escalation-rules/999999").status_code == 404
    assert admin.get("/escalation-rules/0").status_code in (404, 422)
    anonymous = api_as(None)
    assert anonymous.get("/escalation-rules").status_code == 401
    assert anonymous.post("/escalation-rules", acme_rule()).status_code == 401
    assert not EscalationRule.objects.exists()


def test_a_rule_made_through_the_api_escalates_stuck_tickets(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    assert api.post("/escalation-rules", acme_rule(minutes=60)).status_code == 201
    with clock.frozen_at(T0):
        stuck = make_ticket(cast.lena, cast.acme, cast.alice)
        fresh = make_ticket(cast.lena, cast.acme, cast.alice)
    with clock.frozen_at(T0 + dt.timedelta(minutes=30)):
        fresh2 = make_ticket(cast.lena, cast.acme, cast.alice)
    del fresh
    with clock.frozen_at(T0 + dt.timedelta(minutes=61)):
        r = run("escalation", "sweep")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "fired 2"
    assert Ticket.objects.get(pk=stuck.pk).tier.code == "L2"
    assert Ticket.objects.get(pk=fresh2.pk).tier.code == "L1"
    with clock.frozen_at(T0 + dt.timedelta(minutes=200)):
        assert run("escalation", "sweep", "--json").output.strip() == '{\n  "fired": 1\n}'
        assert run("escalation", "sweep").output.strip() == "fired 0"


# --- CLI -------------------------------------------------------------------------------------


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_rule_add_and_rules_from_the_command_line(cast: Cast, globex_rule: EscalationRule) -> None:
    r = run(
        "escalation", "rule-add", "--as", cast.manager.email, "--name", "Stuck in L1",
        "--org", "acme", "--trigger", "time_in_tier", "--minutes", "240", "--priority", "P3",
        "--from-tier", "L1",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "created #" in r.output
    assert "Stuck in L1: time_in_tier 240 min P3 in L1 -> next tier" in r.output
    r = run(
        "escalation", "rule-add", "--as", cast.admin.email, "--name", "P1 straight to L2",
        "--trigger", "priority", "--priority", "P1", "--to-tier", "L2", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["organization"] is None
    r = run("escalation", "rules", "--as", cast.manager.email)
    assert r.exit_code == 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 2
    assert "[global] P1 straight to L2: priority P1 -> L2" in lines[0]
    assert "globex" not in r.output
    listed = json.loads(run("escalation", "rules", "--as", cast.omar.email, "--json").output)
    assert [x["name"] for x in listed] == ["P1 straight to L2", "Stuck in L1", globex_rule.name]
    assert run("escalation", "rules", "--as", cast.alice.email).output.strip() == (
        "no escalation rules"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "ACME", "--trigger", "time_in_tier"], "minutes: required"),
        (["--org", "ACME", "--trigger", "time_in_tier", "--minutes", "5", "--to-tier", "L1"],
         "to_tier: L1 is the lowest tier"),
        (["--org", "ACME", "--trigger", "reopened", "--count", "2", "--to-tier", "L7"],
         "to_tier: no tier 'L7'"),
        (["--org", "GLOBEX", "--trigger", "reopened", "--count", "2"], "organization"),
        (["--trigger", "reopened", "--count", "2"], "Only admins"),
    ],
)  # fmt: skip
def test_rule_add_refusals_print_one_line_and_write_nothing(
    cast: Cast, args: list[str], message: str
) -> None:
    before = written()
    r = run("escalation", "rule-add", "--as", cast.manager.email, "--name", "r", *args)
    assert r.exit_code == 1, r.output
    assert r.output.startswith("error: ")
    assert message in r.output
    assert written() == before
