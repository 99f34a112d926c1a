"""Links and merges through the API: /tickets/{ref}/links and /tickets/{ref}/merge, with
the API's usual rules (problem details, If-Match, idempotency keys, 404 across tenants)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.core.models import User
from tierdesk.tickets.models import Comment, Status, Ticket, TicketLink

ApiAs = Callable[[User | None], Api]


@pytest.fixture
def tickets(cast: Cast) -> tuple[Ticket, Ticket, Ticket]:
    """ACME-1 (alice's), ACME-2 (bob's duplicate of it), GLOBEX-1."""
    primary = make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN drops")
    duplicate = make_ticket(cast.lena, cast.acme, cast.bob, subject="VPN keeps dropping")
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd, subject="Globex printer")
    return primary, duplicate, theirs


def test_link_list_and_unlink(cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]) -> None:
    api = api_as(cast.lena)
    created = api.post("/tickets/ACME-2/links", {"target": "ACME-1", "kind": "duplicate_of"})
    assert created.status_code == 201, created.content
    body = created.json()
    link_id = body["id"]
    assert created["Location"] == f"/api/v1/tickets/ACME-2/links/{link_id}"
    assert body["kind"] == "duplicate_of"
    assert body["direction"] == "outgoing"
    assert body["label"] == "Duplicate of"
    assert body["ticket"]["key"] == "ACME-1"
    assert body["merge"] is False
    other_side = api.get("/tickets/ACME-1/links").json()
    assert [(x["id"], x["direction"], x["label"], x["ticket"]["key"]) for x in other_side] == [
        (link_id, "incoming", "Has duplicate", "ACME-2")
    ]
    assert api.delete(f"/tickets/ACME-1/links/{link_id}").status_code == 204
    assert api.get("/tickets/ACME-2/links").json() == []
    gone = api.delete(f"/tickets/ACME-1/links/{link_id}")
    assert gone.status_code == 404
    assert gone["Content-Type"] == "application/problem+json"


def test_the_target_may_be_named_by_id(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    primary = tickets[0]
    r = api_as(cast.lena).post(
        "/tickets/ACME-2/links", {"target": str(primary.pk), "kind": "related_to"}
    )
    assert r.status_code == 201, r.content
    assert r.json()["ticket"]["key"] == "ACME-1"


def test_link_refusals_are_problem_details_beside_the_field(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    api = api_as(cast.omar)  # serves ACME and GLOBEX
    itself = api.post("/tickets/ACME-1/links", {"target": "ACME-1", "kind": "related_to"})
    assert itself.status_code == 422
    assert problem_fields(itself) == ["target"]
    across = api.post("/tickets/ACME-1/links", {"target": "GLOBEX-1", "kind": "related_to"})
    assert across.status_code == 422
    assert across.json()["errors"][0]["message"] == "no such ticket in this organization"
    missing = api.post("/tickets/ACME-1/links", {"target": "ACME-99", "kind": "related_to"})
    assert missing.json()["errors"] == across.json()["errors"]
    bad_kind = api.post("/tickets/ACME-1/links", {"target": "ACME-2", "kind": "blocks"})
    assert bad_kind.status_code == 422
    first = api.post("/tickets/ACME-1/links", {"target": "ACME-2", "kind": "related_to"})
    assert first.status_code == 201
    twice = api.post("/tickets/ACME-2/links", {"target": "ACME-1", "kind": "duplicate_of"})
    assert twice.status_code == 409
    assert problem_fields(twice) == ["target"]
    assert TicketLink.objects.count() == 1


def test_an_if_match_when_sent_is_checked(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    api = api_as(cast.lena)
    stale = api.post(
        "/tickets/ACME-2/links",
        {"target": "ACME-1", "kind": "related_to"},
        headers={"If-Match": '"v99"'},
    )
    assert stale.status_code == 412
    version = api.get("/tickets/ACME-2")["ETag"]
    ok = api.post(
        "/tickets/ACME-2/links",
        {"target": "ACME-1", "kind": "related_to"},
        headers={"If-Match": version},
    )
    assert ok.status_code == 201


def test_a_link_is_idempotent_with_a_key(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    api = api_as(cast.lena)
    payload = {"target": "ACME-1", "kind": "related_to"}
    first = api.post("/tickets/ACME-2/links", payload, headers={"Idempotency-Key": "l-1"})
    again = api.post("/tickets/ACME-2/links", payload, headers={"Idempotency-Key": "l-1"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()
    assert TicketLink.objects.count() == 1


def test_another_tenants_ticket_is_404_for_every_link_operation(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    theirs = tickets[2]
    link = api_as(cast.gus).post(
        "/tickets/GLOBEX-1/links",
        {"target": str(make_ticket(cast.gus, cast.globex, cast.gerd).pk), "kind": "related_to"},
    )
    assert link.status_code == 201
    link_id = link.json()["id"]
    api = api_as(cast.lena)  # ACME only
    answers = [
        api.get("/tickets/GLOBEX-1/links"),
        api.post("/tickets/GLOBEX-1/links", {"target": "GLOBEX-2", "kind": "related_to"}),
        api.delete(f"/tickets/GLOBEX-1/links/{link_id}"),
        api.post("/tickets/GLOBEX-1/merge", {"target": "GLOBEX-2"}, headers={"If-Match": "*"}),
        # through one of her own tickets: the link is not there
        api.delete(f"/tickets/ACME-1/links/{link_id}"),
    ]
    assert [a.status_code for a in answers] == [404] * 5
    assert TicketLink.objects.filter(pk=link_id).exists()
    assert Ticket.objects.get(pk=theirs.pk).status != Status.CLOSED


def test_requesters_may_not_link_or_merge(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    carol = api_as(cast.carol)  # sees all of ACME's tickets
    linked = carol.post("/tickets/ACME-2/links", {"target": "ACME-1", "kind": "related_to"})
    assert linked.status_code == 403
    merged = carol.post("/tickets/ACME-2/merge", {"target": "ACME-1"}, headers={"If-Match": "*"})
    assert merged.status_code == 403
    alice = api_as(cast.alice)  # sees only ACME-1: bob's ticket does not exist for her
    assert alice.post("/tickets/ACME-2/merge", {"target": "ACME-1"}).status_code == 404
    assert not TicketLink.objects.exists()


def test_merge(cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]) -> None:
    api = api_as(cast.lena)
    api.post("/tickets/ACME-2/comments", {"body": "It dropped again"})
    etag = api.get("/tickets/ACME-2")["ETag"]
    target_version = api.get("/tickets/ACME-1").json()["version"]
    no_match = api.post("/tickets/ACME-2/merge", {"target": "ACME-1"})
    assert no_match.status_code == 428
    stale_target = api.post(
        "/tickets/ACME-2/merge",
        {"target": "ACME-1", "target_version": target_version + 5},
        headers={"If-Match": etag},
    )
    assert stale_target.status_code == 412
    public = api.post(  # alice would read bob's ticket
        "/tickets/ACME-2/merge",
        {"target": "ACME-1", "target_version": target_version, "public": True},
        headers={"If-Match": etag},
    )
    assert public.status_code == 422
    assert public.json()["errors"][0]["field"] == "public"
    r = api.post(
        "/tickets/ACME-2/merge",
        {"target": "ACME-1", "target_version": target_version},
        headers={"If-Match": etag},
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["source"]["status"] == "closed"
    assert body["source"]["resolution_code"] == "duplicate"
    assert r["ETag"] == f'"v{body["source"]["version"]}"'
    note = Comment.objects.get(pk=body["note_id"])
    assert note.ticket.key == "ACME-1"
    assert note.is_internal
    assert "It dropped again" in note.body
    links = api.get("/tickets/ACME-2/links").json()
    assert [(x["kind"], x["ticket"]["key"], x["merge"]) for x in links] == [
        ("duplicate_of", "ACME-1", True)
    ]
    # the merge link stays; the closed ticket cannot be merged again
    assert api.delete(f"/tickets/ACME-1/links/{links[0]['id']}").status_code == 409
    again = api.post("/tickets/ACME-2/merge", {"target": "ACME-1"}, headers={"If-Match": "*"})
    assert again.status_code == 409
    kinds = [e["kind"] for e in api.get("/tickets/ACME-2/timeline").json()]
    assert "merged" in kinds


def test_a_merge_into_another_tenants_ticket_is_refused_as_missing(
    cast: Cast, api_as: ApiAs, tickets: tuple[Ticket, ...]
) -> None:
    r = api_as(cast.omar).post(
        "/tickets/ACME-2/merge", {"target": "GLOBEX-1"}, headers={"If-Match": "*"}
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "target", "message": "no such ticket in this organization"}
    ]
    assert Ticket.objects.get(pk=tickets[1].pk).status != Status.CLOSED
