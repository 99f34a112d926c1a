"""/api/v1/routing-rules and /api/v1/routing/dry-run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Cast, problem_fields
from tierdesk.core.models import AuditEntry, OutboxEvent, User
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.models import RoutingRule
from tierdesk.tiers.services import (
    RuleConditions,
    category_create,
    routing_rule_create,
    tier_by_code,
)

ApiAs = Callable[[User | None], Api]


def written() -> tuple[int, int, int]:
    return (RoutingRule.objects.count(), AuditEntry.objects.count(), OutboxEvent.objects.count())


def acme_rule(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "VPN to L2",
        "organization": "ACME",
        "conditions": {"keywords": ["vpn"], "sources": ["email", "portal"]},
        "actions": {"tier": "L2", "tags": ["vpn"]},
    }
    body.update(over)
    return body


@pytest.fixture
def globex_rule(cast: Cast) -> RoutingRule:
    return routing_rule_create(
        actor=cast.admin,
        name="globex secret rule",
        organization=cast.globex,
        conditions=RuleConditions(requesters=[cast.gerd]),
        tier=tier_by_code("L3"),
    )


# --- CRUD ------------------------------------------------------------------------------------


def test_create_list_get_patch_delete(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    created = api.post(
        "/routing-rules",
        acme_rule(
            conditions={
                "keywords": ["vpn"],
                "requesters": ["bob@acme.example"],
                "categories": ["network"],
            },
            actions={
                "tier": "L2",
                "assignee": "omar@msp.example",
                "priority": "P2",
                "tags": ["vpn"],
            },
        ),
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["organization"] == "ACME"
    assert rule["position"] == 10
    assert rule["is_active"] is True
    assert rule["conditions"] == {
        "categories": ["network"],
        "organizations": [],
        "requesters": ["bob@acme.example"],
        "priorities": [],
        "sources": [],
        "keywords": ["vpn"],
    }
    assert rule["actions"]["tier"] == "L2"
    assert rule["actions"]["priority"] == "P2"
    assert rule["actions"]["assignee"]["email"] == "omar@msp.example"
    assert rule["actions"]["tags"] == ["vpn"]

    listed = api.get("/routing-rules")
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == [rule["id"]]
    got = api.get(f"/routing-rules/{rule['id']}")
    assert got.status_code == 200
    assert got.json() == rule

    patched = api.patch(f"/routing-rules/{rule['id']}", {"name": "Renamed", "position": 5})
    assert patched.status_code == 200, patched.content
    assert (patched.json()["name"], patched.json()["position"]) == ("Renamed", 5)
    assert patched.json()["actions"] == rule["actions"]  # untouched
    assert patched.json()["conditions"] == rule["conditions"]

    gone = api.delete(f"/routing-rules/{rule['id']}")
    assert gone.status_code == 204
    assert api.get(f"/routing-rules/{rule['id']}").status_code == 404
    assert not RoutingRule.objects.exists()
    assert list(
        AuditEntry.objects.filter(target_type="routing_rule")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["routing_rule.created", "routing_rule.updated", "routing_rule.deleted"]


def test_patching_actions_replaces_them(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    rule = api.post("/routing-rules", acme_rule()).json()
    patched = api.patch(f"/routing-rules/{rule['id']}", {"actions": {"tags": ["only-tags"]}})
    assert patched.status_code == 200, patched.content
    assert patched.json()["actions"] == {
        "tier": None, "category": None, "priority": None, "assignee": None, "tags": ["only-tags"],
    }  # fmt: skip
    # an empty set of actions is refused and changes nothing
    before = written()
    empty = api.patch(f"/routing-rules/{rule['id']}", {"actions": {}})
    assert empty.status_code == 422
    assert problem_fields(empty) == ["actions"]
    assert written() == before
    assert api.patch(f"/routing-rules/{rule['id']}", {"name": None}).status_code == 422


def test_admin_creates_msp_wide_rules_and_everyone_staff_reads_them(
    cast: Cast, api_as: ApiAs
) -> None:
    created = api_as(cast.admin).post(
        "/routing-rules",
        {
            "name": "GLOBEX monitoring",
            "conditions": {"organizations": ["GLOBEX"], "sources": ["monitoring"]},
            "actions": {"tier": "L3"},
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["organization"] is None
    assert created.json()["conditions"]["organizations"] == ["GLOBEX"]
    for who in (cast.manager, cast.lena, cast.gus):
        assert [r["id"] for r in api_as(who).get("/routing-rules").json()] == [created.json()["id"]]
    # requesters see no rules at all
    assert api_as(cast.alice).get("/routing-rules").json() == []
    assert api_as(cast.alice).get(f"/routing-rules/{created.json()['id']}").status_code == 404


def test_create_honours_idempotency_keys(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    first = api.post("/routing-rules", acme_rule(), headers={"Idempotency-Key": "r-1"})
    again = api.post("/routing-rules", acme_rule(), headers={"Idempotency-Key": "r-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert RoutingRule.objects.count() == 1
    assert OutboxEvent.objects.filter(name="routing_rule.created").count() <= 1
    other = api.post("/routing-rules", acme_rule(name="Other"), headers={"Idempotency-Key": "r-1"})
    assert other.status_code == 409
    assert problem_fields(other) == ["Idempotency-Key"]
    # a refused create does not burn the key
    bad = api.post(
        "/routing-rules", acme_rule(actions={"tier": "L9"}), headers={"Idempotency-Key": "r-2"}
    )
    assert bad.status_code == 422
    good = api.post("/routing-rules", acme_rule(name="Two"), headers={"Idempotency-Key": "r-2"})
    assert good.status_code == 201
    assert RoutingRule.objects.count() == 2


# --- problems name the field -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "over", "status", "field"),
    [
        ("manager", {"conditions": {"categories": ["globex-erp"]}}, 422, "conditions.categories"),
        ("manager", {"conditions": {"categories": ["no-such"]}}, 422, "conditions.categories"),
        (
            "manager",
            {"conditions": {"requesters": ["gerd@globex.example"]}},
            422,
            "conditions.requesters",
        ),
        (
            "manager",
            {"conditions": {"requesters": ["nobody@acme.example"]}},
            422,
            "conditions.requesters",
        ),
        ("manager", {"conditions": {"organizations": ["ACME"]}}, 422, "conditions.organizations"),
        ("manager", {"actions": {"assignee": "gus@msp.example"}}, 422, "actions.assignee"),
        (
            "manager",
            {"actions": {"tier": "L2", "assignee": "lena@msp.example"}},
            422,
            "actions.assignee",
        ),
        ("manager", {"actions": {"category": "globex-erp"}}, 422, "actions.category"),
        ("manager", {"actions": {}}, 422, "actions"),
        ("manager", {"actions": {"tier": "L9"}}, 422, "tier"),
        ("manager", {"organization": "GLOBEX"}, 422, "organization"),
        ("admin", {"organization": "NOPE"}, 422, "organization"),
    ],
)
def test_refused_creates_name_the_field_and_write_nothing(
    cast: Cast, api_as: ApiAs, who: str, over: dict[str, Any], status: int, field: str
) -> None:
    category_create(
        actor=None, slug="globex-erp", name="Globex ERP", organization=cast.globex,
        default_tier=tier_by_code("L2"),
    )  # fmt: skip
    api = api_as(getattr(cast, who))
    before = written()
    response = api.post("/routing-rules", acme_rule(**over))
    assert response.status_code == status, response.content
    assert field in problem_fields(response), response.content
    assert written() == before
    # another tenant's objects are never echoed back
    assert b"Globex ERP" not in response.content


@pytest.mark.parametrize(
    ("body", "field_start"),
    [
        ({"conditions": {"priorities": ["P9"]}}, "conditions.priorities"),
        ({"conditions": {"sources": ["pigeon"]}}, "conditions.sources"),
        ({"actions": {"priority": "P0"}}, "actions.priority"),
        ({"conditions": {"colour": ["red"]}}, "conditions.colour"),
        ({"conditions": {"keywords": [""]}}, "conditions.keywords"),
    ],
)
def test_schema_violations_name_the_field(
    cast: Cast, api_as: ApiAs, body: dict[str, Any], field_start: str
) -> None:
    api = api_as(cast.manager)
    before = written()
    response = api.post("/routing-rules", acme_rule(**body))
    assert response.status_code == 422, response.content
    fields = problem_fields(response)
    assert any(f.startswith(field_start) for f in fields), fields
    assert written() == before


def test_manager_may_not_create_msp_wide_rules(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    before = written()
    body = acme_rule()
    del body["organization"]
    response = api.post("/routing-rules", body)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert written() == before


@pytest.mark.parametrize("who", ["lena", "omar", "alice", "carol"])
def test_agents_and_requesters_may_not_create_rules(cast: Cast, api_as: ApiAs, who: str) -> None:
    api = api_as(getattr(cast, who))
    before = written()
    response = api.post("/routing-rules", acme_rule())
    assert response.status_code in (403, 404, 422), response.content
    assert response["Content-Type"] == "application/problem+json"
    assert written() == before


def test_agents_may_read_but_not_change_their_organizations_rules(
    cast: Cast, api_as: ApiAs
) -> None:
    rule = api_as(cast.manager).post("/routing-rules", acme_rule()).json()
    lena = api_as(cast.lena)
    assert lena.get(f"/routing-rules/{rule['id']}").status_code == 200
    before = written()
    assert lena.patch(f"/routing-rules/{rule['id']}", {"name": "lena's"}).status_code == 403
    assert lena.delete(f"/routing-rules/{rule['id']}").status_code == 403
    assert written() == before


def test_unauthenticated_calls_are_refused(cast: Cast, api_as: ApiAs) -> None:
    anonymous = api_as(None)
    assert anonymous.get("/routing-rules").status_code == 401
    assert anonymous.post("/routing-rules", acme_rule()).status_code == 401
    assert not RoutingRule.objects.exists()


# --- tenancy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager", "lena", "alice", "carol"])
def test_another_tenants_rule_is_not_found(
    cast: Cast, api_as: ApiAs, globex_rule: RoutingRule, who: str
) -> None:
    api = api_as(getattr(cast, who))
    path = f"/routing-rules/{globex_rule.pk}"
    before = written()
    for response in (
        api.get(path),
        api.patch(path, {"name": "mine"}),
        api.delete(path),
    ):
        assert response.status_code == 404, (who, response.content)
        assert b"globex secret rule" not in response.content
    assert written() == before
    assert RoutingRule.objects.get(pk=globex_rule.pk).name == "globex secret rule"
    listed = api.get("/routing-rules")
    assert listed.status_code == 200
    assert globex_rule.pk not in [r["id"] for r in listed.json()]


def test_omar_serving_both_sees_both(cast: Cast, api_as: ApiAs, globex_rule: RoutingRule) -> None:
    mine = api_as(cast.manager).post("/routing-rules", acme_rule()).json()
    ids = [r["id"] for r in api_as(cast.omar).get("/routing-rules").json()]
    assert sorted(ids) == sorted([mine["id"], globex_rule.pk])


def test_unknown_rule_ids_are_not_found(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    assert api.get("/routing-rules/999999").status_code == 404
    assert api.get("/routing-rules/0").status_code in (404, 422)
    assert api.get("/routing-rules/abc").status_code in (404, 422)


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_explains_and_writes_nothing(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    miss = routing_rule_create(
        actor=cast.manager, name="bob only", organization=cast.acme,
        conditions=RuleConditions(requesters=[cast.bob]), tier=tier_by_code("L3"),
    )  # fmt: skip
    hit = admin.post(
        "/routing-rules",
        {
            "name": "vpn everywhere",
            "conditions": {"keywords": ["VPN"], "priorities": ["P2", "P3"]},
            "actions": {"tier": "L2", "tags": ["vpn"]},
        },
    ).json()
    tickets, events = Ticket.objects.count(), OutboxEvent.objects.count()
    response = api_as(cast.manager).post(
        "/routing/dry-run",
        {
            "organization": "ACME",
            "subject": "My vpn drops",
            "requester": "alice@acme.example",
            "source": "portal",
        },
    )
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["matched_rule"] == "vpn everywhere"
    assert out["matched_rule_id"] == hit["id"]
    assert out["via"] == "rule"
    assert out["tier"] == "L2"
    assert out["priority"] == "P3"  # the matrix: impact 2 x urgency 2
    assert out["tags"] == ["vpn"]
    assert [(r["rule_id"], r["scope"], r["matched"]) for r in out["rules"]] == [
        (miss.pk, "organization", False),
        (hit["id"], "global", True),
    ]
    assert out["rules"][0]["checks"] == [
        {"condition": "requesters", "wanted": [cast.bob.pk], "actual": cast.alice.pk,
         "holds": False},
    ]  # fmt: skip
    assert {c["condition"]: c["holds"] for c in out["rules"][1]["checks"]} == {
        "priorities": True,
        "keywords": True,
    }
    assert (Ticket.objects.count(), OutboxEvent.objects.count()) == (tickets, events)


def test_dry_run_fallbacks(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.lena)
    by_category = api.post(
        "/routing/dry-run", {"organization": "ACME", "subject": "x", "category": "network"}
    ).json()
    assert (by_category["via"], by_category["tier"], by_category["matched_rule"]) == (
        "category default", "L2", None,
    )  # fmt: skip
    lowest = api.post("/routing/dry-run", {"organization": "ACME", "subject": "x"}).json()
    assert (lowest["via"], lowest["tier"], lowest["rules"]) == ("lowest tier", "L1", [])
    assert Ticket.objects.count() == 0


def test_dry_run_is_staff_only_and_tenant_scoped(
    cast: Cast, api_as: ApiAs, globex_rule: RoutingRule
) -> None:
    sample = {"organization": "GLOBEX", "subject": "x"}
    assert api_as(cast.alice).post("/routing/dry-run", sample).status_code == 404
    refused = api_as(cast.manager).post("/routing/dry-run", sample)
    assert refused.status_code == 422
    assert problem_fields(refused) == ["organization"]
    assert b"globex secret rule" not in refused.content
    ok = api_as(cast.omar).post("/routing/dry-run", sample)
    assert ok.status_code == 200
    assert ok.json()["rules"][0]["rule_id"] == globex_rule.pk


def test_dry_run_does_not_reveal_people_of_other_tenants(cast: Cast, api_as: ApiAs) -> None:
    """The ACME manager names a GLOBEX requester in a dry-run for ACME. The answer must be
    the one for a person who does not exist: otherwise the dry-run tells who exists in
    another tenant (and, through a requester condition's trace, their id)."""
    routing_rule_create(
        actor=cast.manager, name="bob only", organization=cast.acme,
        conditions=RuleConditions(requesters=[cast.bob]), tier=tier_by_code("L3"),
    )  # fmt: skip
    api = api_as(cast.manager)
    unknown = api.post(
        "/routing/dry-run",
        {"organization": "ACME", "subject": "x", "requester": "nobody@globex.example"},
    )
    assert unknown.status_code == 422
    assert problem_fields(unknown) == ["requester"]
    response = api.post(
        "/routing/dry-run",
        {"organization": "ACME", "subject": "x", "requester": "gerd@globex.example"},
    )
    assert response.status_code == 422, response.content  # not 200 with gerd's id in a check
    assert problem_fields(response) == ["requester"]


def test_rule_creates_answer_alike_for_missing_and_other_tenants_people(
    cast: Cast, api_as: ApiAs
) -> None:
    """ "One message for 'missing' and 'not yours', so answers cannot be used to probe for
    people" (tickets/services.py): a rule naming GLOBEX's gerd must be refused exactly like a
    rule naming an address nobody has."""
    api = api_as(cast.manager)

    def detail(ref: str) -> tuple[int, list[str], str]:
        r = api.post("/routing-rules", acme_rule(conditions={"requesters": [ref]}))
        return r.status_code, problem_fields(r), r.json()["detail"].replace(ref, "<ref>")

    assert detail("gerd@globex.example") == detail("nobody@globex.example")


def test_msp_wide_rules_show_agents_only_their_own_clients_people(cast: Cast) -> None:
    """An admin's MSP-wide rule may name requesters and organizations of every client; an
    agent who serves ACME must not learn GLOBEX's from it."""
    from tierdesk.tiers.services import RuleConditions, routing_rule_create, tier_by_code

    routing_rule_create(
        actor=cast.admin,
        name="VIPs",
        conditions=RuleConditions(
            organizations=[cast.acme, cast.globex], requesters=[cast.alice, cast.gerd]
        ),
        tier=tier_by_code("L2"),
    )
    mine = Api(cast.lena).get("/routing-rules").json()[0]["conditions"]
    assert mine["organizations"] == ["ACME"]
    assert mine["requesters"] == [cast.alice.email]
    everything = Api(cast.admin).get("/routing-rules").json()[0]["conditions"]
    assert sorted(everything["organizations"]) == ["ACME", "GLOBEX"]
    trace = (
        Api(cast.lena)
        .post("/routing/dry-run", {"organization": "ACME", "subject": "x"})
        .json()["rules"][0]["checks"]
    )
    wanted = {c["condition"]: c["wanted"] for c in trace}
    assert wanted == {"organizations": [cast.acme.pk], "requesters": [cast.alice.pk]}
