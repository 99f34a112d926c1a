"""Configuration of organizations and people: who may open and change what, creating and
editing, bad input kept with its message beside the field, no lock-out, and a people list
whose query count does not grow with its rows.

Who may do what (see tests/conftest.py): the admin everything; the manager (serves ACME)
reads ACME, creates and edits ACME's requesters, reads staff, and finds GLOBEX's people
missing; agents and requesters find no configuration at all."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.core import services as core_services
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.tiers import services as tier_services
from tierdesk.tiers.models import AgentProfile, WorkingHours
from tierdesk.web.views.config.people import parse_shifts

pytestmark = pytest.mark.django_db

BASE = "/console/config"
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def _page(response: Any) -> str:
    return str(response.content.decode())


def _error_beside(page: str, field: str) -> str:
    """The message shown beside ``field`` (Django's error list after its label)."""
    found = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', page, re.S)
    assert found, f"no error beside {field}"
    return re.sub(r"<[^>]+>", " ", found.group(1)).strip()


def _value(page: str, field: str) -> str:
    found = re.search(rf'<input[^>]*name="{field}"[^>]*>', page)
    assert found, f"no input {field}"
    value = re.search(r'value="([^"]*)"', found.group(0))
    return value.group(1) if value else ""


# --- who may open what -----------------------------------------------------------------


def test_agents_and_requesters_find_no_people_pages(cast: Cast) -> None:
    urls = [
        "/organizations/",
        "/organizations/new/",
        "/organizations/ACME/",
        "/people/",
        "/people/new/requester/",
        "/people/new/staff/",
        f"/people/{cast.alice.pk}/",
    ]
    for user in (cast.lena, cast.omar, cast.alice, cast.carol):
        client = signed_in(user)
        for url in urls:
            assert client.get(BASE + url).status_code == 404, (user.email, url)
        assert client.post(BASE + f"/people/{cast.alice.pk}/", {}).status_code == 404


def test_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    r = Client().get(BASE + "/people/")
    assert r.status_code == 302
    assert r["Location"].startswith("/login?next=")


def test_the_manager_sees_only_the_organizations_they_serve_read_only(cast: Cast) -> None:
    client = signed_in(cast.manager)
    page = _page(client.get(BASE + "/organizations/"))
    assert "Acme Inc." in page
    assert "GLOBEX" not in page
    assert "Add an organization" not in page
    assert client.get(BASE + "/organizations/GLOBEX/").status_code == 404
    r = client.get(BASE + "/organizations/ACME/")
    assert r.status_code == 200
    assert '<form method="post" class="stacked' not in _page(r)
    assert "America/New_York" in _page(r)
    r = client.post(BASE + "/organizations/ACME/", {"name": "Taken over", "time_zone": "UTC"})
    assert r.status_code == 403
    assert Organization.objects.get(code="ACME").name == "Acme Inc."
    assert client.get(BASE + "/organizations/new/").status_code == 403
    r = client.post(
        BASE + "/organizations/new/", {"code": "NEWCO", "name": "N", "time_zone": "UTC"}
    )
    assert r.status_code == 403
    assert not Organization.objects.filter(code="NEWCO").exists()


def test_the_manager_finds_globex_people_missing_and_cannot_touch_staff(cast: Cast) -> None:
    client = signed_in(cast.manager)
    assert client.get(BASE + f"/people/{cast.gerd.pk}/").status_code == 404
    r = client.post(BASE + f"/people/{cast.gerd.pk}/", {"full_name": "Hacked"})
    assert r.status_code == 404
    cast.gerd.refresh_from_db()
    assert cast.gerd.full_name == "Gerd"
    # staff: read-only, served organizations shown only as far as the manager sees them
    r = client.get(BASE + f"/people/{cast.omar.pk}/")
    assert r.status_code == 200
    page = _page(r)
    assert "Only admins change staff." in page
    assert 'name="full_name"' not in page
    assert "ACME" in page
    assert "GLOBEX" not in page
    r = client.post(
        BASE + f"/people/{cast.lena.pk}/",
        {"full_name": "Lena", "email": "lena@msp.example", "role": "admin", "is_active": ""},
    )
    assert r.status_code == 403
    cast.lena.refresh_from_db()
    assert (cast.lena.role, cast.lena.is_active) == ("agent", True)
    # no staff creation
    assert client.get(BASE + "/people/new/staff/").status_code == 403
    before = User.objects.count()
    r = client.post(
        BASE + "/people/new/staff/",
        {"full_name": "Mal", "email": "mal@msp.example", "role": "admin", "tier": "L1",
         "time_zone": "UTC"},
    )  # fmt: skip
    assert r.status_code == 403
    assert User.objects.count() == before
    assert "Add a staff member" not in _page(client.get(BASE + "/people/"))


def test_the_people_list_shows_what_the_actor_may_see(cast: Cast) -> None:
    page = _page(signed_in(cast.manager).get(BASE + "/people/"))
    assert "alice@acme.example" in page
    assert "lena@msp.example" in page  # staff are the MSP's: visible to managers
    assert "gerd@globex.example" not in page
    page = _page(signed_in(cast.admin).get(BASE + "/people/"))
    assert "gerd@globex.example" in page


def test_the_people_list_filters(cast: Cast) -> None:
    client = signed_in(cast.admin)
    page = _page(client.get(BASE + "/people/", {"organization": "GLOBEX"}))
    assert "gerd@globex.example" in page
    assert "alice@acme.example" not in page
    page = _page(client.get(BASE + "/people/", {"role": "agent"}))
    assert "lena@msp.example" in page
    assert "alice@acme.example" not in page
    assert "manager@msp.example" not in page
    page = _page(client.get(BASE + "/people/", {"text": "CAR"}))
    assert "carol@acme.example" in page
    assert "alice@acme.example" not in page
    core_services.user_update(actor=cast.admin, user=cast.bob, is_active=False)
    page = _page(client.get(BASE + "/people/", {"active": "no"}))
    assert "bob@acme.example" in page
    assert "alice@acme.example" not in page
    # a manager asking for GLOBEX: refused beside the field, the text kept
    r = signed_in(cast.manager).get(BASE + "/people/", {"organization": "GLOBEX", "text": "ger"})
    assert r.status_code == 400
    page = _page(r)
    assert 'id="id_organization-error"' in page
    assert "gerd@globex.example" not in page
    assert _value(page, "text") == "ger"


def test_the_people_list_pages(cast: Cast, settings: Any) -> None:
    for i in range(55):
        core_services.user_create(
            actor=None,
            email=f"zz{i:02d}@acme.example",
            full_name=f"Zz {i:02d}",
            role="requester",
            organization=cast.acme,
        )
    client = signed_in(cast.admin)
    first = _page(client.get(BASE + "/people/", {"organization": "ACME"}))
    assert "58 people, page 1 of 2" in first
    assert "page=2" in first
    assert "organization=ACME" in first
    second = _page(client.get(BASE + "/people/", {"organization": "ACME", "page": "2"}))
    assert "Zz 54" in second
    assert "Zz 54" not in first


def _people_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        r = client.get(BASE + "/people/")
    assert r.status_code == 200
    return len(ctx.captured_queries)


def test_the_people_list_query_count_does_not_grow_with_its_rows(cast: Cast) -> None:
    client = signed_in(cast.admin)
    client.get(BASE + "/people/")  # warm the per-process caches
    few = _people_queries(client)
    for i in range(20):
        tier_services.agent_create(
            actor=None,
            email=f"agent{i}@msp.example",
            full_name=f"Agent {i}",
            role="agent",
            tier=tier_services.tier_by_code("L2"),
        )
        core_services.user_create(
            actor=None,
            email=f"r{i}@globex.example",
            full_name=f"R {i}",
            role="requester",
            organization=cast.globex,
        )
    many = _people_queries(client)
    assert many == few, (few, many)
    # session, user, organizations for the filter, count, page
    assert many <= 6


def test_the_organization_list_counts_in_one_query(cast: Cast) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    make_ticket(cast.lena, cast.acme, cast.bob)
    client = signed_in(cast.admin)
    with CaptureQueriesContext(connection) as ctx:
        page = _page(client.get(BASE + "/organizations/"))
    acme_row = re.search(r"<tr>\s*<td><a[^>]*>ACME</a>.*?</tr>", page, re.S)
    assert acme_row
    numbers = re.findall(r'<td class="num">(\d+)</td>', acme_row.group(0))
    assert numbers == ["3", "2"]
    globex_row = re.search(r"<tr>\s*<td><a[^>]*>GLOBEX</a>.*?</tr>", page, re.S)
    assert globex_row
    assert re.findall(r'<td class="num">(\d+)</td>', globex_row.group(0)) == ["1", "0"]
    org_queries = [q for q in ctx.captured_queries if "core_organization" in q["sql"]]
    assert len(org_queries) == 1, org_queries


# --- organizations: create and edit -----------------------------------------------------


def test_the_admin_adds_and_edits_an_organization(cast: Cast) -> None:
    client = signed_in(cast.admin)
    r = client.post(
        BASE + "/organizations/new/",
        {"code": "initech", "name": "Initech", "time_zone": "America/Chicago",
         "email_domains": "initech.example, INITECH-corp.example"},
    )  # fmt: skip
    assert r.status_code == 302
    org = Organization.objects.get(code="INITECH")
    assert org.email_domains == ["initech.example", "initech-corp.example"]
    r = client.post(
        BASE + "/organizations/INITECH/",
        {"name": "Initech LLC", "time_zone": "Europe/Paris", "email_domains": "initech.example"},
    )
    assert r.status_code == 302
    org.refresh_from_db()
    assert (org.name, org.time_zone, org.is_active) == ("Initech LLC", "Europe/Paris", False)
    assert org.email_domains == ["initech.example"]


def test_a_bad_organization_keeps_what_was_typed(cast: Cast) -> None:
    client = signed_in(cast.admin)
    sent = {"code": "NEWCO", "name": "New Co", "time_zone": "Mars/Olympus", "email_domains": ""}
    r = client.post(BASE + "/organizations/new/", sent)
    assert r.status_code == 400
    page = _page(r)
    assert "not a known IANA time zone" in _error_beside(page, "time_zone")
    assert _value(page, "time_zone") == "Mars/Olympus"
    assert _value(page, "name") == "New Co"
    r = client.post(BASE + "/organizations/new/", {**sent, "code": "ACME", "time_zone": "UTC"})
    assert r.status_code == 400
    assert "exists" in _error_beside(_page(r), "code")
    r = client.post(
        BASE + "/organizations/new/", {**sent, "time_zone": "UTC", "email_domains": "not a domain!"}
    )
    assert r.status_code == 400
    assert "not a domain name" in _error_beside(_page(r), "email_domains")
    assert not Organization.objects.filter(code="NEWCO").exists()
    r = client.post(BASE + "/organizations/ACME/", {"name": "", "time_zone": "Nowhere/Land"})
    assert r.status_code == 400
    assert _value(_page(r), "time_zone") == "Nowhere/Land"
    assert Organization.objects.get(code="ACME").time_zone == "America/New_York"


# --- people: create ---------------------------------------------------------------------


def test_the_manager_adds_a_requester_of_their_organization_only(cast: Cast) -> None:
    client = signed_in(cast.manager)
    page = _page(client.get(BASE + "/people/new/requester/"))
    assert 'value="ACME"' in page
    assert "GLOBEX" not in page
    sent = {"full_name": "Dora Díaz", "email": "Dora@Acme.example", "organization": "ACME",
            "time_zone": "America/New_York", "sees_organization_tickets": "on"}  # fmt: skip
    r = client.post(BASE + "/people/new/requester/", sent)
    assert r.status_code == 302
    dora = User.objects.get(email="dora@acme.example")
    assert (dora.role, dora.organization, dora.sees_organization_tickets) == (
        "requester",
        cast.acme,
        True,
    )
    assert r["Location"] == f"{BASE}/people/{dora.pk}/"
    r = client.post(
        BASE + "/people/new/requester/",
        {**sent, "email": "x@globex.example", "organization": "GLOBEX"},
    )
    assert r.status_code == 400
    assert "valid choice" in _error_beside(_page(r), "organization")
    assert not User.objects.filter(email="x@globex.example").exists()


def test_the_admin_adds_a_staff_member_with_skills_and_shifts(cast: Cast) -> None:
    client = signed_in(cast.admin)
    r = client.post(
        BASE + "/people/new/staff/",
        {"full_name": "Nia Novak", "email": "nia@msp.example", "role": "agent", "tier": "L2",
         "time_zone": "Europe/Berlin", "skills": ["network", "backup"],
         "served_organizations": ["GLOBEX"], "shifts_mon": "08:00-12:00, 13:00-17:00",
         "shifts_fri": " 9:00 - 15:30 "},
    )  # fmt: skip
    assert r.status_code == 302, _page(r)
    nia = User.objects.get(email="nia@msp.example")
    profile = AgentProfile.objects.get(user=nia)
    assert profile.tier.code == "L2"
    assert sorted(profile.skills.values_list("slug", flat=True)) == ["backup", "network"]
    assert list(nia.served_organizations.values_list("code", flat=True)) == ["GLOBEX"]
    hours = [(h.weekday, h.start, h.end) for h in WorkingHours.objects.filter(agent=profile)]
    assert hours == [
        (0, dt.time(8), dt.time(12)),
        (0, dt.time(13), dt.time(17)),
        (4, dt.time(9), dt.time(15, 30)),
    ]
    page = _page(client.get(BASE + f"/people/{nia.pk}/"))
    assert _value(page, "shifts_mon") == "08:00-12:00, 13:00-17:00"
    assert _value(page, "shifts_fri") == "09:00-15:30"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "not a valid email address"),
        ({"email": "LENA@msp.example"}, "email", "a user with this email exists"),
        ({"shifts_tue": "9-17"}, "shifts_tue", "is not a shift"),
        ({"shifts_tue": "17:00-09:00"}, "shifts_tue", "must end after it starts"),
        ({"shifts_tue": "09:00-12:00, 11:00-13:00"}, "shifts_tue", "overlap"),
        ({"shifts_tue": "25:00-26:00"}, "shifts_tue", "00:00 to 23:59"),
        ({"time_zone": "Europe/Atlantis"}, "time_zone", "not a known IANA time zone"),
        ({"full_name": ""}, "full_name", "required"),
    ],
)
def test_bad_staff_input_keeps_what_was_typed(
    cast: Cast, change: dict[str, str], field: str, message: str
) -> None:
    sent = {"full_name": "Nia Novak", "email": "nia@msp.example", "role": "agent", "tier": "L2",
            "time_zone": "Europe/Berlin", "skills": ["network"], "shifts_mon": "08:00-16:00",
            **change}  # fmt: skip
    before = (User.objects.count(), AgentProfile.objects.count(), WorkingHours.objects.count())
    r = signed_in(cast.admin).post(BASE + "/people/new/staff/", sent)
    assert r.status_code == 400
    page = _page(r)
    assert message in _error_beside(page, field)
    for name in ("full_name", "email", "time_zone", "shifts_mon", "shifts_tue"):
        assert _value(page, name) == sent.get(name, ""), name
    assert 'value="network" id="id_skills_' in page
    assert re.search(r'value="network"[^>]*checked', page)
    assert (User.objects.count(), AgentProfile.objects.count(), WorkingHours.objects.count()) == (
        before
    )


def test_a_bad_requester_keeps_what_was_typed(cast: Cast) -> None:
    sent = {"full_name": "Dora", "email": "alice@acme.example", "organization": "ACME",
            "time_zone": "Moon/Base"}  # fmt: skip
    before = User.objects.count()
    r = signed_in(cast.manager).post(BASE + "/people/new/requester/", sent)
    assert r.status_code == 400
    page = _page(r)
    assert "exists" in _error_beside(page, "email")
    assert _value(page, "email") == "alice@acme.example"
    assert _value(page, "time_zone") == "Moon/Base"
    assert User.objects.count() == before


# --- people: edit -----------------------------------------------------------------------


def test_the_manager_edits_a_requester_and_deactivates_them(cast: Cast) -> None:
    client = signed_in(cast.manager)
    page = _page(client.get(BASE + f"/people/{cast.bob.pk}/"))
    assert _value(page, "email") == "bob@acme.example"
    r = client.post(
        BASE + f"/people/{cast.bob.pk}/",
        {"full_name": "Robert Bob", "email": "robert@acme.example", "organization": "ACME",
         "time_zone": "Europe/London", "sees_organization_tickets": "on"},
    )  # fmt: skip
    assert r.status_code == 302
    cast.bob.refresh_from_db()
    assert (cast.bob.full_name, cast.bob.email, cast.bob.time_zone) == (
        "Robert Bob",
        "robert@acme.example",
        "Europe/London",
    )
    assert cast.bob.sees_organization_tickets is True
    assert cast.bob.is_active is False  # the box was not ticked


def test_the_admin_moves_a_requester_to_another_organization(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        BASE + f"/people/{cast.alice.pk}/",
        {"full_name": "Alice", "email": "alice@acme.example", "organization": "GLOBEX",
         "time_zone": "UTC", "is_active": "on"},
    )  # fmt: skip
    assert r.status_code == 302
    cast.alice.refresh_from_db()
    assert cast.alice.organization == cast.globex


def _staff_post(user: User, **change: Any) -> dict[str, Any]:
    return {"full_name": user.full_name, "email": user.email, "role": user.role, "tier": "L1",
            "time_zone": "UTC", "is_active": "on", **change}  # fmt: skip


def test_the_admin_edits_an_agents_tier_skills_shifts_and_role(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        BASE + f"/people/{cast.lena.pk}/",
        _staff_post(cast.lena, tier="L2", role="manager", skills=["security"],
                    served_organizations=["ACME", "GLOBEX"], shifts_wed="10:00-18:00"),
    )  # fmt: skip
    assert r.status_code == 302, _page(r)
    cast.lena.refresh_from_db()
    profile = AgentProfile.objects.get(user=cast.lena)
    assert (cast.lena.role, profile.tier.code) == ("manager", "L2")
    assert list(profile.skills.values_list("slug", flat=True)) == ["security"]
    assert sorted(cast.lena.served_organizations.values_list("code", flat=True)) == [
        "ACME",
        "GLOBEX",
    ]
    assert [(h.weekday, h.start) for h in profile.hours.all()] == [(2, dt.time(10))]


def test_a_failing_staff_edit_writes_nothing(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile change is made first; when the work change is then refused, the
    profile change is undone with it."""

    def refuse(**kwargs: Any) -> None:
        raise ValidationFailed.for_field("tier", "refused for the test")

    monkeypatch.setattr(tier_services, "agent_update", refuse)
    r = signed_in(cast.admin).post(
        BASE + f"/people/{cast.lena.pk}/", _staff_post(cast.lena, full_name="Lena Changed")
    )
    assert r.status_code == 400
    assert "refused for the test" in _error_beside(_page(r), "tier")
    assert _value(_page(r), "full_name") == "Lena Changed"
    cast.lena.refresh_from_db()
    assert cast.lena.full_name == "Lena"


def test_a_bad_shift_on_edit_changes_nothing(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        BASE + f"/people/{cast.lena.pk}/",
        _staff_post(cast.lena, full_name="Lena New", shifts_sun="all day"),
    )
    assert r.status_code == 400
    assert "is not a shift" in _error_beside(_page(r), "shifts_sun")
    cast.lena.refresh_from_db()
    assert cast.lena.full_name == "Lena"


def test_an_admin_cannot_lock_themself_out(cast: Cast) -> None:
    client = signed_in(cast.admin)
    r = client.post(BASE + f"/people/{cast.admin.pk}/", _staff_post(cast.admin, is_active=""))
    assert r.status_code == 400
    assert "cannot deactivate yourself" in _error_beside(_page(r), "is_active")
    r = client.post(BASE + f"/people/{cast.admin.pk}/", _staff_post(cast.admin, role="agent"))
    assert r.status_code == 400
    assert "cannot change your own role" in _error_beside(_page(r), "role")
    cast.admin.refresh_from_db()
    assert (cast.admin.role, cast.admin.is_active) == ("admin", True)
    # and the rest of the page still saves
    r = client.post(BASE + f"/people/{cast.admin.pk}/", _staff_post(cast.admin, full_name="Ada"))
    assert r.status_code == 302


def test_names_with_markup_show_as_text(cast: Cast) -> None:
    core_services.organization_update(actor=cast.admin, organization=cast.acme, name=HOSTILE)
    core_services.user_update(actor=cast.admin, user=cast.alice, full_name=HOSTILE)
    client = signed_in(cast.admin)
    for url in ("/organizations/", "/people/", f"/people/{cast.alice.pk}/", "/organizations/ACME/"):
        page = _page(client.get(BASE + url))
        assert HOSTILE not in page, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in page, url


# --- the service rules behind the pages -------------------------------------------------


def test_user_update_refuses_changing_ones_own_role(cast: Cast) -> None:
    with pytest.raises(ValidationFailed) as exc:
        core_services.user_update(actor=cast.admin, user=cast.admin, role="agent")
    assert exc.value.errors[0].field == "role"
    cast.admin.refresh_from_db()
    assert cast.admin.role == "admin"


def test_user_update_refuses_deactivating_oneself(cast: Cast) -> None:
    with pytest.raises(ValidationFailed):
        core_services.user_update(actor=cast.admin, user=cast.admin, is_active=False)


def test_user_update_changes_roles_among_staff_only_and_only_for_admins(cast: Cast) -> None:
    core_services.user_update(actor=cast.admin, user=cast.lena, role="manager")
    cast.lena.refresh_from_db()
    assert cast.lena.role == "manager"
    with pytest.raises(ValidationFailed):
        core_services.user_update(actor=cast.admin, user=cast.alice, role="agent")
    with pytest.raises(ValidationFailed):
        core_services.user_update(actor=cast.admin, user=cast.gus, role="requester")
    with pytest.raises(PermissionDenied):
        core_services.user_update(actor=cast.manager, user=cast.alice, role="admin")


def test_user_update_checks_emails_and_organization_moves(cast: Cast) -> None:
    with pytest.raises(ValidationFailed) as exc:
        core_services.user_update(actor=cast.manager, user=cast.alice, email="BOB@acme.example")
    assert exc.value.errors[0].field == "email"
    with pytest.raises(ValidationFailed) as exc:
        core_services.user_update(actor=cast.manager, user=cast.alice, organization=cast.globex)
    assert exc.value.errors[0].field == "organization"
    with pytest.raises(ValidationFailed):
        core_services.user_update(actor=cast.admin, user=cast.lena, organization=cast.acme)
    core_services.user_update(actor=cast.manager, user=cast.alice, email=" Alice2@Acme.example ")
    cast.alice.refresh_from_db()
    assert (cast.alice.email, cast.alice.organization) == ("alice2@acme.example", cast.acme)


def test_parse_shifts_reads_the_strict_format() -> None:
    assert parse_shifts("") == []
    assert parse_shifts("13:00-17:00,08:00-12:00") == [
        (dt.time(8), dt.time(12)),
        (dt.time(13), dt.time(17)),
    ]
    for bad in ("8-12", "08:00", "08:00-12:00;13:00-14:00", "12:00-12:00", "08:60-09:00"):
        with pytest.raises(Exception, match=r"shift|00:00|after"):
            parse_shifts(bad)
