"""The skills services: admins add, rename and remove skills; a skill still in use is kept;
every change is audited with its old and new values."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tierdesk.core.errors import Conflict, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, User
from tierdesk.tiers.models import Category, Skill
from tierdesk.tiers.queries import skill_usage
from tierdesk.tiers.services import (
    agent_update,
    category_create,
    category_update,
    skill_create,
    skill_delete,
    skill_update,
    skills_by_slug,
    tier_by_code,
)

pytestmark = pytest.mark.django_db


def fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.field for e in exc.value.errors]


def test_an_admin_adds_a_skill_stored_by_its_lower_case_slug(cast: Cast) -> None:
    skill = skill_create(actor=cast.admin, slug="  Printing ", name="  Printers and scanners ")
    assert (skill.slug, skill.name) == ("printing", "Printers and scanners")
    assert Skill.objects.get(slug="printing").pk == skill.pk
    entry = AuditEntry.objects.get(action="skill.created")
    assert (entry.actor, entry.target_type, entry.target_id) == (cast.admin, "skill", str(skill.pk))
    assert entry.changes == {"slug": "printing", "name": "Printers and scanners"}
    # usable at once wherever skills are named
    assert skills_by_slug(["printing"]) == [skill]


def test_a_taken_slug_is_refused_on_the_slug_field(cast: Cast) -> None:
    count = Skill.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        skill_create(actor=cast.admin, slug="Network", name="Networks again")
    assert fields(exc) == ["slug"]
    assert exc.value.errors[0].message == "a skill with this slug exists"
    assert Skill.objects.count() == count
    assert not AuditEntry.objects.filter(action="skill.created").exists()


@pytest.mark.parametrize("slug", ["", "two words", "ümlaut", "semi;colon", "x" * 51])
def test_a_malformed_slug_is_refused(cast: Cast, slug: str) -> None:
    count = Skill.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        skill_create(actor=cast.admin, slug=slug, name="Something")
    assert fields(exc) == ["slug"]
    assert Skill.objects.count() == count


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "\x00"])
def test_a_name_must_have_1_to_100_characters(cast: Cast, name: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        skill_create(actor=cast.admin, slug="printing", name=name)
    assert fields(exc) == ["name"]
    assert not Skill.objects.filter(slug="printing").exists()
    network = Skill.objects.get(slug="network")
    with pytest.raises(ValidationFailed) as exc:
        skill_update(actor=cast.admin, skill=network, name=name)
    assert fields(exc) == ["name"]
    assert Skill.objects.get(slug="network").name == "Networking"


def test_only_admins_add_rename_or_delete_skills(cast: Cast) -> None:
    network = Skill.objects.get(slug="network")
    spare = skill_create(actor=None, slug="spare", name="Spare")
    for who in (cast.manager, cast.lena, cast.omar, cast.alice, cast.carol):
        with pytest.raises(PermissionDenied):
            skill_create(actor=who, slug="mine", name="Mine")
        with pytest.raises(PermissionDenied):
            skill_update(actor=who, skill=network, name="Mine")
        with pytest.raises(PermissionDenied):
            skill_delete(actor=who, skill=spare)
    assert not Skill.objects.filter(slug="mine").exists()
    assert Skill.objects.get(slug="network").name == "Networking"
    assert Skill.objects.filter(slug="spare").exists()
    assert not AuditEntry.objects.filter(target_type="skill").exclude(actor=None).exists()


def test_an_admin_renames_a_skill_and_the_audit_keeps_old_and_new(cast: Cast) -> None:
    network = Skill.objects.get(slug="network")
    renamed = skill_update(actor=cast.admin, skill=network, name=" Networks and VPN ")
    assert (renamed.slug, renamed.name) == ("network", "Networks and VPN")
    assert Skill.objects.get(pk=network.pk).name == "Networks and VPN"
    entry = AuditEntry.objects.get(action="skill.updated")
    assert entry.actor == cast.admin
    assert entry.target_id == str(network.pk)
    assert entry.changes == {"name": {"old": "Networking", "new": "Networks and VPN"}}


def test_renaming_to_the_same_name_writes_nothing(cast: Cast) -> None:
    network = Skill.objects.get(slug="network")
    skill_update(actor=cast.admin, skill=network, name="Networking ")
    assert not AuditEntry.objects.filter(action="skill.updated").exists()


def test_an_unused_skill_is_deleted_and_audited(cast: Cast) -> None:
    spare = skill_create(actor=cast.admin, slug="spare", name="Spare")
    skill_delete(actor=cast.admin, skill=spare)
    assert not Skill.objects.filter(slug="spare").exists()
    entry = AuditEntry.objects.get(action="skill.deleted")
    assert (entry.actor, entry.target_id) == (cast.admin, str(spare.pk))
    assert entry.changes == {"slug": "spare", "name": "Spare"}


def test_a_skill_in_use_is_kept_and_the_refusal_counts_agents_and_categories(
    cast: Cast,
) -> None:
    cad = skill_create(actor=cast.admin, slug="cad", name="CAD")
    agent_update(actor=cast.admin, user=cast.lena, skills=[cad])
    agent_update(actor=cast.admin, user=cast.omar, skills=[cad])
    category_create(
        actor=None, slug="cad", name="CAD", default_tier=tier_by_code("L2"),
        required_skills=[cad],
    )  # fmt: skip
    with pytest.raises(Conflict) as exc:
        skill_delete(actor=cast.admin, skill=cad)
    assert "2 agents have it and 1 category requires it" in exc.value.detail
    assert Skill.objects.filter(slug="cad").exists()
    assert list(cast.lena.agent_profile.skills.all()) == [cad]

    # one agent left: still refused, with the new count
    agent_update(actor=cast.admin, user=cast.lena, skills=[])
    agent_update(actor=cast.admin, user=cast.omar, skills=[])
    with pytest.raises(Conflict) as exc:
        skill_delete(actor=cast.admin, skill=cad)
    assert "0 agents have it and 1 category requires it" in exc.value.detail

    # another client's own category counts too, even though it is inactive
    category = Category.objects.get(slug="cad")
    category_update(actor=cast.admin, category=category, required_skills=[])
    own = category_create(
        actor=None, slug="cad", name="CAD", default_tier=tier_by_code("L2"),
        organization=cast.globex, required_skills=[cad],
    )  # fmt: skip
    category_update(actor=cast.admin, category=own, is_active=False)
    with pytest.raises(Conflict) as exc:
        skill_delete(actor=cast.admin, skill=cad)
    assert "1 category requires it" in exc.value.detail

    category_update(actor=cast.admin, category=own, required_skills=[])
    skill_delete(actor=cast.admin, skill=cad)
    assert not Skill.objects.filter(slug="cad").exists()
    assert AuditEntry.objects.filter(action="skill.deleted").count() == 1


def test_usage_counts_agents_and_the_categories_the_actor_sees_in_one_query(cast: Cast) -> None:
    network = Skill.objects.get(slug="network")
    agent_update(actor=cast.admin, user=cast.lena, skills=[network])
    agent_update(actor=cast.admin, user=cast.gus, skills=[network])
    # the MSP-wide "network" category needs it (migration), and a GLOBEX-only one too
    category_create(
        actor=None, slug="wan", name="WAN", default_tier=tier_by_code("L2"),
        organization=cast.globex, required_skills=[network],
    )  # fmt: skip

    def counts(actor: User) -> dict[str, tuple[int, int]]:
        return {s.slug: (s.agent_count, s.category_count) for s in skill_usage(actor=actor)}

    # one query: the skills, with their agents and categories counted over joins
    with CaptureQueriesContext(connection) as ctx:
        admin_view = counts(cast.admin)
    assert len(ctx.captured_queries) == 1, "\n".join(q["sql"] for q in ctx.captured_queries)
    assert admin_view["network"] == (2, 2)
    assert admin_view["backup"] == (0, 1)
    assert list(admin_view) == sorted(admin_view)
    # the manager serves ACME only: the GLOBEX category is not counted for them
    assert counts(cast.manager)["network"] == (2, 1)
    assert counts(cast.alice) == {}
