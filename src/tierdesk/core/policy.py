"""The access policy: the one place that decides what an actor may see and do.

Seeing is scoped by organization (tenant): admins see every organization, agents and managers
the organizations they serve, requesters their own. Doing is a table of actions to roles,
kept as data so that the UI, the API and the CLI all ask the same question.
"""

from __future__ import annotations

from django.db.models import QuerySet

from tierdesk.core import lookups
from tierdesk.core.errors import PermissionDenied
from tierdesk.core.models import Organization, Role, User

# action -> roles that may perform it (on objects they can see).
PERMISSIONS: dict[str, frozenset[str]] = {
    "organization.create": frozenset({Role.ADMIN}),
    "organization.update": frozenset({Role.ADMIN}),
    "user.create_requester": frozenset({Role.MANAGER, Role.ADMIN}),
    "user.create_staff": frozenset({Role.ADMIN}),
    "catalog.manage": frozenset({Role.ADMIN}),
    # Business calendars: an organization's own (managers of organizations they serve), and
    # MSP-wide ones, which every client's SLAs may use (admins only).
    "calendar.manage": frozenset({Role.MANAGER, Role.ADMIN}),
    "calendar.manage_shared": frozenset({Role.ADMIN}),
    # SLA policies: an organization's contract (managers of organizations they serve), and
    # the MSP-wide default (admins only).
    "sla.manage": frozenset({Role.MANAGER, Role.ADMIN}),
    "sla.manage_shared": frozenset({Role.ADMIN}),
    # Routing rules: an organization's own (managers of organizations they serve), and
    # MSP-wide ones (admins only).
    "routing.manage": frozenset({Role.MANAGER, Role.ADMIN}),
    "routing.manage_shared": frozenset({Role.ADMIN}),
    # Automatic escalation rules: the same split as routing rules.
    "escalation.manage": frozenset({Role.MANAGER, Role.ADMIN}),
    "escalation.manage_shared": frozenset({Role.ADMIN}),
    # Knowledge base: staff write articles (and edit their own until published); managers
    # and admins review, publish, archive and edit any article they can read.
    "kb.write": frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "kb.review": frozenset({Role.MANAGER, Role.ADMIN}),
    # Webhooks: an organization's own (managers of organizations they serve), and MSP-wide
    # ones that receive every organization's events (admins only).
    "webhook.manage": frozenset({Role.MANAGER, Role.ADMIN}),
    "webhook.manage_shared": frozenset({Role.ADMIN}),
    # Mailboxes hold a mail server's credentials: admins only; so is their quarantine.
    "mailbox.manage": frozenset({Role.ADMIN}),
    # Directories hold a client's directory service account: admins only.
    "directory.manage": frozenset({Role.ADMIN}),
    # Notification templates: an organization's own wording (managers of organizations they
    # serve, admins); the built-in ones are files, changed with the code.
    "notification_template.manage": frozenset({Role.MANAGER, Role.ADMIN}),
    "notification_template.manage_shared": frozenset({Role.ADMIN}),
    # Reports and the KPI dashboard: over the organizations the reader serves.
    "report.view": frozenset({Role.MANAGER, Role.ADMIN}),
    "ticket.escalate": frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.create": frozenset({Role.REQUESTER, Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.create_for_others": frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.update": frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.transition": frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.reply": frozenset({Role.REQUESTER, Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.internal_note": frozenset({Role.AGENT, Role.MANAGER, Role.ADMIN}),
    "ticket.attach": frozenset({Role.REQUESTER, Role.AGENT, Role.MANAGER, Role.ADMIN}),
}


def allowed(actor: User, action: str) -> bool:
    return actor.is_active and actor.role in PERMISSIONS[action]


def require(actor: User, action: str, message: str | None = None) -> None:
    """Raise PermissionDenied unless the actor's role may perform ``action``."""
    if not allowed(actor, action):
        raise PermissionDenied(message or f"Your role ({actor.role}) may not do this.")


def require_config_scope(
    actor: User | None, organization: Organization | None, kind: str, what: str
) -> None:
    """Who may change a piece of configuration that is either one organization's or
    MSP-wide: ``{kind}.manage`` (managers, admins) for an organization the actor sees,
    ``{kind}.manage_shared`` (admins) for MSP-wide. ``actor`` None is the system (CLI,
    demo). Another tenant's organization reads as missing, never as forbidden."""
    if actor is None:
        return
    if organization is None:
        require(actor, f"{kind}.manage_shared", f"Only admins manage MSP-wide {what}.")
        return
    require(actor, f"{kind}.manage")
    if not can_see_organization(actor, organization.pk):
        from tierdesk.core.errors import ValidationFailed

        raise ValidationFailed.for_field("organization", "no such organization")


def visible_organizations(actor: User) -> QuerySet[Organization]:
    """The organizations the actor may see at all."""
    if not actor.is_active:
        return Organization.objects.none()
    if actor.role == Role.ADMIN:
        return Organization.objects.all()
    if actor.role in (Role.AGENT, Role.MANAGER):
        return actor.served_organizations.all()
    if actor.organization_id is None:
        return Organization.objects.none()
    return Organization.objects.filter(pk=actor.organization_id)


def visible_organization_ids(actor: User) -> list[int]:
    return list(visible_organizations(actor).values_list("pk", flat=True))


# Organizations a staff member was found to serve, remembered on that user object (as
# Django's ModelBackend keeps ``_perm_cache``): one request loads its actor afresh, so a
# check and the lookup before it share one query. Only "yes" is remembered; role and
# is_active are read from the object on every call. Cleared when the object's own served
# set changes (see forget_served_organizations).
_SEEN_ATTR = "_policy_seen_organizations"


def _seen(actor: User) -> set[int]:
    seen: set[int] | None = actor.__dict__.get(_SEEN_ATTR)
    if seen is None:
        seen = actor.__dict__[_SEEN_ATTR] = set()
    return seen


def forget_served_organizations(actor: User) -> None:
    actor.__dict__.pop(_SEEN_ATTR, None)


def visible_organization(actor: User, *, code: str) -> Organization | None:
    """The organization with ``code`` if the actor may see it, else None: one query (none
    for an actor who sees nothing)."""
    if not actor.is_active:
        return None
    if actor.role == Role.ADMIN:
        org = lookups.organization_by_code(code)
    elif actor.role in (Role.AGENT, Role.MANAGER):
        org = lookups.organization_by_code(code, served_by=actor.pk)
    elif actor.organization_id is None:
        return None
    else:
        org = lookups.organization_by_code(code, only=actor.organization_id)
    if org is not None and actor.role in (Role.AGENT, Role.MANAGER):
        _seen(actor).add(org.pk)
    return org


def can_see_organization(actor: User, organization_id: int) -> bool:
    """Whether the actor may see the (existing) organization ``organization_id``. Answered
    without a query for admins and requesters; staff need their served list (one query,
    unless this user object has already been found to serve it)."""
    if not actor.is_active:
        return False
    if actor.role == Role.ADMIN:
        return True
    if actor.role == Role.REQUESTER:
        return actor.organization_id == organization_id
    seen = _seen(actor)
    if organization_id in seen:
        return True
    if visible_organizations(actor).filter(pk=organization_id).exists():
        seen.add(organization_id)
        return True
    return False
