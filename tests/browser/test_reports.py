"""The monthly client report in a real browser, against `tierdesk serve` with the demo data:
the manager opens last month's report, sees its charts drawn (their styles allowed by the
page's nonce: a Content-Security-Policy violation is a console error), chooses another
month, and downloads the PDF, whose first page becomes the documentation's picture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, sign_in
from tests.processes import tierdesk


@pytest.fixture(scope="module")
def desk(server: Server) -> Server:
    done = tierdesk(server.env, "demo", "--tickets", "120", "--days", "75", "--workers", "1")
    assert done.returncode == 0, done.stderr
    return server


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    """No request left the server, and no console error (a CSP violation is one), but
    Chromium's note of the ``answered`` statuses the test provoked."""
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def test_a_manager_reads_the_monthly_report_and_downloads_the_pdf(
    page: Any, desk: Server, axe_source: str, tmp_path: Path
) -> None:
    sign_in(page, "manager@msp.example")
    page.get_by_role("link", name="Client reports").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Monthly client report")).to_be_visible()
    report = page.locator("article.monthly-report")
    expect(report).to_contain_text("Service report")
    # Charts are drawn, and styled: pygal's stylesheet ran (it sets the background of the
    # plot), which it would not under the policy without the nonce.
    charts = report.locator(".chart svg")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 3
    fill = charts.first.locator(".plot .background").evaluate("e => getComputedStyle(e).fill")
    assert fill == "rgb(255, 255, 255)", fill
    assert axe_violations(page, axe_source) == [], "report page"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report-monthly-console.png"))

    # A mistyped month (sent by hand: the browser's month field would not take it) is
    # refused beside the field; then another organization and month, chosen in the form.
    page.goto("/console/reports/monthly?org=ACME&month=2026-13")
    expect(page.locator("#id_month_error")).to_contain_text("the month is 01 to 12")
    page.get_by_label("Organization").select_option("GLOBEX")
    page.get_by_label("Month (YYYY-MM)").fill("2026-10")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_load_state("networkidle")
    heading = page.locator("article.monthly-report h1")
    expect(heading).to_contain_text("Globex")
    expect(heading).to_contain_text("October 2026")
    expect(page.locator("article.monthly-report .chart svg").first).to_be_visible()

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download PDF").click()
    download = downloading.value
    assert download.suggested_filename == "GLOBEX-2026-10-service-report.pdf"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    pdf = pypdfium2.PdfDocument(str(saved))
    try:
        text = pdf[0].get_textpage().get_text_range()
        assert "October 2026" in text
        assert "GLOBEX" in text
        pdf[0].render(scale=1.5).to_pil().save(SCREENSHOTS / "report-monthly-pdf.png")
    finally:
        pdf.close()
    stayed_home(page, desk, answered=(422,))


def test_a_manager_reads_the_dashboard_and_drills_down_to_a_ticket(
    page: Any, desk: Server, axe_source: str
) -> None:
    sign_in(page, "manager@msp.example")
    page.get_by_role("link", name="Reports", exact=True).click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name="Reports", exact=True)).to_be_visible()
    page.get_by_role("link", name="90 days").click()
    page.wait_for_load_state("networkidle")
    board = page.locator(".dashboard")
    expect(board.locator(".tile").first).to_be_visible()
    charts = board.locator(".chart svg")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 5
    fill = charts.first.locator(".plot .background").evaluate("e => getComputedStyle(e).fill")
    assert fill == "rgb(255, 255, 255)", fill  # the chart's own styles applied (nonce)
    assert axe_violations(page, axe_source) == [], "dashboard"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "report-dashboard.png"))

    # From the number of tickets created to the tickets, to one of them.
    created = board.locator(".tile", has_text="Created").locator("a.value")
    count = int(created.inner_text().replace(",", ""))
    assert count > 0
    created.click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_role("heading", name=f"Created ({count})")).to_be_visible()
    rows = page.locator("table.tickets-behind tbody tr")
    assert rows.count() == min(count, 50)
    page.screenshot(path=str(SCREENSHOTS / "report-drill-down.png"))
    rows.first.locator("th a").click()
    page.wait_for_load_state("networkidle")
    assert "/console/tickets/" in page.url

    # A filter, chosen in the form: only L2's figures.
    page.go_back()
    page.get_by_role("link", name="Back to the reports").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Tier", exact=True).select_option("L2")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    assert "tier=L2" in page.url
    expect(page.locator(".dashboard .tile").first).to_be_visible()
    # A day that does not exist, sent by hand, is refused beside its field.
    page.goto("/console/reports/?from=2026-02-30")
    expect(page.locator("#id_from_error")).to_be_visible()
    stayed_home(page, desk, answered=(422,))
