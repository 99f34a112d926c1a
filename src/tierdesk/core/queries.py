"""Reads of organizations, people and tokens, scoped to the actor."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from tierdesk.core import policy
from tierdesk.core.errors import NotFound
from tierdesk.core.models import STAFF_ROLES, ApiToken, Organization, User


def organization_list(*, actor: User) -> QuerySet[Organization]:
    return policy.visible_organizations(actor).order_by("code")


def user_scope(actor: User) -> QuerySet[User]:
    """People the actor may see: staff see the MSP's staff and the requesters of the
    organizations they serve (admins everyone); requesters only themselves."""
    if not actor.is_active:
        return User.objects.none()
    if actor.role not in STAFF_ROLES:
        return User.objects.filter(pk=actor.pk)
    if actor.role == "admin":
        return User.objects.all()
    return User.objects.filter(
        Q(organization__isnull=True) | Q(organization__in=policy.visible_organizations(actor))
    )


def user_list(
    *, actor: User, role: str | None = None, organization: str | None = None
) -> QuerySet[User]:
    qs = user_scope(actor).select_related("organization", "agent_profile__tier")
    if role:
        qs = qs.filter(role=role)
    if organization:
        qs = qs.filter(organization__code=organization.upper())
    return qs.order_by("email")


def user_get(*, actor: User, user_id: int) -> User:
    user = user_scope(actor).select_related("organization").filter(pk=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    return user


def token_list(*, actor: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=actor).order_by("-created_at")


def staff_for_organization(organization: Organization) -> list[User]:
    """Active staff who may work ``organization``'s tickets: admins, and the agents and
    managers who serve it; by name."""
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(role="admin") | Q(role__in=STAFF_ROLES, served_organizations=organization))
        .distinct()
        .order_by("full_name", "email")
    )


def colleagues(actor: User) -> list[User]:
    """Active staff who share at least one organization with ``actor`` (admins: all staff),
    by name: whom a ticket could be handed to. Whether one may take a given ticket is the
    ticket service's call."""
    qs = User.objects.filter(is_active=True, role__in=STAFF_ROLES)
    if actor.role != "admin":
        qs = qs.filter(
            Q(role="admin") | Q(served_organizations__in=policy.visible_organizations(actor))
        )
    return list(qs.distinct().order_by("full_name", "email"))


def organization_overview(*, actor: User, open_statuses: Iterable[str]) -> list[Organization]:
    """The organizations the actor sees, by code, each annotated with ``requester_count``
    and ``open_ticket_count`` (tickets in ``open_statuses``): one query, the counts as
    correlated subqueries (a join of people and tickets would multiply the rows)."""
    tickets = Organization._meta.get_field("tickets").related_model  # no import: core is first
    requesters = (
        User.objects.filter(organization=OuterRef("pk"), role="requester")
        .order_by()
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")
    )
    open_tickets = (
        tickets._default_manager.filter(organization=OuterRef("pk"), status__in=list(open_statuses))
        .order_by()
        .values("organization")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return list(
        organization_list(actor=actor).annotate(
            requester_count=Coalesce(Subquery(requesters), 0),
            open_ticket_count=Coalesce(Subquery(open_tickets), 0),
        )
    )


def user_search(
    *,
    actor: User,
    text: str | None = None,
    organization: Organization | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> QuerySet[User]:
    """People the actor may see matching every given filter (``text`` in the name or the
    email, any case), by name then email; their organization and tier preloaded."""
    qs = user_scope(actor).select_related("organization", "agent_profile__tier")
    if text:
        qs = qs.filter(Q(full_name__icontains=text) | Q(email__icontains=text))
    if organization is not None:
        qs = qs.filter(organization=organization)
    if role:
        qs = qs.filter(role=role)
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs.order_by("full_name", "email", "pk")
