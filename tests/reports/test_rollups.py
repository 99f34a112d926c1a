"""The rollups (reports.rollups) agree with a count from the facts whatever happens to the
tickets: kept change by change, counted again after a time zone change, a rebuild or an
upgrade, and with two writers at once. The reports that read them are checked figure by
figure against the hand-built week in test_summary.py."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from django.db import transaction

from tests.conftest import Cast, in_threads, make_ticket, needs_shared_database
from tests.reports.test_summary import WEEK, History, at
from tierdesk.cli import main
from tierdesk.core.models import Organization
from tierdesk.core.outbox import relay
from tierdesk.core.services import organization_update
from tierdesk.reports import facts, queries, rollups
from tierdesk.reports.models import DayCount, StaleRollup, TicketFact
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Ticket


def disagreements() -> list[str]:
    return [p for org in Organization.objects.all() for p in rollups.check(org.pk)]


def test_kept_change_by_change_they_agree_with_a_recount(week: History) -> None:
    assert DayCount.objects.exists()
    assert disagreements() == []
    # More history: a reopening, a resolution, a rating, an escalation, each refreshed.
    cast = week.cast
    week.do(
        at(3, 10, 9),
        lambda: tickets.ticket_transition(
            actor=cast.alice, ticket=week.fresh("T1"), to_status="open"
        ),
    )
    week.resolve("T9", at(3, 10, 10))
    week.escalate("T1", at(3, 10, 11), "lena", "Needs a technician")
    relay()
    facts.refresh_stale()
    assert disagreements() == []
    week.resolve("T1", at(3, 11, 9), "omar")
    week.do(
        at(3, 11, 10),
        lambda: tickets.ticket_rate(actor=cast.alice, ticket=week.fresh("T9"), score=1),
    )
    relay()
    facts.refresh_stale()
    assert disagreements() == []
    march_10 = queries.volume(
        actor=cast.manager, organization="ACME", first_day=dt.date(2026, 3, 10),
        last_day=dt.date(2026, 3, 11),
    )["rows"]  # fmt: skip
    assert [(r["start"], r["resolved"]) for r in march_10] == [
        (dt.date(2026, 3, 10), 1),  # T9 (T1's first resolution no longer holds)
        (dt.date(2026, 3, 11), 1),  # T1
    ]


def test_the_check_finds_a_cell_that_is_off(week: History) -> None:
    cell = DayCount.objects.filter(kind=rollups.CREATED, dim="", n__gt=0).first()
    assert cell is not None
    DayCount.objects.filter(pk=cell.pk).update(n=cell.n + 1)
    problems = disagreements()
    assert len(problems) == 1
    assert str(cell.day) in problems[0]


def test_another_time_zone_moves_the_days_and_counts_again(week: History) -> None:
    cast = week.cast

    def created_on(day: dt.date) -> int:
        rows = queries.volume(actor=cast.admin, organization="ACME", first_day=day, last_day=day)
        return sum(r["created"] for r in rows["rows"])

    # T7 was created on Friday 6 March at 16:00 in New York: 06:00 on Saturday in Tokyo.
    assert (created_on(dt.date(2026, 3, 6)), created_on(dt.date(2026, 3, 7))) == (1, 0)
    organization_update(actor=cast.admin, organization=cast.acme, time_zone="Asia/Tokyo")
    relay()
    assert StaleRollup.objects.filter(organization_id=cast.acme.pk).exists()
    facts.refresh_stale()
    assert not StaleRollup.objects.exists()
    assert (created_on(dt.date(2026, 3, 6)), created_on(dt.date(2026, 3, 7))) == (0, 1)
    assert disagreements() == []


def test_after_an_upgrade_or_a_rebuild_they_are_counted_whole(week: History) -> None:
    cast = week.cast
    before = queries.summary(actor=cast.manager, organization="ACME", **WEEK)
    # An installation that had facts before rollups existed: its migration marks every
    # organization, and the worker's next refresh counts them.
    DayCount.objects.all().delete()
    assert queries.summary(actor=cast.manager, organization="ACME", **WEEK)["created"] == 0
    rollups.mark_stale(Organization.objects.values_list("pk", flat=True))
    facts.refresh_stale()
    assert queries.summary(actor=cast.manager, organization="ACME", **WEEK) == before
    # A rebuild writes the facts without counting each change, then counts every cell.
    DayCount.objects.filter(kind=rollups.RESOLVED).delete()
    assert facts.rebuild() == Ticket.objects.count()
    assert disagreements() == []
    assert queries.summary(actor=cast.manager, organization="ACME", **WEEK) == before


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_writers_of_the_same_facts_count_them_once(cast: Cast) -> None:
    needs_shared_database()
    ids = [make_ticket(cast.lena, cast.acme, cast.alice, subject=f"Printer {i}").pk
           for i in range(30)]  # fmt: skip
    relay()
    facts.refresh_stale()
    assert disagreements() == []
    # Take the facts away (and their counts), then two writers put them back at once: each
    # finds no facts before it writes, unless the second waits for the first.
    with transaction.atomic():
        rollups.lock()
        rollups.apply(rollups.rows_of(ids), [])
        TicketFact.objects.filter(ticket_id__in=ids).delete()

    def write(_: int) -> int:
        with transaction.atomic():
            return len(facts.write(ids))

    results = in_threads(2, write)
    assert results == [30, 30]
    assert disagreements() == []
    created = queries.summary(actor=cast.admin, organization="ACME", first_day=None,
                              last_day=None)["created"]  # fmt: skip
    assert created == 30


def test_a_ticket_moved_to_another_organization_counts_there(week: History) -> None:
    """No screen moves a ticket between organizations yet; a correction made in the
    database (and announced as an event about the ticket) moves its figures, days and
    all: GLOBEX counts it on its own (Berlin) day, ACME no longer."""
    cast = week.cast
    t1 = week.t["T1"]
    before = {code: queries.summary(actor=cast.admin, organization=code, **WEEK)
              for code in ("ACME", "GLOBEX")}  # fmt: skip
    Ticket.objects.filter(pk=t1.pk).update(organization=cast.globex)
    facts.mark_stale([t1.pk])
    facts.refresh_stale()
    after = {code: queries.summary(actor=cast.admin, organization=code, **WEEK)
             for code in ("ACME", "GLOBEX")}  # fmt: skip
    assert after["ACME"]["created"] == before["ACME"]["created"] - 1
    assert after["GLOBEX"]["created"] == before["GLOBEX"]["created"] + 1
    assert after["ACME"]["resolved"] == before["ACME"]["resolved"] - 1
    assert after["GLOBEX"]["csat_responses"] == before["GLOBEX"]["csat_responses"] + 1
    assert disagreements() == []
    # The manager who serves ACME only no longer sees it in any figure.
    mine = queries.summary(actor=cast.manager, organization=None, **WEEK)
    assert mine["created"] == before["ACME"]["created"] - 1


def test_a_deleted_ticket_leaves_the_counts_with_its_organization(week: History) -> None:
    cast = week.cast
    before = queries.summary(actor=cast.manager, organization="ACME", **WEEK)["created"]
    Ticket.objects.filter(pk=week.t["T4"].pk).delete()
    assert StaleRollup.objects.filter(organization_id=cast.acme.pk).exists()
    facts.refresh_stale()
    assert queries.summary(actor=cast.manager, organization="ACME", **WEEK)["created"] == (
        before - 1
    )
    assert disagreements() == []


def test_a_recount_goes_a_few_days_at_a_time_and_clears_moved_days(
    week: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    cast = week.cast
    monkeypatch.setattr(rollups, "RECOUNT_DAYS", 2)
    before = queries.summary(actor=cast.manager, organization="ACME", **WEEK)
    # A stray cell on a day no fact has (as a time zone change leaves): cleared.
    DayCount.objects.create(organization=cast.acme, day=dt.date(2026, 2, 20), kind="created", n=5)
    DayCount.objects.filter(kind=rollups.RESOLVED).update(n=0)
    assert disagreements() != []
    rollups.mark_stale([cast.acme.pk, cast.globex.pk])
    assert rollups.refresh_stale() == 2
    assert disagreements() == []
    assert not StaleRollup.objects.exists()
    assert queries.summary(actor=cast.manager, organization="ACME", **WEEK) == before


def test_the_check_command(week: History) -> None:
    agreed = CliRunner().invoke(main, ["reports", "check"], catch_exceptions=False)
    assert agreed.exit_code == 0, agreed.output
    assert "agree" in agreed.output
    DayCount.objects.filter(kind=rollups.RATED).update(n=7)
    differs = CliRunner().invoke(main, ["reports", "check", "--json"], catch_exceptions=False)
    assert differs.exit_code == 1
    assert "ACME" in differs.output
    assert "rated" in differs.output
