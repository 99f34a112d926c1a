"""Bulk actions on queue rows: each ticket is changed on its own with every check a single
change has; refusals are listed and do not stop the others. A form that cannot be applied
at all comes back on the queue with the message beside the field, what was typed and the
rows still ticked."""

from __future__ import annotations

import re

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


def refused(client: Client, tickets: list[Ticket], **data: object) -> str:
    """Post a bulk form that is refused as a whole: the queue comes back, with status 400."""
    r = client.post("/console/queue/l1/bulk", {"tickets": [t.pk for t in tickets], **data})
    assert r.status_code == 400
    return r.content.decode()


def ticked(page: str) -> set[int]:
    """The ids of the rows whose box is ticked."""
    boxes = re.findall(r'<input type="checkbox" name="tickets" value="(\d+)"[^>]*>', page)
    tags = re.findall(r'<input type="checkbox" name="tickets" value="\d+"[^>]*>', page)
    return {int(pk) for pk, tag in zip(boxes, tags, strict=True) if " checked" in tag}


def control(page: str, name: str) -> str:
    m = re.search(rf'<(?:input|select)\b[^>]*\bid="bulk_{name}"[^>]*>', page)
    assert m, name
    return m.group(0)


def test_bulk_escalation_needs_its_reason_and_handoff(cast: Cast) -> None:
    a = make_ticket(cast.lena, cast.acme, cast.alice)
    b = make_ticket(cast.lena, cast.acme, cast.bob)
    c = make_ticket(cast.lena, cast.acme, cast.bob)
    client = signed_in(cast.lena)
    page = refused(
        client, [a, b], action="escalate", to_tier="L2", reason="",
        handoff_note="Checked service health", query="?text=printer&sort=number",
    )  # fmt: skip
    assert not Escalation.objects.exists()
    # the message beside the field, linked to it for screen readers
    assert '<p class="error" id="bulk_reason_error">Required for this action.</p>' in page
    reason = control(page, "reason")
    assert 'aria-describedby="bulk_reason_error"' in reason
    assert 'aria-invalid="true"' in reason
    assert 'id="bulk_handoff_note_error"' not in page
    # what was typed and chosen, and the selection, stay; the bulk panel is open
    assert 'value="Checked service health"' in control(page, "handoff_note")
    assert re.search(r'<option value="L2" selected>', page)
    assert re.search(r'<option value="escalate" selected>', page)
    assert "<details open><summary>Bulk action" in page
    assert ticked(page) == {a.pk, b.pk}
    assert c.pk not in ticked(page)
    # the queue is shown as it was: its filters, sort and the address it refreshes from
    assert re.search(r'<input type="text" name="text" value="printer"', page)
    assert 'hx-get="/console/queue/l1?text=printer&amp;sort=number"' in page
    assert 'name="query" value="?text=printer&amp;sort=number"' in page
    r = client.post(
        "/console/queue/l1/bulk",
        {
            "tickets": [a.pk, b.pk],
            "action": "escalate",
            "to_tier": "L2",
            "reason": "Exchange outage",
            "handoff_note": "Checked service health",
            "query": "?text=printer&sort=number&evil=1",
        },
    )
    assert r.status_code == 302
    assert r["Location"] == "/console/queue/l1?text=printer&sort=number"  # filters only
    assert Escalation.objects.filter(reason="Exchange outage").count() == 2


def test_assigning_needs_an_assignee_and_changing_status_a_status(cast: Cast) -> None:
    a = make_ticket(cast.lena, cast.acme, cast.alice)
    client = signed_in(cast.lena)
    page = refused(client, [a], action="assign", assignee="")
    assert '<p class="error" id="bulk_assignee_error">Required for this action.</p>' in page
    assert ticked(page) == {a.pk}
    page = refused(client, [a], action="status", status="closed")  # not offered in bulk
    assert re.search(r'<p class="error" id="bulk_status_error">Select a valid choice', page)
    page = refused(client, [a], action="fly")
    assert re.search(r'<p class="error" id="bulk_action_error">Select a valid choice', page)
    assert Ticket.objects.get(pk=a.pk).assignee_id is None
    assert Ticket.objects.get(pk=a.pk).status == "new"


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
    make_ticket(cast.lena, cast.acme, cast.alice)
    page = refused(client, [], action="take")
    assert re.search(
        r"<details open><summary>Bulk action[^<]*</summary>\s*"
        r'<div class="form-error" role="alert"><p>Select at least one ticket.</p></div>',
        page,
    )
    assert ticked(page) == set()
    r = client.post(
        "/console/queue/l1/bulk", {"tickets": [str(i) for i in range(1, 102)], "action": "take"}
    )
    assert r.status_code == 400
    assert "At most 100 tickets at once." in r.content.decode()
    assert not Ticket.objects.filter(assignee__isnull=False).exists()
    assert client.post("/console/queue/l9/bulk", {"action": "take"}).status_code == 404


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
