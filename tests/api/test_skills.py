"""Skills through the API: listed with their use, added, renamed and removed by admins; a
skill in use is refused with 409."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Cast, problem_fields
from tierdesk.core.models import AuditEntry, User
from tierdesk.tiers.models import Skill
from tierdesk.tiers.services import agent_update, category_create, skills_by_slug, tier_by_code

ApiAs = Callable[[User | None], Api]
pytestmark = pytest.mark.django_db


def by_slug(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["slug"]: r for r in rows}


def test_staff_list_the_skills_with_their_use(cast: Cast, api_as: ApiAs) -> None:
    agent_update(actor=cast.admin, user=cast.lena, skills=skills_by_slug(["network"]))
    category_create(
        actor=None, slug="wan", name="WAN", default_tier=tier_by_code("L2"),
        organization=cast.globex, required_skills=skills_by_slug(["network"]),
    )  # fmt: skip
    r = api_as(cast.admin).get("/skills")
    assert r.status_code == 200
    rows = r.json()
    assert [s["slug"] for s in rows] == sorted(s["slug"] for s in rows)
    assert by_slug(rows)["network"] == {
        "slug": "network",
        "name": "Networking",
        "agent_count": 1,
        "category_count": 2,  # the MSP-wide "network" category and GLOBEX's "wan"
    }
    # a manager of ACME does not count GLOBEX's own category
    assert by_slug(api_as(cast.manager).get("/skills").json())["network"]["category_count"] == 1
    assert "network" in by_slug(api_as(cast.lena).get("/skills").json())
    # requesters see no staffing figures
    assert api_as(cast.alice).get("/skills").json() == []
    assert api_as(cast.admin).get("/skills", params={"slug": "network"}).status_code == 422
    assert api_as(None).get("/skills").status_code == 401


def test_an_admin_adds_a_skill_once_even_when_the_request_is_retried(
    cast: Cast, api_as: ApiAs
) -> None:
    admin = api_as(cast.admin)
    body = {"slug": "printing", "name": "Printers and scanners"}
    first = admin.post("/skills", body, headers={"Idempotency-Key": "skill-1"})
    assert first.status_code == 201, first.content
    assert first["Location"] == "/api/v1/skills/printing"
    assert first.json() == {
        "slug": "printing",
        "name": "Printers and scanners",
        "agent_count": 0,
        "category_count": 0,
    }
    again = admin.post("/skills", body, headers={"Idempotency-Key": "skill-1"})
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Skill.objects.filter(slug="printing").count() == 1
    assert AuditEntry.objects.filter(action="skill.created", actor=cast.admin).count() == 1
    other = admin.post(
        "/skills", {"slug": "scanning", "name": "x"}, headers={"Idempotency-Key": "skill-1"}
    )
    assert other.status_code == 409
    assert admin.get("/skills/printing").json()["name"] == "Printers and scanners"
    # named at once wherever skills are given
    r = admin.patch(f"/users/{cast.lena.pk}", {"skills": ["printing"]})
    assert r.status_code == 200, r.content
    assert admin.get("/skills/printing").json()["agent_count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "network", "name": "Again"}, "slug"),  # taken
        ({"slug": "Two Words", "name": "x"}, "slug"),
        ({"slug": "x" * 51, "name": "x"}, "slug"),
        ({"slug": "", "name": "x"}, "slug"),
        ({"slug": "ok", "name": ""}, "name"),
        ({"slug": "ok", "name": "   "}, "name"),
        ({"slug": "ok", "name": "x" * 101}, "name"),
        ({"slug": "ok"}, "name"),
        ({"slug": "ok", "name": "x", "id": 7}, "id"),
    ],
)
def test_bad_skill_input_is_refused_with_the_field_named(
    cast: Cast, api_as: ApiAs, body: dict[str, Any], field: str
) -> None:
    count = Skill.objects.count()
    r = api_as(cast.admin).post("/skills", body)
    assert r.status_code == 422, r.content
    assert any(f.endswith(field) for f in problem_fields(r)), problem_fields(r)
    assert Skill.objects.count() == count


def test_an_admin_renames_a_skill_and_its_slug_stays(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    r = admin.patch("/skills/network", {"name": "Networks and VPN"})
    assert r.status_code == 200, r.content
    assert r.json()["slug"] == "network"
    assert r.json()["name"] == "Networks and VPN"
    entry = AuditEntry.objects.get(action="skill.updated")
    assert entry.changes == {"name": {"old": "Networking", "new": "Networks and VPN"}}
    # the slug is permanent; null and blank names are refused
    for body, field in (
        ({"slug": "net"}, "slug"),
        ({"name": None}, "name"),
        ({"name": " "}, "name"),
    ):
        r = admin.patch("/skills/network", body)
        assert r.status_code == 422, (body, r.content)
        assert any(f.endswith(field) for f in problem_fields(r)), body
    assert Skill.objects.get(slug="network").name == "Networks and VPN"
    assert admin.patch("/skills/juggling", {"name": "x"}).status_code == 404
    assert admin.get("/skills/juggling").status_code == 404


def test_deleting_a_skill_in_use_is_a_conflict_and_an_unused_one_goes(
    cast: Cast, api_as: ApiAs
) -> None:
    admin = api_as(cast.admin)
    agent_update(actor=cast.admin, user=cast.omar, skills=skills_by_slug(["backup"]))
    r = admin.delete("/skills/backup")
    assert r.status_code == 409
    problem_fields(r)  # a problem document
    assert "1 agent has it and 1 category requires it" in r.json()["detail"]
    assert Skill.objects.filter(slug="backup").exists()

    assert admin.post("/skills", {"slug": "spare", "name": "Spare"}).status_code == 201
    r = admin.delete("/skills/spare")
    assert r.status_code == 204
    assert not Skill.objects.filter(slug="spare").exists()
    assert AuditEntry.objects.filter(action="skill.deleted", actor=cast.admin).count() == 1
    assert admin.delete("/skills/spare").status_code == 404
    assert "spare" not in by_slug(admin.get("/skills").json())


@pytest.mark.parametrize("who", ["manager", "lena", "omar"])
def test_only_admins_change_skills(cast: Cast, api_as: ApiAs, who: str) -> None:
    api = api_as(getattr(cast, who))
    assert api_as(cast.admin).post("/skills", {"slug": "spare", "name": "Spare"}).status_code == 201
    assert api.post("/skills", {"slug": "mine", "name": "Mine"}).status_code == 403
    assert api.patch("/skills/network", {"name": "Mine"}).status_code == 403
    assert api.patch("/skills/network", {}).status_code == 403
    assert api.delete("/skills/spare").status_code == 403
    assert not Skill.objects.filter(slug="mine").exists()
    assert Skill.objects.get(slug="network").name == "Networking"
    assert Skill.objects.filter(slug="spare").exists()


def test_requesters_find_no_skill_to_change(cast: Cast, api_as: ApiAs) -> None:
    alice = api_as(cast.alice)
    assert alice.post("/skills", {"slug": "mine", "name": "Mine"}).status_code == 403
    assert alice.get("/skills/network").status_code == 404
    assert alice.patch("/skills/network", {"name": "Mine"}).status_code == 404
    assert alice.delete("/skills/network").status_code == 404
    assert Skill.objects.get(slug="network").name == "Networking"
