"""Reads of directories (admins) and of runs (staff, over the organizations they serve).
A directory or run of an organization the actor cannot see reads as missing."""

from __future__ import annotations

from django.db.models import QuerySet

from tierdesk.automation.models import ActionRun, Directory
from tierdesk.core import policy
from tierdesk.core.errors import NotFound, PermissionDenied
from tierdesk.core.models import User


def directory_list(*, actor: User) -> QuerySet[Directory]:
    policy.require(actor, "directory.manage", "Only admins manage directories.")
    return Directory.objects.select_related("organization").order_by("pk")


def directory_get(*, actor: User, directory_id: int) -> Directory:
    found = directory_list(actor=actor).filter(pk=directory_id).first()
    if found is None:
        raise NotFound("No such directory.")
    return found


def run_list(
    *, actor: User, status: str | None = None, organization_id: int | None = None
) -> QuerySet[ActionRun]:
    """Runs newest first, of the organizations ``actor`` serves (staff only)."""
    if not actor.is_staff_member:
        raise PermissionDenied("Runs are for staff.")
    found = ActionRun.objects.filter(organization__in=policy.visible_organizations(actor))
    if status:
        found = found.filter(status=status)
    if organization_id is not None:
        found = found.filter(organization_id=organization_id)
    return found.select_related("organization", "requested_by", "decided_by", "ticket").order_by(
        "-pk"
    )


def run_get(*, actor: User, run_id: int) -> ActionRun:
    if not actor.is_staff_member:
        raise NotFound("No such run.")
    found = run_list(actor=actor).filter(pk=run_id).prefetch_related("steps").first()
    if found is None:
        raise NotFound("No such run.")
    return found
