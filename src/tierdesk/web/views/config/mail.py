"""Configuration pages for email in, for admins: the mailboxes (list, add, change, test the
connection) and the quarantine (look, download the raw message, process it again).

The forms check shape; :mod:`tierdesk.channels.mailboxes` checks the rules and the
permission, and its refusals are shown beside the field they name. The password is never
put back into a page: left empty on the edit form, the stored one stays."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from tierdesk.api.mail import raw_response
from tierdesk.channels import imap, inbound, mail_queries, mailboxes
from tierdesk.channels.models import InboundStatus, Mailbox, MailSecurity, UnknownSenders
from tierdesk.core.errors import DomainError, NotFound
from tierdesk.core.models import User
from tierdesk.core.parse import as_id
from tierdesk.web.views.common import admin_required
from tierdesk.web.views.config.connections import (
    ConnectionForm,
    organization_for,
    password_field,
    status_for,
    user_of,
)
from tierdesk.web.views.config.sections import render_config

PAGE_SIZE = 25


class MailboxForm(ConnectionForm):
    FIELDS = mailboxes.EDITABLE  # what the form edits: what an admin may change

    organization = forms.ChoiceField(
        label="Organization", help_text="What arrives here becomes this organization's tickets."
    )
    name = forms.CharField(label="Name", max_length=100)
    address = forms.CharField(
        label="Address",
        max_length=254,
        help_text=(
            "The address people write to, e.g. support@acme.example, without +…. Replies to "
            "notifications come back to support+token@…: the server must deliver those here."
        ),
    )
    host = forms.CharField(label="IMAP server", max_length=253)
    port = forms.IntegerField(
        label="Port", min_value=1, max_value=65535, help_text="993 for TLS, 143 for STARTTLS."
    )
    security = forms.ChoiceField(label="Security", choices=MailSecurity.choices)
    username = forms.CharField(label="User name", max_length=200)
    password = password_field("Password")
    folder = forms.CharField(
        label="Folder", max_length=200, initial="INBOX", help_text="Where new mail arrives."
    )
    ca_certificate = forms.CharField(
        label="CA certificate",
        required=False,
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=(
            "Only for a server whose certificate comes from your own CA: paste the CA's PEM "
            "(-----BEGIN CERTIFICATE----- …). Empty: the public CAs."
        ),
    )
    unknown_senders = forms.ChoiceField(
        label="Mail from unknown senders", choices=UnknownSenders.choices
    )
    is_active = forms.BooleanField(
        label="Active (the worker polls it)", required=False, initial=True
    )


def _load(user: User, mailbox_id: int) -> Mailbox:
    try:
        return mail_queries.mailbox_get(actor=user, mailbox_id=mailbox_id)
    except NotFound:
        raise Http404("No such mailbox.") from None


@admin_required
def mailbox_list(request: HttpRequest) -> HttpResponse:
    return render_config(
        request,
        "web/config/mail/mailboxes.html",
        {"mailboxes": list(mail_queries.mailbox_list(actor=user_of(request)))},
        section="mailboxes",
    )


def _page(
    request: HttpRequest,
    form: MailboxForm,
    box: Mailbox | None,
    status: int = 200,
    test: dict[str, Any] | None = None,
) -> HttpResponse:
    return render_config(
        request,
        "web/config/mail/mailbox_form.html",
        {"form": form, "mailbox": box, "test": test},
        section="mailboxes",
        status=status,
    )


@admin_required
def mailbox_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if request.method != "POST":
        return _page(request, MailboxForm(actor=user, editing=False), None)
    form = MailboxForm(request.POST, actor=user, editing=False)
    if not form.is_valid():
        return _page(request, form, None, 400)
    try:
        box = mailboxes.mailbox_create(
            actor=user,
            organization=organization_for(user, form.cleaned_data["organization"]),
            **form.values(),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _page(request, form, None, status_for(exc))
    messages.success(request, f"Mailbox {box.address} added: test its connection below.")
    return redirect("web:config-mailbox-edit", mailbox_id=box.pk)


@admin_required
def mailbox_edit(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    user = user_of(request)
    box = _load(user, mailbox_id)
    if request.method != "POST":
        return _page(
            request, MailboxForm(initial=MailboxForm.initial_of(box), actor=user, editing=True), box
        )
    form = MailboxForm(request.POST, actor=user, editing=True)
    if not form.is_valid():
        return _page(request, form, box, 400)
    try:
        mailboxes.mailbox_update(actor=user, mailbox=box, **form.values())
    except DomainError as exc:
        form.add_domain_error(exc)
        # the service may have changed the object before it refused: show the stored one
        return _page(request, form, _load(user, mailbox_id), status_for(exc))
    messages.success(request, f"Mailbox {box.address} saved.")
    return redirect("web:config-mailbox-edit", mailbox_id=box.pk)


@admin_required
@require_POST
def mailbox_test(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Log in with what is stored and open the folder; the page shows what was found or
    the reason it failed."""
    user = user_of(request)
    box = _load(user, mailbox_id)
    try:
        test = {"ok": True, "detail": mailboxes.test_connection(actor=user, mailbox=box)}
    except imap.MailError as exc:
        test = {"ok": False, "detail": str(exc)}
    form = MailboxForm(initial=MailboxForm.initial_of(box), actor=user, editing=True)
    return _page(request, form, box, test=test)


@admin_required
def quarantine(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    found = mail_queries.inbound_list(actor=user, status=InboundStatus.QUARANTINED)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    retried = None
    if (retried_id := as_id(request.GET.get("retried", ""))) is not None:
        try:
            retried = mail_queries.inbound_get(actor=user, message_id=retried_id)
        except NotFound:
            retried = None
    return render_config(
        request,
        "web/config/mail/quarantine.html",
        {"page": page, "retried": retried},
        section="quarantine",
    )


@admin_required
@require_POST
def quarantine_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    """Process the message again, then show the quarantine with its outcome on top."""
    user = user_of(request)
    try:
        message = mail_queries.inbound_get(actor=user, message_id=message_id)
        inbound.retry(actor=user, message_id=message.pk)
    except NotFound:
        messages.error(request, "That message is no longer in the quarantine.")
        return redirect("web:config-quarantine")
    return redirect(reverse("web:config-quarantine") + f"?retried={message.pk}")


@admin_required
def quarantine_raw(request: HttpRequest, message_id: int) -> HttpResponse:
    try:
        message = mail_queries.inbound_get(actor=user_of(request), message_id=message_id)
    except NotFound:
        raise Http404("No such message.") from None
    return raw_response(message)


urlpatterns: list[URLPattern] = [
    path("mailboxes/", mailbox_list, name="config-mailboxes"),
    path("mailboxes/new/", mailbox_new, name="config-mailbox-new"),
    path("mailboxes/<int:mailbox_id>/", mailbox_edit, name="config-mailbox-edit"),
    path("mailboxes/<int:mailbox_id>/test/", mailbox_test, name="config-mailbox-test"),
    path("quarantine/", quarantine, name="config-quarantine"),
    path("quarantine/<int:message_id>/retry/", quarantine_retry, name="config-quarantine-retry"),
    path("quarantine/<int:message_id>/raw/", quarantine_raw, name="config-quarantine-raw"),
]
