"""Reports in the console, for managers and admins: the dashboard (every report for a
period, organization and filters, each number leading to its tickets), the list of tickets
behind a figure, and the monthly client report as a page (with its charts), as its own
printable page, and as a PDF to download and send."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csp import get_nonce
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET

from tierdesk.core import clock
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.reports import charts, monthly, queries
from tierdesk.reports import dashboard as dashboard_data
from tierdesk.tiers import queries as tier_queries
from tierdesk.tiers.models import Tier
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
@csp_override(charts.page_csp())  # the report's <style> elements carry the nonce
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


# --- the dashboard --------------------------------------------------------------------------

PRESETS = (7, 30, 90)  # "last N days" links


class DashboardForm(forms.Form):
    """The dashboard's filters, from the query string ("from" and "to" as the API's). What
    makes a period valid is reports.queries.period's rule: its refusals come back as this
    form's field errors (see ``dashboard``)."""

    organization = forms.ChoiceField(label="Organization", required=False)
    tier = forms.ChoiceField(label="Tier", required=False)
    category = forms.ChoiceField(label="Category", required=False)
    agent = forms.ChoiceField(label="Agent", required=False)
    shift = forms.FloatField(
        label="Cost: move % of L2's tickets to L1", required=False, min_value=0,
        max_value=100, widget=forms.NumberInput(attrs={"step": "any", "placeholder": "10"}),
    )  # fmt: skip

    def __init__(self, data: Any, user: User, organizations: list[Organization]) -> None:
        super().__init__(data)
        day = {"type": "date", "min": "1970-01-01", "max": "2100-12-31"}
        self.fields = {
            "from": forms.DateField(label="From", required=False,
                                    widget=forms.DateInput(attrs=day)),
            "to": forms.DateField(label="To", required=False, widget=forms.DateInput(attrs=day)),
            **self.fields,
        }  # fmt: skip
        choices: dict[str, list[tuple[str, str]]] = {
            "organization": [("", "All I serve")]
            + [(o.code, f"{o.code} — {o.name}") for o in organizations],
            "tier": [("", "All tiers")]
            + [(t.code, f"{t.code} — {t.name}") for t in Tier.objects.order_by("level")],
            "category": [
                ("", "All categories"), ("none", "(none)"),
                *sorted({(c.slug, c.name) for c in tier_queries.category_list(actor=user)},
                        key=lambda c: c[1].lower()),
            ],
            "agent": [("", "Everyone")]
            + [(u.email, u.full_name or u.email) for u in User.objects.filter(
                is_active=True, agent_profile__isnull=False,
                served_organizations__in=organizations).distinct().order_by("email")],
        }  # fmt: skip
        for name, options in choices.items():
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = options

    def narrowing(self) -> dict[str, str]:
        """The chosen filters as query parameters (those set only)."""
        data = self.cleaned_data
        found = {name: str(data[name]) for name in ("organization", "tier", "category", "agent")
                 if data.get(name)}  # fmt: skip
        for name in ("from", "to"):
            if data.get(name):
                found[name] = data[name].isoformat()
        return found


def _drill_url(base: dict[str, str], metric: str, **narrower: Any) -> str:
    """The address of the tickets behind a figure (or, for "ticket", a ticket's page)."""
    if metric == "ticket":
        return reverse("web:ticket", args=[narrower["ref"]])
    params = {**base, "metric": metric}
    renames = {"first": "from", "last": "to"}
    for name, value in narrower.items():
        if value is not None:
            params[renames.get(name, name)] = (
                value.isoformat() if isinstance(value, dt.date) else str(value)
            )
    return f"{reverse('web:report-tickets')}?{urlencode(params)}"


@manager_required
@require_GET
@csp_override(charts.page_csp())  # the charts' <style> elements carry the nonce
def dashboard(request: HttpRequest) -> HttpResponse:
    """Every report for a period, organization and filters: tiles, charts and tables, each
    number leading to its tickets."""
    user: User = request.user  # type: ignore[assignment]
    organizations = queries.report_organizations(user, None)
    form = DashboardForm(request.GET, user, organizations)
    page: dict[str, Any] = {"form": form, "presets": PRESETS}
    if not form.is_valid():
        return render(request, "web/console/report_dashboard.html", page, status=422)
    base = form.narrowing()
    data = form.cleaned_data
    try:
        board = dashboard_data.build(
            actor=user,
            organization=data.get("organization") or None,
            first_day=data.get("from"),
            last_day=data.get("to"),
            filters=queries.Filters(tier=data.get("tier") or None,
                                    category=data.get("category") or None,
                                    agent=data.get("agent") or None),
            link=lambda metric, **narrower: _drill_url(base, metric, **narrower),
            shift_percent=10.0 if data.get("shift") is None else data["shift"],
        )  # fmt: skip
    except ValidationFailed as exc:
        for error in exc.errors:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        return render(request, "web/console/report_dashboard.html", page, status=422)
    nonce = str(get_nonce(request))
    panels = [
        (panel, [mark_safe(c.svg(nonce=nonce)) for c in panel.charts if c.has_data])  # noqa: S308 - pygal's SVG: its texts are escaped
        for panel in board.panels
    ]
    today = clock.now().date()
    page |= {
        "board": board,
        "panels": panels,
        "preset_links": [
            (days, urlencode({**base, "from": (today - dt.timedelta(days - 1)).isoformat(),
                              "to": today.isoformat()}))
            for days in PRESETS
        ],
    }  # fmt: skip
    return render(request, "web/console/report_dashboard.html", page)


# --- the tickets behind a figure ------------------------------------------------------------

DRILL_PAGE = 50
METRIC_NAMES = {
    "created": "Created", "resolved": "Resolved", "closed": "Closed",
    "fcr": "Resolved at first contact", "l1_resolved": "Resolved in the first tier",
    "reopened": "Resolved after a reopening", "resolved_by_automation": "Resolved by automation",
    "escalated_l1_l2": "Escalated out of L1", "escalated_l2_l3": "Escalated out of L2",
    "sla_response_met": "Response target met", "sla_response_breached": "Response target breached",
    "sla_resolution_met": "Resolution target met",
    "sla_resolution_breached": "Resolution target breached", "rated": "Rated",
    "backlog_open": "Open at the end of the period", "open_now": "Open now",
}  # fmt: skip


@manager_required
@require_GET
def report_tickets(request: HttpRequest) -> HttpResponse:
    """``?metric=…`` and the dashboard's filters (``by``/``value`` for one group, ``after``
    for the next page): the tickets a figure counts, linked to their pages."""
    user: User = request.user  # type: ignore[assignment]
    q = request.GET
    metric = q.get("metric", "")
    base = {k: q[k] for k in ("from", "to", "organization", "tier", "category", "agent")
            if q.get(k)}  # fmt: skip
    page: dict[str, Any] = {
        "title": METRIC_NAMES.get(metric, "Tickets"),
        "back": f"{reverse('web:reports')}?{urlencode(base)}",
        "narrowed": [(k, v) for k, v in {**base, "by": q.get("by", ""),
                                         "value": q.get("value", "")}.items() if v],
    }  # fmt: skip
    try:
        after = int(q["after"]) if q.get("after") else None
        if after is not None and not 0 <= after < 2**63:
            raise ValueError
        first = dt.date.fromisoformat(q["from"]) if q.get("from") else None
        last = dt.date.fromisoformat(q["to"]) if q.get("to") else None
    except ValueError:
        page["error"] = "The address is not one of this page's: go back to the dashboard."
        return render(request, "web/console/report_tickets.html", page, status=422)
    try:
        found = queries.behind(
            actor=user, organization=q.get("organization") or None, first_day=first,
            last_day=last, metric=metric, by=q.get("by") or None, value=q.get("value"),
            filters=queries.Filters(tier=q.get("tier") or None,
                                    category=q.get("category") or None,
                                    agent=q.get("agent") or None),
        )  # fmt: skip
        count = found.count()
        rows = list((found.filter(ticket_id__gt=after) if after else found)[: DRILL_PAGE + 1])
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    except ValidationFailed as exc:
        page["error"] = "; ".join(f"{e.field}: {e.message}" if e.field else e.message
                                  for e in exc.errors)  # fmt: skip
        return render(request, "web/console/report_tickets.html", page, status=422)
    more = len(rows) > DRILL_PAGE
    rows = rows[:DRILL_PAGE]
    params = {k: v for k, v in q.items() if k != "after"}
    page |= {
        "count": count,
        "facts": rows,
        "next": f"?{urlencode({**params, 'after': rows[-1].ticket_id})}" if more else None,
        "first_page": f"?{urlencode(params)}" if after else None,
    }
    return render(request, "web/console/report_tickets.html", page)
