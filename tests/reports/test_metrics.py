"""GET /metrics: Prometheus's live gauges, behind a bearer token — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cast, make_ticket
from tierdesk.core import clock
from tierdesk.escalation.services import escalate
from tierdesk.reports import facts
from tierdesk.sla import clocks as sla_clocks
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as tickets

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def scrape(token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client().get("/metrics", headers=headers)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_gauges(cast: Cast, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    calendar = calendar_create(
        actor=None, name="always", title="Always", time_zone="UTC", always_open=True
    )
    sla_policy_create(actor=None, name="std", calendar=calendar, targets=[Target("P3", 60, 480)])

    def at(minutes: int) -> Any:
        return clock.frozen_at(START + dt.timedelta(minutes=minutes))

    with at(0):
        waiting = make_ticket(cast.lena, cast.acme, cast.alice, priority="P3")
        moved = make_ticket(cast.lena, cast.acme, cast.alice, priority="P3")
        done = make_ticket(cast.lena, cast.acme, cast.alice, priority="P3")
    with at(10):
        escalate(actor=cast.lena, ticket=moved, reason="Server", handoff_note="Tried.")
    with at(20):
        tickets.ticket_comment(actor=cast.lena, ticket=done, body="Try this.")
        tickets.ticket_transition(
            actor=cast.lena, ticket=done, to_status="resolved", resolution_code="fixed",
            resolution_note="Fixed.",
        )  # fmt: skip
        make_ticket(cast.gus, cast.globex, cast.gerd, priority="P3")
    with at(90):  # the ACME tickets' first responses were due at 10:00
        sla_clocks.sweep()
        got = samples(scrape().content.decode())
    acme = ("organization", "ACME")

    def value(name: str, *labels: tuple[str, str]) -> float | None:
        return got.get((name, tuple(sorted((acme, *labels)))))

    assert value("tierdesk_open_tickets", ("priority", "P3"), ("tier", "L1")) == 1
    assert value("tierdesk_open_tickets", ("priority", "P3"), ("tier", "L2")) == 1
    assert value("tierdesk_queue_oldest_seconds", ("tier", "L1")) == 90 * 60  # since 09:00
    assert value("tierdesk_queue_oldest_seconds", ("tier", "L2")) == 80 * 60  # since 09:10
    # The two open ACME tickets' first responses breached at 10:00; GLOBEX's (opened 09:20)
    # is due 10:20 and breached too by 10:30. Nothing is due within the next hour: the
    # resolution clocks run to 17:00.
    assert value("tierdesk_sla_in_breach", ("kind", "first_response")) == 2
    assert value("tierdesk_sla_breaches", ("kind", "first_response")) == 2
    assert value("tierdesk_sla_breaching_next_hour", ("kind", "resolution")) is None
    assert got[("tierdesk_sla_in_breach", (("kind", "first_response"),
                                           ("organization", "GLOBEX")))] == 1  # fmt: skip
    assert got[("tierdesk_report_facts_stale", ())] == 0  # the relay has not run yet
    assert got[("tierdesk_report_rollups_stale", ())] == 0
    with at(7 * 60 + 30):  # 16:30: the resolution clocks of the open ones are due at 17:00
        got = samples(scrape().content.decode())
    assert value("tierdesk_sla_breaching_next_hour", ("kind", "resolution")) == 2
    facts.mark_stale([waiting.pk])
    assert samples(scrape().content.decode())[("tierdesk_report_facts_stale", ())] == 1


def test_only_the_token_gets_in(settings: Any, db: None) -> None:
    settings.METRICS_TOKEN = ""
    assert scrape().status_code == 404  # off
    settings.METRICS_TOKEN = TOKEN
    assert scrape(None).status_code == 401
    assert scrape(None)["WWW-Authenticate"].startswith("Bearer")
    assert scrape("wrong-token-0123456789abcdef").status_code == 401
    assert scrape(TOKEN[:-1]).status_code == 401
    assert scrape("t\u00f6ken-0123456789abcdef-\u00e9\u00e9\u00e9").status_code == 401  # not ASCII
    ok = scrape()
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")
    posted = Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert posted.status_code in (403, 405)  # CSRF or the method: never served
