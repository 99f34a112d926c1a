"""Configuration of routing rules: the ordered list per scope (MSP-wide, then each
organization the user sees), adding, changing, removing and reordering rules, and a dry-run
that shows where a sample ticket would go and why.

Reordering posts the order the page showed beside the new one: the service refuses (409)
when the scope's rules changed meanwhile, so an order made in one tab never silently undoes
a change made in another. The dry-run asks the very code ticket intake asks
(``tickets.services.route_intake``) and shows it as the API's dry-run does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from tierdesk.api.routing import dry_run_out, rule_out, rules_out
from tierdesk.core import lookups, policy
from tierdesk.core.errors import DomainError, FieldIssue, NotFound
from tierdesk.core.models import Organization, User
from tierdesk.core.queries import colleagues, user_scope
from tierdesk.tickets.models import Priority, Source
from tierdesk.tickets.services import route_intake
from tierdesk.tiers import queries, services
from tierdesk.tiers.models import Category, Impact, RoutingRule, Urgency
from tierdesk.tiers.services import ROUTING_PRIORITIES, ROUTING_SOURCES, RuleConditions
from tierdesk.web.forms import DomainErrors, choice_field
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.catalog import refusal_status
from tierdesk.web.views.config.sections import render_config

MSP = "msp"  # the scope key of MSP-wide rules (organization codes are upper case)
FRAGMENT_HEADER = "X-Tierdesk-Fragment"  # config.js asks for one scope's list only
LIST_MAX = services.MAX_LIST


def _split(text: str, *, commas_only: bool = False) -> list[str]:
    parts = re.split(r"[,\n]" if commas_only else r"[,\s]+", text)
    return [p.strip() for p in parts if p.strip()]


def _may_manage(user: User, organization: Organization | None) -> bool:
    """Whether the page offers changes in this scope (the services decide in the end)."""
    if organization is None:
        return policy.allowed(user, "routing.manage_shared")
    return policy.allowed(user, "routing.manage")


def _scope_organization(user: User, key: str) -> Organization | None:
    """The organization a scope key names (None: MSP-wide); 404 if the user cannot see it."""
    if key == MSP:
        return None
    found = policy.visible_organization(user, code=key.upper()) if key else None
    if found is None:
        raise Http404("No such organization.")
    return found


def _scope_key(organization: Organization | None) -> str:
    return organization.code if organization is not None else MSP


# --- the rule form ---------------------------------------------------------------------------

# A service names fields as the API does ("conditions.keywords"); the form as flat names.
FIELD_NAMES = {
    "conditions.categories": "categories",
    "conditions.organizations": "organizations",
    "conditions.requesters": "requesters",
    "conditions.priorities": "priorities",
    "conditions.sources": "sources",
    "conditions.keywords": "keywords",
    "actions.tier": "tier",
    "actions.category": "category",
    "actions.priority": "priority",
    "actions.assignee": "assignee",
    "actions.tags": "tags",
}


class RuleForm(DomainErrors, forms.Form):
    """A routing rule: a name, its scope (chosen when adding, permanent after), conditions
    (every filled-in list must hold; any entry of a list) and actions (at least one)."""

    name = forms.CharField(max_length=100, label="Name")
    organization = forms.ChoiceField(
        required=False,
        label="Applies to",
        help_text="An organization's rules are checked before the MSP-wide ones.",
    )
    is_active = forms.BooleanField(required=False, label="Active", initial=True)
    categories = forms.MultipleChoiceField(
        required=False,
        label="Category is any of",
        help_text="Select several with Ctrl or Shift.",
    )
    organizations = forms.MultipleChoiceField(
        required=False,
        label="Organization is any of",
        help_text="MSP-wide rules only.",
    )
    requesters = forms.CharField(
        required=False,
        max_length=5000,
        label="Requester is any of",
        help_text="Email addresses, separated by commas.",
    )
    priorities = forms.MultipleChoiceField(
        required=False,
        label="Priority is any of",
        choices=[(p, p) for p in ROUTING_PRIORITIES],
        widget=forms.CheckboxSelectMultiple,
    )
    sources = forms.MultipleChoiceField(
        required=False,
        label="Came in by any of",
        choices=[(s, Source(s).label) for s in ROUTING_SOURCES],
        widget=forms.CheckboxSelectMultiple,
    )
    keywords = forms.CharField(
        required=False,
        max_length=5000,
        label="Subject or description contains any of",
        help_text="Words or phrases, separated by commas; any case.",
    )
    tier = forms.ChoiceField(required=False, label="Send to tier")
    category = forms.ChoiceField(required=False, label="Set category")
    priority = forms.ChoiceField(
        required=False,
        label="Set priority",
        choices=[("", "Keep (impact x urgency)")] + [(p, p) for p in ROUTING_PRIORITIES],
    )
    assignee = forms.ChoiceField(required=False, label="Assign to")
    tags = forms.CharField(
        required=False,
        max_length=2000,
        label="Add tags",
        help_text="Separated by commas or spaces.",
    )

    def __init__(
        self, *args: Any, actor: User, rule: RoutingRule | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.rule = rule
        self.organization_rows = list(policy.visible_organizations(actor).order_by("code"))
        scope = rule.organization if rule is not None else None
        self.category_rows = [
            c
            for c in queries.category_list(actor=actor).order_by("name")
            if c.is_active
            and (rule is None or c.organization_id in (None, scope.pk if scope else None))
        ]
        self.tier_rows = list(queries.tier_list())
        self.staff_rows = colleagues(actor)
        if rule is None:
            offered = [(o.code, f"{o.code} — {o.name}") for o in self.organization_rows]
            if policy.allowed(actor, "routing.manage_shared"):
                offered.insert(0, ("", "Every organization (MSP-wide)"))
            choice_field(self, "organization").choices = offered
            self.fields["organization"].required = not policy.allowed(
                actor, "routing.manage_shared"
            )
        else:
            del self.fields["organization"]
        categories = [(str(c.pk), _category_label(c)) for c in self.category_rows]
        choice_field(self, "categories").choices = categories
        choice_field(self, "category").choices = [("", "Keep"), *categories]
        choice_field(self, "organizations").choices = [
            (str(o.pk), f"{o.code} — {o.name}") for o in self.organization_rows
        ]
        choice_field(self, "tier").choices = [("", "The category's tier")] + [
            (t.code, f"{t.code} — {t.name}") for t in self.tier_rows
        ]
        choice_field(self, "assignee").choices = [("", "Nobody (the tier assigns)")] + [
            (str(u.pk), f"{u.full_name} ({u.email})") for u in self.staff_rows
        ]
        self.requester_rows: list[User] = []

    def clean_requesters(self) -> str:
        text: str = self.cleaned_data["requesters"]
        emails = [e.lower() for e in _split(text)]
        if len(emails) > LIST_MAX:
            raise forms.ValidationError(f"At most {LIST_MAX} requesters.")
        found = queries.users_by_email(emails)
        for email in emails:
            if email not in found:
                # The service's words for "missing" and "someone else's": the same.
                raise forms.ValidationError(f"no such requester {email!r} in this scope")
        self.requester_rows = [found[e] for e in dict.fromkeys(emails)]
        return text

    def clean_keywords(self) -> str:
        text: str = self.cleaned_data["keywords"]
        words = _split(text, commas_only=True)
        if len(words) > LIST_MAX:
            raise forms.ValidationError(f"At most {LIST_MAX} keywords.")
        if any(len(w) > 100 for w in words):
            raise forms.ValidationError("Each keyword at most 100 characters.")
        return text

    def clean_tags(self) -> str:
        text: str = self.cleaned_data["tags"]
        tags = _split(text)
        if len(tags) > 20:
            raise forms.ValidationError("At most 20 tags.")
        bad = [t for t in tags if not re.fullmatch(r"[-\w]{1,50}", t)]
        if bad:
            raise forms.ValidationError(
                f"{bad[0]!r}: tags are 1 to 50 letters, digits, dashes or underscores."
            )
        return text

    def add_domain_error(self, exc: DomainError) -> None:
        issues = [FieldIssue(FIELD_NAMES.get(i.field, i.field), i.message) for i in exc.errors]
        super().add_domain_error(type(exc)(exc.detail, errors=issues))

    def chosen_organization(self) -> Organization | None:
        code = self.cleaned_data.get("organization") or ""
        return next((o for o in self.organization_rows if o.code == code), None)

    def values(self) -> dict[str, Any]:
        """The service's arguments (all but name, scope and position), from cleaned data."""
        data = self.cleaned_data
        categories = {int(i) for i in data["categories"]}
        organizations = {int(i) for i in data["organizations"]}
        return {
            "is_active": data["is_active"],
            "conditions": RuleConditions(
                categories=[c for c in self.category_rows if c.pk in categories],
                organizations=[o for o in self.organization_rows if o.pk in organizations],
                requesters=self.requester_rows,
                priorities=list(data["priorities"]),
                sources=list(data["sources"]),
                keywords=list(dict.fromkeys(_split(data["keywords"], commas_only=True))),
            ),
            "tier": next((t for t in self.tier_rows if t.code == data["tier"]), None),
            "category": next(
                (c for c in self.category_rows if str(c.pk) == data["category"]), None
            ),
            "priority": data["priority"],
            "assignee": next((u for u in self.staff_rows if str(u.pk) == data["assignee"]), None),
            "tags": list(dict.fromkeys(_split(data["tags"]))),
        }


def _category_label(c: Category) -> str:
    return f"{c.name} ({c.organization.code} only)" if c.organization else c.name


def _rule_initial(rule: RoutingRule, actor: User) -> dict[str, Any]:
    c = rule.conditions or {}
    shown = rule_out(rule, actor)
    return {
        "name": rule.name,
        "is_active": rule.is_active,
        "categories": [str(i) for i in c.get("categories", [])],
        "organizations": [str(i) for i in c.get("organizations", [])],
        "requesters": ", ".join(shown["conditions"]["requesters"]),
        "priorities": c.get("priorities", []),
        "sources": c.get("sources", []),
        "keywords": ", ".join(c.get("keywords", [])),
        "tier": rule.set_tier.code if rule.set_tier else "",
        "category": str(rule.set_category_id or ""),
        "priority": rule.set_priority,
        "assignee": str(rule.set_assignee_id or ""),
        "tags": ", ".join(rule.add_tags or []),
    }


# --- the dry-run form ------------------------------------------------------------------------


class SampleForm(DomainErrors, forms.Form):
    """A made-up ticket, as the API's dry-run takes it."""

    organization = forms.ChoiceField(label="Organization")
    category = forms.ChoiceField(required=False, label="Category")
    subject = forms.CharField(max_length=250, label="Subject")
    description = forms.CharField(
        required=False,
        max_length=100_000,
        label="Description",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    requester = forms.CharField(
        required=False, max_length=254, label="Requester", help_text="Email address (optional)."
    )
    source = forms.ChoiceField(
        label="Came in by", choices=list(Source.choices), initial=Source.PORTAL
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Impact",
        choices=[("", "The category's"), *Impact.choices],
    )
    urgency = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Urgency",
        choices=[("", "The category's"), *Urgency.choices],
    )
    priority = forms.ChoiceField(
        required=False,
        label="Priority",
        choices=[("", "From impact x urgency"), *Priority.choices],
    )

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "sample")
        super().__init__(*args, **kwargs)
        self.actor = actor
        orgs = list(policy.visible_organizations(actor).order_by("code"))
        choice_field(self, "organization").choices = [
            (o.code, f"{o.code} — {o.name}") for o in orgs
        ]
        choice_field(self, "category").choices = [("", "None")] + [
            (str(c.pk), _category_label(c))
            for c in queries.category_list(actor=actor).order_by("name")
            if c.is_active
        ]

    def run(self) -> dict[str, Any] | None:
        """The routing decision for the cleaned sample, as the API's dry-run shows it; None
        (with messages beside the fields) when the sample names what its organization does
        not have."""
        data = self.cleaned_data
        organization = policy.visible_organization(self.actor, code=data["organization"])
        if organization is None:  # chosen from the visible ones: gone meanwhile
            self.add_error("organization", "no such organization")
            return None
        category = None
        if data["category"]:
            category = queries.category_for_organization(organization, int(data["category"]))
            if category is None:
                self.add_error("category", f"not a category of {organization.code}")
        requester = None
        if data["requester"]:
            requester = queries.requester_of(organization, data["requester"])
            if requester is None:
                self.add_error(
                    "requester",
                    f"no such requester {data['requester'].strip().lower()!r} in this scope",
                )
        if self.errors:
            return None
        decision = route_intake(
            organization=organization,
            subject=data["subject"],
            description=data["description"],
            category=category,
            priority=data["priority"] or None,
            impact=data["impact"],
            urgency=data["urgency"],
            source=data["source"],
            requester=requester,
        )
        out = dry_run_out(decision, self.actor)
        out["organization"] = organization
        out["tier_name"] = decision.tier.name if decision.tier else ""
        out["category_name"] = decision.category.name if decision.category else ""
        assignee = lookups.user_by_id(out["assignee_id"]) if out["assignee_id"] else None
        out["assignee"] = assignee
        _name_trace(self.actor, out["rules"])
        return out


def _name_trace(actor: User, rules: list[dict[str, Any]]) -> None:
    """Show the ids a trace names (categories, organizations, requesters) as the names the
    actor may see."""
    ids: dict[str, set[int]] = {"categories": set(), "organizations": set(), "requesters": set()}
    for r in rules:
        for check in r["checks"]:
            if check["condition"] in ids:
                values = check["wanted"] + [check["actual"]]
                ids[check["condition"]].update(v for v in values if isinstance(v, int))
    names: dict[str, dict[int, str]] = {
        "categories": {
            c.pk: c.slug
            for c in queries.category_list(actor=actor).filter(pk__in=ids["categories"])
        },
        "organizations": dict(
            policy.visible_organizations(actor)
            .filter(pk__in=ids["organizations"])
            .values_list("pk", "code")
        ),
        "requesters": dict(
            user_scope(actor).filter(pk__in=ids["requesters"]).values_list("pk", "email")
        ),
    }
    for r in rules:
        for check in r["checks"]:
            lookup = names.get(check["condition"])
            if lookup is None:
                continue
            check["wanted"] = [lookup.get(v, f"#{v}") for v in check["wanted"]]
            actual = check["actual"]
            check["actual"] = lookup.get(actual, f"#{actual}") if actual is not None else None


# --- the routing page ------------------------------------------------------------------------


@dataclass
class Scope:
    key: str
    title: str
    organization: Organization | None
    can_manage: bool
    rules: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    notice: str = ""

    @property
    def seen(self) -> str:
        return ",".join(str(r["id"]) for r in self.rules)


CONDITION_WORDS = {
    "categories": "category",
    "organizations": "organization",
    "requesters": "requester",
    "priorities": "priority",
    "sources": "came in by",
    "keywords": "mentions",
}


def _shown(rule: RoutingRule, actor: User, out: dict[str, Any] | None = None) -> dict[str, Any]:
    out = out or rule_out(rule, actor)
    out["when"] = [(CONDITION_WORDS[k], ", ".join(v)) for k, v in out["conditions"].items() if v]
    a = out["actions"]
    then = []
    if a["tier"]:
        then.append(("tier", a["tier"]))
    if a["category"]:
        then.append(("category", a["category"]))
    if a["priority"]:
        then.append(("priority", a["priority"]))
    if a["assignee"]:
        then.append(("assign to", a["assignee"]["full_name"]))
    if a["tags"]:
        then.append(("tags", ", ".join(a["tags"])))
    out["then"] = then
    return out


def _scope(user: User, organization: Organization | None) -> Scope:
    rules = queries.routing_scope_rules(actor=user, organization=organization)
    title = (
        f"{organization.code} — {organization.name}"
        if organization
        else "MSP-wide (every organization, after its own rules)"
    )
    return Scope(
        key=_scope_key(organization),
        title=title,
        organization=organization,
        can_manage=_may_manage(user, organization),
        rules=[_shown(r, user, o) for r, o in zip(rules, rules_out(rules, user), strict=True)],
    )


def _mark_focus(scope: Scope, moved: int | None, direction: str) -> None:
    """Mark the button that keeps focus on a moved rule: the one just used, or the other
    when the rule reached the end of its list (a disabled button cannot hold focus)."""
    ids = [r["id"] for r in scope.rules]
    if moved not in ids:
        return
    at, last = ids.index(moved), len(ids) - 1
    if direction == "up" and at > 0:
        focus = "up"
    elif at < last:
        focus = "down"
    else:
        focus = "up" if at > 0 else ""
    scope.rules[at]["focus"] = focus


def _scopes(user: User) -> list[Scope]:
    orgs = list(policy.visible_organizations(user).order_by("code"))
    return [_scope(user, None)] + [_scope(user, o) for o in orgs]


def _page(
    request: HttpRequest,
    user: User,
    *,
    sample: SampleForm | None = None,
    result: dict[str, Any] | None = None,
    replace: Scope | None = None,
    status: int = 200,
) -> HttpResponse:
    scopes = _scopes(user)
    if replace is not None:
        scopes = [replace if s.key == replace.key else s for s in scopes]
    moved = request.GET.get("moved", "")
    if moved.isdigit():
        for scope in scopes:
            _mark_focus(scope, int(moved), request.GET.get("dir", ""))
    return render_config(
        request,
        "web/config/routing/rules.html",
        {"scopes": scopes, "sample": sample or SampleForm(actor=user), "result": result},
        section="routing",
        status=status,
    )


@manager_required
def rules(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return _page(request, user)


@require_POST
@manager_required
def dry_run(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    sample = SampleForm(request.POST, actor=user)
    result = sample.run() if sample.is_valid() else None
    return _page(request, user, sample=sample, result=result, status=200 if result else 400)


def _ids(text: str) -> list[int] | None:
    parts = [p for p in text.split(",") if p.strip()]
    if not all(p.strip().isdigit() for p in parts) or len(parts) > 10_000:
        return None
    return [int(p) for p in parts]


@require_POST
@manager_required
def reorder(request: HttpRequest) -> HttpResponse:
    """Move one rule up or down (the buttons), or put a scope's rules in a dragged order
    (config.js). Either way the order the page showed comes along as ``seen``."""
    user: User = request.user  # type: ignore[assignment]
    organization = _scope_organization(user, request.POST.get("scope", ""))
    fragment = request.headers.get(FRAGMENT_HEADER) == "1"
    seen = _ids(request.POST.get("seen", ""))
    move = request.POST.get("move", "")
    moved: int | None = None
    direction = ""
    wanted: list[int] | None = None
    if seen is not None and move:
        rule_ref, _, direction = move.partition(":")
        moved = int(rule_ref) if rule_ref.isdigit() else None
        if direction in ("up", "down") and moved is not None and moved in seen:
            at = seen.index(moved)
            to = at - 1 if direction == "up" else at + 1
            wanted = list(seen)
            if 0 <= to < len(seen):
                wanted[at], wanted[to] = wanted[to], wanted[at]
    elif seen is not None:
        wanted = _ids(request.POST.get("order", ""))
        moved_ref = request.POST.get("moved", "")
        moved = int(moved_ref) if moved_ref.isdigit() else None
    scope = _scope(user, organization)
    status = 200
    if wanted is None or seen is None:
        scope.error = services.STALE_ORDER
        status = 409
    else:
        try:
            services.routing_rule_reorder(
                actor=user, organization=organization, rule_ids=wanted, expected=seen
            )
        except DomainError as exc:
            scope.error = exc.detail
            status = refusal_status(exc)
        else:
            scope = _scope(user, organization)
            scope.notice = "Order saved." if wanted != seen else "Nothing moved."
    if fragment:
        _mark_focus(scope, moved, direction)
        return render(
            request, "web/config/routing/rules.html#scope", {"scope": scope}, status=status
        )
    if status != 200:
        return _page(request, user, replace=scope, status=status)
    messages.success(request, f"{scope.notice} ({scope.title.split(' — ')[0]})")
    url = reverse("web:config-routing")
    if moved is None:
        return redirect(f"{url}#scope-{scope.key}")
    # No #rule-N here: jumping to a fragment takes the focus away from the autofocused
    # button (browsers focus the fragment's target, or nothing), and autofocus scrolls to it.
    return redirect(f"{url}?moved={moved}&dir={direction}")


def _rule_or_404(user: User, rule_id: int) -> RoutingRule:
    try:
        return queries.routing_rule_get(actor=user, rule_id=rule_id)
    except NotFound:
        raise Http404("No such routing rule.") from None


@manager_required
def rule_new(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    status = 200
    if request.method == "POST":
        form = RuleForm(request.POST, actor=user)
        status = 400
        if form.is_valid():
            organization = form.chosen_organization()
            try:
                created = services.routing_rule_create(
                    actor=user,
                    name=form.cleaned_data["name"],
                    organization=organization,
                    **form.values(),
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Rule “{created.name}” added at the end of its list.")
                return redirect(reverse("web:config-routing") + f"#rule-{created.pk}")
    else:
        scope = request.GET.get("scope", "")
        form = RuleForm(
            actor=user,
            initial={"is_active": True, "organization": "" if scope == MSP else scope.upper()},
        )
    return _rule_page(request, form, None, status)


@manager_required
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    rule = _rule_or_404(user, rule_id)
    status = 200
    if request.method == "POST":
        form = RuleForm(request.POST, actor=user, rule=rule)
        status = 400
        if form.is_valid():
            try:
                services.routing_rule_update(
                    actor=user, rule=rule, name=form.cleaned_data["name"], **form.values()
                )
            except DomainError as exc:
                form.add_domain_error(exc)
                status = refusal_status(exc)
            else:
                messages.success(request, f"Rule “{form.cleaned_data['name']}” saved.")
                return redirect(reverse("web:config-routing") + f"#rule-{rule.pk}")
    else:
        form = RuleForm(actor=user, rule=rule, initial=_rule_initial(rule, user))
    return _rule_page(request, form, rule, status)


def _rule_page(
    request: HttpRequest, form: RuleForm, rule: RoutingRule | None, status: int
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    return render_config(
        request,
        "web/config/routing/rule_form.html",
        {
            "form": form,
            "rule": rule,
            "can_manage": rule is None or _may_manage(user, rule.organization),
            "action": (
                reverse("web:config-routing-edit", args=[rule.pk])
                if rule
                else reverse("web:config-routing-new")
            ),
        },
        section="routing",
        status=status,
    )


@manager_required
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    rule = _rule_or_404(user, rule_id)
    error = ""
    status = 200
    if request.method == "POST":
        try:
            services.routing_rule_delete(actor=user, rule=rule)
        except DomainError as exc:
            error = exc.detail
            status = refusal_status(exc)
        else:
            messages.success(request, f"Rule “{rule.name}” removed.")
            return redirect(
                reverse("web:config-routing") + f"#scope-{_scope_key(rule.organization)}"
            )
    return render_config(
        request,
        "web/config/routing/rule_delete.html",
        {"rule": _shown(rule, user), "error": error},
        section="routing",
        status=status,
    )


urlpatterns: list[URLPattern] = [
    path("routing/", rules, name="config-routing"),
    path("routing/new/", rule_new, name="config-routing-new"),
    path("routing/reorder/", reorder, name="config-routing-reorder"),
    path("routing/dry-run/", dry_run, name="config-routing-dry-run"),
    path("routing/<int:rule_id>/", rule_edit, name="config-routing-edit"),
    path("routing/<int:rule_id>/delete/", rule_delete, name="config-routing-delete"),
]
