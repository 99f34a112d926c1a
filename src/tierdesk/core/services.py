"""The only code that changes organizations, people and tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import models, transaction

from tierdesk.core import clock, lookups, policy
from tierdesk.core.audit import AuditAction, record, record_and_emit
from tierdesk.core.errors import FieldIssue, NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.models import STAFF_ROLES, ApiToken, Organization, Role, User
from tierdesk.core.unset import UNSET

TOKEN_PREFIX = "td_"


def full_clean_or_raise(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Run model validation and turn Django's errors into a ValidationFailed naming fields."""
    try:
        instance.full_clean(exclude=list(exclude), validate_constraints=True)
    except DjangoValidationError as exc:
        issues = [
            FieldIssue(field if field != "__all__" else "non_field", str(message))
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
        raise ValidationFailed(
            "; ".join(f"{i.field}: {i.message}" for i in issues), errors=issues
        ) from None


def apply_changes(
    instance: models.Model,
    given: dict[str, Any],
    *,
    exclude: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """Set the fields of ``given`` that differ (UNSET ones are skipped), validate the row and
    save only those fields. Returns ``{field: {"old": …, "new": …}}`` for the audit and the
    event, related rows shown by their code or slug; empty when nothing changed."""

    def shown(value: Any) -> Any:
        if isinstance(value, models.Model):
            return getattr(value, "code", None) or getattr(value, "slug", None) or value.pk
        return value

    changes: dict[str, dict[str, Any]] = {}
    for field, value in given.items():
        if value is UNSET or getattr(instance, field) == value:
            continue
        changes[field] = {"old": shown(getattr(instance, field)), "new": shown(value)}
        setattr(instance, field, value)
    if changes:
        full_clean_or_raise(instance, exclude=exclude)
        instance.save(update_fields=list(changes))
    return changes


def _normalize_domains(domains: Iterable[str]) -> list[str]:
    result: list[str] = []
    for raw in domains:
        domain = raw.strip().lower()
        labels = domain.split(".")
        if (
            len(domain) > 253
            or len(labels) < 2
            or not all(
                0 < len(label) <= 63
                and label.replace("-", "").isalnum()
                and label.isascii()
                and not label.startswith("-")
                and not label.endswith("-")
                for label in labels
            )
        ):
            raise ValidationFailed.for_field("email_domains", f"{raw!r} is not a domain name")
        if domain not in result:
            result.append(domain)
    return result


@transaction.atomic
def organization_create(
    *,
    actor: User | None,
    code: str,
    name: str,
    time_zone: str = "UTC",
    email_domains: Iterable[str] = (),
) -> Organization:
    """Create a client organization. ``actor`` None means the system (CLI as operator)."""
    if actor is not None:
        policy.require(actor, "organization.create")
    org = Organization(
        code=code.strip().upper(),
        name=name.strip(),
        time_zone=time_zone,
        email_domains=_normalize_domains(email_domains),
        created_at=clock.now(),
    )
    full_clean_or_raise(org, exclude=["last_ticket_number"])
    if Organization.objects.filter(code=org.code).exists():
        raise ValidationFailed.for_field("code", f"an organization with code {org.code} exists")
    org.save()
    if actor is not None and actor.role != Role.ADMIN:
        actor.served_organizations.add(org)
    record_and_emit(
        actor=actor,
        action=AuditAction.ORGANIZATION_CREATED,
        target_type="organization",
        target_id=org.pk,
        organization=org,
        changes={"code": org.code, "name": org.name, "time_zone": org.time_zone},
        payload={"code": org.code, "name": org.name},
    )
    return org


@transaction.atomic
def organization_update(
    *,
    actor: User,
    organization: Organization,
    name: str = UNSET,
    time_zone: str = UNSET,
    email_domains: Iterable[str] = UNSET,
    is_active: bool = UNSET,
) -> Organization:
    """Change an organization's details (admins). Its code is permanent: ticket numbers
    carry it. Returns it unchanged when nothing differs."""
    policy.require(actor, "organization.update")
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    changes = apply_changes(
        org,
        {
            "name": name if name is UNSET else name.strip(),
            "time_zone": time_zone,
            "email_domains": (
                email_domains if email_domains is UNSET else _normalize_domains(email_domains)
            ),
            "is_active": is_active,
        },
        exclude=["last_ticket_number", "code"],
    )
    if not changes:
        return org
    record_and_emit(
        actor=actor,
        action=AuditAction.ORGANIZATION_UPDATED,
        target_type="organization",
        target_id=org.pk,
        organization=org,
        changes=changes,
        payload={"code": org.code, "changes": changes},
    )
    return org


def organization_get(*, actor: User | None, code: str) -> Organization:
    """The organization with ``code`` if the actor may see it (None = system), else NotFound."""
    code = code.strip().upper()
    org = (
        Organization.objects.filter(code=code).first()
        if actor is None
        else policy.visible_organization(actor, code=code)
    )
    if org is None:
        raise NotFound(f"No organization {code!r}.")
    return org


def _check_password(password: str | None, user: User) -> None:
    if not password:
        return
    from django.contrib.auth.password_validation import validate_password

    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed.for_field("password", " ".join(exc.messages)) from None


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    email: str,
    full_name: str,
    role: str,
    organization: Organization | None = None,
    served_organizations: Iterable[Organization] = (),
    time_zone: str = "UTC",
    password: str | None = None,
    sees_organization_tickets: bool = False,
) -> User:
    """Create a person. Requesters need an organization the actor can see; staff need none
    and may be given the organizations they serve. ``actor`` None means the system."""
    if role not in Role.values:
        raise ValidationFailed.for_field("role", f"one of {', '.join(Role.values)}")
    if actor is not None:
        policy.require(
            actor, "user.create_staff" if role in STAFF_ROLES else "user.create_requester"
        )
    email = email.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed.for_field("email", "not a valid email address") from None
    if role == Role.REQUESTER:
        if organization is None:
            raise ValidationFailed.for_field("organization", "a requester needs an organization")
        if actor is not None and not policy.can_see_organization(actor, organization.pk):
            raise ValidationFailed.for_field("organization", "no such organization")
    elif organization is not None:
        raise ValidationFailed.for_field("organization", "staff do not belong to a client")
    served = list(served_organizations)
    if role == Role.REQUESTER and served:
        raise ValidationFailed.for_field("served_organizations", "requesters serve no one")
    if User.objects.filter(email=email).exists():
        raise ValidationFailed.for_field("email", "a user with this email exists")
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=role,
        organization=organization,
        time_zone=time_zone,
        sees_organization_tickets=sees_organization_tickets and role == Role.REQUESTER,
        date_joined=clock.now(),
    )
    full_clean_or_raise(user, exclude=["password", "last_login"])
    _check_password(password, user)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    if served:
        user.served_organizations.set(served)
    record_and_emit(
        actor=actor,
        action=AuditAction.USER_CREATED,
        target_type="user",
        target_id=user.pk,
        organization=organization,
        changes={
            "email": user.email,
            "role": role,
            "served_organizations": [o.code for o in served],
        },
        payload={"email": user.email, "role": role},
    )
    return user


@transaction.atomic
def user_update(
    *,
    actor: User,
    user: User,
    full_name: str = UNSET,
    time_zone: str = UNSET,
    is_active: bool = UNSET,
    sees_organization_tickets: bool = UNSET,
    email: str = UNSET,
    role: str = UNSET,
    organization: Organization = UNSET,
) -> User:
    """Change a person's profile. Everyone may change their own name and time zone; admins
    anyone's; managers those of requesters in organizations they serve. Deactivating ends
    every API token's use at once; nobody deactivates themself or changes their own role
    (no lock-out). ``role`` moves staff between agent, manager and admin (admins only); a
    requester stays a requester. ``organization`` moves a requester to another client the
    actor sees."""
    target = User.objects.select_for_update().get(pk=user.pk)
    own_profile_only = {"full_name", "time_zone"}
    given: dict[str, Any] = {
        name: value
        for name, value in {
            "full_name": full_name,
            "time_zone": time_zone,
            "is_active": is_active,
            "sees_organization_tickets": sees_organization_tickets,
            "email": email,
            "role": role,
            "organization": organization,
        }.items()
        if value is not UNSET
    }
    may = actor.role == Role.ADMIN or (
        actor.role == Role.MANAGER
        and target.role == Role.REQUESTER
        and target.organization_id is not None
        and policy.can_see_organization(actor, target.organization_id)
    )
    if not may and not (target.pk == actor.pk and set(given) <= own_profile_only):
        raise PermissionDenied("You may not change this person.")
    if target.pk == actor.pk and given.get("is_active") is False:
        raise ValidationFailed.for_field("is_active", "you cannot deactivate yourself")
    if "sees_organization_tickets" in given and target.role != Role.REQUESTER:
        raise ValidationFailed.for_field("sees_organization_tickets", "requesters only")
    if "full_name" in given:
        given["full_name"] = given["full_name"].strip()
    if "email" in given:
        given["email"] = _checked_email(given["email"], exclude=target)
    if "role" in given and given["role"] != target.role:
        _check_role_change(actor, target, given["role"])
    if "organization" in given:
        _check_organization_move(actor, target, given["organization"])
    changes = apply_changes(target, given, exclude=["password", "last_login"])
    if not changes:
        return target
    record_and_emit(
        actor=actor,
        action=AuditAction.USER_UPDATED,
        target_type="user",
        target_id=target.pk,
        organization=target.organization,
        changes=changes,
        payload={"email": target.email, "changes": changes},
    )
    return target


def _checked_email(raw: str, *, exclude: User | None = None) -> str:
    """``raw`` normalized (trimmed, lower case) if it is a valid address nobody else has."""
    email = raw.strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed.for_field("email", "not a valid email address") from None
    others = User.objects.filter(email=email)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        raise ValidationFailed.for_field("email", "a user with this email exists")
    return email


def _check_role_change(actor: User, target: User, role: str) -> None:
    """Staff move between agent, manager and admin (admins decide); a requester is not made
    staff nor staff a requester (their organization and history differ: create a new
    account). Nobody changes their own role: an admin demoting themself could leave the
    desk without anyone able to undo it."""
    if role not in Role.values:
        raise ValidationFailed.for_field("role", f"one of {', '.join(Role.values)}")
    policy.require(actor, "user.create_staff", "Only admins change roles.")
    if target.pk == actor.pk:
        raise ValidationFailed.for_field("role", "you cannot change your own role")
    if (role in STAFF_ROLES) != (target.role in STAFF_ROLES):
        raise ValidationFailed.for_field(
            "role", "a requester cannot become staff or staff a requester: create a new person"
        )


def _check_organization_move(actor: User, target: User, organization: Organization) -> None:
    if target.role != Role.REQUESTER:
        raise ValidationFailed.for_field("organization", "staff do not belong to a client")
    if not policy.can_see_organization(actor, organization.pk):
        raise ValidationFailed.for_field("organization", "no such organization")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def token_create(*, actor: User | None, user: User, name: str) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; return the row and the token, which is not stored
    and cannot be shown again. Only the user themself (or the system) may create one."""
    if actor is not None and actor.pk != user.pk:
        raise NotFound("No such user.")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed.for_field("name", "1 to 100 characters")
    if not user.is_active:
        raise ValidationFailed.for_field("user", "the user is deactivated")
    secret = secrets.token_urlsafe(32)
    token = f"{TOKEN_PREFIX}{secret}"
    row = ApiToken.objects.create(
        user=user, name=name, prefix=token[:10], digest=_digest(token), created_at=clock.now()
    )
    record(
        actor=actor or user,
        action=AuditAction.TOKEN_CREATED,
        target_type="api_token",
        target_id=row.pk,
        changes={"name": name, "prefix": row.prefix},
    )
    return row, token


@transaction.atomic
def token_revoke(*, actor: User, token_id: int) -> ApiToken:
    """Revoke one of the actor's own tokens (admins: anyone's). Idempotent."""
    qs = ApiToken.objects.select_for_update()
    if actor.role != Role.ADMIN:
        qs = qs.filter(user=actor)
    row = qs.filter(pk=token_id).first()
    if row is None:
        raise NotFound("No such token.")
    if row.revoked_at is not None:
        return row
    row.revoked_at = clock.now()
    row.save(update_fields=["revoked_at"])
    record(
        actor=actor,
        action=AuditAction.TOKEN_REVOKED,
        target_type="api_token",
        target_id=row.pk,
        changes={"revoked_at": row.revoked_at.isoformat()},
    )
    return row


def token_authenticate(token: str) -> User | None:
    """The active user owning an unrevoked token, else None. Records last use at most once a
    minute so that reads do not turn into writes."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    found = lookups.token_owner(_digest(token))
    if found is None:
        return None
    user, token_id, last_used_at = found
    now = clock.now()
    if last_used_at is None or (now - last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
    return user
