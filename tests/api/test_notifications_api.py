"""/api/v1/me/notification-preferences and /api/v1/organizations/{code}/notification-templates."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

from tests.conftest import Api, Cast, problem_fields
from tierdesk.api.notifications import KindName, TemplateKindName
from tierdesk.channels import notify
from tierdesk.channels.models import NotificationKind, NotificationPreference, NotificationTemplate
from tierdesk.core.models import AuditEntry, User

ApiAs = Callable[[User | None], Api]
PREFS = "/me/notification-preferences"
ACME = "/organizations/ACME/notification-templates"
GOOD = {"subject": "[{{ ticket.key }}] got it", "text": "Hi {{ recipient.name }}"}


def test_a_requester_reads_and_switches_their_own_kinds(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.alice)
    r = api.get(PREFS)
    assert r.status_code == 200
    assert [(p["kind"], p["email"]) for p in r.json()] == [
        ("ticket_created", True), ("ticket_replied", True), ("ticket_resolved", True),
    ]  # fmt: skip
    r = api.patch(PREFS, {"email": {"ticket_replied": False}})
    assert r.status_code == 200, r.content
    assert {p["kind"]: p["email"] for p in r.json()}["ticket_replied"] is False
    assert NotificationPreference.objects.get(user=cast.alice).email is False
    # Staff-only kinds are refused to a requester; unknown kinds to everyone.
    r = api.patch(PREFS, {"email": {"sla_breached": False}})
    assert r.status_code == 422
    assert problem_fields(r) == ["sla_breached"]
    assert api.patch(PREFS, {"email": {"nope": False}}).status_code == 422
    assert api.patch(PREFS, {"email": {"ticket_created": "maybe"}}).status_code == 422
    assert NotificationPreference.objects.filter(user=cast.alice).count() == 1


def test_staff_see_their_own_kinds(cast: Cast, api_as: ApiAs) -> None:
    kinds = [p["kind"] for p in api_as(cast.lena).get(PREFS).json()]
    assert kinds == ["ticket_replied", "ticket_escalated", "sla_warning", "sla_breached",
                     "approval_needed"]  # fmt: skip
    assert api_as(None).get(PREFS).status_code == 401
    # Requesters never get approvals, and only admins security alerts.
    assert api_as(cast.alice).patch(PREFS, {"email": {"approval_needed": False}}).status_code == 422
    assert (
        api_as(cast.manager).patch(PREFS, {"email": {"security_alert": False}}).status_code == 422
    )
    admin = api_as(cast.admin)
    assert [p["kind"] for p in admin.get(PREFS).json()] == [*kinds, "security_alert"]
    r = admin.patch(PREFS, {"email": {"security_alert": False}})
    assert r.status_code == 200, r.content
    assert {p["kind"]: p["email"] for p in r.json()}["security_alert"] is False
    assert r.json()[-1]["label"] == "A security alert (automation)"


def test_the_apis_kind_names_are_the_models(cast: Cast) -> None:
    assert set(get_args(KindName)) == set(NotificationKind.values)
    assert list(get_args(TemplateKindName)) == list(notify.TEMPLATE_KINDS)


def test_a_manager_sets_reads_and_removes_a_template_of_an_organization_they_serve(
    cast: Cast, api_as: ApiAs
) -> None:
    api = api_as(cast.manager)
    listed = api.get(ACME).json()
    assert len(listed) == 7
    created = next(t for t in listed if t["kind"] == "ticket_created")
    assert created["custom"] is False
    assert "{{ ticket.key }}" in created["subject"]  # the built-in wording, to start from
    r = api.call("PUT", f"{ACME}/ticket_created", GOOD)
    assert r.status_code == 200, r.content
    assert r.json()["custom"] is True
    assert r.json()["html"] == ""
    row = NotificationTemplate.objects.get()
    assert (row.organization_id, row.updated_by_id) == (cast.acme.pk, cast.manager.pk)
    assert AuditEntry.objects.filter(action="notification_template.set").count() == 1
    # An admin may too; the change is audited again.
    r = api_as(cast.admin).call("PUT", f"{ACME}/ticket_created", GOOD | {"html": "<p>x</p>"})
    assert r.status_code == 200
    assert r.json()["html"] == "<p>x</p>"
    assert api.delete(f"{ACME}/ticket_created").status_code == 204
    assert not NotificationTemplate.objects.exists()
    assert AuditEntry.objects.filter(action="notification_template.deleted").count() == 1


def test_security_alerts_keep_tierdesks_own_wording(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    assert "security_alert" not in [t["kind"] for t in api.get(ACME).json()]
    r = api.call("PUT", f"{ACME}/security_alert", GOOD)
    assert r.status_code == 422
    assert api.delete(f"{ACME}/security_alert").status_code == 422
    assert not NotificationTemplate.objects.exists()


def test_a_template_error_is_a_422_naming_the_part(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.manager)
    r = api.call("PUT", f"{ACME}/ticket_replied", GOOD | {"html": "<p>{% if %}</p>"})
    assert r.status_code == 422
    assert problem_fields(r) == ["html"]
    assert "template error" in r.json()["detail"]
    r = api.call("PUT", f"{ACME}/ticket_replied", GOOD | {"text": "{% include 'x.html' %}"})
    assert r.status_code == 422
    assert problem_fields(r) == ["text"]
    assert not NotificationTemplate.objects.exists()


def test_who_may_not_touch_templates(cast: Cast, api_as: ApiAs) -> None:
    # Another tenant's organization is missing, for a manager who does not serve it.
    assert (
        api_as(cast.manager).get("/organizations/GLOBEX/notification-templates").status_code == 404
    )
    r = api_as(cast.manager).call(
        "PUT", "/organizations/GLOBEX/notification-templates/ticket_created", GOOD
    )
    assert r.status_code == 404
    # Agents and requesters see ACME but may not change its templates.
    assert api_as(cast.lena).call("PUT", f"{ACME}/ticket_created", GOOD).status_code == 403
    assert api_as(cast.lena).get(ACME).status_code == 403
    assert api_as(cast.alice).call("PUT", f"{ACME}/ticket_created", GOOD).status_code == 403
    assert api_as(cast.alice).delete(f"{ACME}/ticket_created").status_code == 403
    assert not NotificationTemplate.objects.exists()
