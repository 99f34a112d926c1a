"""Assignment: which agent of a tier gets a new ticket, by the tier's strategy and the
agents' shifts in their own time zones; and the worker's assign_waiting()."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction

from tests.conftest import Cast, make_ticket
from tierdesk.core import clock, config
from tierdesk.core.models import Organization, OutboxEvent, User
from tierdesk.tickets import services
from tierdesk.tickets.models import Ticket, TimelineEntry
from tierdesk.tiers.models import AgentProfile, Category, Tier
from tierdesk.tiers.services import Shift, agent_create, skills_by_slug, tier_by_code

UTC = dt.UTC
# Tuesday 2026-11-24 23:00 UTC = Wednesday 10:00 in Sydney (AEDT, +11) = Tuesday 18:00 in
# New York (EST, -5) = Wednesday 00:00 in Berlin (CET, +1).
INSTANT = dt.datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
OFFICE = [Shift(d, dt.time(9), dt.time(17)) for d in range(5)]  # Mon-Fri 09-17


def set_strategy(code: str, strategy: str) -> Tier:
    Tier.objects.filter(code=code).update(assignment_strategy=strategy)
    config.changed()  # an update() bypasses the signals that keep the caches honest
    return tier_by_code(code)


def agent(
    name: str,
    tier: str,
    serves: Iterable[Organization],
    *,
    time_zone: str = "UTC",
    shifts: Iterable[Shift] = (),
    skills: Iterable[str] = (),
) -> User:
    return agent_create(
        actor=None,
        email=f"{name}@msp.example",
        full_name=name.title(),
        role="agent",
        tier=tier_by_code(tier),
        served_organizations=list(serves),
        time_zone=time_zone,
        shifts=list(shifts),
        skills=skills_by_slug(skills),
    )


def cat(slug: str) -> Category:
    return Category.objects.get(slug=slug, organization__isnull=True)


def at(hours: float) -> dt.datetime:
    return INSTANT + dt.timedelta(hours=hours)


# --- strategies ------------------------------------------------------------------------------


def test_round_robin_rotates(cast: Cast) -> None:
    set_strategy("L1", "round_robin")
    ann = agent("ann", "L1", [cast.acme])
    ben = agent("ben", "L1", [cast.acme])
    got = []
    for i in range(5):
        with clock.frozen_at(at(i / 60)):
            got.append(make_ticket(cast.alice, cast.acme).assignee)
    # never assigned first (in profile order), then whoever waited longest
    assert got == [cast.lena, ann, ben, cast.lena, ann]
    entry = TimelineEntry.objects.filter(kind="assigned").order_by("id").first()
    assert entry is not None
    assert entry.field == "assignee"
    assert entry.new_value == "lena@msp.example (round-robin)"
    assert AgentProfile.objects.get(user=ann).last_assigned_at == at(4 / 60)


def test_least_loaded_picks_fewest_open_tickets(cast: Cast) -> None:
    ann = agent("ann", "L1", [cast.acme])
    ben = agent("ben", "L1", [cast.acme])
    for who, n in ((cast.lena, 2), (ann, 1), (ben, 3)):
        for _ in range(n):
            make_ticket(cast.lena, cast.acme, cast.alice, assignee=who)
    # resolved tickets are no load: resolve two of ben's three
    for ticket in Ticket.objects.filter(assignee=ben)[:2]:
        services.ticket_transition(
            actor=cast.lena, ticket=ticket, to_status="resolved",
            resolution_code="fixed", resolution_note="done",
        )  # fmt: skip
    set_strategy("L1", "least_loaded")
    first = make_ticket(cast.alice, cast.acme)
    assert first.assignee == ann or first.assignee == ben  # both have one open ticket
    # ties go by round-robin order: ann (earlier profile) first, never assigned
    assert first.assignee == ann
    second = make_ticket(cast.alice, cast.acme)
    assert second.assignee == ben  # ann now has 2, ben 1
    assert TimelineEntry.objects.get(ticket=second, kind="assigned").new_value == (
        "ben@msp.example (least loaded)"
    )


def test_skill_match_picks_the_agent_with_the_required_skills(cast: Cast) -> None:
    set_strategy("L2", "skill_match")
    netty = agent("netty", "L2", [cast.acme], skills=["network"])
    # netty is busier than omar and the manager, and still gets the network ticket
    for _ in range(3):
        make_ticket(cast.lena, cast.acme, cast.alice, assignee=netty)
    ticket = make_ticket(cast.alice, cast.acme, category=cat("network"))
    assert (ticket.tier.code, ticket.assignee) == ("L2", netty)
    # without the skill in demand, load decides among everyone of L2 serving ACME
    other = make_ticket(cast.alice, cast.acme, category=cat("backup"))
    assert other.assignee in (cast.manager, cast.omar)


def test_skill_match_prefers_more_matching_skills(cast: Cast) -> None:
    set_strategy("L1", "skill_match")
    category = Category.objects.get(slug="email", organization__isnull=True)
    category.required_skills.set(skills_by_slug(["email", "accounts"]))
    agent("half", "L1", [cast.acme], skills=["email"])
    full = agent("full", "L1", [cast.acme], skills=["accounts", "email", "hardware"])
    assert make_ticket(cast.alice, cast.acme, category=category).assignee == full


def test_only_agents_of_the_tier_serving_the_organization_are_candidates(cast: Cast) -> None:
    set_strategy("L1", "round_robin")
    set_strategy("L2", "round_robin")
    gone = agent("gone", "L1", [cast.acme])
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    acme = [make_ticket(cast.alice, cast.acme).assignee for _ in range(3)]
    assert set(acme) == {cast.lena}  # not gus (GLOBEX), outsider (nobody), gone (inactive)
    globex = [make_ticket(cast.gerd, cast.globex).assignee for _ in range(2)]
    assert set(globex) == {cast.gus}
    # L2 for GLOBEX: omar serves it, the manager does not
    ticket = make_ticket(cast.gerd, cast.globex, category=cat("network"))
    assert ticket.assignee == cast.omar


def test_a_tier_with_nobody_serving_the_organization_leaves_it_unassigned(cast: Cast) -> None:
    set_strategy("L3", "round_robin")
    # nobody of L3 serves ACME (the admin serves no organization explicitly)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, tier=tier_by_code("L3"))
    assert ticket.assignee is None


def test_manual_tier_never_auto_assigns(cast: Cast) -> None:
    assert tier_by_code("L1").assignment_strategy == "manual"  # the default
    ticket = make_ticket(cast.alice, cast.acme)
    assert ticket.assignee is None
    assert not TimelineEntry.objects.filter(kind="assigned").exists()
    assert services.assign_waiting() == 0
    ticket.refresh_from_db()
    assert ticket.assignee is None


# --- shifts and time zones -------------------------------------------------------------------


def test_shifts_are_read_in_the_agents_own_time_zone(cast: Cast) -> None:
    set_strategy("L1", "round_robin")
    # lena gets hours too (Tokyo: 08:00 Wednesday at INSTANT, 23:00 later), so only shifts decide
    services_shift_for(cast.lena, "Asia/Tokyo", OFFICE)
    sydney = agent("sydney", "L1", [cast.acme], time_zone="Australia/Sydney", shifts=OFFICE)
    newyork = agent("newyork", "L1", [cast.acme], time_zone="America/New_York", shifts=OFFICE)
    assert INSTANT.astimezone(ZoneInfo("Australia/Sydney")).hour == 10
    assert INSTANT.astimezone(ZoneInfo("America/New_York")).hour == 18
    with clock.frozen_at(INSTANT):
        tickets = [make_ticket(cast.alice, cast.acme) for _ in range(3)]
    assert {t.assignee for t in tickets} == {sydney}
    # 15 hours later: Wednesday 09:00 in New York, Thursday 01:00 in Sydney
    with clock.frozen_at(at(15)):
        later = make_ticket(cast.alice, cast.acme)
    assert later.assignee == newyork


def services_shift_for(user: User, time_zone: str, shifts: list[Shift]) -> None:
    from tierdesk.tiers.services import agent_update

    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    admin = User.objects.get(email="admin@msp.example")
    agent_update(actor=admin, user=user, shifts=shifts)


def test_the_weekday_is_the_agents_local_weekday(cast: Cast) -> None:
    set_strategy("L1", "round_robin")
    services_shift_for(cast.lena, "UTC", [Shift(0, dt.time(0), dt.time(0, 1))])  # never now
    # Only on Wednesdays; at INSTANT it is still Tuesday in UTC but Wednesday in Sydney
    wed = agent(
        "wed", "L1", [cast.acme], time_zone="Australia/Sydney",
        shifts=[Shift(2, dt.time(8), dt.time(12))],
    )  # fmt: skip
    with clock.frozen_at(INSTANT):
        assert make_ticket(cast.alice, cast.acme).assignee == wed


def test_nobody_on_shift_leaves_it_waiting_until_assign_waiting(cast: Cast) -> None:
    set_strategy("L1", "least_loaded")
    services_shift_for(cast.lena, "America/New_York", OFFICE)
    with clock.frozen_at(INSTANT):  # 18:00 in New York: lena is off
        ticket = make_ticket(cast.alice, cast.acme)
        assert ticket.assignee is None
        assert services.assign_waiting() == 0
    assert not TimelineEntry.objects.filter(ticket=ticket, kind="assigned").exists()
    assert not OutboxEvent.objects.filter(name="ticket.assigned").exists()
    with clock.frozen_at(at(14.5)):  # Wednesday 08:30 in New York: still off
        assert services.assign_waiting() == 0
    with clock.frozen_at(at(15)):  # 09:00: the shift starts
        assert services.assign_waiting() == 1
        assert services.assign_waiting() == 0  # done once
    ticket.refresh_from_db()
    assert ticket.assignee == cast.lena
    entry = TimelineEntry.objects.get(ticket=ticket, kind="assigned")
    assert entry.at == at(15)
    assert "lena@msp.example" in entry.new_value
    event = OutboxEvent.objects.get(name="ticket.assigned")
    assert event.aggregate_id == str(ticket.pk)
    assert event.organization_id == cast.acme.pk
    assert event.payload["assignee_id"] == cast.lena.pk
    assert ticket.version == event.payload["version"]


def test_assign_waiting_hands_out_most_urgent_first_and_round_robin(cast: Cast) -> None:
    set_strategy("L1", "round_robin")
    services_shift_for(cast.lena, "America/New_York", OFFICE)
    ann = agent("ann", "L1", [cast.acme], time_zone="America/New_York", shifts=OFFICE)
    with clock.frozen_at(INSTANT):
        low = make_ticket(cast.lena, cast.acme, cast.alice, impact=3, urgency=3)
        high = make_ticket(cast.lena, cast.acme, cast.alice, impact=1, urgency=1)
        resolved = make_ticket(cast.lena, cast.acme, cast.alice)
        services.ticket_transition(
            actor=cast.lena, ticket=resolved, to_status="resolved",
            resolution_code="fixed", resolution_note="done",
        )  # fmt: skip
    assert {t.assignee for t in (low, high)} == {None}
    with clock.frozen_at(at(15)):
        assert services.assign_waiting() == 2
    high.refresh_from_db()
    low.refresh_from_db()
    resolved.refresh_from_db()
    assert high.assignee == cast.lena  # first in rotation, most urgent ticket
    assert low.assignee == ann
    assert resolved.assignee is None


def test_an_agent_without_working_hours_is_always_available(cast: Cast) -> None:
    set_strategy("L1", "round_robin")
    assert not AgentProfile.objects.get(user=cast.lena).hours.exists()
    sunday_3am = dt.datetime(2026, 11, 29, 3, 0, tzinfo=ZoneInfo("America/New_York"))
    with clock.frozen_at(sunday_3am):
        assert make_ticket(cast.alice, cast.acme).assignee == cast.lena


def test_move_tier_lets_the_new_tiers_strategy_pick(cast: Cast) -> None:
    set_strategy("L2", "round_robin")
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, assignee=cast.lena)
    with transaction.atomic():
        locked = services.lock(ticket, None)
        entries = services.move_tiers(
            [services.TierMove(locked, tier_by_code("L2"), "escalated", "L2", actor=cast.lena)]
        )
    ticket.refresh_from_db()
    assert ticket.tier.code == "L2"
    assert ticket.assignee in (cast.manager, cast.omar)
    assert [e.kind for e in entries] == ["escalated", "assigned"]


@pytest.mark.parametrize("strategy", ["round_robin", "least_loaded", "skill_match"])
def test_every_strategy_assigns_someone_on_create(cast: Cast, strategy: str) -> None:
    set_strategy("L1", strategy)
    ticket = make_ticket(cast.alice, cast.acme, category=cat("hardware"))
    assert ticket.assignee == cast.lena
    assert TimelineEntry.objects.filter(ticket=ticket, kind="assigned").count() == 1
