"""The demo data: a realistic MSP, written through the services."""

from __future__ import annotations

import pytest
from django.db.models import Count

from tierdesk.core.models import Organization, OutboxEvent, Role, User
from tierdesk.demo import DEMO_LOGINS, seed_demo
from tierdesk.tickets.models import Status, Ticket, TimelineEntry


@pytest.mark.django_db
def test_the_demo_looks_like_a_real_msp() -> None:
    summary = seed_demo(tickets=300, days=30, seed=7)
    assert "300 tickets" in summary
    zones = set(Organization.objects.values_list("time_zone", flat=True))
    assert len(zones) == 3
    agents = User.objects.filter(role=Role.AGENT)
    assert agents.count() == 12
    tiers = dict(agents.values_list("agent_profile__tier__code").annotate(n=Count("id")))
    assert set(tiers) == {"L1", "L2", "L3"}
    assert all(u.agent_profile.hours.exists() for u in agents)
    assert set(User.objects.values_list("email", flat=True)) >= {e for e, _, _ in DEMO_LOGINS}

    tickets = Ticket.objects.all()
    assert tickets.count() == 300
    done = tickets.filter(status__in=[Status.RESOLVED, Status.CLOSED])
    at_l1 = done.filter(tier__code="L1").count()
    assert 0.5 < at_l1 / done.count() < 0.85  # most end at L1
    assert done.filter(tier__code="L3").exists()
    assert tickets.filter(reopen_count__gt=0).exists()
    assert TimelineEntry.objects.filter(new_value=Status.PENDING_CUSTOMER).exists()
    assert tickets.filter(status__in=[Status.NEW, Status.OPEN, Status.IN_PROGRESS]).exists()
    # Written through the services: every ticket has its history and its event.
    assert TimelineEntry.objects.filter(kind="created").count() == 300
    assert OutboxEvent.objects.filter(name="ticket.created").count() == 300
    first, last = tickets.order_by("created_at").first(), tickets.order_by("created_at").last()
    assert first
    assert last
    assert (last.created_at - first.created_at).days >= 25
