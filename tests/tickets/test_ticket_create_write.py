"""ticket_create's write: the number, the ticket, its first timeline entries and its outbox
events (one statement on PostgreSQL, four on SQLite) store exactly what the service hands
back."""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tierdesk.core import config
from tierdesk.core.models import OutboxEvent
from tierdesk.tickets.models import Ticket, TimelineEntry
from tierdesk.tiers.models import Category, Tier
from tierdesk.tiers.services import category_create


def _columns(obj: models.Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_the_ticket_handed_back_is_the_row_stored(cast: Cast) -> None:
    category = category_create(
        actor=cast.admin,
        name="Laptops",
        slug="laptops",
        default_tier=Tier.objects.get(code="L2"),
        form_fields=[{"key": "asset", "label": "Asset tag", "type": "text", "required": True}],
    )
    ticket = make_ticket(
        cast.lena,
        cast.acme,
        cast.alice,
        subject="Ünïcode, 'quotes' and a \\ backslash",
        description="line one\nline two",
        category=category,
        impact=1,
        urgency=3,
        details={"asset": "NB-0042"},
    )
    stored = Ticket.objects.get(pk=ticket.pk)
    assert _columns(ticket) == _columns(stored)
    assert (stored.key, stored.tier.code, stored.details) == ("ACME-1", "L2", {"asset": "NB-0042"})
    assert ticket._state.adding is False  # a later save() updates the row


def test_the_first_timeline_entries_belong_to_the_new_ticket(cast: Cast) -> None:
    other = make_ticket(cast.gus, cast.globex, cast.gerd)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    entries = list(TimelineEntry.objects.filter(ticket=ticket).order_by("id"))
    assert [(e.kind, e.actor_id) for e in entries] == [
        ("created", cast.lena.pk),
        ("routed", None),
    ]
    assert entries[1].field == "tier"
    assert "L1" in entries[1].new_value
    assert all(e.at >= ticket.created_at for e in entries)
    assert TimelineEntry.objects.filter(ticket=other).count() == 2
    assert (ticket.number, other.number) == (1, 1)


def test_an_assigned_ticket_gets_three_entries_and_its_agent(cast: Cast) -> None:
    Tier.objects.filter(code="L1").update(assignment_strategy="round_robin")
    config.changed()
    ticket = make_ticket(cast.alice, cast.acme)
    assert ticket.assignee == cast.lena
    kinds = list(TimelineEntry.objects.filter(ticket=ticket).order_by("id").values_list("kind"))
    assert kinds == [("created",), ("routed",), ("assigned",)]
    assert Ticket.objects.get(pk=ticket.pk).assignee_id == cast.lena.pk


def test_postgresql_numbers_and_inserts_the_ticket_in_one_statement(cast: Cast) -> None:
    network = Category.objects.get(slug="network", organization__isnull=True)
    make_ticket(cast.lena, cast.acme, cast.alice, category=network)  # statements prepared
    with CaptureQueriesContext(connection) as ctx:
        make_ticket(cast.lena, cast.acme, cast.alice, category=network)
    writes = [
        q["sql"] for q in ctx.captured_queries if q["sql"].startswith(("INSERT", "UPDATE", "WITH"))
    ]
    # PostgreSQL: number, ticket, timeline and outbox event in one statement;
    # SQLite: number, ticket, timeline, outbox
    expected = 1 if connection.vendor == "postgresql" else 4
    assert len(writes) == expected, "\n".join(writes)


def test_the_new_tickets_events_name_it(cast: Cast) -> None:
    Tier.objects.filter(code="L1").update(assignment_strategy="round_robin")
    config.changed()
    make_ticket(cast.gus, cast.globex, cast.gerd)  # another organization's ticket first
    ticket = make_ticket(cast.alice, cast.acme)
    stored = list(
        OutboxEvent.objects.filter(aggregate_type="ticket", aggregate_id=str(ticket.pk)).order_by(
            "id"
        )
    )
    assert [e.name for e in stored] == ["ticket.created", "ticket.assigned"]
    for event in stored:
        assert (event.aggregate_type, event.organization_id) == ("ticket", cast.acme.pk)
        assert event.payload["id"] == ticket.pk
        assert event.payload["key"] == ticket.key == "ACME-1"
        assert event.payload["tier"] == "L1"
        assert event.payload["version"] == ticket.version
    assert stored[0].payload["requester_id"] == cast.alice.pk
    assert stored[0].payload["assignee_id"] == cast.lena.pk
    assert stored[1].payload["assignee_id"] == cast.lena.pk
