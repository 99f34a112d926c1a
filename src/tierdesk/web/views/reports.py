"""Reports in the console: the monthly client report, for managers and admins, as a page
(with its charts), as its own printable page, and as a PDF to download and send."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csp import get_nonce
from django.shortcuts import render
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from tierdesk.core.errors import ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.reports import monthly, queries
from tierdesk.web.views.common import manager_required

FORMATS = ("", "html", "pdf")  # "": the console page


class MonthlyForm(forms.Form):
    org = forms.ChoiceField(label="Organization")
    month = forms.CharField(
        label="Month (YYYY-MM)",
        max_length=7,
        widget=forms.TextInput(attrs={"type": "month", "min": "1970-01", "max": "2100-12"}),
    )

    def __init__(self, data: Any, organizations: list[Organization]) -> None:
        super().__init__(data)
        field = self.fields["org"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(o.code, f"{o.code} — {o.name}") for o in organizations]

    def clean_month(self) -> monthly.Month:
        try:
            return monthly.Month.parse(self.cleaned_data["month"])
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.errors[0].message) from exc


@manager_required
@require_GET
@csp_override(monthly.page_csp())  # the report's <style> elements carry the nonce
def monthly_report(request: HttpRequest) -> HttpResponse:
    """``?org=CODE&month=YYYY-MM[&format=html|pdf]``; without them, the first organization
    the reader serves and last month. An organization the reader does not serve is not
    found, as a missing one."""
    user: User = request.user  # type: ignore[assignment]
    organizations = queries.report_organizations(user, None)
    fmt = request.GET.get("format", "")
    if fmt not in FORMATS:
        return HttpResponseBadRequest("format: html or pdf")
    data = request.GET.copy()
    code = data.get("org", "").strip().upper()
    chosen = next((o for o in organizations if o.code == code), None)
    if code and chosen is None:
        raise Http404("No such organization.")
    chosen = chosen or (organizations[0] if organizations else None)
    if chosen is not None:
        data["org"] = chosen.code
        if not data.get("month"):
            data["month"] = str(monthly.last_month(chosen.time_zone))
    form = MonthlyForm(data if chosen else None, organizations)
    page: dict[str, Any] = {"form": form, "organizations": organizations}
    if chosen is None or not form.is_valid():
        return render(
            request, "web/console/report_monthly.html", page, status=422 if chosen else 200
        )
    report = monthly.build(user, form.cleaned_data["org"], form.cleaned_data["month"])
    nonce = str(get_nonce(request))
    if fmt == "html":
        return HttpResponse(monthly.render_html(report, nonce=nonce))
    if fmt == "pdf":
        try:
            pdf = monthly.render_pdf(report)
        except monthly.PdfUnavailable as exc:
            page["pdf_error"] = exc.detail
        else:
            response = HttpResponse(pdf, content_type="application/pdf")
            response["Content-Disposition"] = f'attachment; filename="{report.filename}.pdf"'
            return response
    query = {"org": report.organization_code, "month": str(report.month)}
    page |= {
        **monthly.context(report, nonce=nonce),
        "pdf_query": urlencode({**query, "format": "pdf"}),
        "html_query": urlencode({**query, "format": "html"}),
    }
    return render(
        request,
        "web/console/report_monthly.html",
        page,
        status=503 if "pdf_error" in page else 200,
    )
