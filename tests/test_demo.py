"""The demo data: a realistic MSP, written through the services."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from django.db.models import Count

from tests.processes import django_eval, fresh_install, tierdesk
from tierdesk.core.models import Organization, OutboxEvent, Role, User
from tierdesk.demo import DEMO_LOGINS, seed_demo
from tierdesk.kb.models import Article
from tierdesk.kb.queries import article_search
from tierdesk.reports.models import TicketFact
from tierdesk.reports.queries import cost as report_cost
from tierdesk.reports.queries import summary as report_summary
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
    # A knowledge base of its own, searchable by a requester in their words.
    assert Article.objects.count() >= 150
    assert Article.objects.filter(status="published", audience="public").count() >= 90
    alice = User.objects.get(email="alice@acme.example")
    hits = article_search(actor=alice, text="outlook keeps asking for my password")
    assert hits
    readable = Article.objects.filter(pk__in=[h.article_id for h in hits])
    assert set(readable.values_list("audience", flat=True)) <= {"public", "organization"}
    # The reports have their figures at once: every ticket's facts, as a rebuild makes them.
    assert TicketFact.objects.count() == 300
    admin = User.objects.get(role=Role.ADMIN)
    figures = report_summary(actor=admin, organization=None, first_day=None, last_day=None)
    assert figures["created"] > 250  # the last 30 days
    assert 0.5 < figures["l1_resolution_rate"] < 0.85
    assert figures["escalation_rate_l1_l2"] > 0
    spent = report_cost(actor=admin, organization=None, first_day=None, last_day=None)
    assert spent["total"] > 0
    assert spent["saving_if_shifted"] > 0


def test_the_demo_command_seeds_a_fresh_installation(tmp_path: Path) -> None:
    """`tierdesk demo` as a user runs it: on PostgreSQL (the CI pass) the tickets are seeded
    by one process per organization, on SQLite by one; either way every organization's
    numbers are gap-free and every ticket has its history and its event."""
    with fresh_install(tmp_path) as env:
        done = tierdesk(env, "demo", "--tickets", "90", "--days", "10", "--workers", "3")
        assert done.returncode == 0, done.stderr
        assert "90 tickets" in done.stdout
        parallel = os.environ.get("DATABASE_URL", "").startswith("postgres")
        assert ("ACME:" in done.stdout) is parallel, done.stdout
        census = json.loads(
            django_eval(
                env,
                "import json\n"
                "from django.db.models import Count, Max\n"
                "from tierdesk.core.models import OutboxEvent\n"
                "from tierdesk.tickets.models import Ticket, TimelineEntry\n"
                "print(json.dumps({\n"
                "  'orgs': list(Ticket.objects.values_list('organization__code')"
                ".annotate(n=Count('id'), top=Max('number')).order_by('organization__code')),\n"
                "  'created': TimelineEntry.objects.filter(kind='created').count(),\n"
                "  'events': OutboxEvent.objects.filter(name='ticket.created').count(),\n"
                "}))",
            ).splitlines()[-1]
        )
        assert [code for code, _, _ in census["orgs"]] == ["ACME", "GLOBEX", "INITECH"]
        assert all(n == top for _, n, top in census["orgs"]), census["orgs"]  # gap-free
        assert sum(n for _, n, _ in census["orgs"]) == 90
        assert census["created"] == census["events"] == 90
