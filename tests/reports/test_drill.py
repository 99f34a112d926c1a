"""Drill-down: every figure leads to the tickets it counts, and the list is as long as the
figure. The figures come from the rollups and the lists from the facts, so this is also
where the rollups are shown to agree with the raw computation, report by report."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import Api
from tests.reports.test_summary import WEEK, History, at
from tierdesk.core import clock
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.kb import services as kb_services
from tierdesk.reports import queries
from tierdesk.sla.models import SlaPolicy
from tierdesk.sla.services import Target, sla_policy_create


def keys(h: History, metric: str, organization: str | None = "ACME", **kw: Any) -> set[str]:
    """The week's names (T1, T2, ...) of the tickets behind ``metric``."""
    names = {t.pk: name for name, t in h.t.items()}
    found = queries.behind(actor=h.cast.manager if organization else h.cast.admin,
                           organization=organization, metric=metric, **WEEK, **kw)  # fmt: skip
    return {names[f.ticket_id] for f in found}


def test_each_summary_figure_lists_its_tickets(week: History) -> None:
    s = queries.summary(actor=week.cast.manager, organization="ACME", **WEEK)
    assert keys(week, "created") == {"T1", "T2", "T3", "T4", "T5", "T6", "T7"}
    assert keys(week, "resolved") == {"T10", "T1", "T2", "T3", "T4", "T5"}
    assert keys(week, "fcr") == {"T10", "T1"}
    assert keys(week, "l1_resolved") == {"T10", "T1", "T2", "T4", "T5"}
    assert keys(week, "escalated_l1_l2") == {"T3", "T4", "T6"}
    assert keys(week, "escalated_l2_l3") == {"T6"}
    assert keys(week, "reopened") == {"T5"}
    assert keys(week, "sla_response_breached") == {"T3", "T6"}
    assert keys(week, "sla_resolution_breached") == {"T6"}
    assert keys(week, "backlog_open") == {"T9", "T6", "T7"}
    assert keys(week, "rated") == {"T1", "T2"}
    assert keys(week, "resolved_by_automation") == set()
    # ... and each list is as long as the figure read from the rollups.
    resolved = s["resolved"]
    assert len(keys(week, "created")) == s["created"]
    assert len(keys(week, "resolved")) == resolved
    assert len(keys(week, "fcr")) == pytest.approx(s["fcr_rate"] * resolved)
    assert len(keys(week, "l1_resolved")) == pytest.approx(s["l1_resolution_rate"] * resolved)
    assert len(keys(week, "reopened")) == pytest.approx(s["reopen_rate"] * resolved)
    assert len(keys(week, "backlog_open")) == s["backlog_open"]
    assert len(keys(week, "rated")) == s["csat_responses"]
    met = len(keys(week, "sla_response_met"))
    assert met / (met + len(keys(week, "sla_response_breached"))) == pytest.approx(
        s["sla_response_compliance"]
    )


def test_each_group_of_a_report_lists_its_tickets(week: History) -> None:
    cast = week.cast
    for by in ("tier", "priority", "category", "source"):
        rows = queries.volume(actor=cast.manager, organization="ACME", interval="month", by=by,
                              **WEEK)["rows"]  # fmt: skip
        for row in rows:
            value = "none" if row["key"] is None else row["key"]
            for metric in ("created", "resolved", "closed"):
                listed = keys(week, metric, by=by, value=value)
                assert len(listed) == row[metric], (by, value, metric)
    assert keys(week, "resolved", by="tier", value="L2") == {"T3"}
    assert keys(week, "rated", by="score", value="5") == {"T1"}
    # Across organizations (the admin): each organization's own tickets and days.
    assert keys(week, "resolved", None, by="organization", value="globex") == {"T8"}
    sla = queries.sla(actor=cast.manager, organization="ACME", **WEEK)["policies"]
    assert [p["response_breached"] for p in sla] == [2]
    policy = str(sla[0]["policy_id"])
    assert keys(week, "sla_response_breached", by="policy", value=policy) == {"T3", "T6"}
    # A policy replaced by another of the same name keeps its own tickets apart.
    SlaPolicy.objects.filter(pk=sla[0]["policy_id"]).update(is_active=False)
    sla_policy_create(actor=None, name="ACME standard", organization=cast.acme,
                      calendar=SlaPolicy.objects.get(pk=policy).calendar,
                      targets=[Target("P3", 60, 480)])  # fmt: skip
    assert keys(week, "sla_response_breached", by="policy", value=policy) == {"T3", "T6"}
    assert keys(week, "created", by="policy", value=str(int(policy) + 1)) == set()
    for bad in ("ACME standard", "1e3", "\x00", "9" * 30):
        with pytest.raises(ValidationFailed):
            keys(week, "created", by="policy", value=bad)
    for bad in ("abc", "0", "6", "5.0"):
        with pytest.raises(ValidationFailed):
            keys(week, "rated", by="score", value=bad)


def test_bad_asks_and_other_tenants(week: History) -> None:
    cast = week.cast
    with pytest.raises(ValidationFailed):
        keys(week, "happiness")
    with pytest.raises(ValidationFailed):
        keys(week, "created", by="moon", value="full")
    with pytest.raises(ValidationFailed):
        keys(week, "created", by="tier")
    with pytest.raises(NotFound):
        queries.behind(actor=cast.manager, organization="GLOBEX", metric="created", **WEEK)


def test_the_api_lists_them_page_by_page_and_as_csv(week: History) -> None:
    api = Api(week.cast.manager)
    base = "/reports/tickets?organization=ACME&from=2026-03-02&to=2026-03-06&metric=created"
    first = api.get(f"{base}&limit=4")
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["count"] == 7
    assert len(body["items"]) == 4
    assert body["items"][0] | {"created_at": None} == {
        "ticket": week.t["T1"].key, "subject": "T1 VPN", "status": "resolved",
        "priority": "P3", "tier": "L1", "organization": "ACME", "created_at": None,
        "resolved_at": "2026-03-02T16:00:00Z",
    }  # fmt: skip
    rest = api.get(f"{base}&limit=4&after={body['next_after']}").json()
    assert len(rest["items"]) == 3
    assert rest["next_after"] is None
    seen = [i["ticket"] for i in body["items"] + rest["items"]]
    assert len(set(seen)) == 7
    answer = api.get(f"{base}&format=csv")
    assert answer["X-Tierdesk-Total"] == "7"
    table = answer.content.decode().splitlines()
    assert table[0] == "ticket,subject,status,priority,tier,organization,created_at,resolved_at"
    assert len(table) == 8
    assert api.get(f"{base}&metric=nope").status_code == 422
    assert api.get(f"{base}&limit=0").status_code == 422
    other = "/reports/tickets?organization=GLOBEX&metric=created"
    assert api.get(other).status_code == 404
    assert Api(week.cast.lena).get(base).status_code == 403


REPORTS = {
    "summary": lambda **kw: queries.summary(**kw),
    "times by tier": lambda **kw: queries.times(by="tier", **kw),
    "volume by day": lambda **kw: queries.volume(**kw),
    "volume by category, per week": lambda **kw: queries.volume(interval="week",
                                                                by="category", **kw),
    "volume by organization": lambda **kw: queries.volume(by="organization", **kw),
    "escalations": lambda **kw: queries.escalations(**kw),
    "backlog": lambda **kw: queries.backlog(**kw),
    "sla": lambda **kw: queries.sla(**kw),
    "csat": lambda **kw: queries.csat(**kw),
    "cost": lambda **kw: queries.cost(**kw),
    "agents": lambda **kw: queries.workload(**kw),
}  # fmt: skip


def test_every_report_from_the_rollups_equals_the_count_from_the_facts(
    week: History,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each report read from the rollups, and again counted from the facts (the path a
    filtered report takes), over the week and over a wider period, one organization and
    all: the same answer."""
    cast = week.cast
    asks = [
        {"actor": cast.manager, "organization": "ACME", **WEEK},
        {"actor": cast.admin, "organization": None, **WEEK},
        {"actor": cast.admin, "organization": None, "first_day": dt.date(2026, 2, 1),
         "last_day": dt.date(2026, 3, 31)},
    ]  # fmt: skip
    with clock.frozen_at(at(3, 12, 12)):
        from_rollups = {(name, i): report(**ask) for name, report in REPORTS.items()
                        for i, ask in enumerate(asks)}  # fmt: skip
        real = queries.scope
        monkeypatch.setattr(queries, "scope", lambda **kw: replace(real(**kw), filtered=True))
        for (name, i), expected in from_rollups.items():
            assert REPORTS[name](**asks[i]) == expected, (name, asks[i])
    assert from_rollups[("summary", 0)]["created"] == 7  # the rollups were read


def test_filters_narrow_every_figure_alike(week: History) -> None:
    cast = week.cast
    at_l2 = queries.Filters(tier="L2")
    s = queries.summary(actor=cast.manager, organization="ACME", filters=at_l2, **WEEK)
    assert (s["created"], s["resolved"]) == (0, 1)  # all started at L1; T3 resolved at L2
    assert keys(week, "resolved", filters=at_l2) == {"T3"}
    assert s["backlog_open"] == 3  # the backlog counts every tier (the facts keep no days)
    lenas = queries.Filters(agent="lena@msp.example")
    s = queries.summary(actor=cast.manager, organization="ACME", filters=lenas, **WEEK)
    assert s["resolved"] == len(keys(week, "resolved", filters=lenas))
    assert s["created"] == len(keys(week, "created", filters=lenas))
    nothing = queries.Filters(category="none")
    s = queries.summary(actor=cast.manager, organization="ACME", filters=nothing, **WEEK)
    assert s["created"] == 7  # the week's tickets have no category
    for bad in (queries.Filters(tier="L9"), queries.Filters(category="moon"),
                queries.Filters(agent="alice@acme.example")):  # fmt: skip
        with pytest.raises(ValidationFailed):
            queries.summary(actor=cast.manager, organization="ACME", filters=bad, **WEEK)


def test_the_api_takes_the_same_filters(week: History) -> None:
    api = Api(week.cast.manager)
    week_of = "organization=ACME&from=2026-03-02&to=2026-03-06"
    got = api.get(f"/reports/summary?{week_of}&tier=l2").json()
    assert (got["created"], got["resolved"]) == (0, 1)
    listed = api.get(f"/reports/tickets?{week_of}&tier=L2&metric=resolved").json()
    assert [i["ticket"] for i in listed["items"]] == [week.t["T3"].key]
    volume = api.get(f"/reports/volume?{week_of}&category=none&interval=month").json()
    assert volume["rows"][0]["created"] == 7
    for bad in ("tier=L9", "category=moon", "agent=alice@acme.example", "agent=" + "x" * 300):
        r = api.get(f"/reports/summary?{week_of}&{bad}")
        assert r.status_code == 422, (bad, r.content)


def test_open_now_by_tier_and_age(week: History) -> None:
    cast = week.cast
    with clock.frozen_at(at(3, 12, 12)):
        backlog = queries.backlog(actor=cast.manager, organization="ACME", **WEEK)
        for row in backlog["by_tier"]:
            assert len(keys(week, "open_now", by="tier", value=row["tier"])) == row["open"]
            for label, n in row["age"].items():
                both = keys(week, "open_now", by="age", value=label) & keys(
                    week, "open_now", by="tier", value=row["tier"]
                )
                assert len(both) == n, (row["tier"], label)
        assert keys(week, "open_now") == {"T9", "T6"}  # T7 was resolved on the 9th
        with pytest.raises(ValidationFailed):
            keys(week, "open_now", by="age", value="ancient")


def test_knowledge_and_automation(week: History) -> None:
    cast = week.cast
    article = kb_services.article_create(
        actor=None, owner=cast.admin, title="Reset the VPN client", body="Reinstall it.",
        status="published", audience="internal",
    )  # fmt: skip
    other = kb_services.article_create(
        actor=None, owner=cast.admin, title="Server access", body="Ask L2.",
        status="published", audience="internal",
    )  # fmt: skip
    for name, who, kind, day in (("T1", "lena", "linked", 2), ("T1", "lena", "solved", 2),
                                 ("T3", "omar", "linked", 3), ("T4", "lena", "linked", 4),
                                 ("T7", "lena", "solved", 9)):  # fmt: skip
        week.do(at(3, day, 12), lambda n=name, w=who, k=kind: kb_services.article_use(
            actor=getattr(cast, w), article=article if n != "T3" else other,
            ticket=week.fresh(n), kind=k))  # fmt: skip
    got = queries.knowledge(actor=cast.manager, organization="ACME", **WEEK)
    tiers = {r["tier"]: r for r in got["by_tier"]}
    assert (tiers["L1"]["linked"], tiers["L1"]["solved"]) == (2, 1)  # T1, T4; T1 (T7 later)
    assert (tiers["L2"]["linked"], tiers["L2"]["solved"]) == (1, 0)  # T3, at L2 then
    assert tiers["L1"]["linked_articles"] == 1
    assert [a["tickets"] for a in got["top_articles"]] == [2, 1]  # T1 (twice: once) and T4
    assert got["top_articles"][0]["title"] == "Reset the VPN client"
    assert got["deflections"] == 1
    assert got["top_deflecting"][0]["deflections"] == 1
    assert (got["resolved"], got["resolved_by_automation"]) == (6, 0)
    assert keys(week, "article_linked", by="tier", value="L1") == {"T1", "T4"}
    assert keys(week, "article_linked", by="tier", value="L2") == {"T3"}
    assert keys(week, "article_solved") == {"T1"}
    # Another tenant's manager sees none of it; the API and CSV say the same.
    with pytest.raises(NotFound):
        queries.knowledge(actor=cast.manager, organization="GLOBEX", **WEEK)
    api = Api(cast.manager)
    body = api.get("/reports/knowledge?organization=ACME&from=2026-03-02&to=2026-03-06").json()
    assert body["by_tier"] == got["by_tier"]
    table = api.get("/reports/knowledge?organization=ACME&from=2026-03-02&to=2026-03-06"
                    "&format=csv&table=articles").content.decode().splitlines()  # fmt: skip
    assert table == ["article,title,tickets", "reset-the-vpn-client,Reset the VPN client,2",
                     "server-access,Server access,1"]  # fmt: skip
