"""Configuration pages for the automatic escalation rules: list, add, change, delete.

The form checks shape; :mod:`tierdesk.escalation.services` checks the rules (a trigger's
parameter and its range, no cyclic or sideways rule) and the actor's scope, and its refusals
are shown beside the field they name."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path

from tierdesk.core import policy
from tierdesk.core.errors import DomainError, NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_get
from tierdesk.escalation import queries, services
from tierdesk.escalation.models import EscalationRule, Trigger
from tierdesk.tiers.models import Tier
from tierdesk.tiers.queries import tiers_by_level
from tierdesk.web.forms import DomainErrors, choice_field
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.sections import render_config

SHARED = "escalation.manage_shared"
# The number each trigger needs (the priority trigger's "parameter" is the priority).
PARAMETER = {trigger: name for trigger, (name, _, _) in services.TRIGGER_PARAMETERS.items()}
NUMBERS = ("minutes", "percent", "count")


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def describe(rule: EscalationRule) -> str:
    """The rule's trigger in words, for the list."""
    if rule.trigger == Trigger.TIME_IN_TIER:
        return f"{rule.minutes} minutes in the tier without resolution"
    if rule.trigger == Trigger.SLA_RESOLUTION_USED:
        return f"{rule.percent} % of the resolution SLA used"
    if rule.trigger == Trigger.REOPENED:
        return f"reopened {rule.count} time{'s' if rule.count != 1 else ''}"
    return f"{rule.priority} on intake (or raised to it)"


class RuleForm(DomainErrors, forms.Form):
    name = forms.CharField(label="Name", max_length=100)
    organization = forms.ChoiceField(label="Organization", required=False)
    trigger = forms.ChoiceField(label="Trigger", choices=Trigger.choices)
    minutes = forms.IntegerField(
        label="Minutes in the tier",
        required=False,
        help_text="For “time in tier”: 1 to 525,600 (a year).",
    )
    percent = forms.IntegerField(
        label="Percent of the resolution SLA used",
        required=False,
        help_text="For “resolution SLA used”: 1 to 100.",
    )
    count = forms.IntegerField(
        label="Times reopened", required=False, help_text="For “reopened”: 1 to 100."
    )
    priority = forms.ChoiceField(
        label="Priority",
        required=False,
        help_text="Only tickets of this priority; for the priority trigger, the one that goes up.",
    )
    from_tier = forms.ChoiceField(
        label="Only tickets in tier", required=False, help_text="Empty: any tier."
    )
    to_tier = forms.ChoiceField(
        label="Escalate to",
        required=False,
        help_text="Empty: the next tier up (the priority trigger needs a tier).",
    )
    notify_managers = forms.BooleanField(
        label="Also notify the target tier's managers", required=False
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args: Any, actor: User, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if creating:
            orgs = sorted(
                (o.code, f"{o.code} — {o.name}") for o in policy.visible_organizations(actor)
            )
            shared = (
                [("", "MSP-wide (every organization)")] if policy.allowed(actor, SHARED) else []
            )
            choice_field(self, "organization").choices = shared + orgs
        else:
            del self.fields["organization"]
        choice_field(self, "priority").choices = [("", "Any priority")] + [
            (p, p) for p in services.RULE_PRIORITIES
        ]
        tiers = [(t.code, f"{t.code} — {t.name}") for t in tiers_by_level()]
        choice_field(self, "from_tier").choices = [("", "Any tier"), *tiers]
        choice_field(self, "to_tier").choices = [("", "The next tier up"), *tiers]

    def values(self) -> dict[str, Any]:
        """The service's keyword arguments (without organization). Only the number that
        goes with the chosen trigger is sent: the others may still hold what was typed for
        another trigger, which the page keeps but the rule does not use."""
        d = self.cleaned_data
        wanted = PARAMETER.get(d["trigger"])
        return {
            "name": d["name"],
            "trigger": d["trigger"],
            "priority": d["priority"],
            "from_tier": _tier(d["from_tier"]),
            "to_tier": _tier(d["to_tier"]),
            **{n: d[n] if n == wanted else None for n in NUMBERS},
            "notify_managers": d["notify_managers"],
            "is_active": d["is_active"],
        }


def _tier(code: str) -> Tier | None:
    return next((t for t in tiers_by_level() if t.code == code), None) if code else None


def _organization(user: User, code: str) -> Organization | None:
    if not code:
        return None
    try:
        return organization_get(actor=user, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None


def _status(exc: DomainError) -> int:
    return exc.status if exc.status >= 400 else 422


def _read_only(user: User, rule: EscalationRule | None) -> bool:
    return rule is not None and rule.organization_id is None and not policy.allowed(user, SHARED)


def _load(user: User, rule_id: int) -> EscalationRule:
    try:
        return queries.escalation_rule_get(actor=user, rule_id=rule_id)
    except NotFound:
        raise Http404("No such escalation rule.") from None


@manager_required
def escalation(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rules = [(r, describe(r)) for r in queries.escalation_rule_list(actor=user)]
    return render_config(
        request,
        "web/config/escalation/list.html",
        {"rules": rules, "can_shared": policy.allowed(user, SHARED)},
        section="escalation",
    )


def _page(
    request: HttpRequest, form: RuleForm, rule: EscalationRule | None, status: int = 200
) -> HttpResponse:
    return render_config(
        request,
        "web/config/escalation/rule.html",
        {"form": form, "rule": rule, "read_only": _read_only(_user(request), rule)},
        section="escalation",
        status=status,
    )


@manager_required
def escalation_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method != "POST":
        return _page(request, RuleForm(actor=user, creating=True), None)
    form = RuleForm(request.POST, actor=user, creating=True)
    if not form.is_valid():
        return _page(request, form, None, 400)
    try:
        rule = services.escalation_rule_create(
            actor=user,
            organization=_organization(user, form.cleaned_data["organization"]),
            **form.values(),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _page(request, form, None, _status(exc))
    messages.success(request, f"Escalation rule “{rule.name}” added.")
    return redirect("web:config-escalation")


def _initial(rule: EscalationRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "trigger": rule.trigger,
        "minutes": rule.minutes,
        "percent": rule.percent,
        "count": rule.count,
        "priority": rule.priority,
        "from_tier": rule.from_tier.code if rule.from_tier else "",
        "to_tier": rule.to_tier.code if rule.to_tier else "",
        "notify_managers": rule.notify_managers,
        "is_active": rule.is_active,
    }


@manager_required
def escalation_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    user = _user(request)
    rule = _load(user, rule_id)
    if request.method != "POST":
        return _page(request, RuleForm(initial=_initial(rule), actor=user, creating=False), rule)
    form = RuleForm(request.POST, actor=user, creating=False)
    if not form.is_valid():
        return _page(request, form, rule, 400)
    try:
        services.escalation_rule_update(actor=user, rule=rule, **form.values())
    except DomainError as exc:
        form.add_domain_error(exc)
        return _page(request, form, rule, _status(exc))
    messages.success(request, f"Escalation rule “{form.cleaned_data['name']}” saved.")
    return redirect("web:config-escalation")


@manager_required
def escalation_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes (the service checks the scope)."""
    user = _user(request)
    rule = _load(user, rule_id)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            services.escalation_rule_delete(actor=user, rule=rule)
        except DomainError as exc:
            error, status = exc.detail, _status(exc)
        else:
            messages.success(request, f"Escalation rule “{rule.name}” deleted.")
            return redirect("web:config-escalation")
    return render_config(
        request,
        "web/config/escalation/delete.html",
        {
            "rule": rule,
            "summary": describe(rule),
            "error": error,
            "read_only": _read_only(user, rule),
        },
        section="escalation",
        status=status,
    )


urlpatterns: list[URLPattern] = [
    path("escalation/", escalation, name="config-escalation"),
    path("escalation/new/", escalation_new, name="config-escalation-new"),
    path("escalation/<int:rule_id>/", escalation_edit, name="config-escalation-edit"),
    path("escalation/<int:rule_id>/delete/", escalation_delete, name="config-escalation-delete"),
]
