"""Email notifications: one's own preferences, and an organization's own templates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from pydantic import Field, StringConstraints

from tierdesk.api.common import actor, reject_unknown_query
from tierdesk.api.schemas import ERRORS, NoQuery, StrictInput
from tierdesk.channels import notify
from tierdesk.channels.models import NotificationKind
from tierdesk.core.services import organization_get

router = Router(tags=["notifications"])

KindName = Literal[
    "ticket_created",
    "ticket_replied",
    "ticket_escalated",
    "ticket_resolved",
    "sla_warning",
    "sla_breached",
    "approval_needed",
    "security_alert",
]
# The kinds an organization may word itself (notify.TEMPLATE_KINDS): security alerts are
# always sent in tierdesk's own wording.
TemplateKindName = Literal[
    "ticket_created",
    "ticket_replied",
    "ticket_escalated",
    "ticket_resolved",
    "sla_warning",
    "sla_breached",
    "approval_needed",
]
Code = Annotated[str, StringConstraints(min_length=2, max_length=10)]


# --- preferences ----------------------------------------------------------------------------


class PreferenceOut(Schema):
    kind: KindName
    label: str
    email: bool


class PreferencesPatch(StrictInput):
    email: dict[KindName, bool] = Field(
        ..., description="Kind -> on or off; kinds not named keep their setting."
    )


def _preferences(chosen: dict[str, bool]) -> list[dict[str, Any]]:
    return [
        {"kind": kind, "label": NotificationKind(kind).label, "email": on}
        for kind, on in chosen.items()
    ]


@router.get(
    "/me/notification-preferences",
    response={200: list[PreferenceOut], **ERRORS},
    summary="The notifications you can receive, each on or off",
)
def get_preferences(request: HttpRequest) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    me = actor(request)
    return _preferences(notify.preferences_of(me))


@router.patch(
    "/me/notification-preferences",
    response={200: list[PreferenceOut], **ERRORS},
    summary="Switch your notifications on or off, per kind",
)
def set_preferences(request: HttpRequest, payload: PreferencesPatch) -> list[dict[str, Any]]:
    me = actor(request)
    chosen = notify.notification_preferences_set(
        actor=me, changes={str(k): v for k, v in payload.email.items()}
    )
    return _preferences(chosen)


# --- templates ------------------------------------------------------------------------------


class TemplateOut(Schema):
    kind: TemplateKindName
    label: str
    custom: bool = Field(description="False: the built-in wording (shown) is used.")
    subject: str
    text: str
    html: str = Field(description="Empty: the message is plain text only.")


class TemplateIn(StrictInput):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    text: Annotated[str, StringConstraints(min_length=1, max_length=notify.TEXT_MAX)]
    html: Annotated[str, StringConstraints(max_length=notify.TEXT_MAX)] = ""


def _template_out(kind: str, own: notify.Wording | None) -> dict[str, Any]:
    shown = own or notify.default_wording(kind)
    return {
        "kind": kind,
        "label": NotificationKind(kind).label,
        "custom": own is not None,
        "subject": shown.subject.strip(),
        "text": shown.text,
        "html": shown.html,
    }


@router.get(
    "/organizations/{code}/notification-templates",
    response={200: list[TemplateOut], **ERRORS},
    summary="An organization's notification templates (admins, managers serving it)",
)
def list_templates(request: HttpRequest, code: Code) -> list[dict[str, Any]]:
    reject_unknown_query(request, NoQuery)
    me = actor(request)
    org = organization_get(actor=me, code=code)
    found = notify.templates_of(actor=me, organization=org)
    return [_template_out(kind, own) for kind, own in found.items()]


@router.put(
    "/organizations/{code}/notification-templates/{kind}",
    response={200: TemplateOut, **ERRORS},
    summary="Set an organization's own wording for one kind (checked: a template error is 422)",
)
def set_template(
    request: HttpRequest, code: Code, kind: TemplateKindName, payload: TemplateIn
) -> dict[str, Any]:
    me = actor(request)
    org = organization_get(actor=me, code=code)
    row = notify.notification_template_set(
        actor=me,
        organization=org,
        kind=kind,
        subject=payload.subject,
        text=payload.text,
        html=payload.html,
    )
    return _template_out(kind, notify.Wording(subject=row.subject, text=row.text, html=row.html))


@router.delete(
    "/organizations/{code}/notification-templates/{kind}",
    response={204: None, **ERRORS},
    summary="Go back to the built-in wording for one kind",
)
def delete_template(request: HttpRequest, code: Code, kind: TemplateKindName) -> HttpResponse:
    me = actor(request)
    org = organization_get(actor=me, code=code)
    notify.notification_template_delete(actor=me, organization=org, kind=kind)
    return HttpResponse(status=204)
