"""The SLA policy and business calendar configuration pages.

Who may see what (on top of the shared cast): the manager serves ACME, so they see and
change ACME's calendar and policy, read the MSP-wide ones without changing them, and find
GLOBEX's missing. Admins change everything; agents and requesters find no such pages."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.sla.models import BusinessCalendar, CalendarHoliday, SlaPolicy, SlaTarget
from tierdesk.sla.services import Target, calendar_create, sla_policy_create

pytestmark = pytest.mark.django_db

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass
class Setup:
    cast: Cast
    msp_cal: BusinessCalendar
    acme_cal: BusinessCalendar
    globex_cal: BusinessCalendar
    msp_policy: SlaPolicy
    acme_policy: SlaPolicy
    globex_policy: SlaPolicy


def _targets() -> list[Target]:
    return [Target("P1", 30, 240), Target("P2", 60, 480, 120), Target("P3", 240, 1440)]


@pytest.fixture
def setup(cast: Cast) -> Setup:
    week = {day: [(9 * 60, 17 * 60)] for day in range(5)}

    def cal(name: str, org: Any) -> BusinessCalendar:
        return calendar_create(
            actor=None,
            name=name,
            title=f"{name} hours",
            time_zone="Europe/Berlin",
            hours=week,
            holidays=[(dt.date(2026, 12, 25), "Christmas")],
            organization=org,
        )

    msp_cal, acme_cal, globex_cal = cal("msp", None), cal("acme", cast.acme), cal("gx", cast.globex)

    def pol(name: str, calendar: BusinessCalendar, org: Any) -> SlaPolicy:
        return sla_policy_create(
            actor=None, name=name, calendar=calendar, organization=org, targets=_targets()
        )

    return Setup(
        cast,
        msp_cal,
        acme_cal,
        globex_cal,
        pol("MSP standard", msp_cal, None),
        pol("ACME gold", acme_cal, cast.acme),
        pol("Globex premium", globex_cal, cast.globex),
    )


def policy_post(p: SlaPolicy, **changes: Any) -> dict[str, Any]:
    """The edit form as the page sends it, with ``changes``."""
    data: dict[str, Any] = {
        "name": p.name,
        "calendar": p.calendar.name,
        "warning_percent": p.warning_percent,
        "is_active": "on" if p.is_active else "",
    }
    for t in p.targets.all():
        pr = t.priority.lower()
        data[f"{pr}_first_response_minutes"] = t.first_response_minutes
        data[f"{pr}_next_update_minutes"] = t.next_update_minutes or ""
        data[f"{pr}_resolution_minutes"] = t.resolution_minutes
    return {k: v for k, v in (data | changes).items() if v != "" or k in changes}


def targets_of(p: SlaPolicy) -> list[tuple[str, int, int | None, int]]:
    return [
        (t.priority, t.first_response_minutes, t.next_update_minutes, t.resolution_minutes)
        for t in SlaTarget.objects.filter(policy=p).order_by("priority")
    ]


def error_beside(html: str, field: str) -> str:
    """The error list Django renders for ``field`` (id ``id_<field>_error``), as text."""
    match = re.search(rf'<ul class="errorlist"[^>]*id="id_{field}_error">(.*?)</ul>', html, re.S)
    assert match, f"no error beside {field}"
    return re.sub(r"<[^>]+>", " ", match[1]).strip()


PAGES = [
    "/console/config/sla/",
    "/console/config/sla/new/",
    "/console/config/calendars/",
    "/console/config/calendars/new/",
]


def test_agents_and_requesters_find_none_of_the_pages(setup: Setup) -> None:
    c = setup.cast
    pages = [
        *PAGES,
        f"/console/config/sla/{setup.acme_policy.pk}/",
        "/console/config/calendars/acme/",
    ]
    for user in (c.lena, c.omar, c.alice, c.carol):
        client = signed_in(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user.email, url)
        r = client.post(
            f"/console/config/sla/{setup.acme_policy.pk}/",
            policy_post(setup.acme_policy, name="Hijacked"),
        )
        assert r.status_code == 404
    assert SlaPolicy.objects.get(pk=setup.acme_policy.pk).name == "ACME gold"


def test_managers_and_admins_open_every_page(setup: Setup) -> None:
    for user in (setup.cast.manager, setup.cast.admin):
        for url in PAGES:
            r = signed_in(user).get(url)
            assert r.status_code == 200, (user.email, url)
            assert "<h1>" in r.content.decode()


def test_the_manager_lists_the_msp_wide_and_acme_policies_not_globex(setup: Setup) -> None:
    html = signed_in(setup.cast.manager).get("/console/config/sla/").content.decode()
    assert "MSP standard" in html
    assert "ACME gold" in html
    assert "Globex premium" not in html
    assert html.count(">Active</span>") == 2
    admin_html = signed_in(setup.cast.admin).get("/console/config/sla/").content.decode()
    assert "Globex premium" in admin_html


def test_the_list_names_organizations_without_a_policy_of_their_own(setup: Setup) -> None:
    signed_in(setup.cast.admin).post(
        f"/console/config/sla/{setup.globex_policy.pk}/",
        policy_post(setup.globex_policy, is_active=""),
    )
    html = signed_in(setup.cast.admin).get("/console/config/sla/").content.decode()
    assert "without an active policy" in html
    assert "GLOBEX" in html.split("without an active policy")[1]
    assert "the active MSP-wide policy applies" in html


def test_another_organizations_policy_is_not_found_and_not_changed(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    url = f"/console/config/sla/{setup.globex_policy.pk}/"
    assert client.get(url).status_code == 404
    r = client.post(url, policy_post(setup.globex_policy, p1_resolution_minutes=999))
    assert r.status_code == 404
    assert targets_of(setup.globex_policy)[0] == ("P1", 30, None, 240)


def test_a_manager_changes_a_target_of_their_organizations_policy(setup: Setup) -> None:
    url = f"/console/config/sla/{setup.acme_policy.pk}/"
    client = signed_in(setup.cast.manager)
    form = client.get(url).content.decode()
    assert 'name="p1_resolution_minutes"' in form
    assert 'value="240"' in form
    r = client.post(
        url,
        policy_post(setup.acme_policy, p1_resolution_minutes=300, p4_first_response_minutes=600,
                    p4_resolution_minutes=4800, warning_percent=70),
    )  # fmt: skip
    assert r.status_code == 302
    assert r["Location"] == "/console/config/sla/"
    assert targets_of(setup.acme_policy) == [
        ("P1", 30, None, 300),
        ("P2", 60, 120, 480),
        ("P3", 240, None, 1440),
        ("P4", 600, None, 4800),
    ]
    assert SlaPolicy.objects.get(pk=setup.acme_policy.pk).warning_percent == 70
    assert "saved" in client.get("/console/config/sla/").content.decode()


def test_a_row_left_empty_removes_that_prioritys_target(setup: Setup) -> None:
    data = policy_post(setup.acme_policy)
    for key in ("p3_first_response_minutes", "p3_resolution_minutes"):
        data[key] = ""
    r = signed_in(setup.cast.manager).post(f"/console/config/sla/{setup.acme_policy.pk}/", data)
    assert r.status_code == 302
    assert [t[0] for t in targets_of(setup.acme_policy)] == ["P1", "P2"]


def test_a_bad_number_keeps_what_was_typed_with_the_message_beside_it(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        f"/console/config/sla/{setup.acme_policy.pk}/",
        policy_post(setup.acme_policy, p1_resolution_minutes="four hours", name="Renamed"),
    )
    assert r.status_code == 400
    html = r.content.decode()
    assert 'value="four hours"' in html
    assert 'value="Renamed"' in html
    assert "whole number" in error_beside(html, "p1_resolution_minutes")
    assert 'aria-invalid="true"' in html
    assert SlaPolicy.objects.get(pk=setup.acme_policy.pk).name == "ACME gold"


def test_half_a_row_is_refused_beside_the_missing_cell(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        f"/console/config/sla/{setup.acme_policy.pk}/",
        policy_post(setup.acme_policy, p4_first_response_minutes=60),
    )
    assert r.status_code == 400
    assert "resolution target" in error_beside(r.content.decode(), "p4_resolution_minutes")


def test_the_services_refusal_shows_beside_the_cell_and_nothing_is_written(setup: Setup) -> None:
    before = targets_of(setup.acme_policy)
    r = signed_in(setup.cast.manager).post(
        f"/console/config/sla/{setup.acme_policy.pk}/",
        policy_post(setup.acme_policy, name="Renamed", p2_first_response_minutes=900),
    )
    assert r.status_code == 422
    html = r.content.decode()
    assert "cannot be due after the resolution" in error_beside(html, "p2_first_response_minutes")
    assert 'value="900"' in html
    assert targets_of(setup.acme_policy) == before
    assert SlaPolicy.objects.get(pk=setup.acme_policy.pk).name == "ACME gold"


def test_out_of_range_minutes_are_refused_by_the_service(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        f"/console/config/sla/{setup.acme_policy.pk}/",
        policy_post(setup.acme_policy, p3_resolution_minutes=0),
    )
    assert r.status_code == 422
    assert "1 to 525600" in error_beside(r.content.decode(), "p3_resolution_minutes")


def test_the_msp_wide_policy_is_read_only_for_a_manager(setup: Setup) -> None:
    url = f"/console/config/sla/{setup.msp_policy.pk}/"
    client = signed_in(setup.cast.manager)
    html = client.get(url).content.decode()
    assert "managed by the admins" in html
    assert "disabled" in html
    assert "Save policy" not in html
    r = client.post(url, policy_post(setup.msp_policy, p1_resolution_minutes=999))
    assert r.status_code == 403
    assert "Only admins manage MSP-wide SLA policies" in r.content.decode()
    assert targets_of(setup.msp_policy)[0] == ("P1", 30, None, 240)
    # the admin may
    r = signed_in(setup.cast.admin).post(
        url, policy_post(setup.msp_policy, p1_resolution_minutes=999)
    )
    assert r.status_code == 302
    assert targets_of(setup.msp_policy)[0] == ("P1", 30, None, 999)


def new_policy(**changes: Any) -> dict[str, Any]:
    return {
        "name": "ACME silver",
        "organization": "ACME",
        "calendar": "acme",
        "warning_percent": "80",
        "p1_first_response_minutes": "60",
        "p1_resolution_minutes": "480",
    } | changes


def test_a_manager_adds_an_inactive_policy_for_their_organization(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    form = client.get("/console/config/sla/new/").content.decode()
    assert '<option value="ACME">' in form
    assert '<option value="GLOBEX">' not in form
    assert "MSP-wide (every organization)" not in form  # admins' only
    assert 'value="gx"' not in form  # GLOBEX's calendar
    r = client.post("/console/config/sla/new/", new_policy())
    assert r.status_code == 302
    row = SlaPolicy.objects.get(name="ACME silver")
    assert row.organization == setup.cast.acme
    assert not row.is_active
    assert targets_of(row) == [("P1", 60, None, 480)]


def test_a_second_active_policy_is_refused_beside_active(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post("/console/config/sla/new/", new_policy(is_active="on"))
    assert r.status_code == 422
    assert "already has the active policy" in error_beside(r.content.decode(), "is_active")
    assert not SlaPolicy.objects.filter(name="ACME silver").exists()


def test_a_manager_cannot_add_a_policy_for_another_organization(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    r = client.post("/console/config/sla/new/", new_policy(organization="GLOBEX"))
    assert r.status_code == 400
    assert "valid choice" in error_beside(r.content.decode(), "organization")
    r = client.post("/console/config/sla/new/", new_policy(calendar="gx"))
    assert r.status_code == 400
    assert "valid choice" in error_beside(r.content.decode(), "calendar")
    assert not SlaPolicy.objects.filter(name="ACME silver").exists()


def test_a_policy_without_targets_is_refused(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        "/console/config/sla/new/",
        new_policy(p1_first_response_minutes="", p1_resolution_minutes=""),
    )
    assert r.status_code == 422
    assert "at least one priority" in r.content.decode()
    assert not SlaPolicy.objects.filter(name="ACME silver").exists()


def test_an_admin_adds_an_msp_wide_policy(setup: Setup) -> None:
    r = signed_in(setup.cast.admin).post(
        "/console/config/sla/new/", new_policy(name="MSP basic", organization="", calendar="msp")
    )
    assert r.status_code == 302
    assert SlaPolicy.objects.get(name="MSP basic").organization is None


# --- Business calendars ----------------------------------------------------------------


def calendar_post(cal: BusinessCalendar, **changes: Any) -> dict[str, Any]:
    """The edit form as the page sends it: its hours and holidays, and ``changes``."""
    hours: dict[str, list[str]] = {k: [] for k in WEEKDAYS}
    for h in cal.hours.all():
        s, e = h.start_minute, h.end_minute
        hours[WEEKDAYS[h.weekday]].append(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}")
    data: dict[str, Any] = {
        "title": cal.title,
        "time_zone": cal.time_zone,
        **{f"hours_{k}": ", ".join(v) for k, v in hours.items()},
    }
    if cal.always_open:
        data["always_open"] = "on"
    holidays = list(cal.holidays.all())
    rows = [*holidays, None]
    data |= {
        "holidays-TOTAL_FORMS": str(len(rows)),
        "holidays-INITIAL_FORMS": str(len(holidays)),
    }
    for i, h in enumerate(rows):
        data[f"holidays-{i}-date"] = h.date.isoformat() if h else ""
        data[f"holidays-{i}-name"] = h.name if h else ""
    return data | changes


def hours_of(cal: BusinessCalendar) -> list[tuple[int, int, int]]:
    return list(
        BusinessCalendar.objects.get(pk=cal.pk).hours.values_list(
            "weekday", "start_minute", "end_minute"
        )
    )


def holidays_of(cal: BusinessCalendar) -> dict[dt.date, str]:
    return dict(CalendarHoliday.objects.filter(calendar=cal).values_list("date", "name"))


def test_the_manager_lists_the_msp_wide_and_acme_calendars_not_globex(setup: Setup) -> None:
    html = signed_in(setup.cast.manager).get("/console/config/calendars/").content.decode()
    assert "/console/config/calendars/msp/" in html
    assert "/console/config/calendars/acme/" in html
    assert "/console/config/calendars/gx/" not in html
    assert "Monday: 09:00-17:00" in html


def test_another_organizations_calendar_is_not_found_and_not_changed(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    assert client.get("/console/config/calendars/gx/").status_code == 404
    r = client.post("/console/config/calendars/gx/", calendar_post(setup.globex_cal, hours_mon=""))
    assert r.status_code == 404
    r = client.post(
        "/console/config/calendars/gx/holidays/",
        {"country": "DE", "subdivision": "", "year": "2027"},
    )
    assert r.status_code == 404
    assert len(hours_of(setup.globex_cal)) == 5
    assert len(holidays_of(setup.globex_cal)) == 1


def test_a_manager_changes_hours_and_holidays(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    html = client.get("/console/config/calendars/acme/").content.decode()
    assert 'value="09:00-17:00"' in html
    assert 'value="2026-12-25"' in html
    data = calendar_post(
        setup.acme_cal,
        hours_mon="08:00-12:00, 13:00-17:30",
        hours_sat="10:00-14:00",
        hours_fri="",
        **{"holidays-0-DELETE": "on", "holidays-1-date": "2027-01-01",
           "holidays-1-name": "New Year"},
    )  # fmt: skip
    r = client.post("/console/config/calendars/acme/", data)
    assert r.status_code == 302, r.content.decode()
    assert hours_of(setup.acme_cal) == [
        (0, 480, 720),
        (0, 780, 1050),
        (1, 540, 1020),
        (2, 540, 1020),
        (3, 540, 1020),
        (5, 600, 840),
    ]
    assert holidays_of(setup.acme_cal) == {dt.date(2027, 1, 1): "New Year"}


def test_bad_hours_keep_what_was_typed_with_the_message_beside_the_weekday(
    setup: Setup,
) -> None:
    r = signed_in(setup.cast.manager).post(
        "/console/config/calendars/acme/",
        calendar_post(setup.acme_cal, hours_tue="9-17", title="New title",
                      **{"holidays-1-date": "2027-02-30", "holidays-1-name": "Nope"}),
    )  # fmt: skip
    assert r.status_code == 400
    html = r.content.decode()
    assert 'value="9-17"' in html
    assert 'value="New title"' in html
    assert 'value="Nope"' in html
    assert "not a time range like 08:00-17:00" in error_beside(html, "hours_tue")
    assert "valid date" in error_beside(html, "holidays-1-date")
    assert BusinessCalendar.objects.get(pk=setup.acme_cal.pk).title == "acme hours"


def test_overlapping_hours_are_refused_by_the_service_beside_the_weekday(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        "/console/config/calendars/acme/",
        calendar_post(setup.acme_cal, hours_wed="09:00-12:00, 11:00-13:00", title="Changed"),
    )
    assert r.status_code == 422
    html = r.content.decode()
    assert "overlaps" in error_beside(html, "hours_wed")
    assert 'value="09:00-12:00, 11:00-13:00"' in html
    assert len(hours_of(setup.acme_cal)) == 5
    assert BusinessCalendar.objects.get(pk=setup.acme_cal.pk).title == "acme hours"


def test_a_calendar_without_hours_is_refused_at_the_hours(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        "/console/config/calendars/acme/",
        calendar_post(setup.acme_cal, **{f"hours_{k}": "" for k in WEEKDAYS}),
    )
    assert r.status_code == 422
    assert 'id="hours-errors"' in r.content.decode()
    assert "needs opening hours" in r.content.decode()
    assert len(hours_of(setup.acme_cal)) == 5


def test_a_holiday_listed_twice_is_refused(setup: Setup) -> None:
    r = signed_in(setup.cast.manager).post(
        "/console/config/calendars/acme/",
        calendar_post(setup.acme_cal, **{"holidays-1-date": "2026-12-25"}),
    )
    assert r.status_code == 422
    assert "2026-12-25 is listed twice" in r.content.decode()
    assert len(holidays_of(setup.acme_cal)) == 1


def test_more_rows_adds_blank_holiday_rows_and_saves_nothing(setup: Setup) -> None:
    data = calendar_post(setup.acme_cal, title="Typed", more="1")
    r = signed_in(setup.cast.manager).post("/console/config/calendars/acme/", data)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'name="holidays-4-date"' in html  # 2 rows sent, 3 more
    assert 'value="Typed"' in html
    assert BusinessCalendar.objects.get(pk=setup.acme_cal.pk).title == "acme hours"


def test_public_holidays_are_added_for_a_country_and_year(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    r = client.post(
        "/console/config/calendars/acme/holidays/",
        {"country": "de", "subdivision": "by", "year": "2027"},
    )
    assert r.status_code == 302
    found = holidays_of(setup.acme_cal)
    assert dt.date(2027, 10, 3) in found  # German Unity Day
    assert dt.date(2027, 1, 6) in found  # Epiphany, Bavaria
    assert found[dt.date(2026, 12, 25)] == "Christmas"
    cal = BusinessCalendar.objects.get(pk=setup.acme_cal.pk)
    assert (cal.country, cal.subdivision) == ("DE", "BY")
    assert "public holidays of DE 2027" in client.get(r["Location"]).content.decode()


def test_an_unknown_country_is_refused_beside_the_field(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    r = client.post("/console/config/calendars/acme/holidays/", {"country": "XQ", "year": "2027"})
    assert r.status_code == 422
    html = r.content.decode()
    assert "no holidays known" in error_beside(html, "country")
    assert 'value="XQ"' in html
    r = client.post("/console/config/calendars/acme/holidays/", {"country": "DE", "year": "1800"})
    assert r.status_code == 422
    assert "years from 1970" in error_beside(r.content.decode(), "year")
    r = client.post("/console/config/calendars/acme/holidays/", {"country": "DE", "year": "x"})
    assert r.status_code == 400
    assert "whole number" in error_beside(r.content.decode(), "year")
    assert len(holidays_of(setup.acme_cal)) == 1


def test_the_msp_wide_calendar_is_read_only_for_a_manager(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    html = client.get("/console/config/calendars/msp/").content.decode()
    assert "managed by the admins" in html
    assert "Add public holidays" not in html
    r = client.post("/console/config/calendars/msp/", calendar_post(setup.msp_cal, hours_mon=""))
    assert r.status_code == 403
    assert "Only admins manage MSP-wide calendars" in r.content.decode()
    r = client.post("/console/config/calendars/msp/holidays/", {"country": "DE", "year": "2027"})
    assert r.status_code == 403
    assert len(hours_of(setup.msp_cal)) == 5
    assert len(holidays_of(setup.msp_cal)) == 1


def new_calendar(**changes: Any) -> dict[str, Any]:
    return {
        "name": "acme-late",
        "title": "ACME late shift",
        "organization": "ACME",
        "time_zone": "America/New_York",
        "hours_mon": "14:00-22:00",
        "hours_tue": "14:00-22:00",
        "holidays-TOTAL_FORMS": "2",
        "holidays-INITIAL_FORMS": "0",
        "holidays-0-date": "2026-07-04",
        "holidays-0-name": "Independence Day",
        "holidays-1-date": "",
        "holidays-1-name": "",
    } | changes


def test_a_manager_adds_a_calendar_for_their_organization(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    form = client.get("/console/config/calendars/new/").content.decode()
    assert '<option value="GLOBEX">' not in form
    r = client.post("/console/config/calendars/new/", new_calendar())
    assert r.status_code == 302
    assert r["Location"] == "/console/config/calendars/acme-late/"
    cal = BusinessCalendar.objects.get(name="acme-late")
    assert cal.organization == setup.cast.acme
    assert hours_of(cal) == [(0, 840, 1320), (1, 840, 1320)]
    assert holidays_of(cal) == {dt.date(2026, 7, 4): "Independence Day"}


def test_adding_a_calendar_refuses_a_taken_name_and_an_msp_wide_one(setup: Setup) -> None:
    client = signed_in(setup.cast.manager)
    r = client.post("/console/config/calendars/new/", new_calendar(name="acme"))
    assert r.status_code == 422
    assert "exists" in error_beside(r.content.decode(), "name")
    r = client.post("/console/config/calendars/new/", new_calendar(organization=""))
    assert r.status_code == 403
    assert "Only admins manage MSP-wide calendars" in r.content.decode()
    r = client.post("/console/config/calendars/new/", new_calendar(time_zone="Mars/Olympus"))
    assert r.status_code == 400
    assert "valid choice" in error_beside(r.content.decode(), "time_zone")
    assert not BusinessCalendar.objects.filter(name="acme-late").exists()
    assert BusinessCalendar.objects.count() == 3


def test_an_always_open_calendar_with_hours_is_refused(setup: Setup) -> None:
    r = signed_in(setup.cast.admin).post(
        "/console/config/calendars/new/", new_calendar(always_open="on", organization="")
    )
    assert r.status_code == 422
    assert "a 24x7 calendar has no opening hours" in r.content.decode()
    assert not BusinessCalendar.objects.filter(name="acme-late").exists()


# --- query budget ----------------------------------------------------------------------------


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_the_policy_list_query_count_does_not_grow_with_its_policies(setup: Setup) -> None:
    client = signed_in(setup.cast.admin)
    path = "/console/config/sla/"
    _queries(client, path)  # warm the per-process caches
    few = _queries(client, path)
    for i in range(20):
        sla_policy_create(
            actor=None,
            name=f"Spare {i}",
            calendar=(setup.msp_cal, setup.acme_cal)[i % 2],
            organization=(None, setup.cast.acme)[i % 2],
            targets=_targets(),
            is_active=False,
        )
    assert _queries(client, path) == few


def test_the_calendar_list_query_count_does_not_grow_with_its_calendars(setup: Setup) -> None:
    client = signed_in(setup.cast.admin)
    path = "/console/config/calendars/"
    _queries(client, path)  # warm the per-process caches
    few = _queries(client, path)
    week = {day: [(8 * 60, 12 * 60), (13 * 60, 17 * 60)] for day in range(6)}
    for i in range(20):
        calendar_create(
            actor=None,
            name=f"spare-{i}",
            title=f"Spare {i}",
            time_zone="Europe/Berlin",
            hours=week,
            holidays=[(dt.date(2026, 12, 25), "Christmas"), (dt.date(2026, 1, 1), "New Year")],
            organization=(None, setup.cast.acme, setup.cast.globex)[i % 3],
        )
    assert _queries(client, path) == few
