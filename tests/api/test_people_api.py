"""Organizations, people and the catalog through the API, with the permission set."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Api, Cast, problem_fields
from tierdesk.core.models import AuditEntry, Organization, User
from tierdesk.tiers.models import Category

ApiAs = Callable[[User | None], Api]


@pytest.mark.parametrize(
    ("who", "status"), [("admin", 201), ("manager", 403), ("lena", 403), ("alice", 403)]
)
def test_only_admins_create_organizations(cast: Cast, api_as: ApiAs, who: str, status: int) -> None:
    r = api_as(getattr(cast, who)).post(
        "/organizations",
        {
            "code": "INITECH",
            "name": "Initech",
            "time_zone": "Australia/Sydney",
            "email_domains": ["initech.example"],
        },
    )
    assert r.status_code == status, r.content
    assert Organization.objects.filter(code="INITECH").exists() == (status == 201)
    if status == 201:
        assert AuditEntry.objects.filter(action="organization.created", actor=cast.admin).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "ACME", "name": "Again"}, "code"),
        ({"code": "1BAD", "name": "x"}, "code"),
        ({"code": "NEWCO", "name": "x", "time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"code": "NEWCO", "name": "x", "email_domains": ["not a domain"]}, "email_domains"),
        ({"code": "NEWCO", "name": ""}, "name"),
    ],
)
def test_bad_organizations_are_refused(cast: Cast, api_as: ApiAs, body: dict, field: str) -> None:  # type: ignore[type-arg]
    r = api_as(cast.admin).post("/organizations", body)
    assert r.status_code == 422, r.content
    assert problem_fields(r) == [field]
    assert Organization.objects.count() == 2


def test_organizations_are_listed_per_actor(cast: Cast, api_as: ApiAs) -> None:
    def codes(who: User) -> list[str]:
        return [o["code"] for o in api_as(who).get("/organizations").json()]

    assert codes(cast.admin) == ["ACME", "GLOBEX"]
    assert codes(cast.lena) == ["ACME"]
    assert codes(cast.alice) == ["ACME"]
    assert codes(cast.outsider) == []
    assert api_as(cast.lena).get("/organizations/GLOBEX").status_code == 404


def test_a_manager_adds_requesters_to_their_clients_only(cast: Cast, api_as: ApiAs) -> None:
    manager = api_as(cast.manager)
    ok = manager.post(
        "/users",
        {
            "email": "dave@acme.example",
            "full_name": "Dave",
            "role": "requester",
            "organization": "ACME",
        },
    )
    assert ok.status_code == 201, ok.content
    foreign = manager.post(
        "/users",
        {
            "email": "eve@globex.example",
            "full_name": "Eve",
            "role": "requester",
            "organization": "GLOBEX",
        },
    )
    assert foreign.status_code == 422
    assert problem_fields(foreign) == ["organization"]
    staff = manager.post(
        "/users", {"email": "new@msp.example", "full_name": "New", "role": "agent"}
    )
    assert staff.status_code == 403
    assert not User.objects.filter(email__in=["eve@globex.example", "new@msp.example"]).exists()


def test_an_admin_creates_an_agent_with_tier_skills_and_hours(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.admin).post(
        "/users",
        {
            "email": "nina@msp.example",
            "full_name": "Nina",
            "role": "agent",
            "tier": "L2",
            "skills": ["network", "server"],
            "served_organizations": ["ACME", "GLOBEX"],
            "time_zone": "Europe/Berlin",
            "working_hours": [
                {"weekday": 0, "start": "08:00", "end": "12:00"},
                {"weekday": 0, "start": "13:00", "end": "17:00"},
            ],
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["tier"], body["served_organizations"]) == ("L2", ["ACME", "GLOBEX"])
    nina = User.objects.get(email="nina@msp.example")
    assert sorted(s.slug for s in nina.agent_profile.skills.all()) == ["network", "server"]
    assert nina.agent_profile.hours.count() == 2


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"skills": ["juggling"]}, "skills"),
        ({"served_organizations": ["NOPE"]}, "served_organizations"),
        (
            {
                "working_hours": [
                    {"weekday": 0, "start": "08:00", "end": "12:00"},
                    {"weekday": 0, "start": "11:00", "end": "15:00"},
                ]
            },
            "working_hours",
        ),
        (
            {"working_hours": [{"weekday": 7, "start": "08:00", "end": "12:00"}]},
            "working_hours.0.weekday",
        ),
        ({"organization": "ACME"}, "organization"),
        ({"password": "short"}, "password"),
    ],
)
def test_bad_agents_are_refused_whole(cast: Cast, api_as: ApiAs, patch: dict, field: str) -> None:  # type: ignore[type-arg]
    body = {"email": "nina@msp.example", "full_name": "Nina", "role": "agent", **patch}
    r = api_as(cast.admin).post("/users", body)
    assert r.status_code == 422, r.content
    assert problem_fields(r) == [field]
    assert not User.objects.filter(email="nina@msp.example").exists()


def test_people_are_visible_per_tenant(cast: Cast, api_as: ApiAs) -> None:
    emails = {u["email"] for u in api_as(cast.lena).get("/users").json()}
    assert "alice@acme.example" in emails
    assert "gerd@globex.example" not in emails
    assert api_as(cast.lena).get(f"/users/{cast.gerd.pk}").status_code == 404
    assert [u["email"] for u in api_as(cast.alice).get("/users").json()] == ["alice@acme.example"]


def test_the_catalog(cast: Cast, api_as: ApiAs) -> None:
    tiers = api_as(cast.alice).get("/tiers").json()
    assert [t["code"] for t in tiers] == ["L1", "L2", "L3"]
    created = api_as(cast.admin).post(
        "/categories",
        {
            "slug": "sap",
            "name": "SAP",
            "organization": "GLOBEX",
            "default_tier": "L2",
            "required_skills": ["software"],
        },
    )
    assert created.status_code == 201, created.content
    lena_sees = {c["slug"] for c in api_as(cast.lena).get("/categories").json()}
    assert "sap" not in lena_sees
    assert "access" in lena_sees
    assert "sap" in {c["slug"] for c in api_as(cast.gus).get("/categories").json()}
    again = api_as(cast.admin).post(
        "/categories", {"slug": "sap", "name": "SAP", "organization": "GLOBEX"}
    )
    assert again.status_code == 422
    assert Category.objects.filter(slug="sap").count() == 1
    assert api_as(cast.lena).post("/categories", {"slug": "x", "name": "X"}).status_code == 403


def test_creating_an_organization_is_idempotent(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    body = {"code": "INITECH", "name": "Initech"}
    first = api.post("/organizations", body, headers={"Idempotency-Key": "org-1"})
    again = api.post("/organizations", body, headers={"Idempotency-Key": "org-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Organization.objects.filter(code="INITECH").count() == 1


def test_an_admin_changes_an_organization_but_never_its_code(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    r = admin.patch(
        "/organizations/ACME",
        {
            "name": "Acme Corp",
            "time_zone": "America/Chicago",
            "email_domains": ["acme.example", "ACME.COM"],
        },
    )
    assert r.status_code == 200, r.content
    assert r.json()["email_domains"] == ["acme.example", "acme.com"]
    entry = AuditEntry.objects.get(action="organization.updated")
    assert entry.changes["name"] == {"old": "Acme Inc.", "new": "Acme Corp"}
    assert admin.patch("/organizations/ACME", {"code": "ACME2"}).status_code == 422
    assert admin.patch("/organizations/ACME", {"time_zone": "Moon/Base"}).status_code == 422
    assert admin.patch("/organizations/ACME", {"name": None}).status_code == 422
    assert api_as(cast.manager).patch("/organizations/ACME", {"name": "x"}).status_code == 403
    assert Organization.objects.get(code="ACME").name == "Acme Corp"


def test_deactivating_a_person_stops_their_tokens(cast: Cast, api_as: ApiAs) -> None:
    alice = api_as(cast.alice)
    assert alice.get("/me").status_code == 200
    manager = api_as(cast.manager)
    r = manager.patch(f"/users/{cast.alice.pk}", {"is_active": False})
    assert r.status_code == 200, r.content
    assert alice.get("/me").status_code == 401
    assert AuditEntry.objects.filter(action="user.updated", actor=cast.manager).exists()
    # A manager changes requesters of their clients only, never staff or other tenants.
    assert manager.patch(f"/users/{cast.lena.pk}", {"is_active": False}).status_code == 403
    assert manager.patch(f"/users/{cast.gerd.pk}", {"is_active": False}).status_code == 404
    assert (
        api_as(cast.admin).patch(f"/users/{cast.admin.pk}", {"is_active": False}).status_code == 422
    )


def test_people_edit_their_own_name_and_zone_only(cast: Cast, api_as: ApiAs) -> None:
    bob = api_as(cast.bob)
    ok = bob.patch(f"/users/{cast.bob.pk}", {"full_name": "Robert", "time_zone": "Europe/Paris"})
    assert ok.status_code == 200
    assert ok.json()["full_name"] == "Robert"
    assert (
        bob.patch(f"/users/{cast.bob.pk}", {"sees_organization_tickets": True}).status_code == 403
    )
    lena = api_as(cast.lena)
    assert lena.patch(f"/users/{cast.lena.pk}", {"tier": "L3"}).status_code == 403
    assert User.objects.get(pk=cast.bob.pk).sees_organization_tickets is False


def test_an_admin_moves_an_agent_to_another_tier_and_clients(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    r = admin.patch(
        f"/users/{cast.lena.pk}",
        {
            "tier": "L2",
            "skills": ["network"],
            "served_organizations": ["ACME", "GLOBEX"],
            "working_hours": [{"weekday": 1, "start": "09:00", "end": "17:00"}],
        },
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["tier"] == "L2"
    assert body["skills"] == ["network"]
    assert body["served_organizations"] == ["ACME", "GLOBEX"]
    assert body["working_hours"] == [{"weekday": 1, "start": "09:00:00", "end": "17:00:00"}]
    entry = AuditEntry.objects.get(action="agent.updated")
    assert entry.changes["tier"] == {"old": "L1", "new": "L2"}
    # One bad part refuses the whole change.
    bad = admin.patch(f"/users/{cast.lena.pk}", {"full_name": "Lena X", "skills": ["juggling"]})
    assert bad.status_code == 422
    assert User.objects.get(pk=cast.lena.pk).full_name != "Lena X"


def test_tiers_are_configurable_by_admins(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    created = admin.post(
        "/tiers",
        {
            "code": "l0",
            "name": "Self-service",
            "level": 10,
            "description": "Automation and the portal",
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["code"] == "L0"
    assert admin.post("/tiers", {"code": "L4", "name": "x", "level": 10}).status_code == 422
    assert admin.post("/tiers", {"code": "L1", "name": "x", "level": 11}).status_code == 422
    renamed = admin.patch("/tiers/L2", {"description": "Network, servers, backups"})
    assert renamed.status_code == 200
    assert renamed.json()["description"] == "Network, servers, backups"
    assert admin.patch("/tiers/L2", {"level": 1}).status_code == 422  # L1 has level 1
    assert admin.patch("/tiers/L9", {"name": "x"}).status_code == 404
    for who in (cast.manager, cast.lena, cast.alice):
        assert (
            api_as(who).post("/tiers", {"code": "LX", "name": "x", "level": 20}).status_code == 403
        )
        assert api_as(who).patch("/tiers/L2", {"name": "x"}).status_code == 403
    assert [t["code"] for t in api_as(cast.alice).get("/tiers").json()] == ["L1", "L2", "L3", "L0"]
    assert AuditEntry.objects.filter(action__in=["tier.created", "tier.updated"]).count() == 2


def test_an_admin_changes_a_category(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    network = Category.objects.get(slug="network", organization__isnull=True)
    r = admin.patch(
        f"/categories/{network.pk}",
        {"default_tier": "L1", "default_urgency": 1, "required_skills": ["network", "server"]},
    )
    assert r.status_code == 200, r.content
    assert (r.json()["default_tier"], r.json()["required_skills"]) == ("L1", ["network", "server"])
    entry = AuditEntry.objects.get(action="category.updated")
    assert entry.changes["default_tier"] == {"old": "L2", "new": "L1"}
    assert admin.patch(f"/categories/{network.pk}", {"slug": "net"}).status_code == 422
    assert admin.patch(f"/categories/{network.pk}", {"default_tier": "L9"}).status_code == 422
    assert api_as(cast.lena).patch(f"/categories/{network.pk}", {"name": "x"}).status_code == 403
    retired = admin.patch(f"/categories/{network.pk}", {"is_active": False})
    assert retired.status_code == 200
    r = api_as(cast.lena).post(
        "/tickets",
        {
            "organization": "ACME",
            "subject": "x",
            "requester": "alice@acme.example",
            "category": "network",
        },
    )
    assert r.status_code == 422
    assert problem_fields(r) == ["category"]


def test_requesters_take_no_staff_attributes(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.admin).post(
        "/users",
        {
            "email": "dora@acme.example",
            "full_name": "Dora",
            "role": "requester",
            "organization": "ACME",
            "skills": ["network"],
        },
    )
    assert r.status_code == 422
    assert problem_fields(r) == ["role"]
    assert not User.objects.filter(email="dora@acme.example").exists()
