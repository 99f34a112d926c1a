"""What the configuration pages for a client organization's server connections (its IMAP
mailboxes, its directory) share: a form whose stored password is never put back into a
page and is kept when left empty, and the organization chosen when one is added."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.http import HttpRequest

from tierdesk.core import policy
from tierdesk.core.errors import DomainError, NotFound, ValidationFailed
from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_get
from tierdesk.web.forms import DomainErrors, choice_field

PASSWORD_HELP = "Leave empty to keep the stored password; it is never shown again."


def user_of(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def status_for(exc: DomainError) -> int:
    """The answer's status for a refusal the form shows (a 2xx/3xx-less domain error: 422)."""
    return exc.status if exc.status >= 400 else 422


def organization_for(user: User, code: str) -> Organization:
    """The organization ``code`` names, as ``user`` sees it; refused beside the field."""
    try:
        return organization_get(actor=user, code=code)
    except NotFound:
        raise ValidationFailed.for_field("organization", "no such organization") from None


def password_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class ConnectionForm(DomainErrors, forms.Form):
    """A connection's settings. Subclasses declare ``organization``, ``password`` and the
    ``FIELDS`` the service takes. Adding one: the organizations the user may choose;
    changing one: no organization, and an empty password keeps the stored one."""

    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, actor: User, editing: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not editing:
            orgs = sorted(
                (o.code, f"{o.code} — {o.name}") for o in policy.visible_organizations(actor)
            )
            choice_field(self, "organization").choices = [("", "Choose…"), *orgs]
        else:
            del self.fields["organization"]
            self.fields["password"].required = False
            self.fields["password"].help_text = PASSWORD_HELP

    def values(self) -> dict[str, Any]:
        """The service's keyword arguments; the password only when one was typed."""
        d = self.cleaned_data
        values = {name: d[name] for name in self.FIELDS}
        if d["password"]:
            values["password"] = d["password"]
        return values

    @classmethod
    def initial_of(cls, instance: object) -> dict[str, Any]:
        return {name: getattr(instance, name) for name in cls.FIELDS}
