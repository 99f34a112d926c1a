"""The tickets API: contract details a client relies on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.core.models import OutboxEvent, User
from tierdesk.tickets.models import Comment, Ticket
from tierdesk.tiers.queries import category_for_organization
from tierdesk.tiers.services import RuleConditions, routing_rule_create

ApiAs = Callable[[User | None], Api]


def test_create_read_update_resolve(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    created = api.post(
        "/tickets",
        {
            "organization": "ACME",
            "subject": "VPN down",
            "requester": "alice@acme.example",
            "category": "network",
            "urgency": 1,
            "source": "phone",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"] == "ACME-1"
    assert (body["tier"], body["priority"], body["status"]) == ("L2", "P2", "new")
    assert created["Location"] == "/api/v1/tickets/ACME-1"
    assert created["ETag"] == '"v1"'

    read = api.get("/tickets/ACME-1")
    assert read.status_code == 200
    assert read["ETag"] == '"v1"'
    assert api.get(f"/tickets/{body['id']}").json()["key"] == "ACME-1"

    patched = api.patch(
        "/tickets/ACME-1",
        {"assignee": "lena@msp.example", "priority": "P1"},
        headers={"If-Match": '"v1"'},
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["assignee"]["email"] == "lena@msp.example"
    assert patched["ETag"] == '"v2"'

    resolved = api.post(
        "/tickets/ACME-1/status",
        {
            "status": "resolved",
            "resolution_code": "fixed",
            "resolution_note": "Rebooted the FW",
        },
        headers={"If-Match": '"v2"'},
    )
    assert resolved.status_code == 200, resolved.content
    assert resolved.json()["status"] == "resolved"
    kinds = [e["kind"] for e in api.get("/tickets/ACME-1/timeline").json()]
    assert kinds[0] == "created"
    assert "status_changed" in kinds


def test_a_stale_if_match_gets_412_and_a_missing_one_428(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.lena)
    assert (
        api.patch("/tickets/ACME-1", {"subject": "a"}, headers={"If-Match": '"v1"'}).status_code
        == 200
    )
    stale = api.patch("/tickets/ACME-1", {"subject": "b"}, headers={"If-Match": '"v1"'})
    assert stale.status_code == 412
    assert stale["Content-Type"] == "application/problem+json"
    missing = api.patch("/tickets/ACME-1", {"subject": "c"})
    assert missing.status_code == 428
    garbage = api.patch("/tickets/ACME-1", {"subject": "d"}, headers={"If-Match": 'W/"v2"'})
    assert garbage.status_code == 412
    assert api.post("/tickets/ACME-1/status", {"status": "open"}).status_code == 428
    assert Ticket.objects.get().subject == "a"


def test_an_idempotency_key_returns_the_first_answer(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    payload = {"organization": "ACME", "subject": "Once", "requester": "alice@acme.example"}
    first = api.post("/tickets", payload, headers={"Idempotency-Key": "k-1"})
    again = api.post("/tickets", payload, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Ticket.objects.count() == 1
    assert OutboxEvent.objects.filter(name="ticket.created").count() == 1
    other = api.post(
        "/tickets", {**payload, "subject": "Different"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 409
    assert problem_fields(other) == ["Idempotency-Key"]
    # Keys belong to their user: the same key from someone else is a new request.
    assert (
        api_as(cast.omar).post("/tickets", payload, headers={"Idempotency-Key": "k-1"}).status_code
        == 201
    )
    assert Ticket.objects.count() == 2


def test_a_failed_create_does_not_burn_the_idempotency_key(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    bad = api.post(
        "/tickets",
        {"organization": "ACME", "subject": "x", "requester": "nobody@x.example"},
        headers={"Idempotency-Key": "k-2"},
    )
    assert bad.status_code == 422
    # Nothing was stored for the refused request, so the corrected retry goes through.
    good = api.post(
        "/tickets",
        {"organization": "ACME", "subject": "x", "requester": "alice@acme.example"},
        headers={"Idempotency-Key": "k-2"},
    )
    assert good.status_code == 201
    assert Ticket.objects.count() == 1


def test_comments_are_idempotent_too(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.alice)
    for _ in range(2):
        r = api.post(
            "/tickets/ACME-1/comments", {"body": "hello"}, headers={"Idempotency-Key": "c-1"}
        )
        assert r.status_code == 201
    assert Comment.objects.count() == 1


BAD_BODIES = [
    ('{"organization": "ACME", "subject": ', 400, ["body"]),
    ("[1, 2]", 422, None),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", "colour": 1}',
        422,
        ["colour"],
    ),
    (
        '{"organization": "ACME", "subject": 12, "requester": "alice@acme.example"}',
        422,
        ["subject"],
    ),
    ('{"organization": "ACME", "requester": "alice@acme.example"}', 422, ["subject"]),
    (
        json.dumps(
            {"organization": "ACME", "subject": "x" * 251, "requester": "alice@acme.example"}
        ),
        422,
        ["subject"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", "impact": 7}',
        422,
        ["impact"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", '
        '"priority": "P0"}',
        422,
        ["priority"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", '
        '"source": "fax"}',
        422,
        ["source"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "gerd@globex.example"}',
        422,
        ["requester"],
    ),
    (
        '{"organization": "GLOBEX", "subject": "x", "requester": "gerd@globex.example"}',
        422,
        ["organization"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", '
        '"assignee": "gus@msp.example"}',
        422,
        ["assignee"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", '
        '"category": "nope"}',
        422,
        ["category"],
    ),
    (
        '{"organization": "ACME", "subject": "x", "requester": "alice@acme.example", "tier": "L9"}',
        422,
        ["tier"],
    ),
]


@pytest.mark.parametrize(("raw", "status", "fields"), BAD_BODIES)
def test_bad_input_is_a_problem_naming_the_field_and_stores_nothing(
    cast: Cast, api_as: ApiAs, raw: str, status: int, fields: list[str] | None
) -> None:
    events = OutboxEvent.objects.count()
    response = api_as(cast.lena).post("/tickets", raw=raw)
    assert response.status_code == status, response.content
    named = problem_fields(response)
    if fields is not None:
        assert named == fields
    assert Ticket.objects.count() == 0
    assert OutboxEvent.objects.count() == events


def test_a_body_that_is_not_json_at_all(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    response = api.client.post(
        "/api/v1/tickets", data=b"\xff\xfe", content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert problem_fields(response) == ["body"]


@pytest.mark.parametrize(
    "query",
    [
        "ordering=requester__password",
        "status=done",
        "limit=0",
        "limit=201",
        "assignee=x",
        "cursor=not-a-cursor",
        "priority=P9",
    ],
)
def test_list_accepts_only_allow_listed_filters_and_ordering(
    cast: Cast, api_as: ApiAs, query: str
) -> None:
    response = api_as(cast.lena).client.get(
        f"/api/v1/tickets?{query}", headers=api_as(cast.lena).headers
    )
    assert response.status_code == 422, response.content
    assert problem_fields(response)


def test_list_filters(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice, subject="Printer jam", urgency=1, impact=1)
    make_ticket(cast.lena, cast.acme, cast.bob, subject="VPN slow")
    make_ticket(cast.omar, cast.globex, cast.gerd, subject="Printer jam too")
    api = api_as(cast.omar)

    def keys(query: str) -> set[str]:
        r = api.client.get(f"/api/v1/tickets?{query}", headers=api.headers)
        assert r.status_code == 200, r.content
        return {t["key"] for t in r.json()["items"]}

    assert keys("") == {"ACME-1", "ACME-2", "GLOBEX-1"}
    assert keys("organization=GLOBEX") == {"GLOBEX-1"}
    assert keys("text=printer") == {"ACME-1", "GLOBEX-1"}
    assert keys("text=ACME-2") == {"ACME-2"}
    assert keys("priority=P1") == {"ACME-1"}
    assert keys("status=new&status=open") == {"ACME-1", "ACME-2", "GLOBEX-1"}
    assert keys("status=resolved") == set()
    assert keys("assignee=none&tier=L1") == {"ACME-1", "ACME-2", "GLOBEX-1"}
    assert keys(f"requester={cast.bob.pk}") == {"ACME-2"}


def test_list_filters_by_tags_category_and_assignee(cast: Cast, api_as: ApiAs) -> None:
    for keyword, tags in (("vpn", ["network", "vpn"]), ("wifi", ["network"])):
        routing_rule_create(
            actor=cast.admin,
            name=f"tag {keyword}",
            conditions=RuleConditions(keywords=[keyword]),
            tags=tags,
        )
    hardware = category_for_organization(cast.acme, "hardware")
    assert hardware is not None
    make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN down")  # ACME-1
    make_ticket(cast.lena, cast.acme, cast.alice, subject="wifi weak", assignee=cast.lena)
    make_ticket(cast.lena, cast.acme, cast.bob, subject="Laptop", category=hardware)  # ACME-3
    api = api_as(cast.omar)

    def keys(query: str) -> set[str]:
        r = api.client.get(f"/api/v1/tickets?{query}", headers=api.headers)
        assert r.status_code == 200, r.content
        return {t["key"] for t in r.json()["items"]}

    assert keys("tag=network") == {"ACME-1", "ACME-2"}
    assert keys("tag=network&tag=VPN") == {"ACME-1"}  # every tag, in any case
    assert keys("tag=nothing-has-this") == set()
    assert keys(f"category={hardware.pk}") == {"ACME-3"}
    assert keys("category=hardware") == {"ACME-3"}
    assert keys(f"assignee={cast.lena.pk}") == {"ACME-2"}
    too_many = "&".join(f"tag=t{i}" for i in range(11))
    r = api.client.get(f"/api/v1/tickets?{too_many}", headers=api.headers)
    assert r.status_code == 422, r.content


def test_the_list_query_count_does_not_grow_with_the_page(cast: Cast, api_as: ApiAs) -> None:
    for i in range(30):
        make_ticket(
            cast.lena,
            cast.acme,
            cast.alice if i % 2 else cast.bob,
            assignee=cast.lena if i % 3 else None,
        )
    api = api_as(cast.lena)
    api.get("/tickets")  # warm up: token last-use stamp
    counts = []
    for limit in (1, 10, 30):
        with CaptureQueriesContext(connection) as ctx:
            r = api.client.get(f"/api/v1/tickets?limit={limit}", headers=api.headers)
        assert r.status_code == 200
        counts.append(len(ctx.captured_queries))
    # 1: the token and its user; 2: the page of tickets with requester, assignee and
    # category joined; 3: their organizations; 4: the configuration token (tiers come from
    # the cache); 5: their tags; 6: their SLA clocks with policy and calendar.
    assert counts == [6, 6, 6], counts


def test_requesters_never_see_internal_notes_through_the_api(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.alice, cast.acme)
    agent = api_as(cast.lena)
    assert (
        agent.post("/tickets/ACME-1/comments", {"body": "secret", "internal": True}).status_code
        == 201
    )
    assert agent.post("/tickets/ACME-1/comments", {"body": "hello"}).status_code == 201
    alice = api_as(cast.alice)
    assert [c["body"] for c in alice.get("/tickets/ACME-1/comments").json()] == ["hello"]
    denied = alice.post("/tickets/ACME-1/comments", {"body": "x", "internal": True})
    assert denied.status_code == 403
    assert all(not e["internal"] for e in alice.get("/tickets/ACME-1/timeline").json())


def test_requesters_may_not_patch(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.alice, cast.acme)
    r = api_as(cast.alice).patch("/tickets/ACME-1", {"subject": "x"}, headers={"If-Match": '"v1"'})
    assert r.status_code == 403


def test_forbidden_transition_is_a_409_naming_status(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    r = api_as(cast.lena).post(
        "/tickets/ACME-1/status", {"status": "closed"}, headers={"If-Match": '"v1"'}
    )
    assert r.status_code == 409
    assert problem_fields(r) == ["status"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/tickets",
            {"organization": "ACME", "subject": "x", "requester": "alice\x00@acme.example"},
        ),
        (
            "/tickets",
            {"organization": "ACME", "subject": "a\x00b", "requester": "alice@acme.example"},
        ),
        ("/tickets/ACME-1/comments", {"body": "nul\x00byte"}),
    ],
)
def test_nul_characters_are_refused_by_field(
    cast: Cast, api_as: ApiAs, path: str, body: dict[str, str]
) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    response = api_as(cast.lena).post(path, body)
    assert response.status_code == 422, response.content
    assert problem_fields(response)
    assert Ticket.objects.count() == 1


def test_nul_in_a_query_filter_is_refused(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    response = api.client.get("/api/v1/tickets?text=a%00b", headers=api.headers)
    assert response.status_code == 422
    assert problem_fields(response) == ["text"]


def test_a_cursor_only_continues_the_list_it_came_from(cast: Cast, api_as: ApiAs) -> None:
    for _ in range(3):
        make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.lena)
    first = api.client.get("/api/v1/tickets?limit=1&status=new", headers=api.headers).json()
    cursor = first["next_cursor"]
    assert cursor
    same = api.client.get(
        f"/api/v1/tickets?limit=1&status=new&cursor={cursor}", headers=api.headers
    )
    assert same.status_code == 200
    other = api.client.get(
        f"/api/v1/tickets?limit=1&status=open&cursor={cursor}", headers=api.headers
    )
    assert other.status_code == 422
    assert problem_fields(other) == ["cursor"]


def test_unknown_paths_and_methods_answer_problem_details(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    missing = api.client.get("/api/v1/nothing-here", headers=api.headers)
    assert missing.status_code == 404
    problem_fields(missing)
    wrong_method = api.client.put("/api/v1/tickets", headers=api.headers)
    assert wrong_method.status_code == 405
    problem_fields(wrong_method)
    assert "GET" in wrong_method["Allow"]


def test_an_oversized_body_is_a_413_problem(cast: Cast, api_as: ApiAs, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {
        "organization": "ACME",
        "subject": "x",
        "requester": "alice@acme.example",
        "description": "y" * 2000,
    }
    response = api_as(cast.lena).post("/tickets", body)
    assert response.status_code == 413
    assert problem_fields(response) == ["body"]
    assert Ticket.objects.count() == 0


def test_unknown_and_foreign_people_get_the_same_answer(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    answers = set()
    for email in ("nobody@acme.example", "gerd@globex.example"):
        r = api.post("/tickets", {"organization": "ACME", "subject": "x", "requester": email})
        answers.add((r.status_code, r.json()["detail"]))
    assert len(answers) == 1


def test_a_requester_who_sees_the_org_cannot_close_a_colleagues_ticket(
    cast: Cast, api_as: ApiAs
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    from tierdesk.tickets.services import ticket_transition

    ticket_transition(
        actor=cast.lena,
        ticket=ticket,
        to_status="resolved",
        resolution_code="fixed",
        resolution_note="ok",
    )
    carol = api_as(cast.carol)
    assert carol.get("/tickets/ACME-1").status_code == 200
    r = carol.post("/tickets/ACME-1/status", {"status": "closed"}, headers={"If-Match": '"v2"'})
    assert r.status_code == 403
    alice = api_as(cast.alice)
    assert (
        alice.post(
            "/tickets/ACME-1/status", {"status": "closed"}, headers={"If-Match": '"v2"'}
        ).status_code
        == 200
    )


def test_list_and_single_answers_format_timestamps_alike(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.lena)
    one = api.get("/tickets/ACME-1").json()["created_at"]
    listed = api.get("/tickets").json()["items"][0]["created_at"]
    assert one == listed


def test_equivalent_filters_keep_the_cursor_valid(cast: Cast, api_as: ApiAs) -> None:
    for _ in range(3):
        make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.lena)
    first = api.client.get(
        "/api/v1/tickets?limit=1&status=new&status=open&tier=L1", headers=api.headers
    ).json()
    cursor = first["next_cursor"]
    again = api.client.get(
        f"/api/v1/tickets?limit=1&status=open&status=new&tier=l1&cursor={cursor}",
        headers=api.headers,
    )
    assert again.status_code == 200, again.content
