"""The monthly client report in the console: who may open it, the form's refusals, the PDF
and the printable page, and the Content-Security-Policy its charts need."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client

from tests.conftest import Cast, make_ticket
from tests.reports.conftest import pango  # noqa: F401 - the fixture
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.reports import facts

# The PDF needs WeasyPrint's Pango (installed when missing, see tests/reports/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pango")]

PAGE = "/console/reports/monthly"


@pytest.fixture
def month(cast: Cast) -> str:
    """A ticket at ACME in March 2026."""
    with clock.frozen_at(dt.datetime(2026, 3, 10, 15, tzinfo=dt.UTC)):
        make_ticket(cast.lena, cast.acme, cast.alice, subject="Printer on fire")
    facts.rebuild()
    return "2026-03"


def nonce_of(r: Any) -> str:
    style_src = re.search(r"style-src ([^;]*)", r["Content-Security-Policy"])
    assert style_src, r["Content-Security-Policy"]
    assert "unsafe-inline" not in style_src[1]
    found = re.search(r"'nonce-([^']+)'", style_src[1])
    assert found, style_src[1]
    return found[1]


def test_a_manager_sees_the_report_with_its_charts(cast: Cast, month: str) -> None:
    r = signed_in(cast.manager).get(PAGE, {"org": "acme", "month": month})
    assert r.status_code == 200
    page = r.content.decode()
    assert "Acme Inc." in page
    assert "March 2026" in page
    assert "<svg" in page
    # Each chart's stylesheet carries this response's nonce, which the policy allows; no
    # style attribute, no script of pygal's.
    nonce = nonce_of(r)
    styles = re.findall(r"<style\b[^>]*>", page)
    assert styles
    assert all(f'nonce="{nonce}"' in s for s in styles), styles
    assert not re.search(r"<[^>]+\sstyle=", page)
    assert "pygal" not in "".join(re.findall(r"<script\b[^>]*>", page))
    assert 'href="?org=ACME&amp;month=2026-03&amp;format=pdf"' in page


def test_without_a_choice_it_shows_last_month_of_the_first_organization(
    cast: Cast, month: str
) -> None:
    with clock.frozen_at(dt.datetime(2026, 4, 2, 12, tzinfo=dt.UTC)):
        r = signed_in(cast.manager).get(PAGE)
    assert r.status_code == 200
    assert "March 2026" in r.content.decode()


def test_the_pdf_downloads_and_the_printable_page_stands_alone(cast: Cast, month: str) -> None:
    client = signed_in(cast.manager)
    r = client.get(PAGE, {"org": "ACME", "month": month, "format": "pdf"})
    assert r.status_code == 200
    assert r["Content-Type"] == "application/pdf"
    assert r["Content-Disposition"] == 'attachment; filename="ACME-2026-03-service-report.pdf"'
    assert r.content.startswith(b"%PDF-")
    page = client.get(PAGE, {"org": "ACME", "month": month, "format": "html"})
    assert page.status_code == 200
    text = page.content.decode()
    assert text.startswith("<!doctype html>")
    assert f'<style nonce="{nonce_of(page)}">' in text
    assert 'class="top"' not in text  # not the console's frame


def test_who_may_open_it(cast: Cast, month: str) -> None:
    query = {"org": "ACME", "month": month}
    assert signed_in(cast.lena).get(PAGE, query).status_code == 404  # an agent
    assert signed_in(cast.alice).get(PAGE, query).status_code == 404  # a requester
    anonymous = Client().get(PAGE, query)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login")
    # Another tenant's organization reads as a missing one, for the manager; an admin
    # reads every organization's.
    assert signed_in(cast.manager).get(PAGE, {**query, "org": "GLOBEX"}).status_code == 404
    assert signed_in(cast.manager).get(PAGE, {**query, "org": "NOPE"}).status_code == 404
    assert signed_in(cast.admin).get(PAGE, {**query, "org": "GLOBEX"}).status_code == 200


@pytest.mark.parametrize(
    ("month", "message"),
    [("2026-13", "the month is 01 to 12"), ("March", "a month as YYYY-MM"),
     ("2200-01", "a year from 1970 to 2100")],
)  # fmt: skip
def test_a_bad_month_is_refused_beside_the_field(cast: Cast, month: str, message: str) -> None:
    r = signed_in(cast.manager).get(PAGE, {"org": "ACME", "month": month})
    assert r.status_code == 422
    page = r.content.decode()
    assert 'id="id_month_error"' in page
    assert message in page
    assert "<svg" not in page


def test_an_unknown_format_is_refused(cast: Cast, month: str) -> None:
    r = signed_in(cast.manager).get(PAGE, {"org": "ACME", "month": month, "format": "xml"})
    assert r.status_code == 400
