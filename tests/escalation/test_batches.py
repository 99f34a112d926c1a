"""Sweeps work in batches: one transaction and a few statements for many tickets, with the
same outcome per ticket as one at a time, and one bad ticket never holding up the rest."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tierdesk.core import clock
from tierdesk.core.models import OutboxEvent
from tierdesk.escalation import rules, services
from tierdesk.escalation.models import Escalation, EscalationFiring, EscalationRule, Trigger
from tierdesk.sla import clocks
from tierdesk.sla.models import SlaClock
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Ticket, TimelineEntry
from tierdesk.tiers.services import tier_by_code, tier_update

T0 = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)  # a Monday


def rule(**kw: Any) -> EscalationRule:
    return EscalationRule.objects.create(created_at=T0, updated_at=T0, **kw)


@pytest.fixture
def around_the_clock(cast: Cast) -> None:
    calendar = calendar_create(
        actor=None, name="always", title="24x7", time_zone="UTC", always_open=True
    )
    sla_policy_create(
        actor=None, name="default", calendar=calendar, warning_percent=75,
        targets=[Target("P3", 60, 240)],
    )  # fmt: skip


def tickets_at(cast: Cast, n: int) -> list[Ticket]:
    with clock.frozen_at(T0):
        return [make_ticket(cast.lena, cast.acme, cast.alice, subject=f"t{i}") for i in range(n)]


def test_one_sla_sweep_escalates_many_tickets_once_each(cast: Cast, around_the_clock: None) -> None:
    r = rule(name="half the time gone", trigger=Trigger.SLA_RESOLUTION_USED, percent=50)
    made = tickets_at(cast, 7)
    versions = {t.pk: t.version for t in made}
    with clock.frozen_at(T0 + dt.timedelta(minutes=200)):  # 83 % of 240: warned, 50 % passed
        with CaptureQueriesContext(connection) as ctx:
            counts = clocks.sweep(batch=5)  # three batches: 5 + 5 + 4
        # First response (60 min) breached, resolution (240 min) warned and 50 % passed.
        assert counts == {
            "selected": 14, "checked": 14, "warned": 14, "breached": 7, "watched": 7
        }  # fmt: skip
        assert clocks.sweep()["checked"] == 0, "nothing left due"
    # A batch's statements do not grow with its size: three batches, not 14 clocks' worth.
    assert len(ctx.captured_queries) < 80
    for t in made:
        t.refresh_from_db()
        assert t.tier.code == "L2"
        assert t.version == versions[t.pk] + 1
        assert t.tier_entered_at == T0 + dt.timedelta(minutes=200)
    assert EscalationFiring.objects.filter(rule=r).count() == 7
    assert Escalation.objects.filter(rule=r, from_tier__code="L1", to_tier__code="L2").count() == 7
    names = Counter(OutboxEvent.objects.values_list("name", flat=True))
    assert names["sla.warning"] == 14
    assert names["sla.breached"] == 7
    assert names["ticket.escalated"] == 7
    escalated = TimelineEntry.objects.filter(kind="escalated")
    assert sorted(escalated.values_list("ticket_id", flat=True)) == sorted(versions)
    # The resolution clocks were replanned for L2 (no rule watches them there): no check left
    # but their due instant.
    for c in SlaClock.objects.filter(kind="resolution"):
        assert c.next_check_at == c.due_at


@pytest.fixture
def failing_watcher() -> Iterator[set[int]]:
    """A watcher that raises for the tickets in the set it yields."""
    bad: set[int] = set()

    def percents(cs: list[SlaClock]) -> list[list[int]]:
        return [[10] if c.kind == "resolution" else [] for c in cs]

    def reached(items: list[tuple[SlaClock, int]]) -> None:
        if any(c.ticket_id in bad for c, _ in items):
            raise RuntimeError("this one cannot be handled")

    clocks.watch(percents, reached)
    try:
        yield bad
    finally:
        clocks._watchers.pop()


def test_a_clock_that_fails_is_set_aside_and_the_others_are_handled(
    cast: Cast, around_the_clock: None, failing_watcher: set[int]
) -> None:
    made = tickets_at(cast, 4)
    failing_watcher.add(made[1].pk)
    at = T0 + dt.timedelta(minutes=200)
    with clock.frozen_at(at):
        counts = clocks.sweep()
    assert counts["checked"] == 7  # 4 first-response clocks and 3 of the 4 resolution ones
    assert SlaClock.objects.get(ticket=made[1], kind="first_response").breached_at is not None
    bad = SlaClock.objects.get(ticket=made[1], kind="resolution")
    assert bad.warned_at is None, "its batch was rolled back, not half written"
    assert bad.next_check_at == at + clocks.RETRY
    for t in (made[0], made[2], made[3]):
        assert SlaClock.objects.get(ticket=t, kind="resolution").warned_at == at
    assert not OutboxEvent.objects.filter(
        name="sla.warning", aggregate_id=str(made[1].pk), payload__kind="resolution"
    ).exists()
    failing_watcher.clear()
    with clock.frozen_at(at + clocks.RETRY):
        assert clocks.sweep()["checked"] >= 1  # looked at again later
    assert SlaClock.objects.get(pk=bad.pk).warned_at == at + clocks.RETRY


def test_a_time_in_tier_batch_spreads_tickets_like_one_at_a_time(cast: Cast) -> None:
    tier_update(actor=cast.admin, tier=tier_by_code("L2"), assignment_strategy="least_loaded")
    rule(
        name="an hour in L1", trigger=Trigger.TIME_IN_TIER, from_tier=tier_by_code("L1"), minutes=60
    )
    made = tickets_at(cast, 6)
    with clock.frozen_at(T0 + dt.timedelta(minutes=61)):
        assert rules.sweep_time_in_tier() == 6
        assert rules.sweep_time_in_tier() == 0
    loads = Counter(Ticket.objects.filter(pk__in=[t.pk for t in made]).values_list(
        "assignee__email", flat=True
    ))  # fmt: skip
    # The L2 agents serving ACME share the six: the picks made earlier in the same batch count.
    assert loads == {"manager@msp.example": 3, "omar@msp.example": 3}


def test_a_ticket_named_twice_in_a_batch_moves_once_per_rule_in_turn(cast: Cast) -> None:
    up = rule(name="next tier up", trigger=Trigger.TIME_IN_TIER, minutes=1)
    top = rule(name="to L3", trigger=Trigger.TIME_IN_TIER, to_tier=tier_by_code("L3"), minutes=1)
    ticket, other = tickets_at(cast, 2)
    with transaction.atomic():
        locked = tickets.lock_many([ticket.pk, other.pk])
        made = services.fire_all(
            [
                (up, locked[ticket.pk], "a"),
                (top, locked[ticket.pk], "b"),
                (up, locked[other.pk], "c"),
            ]
        )
    assert [(e.ticket_id, e.from_tier.code, e.to_tier.code) for e in made] == [
        (ticket.pk, "L1", "L2"), (other.pk, "L1", "L2"), (ticket.pk, "L2", "L3"),
    ]  # fmt: skip
    ticket.refresh_from_db()
    assert ticket.tier.code == "L3"
    assert ticket.version == 3


def test_a_batch_where_some_had_fired_escalates_only_the_others(cast: Cast) -> None:
    r = rule(name="any", trigger=Trigger.TIME_IN_TIER, minutes=1)
    first, second, third = tickets_at(cast, 3)
    EscalationFiring.objects.create(rule=r, ticket=second, fired_at=T0)
    with transaction.atomic():
        locked = tickets.lock_many([first.pk, second.pk, third.pk])
        made = services.fire_all([(r, t, "stuck") for t in locked.values()])
    assert sorted(e.ticket_id for e in made) == sorted([first.pk, third.pk])
    second.refresh_from_db()
    assert second.tier.code == "L1"
    assert EscalationFiring.objects.filter(rule=r).count() == 3
