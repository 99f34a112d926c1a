"""Configuration of tiers and the service catalog (categories).

Everyone with the configuration area (managers, admins) reads them; the services decide who
changes them (admins, per the policy), and a refusal is shown on the form as it was sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from tierdesk.core import policy
from tierdesk.core.errors import Conflict, DomainError, NotFound, PermissionDenied
from tierdesk.core.models import Organization, User
from tierdesk.core.unset import UNSET
from tierdesk.tiers import queries, services
from tierdesk.tiers.form_fields import MAX_QUESTIONS
from tierdesk.tiers.models import AssignmentStrategy, Category, Impact, Urgency
from tierdesk.web.forms import DomainErrors, choice_field
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.sections import render_config

TEXT_MAX = 4000


def refusal_status(exc: DomainError) -> int:
    """The status a page answers with when a service refuses: 403 for "your role may not",
    409 for a conflict, 404 for hidden, else 400 (bad input)."""
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, NotFound):
        return 404
    return 400


def _by_pk[T](rows: Iterable[T], wanted: Iterable[str]) -> list[T]:
    ids = {int(w) for w in wanted}
    return [r for r in rows if r.pk in ids]  # type: ignore[attr-defined]


# --- tiers -----------------------------------------------------------------------------------


class TierForm(DomainErrors, forms.Form):
    """A tier. Creating one also chooses its code and level, which the edit form keeps."""

    code = forms.RegexField(
        regex=r"^[A-Za-z][A-Za-z0-9]{0,7}$",
        max_length=8,
        label="Code",
        help_text="Names the tier and its queue (L4, NOC): up to 8 letters or digits.",
        error_messages={"invalid": "Up to 8 letters or digits, starting with a letter."},
    )
    level = forms.IntegerField(
        min_value=1,
        max_value=62,
        label="Level",
        help_text="Orders the tiers: escalation moves a ticket to a higher level.",
    )
    name = forms.CharField(max_length=100, label="Name")
    description = forms.CharField(
        required=False,
        max_length=TEXT_MAX,
        label="What it handles",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    assignment_strategy = forms.ChoiceField(
        choices=AssignmentStrategy.choices,
        label="Assignment of new tickets",
        help_text="Manual leaves new tickets in the queue for agents to take.",
    )
    managers = forms.MultipleChoiceField(
        required=False,
        label="Managers",
        widget=forms.CheckboxSelectMultiple,
        help_text="Told when a ticket is escalated to this tier.",
    )
    hourly_cost = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100_000,
        label="Cost of an hour",
        help_text="An hour of this tier's work, in whole units of your currency (reports).",
    )
    handling_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=10_000,
        label="Minutes per ticket",
        help_text="The time an agent typically spends on one ticket here (reports).",
    )

    def __init__(self, *args: Any, actor: User, creating: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["code"]
            del self.fields["level"]
        self.candidates = list(queries.tier_manager_candidates(actor=actor))
        choice_field(self, "managers").choices = [
            (u.pk, f"{u.full_name} ({u.get_role_display()})") for u in self.candidates
        ]


@manager_required
def tiers(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    rows = list(queries.tier_list().prefetch_related("managers"))
    return render_config(
        request,
        "web/config/catalog/tiers.html",
        {"tiers": rows, "can_edit": policy.allowed(user, "catalog.manage")},
        section="tiers",
    )


@manager_required
def tier_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    status = 200
    if request.method == "POST":
        form = TierForm(request.POST, actor=user, creating=True)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                tier = services.tier_create(
                    actor=user,
                    code=data["code"],
                    level=data["level"],
                    name=data["name"].strip(),
                    description=data["description"],
                    assignment_strategy=data["assignment_strategy"],
                    managers=_by_pk(form.candidates, data["managers"]),
                    hourly_cost=data["hourly_cost"],
                    handling_minutes=data["handling_minutes"],
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(
                    request, f"Tier {tier.code} added; its queue is in the console's navigation."
                )
                return redirect("web:config-tiers")
    else:
        top = queries.tier_list().order_by("-level").values_list("level", flat=True).first()
        form = TierForm(
            actor=user,
            creating=True,
            initial={"level": min((top or 0) + 1, 62), "assignment_strategy": "manual"},
        )
    return render_config(
        request,
        "web/config/catalog/tier_form.html",
        {"tier": None, "form": form, "can_edit": policy.allowed(user, "catalog.manage")},
        section="tiers",
        status=status,
    )


@manager_required
def tier_edit(request: HttpRequest, code: str) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    tier = queries.tier_list().filter(code=code.upper()).first()
    if tier is None:
        raise Http404("No such tier.")
    status = 200
    if request.method == "POST":
        form = TierForm(request.POST, actor=user)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.tier_update(
                    actor=user,
                    tier=tier,
                    name=data["name"].strip(),
                    description=data["description"],
                    assignment_strategy=data["assignment_strategy"],
                    managers=_by_pk(form.candidates, data["managers"]),
                    hourly_cost=data["hourly_cost"],
                    handling_minutes=data["handling_minutes"],
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Tier {tier.code} saved.")
                return redirect("web:config-tiers")
    else:
        form = TierForm(
            actor=user,
            initial={
                "name": tier.name,
                "description": tier.description,
                "assignment_strategy": tier.assignment_strategy,
                "managers": [str(pk) for pk in tier.managers.values_list("pk", flat=True)],
                "hourly_cost": tier.hourly_cost,
                "handling_minutes": tier.handling_minutes,
            },
        )
    return render_config(
        request,
        "web/config/catalog/tier_form.html",
        {"tier": tier, "form": form, "can_edit": policy.allowed(user, "catalog.manage")},
        section="tiers",
        status=status,
    )


# --- categories ------------------------------------------------------------------------------


class CategoryForm(DomainErrors, forms.Form):
    """A catalog entry. Creating one also chooses its catalog (MSP-wide or an organization's)
    and its slug, which are permanent afterwards; ``is_active`` is offered when editing."""

    organization = forms.ChoiceField(required=False, label="Catalog")
    slug = forms.SlugField(
        max_length=50,
        label="Slug",
        help_text="Short name used by the API, the CLI and email: lower case, digits, dashes.",
    )
    name = forms.CharField(max_length=100, label="Name")
    description = forms.CharField(
        required=False,
        max_length=TEXT_MAX,
        label="Description",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    default_tier = forms.ChoiceField(label="Starts at tier")
    default_impact = forms.TypedChoiceField(
        coerce=int, choices=Impact.choices, label="Default impact"
    )
    default_urgency = forms.TypedChoiceField(
        coerce=int, choices=Urgency.choices, label="Default urgency"
    )
    required_skills = forms.MultipleChoiceField(
        required=False, label="Required skills", widget=forms.CheckboxSelectMultiple
    )
    is_active = forms.BooleanField(required=False, label="Active (offered for new tickets)")

    def __init__(self, *args: Any, actor: User, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tiers = list(queries.tier_list())
        self.skills = list(queries.skill_list())
        self.organizations = list(policy.visible_organizations(actor).order_by("code"))
        choice_field(self, "default_tier").choices = [
            (t.code, f"{t.code} — {t.name}") for t in self.tiers
        ]
        choice_field(self, "required_skills").choices = [(s.slug, s.name) for s in self.skills]
        if creating:
            del self.fields["is_active"]
            choice_field(self, "organization").choices = [("", "MSP-wide (every organization)")] + [
                (o.code, f"{o.code} — {o.name} only") for o in self.organizations
            ]
        else:
            del self.fields["organization"]
            del self.fields["slug"]

    def chosen_organization(self) -> Organization | None:
        code = self.cleaned_data.get("organization") or ""
        return next((o for o in self.organizations if o.code == code), None)

    def values(self) -> dict[str, Any]:
        """What the services take, from the cleaned data."""
        data = self.cleaned_data
        skills = set(data["required_skills"])
        return {
            "name": data["name"].strip(),
            "description": data["description"],
            "default_tier": next(t for t in self.tiers if t.code == data["default_tier"]),
            "default_impact": data["default_impact"],
            "default_urgency": data["default_urgency"],
            "required_skills": [s for s in self.skills if s.slug in skills],
        }


class QuestionForm(forms.Form):
    """One of the category's own questions (see tiers.form_fields); a row left empty is no
    question. The service checks the whole list again and names the question it refuses."""

    key = forms.CharField(required=False, max_length=40, label="Key")
    label = forms.CharField(required=False, max_length=100, label="Question")
    type = forms.ChoiceField(
        required=False,
        label="Answer",
        choices=[
            ("text", "One line"),
            ("textarea", "Several lines"),
            ("choice", "One of the choices"),
            ("date", "A date"),
            ("number", "A whole number"),
        ],
    )
    required = forms.BooleanField(required=False, label="Required")
    choices = forms.CharField(
        required=False, max_length=2000, label="Choices", help_text="Separated by ;"
    )
    help = forms.CharField(required=False, max_length=300, label="Hint")

    def question(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not (data.get("key") or data.get("label")):
            return None
        choices = [c.strip() for c in (data.get("choices") or "").split(";") if c.strip()]
        return {
            "key": data["key"].strip(),
            "label": data["label"],
            "type": data["type"] or "text",
            "required": bool(data["required"]),
            "choices": choices,
            "help": data["help"],
        }


# The questions a category has, and three empty rows for new ones.
QuestionFormSet = forms.formset_factory(QuestionForm, extra=3, max_num=MAX_QUESTIONS)


def question_rows(category: Category | None) -> list[dict[str, Any]]:
    return [
        {**q, "choices": "; ".join(q.get("choices") or [])}
        for q in (category.form_fields if category else [])
    ]


def question_formset(request: HttpRequest, category: Category | None) -> Any:
    """The questions editor, bound when the form sent it (a client that leaves it out
    leaves the questions as they are)."""
    sent = request.method == "POST" and "q-TOTAL_FORMS" in request.POST
    return QuestionFormSet(
        request.POST if sent else None, prefix="q", initial=question_rows(category)
    )


def questions_of(formset: Any) -> Any:
    """The questions for the service: UNSET when the editor was not sent."""
    if not formset.is_bound:
        return UNSET
    return [q for f in formset.forms if (q := f.question()) is not None]


def _category_groups(user: User) -> list[tuple[str, list[Category]]]:
    """The catalog the user sees: MSP-wide first, then each organization's own (only those
    that have any), by code."""
    rows = sorted(
        queries.category_list(actor=user),
        key=lambda c: (
            c.organization is not None,
            c.organization.code if c.organization else "",
            c.name.lower(),
        ),
    )
    groups: dict[str, list[Category]] = {}
    for c in rows:
        title = f"{c.organization.code} — {c.organization.name}" if c.organization else "MSP-wide"
        groups.setdefault(title, []).append(c)
    return list(groups.items())


@manager_required
def categories(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return render_config(
        request,
        "web/config/catalog/categories.html",
        {"groups": _category_groups(user), "can_edit": policy.allowed(user, "catalog.manage")},
        section="categories",
    )


@manager_required
def category_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    status = 200
    questions = question_formset(request, None)
    if request.method == "POST":
        form = CategoryForm(request.POST, actor=user, creating=True)
        status = 400
        if form.is_valid() and (questions.is_valid() or not questions.is_bound):
            try:
                created = services.category_create(
                    actor=user,
                    slug=form.cleaned_data["slug"],
                    organization=form.chosen_organization(),
                    form_fields=questions_of(questions) if questions.is_bound else None,
                    **form.values(),
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Category “{created.name}” added.")
                return redirect("web:config-categories")
    else:
        form = CategoryForm(
            actor=user,
            creating=True,
            initial={"default_impact": Impact.MEDIUM, "default_urgency": Urgency.MEDIUM},
        )
    return _category_page(request, user, form, questions, None, status)


@manager_required
def category_edit(request: HttpRequest, category_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    found = queries.category_list(actor=user).filter(pk=category_id).first()
    if found is None:
        raise Http404("No such category.")
    status = 200
    questions = question_formset(request, found)
    if request.method == "POST":
        form = CategoryForm(request.POST, actor=user, creating=False)
        status = 400
        if form.is_valid() and (questions.is_valid() or not questions.is_bound):
            try:
                services.category_update(
                    actor=user,
                    category=found,
                    is_active=form.cleaned_data["is_active"],
                    form_fields=questions_of(questions),
                    **form.values(),
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Category “{form.cleaned_data['name']}” saved.")
                return redirect("web:config-categories")
    else:
        form = CategoryForm(
            actor=user,
            creating=False,
            initial={
                "name": found.name,
                "description": found.description,
                "default_tier": found.default_tier.code,
                "default_impact": found.default_impact,
                "default_urgency": found.default_urgency,
                "required_skills": [s.slug for s in found.required_skills.all()],
                "is_active": found.is_active,
            },
        )
    return _category_page(request, user, form, questions, found, status)


def _category_page(
    request: HttpRequest,
    user: User,
    form: CategoryForm,
    questions: Any,
    found: Category | None,
    status: int,
) -> HttpResponse:
    return render_config(
        request,
        "web/config/catalog/category_form.html",
        {
            "form": form,
            "questions": questions,
            "category": found,
            "can_edit": policy.allowed(user, "catalog.manage"),
            "action": (
                reverse("web:config-category-edit", args=[found.pk])
                if found
                else reverse("web:config-category-new")
            ),
        },
        section="categories",
        status=status,
    )


urlpatterns: list[URLPattern] = [
    path("tiers/", tiers, name="config-tiers"),
    # Tier codes are capitals, so no tier's page is tiers/new/ (URLs match case).
    path("tiers/new/", tier_new, name="config-tier-new"),
    path("tiers/<str:code>/", tier_edit, name="config-tier-edit"),
    path("categories/", categories, name="config-categories"),
    path("categories/new/", category_new, name="config-category-new"),
    path("categories/<int:category_id>/", category_edit, name="config-category-edit"),
]
