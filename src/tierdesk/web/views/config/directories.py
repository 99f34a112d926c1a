"""Configuration pages for the client organizations' directories (LDAP / Active Directory),
for admins: list, add, change, delete, and test the connection.

The forms check shape; :mod:`tierdesk.automation.services` checks the rules and the
permission, and its refusals are shown beside the field they name. The service account's
password is never put back into a page: left empty on the edit form, the stored one stays.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from tierdesk.automation import ldap, queries, services
from tierdesk.automation.models import Directory, DirectoryKind, DirectorySecurity
from tierdesk.core.errors import DomainError, NotFound
from tierdesk.core.models import User
from tierdesk.web.views.common import admin_required
from tierdesk.web.views.config.connections import (
    ConnectionForm,
    organization_for,
    password_field,
    status_for,
    user_of,
)
from tierdesk.web.views.config.sections import render_config

DN_LIST_MAX_CHARS = 30_000  # 50 names of at most 500 characters, and the line breaks


class DnListField(forms.Field):
    """Distinguished names, one a line, as a list (blank lines dropped). Whether each is a
    name, and where it lies, is the service's to say."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        text = str(value or "")
        if len(text) > DN_LIST_MAX_CHARS:
            raise forms.ValidationError(f"At most {DN_LIST_MAX_CHARS:,} characters.")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value


class DirectoryForm(ConnectionForm):
    FIELDS = services.EDITABLE  # what the form edits: what an admin may change

    organization = forms.ChoiceField(
        label="Organization",
        help_text="The client organization whose accounts this directory holds (one each).",
    )
    kind = forms.ChoiceField(
        label="Kind",
        choices=DirectoryKind.choices,
        help_text=(
            "Active Directory: people are found by their sAMAccountName, and passwords are "
            "set over LDAPS (port 636). OpenLDAP: by uid, with the ppolicy overlay for "
            "lockouts."
        ),
    )
    host = forms.CharField(
        label="Server",
        max_length=253,
        help_text="A host name or an IP address alone: no ldap://, no port.",
    )
    port = forms.IntegerField(
        label="Port",
        min_value=1,
        max_value=65535,
        initial=636,
        help_text="636 for LDAPS, 389 for StartTLS, as a rule.",
    )
    security = forms.ChoiceField(
        label="Security",
        choices=DirectorySecurity.choices,
        initial=DirectorySecurity.LDAPS,
        help_text="There is no unencrypted mode: passwords travel in this connection.",
    )
    ca_certificate = forms.CharField(
        label="CA certificate",
        required=False,
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text=(
            "Only for a directory whose certificate comes from your own CA: paste the CA's "
            "PEM (-----BEGIN CERTIFICATE----- …). Empty: the public CAs."
        ),
    )
    bind_dn = forms.CharField(
        label="Service account (bind DN)",
        max_length=500,
        help_text="e.g. CN=svc-tierdesk,OU=Service Accounts,DC=acme,DC=example",
    )
    password = password_field("Service account password")
    base_dn = forms.CharField(
        label="Base DN",
        max_length=500,
        help_text="Where accounts are looked for, e.g. DC=acme,DC=example.",
    )
    login_attribute = forms.CharField(
        label="Login attribute",
        required=False,
        max_length=64,
        help_text="Empty: sAMAccountName for Active Directory, uid for OpenLDAP.",
    )
    email_attribute = forms.CharField(
        label="Email attribute", max_length=64, initial="mail", help_text="Usually mail."
    )
    allowed_ous = DnListField(
        label="Allowed OUs",
        help_text=(
            "One DN a line. Actions only touch accounts below one of these: at least one, "
            "each below the base DN."
        ),
    )
    protected_groups = DnListField(
        label="Protected groups",
        help_text=(
            "One DN a line. Their members, also through nested groups, are never touched "
            "(Domain Admins, for example)."
        ),
    )
    allowed_groups = DnListField(
        label="Allowed groups",
        help_text=(
            "One DN a line. The groups whose membership runbooks may change; never a protected one."
        ),
    )
    new_accounts_ou = forms.CharField(
        label="OU for new accounts",
        required=False,
        max_length=500,
        help_text="Where onboarding creates accounts: one of the allowed OUs. Empty: none.",
    )
    min_password_length = forms.IntegerField(
        label="Minimum password length",
        min_value=8,
        max_value=64,
        initial=12,
        help_text="For passwords people choose themselves.",
    )
    is_active = forms.BooleanField(
        label="Active (runbooks and self-service use it)", required=False, initial=True
    )


def _load(user: User, directory_id: int) -> Directory:
    try:
        return queries.directory_get(actor=user, directory_id=directory_id)
    except NotFound:
        raise Http404("No such directory.") from None


@admin_required
def directory_list(request: HttpRequest) -> HttpResponse:
    return render_config(
        request,
        "web/config/directories/list.html",
        {"directories": list(queries.directory_list(actor=user_of(request)))},
        section="directories",
    )


def _page(
    request: HttpRequest,
    form: DirectoryForm,
    directory: Directory | None,
    status: int = 200,
    test: dict[str, Any] | None = None,
) -> HttpResponse:
    return render_config(
        request,
        "web/config/directories/form.html",
        {"form": form, "directory": directory, "test": test},
        section="directories",
        status=status,
    )


@admin_required
def directory_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if request.method != "POST":
        return _page(request, DirectoryForm(actor=user, editing=False), None)
    form = DirectoryForm(request.POST, actor=user, editing=False)
    if not form.is_valid():
        return _page(request, form, None, 400)
    try:
        directory = services.directory_create(
            actor=user,
            organization=organization_for(user, form.cleaned_data["organization"]),
            **form.values(),
        )
    except DomainError as exc:
        form.add_domain_error(exc)
        return _page(request, form, None, status_for(exc))
    messages.success(
        request,
        f"Directory of {directory.organization.code} added: test its connection below.",
    )
    return redirect("web:config-directory-edit", directory_id=directory.pk)


@admin_required
def directory_edit(request: HttpRequest, directory_id: int) -> HttpResponse:
    user = user_of(request)
    directory = _load(user, directory_id)
    if request.method != "POST":
        form = DirectoryForm(initial=DirectoryForm.initial_of(directory), actor=user, editing=True)
        return _page(request, form, directory)
    form = DirectoryForm(request.POST, actor=user, editing=True)
    if not form.is_valid():
        return _page(request, form, directory, 400)
    try:
        services.directory_update(actor=user, directory=directory, **form.values())
    except DomainError as exc:
        form.add_domain_error(exc)
        return _page(request, form, _load(user, directory_id), status_for(exc))
    messages.success(request, f"Directory of {directory.organization.code} saved.")
    return redirect("web:config-directory-edit", directory_id=directory.pk)


@admin_required
def directory_delete(request: HttpRequest, directory_id: int) -> HttpResponse:
    """GET asks for confirmation; POST deletes."""
    user = user_of(request)
    directory = _load(user, directory_id)
    error, status = "", 200
    if request.method == "POST":
        try:
            services.directory_delete(actor=user, directory=directory)
        except DomainError as exc:
            error, status = exc.detail, status_for(exc)
        else:
            messages.success(request, f"Directory of {directory.organization.code} deleted.")
            return redirect("web:config-directories")
    return render_config(
        request,
        "web/config/directories/delete.html",
        {"directory": directory, "error": error},
        section="directories",
        status=status,
    )


@admin_required
@require_POST
def directory_test(request: HttpRequest, directory_id: int) -> HttpResponse:
    """Connect with what is stored, bind, and look for the base DN, the OUs and the groups;
    the page shows what was found, or what is wrong (``DirectoryError.kind``) and why."""
    user = user_of(request)
    directory = _load(user, directory_id)
    test: dict[str, Any]
    try:
        test = {"ok": True, "lines": services.test_connection(actor=user, directory=directory)}
    except ldap.DirectoryError as exc:
        test = {"ok": False, "kind": exc.kind, "detail": str(exc)}
    form = DirectoryForm(initial=DirectoryForm.initial_of(directory), actor=user, editing=True)
    return _page(request, form, directory, test=test)


urlpatterns: list[URLPattern] = [
    path("directories/", directory_list, name="config-directories"),
    path("directories/new/", directory_new, name="config-directory-new"),
    path("directories/<int:directory_id>/", directory_edit, name="config-directory-edit"),
    path(
        "directories/<int:directory_id>/delete/",
        directory_delete,
        name="config-directory-delete",
    ),
    path("directories/<int:directory_id>/test/", directory_test, name="config-directory-test"),
]
