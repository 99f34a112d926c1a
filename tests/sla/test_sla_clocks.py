"""SLA clocks on tickets: started, paused, resumed, re-targeted, stopped, swept."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Api, Cast, make_ticket
from tierdesk.core import clock
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent
from tierdesk.escalation.models import Escalation, EscalationRule, Trigger
from tierdesk.sla import clocks
from tierdesk.sla.models import BusinessCalendar, SlaClock, SlaPolicy, SlaTarget
from tierdesk.sla.services import Target, calendar_create, sla_policy_create, sla_policy_update
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Ticket

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {d: [(8 * 60, 17 * 60)] for d in range(5)}  # Mon-Fri 08:00-17:00


def berlin(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN).astimezone(dt.UTC)


MONDAY_9 = berlin(2026, 11, 23, 9, 0)


@pytest.fixture
def calendar(cast: Cast) -> BusinessCalendar:
    return calendar_create(
        actor=None, name="berlin-office", title="Berlin office", time_zone="Europe/Berlin",
        hours=OFFICE,
    )  # fmt: skip


@pytest.fixture
def contract(cast: Cast, calendar: BusinessCalendar) -> SlaPolicy:
    return sla_policy_create(
        actor=None,
        name="ACME gold",
        organization=cast.acme,
        calendar=calendar,
        warning_percent=75,
        targets=[
            Target("P1", first_response_minutes=15, resolution_minutes=120),
            Target("P2", 60, 240, next_update_minutes=120),
            Target("P3", 120, 480),
        ],
    )


def p2_ticket(cast: Cast, at: dt.datetime) -> Ticket:
    with clock.frozen_at(at):
        return make_ticket(cast.lena, cast.acme, cast.alice, priority="P2")


def live(ticket: Ticket, kind: str) -> SlaClock:
    return SlaClock.objects.exclude(status="stopped").get(ticket=ticket, kind=kind)


def sweep_at(instant: dt.datetime) -> dict[str, int]:
    with clock.frozen_at(instant):
        return clocks.sweep()


def events(name: str) -> list[dict[str, Any]]:
    return [e.payload for e in OutboxEvent.objects.filter(name=name).order_by("id")]


def test_friday_1630_in_berlin_plus_four_business_hours_is_monday_1130(
    cast: Cast, contract: SlaPolicy
) -> None:
    ticket = p2_ticket(cast, berlin(2026, 11, 20, 16, 30))
    resolution = live(ticket, "resolution")
    assert resolution.due_at == berlin(2026, 11, 23, 11, 30)
    assert resolution.warn_at == berlin(2026, 11, 23, 10, 30)  # 75 % of 240 = 180 min
    assert live(ticket, "first_response").due_at == berlin(2026, 11, 23, 8, 30)
    assert resolution.next_check_at == resolution.warn_at


def test_no_policy_no_clocks_and_the_msp_default_applies_to_the_rest(
    cast: Cast, contract: SlaPolicy, calendar: BusinessCalendar
) -> None:
    with clock.frozen_at(MONDAY_9):
        gx = make_ticket(cast.gus, cast.globex, cast.gerd, priority="P2")
    assert not SlaClock.objects.filter(ticket=gx).exists()
    sla_policy_create(
        actor=None,
        name="default",
        calendar=calendar,
        targets=[Target("P2", 30, 600)],
    )
    with clock.frozen_at(MONDAY_9):
        gx = make_ticket(cast.gus, cast.globex, cast.gerd, priority="P2")
        acme = make_ticket(cast.lena, cast.acme, cast.alice, priority="P2")
    assert live(gx, "resolution").target_minutes == 600
    assert live(acme, "resolution").target_minutes == 240, "the organization's own wins"


def test_pending_pauses_and_resume_adds_exactly_the_paused_business_time(
    cast: Cast, contract: SlaPolicy
) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    assert live(ticket, "resolution").due_at == berlin(2026, 11, 23, 13, 0)
    with clock.frozen_at(berlin(2026, 11, 23, 10, 0)):
        tickets.ticket_transition(actor=cast.lena, ticket=ticket, to_status="pending_customer")
    paused = live(ticket, "resolution")
    assert (paused.status, paused.next_check_at) == ("paused", None)
    api = Api(cast.lena)
    with clock.frozen_at(berlin(2026, 11, 23, 14, 0)):
        shown = {c["kind"]: c for c in api.get(f"/tickets/{ticket.key}").json()["sla"]}
    assert shown["resolution"]["state"] == "paused"
    assert shown["resolution"]["business_seconds_left"] == 3 * 3600, "frozen while paused"
    # The requester answers at 15:00: five business hours paused.
    with clock.frozen_at(berlin(2026, 11, 23, 15, 0)):
        tickets.ticket_comment(actor=cast.alice, ticket=ticket, body="here you go")
    resumed = live(ticket, "resolution")
    assert resumed.status == "running"
    assert resumed.paused == dt.timedelta(hours=5)
    # 13:00 + 5 h of business time: 4 h until 17:00, then Tuesday 08:00 + 1 h.
    assert resumed.due_at == berlin(2026, 11, 24, 9, 0)


def test_a_priority_change_recomputes_the_due_instants(cast: Cast, contract: SlaPolicy) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 9, 30)):
        tickets.ticket_update(actor=cast.lena, ticket=ticket, priority="P1")
    assert live(ticket, "resolution").due_at == berlin(2026, 11, 23, 11, 0)
    assert live(ticket, "first_response").due_at == berlin(2026, 11, 23, 9, 15)


def test_a_policy_change_recomputes_live_clocks(cast: Cast, contract: SlaPolicy) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 10, 0)):
        sla_policy_update(
            actor=cast.admin,
            sla_policy=contract,
            targets=[Target("P2", 60, 480), Target("P3", 120, 960)],
        )
    assert live(ticket, "resolution").due_at == berlin(2026, 11, 23, 17, 0)


def test_warning_and_breach_are_sent_exactly_once(cast: Cast, contract: SlaPolicy) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    assert sweep_at(berlin(2026, 11, 23, 9, 40))["checked"] == 0
    # First response: warned at 09:45 (75 % of 60), breached at 10:00.
    assert sweep_at(berlin(2026, 11, 23, 9, 50))["warned"] == 1
    assert sweep_at(berlin(2026, 11, 23, 9, 55))["checked"] == 0
    assert sweep_at(berlin(2026, 11, 23, 10, 1))["breached"] == 1
    for _ in range(3):
        assert sweep_at(berlin(2026, 11, 23, 10, 2))["checked"] == 0
    # Resolution: warned at 12:00, breached at 13:00; one late sweep sends both, once.
    counts = sweep_at(berlin(2026, 11, 23, 16, 0))
    assert (counts["warned"], counts["breached"]) == (1, 1)
    assert sweep_at(berlin(2026, 11, 24, 16, 0))["checked"] == 0
    assert [e["kind"] for e in events("sla.warning")] == ["first_response", "resolution"]
    assert [e["kind"] for e in events("sla.breached")] == ["first_response", "resolution"]
    assert live(ticket, "resolution").breached_at == berlin(2026, 11, 23, 13, 0)
    assert live(ticket, "resolution").next_check_at is None


def test_a_public_reply_meets_the_first_response_and_starts_next_update(
    cast: Cast, contract: SlaPolicy
) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 9, 20)):
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="looking", internal=True)
    assert live(ticket, "first_response").status == "running", "internal notes are no reply"
    with clock.frozen_at(berlin(2026, 11, 23, 9, 30)):
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="On it.")
    fr = SlaClock.objects.get(ticket=ticket, kind="first_response")
    assert (fr.state, fr.stopped_at) == ("met", berlin(2026, 11, 23, 9, 30))
    assert live(ticket, "next_update").due_at == berlin(2026, 11, 23, 11, 30)
    with clock.frozen_at(berlin(2026, 11, 23, 11, 0)):
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Update: patching.")
    updates = SlaClock.objects.filter(ticket=ticket, kind="next_update").order_by("id")
    assert [u.state for u in updates] == ["met", "running"]
    assert updates[1].due_at == berlin(2026, 11, 23, 13, 0)


def test_resolving_late_records_the_breach_once(cast: Cast, contract: SlaPolicy) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 14, 0)):
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Fixed it, I think.")
        tickets.ticket_transition(
            actor=cast.lena,
            ticket=ticket,
            to_status="resolved",
            resolution_code="fixed",
            resolution_note="replaced the toner",
        )
    res = SlaClock.objects.get(ticket=ticket, kind="resolution")
    assert (res.state, res.breached_at) == ("breached", berlin(2026, 11, 23, 13, 0))
    assert sweep_at(berlin(2026, 11, 23, 15, 0))["checked"] == 0
    kinds = [e["kind"] for e in events("sla.breached")]
    assert kinds == ["first_response", "resolution"]


def test_reopening_resumes_the_resolution_clock_without_the_resolved_time(
    cast: Cast, contract: SlaPolicy
) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 10, 0)):
        tickets.ticket_transition(
            actor=cast.lena,
            ticket=ticket,
            to_status="resolved",
            resolution_code="fixed",
            resolution_note="rebooted",
        )
    assert SlaClock.objects.get(ticket=ticket, kind="resolution").state == "met"
    with clock.frozen_at(berlin(2026, 11, 23, 12, 0)):
        tickets.ticket_transition(actor=cast.alice, ticket=ticket, to_status="open")
    res = live(ticket, "resolution")
    assert res.paused == dt.timedelta(hours=2)
    assert res.due_at == berlin(2026, 11, 23, 15, 0)


def test_a_priority_changed_while_resolved_holds_when_reopened(
    cast: Cast, contract: SlaPolicy
) -> None:
    ticket = p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 10, 0)):
        tickets.ticket_transition(
            actor=cast.lena, ticket=ticket, to_status="resolved", resolution_code="fixed",
            resolution_note="rebooted",
        )  # fmt: skip
        tickets.ticket_update(actor=cast.lena, ticket=ticket, priority="P1")
    with clock.frozen_at(berlin(2026, 11, 23, 12, 0)):
        tickets.ticket_transition(actor=cast.alice, ticket=ticket, to_status="open")
    res = live(ticket, "resolution")
    # P1 resolves within 120 business minutes: 09:00 + 2 h + the 2 h it was resolved.
    assert res.target_minutes == 120
    assert res.due_at == berlin(2026, 11, 23, 13, 0)


def test_the_api_shows_clocks_and_filters_breached_and_breaching(
    cast: Cast, contract: SlaPolicy
) -> None:
    early = p2_ticket(cast, MONDAY_9)
    later = p2_ticket(cast, berlin(2026, 11, 23, 11, 0))
    sweep_at(berlin(2026, 11, 23, 10, 5))  # early's first response breached at 10:00
    api = Api(cast.lena)
    with clock.frozen_at(berlin(2026, 11, 23, 11, 30)):
        body = api.get(f"/tickets/{early.key}").json()
        breached = api.get("/tickets?breached=true").json()["items"]
        not_breached = api.get("/tickets?breached=false").json()["items"]
        soon = api.get("/tickets?breaching_within=45").json()["items"]
    states = {c["kind"]: c["state"] for c in body["sla"]}
    assert states == {"first_response": "breached", "resolution": "running"}
    fr = next(c for c in body["sla"] if c["kind"] == "first_response")
    assert fr["business_seconds_left"] == -90 * 60
    assert [t["key"] for t in breached] == [early.key]
    assert [t["key"] for t in not_breached] == [later.key]
    # later's first response is due at 12:00, within 45 minutes of 11:30.
    assert [t["key"] for t in soon] == [later.key]


def test_the_sweep_reads_only_what_is_due(cast: Cast, contract: SlaPolicy) -> None:
    for _ in range(25):
        p2_ticket(cast, MONDAY_9)
    with CaptureQueriesContext(connection) as ctx:
        assert sweep_at(berlin(2026, 11, 23, 9, 30))["checked"] == 0
    # Clear checks left on clocks that stopped meanwhile; select the due ones.
    assert len(ctx.captured_queries) == 2


def test_an_sla_percentage_rule_escalates_once(cast: Cast, contract: SlaPolicy) -> None:
    EscalationRule.objects.create(
        name="half the resolution time gone",
        trigger=Trigger.SLA_RESOLUTION_USED,
        percent=50,
        created_at=MONDAY_9,
        updated_at=MONDAY_9,
    )
    ticket = p2_ticket(cast, MONDAY_9)
    # The clock's first check is the rule's 50 % (11:00), before its 75 % warning (12:00).
    assert live(ticket, "resolution").next_check_at == berlin(2026, 11, 23, 11, 0)
    assert sweep_at(berlin(2026, 11, 23, 10, 59))["watched"] == 0
    assert sweep_at(berlin(2026, 11, 23, 11, 1))["watched"] == 1
    assert sweep_at(berlin(2026, 11, 23, 11, 30))["watched"] == 0
    ticket.refresh_from_db()
    assert ticket.tier.code == "L2"
    assert Escalation.objects.get(ticket=ticket).kind == "half the resolution time gone"


# --- policy validation ---------------------------------------------------------------------


def _count() -> tuple[int, int, int]:
    return SlaPolicy.objects.count(), SlaTarget.objects.count(), AuditEntry.objects.count()


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        ([], "targets"),
        ([Target("P2", 300, 240)], "targets.0.first_response_minutes"),
        ([Target("P2", 30, 240), Target("P2", 60, 480)], "targets.1.priority"),
        ([Target("P9", 30, 240)], "targets.0.priority"),
        ([Target("P2", 0, 240)], "targets.0.first_response_minutes"),
        ([Target("P2", 30, 240, next_update_minutes=0)], "targets.0.next_update_minutes"),
    ],
)
def test_bad_targets_are_refused_naming_the_field(
    cast: Cast, calendar: BusinessCalendar, targets: list[Target], field: str
) -> None:
    before = _count()
    with pytest.raises(ValidationFailed) as exc:
        sla_policy_create(
            actor=cast.admin, name="x", organization=cast.acme, calendar=calendar, targets=targets
        )
    assert exc.value.errors[0].field == field
    assert _count() == before


def test_policy_scope_calendar_and_one_active_policy(
    cast: Cast, contract: SlaPolicy, calendar: BusinessCalendar
) -> None:
    globex_calendar = calendar_create(
        actor=None, name="globex-only", title="G", time_zone="Europe/Berlin", hours=OFFICE,
        organization=cast.globex,
    )  # fmt: skip
    before = _count()
    cases: list[tuple[Any, dict[str, Any], type[Exception], str | None]] = [
        (cast.manager, {"organization": cast.acme, "calendar": globex_calendar}, ValidationFailed,
         "calendar"),
        (cast.manager, {"organization": cast.acme, "calendar": calendar}, ValidationFailed,
         "is_active"),
        (cast.manager, {"organization": cast.globex, "calendar": calendar}, ValidationFailed,
         "organization"),
        (cast.manager, {"organization": None, "calendar": calendar}, PermissionDenied, None),
        (cast.lena, {"organization": cast.acme, "calendar": calendar}, PermissionDenied, None),
    ]  # fmt: skip
    for who, kwargs, error, field in cases:
        with pytest.raises(error) as exc:
            sla_policy_create(actor=who, name="y", targets=[Target("P2", 30, 240)], **kwargs)
        if field:
            assert exc.value.errors[0].field == field  # type: ignore[attr-defined]
    assert _count() == before
    # Deactivated, the old contract makes room for a new one.
    sla_policy_update(actor=cast.manager, sla_policy=contract, is_active=False)
    sla_policy_create(
        actor=cast.manager,
        name="ACME platinum",
        organization=cast.acme,
        calendar=calendar,
        targets=[Target("P2", 30, 120)],
    )


def test_policies_through_the_api(cast: Cast, calendar: BusinessCalendar) -> None:
    api = Api(cast.manager)
    body = {
        "name": "ACME gold",
        "organization": "ACME",
        "calendar": "berlin-office",
        "targets": [{"priority": "P2", "first_response_minutes": 60, "resolution_minutes": 240}],
    }
    r = api.post("/sla-policies", body)
    assert r.status_code == 201, r.content
    policy_id = r.json()["id"]
    r = api.patch(f"/sla-policies/{policy_id}", {"warning_percent": 100})
    assert r.status_code == 422
    r = api.patch(f"/sla-policies/{policy_id}", {"warning_percent": 90})
    assert r.json()["warning_percent"] == 90
    assert Api(cast.gus).get(f"/sla-policies/{policy_id}").status_code == 404
    assert Api(cast.alice).get("/sla-policies").json() == []


def test_a_rule_added_later_is_checked_on_clocks_already_running(
    cast: Cast, contract: SlaPolicy
) -> None:
    from tierdesk.escalation.services import escalation_rule_create

    ticket = p2_ticket(cast, MONDAY_9)
    before = live(ticket, "resolution").next_check_at
    with clock.frozen_at(berlin(2026, 11, 23, 9, 30)):
        escalation_rule_create(
            actor=cast.admin, name="quarter gone", trigger="sla_resolution_used", percent=25
        )
    assert before == berlin(2026, 11, 23, 12, 0)
    assert live(ticket, "resolution").next_check_at == berlin(2026, 11, 23, 10, 0)
    assert sweep_at(berlin(2026, 11, 23, 10, 1))["watched"] == 1
    ticket.refresh_from_db()
    assert ticket.tier.code == "L2"


def test_the_cli_lists_policies_and_runs_the_sweep(cast: Cast, contract: SlaPolicy) -> None:
    import json

    from click.testing import CliRunner

    from tierdesk.cli import main

    run = CliRunner().invoke
    r = run(main, ["sla", "policies"], catch_exceptions=False)
    assert r.exit_code == 0
    assert "ACME gold [ACME] on berlin-office" in r.output
    assert "P2: respond 60, resolve 240, update 120" in r.output
    r = run(main, ["sla", "policies", "--as", cast.gus.email, "--json"], catch_exceptions=False)
    assert json.loads(r.output) == [], "GLOBEX's agent does not see ACME's contract"
    p2_ticket(cast, MONDAY_9)
    with clock.frozen_at(berlin(2026, 11, 23, 10, 1)):
        r = run(main, ["sla", "sweep", "--json"], catch_exceptions=False)
    assert json.loads(r.output)["breached"] == 1


def test_replying_after_a_long_pause_is_no_breach(cast: Cast, contract: SlaPolicy) -> None:
    ticket = p2_ticket(cast, MONDAY_9)  # first response due 10:00
    with clock.frozen_at(berlin(2026, 11, 23, 9, 10)):
        tickets.ticket_transition(actor=cast.lena, ticket=ticket, to_status="pending_customer")
    with clock.frozen_at(berlin(2026, 11, 23, 11, 0)):
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Any news?")
    fr = SlaClock.objects.get(ticket=ticket, kind="first_response")
    assert (fr.state, fr.breached_at) == ("met", None), "10 business minutes were used"
    assert fr.due_at == berlin(2026, 11, 23, 11, 50)
    assert events("sla.breached") == []


def test_a_tier_move_replans_the_percentages_its_rules_watch(
    cast: Cast, contract: SlaPolicy
) -> None:
    from tierdesk.escalation import services as escalation
    from tierdesk.tiers.services import tier_by_code

    EscalationRule.objects.create(
        name="L2 at half time goes to L3",
        trigger=Trigger.SLA_RESOLUTION_USED,
        percent=50,
        from_tier=tier_by_code("L2"),
        to_tier=tier_by_code("L3"),
        created_at=MONDAY_9,
        updated_at=MONDAY_9,
    )
    ticket = p2_ticket(cast, MONDAY_9)
    assert live(ticket, "resolution").next_check_at == berlin(2026, 11, 23, 12, 0), "L1: 75 %"
    with clock.frozen_at(berlin(2026, 11, 23, 9, 30)):
        escalation.escalate(actor=cast.lena, ticket=ticket, reason="r", handoff_note="h")
    assert live(ticket, "resolution").next_check_at == berlin(2026, 11, 23, 11, 0), "L2: 50 %"
    assert sweep_at(berlin(2026, 11, 23, 11, 1))["watched"] == 1
    ticket.refresh_from_db()
    assert ticket.tier.code == "L3"
