"""Changes to what the pages keep per person."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tierdesk.core import clock
from tierdesk.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.models import Role, User
from tierdesk.web.models import RateLimitHit, SavedView

MAX_VIEWS = 50
QUERY_MAX = SavedView._meta.get_field("query").max_length or 1000


@transaction.atomic
def saved_view_create(*, actor: User, name: str, queue: str, query: str) -> SavedView:
    """Save ``queue`` with ``query`` (already checked by the caller against the queue's
    filters) as ``name``, for ``actor`` only."""
    name = " ".join(name.split())
    if not 1 <= len(name) <= 60 or not name.isprintable():
        raise ValidationFailed.for_field("name", "1 to 60 printable characters")
    if SavedView.objects.filter(user=actor).count() >= MAX_VIEWS:
        raise ValidationFailed.for_field("name", f"at most {MAX_VIEWS} saved views")
    if len(query) > QUERY_MAX:  # cut short it would be another view: refuse instead
        raise ValidationFailed.for_field("query", "these filters are too long to save")
    try:
        with transaction.atomic():
            return SavedView.objects.create(
                user=actor, name=name, queue=queue, query=query, created_at=clock.now()
            )
    except IntegrityError:
        raise Conflict.for_field("name", "you already have a view with this name") from None


@transaction.atomic
def saved_view_delete(*, actor: User, view_id: int) -> None:
    deleted, _ = SavedView.objects.filter(user=actor, pk=view_id).delete()
    if not deleted:
        raise NotFound("No such view.")


# --- Limits on attempts (reset requests, sign-in codes) ---------------------------------------


class RateScope(StrEnum):
    RESET_ACCOUNT = "reset-account"
    RESET_ADDRESS = "reset-address"
    CODE_ACCOUNT = "code-account"
    CODE_ADDRESS = "code-address"
    SELF_SERVICE_ACCOUNT = "self-service-account"
    SELF_SERVICE_ADDRESS = "self-service-address"
    SELF_SERVICE_CHECK_ADDRESS = "self-service-check-address"


def _rate_key(scope: RateScope, key: str) -> str:
    # Keyed so that the table holds no email or address, nor anything guessable from them.
    return hmac.new(
        settings.SECRET_KEY.encode(), f"{scope}:{key}".encode(), hashlib.sha256
    ).hexdigest()


@transaction.atomic
def rate_limit_take(*, scope: RateScope, key: str, limit: int, window: dt.timedelta) -> bool:
    """Count one attempt for ``key`` in ``scope`` and say whether it is within ``limit``
    attempts per ``window``. An attempt over the limit is not counted, so a refused caller
    is free again once the window has passed its earlier attempts. Attempts of the scope
    older than the window (one window per scope) are deleted on the way, so the table
    stays small."""
    digest = _rate_key(scope, key)
    now = clock.now()
    if connection.vendor == "postgresql":
        # count-then-insert, one caller per key at a time (SQLite's write transactions
        # are one at a time already)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [digest])
    RateLimitHit.objects.filter(scope=scope.value, at__lte=now - window).delete()
    if RateLimitHit.objects.filter(scope=scope.value, key=digest).count() >= limit:
        return False
    RateLimitHit.objects.create(scope=scope.value, key=digest, at=now)
    return True


@transaction.atomic
def rate_limit_release(*, scope: RateScope, key: str) -> None:
    """Take back the latest attempt counted for ``key`` (it turned out not to count)."""
    latest = (
        RateLimitHit.objects.filter(scope=scope.value, key=_rate_key(scope, key))
        .order_by("-at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    if latest is not None:
        RateLimitHit.objects.filter(pk=latest).delete()


@transaction.atomic
def rate_limit_clear(*, scope: RateScope, key: str) -> None:
    RateLimitHit.objects.filter(scope=scope.value, key=_rate_key(scope, key)).delete()


# --- Two-step sign-in (TOTP, with recovery codes) ---------------------------------------------

RECOVERY_CODE_COUNT = 10


def two_step_enabled(user: User) -> bool:
    """Whether ``user`` signs in with a second step (a confirmed authenticator)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@transaction.atomic
def two_step_begin(*, actor: User) -> TOTPDevice:
    """A new, unconfirmed authenticator secret for ``actor`` (staff only), replacing an
    earlier unconfirmed one. It counts only once confirmed with a code from it."""
    if not actor.is_staff_member:
        raise PermissionDenied("Two-step sign-in is for the service desk's staff.")
    if two_step_enabled(actor):
        raise Conflict("Two-step sign-in is already on.")
    TOTPDevice.objects.filter(user=actor, confirmed=False).delete()
    return TOTPDevice.objects.create(user=actor, name="Authenticator app", confirmed=False)


def two_step_pending(*, actor: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=actor, confirmed=False).order_by("-pk").first()


@transaction.atomic
def two_step_confirm(*, actor: User, code: str) -> list[str]:
    """Turn on two-step sign-in with the pending authenticator once ``code`` comes from it.
    Returns new recovery codes (each works once), to be shown once."""
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=actor, confirmed=False)
        .order_by("-pk")
        .first()
    )
    if device is None:
        raise Conflict("Start the setup again: no authenticator is waiting to be confirmed.")
    if not device.verify_token(code):
        raise ValidationFailed.for_field(
            "code", "That code does not match. Enter the current code from the app."
        )
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return _new_recovery_codes(actor)


def _recovery_digest(code: str) -> str:
    """What is stored of a recovery code: a keyed hash (16 hex digits fit django-otp's
    column), so the table alone gives no code away."""
    normal = "".join(code.lower().replace("-", "").split())
    return hmac.new(
        settings.SECRET_KEY.encode(), f"recovery:{normal}".encode(), hashlib.sha256
    ).hexdigest()[:16]


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()[:10]
        codes.append(f"{raw[:5]}-{raw[5:]}")
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=_recovery_digest(c)) for c in codes
    )
    return codes


@transaction.atomic
def two_step_disable(*, actor: User, code: str, password: str) -> None:
    """Turn two-step sign-in off, given a current code or the account's password. Refused
    for an admin while the installation requires it of admins."""
    if actor.role == Role.ADMIN and settings.REQUIRE_ADMIN_2FA:
        raise PermissionDenied("This installation requires two-step sign-in for admins.")
    if not two_step_enabled(actor):
        return
    _confirm_its_them(actor, code, password)
    TOTPDevice.objects.filter(user=actor).delete()
    StaticDevice.objects.filter(user=actor).delete()


def two_step_verify(*, user: User, code: str) -> bool:
    """Whether ``code`` is a current code from ``user``'s authenticator (each accepted once:
    a code already used in its time step is refused) or one of their unused recovery codes
    (used up by this). The caller limits how often it may ask."""
    code = "".join(code.split())
    with transaction.atomic():
        # Locked so that two requests cannot both accept the same code.
        if code.isdigit():
            totp = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True)
            if any(device.verify_token(code) for device in totp):
                return True
        static = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True)
        return any(device.verify_token(_recovery_digest(code)) for device in static)


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


@transaction.atomic
def _confirm_its_them(actor: User, code: str, password: str) -> None:
    """A change to the second step itself needs a current code or the password again: a
    session left open (or taken over) is not enough."""
    if not (password and actor.check_password(password)) and not (
        code and two_step_verify(user=actor, code=code)
    ):
        raise ValidationFailed.for_field("code", "Enter a current code or your password.")


def recovery_codes_renew(*, actor: User, code: str, password: str) -> list[str]:
    """New recovery codes in place of the old, given a current code or the password."""
    if not two_step_enabled(actor):
        raise Conflict("Turn on two-step sign-in first.")
    _confirm_its_them(actor, code, password)
    return _new_recovery_codes(actor)
