"""Configuration pages for webhooks: list, register (the secret shown once), change, turn
on again, rotate the secret, delete; and each webhook's delivery log with replay.

The form checks shape; :mod:`tierdesk.channels.webhooks` checks the address, the events
against the catalogue and the actor's scope, and its refusals are shown beside the field
they name. A secret is only ever in the answer to the POST that made it, never in a
redirect, the session or a message, and that answer is not cached."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from tierdesk.channels import catalogue, queries, webhooks
from tierdesk.channels.models import DeliveryStatus, Webhook
from tierdesk.core import policy
from tierdesk.core.errors import DomainError, NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_get
from tierdesk.web.forms import DomainErrors, choice_field
from tierdesk.web.views.common import manager_required
from tierdesk.web.views.config.sections import render_config

SHARED = "webhook.manage_shared"
PAGE_SIZE = 25


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def event_choices(*, organization_only: bool) -> list[tuple[str, str]]:
    """Everything, each group, each event: those an organization's webhook may ask for
    when ``organization_only``."""
    groups = [
        (f"{g}{catalogue.GROUP_SUFFIX}", f"Every {g.replace('_', ' ')} event")
        for g in catalogue.GROUPS
    ]
    events = [(k.name, f"{k.name} — {k.description}") for k in catalogue.kinds()]
    choices = [(catalogue.ALL, "Every event"), *groups, *events]
    if organization_only:
        choices = [c for c in choices if catalogue.organization_may_receive(c[0])]
    return choices


class WebhookForm(DomainErrors, forms.Form):
    url = forms.CharField(
        label="Address",
        max_length=webhooks.URL_MAX,
        help_text="An https:// address on a public host; it receives a signed POST per event.",
    )
    organization = forms.ChoiceField(label="Organization", required=False)
    events = forms.MultipleChoiceField(
        label="Events",
        widget=forms.CheckboxSelectMultiple,
        help_text="An organization's webhook receives its tickets' events only (never "
        "internal notes).",
    )
    description = forms.CharField(
        label="Description", max_length=webhooks.DESCRIPTION_MAX, required=False
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    def __init__(self, *args: Any, actor: User, webhook: Webhook | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        shared = policy.allowed(actor, SHARED)
        if webhook is None:
            orgs = sorted(
                (o.code, f"{o.code} — {o.name}") for o in policy.visible_organizations(actor)
            )
            everyone = [("", "All organizations (MSP-wide)")] if shared else []
            choice_field(self, "organization").choices = everyone + orgs
            del self.fields["is_active"]
            organization_only = not shared
        else:
            del self.fields["organization"]
            organization_only = webhook.organization_id is not None
        choice_field(self, "events").choices = event_choices(organization_only=organization_only)


def _organization(user: User, code: str) -> Organization | None:
    if not code:
        return None
    try:
        return organization_get(actor=user, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None


def _status(exc: DomainError) -> int:
    return exc.status if exc.status >= 400 else 422


def _load(user: User, webhook_id: int) -> Webhook:
    try:
        return queries.webhook_get(actor=user, webhook_id=webhook_id)
    except NotFound:
        raise Http404("No such webhook.") from None


@manager_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    return render_config(
        request,
        "web/config/webhooks/list.html",
        {"hooks": list(queries.webhook_list(actor=user))},
        section="webhooks",
    )


def _form_page(
    request: HttpRequest, form: WebhookForm, hook: Webhook | None, status: int = 200
) -> HttpResponse:
    return render_config(
        request,
        "web/config/webhooks/form.html",
        {"form": form, "hook": hook},
        section="webhooks",
        status=status,
    )


def _secret_page(request: HttpRequest, hook: Webhook, secret: str, *, new: bool) -> HttpResponse:
    response = render_config(
        request,
        "web/config/webhooks/secret.html",
        {"hook": hook, "secret": secret, "new": new},
        section="webhooks",
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@manager_required
def webhook_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method != "POST":
        return _form_page(request, WebhookForm(actor=user, webhook=None), None)
    form = WebhookForm(request.POST, actor=user, webhook=None)
    if not form.is_valid():
        return _form_page(request, form, None, 400)
    d = form.cleaned_data
    try:
        hook, secret = webhooks.webhook_create(
            actor=user,
            organization=_organization(user, d["organization"]),
            url=d["url"],
            events=list(d["events"]),
            description=d["description"],
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _form_page(request, form, None, _status(exc))
    return _secret_page(request, _load(user, hook.pk), secret, new=True)


@manager_required
def webhook_edit(request: HttpRequest, webhook_id: int) -> HttpResponse:
    user = _user(request)
    hook = _load(user, webhook_id)
    if request.method != "POST":
        initial = {
            "url": hook.url,
            "events": list(hook.events),
            "description": hook.description,
            "is_active": hook.is_active,
        }
        return _form_page(request, WebhookForm(initial=initial, actor=user, webhook=hook), hook)
    form = WebhookForm(request.POST, actor=user, webhook=hook)
    if not form.is_valid():
        return _form_page(request, form, hook, 400)
    d = form.cleaned_data
    try:
        webhooks.webhook_update(
            actor=user,
            webhook=hook,
            url=d["url"],
            events=list(d["events"]),
            description=d["description"],
            is_active=d["is_active"],
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _form_page(request, form, hook, _status(exc))
    messages.success(request, "Webhook saved.")
    return redirect("web:config-webhooks")


@manager_required
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    user = _user(request)
    hook = _load(user, webhook_id)
    error, status = "", 200
    if request.method == "POST":
        try:
            webhooks.webhook_delete(actor=user, webhook=hook)
        except DomainError as exc:
            error, status = exc.detail, _status(exc)
        else:
            messages.success(request, f"Webhook to {webhooks.origin_of(hook.url)} deleted.")
            return redirect("web:config-webhooks")
    return render_config(
        request,
        "web/config/webhooks/delete.html",
        {"hook": hook, "error": error},
        section="webhooks",
        status=status,
    )


@never_cache
@manager_required
def webhook_rotate(request: HttpRequest, webhook_id: int) -> HttpResponse:
    """GET asks for confirmation; POST makes the new secret and shows it, once."""
    user = _user(request)
    hook = _load(user, webhook_id)
    error, status = "", 200
    if request.method == "POST":
        try:
            secret = webhooks.webhook_rotate_secret(actor=user, webhook=hook)
        except DomainError as exc:
            error, status = exc.detail, _status(exc)
        else:
            return _secret_page(request, _load(user, hook.pk), secret, new=False)
    return render_config(
        request,
        "web/config/webhooks/rotate.html",
        {"hook": hook, "error": error, "overlap_hours": _hours(webhooks.ROTATION_OVERLAP)},
        section="webhooks",
        status=status,
    )


def _hours(delta: Any) -> int:
    return int(delta.total_seconds() // 3600)


@require_POST
@manager_required
def webhook_enable(request: HttpRequest, webhook_id: int) -> HttpResponse:
    user = _user(request)
    hook = _load(user, webhook_id)
    try:
        webhooks.webhook_enable(actor=user, webhook=hook)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Webhook to {webhooks.origin_of(hook.url)} is on again.")
    return redirect("web:config-webhooks")


class DeliveryFilter(forms.Form):
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *DeliveryStatus.choices],
    )


@manager_required
def webhook_deliveries(request: HttpRequest, webhook_id: int) -> HttpResponse:
    user = _user(request)
    hook = _load(user, webhook_id)
    filters = DeliveryFilter(request.GET)
    status = filters.cleaned_data["status"] if filters.is_valid() else ""
    cursor = request.GET.get("cursor") or None
    try:
        page = queries.delivery_list(
            webhook=hook, status=status or None, cursor=cursor, limit=PAGE_SIZE
        )
    except ValidationFailed:  # a cursor from elsewhere: start at the newest
        page = queries.delivery_list(webhook=hook, status=status or None, limit=PAGE_SIZE)
        cursor = None
    query = urlencode({"status": status}) if status else ""
    return render_config(
        request,
        "web/config/webhooks/deliveries.html",
        {
            "hook": hook,
            "page": page,
            "filters": filters,
            "status": status,
            "query": query,
            "first_page": reverse("web:config-webhook-deliveries", args=[hook.pk])
            + (f"?{query}" if query else ""),
            "paged": cursor is not None,
        },
        section="webhooks",
    )


@require_POST
@manager_required
def delivery_replay(request: HttpRequest, webhook_id: int, delivery_id: uuid.UUID) -> HttpResponse:
    user = _user(request)
    hook = _load(user, webhook_id)
    try:
        delivery = queries.delivery_get(webhook=hook, delivery_id=delivery_id)
    except NotFound:
        raise Http404("No such delivery.") from None
    try:
        webhooks.delivery_replay(actor=user, delivery=delivery)
    except DomainError as exc:
        messages.error(request, f"Not replayed: {exc.errors[0].message if exc.errors else exc}.")
    else:
        messages.success(
            request, f"Delivery {delivery.delivery_id} queued again; it goes out within a minute."
        )
    back = reverse("web:config-webhook-deliveries", args=[hook.pk])
    status = request.POST.get("status", "")
    if status in DeliveryStatus.values:
        back += "?" + urlencode({"status": status})
    return redirect(back)


urlpatterns: list[URLPattern] = [
    path("webhooks/", webhook_list, name="config-webhooks"),
    path("webhooks/new/", webhook_new, name="config-webhook-new"),
    path("webhooks/<int:webhook_id>/", webhook_edit, name="config-webhook-edit"),
    path("webhooks/<int:webhook_id>/delete/", webhook_delete, name="config-webhook-delete"),
    path("webhooks/<int:webhook_id>/rotate/", webhook_rotate, name="config-webhook-rotate"),
    path("webhooks/<int:webhook_id>/enable/", webhook_enable, name="config-webhook-enable"),
    path(
        "webhooks/<int:webhook_id>/deliveries/",
        webhook_deliveries,
        name="config-webhook-deliveries",
    ),
    path(
        "webhooks/<int:webhook_id>/deliveries/<uuid:delivery_id>/replay/",
        delivery_replay,
        name="config-webhook-replay",
    ),
]
