"""Configuration pages for tiers and categories: who reaches them, what they list, and
changes through the tiers services (admins only, per the policy; a manager reads)."""

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
from tierdesk.tiers.models import AssignmentStrategy, Category, Tier
from tierdesk.tiers.services import category_create, skills_by_slug, tier_by_code

pytestmark = pytest.mark.django_db

PAGES = [
    "/console/config/tiers/",
    "/console/config/tiers/L1/",
    "/console/config/categories/",
    "/console/config/categories/new/",
]


def html(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


def field_error(page: str, name: str) -> str:
    """The text of the error list Django renders for field ``name`` ('' when none)."""
    found = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', page, re.S)
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def globex_own(cast: Cast) -> Category:
    return category_create(
        actor=None, slug="sap", name="SAP", default_tier=tier_by_code("L2"),
        organization=cast.globex,
    )  # fmt: skip


# --- access ----------------------------------------------------------------------------------


def test_agents_and_requesters_find_no_catalog_pages(cast: Cast) -> None:
    category = Category.objects.filter(organization__isnull=True).first()
    assert category is not None
    for user in (cast.lena, cast.omar, cast.outsider, cast.alice, cast.carol):
        client = signed_in(user)
        for url in [*PAGES, f"/console/config/categories/{category.pk}/"]:
            assert client.get(url).status_code == 404, (user.email, url)
        r = client.post("/console/config/tiers/L1/", {"name": "Hacked"})
        assert r.status_code == 404
    assert Tier.objects.get(code="L1").name != "Hacked"


def test_visitors_are_sent_to_sign_in() -> None:
    for url in PAGES:
        r = Client().get(url)
        assert r.status_code == 302
        assert r["Location"].startswith("/login?next=")


def test_managers_and_admins_read_both_lists(cast: Cast) -> None:
    for user in (cast.manager, cast.admin):
        page = html(signed_in(user).get("/console/config/tiers/"))
        for tier in Tier.objects.all():
            assert f'<th scope="row">{tier.code}</th>' in page
        assert "Manual (agents take tickets from the queue)" in page
        page = html(signed_in(user).get("/console/config/categories/"))
        assert "MSP-wide" in page
        assert "Access &amp; accounts" in page


# --- tiers -----------------------------------------------------------------------------------


def test_an_admin_edits_a_tiers_name_assignment_and_managers(cast: Cast) -> None:
    client = signed_in(cast.admin)
    page = html(client.get("/console/config/tiers/"))
    assert 'href="/console/config/tiers/L2/"' in page
    r = client.post(
        "/console/config/tiers/L2/",
        {
            "name": "Second line",
            "description": "Deeper troubleshooting.",
            "assignment_strategy": AssignmentStrategy.LEAST_LOADED,
            "managers": [str(cast.manager.pk)],
        },
    )
    assert r.status_code == 302
    assert r["Location"] == "/console/config/tiers/"
    tier = Tier.objects.get(code="L2")
    assert tier.name == "Second line"
    assert tier.assignment_strategy == AssignmentStrategy.LEAST_LOADED
    assert list(tier.managers.all()) == [cast.manager]
    entry = AuditEntry.objects.filter(action="tier.updated").latest("id")
    assert entry.actor == cast.admin
    assert entry.changes["managers"] == {"old": [], "new": ["manager@msp.example"]}
    page = html(client.get("/console/config/tiers/"))
    assert "Second line" in page
    assert "Least loaded" in page
    assert "Manager" in page


def test_a_manager_reads_tiers_and_saving_is_refused_by_the_service(cast: Cast) -> None:
    client = signed_in(cast.manager)
    page = html(client.get("/console/config/tiers/"))
    assert "/console/config/tiers/L2/" not in page  # no edit links
    assert "Only admins change tiers" in page
    before = Tier.objects.get(code="L2").name
    r = client.post(
        "/console/config/tiers/L2/",
        {"name": "Mine now", "description": "", "assignment_strategy": "manual"},
    )
    assert r.status_code == 403
    page = html(r)
    assert 'role="alert"' in page
    assert "may not do this" in page
    assert 'value="Mine now"' in page  # what was typed stays
    assert Tier.objects.get(code="L2").name == before


def test_bad_tier_input_stays_with_the_message_beside_the_field(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        "/console/config/tiers/L1/",
        {"name": "", "description": "kept text", "assignment_strategy": "coin_toss"},
    )
    assert r.status_code == 400
    page = html(r)
    assert field_error(page, "name") == "This field is required."
    assert "valid choice" in field_error(page, "assignment_strategy")
    assert "kept text" in page
    assert Tier.objects.get(code="L1").description != "kept text"


def test_an_admin_adds_a_tier_and_its_queue_appears(cast: Cast) -> None:
    client = signed_in(cast.admin)
    assert 'href="/console/config/tiers/new/"' in html(client.get("/console/config/tiers/"))
    form = html(client.get("/console/config/tiers/new/"))
    assert 'name="level" value="4"' in form  # one above the highest tier
    r = client.post(
        "/console/config/tiers/new/",
        {
            "code": "noc",
            "level": "5",
            "name": "Network operations",
            "description": "Watches the monitoring.",
            "assignment_strategy": AssignmentStrategy.ROUND_ROBIN,
            "managers": [str(cast.manager.pk)],
        },
    )
    assert r.status_code == 302, html(r)
    tier = Tier.objects.get(code="NOC")
    assert (tier.level, tier.name, tier.assignment_strategy) == (
        5,
        "Network operations",
        "round_robin",
    )
    assert list(tier.managers.all()) == [cast.manager]
    entry = AuditEntry.objects.get(action="tier.created")
    assert entry.actor == cast.admin
    assert entry.changes["managers"] == ["manager@msp.example"]
    queue = signed_in(cast.omar).get("/console/queue/noc")
    assert queue.status_code == 200
    assert "NOC queue" in html(queue)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("code", "L1", "already exists"),
        ("code", "4X", "starting with a letter"),
        ("code", "TOOLONGCODE", "at most 8"),
        ("code", "mine", "names another queue"),
        ("level", "2", "already exists"),
        ("level", "0", "greater than or equal to 1"),
        ("name", "", "required"),
    ],
)
def test_a_tier_that_cannot_be_added_is_refused_beside_its_field(
    cast: Cast, field: str, value: str, message: str
) -> None:
    sent = {"code": "L4", "level": "4", "name": "Fourth", "assignment_strategy": "manual"}
    sent[field] = value
    r = signed_in(cast.admin).post("/console/config/tiers/new/", {**sent, "description": "kept"})
    assert r.status_code == 400
    page = html(r)
    assert message in field_error(page, field)
    assert "kept" in page
    assert Tier.objects.count() == 3


def test_a_manager_may_not_add_a_tier(cast: Cast) -> None:
    client = signed_in(cast.manager)
    assert "/console/config/tiers/new/" not in html(client.get("/console/config/tiers/"))
    sent = {"code": "L4", "level": "4", "name": "Fourth", "assignment_strategy": "manual"}
    r = client.post("/console/config/tiers/new/", sent)
    assert r.status_code == 403
    assert "may not do this" in html(r)
    assert not Tier.objects.filter(code="L4").exists()
    assert signed_in(cast.lena).get("/console/config/tiers/new/").status_code == 404


def test_only_managers_and_admins_can_be_tier_managers(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        "/console/config/tiers/L1/",
        {"name": "L1", "assignment_strategy": "manual", "managers": [str(cast.lena.pk)]},
    )
    assert r.status_code == 400
    assert "valid choice" in field_error(html(r), "managers")
    assert not Tier.objects.get(code="L1").managers.exists()


# --- categories ------------------------------------------------------------------------------


def test_a_manager_sees_the_msp_catalog_and_only_their_organizations_own(cast: Cast) -> None:
    hidden = globex_own(cast)
    category_create(
        actor=None, slug="erp", name="ACME ERP", default_tier=tier_by_code("L2"),
        organization=cast.acme,
    )  # fmt: skip
    page = html(signed_in(cast.manager).get("/console/config/categories/"))
    assert "ACME — Acme Inc." in page
    assert "ACME ERP" in page
    assert "SAP" not in page
    assert (
        signed_in(cast.manager).get(f"/console/config/categories/{hidden.pk}/").status_code == 404
    )
    admin_page = html(signed_in(cast.admin).get("/console/config/categories/"))
    assert "GLOBEX — Globex GmbH" in admin_page
    assert "SAP" in admin_page


def test_an_admin_creates_an_organizations_category(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        "/console/config/categories/new/",
        {
            "organization": "ACME",
            "slug": "cad",
            "name": "CAD workstations",
            "description": "Design software.",
            "default_tier": "L2",
            "default_impact": "1",
            "default_urgency": "3",
            "required_skills": ["software", "hardware"],
        },
    )
    assert r.status_code == 302, html(r)
    made = Category.objects.get(slug="cad")
    assert made.organization == cast.acme
    assert made.default_tier.code == "L2"
    assert (made.default_impact, made.default_urgency) == (1, 3)
    assert sorted(s.slug for s in made.required_skills.all()) == ["hardware", "software"]
    assert made.is_active
    assert AuditEntry.objects.filter(action="category.created", target_id=str(made.pk)).exists()


def test_a_taken_slug_is_refused_beside_the_slug_and_the_form_keeps_its_values(
    cast: Cast,
) -> None:
    count = Category.objects.count()
    r = signed_in(cast.admin).post(
        "/console/config/categories/new/",
        {
            "organization": "",
            "slug": "email",
            "name": "Mail again",
            "default_tier": "L1",
            "default_impact": "2",
            "default_urgency": "2",
        },
    )
    assert r.status_code == 400
    page = html(r)
    assert "already has a category" in field_error(page, "slug")
    assert 'value="Mail again"' in page
    assert Category.objects.count() == count


def test_bad_category_input_is_refused_field_by_field(cast: Cast) -> None:
    r = signed_in(cast.admin).post(
        "/console/config/categories/new/",
        {
            "organization": "NOPE",
            "slug": "Not a slug!",
            "name": "",
            "default_tier": "L9",
            "default_impact": "7",
            "default_urgency": "2",
            "required_skills": ["juggling"],
        },
    )
    assert r.status_code == 400
    page = html(r)
    for name in ("organization", "slug", "name", "default_tier", "default_impact"):
        assert field_error(page, name), name
    assert "juggling" in field_error(page, "required_skills")
    assert 'value="Not a slug!"' in page


def test_an_admin_edits_a_category_and_retires_it(cast: Cast) -> None:
    email = Category.objects.get(slug="email", organization__isnull=True)
    r = signed_in(cast.admin).post(
        f"/console/config/categories/{email.pk}/",
        {
            "name": "Email & calendars",
            "description": "Mailboxes.",
            "default_tier": "L2",
            "default_impact": "2",
            "default_urgency": "1",
            "required_skills": ["email"],
            # is_active unchecked: retired
        },
    )
    assert r.status_code == 302
    email.refresh_from_db()
    assert (email.name, email.default_tier.code, email.default_urgency) == (
        "Email & calendars",
        "L2",
        1,
    )
    assert not email.is_active
    assert list(email.required_skills.all()) == skills_by_slug(["email"])
    page = html(signed_in(cast.admin).get("/console/config/categories/"))
    assert f'<tr id="category-{email.pk}" class="inactive">' in page


def test_a_manager_cannot_change_the_catalog(cast: Cast) -> None:
    client = signed_in(cast.manager)
    page = html(client.get("/console/config/categories/"))
    assert "/console/config/categories/new/" not in page
    r = client.post(
        "/console/config/categories/new/",
        {
            "organization": "ACME",
            "slug": "mine",
            "name": "Mine",
            "default_tier": "L1",
            "default_impact": "2",
            "default_urgency": "2",
        },
    )
    assert r.status_code == 403
    assert "may not do this" in html(r)
    assert not Category.objects.filter(slug="mine").exists()
    email = Category.objects.get(slug="email", organization__isnull=True)
    r = client.post(
        f"/console/config/categories/{email.pk}/",
        {"name": "X", "default_tier": "L1", "default_impact": "2", "default_urgency": "2"},
    )
    assert r.status_code == 403
    assert Category.objects.get(pk=email.pk).name == "Email"


def _questions(rows: list[dict[str, str]], initial: int = 0) -> dict[str, str]:
    data = {"q-TOTAL_FORMS": str(len(rows)), "q-INITIAL_FORMS": str(initial)}
    for n, row in enumerate(rows):
        data |= {f"q-{n}-{k}": v for k, v in row.items()}
    return data


def test_an_admin_sets_a_categorys_questions_and_bad_ones_are_refused(cast: Cast) -> None:
    hardware = Category.objects.get(slug="hardware", organization__isnull=True)
    client = signed_in(cast.admin)
    url = f"/console/config/categories/{hardware.pk}/"
    base = {
        "name": "Hardware",
        "default_tier": "L1",
        "default_impact": "3",
        "default_urgency": "3",
        "is_active": "on",
    }
    device = {"key": "device", "label": "Which device?", "type": "choice", "required": "on",
              "choices": "Laptop; Printer", "help": ""}  # fmt: skip
    empty = {"key": "", "label": "", "type": "text", "choices": "", "help": ""}
    r = client.post(url, base | _questions([device, empty, empty]))
    assert r.status_code == 302
    hardware.refresh_from_db()
    assert hardware.form_fields == [
        {"key": "device", "label": "Which device?", "type": "choice", "required": True,
         "choices": ["Laptop", "Printer"], "help": ""},
    ]  # fmt: skip
    page = html(client.get(url))
    assert 'value="Laptop; Printer"' in page  # shown for editing, one empty row more
    assert 'name="q-TOTAL_FORMS" value="4"' in page
    # a choice question without choices: refused, named, typed rows kept, nothing changed
    bad = device | {"key": "tag", "choices": ""}
    r = client.post(url, base | _questions([device, bad], initial=1))
    page = html(r)
    assert r.status_code == 400
    assert "question 2: a choice question needs its choices" in page
    assert 'value="tag"' in page
    hardware.refresh_from_db()
    assert [q["key"] for q in hardware.form_fields] == ["device"]
    # a client that does not send the editor leaves the questions alone
    assert client.post(url, base).status_code == 302
    hardware.refresh_from_db()
    assert [q["key"] for q in hardware.form_fields] == ["device"]
    # an emptied row removes its question
    assert client.post(url, base | _questions([empty], initial=1)).status_code == 302
    hardware.refresh_from_db()
    assert hardware.form_fields == []


# --- query budget ----------------------------------------------------------------------------


def _categories_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/console/config/categories/").status_code == 200
    return len(ctx.captured_queries)


def test_the_category_list_query_count_does_not_grow_with_its_categories(cast: Cast) -> None:
    client = signed_in(cast.admin)
    skills = skills_by_slug(["hardware", "network"])

    def add(i: int) -> None:
        # MSP-wide and each client's own, with skills and questions, as the list shows them
        category_create(
            actor=None,
            slug=f"extra-{i}",
            name=f"Extra {i}",
            default_tier=tier_by_code("L2" if i % 2 else "L1"),
            required_skills=skills,
            organization=(None, cast.acme, cast.globex)[i % 3],
            form_fields=[{"key": "asset", "label": "Asset tag", "type": "text"}],
        )

    for i in range(3):
        add(i)
    _categories_queries(client)  # warm the per-process caches
    few = _categories_queries(client)
    for i in range(3, 24):
        add(i)
    assert _categories_queries(client) == few
