"""core.bulk.update_each: many rows, each with its own values, in one statement."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tierdesk.core import bulk
from tierdesk.core.models import OutboxEvent
from tierdesk.tickets.models import Tag, Ticket
from tierdesk.tiers.services import tier_by_code


def test_each_row_gets_its_own_values_and_no_other_row_changes(cast: Cast) -> None:
    made = [make_ticket(cast.lena, cast.acme, cast.alice, subject=f"t{i}") for i in range(5)]
    untouched = make_ticket(cast.lena, cast.acme, cast.alice, subject="untouched")
    before = Ticket.objects.values().get(pk=untouched.pk)
    base = dt.datetime(2026, 1, 1, 12, 0, 30, 123456, tzinfo=dt.UTC)
    l2, l3 = tier_by_code("L2"), tier_by_code("L3")
    for i, t in enumerate(made):
        t.tier = l2 if i % 2 else l3
        t.tier_entered_at = base + dt.timedelta(hours=i)
        t.assignee = None if i % 2 else cast.omar  # a NULL among the values
        t.version = 40 + i
    with CaptureQueriesContext(connection) as ctx:
        assert bulk.update_each(made, ["tier", "tier_entered_at", "assignee", "version"]) == 5
    assert len(ctx.captured_queries) == 1
    for i, t in enumerate(made):
        stored = Ticket.objects.get(pk=t.pk)
        assert stored.tier == (l2 if i % 2 else l3)
        assert stored.tier_entered_at == base + dt.timedelta(hours=i)  # microseconds kept
        assert stored.assignee_id == (None if i % 2 else cast.omar.pk)
        assert stored.version == 40 + i
        assert stored.subject == f"t{i}", "a field not named was written"
    assert Ticket.objects.values().get(pk=untouched.pk) == before


def test_many_rows_are_split_under_the_parameter_limit(db: None) -> None:
    tags = Tag.objects.bulk_create([Tag(name=f"tag-{i:04d}") for i in range(600)])
    for t in tags:
        t.name = t.name.replace("tag-", "renamed-")
    # 600 rows x 2 parameters (id, name) stay under SQLite's 999 per statement in two
    # statements; PostgreSQL takes one array per column, in one.
    with CaptureQueriesContext(connection) as ctx:
        assert bulk.update_each(tags, ["name"]) == 600
    assert len(ctx.captured_queries) == (1 if connection.vendor == "postgresql" else 2)
    assert sorted(Tag.objects.values_list("name", flat=True)) == [
        f"renamed-{i:04d}" for i in range(600)
    ]


def test_nothing_to_write_sends_nothing(cast: Cast) -> None:
    with CaptureQueriesContext(connection) as ctx:
        assert bulk.update_each([], ["version"]) == 0
    assert ctx.captured_queries == []


def test_inserts_set_primary_keys_in_order_and_keep_every_value(cast: Cast) -> None:
    at = dt.datetime(2026, 3, 1, 8, 30, 0, 654321, tzinfo=dt.UTC)
    # 300 events x 13 columns: four statements under SQLite's limit of 999 parameters;
    # one array per column on PostgreSQL, in one.
    events = [
        OutboxEvent(
            name=f"test.{i}",
            organization=cast.acme if i % 2 else None,
            aggregate_type="ticket",
            aggregate_id=str(i),
            payload={"i": i, "text": "ünïcödé 'quoted'", "nested": [1, None, {"a": True}]},
            created_at=at + dt.timedelta(seconds=i),
        )
        for i in range(300)
    ]
    with CaptureQueriesContext(connection) as ctx:
        assert bulk.insert_all(events) is events
    columns = len([f for f in OutboxEvent._meta.concrete_fields if not f.primary_key])
    assert columns == 13
    assert len(ctx.captured_queries) == (1 if connection.vendor == "postgresql" else 4)
    assert all(e.pk is not None and not e._state.adding for e in events)
    stored = {e.pk: e for e in OutboxEvent.objects.filter(name__startswith="test.")}
    assert len(stored) == 300
    for i, e in enumerate(events):
        row = stored[e.pk]
        assert row.name == f"test.{i}", "primary keys were handed out of order"
        assert row.organization_id == (cast.acme.pk if i % 2 else None)
        assert row.payload == {"i": i, "text": "ünïcödé 'quoted'", "nested": [1, None, {"a": True}]}
        assert row.created_at == at + dt.timedelta(seconds=i)
        assert row.dispatched_at is None
        assert row.attempts == 0


def test_a_refused_insert_writes_none_of_its_rows(cast: Cast) -> None:
    Tag.objects.create(name="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        bulk.insert_all([Tag(name="fresh"), Tag(name="taken")])
    assert not Tag.objects.filter(name="fresh").exists()


def test_one_row_with_a_null_is_written_too(cast: Cast) -> None:
    # One row takes another statement shape on PostgreSQL than many; a NULL must still
    # reach a typed column (a bare VALUES row would carry it as text).
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, assignee=cast.lena)
    ticket.assignee = None
    ticket.first_response_at = None
    assert bulk.update_each([ticket], ["assignee", "first_response_at"]) == 1
    ticket.refresh_from_db()
    assert ticket.assignee_id is None
    one = bulk.insert_all([Tag(name="single")])[0]
    assert Tag.objects.get(pk=one.pk).name == "single"
