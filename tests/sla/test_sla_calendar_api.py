"""The calendars API: /api/v1/calendars, …/{name}, …/{name}/due and …/{name}/between."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, Cast, problem_fields
from tierdesk.core.models import User
from tierdesk.sla import services
from tierdesk.sla.models import BusinessCalendar

ApiAs = Callable[[User | None], Api]
OFFICE = {"mon": ["08:00-17:00"], "tue": ["08:00-17:00"], "wed": ["08:00-17:00"]} | {
    "thu": ["08:00-17:00"],
    "fri": ["08:00-17:00"],
}


@pytest.fixture
def calendars(cast: Cast) -> None:
    """GLOBEX's Berlin hours, ACME's New York hours, and an MSP-wide 24x7 calendar."""
    week = {day: [(8 * 60, 17 * 60)] for day in range(5)}
    services.calendar_create(
        actor=None,
        name="globex-berlin",
        title="Globex Berlin",
        time_zone="Europe/Berlin",
        hours=week,
        country="DE",
        holiday_years=[2026],
        organization=cast.globex,
    )
    services.calendar_create(
        actor=None,
        name="acme-ny",
        title="Acme New York",
        time_zone="America/New_York",
        hours=week,
        organization=cast.acme,
    )
    services.calendar_create(
        actor=None, name="24x7", title="Always", time_zone="UTC", always_open=True
    )


def new_calendar(**kw: Any) -> dict[str, Any]:
    return {
        "name": "acme-berlin",
        "title": "Acme's Berlin office",
        "time_zone": "Europe/Berlin",
        "hours": OFFICE,
        "organization": "ACME",
    } | kw


# --- reading ------------------------------------------------------------------------------


@pytest.mark.usefixtures("calendars")
def test_staff_list_what_they_serve_and_the_msp_wide_ones(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.lena).get("/calendars")
    assert r.status_code == 200
    assert [c["name"] for c in r.json()] == ["24x7", "acme-ny"]
    acme = r.json()[1]
    assert acme["organization"] == "ACME"
    assert acme["hours"]["mon"] == ["08:00-17:00"]
    assert acme["hours"]["sun"] == []
    assert [c["name"] for c in api_as(cast.gus).get("/calendars").json()] == [
        "24x7",
        "globex-berlin",
    ]
    assert api_as(cast.alice).get("/calendars").json() == []  # requesters see none


@pytest.mark.usefixtures("calendars")
def test_a_calendar_reads_with_its_holidays(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.gus).get("/calendars/globex-berlin")
    assert r.status_code == 200
    body = r.json()
    assert body["time_zone"] == "Europe/Berlin"
    assert body["country"] == "DE"
    assert {"date": "2026-10-03", "name": "Tag der Deutschen Einheit"} in body["holidays"]
    assert body["created_at"].endswith("Z")


@pytest.mark.usefixtures("calendars")
def test_another_organizations_calendar_is_404(cast: Cast, api_as: ApiAs) -> None:
    lena = api_as(cast.lena)
    for path in (
        "/calendars/globex-berlin",
        "/calendars/globex-berlin/due?from=2026-11-20T15:30:00Z&minutes=240",
        "/calendars/globex-berlin/between?from=2026-11-20T15:30:00Z&to=2026-11-23T15:30:00Z",
    ):
        r = lena.get(path)
        assert r.status_code == 404, path
        assert problem_fields(r) == []
    r = lena.patch("/calendars/globex-berlin", {"title": "mine"})
    assert r.status_code == 404
    assert api_as(cast.alice).get("/calendars/24x7").status_code == 404
    assert api_as(cast.lena).get("/calendars/no-such").status_code == 404


# --- due and between ----------------------------------------------------------------------


@pytest.mark.usefixtures("calendars")
def test_due_answers_the_docs_example(cast: Cast, api_as: ApiAs) -> None:
    """Friday 20 Nov 2026, 16:30 Berlin + 4 business hours -> Monday 11:30 Berlin."""
    r = api_as(cast.gus).get(
        "/calendars/globex-berlin/due", params={"from": "2026-11-20T16:30:00+01:00", "minutes": 240}
    )
    assert r.status_code == 200, r.content
    assert r.json() == {
        "calendar": "globex-berlin",
        "start": "2026-11-20T15:30:00Z",
        "minutes": 240,
        "due": "2026-11-23T10:30:00Z",
    }


@pytest.mark.usefixtures("calendars")
def test_between_counts_whole_minutes_rounded_down(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.gus).get(
        "/calendars/globex-berlin/between",
        params={"from": "2026-11-20T15:30:00Z", "to": "2026-11-23T10:30:59Z"},
    )
    assert r.status_code == 200, r.content
    assert r.json()["minutes"] == 240
    assert r.json()["seconds"] == 240 * 60 + 59
    backwards = api_as(cast.gus).get(
        "/calendars/24x7/between",
        params={"from": "2026-11-23T10:30:00Z", "to": "2026-11-20T15:30:00Z"},
    )
    assert backwards.json()["minutes"] == 0


@pytest.mark.usefixtures("calendars")
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"minutes": 240}, "from"),
        ({"from": "2026-11-20T15:30:00Z"}, "minutes"),
        ({"from": "2026-11-20T15:30:00", "minutes": 240}, "from"),
        ({"from": "friday", "minutes": 240}, "from"),
        ({"from": "2026-11-20T15:30:00Z", "minutes": -5}, "minutes"),
        ({"from": "2026-11-20T15:30:00Z", "minutes": "four"}, "minutes"),
        ({"from": "2026-11-20T15:30:00Z", "minutes": 5, "tz": "x"}, "tz"),
    ],
)
def test_bad_due_questions_are_problems_naming_the_parameter(
    cast: Cast, api_as: ApiAs, params: dict[str, Any], field: str
) -> None:
    r = api_as(cast.gus).get("/calendars/globex-berlin/due", params=params)
    assert r.status_code == 422, r.content
    assert problem_fields(r) == [field]


@pytest.mark.usefixtures("calendars")
def test_between_needs_both_instants_with_offsets(cast: Cast, api_as: ApiAs) -> None:
    gus = api_as(cast.gus)
    r = gus.get("/calendars/globex-berlin/between", params={"from": "2026-11-20T15:30:00Z"})
    assert problem_fields(r) == ["to"]
    r = gus.get(
        "/calendars/globex-berlin/between",
        params={"from": "2026-11-20T15:30:00Z", "to": "2026-11-23T10:30:00"},
    )
    assert problem_fields(r) == ["to"]
    assert "no UTC offset" in r.json()["detail"]


# --- writing ------------------------------------------------------------------------------


def test_a_manager_creates_a_calendar_for_a_client_they_serve(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.manager).post(
        "/calendars",
        new_calendar(
            hours=OFFICE | {"sat": ["10:00-14:00"]},
            holidays=[{"date": "2026-12-24", "name": "Christmas Eve"}],
        ),
    )
    assert r.status_code == 201, r.content
    assert r["Location"] == "/api/v1/calendars/acme-berlin"
    body = r.json()
    assert body["organization"] == "ACME"
    assert body["hours"]["sat"] == ["10:00-14:00"]
    assert body["holidays"] == [{"date": "2026-12-24", "name": "Christmas Eve"}]


def test_create_honours_an_idempotency_key(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    headers = {"Idempotency-Key": "cal-1"}
    first = api.post("/calendars", new_calendar(), headers=headers)
    again = api.post("/calendars", new_calendar(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert BusinessCalendar.objects.count() == 1


def test_create_with_seeded_holidays_and_a_24x7_calendar(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    r = api.post(
        "/calendars",
        new_calendar(country="AU", subdivision="NSW", holiday_years=[2026], time_zone="UTC"),
    )
    assert r.status_code == 201, r.content
    assert len(r.json()["holidays"]) > 8
    r = api.post(
        "/calendars", {"name": "24x7", "title": "Always", "time_zone": "UTC", "always_open": True}
    )
    assert r.status_code == 201, r.content
    assert r.json()["organization"] is None
    assert all(spans == [] for spans in r.json()["hours"].values())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (new_calendar(hours={"mon": ["08:00-12:00", "11:00-13:00"]}), "hours"),
        (new_calendar(hours={}), "hours"),
        (new_calendar(hours={"mon": ["8 to 5"]}), "hours.mon"),
        (new_calendar(hours={"mon": ["17:00-08:00"]}), "hours.mon"),
        (new_calendar(hours={"monday": ["08:00-17:00"]}), "hours.monday"),
        (new_calendar(time_zone="Berlin"), "time_zone"),
        (new_calendar(country="XX", holiday_years=[2026]), "country"),
        (new_calendar(holiday_years=[1492]), "holiday_years.0"),
        (
            new_calendar(holidays=[{"date": "2026-12-24"}, {"date": "2026-12-24"}]),
            "holidays",
        ),
        (new_calendar(organization="GLOBEX"), "organization"),
        (new_calendar(name="no spaces please"), "name"),
        (new_calendar(always_open=True), "hours"),
    ],
)
def test_bad_calendars_are_refused_naming_the_field(
    cast: Cast, api_as: ApiAs, body: dict[str, Any], field: str
) -> None:
    r = api_as(cast.manager).post("/calendars", body)
    assert r.status_code == 422, r.content
    assert problem_fields(r) == [field]
    assert not BusinessCalendar.objects.exists()


def test_who_may_create(cast: Cast, api_as: ApiAs) -> None:
    shared = new_calendar(organization=None)
    assert api_as(cast.manager).post("/calendars", shared).status_code == 403
    assert api_as(cast.lena).post("/calendars", new_calendar()).status_code == 403
    assert api_as(cast.alice).post("/calendars", new_calendar()).status_code == 403
    assert api_as(cast.admin).post("/calendars", shared).status_code == 201


@pytest.mark.usefixtures("calendars")
def test_patch_replaces_hours_and_refuses_nulls(cast: Cast, api_as: ApiAs) -> None:
    manager = api_as(cast.manager)
    r = manager.patch(
        "/calendars/acme-ny", {"title": "Acme NYC", "hours": {"mon": ["09:00-12:00"]}}
    )
    assert r.status_code == 200, r.content
    assert r.json()["title"] == "Acme NYC"
    assert r.json()["hours"]["mon"] == ["09:00-12:00"]
    assert r.json()["hours"]["tue"] == []
    r = manager.patch("/calendars/acme-ny", {"title": None})
    assert r.status_code == 422
    assert problem_fields(r) == ["title"]
    r = manager.patch("/calendars/acme-ny", {"hours": {"mon": []}})
    assert problem_fields(r) == ["hours"]
    assert manager.patch("/calendars/24x7", {"title": "x"}).status_code == 403
    assert api_as(cast.lena).patch("/calendars/acme-ny", {"title": "x"}).status_code == 403
    r = manager.patch("/calendars/acme-ny", {"name": "renamed"})
    assert problem_fields(r) == ["name"]
    assert BusinessCalendar.objects.get(name="acme-ny").title == "Acme NYC"


@pytest.mark.usefixtures("calendars")
def test_patch_seeds_holidays_for_more_years(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.admin).patch("/calendars/globex-berlin", {"holiday_years": [2027]})
    assert r.status_code == 200, r.content
    dates = [h["date"] for h in r.json()["holidays"]]
    assert "2026-10-03" in dates
    assert "2027-10-03" in dates
    assert dates == sorted(dates)


def test_the_due_answer_matches_the_arithmetic_for_a_created_calendar(
    cast: Cast, api_as: ApiAs
) -> None:
    api = api_as(cast.admin)
    assert api.post("/calendars", new_calendar()).status_code == 201
    start = dt.datetime(2026, 10, 23, 14, 30, tzinfo=dt.UTC)  # Friday 16:30 CEST
    r = api.get(
        "/calendars/acme-berlin/due",
        params={"from": start.isoformat(), "minutes": 240},
    )
    assert r.json()["due"] == "2026-10-26T10:30:00Z"  # Monday 11:30 CET, after the DST change
