"""The monthly client report over the hand-built week of test_summary.py, read as the month
of March 2026 at ACME with February beside it — every figure worked out below — and its
HTML, its PDF (read back with pdfium) and its command, on SQLite and on PostgreSQL.

The week's tickets by month (New York time; see test_summary.py for each one's story):

February: T10 and T9 created on Friday 02-27; neither answered nor resolved in February;
          both first-response clocks breached that day.
March:    T1-T7 created in the week of 03-02; resolved in March: T10 (03-02), T1, T2, T3, T4,
          T5 (its last resolution 03-05) and T7 (Monday 03-09); still open at the end of
          March: T9 and T6; two ratings (5 and 3) and one deflection.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from click.testing import CliRunner

from tests.reports.test_summary import History, at
from tierdesk.cli import main
from tierdesk.core.errors import NotFound, PermissionDenied, ValidationFailed
from tierdesk.reports import monthly
from tierdesk.reports.charts import Chart, Series
from tierdesk.tickets import services as tickets

pytestmark = pytest.mark.django_db

MARCH = "2026-03"


def march(h: History, **kw: Any) -> monthly.MonthlyReport:
    return monthly.build(kw.pop("actor", h.cast.manager), kw.pop("org", "ACME"), MARCH)


def panel(report: monthly.MonthlyReport, anchor: str, title: str) -> monthly.Panel:
    section = next(s for s in report.sections if s.anchor == anchor)
    return next(p for p in section.panels if p.title == title)


def pdf_text(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def test_the_months_headline_figures_with_the_month_before(week: History) -> None:
    report = march(week)
    assert (report.organization_code, report.organization_name) == ("ACME", "Acme Inc.")
    assert (report.month.label, report.time_zone) == ("March 2026", "America/New_York")
    assert report.previous_month == monthly.Month(2026, 2)
    got = {f.key: (f.value, f.previous) for f in report.figures}
    approx = pytest.approx
    assert got == {
        "created": (7, 2),  # T1-T7; T10 and T9
        "resolved": (7, 0),  # T10 T1 T2 T3 T4 T5 T7; none in February
        "fcr_rate": (approx(3 / 7), None),  # T10, T1, T7 (one reply, no second round)
        "l1_resolution_rate": (approx(6 / 7), None),  # all but T3
        "escalation_rate_l1_l2": (approx(3 / 7), 0.0),  # T3 T4 T6; none of T9 T10
        "escalation_rate_l2_l3": (approx(1 / 3), None),  # T6 of T3 T4 T6; none was at L2
        "reopen_rate": (approx(1 / 7), None),  # T5
        "sla_response_compliance": (approx(5 / 7), 0.0),  # T3 late, T6 never; T9 T10 late
        "sla_resolution_compliance": (approx(6 / 7), 0.0),  # T6; T9 T10
        # Answered: T2 T4 20 min, T1 T7 30, T3 90. Resolved (business hours): T1 1, T4 1.5,
        # T2 2, T7 2 (Fri 16-17, Mon 9-10), T3 6, T5 9, T10 10.
        "response_median": (1800, None),
        "resolution_median": (7200, None),
        "backlog_open": (2, 2),  # T9 T6; T10 T9
        "csat_average": (4.0, None),
        "csat_responses": (2, 0),
        "csat_response_rate": (approx(2 / 7), None),  # T1 T2 of the seven resolved
        "deflections": (1, 0),
    }
    created, fcr = report.figure("created"), report.figure("fcr_rate")
    assert (created.value_text, created.previous_text, created.change_text) == ("7", "2", "+5")
    assert (fcr.value_text, fcr.previous_text, fcr.change_text) == ("42.9 %", "—", "—")
    response = report.figure("sla_response_compliance")
    assert (response.change_text, response.verdict) == ("+71.4 pp", "better")
    backlog = report.figure("backlog_open")
    assert (backlog.change_text, backlog.verdict) == ("±0", "")
    assert report.figure("resolution_median").value_text == "2 h 00 min"
    assert report.figure("l1_resolution_rate").note == "target 60-70 %: above"  # 85.7 %
    # The same figures as the summary's, for the same days.
    assert report.summary["fcr_rate"] == pytest.approx(3 / 7)
    assert report.previous_summary is not None
    assert report.previous_summary["to"] == dt.date(2026, 2, 28)


def test_the_sla_section_and_the_breaches_of_the_month(week: History) -> None:
    report = march(week)
    compliance = panel(report, "sla", "Compliance, this month and the month before")
    assert compliance.table.head == ["Target", "February 2026", "March 2026"]
    assert compliance.table.rows == [["First response", "0.0 %", "71.4 %"],
                                     ["Resolution", "0.0 %", "85.7 %"]]  # fmt: skip
    assert compliance.chart is not None
    assert [s.values for s in compliance.chart.series] == [[0.0, 0.0], [5 / 7, 6 / 7]]
    policies = panel(report, "sla", "By SLA policy").table
    assert policies.rows == [["ACME standard", "5", "2", "71.4 %", "6", "1", "85.7 %"]]
    key = {name: t.key for name, t in week.t.items()}
    # Breached in March, at their due instants (T9's and T10's first responses breached in
    # February); late by until the clock stopped, or so far while it runs.
    assert [(b.ticket, b.target, b.due, b.running) for b in report.breaches] == [
        (key["T10"], "Resolution", "Mar 02, 10:00", False),
        (key["T9"], "Resolution", "Mar 02, 11:00", True),
        (key["T3"], "First response", "Mar 03, 10:00", False),
        (key["T6"], "First response", "Mar 05, 10:00", True),
        (key["T6"], "Resolution", "Mar 05, 17:00", True),
    ]
    assert report.breaches_total == 5
    late = {(b.ticket, b.target): b.late_by for b in report.breaches}
    assert late[(key["T10"], "Resolution")] == "2 h 00 min"  # resolved at 12:00
    assert late[(key["T3"], "First response")] == "30 min"  # Omar answered at 10:30
    assert report.breaches[0].subject == "T10 VPN"
    assert report.breaches[0].priority == "P3"


def test_volume_times_backlog_and_satisfaction(week: History) -> None:
    report = march(week)
    weeks = panel(report, "volume", "Created and resolved per week").table
    # March 1 is a Sunday: the week of Feb 23, cut at the month's start.
    assert weeks.rows == [
        ["Mar 1", "0", "0", "0", "2"],  # T10 and T9 open
        ["Mar 2-8", "7", "6", "0", "3"],  # T9, T6, T7 open on Sunday
        ["Mar 9-15", "0", "1", "0", "2"],  # T7 resolved
        ["Mar 16-22", "0", "0", "0", "2"],
        ["Mar 23-29", "0", "0", "0", "2"],
        ["Mar 30-31", "0", "0", "0", "2"],
    ]
    assert weeks.foot == [["Month", "7", "7", "0", "2"]]
    by_priority = panel(report, "volume", "By priority").table
    assert by_priority.rows[2] == ["P3 - medium", "7", "7"]
    assert by_priority.rows[0] == ["P1 - critical", "0", "0"]
    times = panel(report, "times", "By priority").table
    p3 = next(r for r in times.rows if r[0] == "P3 - medium")
    # Answered 5, median 30 min, p90 (the 5th of 5) 90 min; resolved 7, median 2 h, p90
    # (the 7th of 7) 10 h; in calendar time T7 took 65 h: median is still T2's or T7's.
    assert p3[:7] == ["P3 - medium", "5", "30 min", "1 h 30 min", "7", "2 h 00 min",
                      "10 h 00 min"]  # fmt: skip
    assert times.foot[0][:2] == ["All", "5"]
    escalations = panel(report, "times", "Escalations").table
    assert escalations.rows == [
        ["L2 → L1", "down", "1", "0"],
        ["L1 → L2", "up", "3", "0"],
        ["L2 → L3", "up", "1", "0"],
    ]
    backlog = panel(report, "backlog", "By age and priority").table
    # T9 (created 02-27) and T6 (03-05), both P3, both more than a week old on 03-31.
    assert backlog.rows[-1] == ["> 7 d", "0", "0", "2", "0", "2"]
    assert backlog.foot == [["All", "0", "0", "2", "0", "2"]]
    csat = panel(report, "csat", "Ratings given in the month")
    assert [r[:2] for r in csat.table.rows] == [["1", "0"], ["2", "0"], ["3", "1"],
                                                ["4", "0"], ["5", "1"]]  # fmt: skip
    assert "Average 4.00 of 5" in csat.note


def test_only_managers_serving_the_organization_and_admins_read_it(week: History) -> None:
    cast = week.cast
    with pytest.raises(NotFound):  # another tenant's: as if it did not exist
        march(week, org="GLOBEX")
    with pytest.raises(NotFound):
        march(week, org="NOPE")
    with pytest.raises(PermissionDenied):  # an agent serving ACME
        march(week, actor=cast.lena)
    with pytest.raises(PermissionDenied):
        march(week, actor=cast.alice)
    globex = march(week, actor=cast.admin, org="GLOBEX")
    assert (globex.figure("created").value, globex.figure("resolved").value) == (1, 1)  # T8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13", "the month is 01 to 12"),
        ("2026-00", "the month is 01 to 12"),
        ("abc", "a month as YYYY-MM"),
        ("2026-3", "a month as YYYY-MM"),
        ("2026-03-01", "a month as YYYY-MM"),
        ("1969-12", "a year from 1970 to 2100"),
        ("2101-01", "a year from 1970 to 2100"),
    ],
)
def test_a_month_is_yyyy_mm_from_1970_to_2100(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        monthly.Month.parse(text)
    assert refused.value.errors[0].field == "month"
    assert message in refused.value.detail


def test_a_change_is_better_or_worse_only_when_it_shows() -> None:
    def verdict(unit: monthly.Unit, value: float, previous: float) -> tuple[str, str]:
        f = monthly.Figure("x", "x", unit, value, previous, "lower")
        return f.change_text, f.verdict

    assert verdict("duration", 7209, 7200) == ("+9 s", "")  # seconds: noise
    assert verdict("duration", 7260, 7200) == ("+1 min", "worse")
    assert verdict("rate", 0.5004, 0.5) == ("±0 pp", "")
    assert verdict("rate", 0.49, 0.5) == ("-1.0 pp", "better")
    assert verdict("count", 3, 3) == ("±0", "")


def test_months_and_their_edges() -> None:
    assert monthly.Month.parse("2024-02").last_day == dt.date(2024, 2, 29)
    assert monthly.Month.parse("2026-12").last_day == dt.date(2026, 12, 31)
    assert monthly.Month.parse("2026-01").previous == monthly.Month(2025, 12)
    assert monthly.Month.parse("1970-01").previous is None  # no report before 1970
    assert str(monthly.Month.parse(" 2100-12 ")) == "2100-12"


def test_the_first_month_has_nothing_beside_it(week: History) -> None:
    report = monthly.build(week.cast.manager, "ACME", "1970-01")
    assert report.previous_month is None
    assert report.figure("created").change_text == "—"
    html = monthly.render_html(report)
    assert "January 1970" in html
    assert "Change" not in html


def test_the_page_escapes_what_people_typed_and_loads_nothing(week: History) -> None:
    hostile = "<script>alert(1)</script>"
    week.do(
        at(3, 10, 9),
        lambda: tickets.ticket_update(
            actor=week.cast.manager, ticket=week.fresh("T3"), subject=hostile
        ),
    )
    report = march(week)
    assert hostile in [b.subject for b in report.breaches]
    html = monthly.render_html(report, nonce="n0nce")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()  # not the subject, nor pygal's scripts
    assert "style=" not in html  # no style attribute: the page's policy refuses them
    assert html.count("<svg") == 7  # every chart: each has something to show
    # Every <style> (the page's and each chart's) carries the nonce; nothing is fetched.
    assert html.count("<style") == html.count('<style nonce="n0nce"') == 8
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_the_pdf_is_a_real_pdf_with_the_figures(week: History) -> None:
    pdf = monthly.render_pdf(march(week))
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "Acme Inc." in text
    assert "March 2026" in text
    assert "71.4 %" in text  # the SLA first-response compliance
    assert "42.9 %" in text  # first contact resolution
    assert "America/New_York" in text
    document = pypdfium2.PdfDocument(pdf)
    assert len(document) >= 4  # the summary, then a page per section or two
    document.close()


def test_charts_are_svg_without_scripts() -> None:
    for svg in (
        Chart("line", "Open", ["1", "2"], [Series("Open", [3, 2])]).svg(),
        Chart("bar", "Met", ["x"], [Series("a", [0.5])], percent=True).svg(nonce="abc"),
        Chart("stacked_bar", "Both", ["W1"], [Series("P1", [1]), Series("P2", [2])]).svg(),
        Chart("horizontal_bar", "Across", ["x"], [Series("a", [4])]).svg(),
    ):
        assert svg.startswith("<svg")
        assert "<script" not in svg
        assert "style=" not in svg
        assert 'role="img"' in svg
    assert '<style nonce="abc">' in Chart("bar", "t", ["x"], [Series("a", [1])]).svg(nonce="abc")
    titled = Chart("bar", "<b>&</b>", ["<i>"], [Series("<u>", [1])]).svg()
    assert "<b>" not in titled
    assert "<i>" not in titled
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in titled


# --- the command ----------------------------------------------------------------------------


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["report", "monthly", *args], catch_exceptions=False)


def as_manager(*args: str) -> Sequence[str]:
    return ["--as", "manager@msp.example", *args]


def test_the_command_writes_the_pdf_and_the_html(week: History, tmp_path: Path) -> None:
    pdf, html = tmp_path / "acme.pdf", tmp_path / "acme.html"
    done = cli(*as_manager("--org", "acme", "--month", MARCH, "--pdf", str(pdf),
                           "--html", str(html)))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "March 2026" in pdf_text(pdf.read_bytes())
    assert "Acme Inc." in html.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.html", "acme.pdf"]  # no temp
    # Without a file, the headline figures; "reports monthly" is the same command.
    shown = CliRunner().invoke(main, ["reports", "monthly", *as_manager("--org", "ACME",
                                      "--month", MARCH)], catch_exceptions=False)  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "First contact resolution" in shown.stdout
    assert "42.9 %" in shown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "ACME", "--month", "2026-13"], "month: the month is 01 to 12"),
        (["--org", "ACME", "--month", "abc"], "month: a month as YYYY-MM"),
        (["--org", "MOON", "--month", MARCH], "No organization 'MOON'"),
        (["--org", "GLOBEX", "--month", MARCH], "No organization 'GLOBEX'"),
    ],
)
def test_the_command_refuses_bad_input_and_writes_nothing(
    week: History, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out.pdf"
    done = cli(*as_manager(*args, "--pdf", str(out)))
    assert done.exit_code == 1
    assert message in done.stderr
    assert "Traceback" not in done.output
    assert list(tmp_path.iterdir()) == []


def test_the_command_as_the_issue_spells_it_reads_as_an_admin(
    week: History, tmp_path: Path
) -> None:
    """`tierdesk report monthly --org ACME --month 2026-10 --pdf out.pdf`: without --as,
    the operator reads as the MSP's admin (every organization)."""
    out = tmp_path / "out.pdf"
    done = cli("--org", "GLOBEX", "--month", MARCH, "--pdf", str(out))
    assert done.exit_code == 0, done.output
    assert "GLOBEX" in pdf_text(out.read_bytes())


def test_the_command_refuses_an_agent(week: History, tmp_path: Path) -> None:
    done = cli("--as", "lena@msp.example", "--org", "ACME", "--month", MARCH, "--pdf",
               str(tmp_path / "out.pdf"))  # fmt: skip
    assert done.exit_code == 1
    assert "Only managers and admins read reports." in done.stderr
    assert list(tmp_path.iterdir()) == []


class _NoPango(MetaPathFinder):
    """Imports WeasyPrint as a machine without the Pango library does: it fails loading it."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> None:
        if name == "weasyprint" or name.startswith("weasyprint."):
            raise OSError("cannot load library 'libpango-1.0-0': no such file")


def test_without_pango_the_command_names_the_package_to_install(
    week: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "weasyprint" or m.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
    out = tmp_path / "out.pdf"
    done = cli(*as_manager("--org", "ACME", "--month", MARCH, "--pdf", str(out)))
    assert done.exit_code == 1
    assert "apt-get install libpango-1.0-0" in done.stderr
    assert "Traceback" not in done.output
    assert not out.exists()
