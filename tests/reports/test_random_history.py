"""A random (seeded, so the same every run) month of tickets at two organizations six hours
apart (New York and Berlin): created at any hour, answered, escalated, resolved, reopened,
resolved again, rated. Every figure read from the rollups equals the number of tickets the
drill-down lists for it, which plain filters over the facts find: one independent
computation checking the other, for several periods, one organization and all."""

from __future__ import annotations

import datetime as dt
import random

from tests.conftest import Cast
from tests.reports.test_summary import History
from tierdesk.core.models import Organization
from tierdesk.core.outbox import relay
from tierdesk.reports import facts, queries, rollups
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as tickets

SEED = 20261124
START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def history(cast: Cast) -> History:
    rng = random.Random(SEED)
    calendar = calendar_create(
        actor=None, name="ny", title="New York", time_zone="America/New_York",
        hours={day: [(9 * 60, 17 * 60)] for day in range(5)},
    )  # fmt: skip
    targets = [Target(p, 60, 8 * 60) for p in ("P1", "P2", "P3", "P4")]
    sla_policy_create(actor=None, name="ACME", organization=cast.acme, calendar=calendar,
                      targets=targets)  # fmt: skip
    h = History(cast)
    for i in range(60):
        org = rng.choice(("acme", "globex"))
        staff, requester = ("lena", "alice") if org == "acme" else ("gus", "gerd")
        name = f"R{i}"
        when = START + dt.timedelta(minutes=rng.randrange(0, 24 * 60 * 28))
        h.create(name, when, org)

        def later(hours: float = 30) -> dt.datetime:
            nonlocal when
            when += dt.timedelta(minutes=rng.randrange(5, int(hours * 60)))
            return when

        if rng.random() < 0.7:
            h.reply(name, later(6), staff)
        resolver = staff
        if org == "acme" and rng.random() < 0.35:
            h.escalate(name, later(), "lena", "Needs L2")
            resolver = "omar"
        if rng.random() < 0.75:
            h.resolve(name, later(), resolver)
            if rng.random() < 0.25:
                h.do(later(48), lambda n=name, r=requester: tickets.ticket_transition(
                    actor=getattr(cast, r), ticket=h.fresh(n), to_status="open"))  # fmt: skip
                if rng.random() < 0.6:
                    h.resolve(name, later(), resolver)
            if h.fresh(name).status == "resolved" and rng.random() < 0.5:
                score = rng.randint(1, 5)
                h.do(later(24), lambda n=name, r=requester, s=score: tickets.ticket_rate(
                    actor=getattr(cast, r), ticket=h.fresh(n), score=s))  # fmt: skip
    relay()
    facts.refresh_stale()
    return h


def listed(asked: dict[str, object], metric: str, **kw: object) -> int:
    return queries.behind(metric=metric, **asked, **kw).count()  # type: ignore[arg-type]


def test_every_figure_equals_the_tickets_listed_for_it(cast: Cast) -> None:
    history(cast)
    assert [p for org in Organization.objects.all() for p in rollups.check(org.pk)] == []
    periods = [(dt.date(2026, 3, 1), dt.date(2026, 3, 31)), (dt.date(2026, 3, 8),
               dt.date(2026, 3, 14)), (dt.date(2026, 3, 15), dt.date(2026, 4, 15))]  # fmt: skip
    checked = 0
    for first, last in periods:
        for actor, organization in ((cast.manager, "ACME"), (cast.admin, "GLOBEX"),
                                    (cast.admin, None)):  # fmt: skip
            asked = {"actor": actor, "organization": organization, "first_day": first,
                     "last_day": last}  # fmt: skip
            s = queries.summary(**asked)  # type: ignore[arg-type]
            resolved = listed(asked, "resolved")
            assert (s["created"], s["resolved"]) == (listed(asked, "created"), resolved)
            if resolved:
                for rate, metric in (("fcr_rate", "fcr"), ("reopen_rate", "reopened"),
                                     ("l1_resolution_rate", "l1_resolved")):  # fmt: skip
                    assert round(s[rate] * resolved) == listed(asked, metric), (asked, rate)
            assert s["backlog_open"] == listed(asked, "backlog_open"), asked
            assert s["csat_responses"] == listed(asked, "rated"), asked
            met, breached = (
                listed(asked, "sla_response_met"),
                listed(asked, "sla_response_breached"),
            )
            assert s["sla_response_compliance"] == (met / (met + breached) if met + breached
                                                    else None), asked  # fmt: skip
            for by in ("tier", "priority", "organization"):
                rows = queries.volume(interval="month", by=by, **asked)["rows"]  # type: ignore[arg-type]
                for metric in ("created", "resolved", "closed"):
                    per: dict[str, int] = {}
                    for row in rows:
                        per[row["key"]] = per.get(row["key"], 0) + row[metric]
                    for key, n in per.items():
                        assert n == listed(asked, metric, by=by, value=key), (asked, by, key)
                        checked += 1
            trend = queries.backlog(**asked)["trend"]  # type: ignore[arg-type]
            for day in (trend[0], trend[len(trend) // 2]):
                one_day = {**asked, "first_day": day["day"], "last_day": day["day"]}
                assert day["open"] == listed(one_day, "backlog_open"), (asked, day)
    assert checked > 50
