"""Bulk actions on queue rows: each ticket is changed on its own with every check a single
change has; refusals are listed and do not stop the others."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.escalation.models import Escalation
from tierdesk.tickets import services
from tierdesk.tickets.models import Ticket

pytestmark = pytest.mark.django_db


def bulk(client: Client, tickets: list[Ticket], **data: object) -> str:
    r = client.post(
        "/console/queue/l1/bulk",
        {"tickets": [t.pk for t in tickets], **data},
        follow=True,
    )
    assert r.status_code == 200
    return r.content.decode()


def test_take_several_at_once(cast: Cast) -> None:
    a = make_ticket(cast.lena, cast.acme, cast.alice)
    b = make_ticket(cast.lena, cast.acme, cast.bob)
    page = bulk(signed_in(cast.lena), [a, b], action="take")
    assert f"Done for 2: {b.key}, {a.key}." in page or f"Done for 2: {a.key}, {b.key}." in page
    assert set(Ticket.objects.values_list("assignee_id", flat=True)) == {cast.lena.pk}


def test_each_ticket_is_checked_and_refusals_are_listed(cast: Cast) -> None:
    fine = make_ticket(cast.lena, cast.acme, cast.alice)
    closed = make_ticket(cast.lena, cast.acme, cast.bob)
    services.ticket_transition(
        actor=cast.lena, ticket=closed, to_status="resolved", resolution_code="fixed",
        resolution_note="done",
    )  # fmt: skip
    closed = services.ticket_transition(actor=cast.lena, ticket=closed, to_status="closed")
    foreign = make_ticket(cast.gus, cast.globex, cast.gerd)
    page = bulk(
        signed_in(cast.lena), [fine, closed, foreign], action="status", status="in_progress"
    )
    assert f"Done for 1: {fine.key}." in page
    assert f"{closed.key}: a closed ticket" in page
    assert f"#{foreign.pk}: not found" in page
    assert Ticket.objects.get(pk=fine.pk).status == "in_progress"
    assert Ticket.objects.get(pk=foreign.pk).status == "new"


def test_bulk_escalation_needs_its_reason_and_handoff(cast: Cast) -> None:
    a = make_ticket(cast.lena, cast.acme, cast.alice)
    b = make_ticket(cast.lena, cast.acme, cast.bob)
    client = signed_in(cast.lena)
    page = bulk(client, [a, b], action="escalate", to_tier="L2", reason="")
    assert "Nothing was changed." in page
    assert "Reason: Required for this action." in page
    assert not Escalation.objects.exists()
    page = bulk(
        client, [a, b], action="escalate", to_tier="L2", reason="Exchange outage",
        handoff_note="Checked service health",
    )  # fmt: skip
    assert "Done for 2" in page
    assert Escalation.objects.filter(reason="Exchange outage").count() == 2


def test_assigning_to_someone_who_does_not_serve_the_organization_is_refused(
    cast: Cast,
) -> None:
    a = make_ticket(cast.omar, cast.acme, cast.alice)
    g = make_ticket(cast.omar, cast.globex, cast.gerd)
    page = bulk(signed_in(cast.omar), [a, g], action="assign", assignee=cast.gus.pk)
    assert f"Done for 1: {g.key}." in page
    assert f"{a.key}: no such agent serving this organization" in page


def test_nothing_selected_or_too_many(cast: Cast) -> None:
    client = signed_in(cast.lena)
    page = bulk(client, [], action="take")
    assert "Select at least one ticket." in page
    r = client.post(
        "/console/queue/l1/bulk",
        {"tickets": [str(i) for i in range(1, 102)], "action": "take"},
        follow=True,
    )
    assert "At most 100 tickets at once." in r.content.decode()


def test_bulk_is_for_staff_and_needs_csrf(cast: Cast) -> None:
    t = make_ticket(cast.alice, cast.acme)
    assert (
        signed_in(cast.alice)
        .post("/console/queue/l1/bulk", {"tickets": [t.pk], "action": "take"})
        .status_code
        == 404
    )
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.lena)
    assert (
        client.post("/console/queue/l1/bulk", {"tickets": [t.pk], "action": "take"}).status_code
        == 403
    )
    assert Ticket.objects.get(pk=t.pk).assignee_id is None
