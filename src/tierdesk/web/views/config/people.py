"""Configuration of organizations and people: client organizations (admins change them,
managers read the ones they serve), requesters (managers of their organization and admins)
and staff with their tier, skills, shifts and served organizations (admins).

The forms check shape; every rule (who may change whom, unique emails, known time zones,
no lock-out) is the services'. Their refusals come back beside the field they name."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from tierdesk.core import policy
from tierdesk.core import queries as core_queries
from tierdesk.core import services as core_services
from tierdesk.core.errors import DomainError, NotFound, PermissionDenied
from tierdesk.core.models import STAFF_ROLES, Organization, Role, User
from tierdesk.tickets.models import OPEN_STATUSES
from tierdesk.tiers import queries as tier_queries
from tierdesk.tiers import services as tier_services
from tierdesk.tiers.models import AgentProfile
from tierdesk.web.forms import DomainErrors, choice_field
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.sections import render_config

PAGE_SIZE = 50
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
SHIFT_FIELDS = [f"shifts_{day[:3].lower()}" for day in WEEKDAYS]
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
TIME_ZONE_HELP = "An IANA time zone name, e.g. Europe/Berlin or America/New_York."


def _actor(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _bad(exc: DomainError) -> int:
    """The status a refused form answers with: 403 when the role may not, else 400."""
    return 403 if isinstance(exc, PermissionDenied) else 400


# --- organizations ---------------------------------------------------------------------


class OrganizationForm(DomainErrors, forms.Form):
    code = forms.CharField(
        max_length=10,
        help_text="2 to 10 capital letters or digits; ticket numbers carry it. Permanent.",
    )
    name = forms.CharField(max_length=200)
    time_zone = forms.CharField(max_length=64, initial="UTC", help_text=TIME_ZONE_HELP)
    email_domains = forms.CharField(
        required=False,
        max_length=2000,
        label="Email domains",
        help_text="Separated by commas or spaces, e.g. acme.example, acme-corp.example.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["is_active"]
        else:
            del self.fields["code"]

    def clean_email_domains(self) -> list[str]:
        raw: str = self.cleaned_data.get("email_domains") or ""
        return [d for d in re.split(r"[\s,;]+", raw) if d]


def _organization_initial(org: Organization) -> dict[str, Any]:
    return {
        "name": org.name,
        "time_zone": org.time_zone,
        "email_domains": ", ".join(org.email_domains),
        "is_active": org.is_active,
    }


@manager_required
def organizations(request: HttpRequest) -> HttpResponse:
    user = _actor(request)
    return render_config(
        request,
        "web/config/people/organizations.html",
        {
            "organizations": core_queries.organization_overview(
                actor=user, open_statuses=[str(s) for s in OPEN_STATUSES]
            ),
            "may_change": policy.allowed(user, "organization.update"),
            "may_create": policy.allowed(user, "organization.create"),
        },
        section="organizations",
    )


def _forbidden(request: HttpRequest, section: str, message: str) -> HttpResponse:
    return render_config(
        request,
        "web/config/people/forbidden.html",
        {"message": message},
        section=section,
        status=403,
    )


@manager_required
def organization_new(request: HttpRequest) -> HttpResponse:
    user = _actor(request)
    if not policy.allowed(user, "organization.create"):
        return _forbidden(request, "organizations", "Only admins add organizations.")
    form = OrganizationForm(request.POST or None, creating=True)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                org = core_services.organization_create(
                    actor=user,
                    code=data["code"],
                    name=data["name"],
                    time_zone=data["time_zone"].strip(),
                    email_domains=data["email_domains"],
                )
            except DomainError as exc:
                status = _bad(exc)
                form.add_domain_error(exc)
            else:
                messages.success(request, f"Organization {org.code} added.")
                return redirect("web:config-organizations")
    return render_config(
        request,
        "web/config/people/organization_form.html",
        {"form": form, "organization": None},
        section="organizations",
        status=status,
    )


@manager_required
def organization_edit(request: HttpRequest, code: str) -> HttpResponse:
    user = _actor(request)
    try:
        org = core_services.organization_get(actor=user, code=code)
    except NotFound:
        raise Http404("No such organization.") from None
    may_change = policy.allowed(user, "organization.update")
    if request.method == "POST" and not may_change:
        return _forbidden(request, "organizations", "Only admins change organizations.")
    form = OrganizationForm(
        request.POST or None, creating=False, initial=_organization_initial(org)
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                core_services.organization_update(
                    actor=user,
                    organization=org,
                    name=data["name"],
                    time_zone=data["time_zone"].strip(),
                    email_domains=data["email_domains"],
                    is_active=data["is_active"],
                )
            except DomainError as exc:
                status = _bad(exc)
                form.add_domain_error(exc)
            else:
                messages.success(request, f"Organization {org.code} saved.")
                return redirect("web:config-organizations")
    return render_config(
        request,
        "web/config/people/organization_form.html",
        {"form": form, "organization": org, "may_change": may_change},
        section="organizations",
        status=status,
    )


# --- people: the list ------------------------------------------------------------------


class PeopleFilterForm(forms.Form):
    text = forms.CharField(required=False, max_length=200, label="Name or email")
    organization = forms.ChoiceField(required=False, label="Organization")
    role = forms.ChoiceField(required=False, choices=[("", "Any"), *Role.choices], label="Role")
    active = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), ("yes", "Active"), ("no", "Deactivated")],
        label="State",
    )

    def __init__(self, *args: Any, organizations: list[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "organization").choices = [("", "All")] + [
            (o.code, f"{o.code} — {o.name}") for o in organizations
        ]


@manager_required
def people(request: HttpRequest) -> HttpResponse:
    user = _actor(request)
    visible = list(core_queries.organization_list(actor=user))
    form = PeopleFilterForm(request.GET or None, organizations=visible)
    page: Page[User] | None = None
    status = 200
    if not form.is_bound or form.is_valid():
        data = form.cleaned_data if form.is_bound else {}
        by_code = {o.code: o for o in visible}
        active = {"yes": True, "no": False}.get(data.get("active") or "")
        found = core_queries.user_search(
            actor=user,
            text=(data.get("text") or "").strip() or None,
            organization=by_code.get(data.get("organization") or ""),
            role=data.get("role") or None,
            active=active,
        )
        page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    else:
        status = 400
    params = request.GET.copy()
    params.pop("page", None)
    return render_config(
        request,
        "web/config/people/people.html",
        {
            "form": form,
            "page": page,
            "query": params.urlencode(),
            "may_create_staff": policy.allowed(user, "user.create_staff"),
            "person_base": reverse("web:config-person", args=[0])[: -len("0/")],
        },
        section="people",
        status=status,
    )


# --- people: the forms -----------------------------------------------------------------


def parse_shifts(text: str) -> list[tuple[dt.time, dt.time]]:
    """One weekday's shifts from ``09:00-12:00, 13:00-17:00`` (blank: not working), in
    order. Raises forms.ValidationError saying what is wrong."""
    result: list[tuple[dt.time, dt.time]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _INTERVAL.match(part)
        if m is None:
            raise forms.ValidationError(
                f"“{part}” is not a shift: write HH:MM-HH:MM, several separated by commas "
                "(e.g. 09:00-12:00, 13:00-17:00)."
            )
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        try:
            start, end = dt.time(h1, m1), dt.time(h2, m2)
        except ValueError:
            raise forms.ValidationError(f"“{part}”: times run from 00:00 to 23:59.") from None
        if end <= start:
            raise forms.ValidationError(f"“{part}”: a shift must end after it starts.")
        result.append((start, end))
    result.sort()
    for (_, end), (start, _) in itertools.pairwise(result):
        if start < end:
            raise forms.ValidationError("These shifts overlap.")
    return result


def _shift_texts(profile: AgentProfile | None) -> dict[str, str]:
    days: dict[str, list[str]] = {name: [] for name in SHIFT_FIELDS}
    if profile is not None:
        for h in profile.hours.all():
            days[SHIFT_FIELDS[h.weekday]].append(f"{h.start:%H:%M}-{h.end:%H:%M}")
    return {name: ", ".join(parts) for name, parts in days.items()}


class PersonForm(DomainErrors, forms.Form):
    """A requester or a staff member. ``kind`` ("requester" or "staff") decides the fields;
    ``creating`` adds the password and leaves out deactivation."""

    full_name = forms.CharField(max_length=200, label="Name")
    email = forms.CharField(max_length=254, label="Email")
    role = forms.ChoiceField(label="Role")
    organization = forms.ChoiceField(label="Organization")
    sees_organization_tickets = forms.BooleanField(
        required=False, label="Sees every ticket of the organization"
    )
    time_zone = forms.CharField(max_length=64, initial="UTC", help_text=TIME_ZONE_HELP)
    is_active = forms.BooleanField(
        required=False,
        label="Active",
        help_text="A deactivated person cannot sign in; their tickets and history stay.",
    )
    password = forms.CharField(
        required=False,
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Initial password",
        help_text="Optional; without one the person cannot sign in to the pages yet.",
    )
    tier = forms.ChoiceField(label="Tier")
    skills = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Skills"
    )
    served_organizations = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Serves"
    )

    def __init__(
        self,
        *args: Any,
        kind: str,
        creating: bool,
        actor: User,
        organizations: list[Organization],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.organizations = {o.code: o for o in organizations}
        org_choices = [(o.code, f"{o.code} — {o.name}") for o in organizations]
        if creating:
            del self.fields["is_active"]
        else:
            del self.fields["password"]
        if kind == "requester":
            for name in ("role", "tier", "skills", "served_organizations"):
                del self.fields[name]
            choice_field(self, "organization").choices = [("", "—"), *org_choices]
            return
        del self.fields["organization"]
        del self.fields["sees_organization_tickets"]
        choice_field(self, "role").choices = [(r.value, r.label) for r in Role if r in STAFF_ROLES]
        self.tiers = {t.code: t for t in tier_queries.tiers_by_level()}
        choice_field(self, "tier").choices = [(c, f"{c} — {t.name}") for c, t in self.tiers.items()]
        self.skill_rows = {s.slug: s for s in tier_queries.skill_list()}
        choice_field(self, "skills").choices = [(s.slug, s.name) for s in self.skill_rows.values()]
        choice_field(self, "served_organizations").choices = org_choices
        for day, name in zip(WEEKDAYS, SHIFT_FIELDS, strict=True):
            self.fields[name] = forms.CharField(
                required=False,
                max_length=200,
                label=day,
                widget=forms.TextInput(attrs={"placeholder": "off"}),
            )

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        for name in SHIFT_FIELDS:
            if name in self.fields and name not in self.errors:
                try:
                    self.cleaned_data[name] = parse_shifts(self.cleaned_data.get(name) or "")
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
        return cleaned

    def shift_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in SHIFT_FIELDS if name in self.fields]

    def main_fields(self) -> list[forms.BoundField]:
        work = {"tier", "skills", "served_organizations", *SHIFT_FIELDS}
        return [f for f in self if f.name not in work]

    # What the services take, from the cleaned data.

    def chosen_organization(self) -> Organization:
        return self.organizations[self.cleaned_data["organization"]]

    def work(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "tier": self.tiers[data["tier"]],
            "skills": [self.skill_rows[s] for s in data["skills"]],
            "served_organizations": [self.organizations[c] for c in data["served_organizations"]],
            "shifts": [
                tier_services.Shift(weekday, start, end)
                for weekday, name in enumerate(SHIFT_FIELDS)
                for start, end in data[name]
            ],
        }


def _served_visible(user: User, actor: User) -> list[Organization]:
    """The organizations ``user`` serves, as far as ``actor`` sees them."""
    visible = set(policy.visible_organization_ids(actor))
    return [o for o in user.served_organizations.order_by("code") if o.pk in visible]


@manager_required
def person_new(request: HttpRequest, kind: str) -> HttpResponse:
    user = _actor(request)
    if kind not in ("requester", "staff"):
        raise Http404("No such kind of person.")
    if kind == "staff" and not policy.allowed(user, "user.create_staff"):
        return _forbidden(request, "people", "Only admins add staff.")
    visible = list(core_queries.organization_list(actor=user))
    form = PersonForm(
        request.POST or None,
        kind=kind,
        creating=True,
        actor=user,
        organizations=visible,
        initial={"time_zone": "UTC", "role": Role.AGENT},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            common = {
                "actor": user,
                "email": data["email"],
                "full_name": data["full_name"],
                "time_zone": data["time_zone"].strip(),
                "password": data["password"] or None,
            }
            try:
                if kind == "requester":
                    created = tier_services.person_create(
                        **common,
                        role=Role.REQUESTER,
                        organization=form.chosen_organization(),
                        sees_organization_tickets=data["sees_organization_tickets"],
                    )
                else:
                    created = tier_services.person_create(
                        **common, role=data["role"], **form.work()
                    )
            except DomainError as exc:
                status = _bad(exc)
                form.add_domain_error(exc)
            else:
                messages.success(request, f"{created.full_name} <{created.email}> added.")
                return redirect("web:config-person", user_id=created.pk)
    return render_config(
        request,
        "web/config/people/person_form.html",
        {"form": form, "person": None, "kind": kind},
        section="people",
        status=status,
    )


@manager_required
def person_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _actor(request)
    try:
        person = core_queries.user_get(actor=user, user_id=user_id)
    except NotFound:
        raise Http404("No such person.") from None
    kind = "requester" if person.role == Role.REQUESTER else "staff"
    profile = tier_queries.agent_profile_of(person) if kind == "staff" else None
    may_change = user.role == Role.ADMIN or (
        kind == "requester" and policy.allowed(user, "user.create_requester")
    )
    context: dict[str, Any] = {
        "person": person,
        "kind": kind,
        "profile": profile,
        "may_change": may_change,
        "served": _served_visible(person, user) if kind == "staff" else [],
        "shift_rows": [
            (day, _shift_texts(profile)[name])
            for day, name in zip(WEEKDAYS, SHIFT_FIELDS, strict=True)
        ],
    }
    if not may_change:
        if request.method == "POST":
            return _forbidden(request, "people", "Only admins change staff.")
        return render_config(
            request, "web/config/people/person_view.html", context, section="people"
        )
    visible = list(core_queries.organization_list(actor=user))
    initial: dict[str, Any] = {
        "full_name": person.full_name,
        "email": person.email,
        "time_zone": person.time_zone,
        "is_active": person.is_active,
    }
    if kind == "requester":
        assert person.organization is not None
        initial |= {
            "organization": person.organization.code,
            "sees_organization_tickets": person.sees_organization_tickets,
        }
    else:
        initial |= {
            "role": person.role,
            "tier": profile.tier.code if profile else "",
            "skills": [s.slug for s in profile.skills.all()] if profile else [],
            "served_organizations": [o.code for o in _served_visible(person, user)],
            **_shift_texts(profile),
        }
    form = PersonForm(
        request.POST or None,
        kind=kind,
        creating=False,
        actor=user,
        organizations=visible,
        initial=initial,
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            profile_changes: dict[str, Any] = {
                "full_name": data["full_name"],
                "email": data["email"],
                "time_zone": data["time_zone"].strip(),
                "is_active": data["is_active"],
            }
            if kind == "requester":
                profile_changes |= {
                    "organization": form.chosen_organization(),
                    "sees_organization_tickets": data["sees_organization_tickets"],
                }
            else:
                profile_changes["role"] = data["role"]
            try:
                # Profile and work land together or not at all.
                with transaction.atomic():
                    core_services.user_update(actor=user, user=person, **profile_changes)
                    if kind == "staff":
                        tier_services.agent_update(actor=user, user=person, **form.work())
            except DomainError as exc:
                status = _bad(exc)
                form.add_domain_error(exc)
            else:
                messages.success(request, f"{data['full_name']} saved.")
                return redirect("web:config-person", user_id=person.pk)
    context["form"] = form
    return render_config(
        request, "web/config/people/person_form.html", context, section="people", status=status
    )


urlpatterns: list[URLPattern] = [
    path("organizations/", organizations, name="config-organizations"),
    path("organizations/new/", organization_new, name="config-organization-new"),
    path("organizations/<str:code>/", organization_edit, name="config-organization"),
    path("people/", people, name="config-people"),
    path("people/new/<str:kind>/", person_new, name="config-person-new"),
    path("people/<int:user_id>/", person_edit, name="config-person"),
]
