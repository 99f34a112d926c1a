"""Configuration pages for SLA policies and business calendars (with their holidays).

The forms check shape (numbers are numbers, time ranges read ``HH:MM-HH:MM``); the
services in :mod:`tierdesk.sla.services` check the rules and the actor's scope, and their
refusals are shown beside the field they name. A refused form is shown again with what
was typed (400 for a bad form, the service's status for a refusal)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import F
from django.forms import formset_factory
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from tierdesk.core import clock, policy
from tierdesk.core.errors import DomainError, FieldIssue, NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_get
from tierdesk.sla import queries, services
from tierdesk.sla.calendar import WEEKDAY_NAMES, WEEKDAYS, CalendarError, parse_span
from tierdesk.sla.models import BusinessCalendar, SlaPolicy
from tierdesk.web.forms import DomainErrors, choice_field, time_zone_choices
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.sections import render_config

PRIORITIES = services.PRIORITIES
TARGET_KINDS = (
    ("first_response_minutes", "First response"),
    ("next_update_minutes", "Next update"),
    ("resolution_minutes", "Resolution"),
)
MSP_WIDE = ""  # the organization choice that means "MSP-wide"
HOLIDAY_ROWS_ADDED = 3  # blank holiday rows offered, and added by "More rows"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _status(exc: DomainError) -> int:
    return exc.status if exc.status >= 400 else 422


def _organization_choices(user: User, shared: str) -> list[tuple[str, str]]:
    """MSP-wide first (offered only to those who may manage shared items), then the
    organizations the user serves."""
    orgs = [(o.code, f"{o.code} — {o.name}") for o in policy.visible_organizations(user)]
    head = [(MSP_WIDE, "MSP-wide (every organization)")] if policy.allowed(user, shared) else []
    return head + sorted(orgs)


def _organization(user: User, code: str) -> Organization | None:
    if not code:
        return None
    try:
        return organization_get(actor=user, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None


def _read_only(user: User, organization: Organization | None, shared: str) -> bool:
    """Whether the page shows the item without a way to change it: MSP-wide items for those
    who may not manage them (the service refuses them anyway)."""
    return organization is None and not policy.allowed(user, shared)


def minutes_text(minutes: int | None) -> str:
    """``90`` -> ``1 h 30 min``; ``2880`` -> ``2 d`` (24-hour days of business time)."""
    if minutes is None:
        return "—"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(p for p in parts if p)


# --- SLA policies ----------------------------------------------------------------------


class PolicyForm(DomainErrors, forms.Form):
    """A policy with its targets: one row per priority, a column per clock. A row left
    blank means the priority has no target of its own."""

    name = forms.CharField(label="Name", max_length=100)
    organization = forms.ChoiceField(label="Organization", required=False)
    calendar = forms.ChoiceField(label="Business calendar")
    warning_percent = forms.IntegerField(
        label="Warning at",
        initial=80,
        help_text="Percent of a target used when the warning goes out (1 to 99).",
    )
    is_active = forms.BooleanField(
        label="Active (the policy in force for its organization)", required=False, initial=True
    )

    def __init__(self, *args: Any, actor: User, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        if creating:
            shared = _organization_choices(actor, "sla.manage_shared")
            choice_field(self, "organization").choices = shared
        else:
            del self.fields["organization"]
        choice_field(self, "calendar").choices = [
            (c.name, f"{c.title} ({c.organization.code if c.organization else 'MSP-wide'})")
            for c in queries.calendar_list(actor=actor)
        ]
        for prio in PRIORITIES:
            for kind, label in TARGET_KINDS:
                self.fields[f"{prio.lower()}_{kind}"] = forms.IntegerField(
                    label=f"{prio} {label.lower()} (minutes)", required=False
                )

    def rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The targets table: (priority, its bound fields in column order)."""
        return [(p, [self[f"{p.lower()}_{k}"] for k, _ in TARGET_KINDS]) for p in PRIORITIES]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        assert cleaned is not None
        for prio in PRIORITIES:
            names = [f"{prio.lower()}_{k}" for k, _ in TARGET_KINDS]
            if any(n in self.errors for n in names):
                continue
            first, _, resolution = (cleaned.get(n) for n in names)
            given = any(cleaned.get(n) is not None for n in names)
            if given and first is None:
                self.add_error(names[0], f"{prio} needs a first response target too.")
            if given and resolution is None:
                self.add_error(names[2], f"{prio} needs a resolution target too.")
        return cleaned

    def targets(self) -> list[services.Target]:
        """The filled rows, in priority order; the services' ``targets.N`` refers to them."""
        out = []
        for prio in PRIORITIES:
            p = prio.lower()
            first = self.cleaned_data.get(f"{p}_first_response_minutes")
            resolution = self.cleaned_data.get(f"{p}_resolution_minutes")
            if first is None or resolution is None:  # empty (clean() refused half rows)
                continue
            out.append(
                services.Target(
                    priority=prio,
                    first_response_minutes=first,
                    resolution_minutes=resolution,
                    next_update_minutes=self.cleaned_data.get(f"{p}_next_update_minutes"),
                )
            )
        return out

    def add_domain_error(self, exc: DomainError) -> None:
        """``targets.N.<kind>`` names the N-th filled row: put it beside that cell."""
        sent = [t.priority for t in self.targets()] if hasattr(self, "cleaned_data") else []
        issues = []
        for issue in exc.errors:
            match = re.fullmatch(r"targets\.(\d+)\.(\w+)", issue.field)
            if match and int(match[1]) < len(sent):
                kind = match[2] if match[2] != "priority" else "first_response_minutes"
                issues.append(FieldIssue(f"{sent[int(match[1])].lower()}_{kind}", issue.message))
            else:
                issues.append(issue)
        super().add_domain_error(type(exc)(exc.detail, errors=issues))


def _policy_initial(row: SlaPolicy) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "name": row.name,
        "calendar": row.calendar.name,
        "warning_percent": row.warning_percent,
        "is_active": row.is_active,
    }
    for t in row.targets.all():
        for kind, _ in TARGET_KINDS:
            initial[f"{t.priority.lower()}_{kind}"] = getattr(t, kind)
    return initial


def _calendar_for(user: User, name: str) -> BusinessCalendar:
    try:
        return queries.calendar_get(actor=user, name=name)
    except NotFound:
        raise ValidationFailed.for_field("calendar", "no such calendar") from None


@manager_required
def sla(request: HttpRequest) -> HttpResponse:
    """Every policy the user may see, MSP-wide first, and the organizations that have no
    active policy of their own (the MSP-wide default applies to them)."""
    user = _user(request)
    rows = list(
        queries.sla_policy_list(actor=user).order_by(
            F("organization__code").asc(nulls_first=True), "name"
        )
    )
    covered = {p.organization_id for p in rows if p.is_active}
    uncovered = [
        o for o in policy.visible_organizations(user).order_by("code") if o.pk not in covered
    ]
    return render_config(
        request,
        "web/config/sla/list.html",
        {
            "policies": [
                (
                    p,
                    [
                        (
                            t.priority,
                            minutes_text(t.first_response_minutes),
                            minutes_text(t.resolution_minutes),
                        )
                        for t in p.targets.all()
                    ],
                )
                for p in rows
            ],
            "uncovered": uncovered,
            "default_active": None in covered,
        },
        section="sla",
    )


def _policy_page(
    request: HttpRequest, form: PolicyForm, row: SlaPolicy | None, status: int = 200
) -> HttpResponse:
    user = _user(request)
    return render_config(
        request,
        "web/config/sla/policy.html",
        {
            "form": form,
            "policy": row,
            "read_only": row is not None
            and _read_only(user, row.organization, "sla.manage_shared"),
            "kinds": [label for _, label in TARGET_KINDS],
        },
        section="sla",
        status=status,
    )


@manager_required
def sla_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method != "POST":
        return _policy_page(request, PolicyForm(actor=user, creating=True), None)
    form = PolicyForm(request.POST, actor=user, creating=True)
    if not form.is_valid():
        return _policy_page(request, form, None, 400)
    data = form.cleaned_data
    try:
        row = services.sla_policy_create(
            actor=user,
            name=data["name"],
            organization=_organization(user, data["organization"]),
            calendar=_calendar_for(user, data["calendar"]),
            warning_percent=data["warning_percent"],
            is_active=data["is_active"],
            targets=form.targets(),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _policy_page(request, form, None, _status(exc))
    messages.success(request, f"SLA policy “{row.name}” added.")
    return redirect("web:config-sla")


@manager_required
def sla_edit(request: HttpRequest, policy_id: int) -> HttpResponse:
    user = _user(request)
    try:
        row = queries.sla_policy_get(actor=user, policy_id=policy_id)
    except NotFound:
        raise Http404("No such SLA policy.") from None
    if request.method != "POST":
        form = PolicyForm(initial=_policy_initial(row), actor=user, creating=False)
        return _policy_page(request, form, row)
    form = PolicyForm(request.POST, actor=user, creating=False)
    if not form.is_valid():
        return _policy_page(request, form, row, 400)
    data = form.cleaned_data
    try:
        services.sla_policy_update(
            actor=user,
            sla_policy=row,
            name=data["name"],
            calendar=_calendar_for(user, data["calendar"]),
            warning_percent=data["warning_percent"],
            is_active=data["is_active"],
            targets=form.targets(),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _policy_page(request, form, row, _status(exc))
    messages.success(request, f"SLA policy “{data['name']}” saved.")
    return redirect("web:config-sla")


# --- Business calendars ----------------------------------------------------------------


class CalendarForm(DomainErrors, forms.Form):
    """A calendar's definition. Weekly hours are one text field per weekday:
    ``09:00-12:00, 13:00-17:30``, empty for closed."""

    name = forms.SlugField(
        label="Short name",
        max_length=50,
        help_text="Lowercase letters, digits and dashes, e.g. acme-new-york. Permanent.",
    )
    title = forms.CharField(label="Title", max_length=200)
    organization = forms.ChoiceField(label="Organization", required=False)
    time_zone = forms.ChoiceField(label="Time zone")
    always_open = forms.BooleanField(
        label="Always open (24x7: no weekly hours, no holidays)", required=False
    )

    def __init__(self, *args: Any, actor: User, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if creating:
            field = self.fields["organization"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = _organization_choices(actor, "calendar.manage_shared")
        else:
            del self.fields["name"]
            del self.fields["organization"]
        zone = self.fields["time_zone"]
        assert isinstance(zone, forms.ChoiceField)
        zone.choices = time_zone_choices()
        for key, day in zip(WEEKDAYS, WEEKDAY_NAMES, strict=True):
            self.fields[f"hours_{key}"] = forms.CharField(label=day, required=False, max_length=400)
        # Refusals about the hours or holidays as a whole, shown at their fieldset.
        self.hours_errors: list[str] = []
        self.holiday_errors: list[str] = []

    def days(self) -> list[forms.BoundField]:
        return [self[f"hours_{key}"] for key in WEEKDAYS]

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        assert cleaned is not None
        hours: dict[int, list[tuple[int, int]]] = {}
        for day, key in enumerate(WEEKDAYS):
            text = cleaned.get(f"hours_{key}") or ""
            parts = [p.strip() for p in text.split(",")]
            if parts == [""]:
                continue
            for part in parts:
                if not part:
                    self.add_error(f"hours_{key}", "An empty range between commas.")
                    break
                try:
                    hours.setdefault(day, []).append(parse_span(part))
                except CalendarError as exc:
                    self.add_error(f"hours_{key}", f"{exc}.")
                    break
        cleaned["hours"] = hours
        return cleaned

    def add_domain_error(self, exc: DomainError) -> None:
        """``hours`` errors naming a weekday go beside it; other ``hours`` and ``holidays``
        errors at their fieldset; the rest as usual."""
        rest = []
        for issue in exc.errors:
            if issue.field == "hours":
                day = next(
                    (
                        k
                        for k, n in zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)
                        if issue.message.startswith(f"{n}:")
                    ),
                    None,
                )
                if day is not None:
                    self.add_error(f"hours_{day}", issue.message)
                else:
                    self.hours_errors.append(issue.message)
            elif issue.field == "holidays":
                self.holiday_errors.append(issue.message)
            else:
                rest.append(issue)
        if rest or not exc.errors:
            super().add_domain_error(type(exc)(exc.detail, errors=rest))


class HolidayForm(forms.Form):
    date = forms.DateField(
        label="Date", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    name = forms.CharField(label="Name", required=False, max_length=services.HOLIDAY_NAME_MAX)

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        assert cleaned is not None
        if cleaned.get("name") and cleaned.get("date") is None and "date" not in self.errors:
            self.add_error("date", "A holiday needs its date.")
        return cleaned


HolidayFormSet = formset_factory(
    HolidayForm, extra=HOLIDAY_ROWS_ADDED, can_delete=True, max_num=2000, absolute_max=2000
)


class SeedForm(DomainErrors, forms.Form):
    """A country's public holidays of one year, added to the calendar."""

    country = forms.CharField(
        label="Country", max_length=3, help_text="ISO 3166 code, e.g. DE, US, AU."
    )
    subdivision = forms.CharField(
        label="Subdivision", max_length=20, required=False, help_text="Optional, e.g. BY, NSW."
    )
    year = forms.IntegerField(label="Year")

    def add_domain_error(self, exc: DomainError) -> None:
        issues = [
            FieldIssue("year", i.message) if i.field == "holiday_years" else i for i in exc.errors
        ]
        super().add_domain_error(type(exc)(exc.detail, errors=issues))


def _holiday_pairs(formset: Any) -> list[tuple[dt.date, str]]:
    """The rows kept: with a date, not marked for removal."""
    return [
        (f.cleaned_data["date"], f.cleaned_data.get("name") or "")
        for f in formset.forms
        if f.cleaned_data.get("date") is not None and not f.cleaned_data.get("DELETE")
    ]


@dataclass
class CalendarRow:
    calendar: BusinessCalendar
    hours: list[tuple[str, str]]  # (weekday, "08:00-17:00, …") for open days


@manager_required
def calendars(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rows = []
    for c in queries.calendar_list(actor=user).order_by(
        F("organization__code").asc(nulls_first=True), "name"
    ):
        week = services.hours_text(services.calendar_hours(c))
        rows.append(
            CalendarRow(
                c,
                [
                    (n, ", ".join(week[k]))
                    for k, n in zip(WEEKDAYS, WEEKDAY_NAMES, strict=True)
                    if week[k]
                ],
            )
        )
    return render_config(
        request, "web/config/sla/calendars.html", {"rows": rows}, section="calendars"
    )


def _calendar_page(
    request: HttpRequest,
    form: CalendarForm,
    formset: Any,
    calendar: BusinessCalendar | None,
    seed: SeedForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = _user(request)
    return render_config(
        request,
        "web/config/sla/calendar.html",
        {
            "form": form,
            "holidays": formset,
            "calendar": calendar,
            "seed": seed
            or SeedForm(
                initial={
                    "country": calendar.country if calendar else "",
                    "subdivision": calendar.subdivision if calendar else "",
                    "year": clock.now().year + 1,
                }
            ),
            "read_only": calendar is not None
            and _read_only(user, calendar.organization, "calendar.manage_shared"),
        },
        section="calendars",
        status=status,
    )


def _more_rows(data: Any) -> Any:
    """The posted data with HOLIDAY_ROWS_ADDED more blank holiday rows."""
    data = data.copy()
    try:
        total = int(data.get("holidays-TOTAL_FORMS", "0"))
    except ValueError:
        total = 0
    data["holidays-TOTAL_FORMS"] = str(min(total + HOLIDAY_ROWS_ADDED, 2000))
    return data


@manager_required
def calendar_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method != "POST":
        form = CalendarForm(
            actor=user,
            creating=True,
            initial={"time_zone": "UTC"} | {f"hours_{k}": "09:00-17:00" for k in WEEKDAYS[:5]},
        )
        return _calendar_page(request, form, HolidayFormSet(prefix="holidays"), None)
    data = _more_rows(request.POST) if "more" in request.POST else request.POST
    form = CalendarForm(data, actor=user, creating=True)
    formset = HolidayFormSet(data, prefix="holidays")
    if "more" in request.POST:
        return _calendar_page(request, form, formset, None)
    if not (form.is_valid() & formset.is_valid()):
        return _calendar_page(request, form, formset, None, status=400)
    d = form.cleaned_data
    try:
        calendar = services.calendar_create(
            actor=user,
            name=d["name"],
            title=d["title"],
            time_zone=d["time_zone"],
            always_open=d["always_open"],
            hours=d["hours"],
            holidays=_holiday_pairs(formset),
            organization=_organization(user, d["organization"]),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _calendar_page(request, form, formset, None, status=_status(exc))
    messages.success(request, f"Calendar “{calendar.title}” added.")
    return redirect("web:config-calendar", name=calendar.name)


def _load_calendar(user: User, name: str) -> BusinessCalendar:
    try:
        return queries.calendar_get(actor=user, name=name)
    except NotFound:
        raise Http404("No such calendar.") from None


def _calendar_initial(calendar: BusinessCalendar) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    week = services.hours_text(services.calendar_hours(calendar))
    initial = {
        "title": calendar.title,
        "time_zone": calendar.time_zone,
        "always_open": calendar.always_open,
    } | {f"hours_{k}": ", ".join(week[k]) for k in WEEKDAYS}
    return initial, [{"date": h.date, "name": h.name} for h in calendar.holidays.all()]


@manager_required
def calendar_edit(request: HttpRequest, name: str) -> HttpResponse:
    user = _user(request)
    calendar = _load_calendar(user, name)
    if request.method != "POST":
        initial, rows = _calendar_initial(calendar)
        form = CalendarForm(initial=initial, actor=user, creating=False)
        return _calendar_page(
            request, form, HolidayFormSet(initial=rows, prefix="holidays"), calendar
        )
    data = _more_rows(request.POST) if "more" in request.POST else request.POST
    form = CalendarForm(data, actor=user, creating=False)
    formset = HolidayFormSet(data, prefix="holidays")
    if "more" in request.POST:
        return _calendar_page(request, form, formset, calendar)
    if not (form.is_valid() & formset.is_valid()):
        return _calendar_page(request, form, formset, calendar, status=400)
    d = form.cleaned_data
    try:
        services.calendar_update(
            actor=user,
            calendar=calendar,
            title=d["title"],
            time_zone=d["time_zone"],
            always_open=d["always_open"],
            hours=d["hours"],
            holidays=_holiday_pairs(formset),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _calendar_page(request, form, formset, calendar, status=_status(exc))
    messages.success(request, f"Calendar “{d['title']}” saved.")
    return redirect("web:config-calendar", name=calendar.name)


@manager_required
def calendar_seed(request: HttpRequest, name: str) -> HttpResponse:
    """Add a country's public holidays of a year (POST); the page shows the form again
    with its refusal beside the field."""
    user = _user(request)
    calendar = _load_calendar(user, name)
    if request.method != "POST":
        return redirect("web:config-calendar", name=calendar.name)
    seed = SeedForm(request.POST)
    initial, rows = _calendar_initial(calendar)
    form = CalendarForm(initial=initial, actor=user, creating=False)
    formset = HolidayFormSet(initial=rows, prefix="holidays")
    if not seed.is_valid():
        return _calendar_page(request, form, formset, calendar, seed, status=400)
    before = len(rows)
    try:
        services.calendar_seed_holidays(
            actor=user,
            calendar=calendar,
            country=seed.cleaned_data["country"],
            subdivision=seed.cleaned_data["subdivision"],
            years=[seed.cleaned_data["year"]],
        )
    except DomainError as exc:
        seed.add_domain_error(exc)
        return _calendar_page(request, form, formset, calendar, seed, status=_status(exc))
    added = len(_load_calendar(user, name).holidays.all()) - before
    messages.success(
        request,
        f"Added {added} public holiday{'s' if added != 1 else ''} of "
        f"{seed.cleaned_data['country'].upper()} {seed.cleaned_data['year']}.",
    )
    return redirect(
        reverse("web:config-calendar", kwargs={"name": calendar.name}) + "#holidays-title"
    )


urlpatterns: list[URLPattern] = [
    path("sla/", sla, name="config-sla"),
    path("sla/new/", sla_new, name="config-sla-new"),
    path("sla/<int:policy_id>/", sla_edit, name="config-sla-edit"),
    path("calendars/", calendars, name="config-calendars"),
    path("calendars/new/", calendar_new, name="config-calendar-new"),
    path("calendars/<slug:name>/", calendar_edit, name="config-calendar"),
    path("calendars/<slug:name>/holidays/", calendar_seed, name="config-calendar-seed"),
]
