"""Configuration of skills: list, add, rename, delete.

Managers and admins read them (with how many agents have each and categories require it);
the services decide who changes them (admins, per the policy), and a refusal is shown on the
form as it was sent.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path

from tierdesk.core import policy
from tierdesk.core.errors import DomainError, NotFound
from tierdesk.core.models import User
from tierdesk.tiers import queries, services
from tierdesk.tiers.models import Skill
from tierdesk.web.forms import DomainErrors
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.catalog import refusal_status
from tierdesk.web.views.config.sections import render_config


class SkillForm(DomainErrors, forms.Form):
    """A skill. Creating one also chooses its slug, which is permanent afterwards."""

    slug = forms.SlugField(
        max_length=50,
        label="Slug",
        help_text="Short name used by the API, the CLI and categories: lower case, digits, "
        "dashes. It cannot be changed later.",
    )
    name = forms.CharField(max_length=100, label="Name")

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["slug"]


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _load(user: User, slug: str) -> Skill:
    try:
        return queries.skill_get(actor=user, slug=slug)
    except NotFound:
        raise Http404("No such skill.") from None


@manager_required
def skills(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    return render_config(
        request,
        "web/config/skills/list.html",
        {
            "skills": list(queries.skill_usage(actor=user)),
            "can_edit": policy.allowed(user, "catalog.manage"),
        },
        section="skills",
    )


@manager_required
def skill_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    status = 200
    if request.method == "POST":
        form = SkillForm(request.POST, creating=True)
        status = 400
        if form.is_valid():
            try:
                created = services.skill_create(
                    actor=user, slug=form.cleaned_data["slug"], name=form.cleaned_data["name"]
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Skill “{created.name}” added.")
                return redirect("web:config-skills")
    else:
        form = SkillForm(creating=True)
    return _form_page(request, user, form, None, status)


@manager_required
def skill_edit(request: HttpRequest, slug: str) -> HttpResponse:
    user = _user(request)
    skill = _load(user, slug)
    status = 200
    if request.method == "POST":
        form = SkillForm(request.POST, creating=False)
        status = 400
        if form.is_valid():
            try:
                services.skill_update(actor=user, skill=skill, name=form.cleaned_data["name"])
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Skill {skill.slug} saved.")
                return redirect("web:config-skills")
    else:
        form = SkillForm(creating=False, initial={"name": skill.name})
    return _form_page(request, user, form, skill, status)


def _form_page(
    request: HttpRequest, user: User, form: SkillForm, skill: Skill | None, status: int
) -> HttpResponse:
    return render_config(
        request,
        "web/config/skills/form.html",
        {"form": form, "skill": skill, "can_edit": policy.allowed(user, "catalog.manage")},
        section="skills",
        status=status,
    )


@manager_required
def skill_delete(request: HttpRequest, slug: str) -> HttpResponse:
    """GET asks for confirmation; POST deletes (the service checks the role and refuses a
    skill still in use)."""
    user = _user(request)
    skill = _load(user, slug)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            services.skill_delete(actor=user, skill=skill)
        except DomainError as exc:
            error, status = exc.detail, refusal_status(exc)
        else:
            messages.success(request, f"Skill “{skill.name}” deleted.")
            return redirect("web:config-skills")
    return render_config(
        request,
        "web/config/skills/delete.html",
        {"skill": skill, "error": error, "can_edit": policy.allowed(user, "catalog.manage")},
        section="skills",
        status=status,
    )


urlpatterns: list[URLPattern] = [
    path("skills/", skills, name="config-skills"),
    path("skills/new/", skill_new, name="config-skill-new"),
    # A skill's own pages are one level down, so a skill may be called "new".
    path("skills/<str:slug>/edit/", skill_edit, name="config-skill-edit"),
    path("skills/<str:slug>/delete/", skill_delete, name="config-skill-delete"),
]
