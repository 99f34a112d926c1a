"""The console's reports dashboard: every report of reports.queries for one period,
organization (or all the reader serves) and filters, as headline tiles, charts
(reports.charts) and the tables of their numbers, each number leading to the tickets
behind it (queries.behind).

Pages are the web app's; this module knows nothing of URLs: ``build`` is given ``link``,
which makes the address of the list of tickets behind a figure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tierdesk.core.models import User
from tierdesk.reports import queries
from tierdesk.reports.charts import Chart, Series
from tierdesk.tiers.models import Tier

# The share of resolved tickets L1 should end: the tier model's target band.
L1_BAND = (0.60, 0.70)
DAILY_UP_TO = 62  # days: a longer period's trends are weekly
BREACHES_SHOWN = 20
DASH = "\N{EN DASH}"  # ranges, and a figure that is undefined

# link(metric, **narrower) -> the address of the tickets behind a figure (narrower: first,
# last, organization, tier, category, agent, by, value over the dashboard's own);
# link("ticket", ref=KEY) -> a ticket's page.
Link = Callable[..., str]


@dataclass(frozen=True)
class Cell:
    text: str
    url: str | None = None  # the tickets behind the number
    numeric: bool = True


@dataclass(frozen=True)
class Table:
    caption: str
    head: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    empty: str = "Nothing in this period."


@dataclass(frozen=True)
class Panel:
    anchor: str
    title: str
    tables: Sequence[Table]
    charts: Sequence[Chart] = ()
    note: str = ""


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    url: str | None = None
    note: str = ""
    state: str = ""  # "within", "below", "above": the L1 band


@dataclass
class Dashboard:
    header: dict[str, Any]
    tiles: list[Tile] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.1f} %".replace(".0 %", " %")


def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def hours(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    return f"{seconds / 3600:,.1f} h"


def build(
    *,
    actor: User,
    organization: str | None,
    first_day: dt.date | None,
    last_day: dt.date | None,
    filters: queries.Filters,
    link: Link,
    shift_percent: float = 10.0,
) -> Dashboard:
    ask: dict[str, Any] = {
        "actor": actor, "organization": organization, "first_day": first_day,
        "last_day": last_day, "filters": filters,
    }  # fmt: skip
    summary = queries.summary(**ask)
    first, last = summary["from"], summary["to"]
    board = Dashboard(header=summary)
    board.tiles = _tiles(summary, link)
    interval = "day" if (last - first).days < DAILY_UP_TO else "week"
    board.panels = [
        _volume(queries.volume(interval=interval, **ask), first, last, link),
        _tiers(queries.volume(interval=interval, by="tier", **ask), first, last, link),
        _escalations(queries.escalations(**ask)),
        _times(queries.times(by="tier", **ask), link),
        _backlog(queries.backlog(**ask), link),
        _sla(queries.sla(**ask), link),
        _csat(queries.csat(**ask), link),
        _knowledge(queries.knowledge(**ask), link),
        _cost(queries.cost(shift_percent=shift_percent, **ask), link),
        _agents(queries.workload(**ask), link),
    ]
    return board


def _tiles(s: dict[str, Any], link: Link) -> list[Tile]:
    low, high = L1_BAND
    l1 = s["l1_resolution_rate"]
    state = "" if l1 is None else "below" if l1 < low else "above" if l1 > high else "within"
    band = f"target {low * 100:.0f}{DASH}{high * 100:.0f} %"
    return [
        Tile("Created", number(s["created"]), link("created")),
        Tile("Resolved", number(s["resolved"]), link("resolved")),
        Tile("First contact resolution", percent(s["fcr_rate"]), link("fcr")),
        Tile("L1 resolution rate", percent(l1), link("l1_resolved"), band, state),
        Tile("Escalated L1 → L2", percent(s["escalation_rate_l1_l2"]), link("escalated_l1_l2")),
        Tile("Escalated L2 → L3", percent(s["escalation_rate_l2_l3"]), link("escalated_l2_l3")),
        Tile("Reopened", percent(s["reopen_rate"]), link("reopened")),
        Tile("SLA response met", percent(s["sla_response_compliance"]),
             link("sla_response_breached"), "links to the breaches"),
        Tile("SLA resolution met", percent(s["sla_resolution_compliance"]),
             link("sla_resolution_breached"), "links to the breaches"),
        Tile("Open at the end", number(s["backlog_open"]), link("backlog_open")),
        Tile("CSAT average", number(s["csat_average"], 2), link("rated"),
             f"{s['csat_responses']} ratings"),
        Tile("Deflections", number(s["deflections"]), None, "solved by an article"),
        Tile("Resolved by automation", number(s["resolved_by_automation"]),
             link("resolved_by_automation")),
    ]  # fmt: skip


def _buckets(first: dt.date, last: dt.date, interval: str) -> list[tuple[dt.date, dt.date]]:
    """Each day, or each week (from Monday, cut to the period), of the period."""
    found = []
    start = first
    while start <= last:
        end = start if interval == "day" else min(last, start + dt.timedelta(6 - start.weekday()))
        found.append((start, end))
        start = end + dt.timedelta(1)
    return found


def _bucket_label(start: dt.date, end: dt.date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()} {DASH} {end.isoformat()}"


def _key_of(start: dt.date, interval: str) -> dt.date:
    return start if interval == "day" else start - dt.timedelta(start.weekday())


def _volume(v: dict[str, Any], first: dt.date, last: dt.date, link: Link) -> Panel:
    interval = v["interval"]
    counts = {r["start"]: r for r in v["rows"]}
    rows = []
    labels: list[str] = []
    series: dict[str, list[float | None]] = {"created": [], "resolved": [], "closed": []}
    for start, end in _buckets(first, last, interval):
        got = counts.get(_key_of(start, interval), {})
        labels.append(start.strftime("%d %b"))
        cells = [Cell(_bucket_label(start, end), numeric=False)]
        for name in series:
            n = got.get(name, 0)
            series[name].append(n)
            cells.append(Cell(number(n), link(name, first=start, last=end) if n else None))
        rows.append(cells)
    chart = Chart(
        "line", f"Tickets per {interval}", labels,
        [Series(name.capitalize(), values) for name, values in series.items()],
        y_title="tickets",
    )  # fmt: skip
    table = Table(f"Created, resolved and closed per {interval}",
                  [interval.capitalize(), "Created", "Resolved", "Closed"], rows)  # fmt: skip
    return Panel("volume", "Volume", [table], [chart])


def _tiers(v: dict[str, Any], first: dt.date, last: dt.date, link: Link) -> Panel:
    """Resolved per tier and the L1 resolution rate per day or week, against the band."""
    interval = v["interval"]
    levels = {t.code: t.level for t in Tier.objects.all()}
    tiers = sorted({r["key"] for r in v["rows"] if r["key"] is not None and r["resolved"]},
                   key=lambda code: (levels.get(code, 99), code))  # fmt: skip
    by = {(r["start"], r["key"]): r["resolved"] for r in v["rows"]}
    lowest = _lowest_tier()
    low, high = L1_BAND
    labels: list[str] = []
    rate: list[float | None] = []
    rows = []
    stacked: dict[str, list[float | None]] = {t: [] for t in tiers}
    for start, end in _buckets(first, last, interval):
        key = _key_of(start, interval)
        per = {t: by.get((key, t), 0) for t in tiers}
        total = sum(per.values())
        at_l1 = per.get(lowest, 0) if lowest else 0
        labels.append(start.strftime("%d %b"))
        rate.append(at_l1 / total if total else None)
        for t in tiers:
            stacked[t].append(per[t])
        rows.append(
            [Cell(_bucket_label(start, end), numeric=False),
             Cell(number(total), link("resolved", first=start, last=end) if total else None),
             *[Cell(number(per[t]), link("resolved", first=start, last=end, by="tier", value=t)
                    if per[t] else None) for t in tiers],
             Cell(percent(rate[-1]))]
        )  # fmt: skip
    chart = Chart(
        "line", f"L1 resolution rate per {interval}, against the {low:.0%}{DASH}{high:.0%} band",
        labels,
        [Series("L1 resolution rate", rate), Series(f"band: {low:.0%}", [low] * len(labels)),
         Series(f"band: {high:.0%}", [high] * len(labels))],
        percent=True, colors=("#1f3b73", "#3d7a3d", "#3d7a3d"),
    )  # fmt: skip
    stack = Chart("stacked_bar", f"Resolved per {interval}, by resolving tier", labels,
                  [Series(t, stacked[t]) for t in tiers], y_title="tickets")  # fmt: skip
    table = Table(
        f"Tickets resolved per {interval} by the tier that resolved them, and the share "
        f"resolved in {lowest or 'L1'}",
        [interval.capitalize(), "Resolved", *tiers, "L1 rate"], rows,
    )  # fmt: skip
    return Panel("tiers", "Where tickets end", [table], [chart, stack],
                 note=f"Target: {low:.0%}{DASH}{high:.0%} of the resolved tickets resolved in the "
                 "first tier, drawn as the two green lines.")  # fmt: skip


def _lowest_tier() -> str | None:
    lowest = queries.lowest_tiers()[0]
    return lowest.code if lowest else None


def _escalations(e: dict[str, Any]) -> Panel:
    moves = [[Cell(m["from"], numeric=False), Cell(m["to"], numeric=False),
              Cell(m["direction"], numeric=False), Cell(number(m["manual"])),
              Cell(number(m["automatic"]))] for m in e["moves"]]  # fmt: skip
    reasons = [[Cell(r["reason"], numeric=False),
                Cell("rule" if r["automatic"] else "agent", numeric=False),
                Cell(number(r["count"]))] for r in e["top_reasons"]]  # fmt: skip
    return Panel("escalations", "Escalations", [
        Table("Moves between tiers in the period", ["From", "To", "Direction", "Manual",
                                                    "Automatic"], moves),
        Table("Top reasons for escalating", ["Reason", "By", "Escalations"], reasons),
    ])  # fmt: skip


def _times(t: dict[str, Any], link: Link) -> Panel:
    """Both times by tier: business hours (the SLA's clock) and calendar hours."""
    rows: dict[str, list[list[Cell]]] = {"business": [], "calendar": []}
    labels: list[str] = []
    medians: list[float | None] = []
    p90s: list[float | None] = []
    for g in t["groups"]:
        name = g["key"] or "none"
        tier = {"by": "tier", "value": g["key"]} if g["key"] else {}
        for clock, suffix in (("business", "_business"), ("calendar", "")):
            response, resolution = g[f"response{suffix}"], g[f"resolution{suffix}"]
            rows[clock].append([
                Cell(name, numeric=False),
                Cell(number(response["count"]),
                     link("responded", **tier) if response["count"] and tier else None),
                Cell(hours(response["mean"])), Cell(hours(response["median"])),
                Cell(hours(response["p90"])),
                Cell(number(resolution["count"]),
                     link("resolved", **tier) if resolution["count"] and tier else None),
                Cell(hours(resolution["mean"])), Cell(hours(resolution["median"])),
                Cell(hours(resolution["p90"])),
            ])  # fmt: skip
        resolution = g["resolution_business"]
        labels.append(name)
        medians.append(None if resolution["median"] is None else resolution["median"] / 3600)
        p90s.append(None if resolution["p90"] is None else resolution["p90"] / 3600)
    chart = Chart("bar", "Time to resolution by tier (business hours)", labels,
                  [Series("median", medians), Series("p90", p90s)], y_title="hours")  # fmt: skip
    head = ["Tier", "Answered", "Response mean", "Response median", "Response p90", "Resolved",
            "Resolution mean", "Resolution median", "Resolution p90"]  # fmt: skip
    tables = [
        Table(f"Time to first response (by the first tier) and to resolution (by the "
              f"resolving tier), in {clock} hours", head, rows[clock])
        for clock in ("business", "calendar")
    ]  # fmt: skip
    return Panel("times", "Response and resolution times", tables, [chart])


def _backlog(b: dict[str, Any], link: Link) -> Panel:
    ages = [label for label, _ in queries.AGE_BUCKETS]
    rows = []
    for r in b["by_tier"]:
        tier = r["tier"]
        rows.append(
            [Cell(tier, numeric=False),
             Cell(number(r["open"]), link("open_now", by="tier", value=tier)),
             *[Cell(number(r["age"][a]), link("open_now", tier=tier, by="age", value=a)
                    if r["age"][a] else None) for a in ages]]
        )  # fmt: skip
    trend_rows = [[Cell(d["day"].isoformat(), numeric=False),
                   Cell(number(d["open"]), link("backlog_open", first=d["day"], last=d["day"]))]
                  for d in b["trend"]]  # fmt: skip
    trend = Chart("line", "Open at the end of each day", [d["day"].strftime("%d %b")
                  for d in b["trend"]], [Series("open", [d["open"] for d in b["trend"]])],
                  y_title="tickets")  # fmt: skip
    chart = Chart("stacked_bar", "Open now, by tier and age", [r["tier"] for r in b["by_tier"]],
                  [Series(a, [r["age"][a] for r in b["by_tier"]]) for a in ages],
                  y_title="tickets")  # fmt: skip
    return Panel("backlog", "Backlog", [
        Table("Open tickets now, by the tier they are in and their age", ["Tier", "Open",
              *ages], rows, empty="Nothing open."),
        Table("Open at the end of each day", ["Day", "Open"], trend_rows),
    ], [chart, trend])  # fmt: skip


def _sla(s: dict[str, Any], link: Link) -> Panel:
    rows = []
    for p in s["policies"]:
        policy = p["policy"] or "(deleted)"
        org = {"organization": p["organization"]}
        by = {"by": "policy", "value": p["policy_id"]}
        rows.append([
            Cell(policy, numeric=False), Cell(p["organization"], numeric=False),
            Cell(number(p["response_met"]), link("sla_response_met", **org, **by)),
            Cell(number(p["response_breached"]), link("sla_response_breached", **org, **by)),
            Cell(percent(p["response_compliance"])),
            Cell(number(p["resolution_met"]), link("sla_resolution_met", **org, **by)),
            Cell(number(p["resolution_breached"]),
                 link("sla_resolution_breached", **org, **by)),
            Cell(percent(p["resolution_compliance"])),
        ])  # fmt: skip
    breaches = [[Cell(b["ticket"], link("ticket", ref=b["ticket"]), numeric=False),
                 Cell(b["subject"], numeric=False), Cell(b["kind"], numeric=False),
                 Cell(b["priority"], numeric=False),
                 Cell(b["breached_at"].strftime("%Y-%m-%d %H:%M"), numeric=False)]
                for b in s["breaches"][:BREACHES_SHOWN]]  # fmt: skip
    total = s["breaches_total"]
    return Panel("sla", "SLA compliance", [
        Table("Tickets created in the period whose SLA target was decided, per policy",
              ["Policy", "Organization", "Response met", "Response breached", "Response %",
               "Resolution met", "Resolution breached", "Resolution %"], rows),
        Table(f"Breaches in the period: {total}"
              + (f" (the first {BREACHES_SHOWN} shown; the API lists them all)"
                 if total > BREACHES_SHOWN else ""),
              ["Ticket", "Subject", "Target", "Priority", "Breached (UTC)"], breaches,
              empty="No breach in this period."),
    ])  # fmt: skip


def _csat(c: dict[str, Any], link: Link) -> Panel:
    scores = [str(s) for s in range(1, 6)]
    rows = [[Cell(s, numeric=False), Cell(number(c["distribution"][s]),
             link("rated", by="score", value=s) if c["distribution"][s] else None)]
            for s in scores]  # fmt: skip
    chart = Chart("bar", "Ratings by score", scores,
                  [Series("ratings", [c["distribution"][s] for s in scores])])  # fmt: skip
    return Panel("csat", "Customer satisfaction", [
        Table(f"Ratings given in the period: {c['responses']}, average "
              f"{number(c['average'], 2)}; rated: {percent(c['response_rate'])} of the "
              "tickets resolved in it", ["Score", "Ratings"], rows),
    ], [chart])  # fmt: skip


def _knowledge(k: dict[str, Any], link: Link) -> Panel:
    kinds = ("suggested", "linked", "solved")
    rows = [
        [Cell(r["tier"] or "none", numeric=False),
         *[Cell(number(r[kind]), link(f"article_{kind}", by="tier", value=r["tier"])
                if r[kind] and r["tier"] else None) for kind in kinds],
         *[Cell(number(r[f"{kind}_articles"])) for kind in kinds]]
        for r in k["by_tier"]
    ]  # fmt: skip
    top = [[Cell(a["title"], numeric=False), Cell(a["article"], numeric=False),
            Cell(number(a["tickets"]))] for a in k["top_articles"]]  # fmt: skip
    deflecting = [[Cell(a["title"], numeric=False), Cell(a["article"], numeric=False),
                   Cell(number(a["deflections"]))] for a in k["top_deflecting"]]  # fmt: skip
    chart = Chart("bar", "Tickets helped by an article, by tier", [r["tier"] or "none"
                  for r in k["by_tier"]], [Series(kind, [r[kind] for r in k["by_tier"]])
                  for kind in kinds], y_title="tickets")  # fmt: skip
    resolved, automated = k["resolved"], k["resolved_by_automation"]
    return Panel("knowledge", "Knowledge and automation", [
        Table("Tickets an article was suggested for (when opened), linked to by an agent, "
              "or solved by, per tier at the time; and how many articles",
              ["Tier", "Suggested", "Linked", "Solved", "Articles suggested",
               "Articles linked", "Articles solved"], rows),
        Table("The articles used on most tickets", ["Article", "Slug", "Tickets"], top),
        Table(f"Deflections: {k['deflections']} requesters found their answer in the portal "
              "and opened no ticket", ["Article", "Slug", "Deflections"], deflecting),
    ], [chart],
        note=f"Resolved by automation: {automated} of {resolved} resolved tickets.")  # fmt: skip


def _cost(c: dict[str, Any], link: Link) -> Panel:
    rows = [[Cell(t["tier"], numeric=False),
             Cell(number(t["tickets"]), link("resolved_through", by="tier", value=t["tier"])
                  if t["tickets"] else None),
             Cell(number(t["cost_per_ticket"], 2)), Cell(number(t["cost"], 2))]
            for t in c["tiers"]]  # fmt: skip
    saving = c["saving_if_shifted"]
    note = (
        f"Resolving {c['shift_percent']:g} % of the {c['resolved_at_l2']} tickets resolved in "
        f"L2 at L1 instead would have saved {number(saving, 2)}."
        if saving is not None
        else "Set an hourly cost and minutes per ticket on the tiers to see costs and savings."
    )
    return Panel("cost", "Cost per tier", [
        Table(f"What the {c['resolved']} tickets resolved in the period cost at each tier "
              f"they went through; total {number(c['total'], 2)}, per ticket "
              f"{number(c['cost_per_resolved_ticket'], 2)}",
              ["Tier", "Tickets", "Cost per ticket", "Cost"], rows),
    ], note=note)  # fmt: skip


def _agents(w: dict[str, Any], link: Link) -> Panel:
    rows = [[Cell(a["name"] or a["agent"], numeric=False), Cell(a["tier"], numeric=False),
             Cell(number(a["open_assigned"]), link("open_now", agent=a["agent"])
                  if a["open_assigned"] else None),
             Cell(number(a["resolved"]), link("resolved", agent=a["agent"])
                  if a["resolved"] else None),
             Cell(number(a["shift_hours"], 1)), Cell(percent(a["utilization"]))]
            for a in w["agents"]]  # fmt: skip
    return Panel("agents", "Agents", [
        Table("Per staff member: open tickets assigned now, tickets resolved in the period, "
              "and an estimated utilization of their shifts",
              ["Agent", "Tier", "Open assigned", "Resolved", "Shift hours", "Utilization"],
              rows, empty="No staff member serves these organizations."),
    ])  # fmt: skip
