"""Manual and automatic escalation: records, validation, hooks, exactly-once rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.core import clock
from tierdesk.core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from tierdesk.core.models import OutboxEvent
from tierdesk.escalation import rules, services
from tierdesk.escalation.models import Escalation, EscalationFiring, EscalationRule, Trigger
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Ticket, TimelineEntry
from tierdesk.tiers.services import tier_by_code

T0 = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)


def rule(**kw: Any) -> EscalationRule:
    return EscalationRule.objects.create(created_at=T0, updated_at=T0, **kw)


def snapshot() -> tuple[int, ...]:
    return (
        Escalation.objects.count(),
        TimelineEntry.objects.count(),
        OutboxEvent.objects.count(),
        *Ticket.objects.order_by("pk").values_list("version", flat=True),
    )


def test_escalation_records_everything_kpis_need(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, assignee=cast.lena)
    with clock.frozen_at(T0):
        e = services.escalate(
            actor=cast.lena,
            ticket=ticket,
            reason="needs AD admin rights",
            handoff_note="reset password, checked lockout, replication healthy",
        )
    assert (e.from_tier.code, e.to_tier.code, e.direction, e.kind) == ("L1", "L2", "up", "manual")
    assert (e.reason, e.actor, e.at, e.organization) == (
        "needs AD admin rights",
        cast.lena,
        T0,
        cast.acme,
    )
    ticket.refresh_from_db()
    assert ticket.tier.code == "L2"
    assert ticket.tier_entered_at == T0
    assert ticket.assignee is None, "the L1 agent's ticket goes to the L2 queue"
    kinds = list(ticket.timeline.values_list("kind", flat=True))
    assert "escalated" in kinds
    entry = ticket.timeline.get(kind="escalated")
    assert "What was tried: reset password" in entry.new_value
    event = OutboxEvent.objects.get(name="ticket.escalated")
    assert event.payload["from_tier"] == "L1"
    assert event.payload["to_tier"] == "L2"


def test_escalation_to_a_chosen_higher_tier_and_to_an_agent(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    services.escalate(
        actor=cast.lena,
        ticket=ticket,
        to_tier=tier_by_code("L3"),
        reason="kernel bug",
        handoff_note="reproduced on two hosts",
    )
    ticket.refresh_from_db()
    assert ticket.tier.code == "L3"
    ticket2 = make_ticket(cast.lena, cast.acme, cast.alice)
    services.escalate(
        actor=cast.lena, ticket=ticket2, reason="r", handoff_note="h", assignee=cast.omar
    )
    ticket2.refresh_from_db()
    assert ticket2.assignee == cast.omar


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reason": "", "handoff_note": "tried x"}, "reason"),
        ({"reason": "   ", "handoff_note": "tried x"}, "reason"),
        ({"reason": "why", "handoff_note": ""}, "handoff_note"),
        ({"reason": "why", "handoff_note": "h", "to_tier": "L1"}, "tier"),
    ],
)
def test_escalation_without_reason_or_handoff_or_upward_target_is_refused(
    cast: Cast, kwargs: dict[str, Any], field: str
) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    if "to_tier" in kwargs:
        kwargs["to_tier"] = tier_by_code(kwargs["to_tier"])
    before = snapshot()
    with pytest.raises(ValidationFailed) as exc:
        services.escalate(actor=cast.lena, ticket=ticket, **kwargs)
    assert exc.value.errors[0].field == field
    assert snapshot() == before


def test_no_escalation_above_the_top_nor_de_escalation_below_l1(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    before = snapshot()
    with pytest.raises(ValidationFailed) as exc:
        services.de_escalate(actor=cast.lena, ticket=ticket, note="back")
    assert exc.value.errors[0].field == "tier"
    assert "lowest" in exc.value.detail
    top = make_ticket(cast.lena, cast.acme, cast.alice, tier=tier_by_code("L3"))
    before = snapshot()
    with pytest.raises(ValidationFailed) as exc:
        services.escalate(actor=cast.lena, ticket=top, reason="r", handoff_note="h")
    assert exc.value.errors[0].field == "tier"
    assert "highest" in exc.value.detail
    assert snapshot() == before


def test_de_escalation_needs_a_note_and_goes_down(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, tier=tier_by_code("L3"))
    with pytest.raises(ValidationFailed) as exc:
        services.de_escalate(actor=cast.omar, ticket=ticket, note="")
    assert exc.value.errors[0].field == "note"
    e = services.de_escalate(
        actor=cast.omar, ticket=ticket, note="patched; L1 to confirm with the user"
    )
    assert (e.from_tier.code, e.to_tier.code, e.direction) == ("L3", "L2", "down")
    e = services.de_escalate(
        actor=cast.omar, ticket=ticket, note="confirm", to_tier=tier_by_code("L1")
    )
    ticket.refresh_from_db()
    assert ticket.tier.code == "L1"
    assert OutboxEvent.objects.filter(name="ticket.de_escalated").count() == 2


def test_requesters_do_not_escalate_and_resolved_tickets_are_reopened_first(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    with pytest.raises(PermissionDenied):
        services.escalate(actor=cast.alice, ticket=ticket, reason="r", handoff_note="h")
    tickets.ticket_transition(
        actor=cast.lena,
        ticket=ticket,
        to_status="resolved",
        resolution_code="fixed",
        resolution_note="done",
    )
    with pytest.raises(InvalidTransition):
        services.escalate(actor=cast.lena, ticket=ticket, reason="r", handoff_note="h")


def test_hierarchical_escalation_notifies_the_tier_managers_serving_the_org(cast: Cast) -> None:
    l2 = tier_by_code("L2")
    l2.managers.set([cast.manager, cast.admin, cast.gus])  # gus does not serve ACME
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    e = services.escalate(
        actor=cast.lena, ticket=ticket, reason="VIP down", handoff_note="h", notify_managers=True
    )
    assert e.managers_notified
    event = OutboxEvent.objects.get(name="escalation.managers_notified")
    assert {m["email"] for m in event.payload["managers"]} == {
        cast.manager.email,
        cast.admin.email,
    }


def test_stale_version_is_refused(cast: Cast) -> None:
    from tierdesk.core.errors import PreconditionFailed

    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    with pytest.raises(PreconditionFailed):
        services.escalate(
            actor=cast.lena, ticket=ticket, reason="r", handoff_note="h", expected_version=7
        )


# --- automatic rules ---------------------------------------------------------------------


def test_p1_goes_straight_to_l2_on_intake(cast: Cast) -> None:
    rule(
        name="P1 straight to L2",
        trigger=Trigger.PRIORITY,
        priority="P1",
        to_tier=tier_by_code("L2"),
    )
    p1 = make_ticket(cast.lena, cast.acme, cast.alice, impact=1, urgency=1)
    assert p1.tier.code == "L2"
    assert p1.version == 2
    assert Ticket.objects.get(pk=p1.pk).tier.code == "L2"
    e = Escalation.objects.get(ticket=p1)
    assert e.kind == "P1 straight to L2"
    assert e.actor is None
    assert e.rule is not None
    p3 = make_ticket(cast.lena, cast.acme, cast.alice)
    assert p3.tier.code == "L1"


def test_reopened_n_times_escalates_once(cast: Cast) -> None:
    rule(name="reopened twice", trigger=Trigger.REOPENED, count=2)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)

    def resolve_and_reopen() -> None:
        tickets.ticket_transition(
            actor=cast.lena,
            ticket=ticket,
            to_status="resolved",
            resolution_code="fixed",
            resolution_note="done",
        )
        tickets.ticket_transition(actor=cast.alice, ticket=ticket, to_status="open")

    resolve_and_reopen()
    assert Escalation.objects.count() == 0
    resolve_and_reopen()
    ticket.refresh_from_db()
    assert ticket.tier.code == "L2"
    assert Escalation.objects.count() == 1
    # Back down, reopened a third time: the rule has fired for this ticket already.
    services.de_escalate(actor=cast.omar, ticket=ticket, note="back to L1")
    resolve_and_reopen()
    assert Escalation.objects.filter(direction="up").count() == 1


def test_time_in_tier_fires_once_per_ticket_and_only_past_the_threshold(cast: Cast) -> None:
    r = rule(
        name="P3 > 60 min in L1",
        trigger=Trigger.TIME_IN_TIER,
        priority="P3",
        from_tier=tier_by_code("L1"),
        minutes=60,
    )
    with clock.frozen_at(T0):
        old = make_ticket(cast.lena, cast.acme, cast.alice)
    with clock.frozen_at(T0 + dt.timedelta(minutes=30)):
        young = make_ticket(cast.lena, cast.acme, cast.alice)
        p1 = make_ticket(cast.lena, cast.acme, cast.alice, priority="P1")
    with clock.frozen_at(T0 + dt.timedelta(minutes=61)):
        assert rules.due_for(r, clock.now(), 100) == [old.pk]
        assert rules.sweep_time_in_tier() == 1
        assert rules.sweep_time_in_tier() == 0, "a second sweep finds it fired"
    old.refresh_from_db()
    assert old.tier.code == "L2"
    # De-escalated back, it sits in L1 again: still at most once per (rule, ticket).
    services.de_escalate(actor=cast.omar, ticket=old, note="wrong tier")
    with clock.frozen_at(T0 + dt.timedelta(minutes=200)):
        assert rules.sweep_time_in_tier() == 1  # `young` now, not `old` again
    young.refresh_from_db()
    p1.refresh_from_db()
    assert young.tier.code == "L2"
    assert p1.tier.code == "L1"
    assert EscalationFiring.objects.filter(rule=r).count() == 2


def test_firing_twice_for_one_ticket_is_refused_by_the_database(cast: Cast) -> None:
    r = rule(name="any", trigger=Trigger.TIME_IN_TIER, minutes=1)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    locked = tickets.lock(ticket, None)
    assert services.fire(r, locked, "first") is not None
    services.de_escalate(actor=cast.omar, ticket=locked, note="back")
    locked = tickets.lock(ticket, None)
    assert services.fire(r, locked, "second") is None
    assert Escalation.objects.filter(direction="up").count() == 1


# --- API -------------------------------------------------------------------------------------


def test_escalate_through_the_api(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    api = Api(cast.lena)
    r = api.post(f"/tickets/{ticket.key}/escalate", {"reason": "r", "handoff_note": "x"})
    assert r.status_code == 428, "a change needs the version it was based on"
    v1 = {"If-Match": '"v1"'}
    r = api.post(f"/tickets/{ticket.key}/escalate", {"reason": "", "handoff_note": "x"}, headers=v1)
    assert r.status_code == 422
    assert problem_fields(r) == ["reason"]
    r = api.post(
        f"/tickets/{ticket.key}/escalate",
        {"reason": "needs L2", "handoff_note": "rebooted"},
        headers={"If-Match": '"v1"'},
    )
    assert r.status_code == 200, r.content
    assert r.json()["tier"] == "L2"
    assert r["ETag"] == '"v2"'
    v2 = {"If-Match": '"v2"'}
    r = api.post(f"/tickets/{ticket.key}/de-escalate", {"note": "back", "tier": "L3"}, headers=v2)
    assert r.status_code == 422
    assert problem_fields(r) == ["tier"]
    r = api.post(f"/tickets/{ticket.key}/de-escalate", {"note": "back"}, headers=v2)
    assert r.status_code == 200
    assert r.json()["tier"] == "L1"
    staff = api.get(f"/tickets/{ticket.key}/escalations").json()
    assert [(e["from_tier"], e["to_tier"], e["direction"]) for e in staff] == [
        ("L1", "L2", "up"),
        ("L2", "L1", "down"),
    ]
    assert staff[0]["handoff_note"] == "rebooted"
    mine = Api(cast.alice).get(f"/tickets/{ticket.key}/escalations").json()
    assert mine[0]["handoff_note"] is None
    assert mine[0]["reason"] is None
    v3 = {"If-Match": '"v3"'}
    r = Api(cast.alice).post(
        f"/tickets/{ticket.key}/escalate", {"reason": "please", "handoff_note": "x"}, headers=v3
    )
    assert r.status_code == 403
    other = Api(cast.gus).post(
        f"/tickets/{ticket.key}/escalate", {"reason": "r", "handoff_note": "h"}, headers=v3
    )
    assert other.status_code == 404
