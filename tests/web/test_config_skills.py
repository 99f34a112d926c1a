"""The skills configuration page: who reaches it, what it lists, and changes through the
skills services (admins only; a manager reads, and saving is refused)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.core.models import AuditEntry
from tierdesk.tiers.models import Skill
from tierdesk.tiers.services import agent_update, skill_create, skills_by_slug

pytestmark = pytest.mark.django_db

BASE = "/console/config/skills/"
PAGES = [BASE, BASE + "new/", BASE + "network/edit/", BASE + "network/delete/"]


def html(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


def field_error(page: str, name: str) -> str:
    """The text of the error list Django renders for field ``name`` ('' when none)."""
    found = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', page, re.S)
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def row(page: str, slug: str) -> list[str]:
    """The cells of the skill's row in the list, as text."""
    found = re.search(rf'<tr id="skill-{slug}">(.*?)</tr>', page, re.S)
    assert found, slug
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", found.group(1), re.S)
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells]


# --- access ----------------------------------------------------------------------------------


def test_agents_and_requesters_find_no_skills_pages(cast: Cast) -> None:
    for user in (cast.lena, cast.omar, cast.outsider, cast.alice, cast.carol):
        client = signed_in(user)
        for url in PAGES:
            assert client.get(url).status_code == 404, (user.email, url)
        assert client.post(BASE + "new/", {"slug": "mine", "name": "Mine"}).status_code == 404
        assert client.post(BASE + "network/edit/", {"name": "Hacked"}).status_code == 404
        assert client.post(BASE + "backup/delete/").status_code == 404
    assert not Skill.objects.filter(slug="mine").exists()
    assert Skill.objects.get(slug="network").name == "Networking"
    assert Skill.objects.filter(slug="backup").exists()


def test_visitors_are_sent_to_sign_in() -> None:
    for url in PAGES:
        r = Client().get(url)
        assert r.status_code == 302
        assert r["Location"].startswith("/login?next=")


def test_the_configuration_navigation_lists_skills_after_categories(cast: Cast) -> None:
    page = html(signed_in(cast.manager).get("/console/config/"))
    assert page.index('href="/console/config/categories/"') < page.index(f'href="{BASE}"')
    assert page.index(f'href="{BASE}"') < page.index('href="/console/config/routing/"')
    page = html(signed_in(cast.manager).get(BASE))
    assert f'<a href="{BASE}" aria-current="page">Skills</a>' in page


# --- the list --------------------------------------------------------------------------------


def test_an_admin_sees_each_skill_with_its_agents_and_categories(cast: Cast) -> None:
    agent_update(actor=cast.admin, user=cast.lena, skills=skills_by_slug(["network", "email"]))
    agent_update(actor=cast.admin, user=cast.omar, skills=skills_by_slug(["network"]))
    client = signed_in(cast.admin)
    client.get(BASE)  # warm the per-process caches
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(BASE)
    assert r.status_code == 200
    page = html(r)
    assert row(page, "network")[:4] == ["network", "Networking", "2", "1"]
    assert row(page, "network")[4] == "Edit network Delete network"
    assert row(page, "email")[2:4] == ["1", "1"]
    assert f'href="{BASE}new/"' in page
    assert f'href="{BASE}network/delete/"' in page
    skill_queries = [q["sql"] for q in ctx.captured_queries if "tiers_skill" in q["sql"]]
    assert len(skill_queries) == 1, skill_queries


def test_a_manager_reads_the_list_without_links_to_change_it(cast: Cast) -> None:
    page = html(signed_in(cast.manager).get(BASE))
    assert row(page, "network") == ["network", "Networking", "0", "1"]
    assert "Only admins change skills" in page
    assert f"{BASE}new/" not in page
    assert f"{BASE}network/" not in page


# --- add -------------------------------------------------------------------------------------


def test_an_admin_adds_a_skill(cast: Cast) -> None:
    client = signed_in(cast.admin)
    assert client.get(BASE + "new/").status_code == 200
    r = client.post(BASE + "new/", {"slug": "printing", "name": "Printers and scanners"})
    assert r.status_code == 302, html(r)
    assert r["Location"] == BASE
    skill = Skill.objects.get(slug="printing")
    assert skill.name == "Printers and scanners"
    assert AuditEntry.objects.filter(
        action="skill.created", actor=cast.admin, target_id=str(skill.pk)
    ).exists()
    page = html(client.get(BASE))
    assert "Skill “Printers and scanners” added." in page
    assert row(page, "printing")[:4] == ["printing", "Printers and scanners", "0", "0"]


def test_a_taken_slug_is_refused_beside_the_slug_and_nothing_is_saved(cast: Cast) -> None:
    count = Skill.objects.count()
    r = signed_in(cast.admin).post(BASE + "new/", {"slug": "network", "name": "Networks again"})
    assert r.status_code == 400
    page = html(r)
    assert field_error(page, "slug") == "a skill with this slug exists"
    assert 'value="Networks again"' in page  # what was typed stays
    assert Skill.objects.count() == count
    assert Skill.objects.get(slug="network").name == "Networking"


def test_bad_skill_input_is_refused_field_by_field(cast: Cast) -> None:
    count = Skill.objects.count()
    client = signed_in(cast.admin)
    r = client.post(BASE + "new/", {"slug": "Not a slug!", "name": ""})
    assert r.status_code == 400
    page = html(r)
    assert field_error(page, "slug")
    assert field_error(page, "name") == "This field is required."
    assert 'value="Not a slug!"' in page
    # blank once stripped: the service refuses it, beside the name
    r = client.post(BASE + "new/", {"slug": "blank", "name": "   "})
    assert r.status_code == 400
    assert field_error(html(r), "name")
    assert Skill.objects.count() == count


def test_a_skill_named_new_has_its_own_page(cast: Cast) -> None:
    client = signed_in(cast.admin)
    r = client.post(BASE + "new/", {"slug": "new", "name": "New things"})
    assert r.status_code == 302
    assert 'value="New things"' in html(client.get(BASE + "new/edit/"))
    assert 'value="New things"' not in html(client.get(BASE + "new/"))  # still the add form


# --- rename ----------------------------------------------------------------------------------


def test_an_admin_renames_a_skill_and_its_slug_stays(cast: Cast) -> None:
    client = signed_in(cast.admin)
    page = html(client.get(BASE + "network/edit/"))
    assert 'value="Networking"' in page
    assert 'name="slug"' not in page  # permanent: not offered
    r = client.post(BASE + "network/edit/", {"name": "Networks and VPN", "slug": "net"})
    assert r.status_code == 302
    assert r["Location"] == BASE
    skill = Skill.objects.get(slug="network")
    assert skill.name == "Networks and VPN"
    assert not Skill.objects.filter(slug="net").exists()
    entry = AuditEntry.objects.get(action="skill.updated")
    assert entry.changes == {"name": {"old": "Networking", "new": "Networks and VPN"}}
    assert "Skill network saved." in html(client.get(BASE))
    assert client.get(BASE + "juggling/").status_code == 404


def test_a_manager_reads_a_skills_form_and_saving_is_refused(cast: Cast) -> None:
    client = signed_in(cast.manager)
    page = html(client.get(BASE + "network/edit/"))
    assert 'id="read-only-note"' in page
    r = client.post(BASE + "network/edit/", {"name": "Mine now"})
    assert r.status_code == 403
    page = html(r)
    assert 'role="alert"' in page
    assert "may not do this" in page
    assert 'value="Mine now"' in page
    assert Skill.objects.get(slug="network").name == "Networking"
    r = client.post(BASE + "new/", {"slug": "mine", "name": "Mine"})
    assert r.status_code == 403
    assert "may not do this" in html(r)
    assert not Skill.objects.filter(slug="mine").exists()


# --- delete ----------------------------------------------------------------------------------


def test_deleting_a_skill_in_use_is_refused_with_the_counts(cast: Cast) -> None:
    agent_update(actor=cast.admin, user=cast.lena, skills=skills_by_slug(["network"]))
    client = signed_in(cast.admin)
    page = html(client.get(BASE + "network/delete/"))
    assert "1 agent has it and 1 category requires it" in page
    r = client.post(BASE + "network/delete/")
    assert r.status_code == 409
    page = html(r)
    assert 'role="alert"' in page
    assert "The skill &#x27;network&#x27; is in use" in page
    assert Skill.objects.filter(slug="network").exists()
    assert not AuditEntry.objects.filter(action="skill.deleted").exists()


def test_an_admin_deletes_an_unused_skill_after_confirming(cast: Cast) -> None:
    skill = skill_create(actor=None, slug="spare", name="Spare parts")
    client = signed_in(cast.admin)
    page = html(client.get(BASE + "spare/delete/"))
    assert "Delete the skill “Spare parts”?" in page
    assert "Nothing uses it" in page
    assert Skill.objects.filter(slug="spare").exists()  # GET only asks
    r = client.post(BASE + "spare/delete/")
    assert r.status_code == 302
    assert r["Location"] == BASE
    assert not Skill.objects.filter(slug="spare").exists()
    assert AuditEntry.objects.filter(
        action="skill.deleted", actor=cast.admin, target_id=str(skill.pk)
    ).exists()
    page = html(client.get(BASE))
    assert "Skill “Spare parts” deleted." in page
    assert 'id="skill-spare"' not in page
    assert client.get(BASE + "spare/delete/").status_code == 404


def test_a_manager_cannot_delete_a_skill(cast: Cast) -> None:
    skill_create(actor=None, slug="spare", name="Spare parts")
    client = signed_in(cast.manager)
    page = html(client.get(BASE + "spare/delete/"))
    assert "Only admins delete skills" in page
    assert "Delete skill</button>" not in page
    r = client.post(BASE + "spare/delete/")
    assert r.status_code == 403
    assert "may not do this" in html(r)
    assert Skill.objects.filter(slug="spare").exists()
