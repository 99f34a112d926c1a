"""The headline KPIs against a small history built by hand, with every expected figure
worked out below — on SQLite and on PostgreSQL.

The week of Monday 2026-03-02 to Friday 2026-03-06 at ACME (America/New_York; daylight
saving time starts on Sunday 03-08), on a Monday-Friday 09:00-17:00 calendar with a P3
target of 60 minutes to the first response and 480 (one business day) to resolution.
L1 agent Lena, L2 agent Omar, requester Alice. Times are New York's.

T10 Fri 02-27 10:00 created; resolved Mon 03-02 12:00, no reply    (before the period)
T9  Fri 02-27 11:00 created; never touched                            (before the period)
T1  Mon 10:00 created; Lena replies 10:30; resolved 11:00; rated 5
T2  Mon 10:00 created; Lena replies 10:20; Alice replies 10:40 and 11:00; resolved 12:00;
    rated 3
T3  Tue 09:00 created; escalated to L2 09:30; Omar replies 10:30 (response late);
    resolved 15:00 at L2
T4  Wed 09:00 created; Lena replies 09:20; escalated to L2 09:30; de-escalated to L1
    10:00; resolved 10:30 at L1
T5  Wed 09:00 created; resolved 09:30 (no reply); Alice reopens Thu 09:00; resolved 10:00
T6  Thu 09:00 created; escalated L1 -> L2 09:10, L2 -> L3 09:20; open, unanswered
T7  Fri 16:00 created; Lena replies 16:30; resolved Mon 03-09 10:00, after the change to
    daylight saving time (after the period)
T8  GLOBEX, Mon 10:00 created and 10:30 resolved by Gus (L1): another tenant
    + one deflection at ACME on Tuesday.
The SLA sweep runs on Friday 18:00.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from tests.conftest import Api, Cast, make_ticket
from tierdesk.core import clock
from tierdesk.core.errors import NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.outbox import relay
from tierdesk.escalation.services import de_escalate, escalate
from tierdesk.kb import services as kb_services
from tierdesk.reports import facts, queries
from tierdesk.reports.models import TicketFact
from tierdesk.sla import clocks as sla_clocks
from tierdesk.sla.models import BusinessCalendar, SlaPolicy
from tierdesk.sla.services import Target, calendar_create, calendar_update, sla_policy_create
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Ticket
from tierdesk.tiers import services as tiers_services
from tierdesk.tiers.services import tier_by_code

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
WEEK = {"first_day": dt.date(2026, 3, 2), "last_day": dt.date(2026, 3, 6)}


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)


class History:
    def __init__(self, cast: Cast) -> None:
        self.cast = cast
        self.t: dict[str, Ticket] = {}

    def do(self, when: dt.datetime, action: Any) -> Any:
        with clock.frozen_at(when.astimezone(dt.UTC)):
            return action()

    def create(self, name: str, when: dt.datetime, org: str = "acme") -> None:
        c = self.cast
        actor, requester = (c.lena, c.alice) if org == "acme" else (c.gus, c.gerd)
        self.t[name] = self.do(
            when,
            lambda: make_ticket(
                actor, getattr(c, org), requester, subject=f"{name} VPN", priority="P3"
            ),
        )

    def fresh(self, name: str) -> Ticket:
        self.t[name] = Ticket.objects.get(pk=self.t[name].pk)
        return self.t[name]

    def reply(self, name: str, when: dt.datetime, who: str) -> None:
        self.do(
            when,
            lambda: tickets.ticket_comment(
                actor=getattr(self.cast, who), ticket=self.fresh(name), body="Try this."
            ),
        )

    def resolve(self, name: str, when: dt.datetime, who: str = "lena") -> None:
        self.do(
            when,
            lambda: tickets.ticket_transition(
                actor=getattr(self.cast, who),
                ticket=self.fresh(name),
                to_status="resolved",
                resolution_code="fixed",
                resolution_note="Fixed.",
            ),
        )

    def escalate(self, name: str, when: dt.datetime, who: str, reason: str) -> None:
        self.do(
            when,
            lambda: escalate(
                actor=getattr(self.cast, who),
                ticket=self.fresh(name),
                reason=reason,
                handoff_note="Tried the usual.",
            ),
        )


@pytest.fixture
def week(cast: Cast) -> History:
    calendar = calendar_create(
        actor=None,
        name="ny-office",
        title="New York office hours",
        time_zone="America/New_York",
        hours={day: [(9 * 60, 17 * 60)] for day in range(5)},
    )
    sla_policy_create(
        actor=None,
        name="ACME standard",
        organization=cast.acme,
        calendar=calendar,
        targets=[Target("P3", 60, 480)],
    )
    h = History(cast)
    h.create("T10", at(2, 27, 10))
    h.create("T9", at(2, 27, 11))
    h.create("T1", at(3, 2, 10))
    h.create("T2", at(3, 2, 10))
    h.create("T8", at(3, 2, 10), org="globex")
    h.reply("T2", at(3, 2, 10, 20), "lena")
    h.reply("T1", at(3, 2, 10, 30), "lena")
    h.resolve("T8", at(3, 2, 10, 30), "gus")
    h.reply("T2", at(3, 2, 10, 40), "alice")
    h.resolve("T1", at(3, 2, 11))
    h.reply("T2", at(3, 2, 11), "alice")
    h.do(
        at(3, 2, 11, 30),
        lambda: tickets.ticket_rate(actor=cast.alice, ticket=h.fresh("T1"), score=5),
    )
    h.resolve("T10", at(3, 2, 12))
    h.resolve("T2", at(3, 2, 12))
    h.do(
        at(3, 2, 12, 30),
        lambda: tickets.ticket_rate(actor=cast.alice, ticket=h.fresh("T2"), score=3),
    )

    h.create("T3", at(3, 3, 9))
    h.escalate("T3", at(3, 3, 9, 30), "lena", "Needs server access")
    h.reply("T3", at(3, 3, 10, 30), "omar")
    h.resolve("T3", at(3, 3, 15), "omar")
    article = kb_services.article_create(
        actor=None, owner=cast.admin, title="VPN drops", body="Reconnect.", status="published",
        audience="public",
    )  # fmt: skip
    h.do(
        at(3, 3, 16),
        lambda: kb_services.deflection_record(actor=cast.alice, article=article, query="vpn"),
    )

    h.create("T4", at(3, 4, 9))
    h.create("T5", at(3, 4, 9))
    h.reply("T4", at(3, 4, 9, 20), "lena")
    h.escalate("T4", at(3, 4, 9, 30), "lena", "Needs server access")
    h.resolve("T5", at(3, 4, 9, 30))
    h.do(
        at(3, 4, 10),
        lambda: de_escalate(
            actor=cast.omar, ticket=h.fresh("T4"), note="L1 can confirm with the user."
        ),
    )
    h.resolve("T4", at(3, 4, 10, 30))

    h.do(
        at(3, 5, 9),
        lambda: tickets.ticket_transition(actor=cast.alice, ticket=h.fresh("T5"), to_status="open"),
    )
    h.create("T6", at(3, 5, 9))
    h.resolve("T5", at(3, 5, 10))
    h.escalate("T6", at(3, 5, 9, 10), "lena", "Server down")
    h.escalate("T6", at(3, 5, 9, 20), "omar", "Storage controller")

    h.create("T7", at(3, 6, 16))
    h.reply("T7", at(3, 6, 16, 30), "lena")
    h.do(at(3, 6, 18), sla_clocks.sweep)
    h.resolve("T7", at(3, 9, 10))

    relay()
    facts.refresh_stale()
    return h


def fact(h: History, name: str) -> TicketFact:
    return TicketFact.objects.get(ticket=h.t[name])


def test_each_tickets_facts(week: History) -> None:
    l1, l2, l3 = (tier_by_code(c) for c in ("L1", "L2", "L3"))
    t1 = fact(week, "T1")
    assert (t1.response_seconds, t1.response_business_seconds) == (1800, 1800)
    assert (t1.resolution_seconds, t1.resolution_business_seconds) == (3600, 3600)
    assert (t1.first_contact_resolution, t1.sla_response, t1.sla_resolution) == (
        True, "met", "met",
    )  # fmt: skip
    assert t1.csat_score == 5
    t2 = fact(week, "T2")
    assert (t2.requester_replies, t2.first_contact_resolution) == (2, False)
    t3 = fact(week, "T3")
    assert (t3.first_tier, t3.tier, t3.escalations, t3.sla_response) == (l1, l2, 1, "breached")
    assert t3.response_business_seconds == 90 * 60
    assert t3.resolution_business_seconds == 6 * 3600
    t4 = fact(week, "T4")
    assert (t4.tier, t4.escalations, t4.de_escalations) == (l1, 1, 1)
    assert t4.first_contact_resolution is False  # escalated, even if L1 resolved it
    t5 = fact(week, "T5")
    assert (t5.reopens, t5.resolved_at, t5.first_contact_resolution) == (
        1, at(3, 5, 10), False,
    )  # fmt: skip
    assert t5.first_response_at is None
    t6 = fact(week, "T6")
    assert (t6.tier, t6.is_open, t6.escalations, t6.automatic_escalations) == (l3, True, 2, 0)
    assert t6.tiers_visited == (1 << l1.level) | (1 << l2.level) | (1 << l3.level)
    assert t6.escalated_from == (1 << l1.level) | (1 << l2.level)
    assert (t6.sla_response, t6.sla_resolution) == ("breached", "breached")
    # Friday 16:00 EST to Monday 10:00 EDT: 65 hours of wall time (the clocks went forward
    # an hour), of which 16:00-17:00 on Friday and 09:00-10:00 on Monday are business time.
    t7 = fact(week, "T7")
    assert (t7.resolution_seconds, t7.resolution_business_seconds) == (65 * 3600, 2 * 3600)
    t10 = fact(week, "T10")
    assert (t10.first_contact_resolution, t10.requester_replies) == (True, 0)
    assert (t10.sla_response, t10.sla_resolution) == ("breached", "breached")


ACME_WEEK = {
    "created": 7,  # T1-T7
    "resolved": 6,  # T10, T1, T2, T3, T4, T5 (T7 on the Monday after)
    "fcr_rate": 2 / 6,  # T10, T1; T2 went back and forth, T3 T4 escalated, T5 reopened
    "l1_resolution_rate": 5 / 6,  # all but T3
    "escalation_rate_l1_l2": 3 / 7,  # T3, T4, T6 of the seven that started at L1
    "escalation_rate_l2_l3": 1 / 3,  # T6 of T3, T4, T6
    "reopen_rate": 1 / 6,  # T5
    "sla_response_compliance": 5 / 7,  # T3 answered late, T6 never
    "sla_resolution_compliance": 6 / 7,  # T6
    "backlog_open": 3,  # T9, T6 and T7 at Friday's end
    "csat_average": 4.0,  # 5 and 3
    "csat_responses": 2,
    "deflections": 1,
    "resolved_by_automation": 0,
}


def figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: pytest.approx(v) if isinstance(v, float) else v for k, v in summary.items()}


def test_the_summary_of_one_organization(week: History) -> None:
    got = queries.summary(actor=week.cast.manager, organization="acme", **WEEK)
    assert got == figures(
        ACME_WEEK
        | {
            "organization": "ACME",
            "from": WEEK["first_day"],
            "to": WEEK["last_day"],
            "time_zone": "America/New_York",
        }
    )


def test_all_organizations_are_those_the_reader_serves(week: History) -> None:
    cast = week.cast
    # The manager serves ACME only: GLOBEX's ticket is not theirs to count. Across several
    # organizations each counts its own days (no one time zone): the figures are ACME's.
    mine = queries.summary(actor=cast.manager, organization=None, **WEEK)
    assert mine == figures(
        ACME_WEEK
        | {"organization": None, "from": WEEK["first_day"], "to": WEEK["last_day"],
           "time_zone": None}
    )  # fmt: skip
    # Two more GLOBEX tickets half an hour into a Berlin day: Monday's (Sunday in UTC) is
    # the week's, Saturday's (Friday in UTC) is not.
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    week.create("G2", dt.datetime(2026, 3, 2, 0, 30, tzinfo=berlin), org="globex")
    week.create("G3", dt.datetime(2026, 3, 7, 0, 30, tzinfo=berlin), org="globex")
    relay()
    facts.refresh_stale()
    everything = queries.summary(actor=cast.admin, organization=None, **WEEK)
    assert (everything["created"], everything["resolved"]) == (9, 7)
    assert everything["fcr_rate"] == pytest.approx(3 / 7)  # T8 too
    assert everything["l1_resolution_rate"] == pytest.approx(6 / 7)
    with pytest.raises(NotFound):
        queries.summary(actor=cast.manager, organization="GLOBEX", **WEEK)
    with pytest.raises(PermissionDenied):
        queries.summary(actor=cast.lena, organization="ACME", **WEEK)
    with pytest.raises(ValidationFailed):
        queries.summary(
            actor=cast.admin, organization=None, first_day=dt.date(2026, 3, 7),
            last_day=dt.date(2026, 3, 6),
        )  # fmt: skip


def test_an_empty_period_has_no_rates(week: History) -> None:
    got = queries.summary(
        actor=week.cast.manager, organization="ACME", first_day=dt.date(2025, 1, 1),
        last_day=dt.date(2025, 1, 31),
    )  # fmt: skip
    assert (got["created"], got["resolved"], got["backlog_open"]) == (0, 0, 0)
    assert got["fcr_rate"] is None
    assert got["csat_average"] is None
    assert got["sla_response_compliance"] is None


def test_facts_follow_changes_and_a_rebuild_agrees(week: History) -> None:
    cast = week.cast
    week.resolve("T9", at(3, 10, 9))
    assert fact(week, "T9").is_open  # not yet: the relay and the worker have not run
    relay()
    assert facts.refresh_stale() == 1
    assert fact(week, "T9").resolved_at == at(3, 10, 9)

    def rows() -> list[dict[str, Any]]:
        return list(TicketFact.objects.order_by("ticket_id").values())

    before = [r | {"computed_at": None} for r in rows()]
    TicketFact.objects.all().delete()
    assert facts.rebuild() == Ticket.objects.count()
    assert [r | {"computed_at": None} for r in rows()] == before
    assert queries.summary(actor=cast.manager, organization="ACME", **WEEK)["created"] == 7


def test_the_api_gives_the_same_figures(week: History) -> None:
    api = Api(week.cast.manager)
    r = api.get("/reports/summary?organization=ACME&from=2026-03-02&to=2026-03-06")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body == figures(
        ACME_WEEK
        | {"organization": "ACME", "from": "2026-03-02", "to": "2026-03-06",
           "time_zone": "America/New_York"}
    )  # fmt: skip
    for query, status in (
        ("organization=GLOBEX", 404),
        ("from=2026-03-07&to=2026-03-06", 422),
        ("from=yesterday", 422),
        ("from=2020-01-01&to=2026-03-06", 422),
        ("organisation=ACME", 422),
    ):
        assert api.get(f"/reports/summary?{query}").status_code == status, query
    assert Api(week.cast.lena).get("/reports/summary").status_code == 403


def test_response_and_resolution_times(week: History) -> None:
    got = queries.times(actor=week.cast.manager, organization="ACME", **WEEK)
    (overall,) = got["groups"]
    # Answered, of those created in the week: T2 and T4 in 20 minutes, T1 and T7 in 30,
    # T3 in 90; all within opening hours, so business time is wall time.
    answered = {"count": 5, "mean": 2280, "median": 1800, "p90": 5400}
    assert overall["response"] == overall["response_business"] == answered
    # Resolved in the week, business time: T1 1 h, T4 1.5 h, T2 2 h, T3 6 h, T5 9 h (Wed
    # 09:00 to Thu 10:00, the reopened day included), T10 10 h (Fri 10:00-17:00 and Mon
    # 09:00-12:00). Wall time: T5 25 h, T10 74 h.
    assert overall["resolution_business"] == {
        "count": 6, "mean": 106200 / 6, "median": 14400, "p90": 36000,
    }  # fmt: skip
    assert overall["resolution"] == {
        "count": 6, "mean": 394200 / 6, "median": 14400, "p90": 74 * 3600,
    }  # fmt: skip
    by_tier = queries.times(actor=week.cast.manager, organization="ACME", by="tier", **WEEK)
    groups = {g["key"]: g for g in by_tier["groups"]}
    assert set(groups) == {"L1", "L2"}
    assert groups["L1"]["response"] == answered  # all started at L1
    assert groups["L1"]["resolution_business"] == {
        "count": 5, "mean": 84600 / 5, "median": 7200, "p90": 36000,
    }  # fmt: skip
    assert groups["L2"]["response"]["count"] == 0
    assert groups["L2"]["resolution_business"]["median"] == 6 * 3600
    with pytest.raises(ValidationFailed):
        queries.times(actor=week.cast.manager, organization="ACME", by="moon", **WEEK)


def test_reports_as_csv(week: History) -> None:
    api = Api(week.cast.manager)
    week_of = "organization=ACME&from=2026-03-02&to=2026-03-06"
    r = api.get(f"/reports/times?{week_of}&by=tier&format=csv")
    assert r.status_code == 200, r.content
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    lines = r.content.decode().splitlines()
    assert lines[0] == "tier,measure,count,mean_s,median_s,p90_s"
    assert "L2,resolution_business,1,21600.0,21600.0,21600.0" in lines
    assert "L2,response,0,,," in lines
    summary = api.get(f"/reports/summary?{week_of}&format=csv")
    assert "created,7" in summary.content.decode().splitlines()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralized() -> None:
    from tierdesk.api.reports import csv_cell

    for text in ("=HYPERLINK(1)", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
    assert csv_cell(-2) == -2  # numbers stay numbers
    assert csv_cell("Printer") == "Printer"
    assert csv_cell(None) == ""


def test_volume_per_day(week: History) -> None:
    got = queries.volume(actor=week.cast.manager, organization="ACME", **WEEK)
    rows = [(r["start"].day, r["created"], r["resolved"], r["closed"]) for r in got["rows"]]
    # Mon: T1 T2 created, T10 T1 T2 resolved; Tue: T3 both; Wed: T4 T5 created, T4
    # resolved (T5's last resolution is Thursday's); Thu: T6 created, T5 resolved; Fri: T7.
    assert rows == [(2, 2, 3, 0), (3, 1, 1, 0), (4, 2, 1, 0), (5, 1, 1, 0), (6, 1, 0, 0)]
    weekly = queries.volume(
        actor=week.cast.manager, organization="ACME", interval="week", by="tier", **WEEK
    )
    assert [(r["start"], r["key"], r["created"], r["resolved"]) for r in weekly["rows"]] == [
        (dt.date(2026, 3, 2), "L1", 7, 5),  # created by first tier; resolved by last
        (dt.date(2026, 3, 2), "L2", 0, 1),  # T3
    ]
    with pytest.raises(ValidationFailed):
        queries.volume(actor=week.cast.manager, organization="ACME", interval="hour", **WEEK)


def test_escalations_moves_and_reasons(week: History) -> None:
    got = queries.escalations(actor=week.cast.manager, organization="ACME", **WEEK)
    assert got["moves"] == [
        {"from": "L2", "to": "L1", "direction": "down", "manual": 1, "automatic": 0},  # T4
        {"from": "L1", "to": "L2", "direction": "up", "manual": 3, "automatic": 0},  # T3 T4 T6
        {"from": "L2", "to": "L3", "direction": "up", "manual": 1, "automatic": 0},  # T6
    ]
    assert got["top_reasons"] == [
        {"reason": "Needs server access", "automatic": False, "count": 2},
        {"reason": "Server down", "automatic": False, "count": 1},
        {"reason": "Storage controller", "automatic": False, "count": 1},
    ]


def test_backlog_by_tier_and_age_and_its_trend(week: History) -> None:
    with clock.frozen_at(at(3, 9, 12).astimezone(dt.UTC)):
        got = queries.backlog(actor=week.cast.manager, organization="ACME", **WEEK)
    # Open on Monday 03-09 at noon: T9 (L1, ten days old) and T6 (L3, four days).
    assert got["by_tier"] == [
        {"tier": "L1", "open": 1, "age": {"< 1 d": 0, "1-3 d": 0, "3-7 d": 0, "> 7 d": 1}},
        {"tier": "L3", "open": 1, "age": {"< 1 d": 0, "1-3 d": 0, "3-7 d": 1, "> 7 d": 0}},
    ]
    # Open at each day's end: T10 and T9 at the start; Mon -T10 (T1, T2 in and out): 1;
    # Tue T3 in and out: 1; Wed +T4 +T5 -T4: 2; Thu +T6 -T5: 2; Fri +T7: 3.
    assert [t["open"] for t in got["trend"]] == [1, 1, 2, 2, 3]
    assert (
        got["trend"][-1]["open"]
        == queries.summary(actor=week.cast.manager, organization="ACME", **WEEK)["backlog_open"]
    )


def test_satisfaction(week: History) -> None:
    got = queries.csat(actor=week.cast.manager, organization="ACME", **WEEK)
    assert (got["responses"], got["average"]) == (2, 4.0)
    assert got["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert got["response_rate"] == pytest.approx(2 / 6)  # T1 and T2 of six resolved


def test_every_report_endpoint_answers_json_and_csv(week: History) -> None:
    api = Api(week.cast.manager)
    week_of = "organization=ACME&from=2026-03-02&to=2026-03-06"
    for name, checks in {
        "volume": lambda b: [r["created"] for r in b["rows"]] == [2, 1, 2, 1, 1],
        "escalations": lambda b: len(b["moves"]) == 3,
        "backlog": lambda b: [t["open"] for t in b["trend"]] == [1, 1, 2, 2, 3],
        "csat": lambda b: b["distribution"]["5"] == 1,
        "sla": lambda b: b["breaches_total"] == 5 and len(b["breaches"]) == 5,
        "cost": lambda b: b["resolved"] == 6 and b["total"] is None,  # no costs configured
        "agents": lambda b: len(b["agents"]) == 3,
    }.items():
        r = api.get(f"/reports/{name}?{week_of}")
        assert r.status_code == 200, (name, r.content)
        assert checks(r.json()), (name, r.json())
        table = api.get(f"/reports/{name}?{week_of}&format=csv")
        assert table.status_code == 200, (name, table.content)
        assert table["Content-Type"].startswith("text/csv")
        assert len(table.content.decode().splitlines()) >= 2, name
    volume_csv = api.get(f"/reports/volume?{week_of}&format=csv").content.decode().splitlines()
    assert volume_csv[:2] == ["day,group,created,resolved,closed", "2026-03-02,all,2,3,0"]
    assert api.get(f"/reports/volume?{week_of}&interval=hour").status_code == 422
    assert api.get(f"/reports/volume?{week_of}&by=moon").status_code == 422


def test_the_published_contract_says_from_and_text_csv(cast: Cast) -> None:
    """Every report's OpenAPI answer names the first day "from" (as the JSON does) and says
    that format=csv answers text/csv."""
    doc = Api(cast.manager).get("/openapi.json").json()
    reports = {p: op["get"] for p, op in doc["paths"].items() if "/reports/" in p}
    assert len(reports) == 11
    for path, op in reports.items():
        content = op["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}, path
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        fields = doc["components"]["schemas"][ref]["properties"]
        assert "from" in fields, path
        assert "from_" not in fields, path


def test_sla_per_policy_and_the_breaches(week: History) -> None:
    got = queries.sla(actor=week.cast.manager, organization="ACME", **WEEK)
    assert got["policies"] == [
        {
            "policy": "ACME standard", "organization": "ACME",
            "policy_id": SlaPolicy.objects.get(name="ACME standard").pk,
            "response_met": 5, "response_breached": 2, "response_compliance": pytest.approx(5 / 7),
            "resolution_met": 6, "resolution_breached": 1,
            "resolution_compliance": pytest.approx(6 / 7),
        }
    ]  # fmt: skip
    # Breached in the week, at their due instants: T10's resolution (Fri 10:00 plus eight
    # business hours: Mon 10:00; its response was due the Friday before), T9's resolution
    # (Mon 11:00, never touched), T3's response (Tue 10:00), T6's response (Thu 10:00) and
    # resolution (Thu 17:00).
    key = {name: t.key for name, t in week.t.items()}
    assert [(b["ticket"], b["kind"], b["breached_at"]) for b in got["breaches"]] == [
        (key["T10"], "resolution", at(3, 2, 10)),
        (key["T9"], "resolution", at(3, 2, 11)),
        (key["T3"], "first_response", at(3, 3, 10)),
        (key["T6"], "first_response", at(3, 5, 10)),
        (key["T6"], "resolution", at(3, 5, 17)),
    ]
    assert got["breaches_total"] == 5


def test_cost_per_tier_and_the_saving_of_moving_work_down(week: History) -> None:
    admin = week.cast.admin
    for code, hourly, minutes in (("L1", 30, 20), ("L2", 60, 60), ("L3", 120, 120)):
        tiers_services.tier_update(
            actor=admin, tier=tier_by_code(code), hourly_cost=hourly, handling_minutes=minutes
        )
    got = queries.cost(actor=week.cast.manager, organization="ACME", shift_percent=50, **WEEK)
    # Resolved in the week: T10 T1 T2 T5 at L1 only, T3 and T4 through L1 and L2. A ticket
    # costs 10 at L1 (20 min at 30), 60 at L2, 240 at L3 (T6 was there but is not resolved).
    assert [(t["tier"], t["tickets"], t["cost_per_ticket"], t["cost"]) for t in got["tiers"]] == [
        ("L1", 6, 10.0, 60.0),
        ("L2", 2, 60.0, 120.0),
        ("L3", 0, 240.0, 0.0),
    ]
    assert (got["resolved"], got["total"], got["cost_per_resolved_ticket"]) == (6, 180.0, 30.0)
    # T3 was resolved in L2: half of it at L1's 10 instead of L2's 60 saves 25.
    assert (got["resolved_at_l2"], got["saving_if_shifted"]) == (1, 25.0)
    tiers_services.tier_update(actor=admin, tier=tier_by_code("L2"), hourly_cost=None)
    unset = queries.cost(actor=week.cast.manager, organization="ACME", **WEEK)
    assert unset["total"] is None
    assert unset["saving_if_shifted"] is None
    assert unset["tiers"][1]["cost"] is None
    api = Api(week.cast.manager)
    r = api.get("/reports/cost?organization=ACME&from=2026-03-02&to=2026-03-06&shift=150")
    assert r.status_code == 422
    admin_api = Api(admin)
    r = admin_api.patch("/tiers/L2", {"hourly_cost": 60, "handling_minutes": 0})
    assert r.status_code == 422
    assert "handling_minutes" in r.content.decode()
    r = admin_api.patch("/tiers/L2", {"hourly_cost": 70})
    assert (r.status_code, r.json()["hourly_cost"]) == (200, 70)
    r = admin_api.patch("/tiers/L2", {"hourly_cost": None})
    assert (r.status_code, r.json()["hourly_cost"]) == (200, None)


def test_workload_per_agent(week: History) -> None:
    cast = week.cast
    # Lena works 09:00-17:00 Monday to Friday: 40 hours in the week; an L1 ticket takes her
    # 20 minutes. Omar has no shifts.
    nine_to_five = [tiers_services.Shift(d, dt.time(9), dt.time(17)) for d in range(5)]
    tiers_services.agent_update(actor=cast.admin, user=cast.lena, shifts=nine_to_five)
    tiers_services.tier_update(
        actor=cast.admin, tier=tier_by_code("L1"), hourly_cost=30, handling_minutes=20
    )
    for name, who in (("T1", cast.lena), ("T2", cast.lena), ("T5", cast.lena), ("T6", cast.omar)):
        week.do(
            at(3, 9, 12),
            lambda name=name, who=who: tickets.ticket_update(
                actor=cast.manager, ticket=week.fresh(name), assignee=who
            ),
        )
    relay()
    facts.refresh_stale()
    got = queries.workload(actor=cast.manager, organization="ACME", **WEEK)
    rows = {r["agent"]: r for r in got["agents"]}
    # The manager's report names the staff serving ACME only: not Gus (GLOBEX), not the
    # admin or the outsider (no organizations).
    assert set(rows) == {"lena@msp.example", "manager@msp.example", "omar@msp.example"}
    lena, omar = rows["lena@msp.example"], rows["omar@msp.example"]
    # T1, T2 and T5, resolved in the week, are Lena's: three times 20 minutes of 40 hours.
    assert (lena["open_assigned"], lena["resolved"], lena["shift_hours"]) == (0, 3, 40.0)
    assert lena["utilization"] == pytest.approx(60 / (40 * 60))
    assert (omar["open_assigned"], omar["resolved"], omar["utilization"]) == (1, 0, None)


def test_what_changes_a_fact_after_the_week(week: History) -> None:
    """Each kind of later change reaches the facts through its own event: a rating, a
    calendar's new hours, a tier edited after the resolution, a merge."""
    cast = week.cast
    week.do(
        at(3, 10, 9),
        lambda: tickets.ticket_rate(actor=cast.alice, ticket=week.fresh("T3"), score=2),
    )
    # The office opens at 08:00 now: T7 (Fri 16:00 to Mon 10:00) took 1 + 2 business hours.
    calendar = BusinessCalendar.objects.get(name="ny-office")
    calendar_update(actor=None, calendar=calendar, hours={d: [(8 * 60, 17 * 60)] for d in range(5)})
    # T3 was resolved in L2; its tier is edited to L1 afterwards.
    week.do(
        at(3, 10, 9, 5),
        lambda: tickets.ticket_update(
            actor=cast.manager, ticket=week.fresh("T3"), tier=tier_by_code("L1")
        ),
    )
    # T11, opened on Tuesday, was the same problem as T1: merged into it.
    week.create("T11", at(3, 3, 11))
    week.do(
        at(3, 3, 11, 5),
        lambda: tickets.ticket_merge(
            actor=cast.lena, source=week.fresh("T11"), target=week.fresh("T1")
        ),
    )
    relay()
    facts.refresh_stale()
    assert fact(week, "T3").csat_score == 2
    assert fact(week, "T7").resolution_business_seconds == 3 * 3600
    t3 = fact(week, "T3")
    assert (t3.tier.code, t3.resolved_tier.code) == ("L1", "L2")  # type: ignore[union-attr]
    assert fact(week, "T11").duplicate
    got = queries.summary(actor=cast.manager, organization="ACME", **WEEK)
    # T11 counts as created, but its merge is not resolved work: still six resolved, with
    # the same first-contact and L1 figures; the tier edit changed neither.
    assert (got["created"], got["resolved"]) == (8, 6)
    assert got["fcr_rate"] == pytest.approx(2 / 6)
    assert got["l1_resolution_rate"] == pytest.approx(5 / 6)
    assert got["csat_responses"] == 2  # T3's rating came on 03-10, after the week


def test_hostile_text_in_a_csv_and_bad_days(week: History) -> None:
    cast = week.cast
    week.escalate("T9", at(3, 3, 12), "lena", '=HYPERLINK("http://evil.example","x")')
    api = Api(cast.manager)
    week_of = "organization=ACME&from=2026-03-02&to=2026-03-06"
    text = api.get(f"/reports/escalations?{week_of}&format=csv&table=reasons").content.decode()
    assert '"\'=HYPERLINK(""http://evil.example"",""x"")",False,1' in text.splitlines()
    trend = api.get(f"/reports/backlog?{week_of}&format=csv&table=trend").content.decode()
    assert trend.splitlines()[:2] == ["day,open", "2026-03-02,1"]
    for query in ("to=9999-12-31", "from=0", "from=1969-12-31", "to=2026-02-30", "table=x"):
        r = api.get(f"/reports/backlog?{query}")
        assert r.status_code == 422, (query, r.content)


def test_tier_levels_stay_within_what_the_facts_can_hold(cast: Cast) -> None:
    from tierdesk.reports.facts import _bits

    assert _bits([1, 62]) == (1 << 1) | (1 << 62)
    assert _bits([63, 100]) == 0  # left out, never an overflow
    r = Api(cast.admin).post("/tiers", {"code": "L9", "name": "Far", "level": 63})
    assert r.status_code == 422


def test_a_paused_clock_counts_for_the_sla_not_for_the_resolution_time(week: History) -> None:
    """T11 waits on its requester from Monday 10:30 to Wednesday 10:30 (New York). Its SLA
    resolution clock (8 business hours) is paused meanwhile: 1.5 h run, met. Its time to
    resolution is the whole of it in business hours: Monday 10-17, Tuesday 9-17, Wednesday
    9-11:30 = 17.5 h (docs/kpis.md: waiting is not taken out of the times)."""
    cast = week.cast
    week.create("T11", at(3, 16, 10))
    week.reply("T11", at(3, 16, 10, 20), "lena")
    week.do(at(3, 16, 10, 30), lambda: tickets.ticket_transition(
        actor=cast.lena, ticket=week.fresh("T11"), to_status="pending_customer"))  # fmt: skip
    week.do(at(3, 17, 12), sla_clocks.sweep)  # would breach it, were the clock running
    week.do(at(3, 18, 10, 30), lambda: tickets.ticket_transition(
        actor=cast.lena, ticket=week.fresh("T11"), to_status="open"))  # fmt: skip
    week.resolve("T11", at(3, 18, 11, 30))
    relay()
    facts.refresh_stale()
    f = fact(week, "T11")
    assert (f.sla_response, f.sla_resolution) == ("met", "met")
    assert f.response_business_seconds == 20 * 60
    assert f.resolution_business_seconds == int(17.5 * 3600)
    assert f.resolution_seconds == (48 + 1.5) * 3600
    days = {"first_day": dt.date(2026, 3, 16), "last_day": dt.date(2026, 3, 18)}
    got = queries.summary(actor=cast.manager, organization="ACME", **days)
    assert (got["created"], got["resolved"]) == (1, 1)
    assert got["sla_resolution_compliance"] == 1.0
    assert got["fcr_rate"] == 1.0  # the wait for the requester is no second contact
    median = queries.times(actor=cast.manager, organization="ACME", **days)["groups"][0]
    assert median["resolution_business"]["median"] == 17.5 * 3600
