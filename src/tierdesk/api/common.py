"""Shared pieces of the API: token auth, ETags, idempotent creates, typed request."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Schema
from ninja.responses import NinjaJSONEncoder
from ninja.security import HttpBearer

from tierdesk.core import clock
from tierdesk.core.errors import (
    Conflict,
    FieldIssue,
    PreconditionFailed,
    PreconditionRequired,
    ValidationFailed,
)
from tierdesk.core.models import IdempotencyRecord, User
from tierdesk.core.parse import as_id
from tierdesk.core.services import token_authenticate


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``; the header only, never the query string."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        return token_authenticate(token)


class ApiJSONEncoder(NinjaJSONEncoder):
    """Timestamps with their full precision, UTC as "Z" ("...123456Z"), everywhere."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime):
            return o.isoformat().replace("+00:00", "Z")
        return super().default(o)


def actor(request: HttpRequest) -> User:
    """The authenticated user of an API request."""
    return cast(User, request.auth)  # type: ignore[attr-defined]


def optional_actor(request: HttpRequest) -> User | None:
    """The user behind a bearer token or a signed-in session, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return token_authenticate(credentials.strip())
    user = getattr(request, "user", None)
    if isinstance(user, User) and user.is_active:
        return user
    return None


def reject_unknown_query(request: HttpRequest, schema: type[Schema]) -> None:
    """Refuse query parameters the endpoint does not know: a mistyped or smuggled filter
    (``?requester__password__startswith=``) must not be silently ignored."""
    known = {f.alias or name for name, f in schema.model_fields.items()}
    unknown = sorted(set(request.GET) - known)
    if unknown:
        raise ValidationFailed(
            f"unknown query parameters: {', '.join(unknown)}",
            errors=[FieldIssue(name[:100], "unknown query parameter") for name in unknown[:20]],
        )


def patch_changes(payload: Schema) -> dict[str, Any]:
    """The fields a PATCH body names, with their values; a field given as null is refused
    (a PATCH leaves out what it keeps, it does not null it)."""
    changes: dict[str, Any] = {}
    for name in sorted(payload.model_fields_set):
        value = getattr(payload, name)
        if value is None:
            raise ValidationFailed.for_field(name, "may not be null")
        changes[name] = value
    return changes


def etag_for(version: int) -> str:
    return f'"v{version}"'


def expected_version(request: HttpRequest) -> int | None:
    """The version the client last saw, from ``If-Match``; 428 when absent, 412 when it is
    not one of ours. ``*`` (any version) returns None, as RFC 9110 allows."""
    header = request.headers.get("If-Match")
    if header is None:
        raise PreconditionRequired(
            "Send 'If-Match' with the ETag you last read, so a concurrent change is not "
            "overwritten."
        )
    header = header.strip()
    if header == "*":
        return None
    if header.startswith('"v') and header.endswith('"') and (version := as_id(header[2:-1])):
        return version
    raise PreconditionFailed("If-Match does not match the ticket's current ETag.")


def _fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


# Headers of a first answer that a replay repeats.
_REPLAYED_HEADERS = ("Location", "ETag", "Cache-Control")
IDEMPOTENCY_HEADER = {
    "parameters": [
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "A retry with the same key and body returns the first answer "
            "instead of creating a second object.",
        }
    ]
}


def idempotent(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Make a create endpoint honour ``Idempotency-Key``: a retry with the same key and
    request gets the first answer again; the same key with a different request is refused
    (409). Only successful answers are remembered, so a refused request can be corrected and
    retried with its key.

    The record is written in the same transaction as the object, so a create and its record
    exist together or not at all. Two concurrent requests with one key cannot both commit:
    the second hits the unique (user, key) constraint, rolls back its object and replays the
    first answer.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > 255 or not key.isprintable():
            raise ValidationFailed.for_field("Idempotency-Key", "1 to 255 printable characters")
        user = actor(request)
        fingerprint = _fingerprint(request)

        def replay() -> HttpResponse | None:
            record = IdempotencyRecord.objects.filter(user=user, key=key).first()
            if record is None:
                return None
            age = (clock.now() - record.created_at).total_seconds() / 3600
            if age > settings.IDEMPOTENCY_KEY_TTL_HOURS:
                record.delete()
                return None
            if record.fingerprint != fingerprint:
                raise Conflict.for_field(
                    "Idempotency-Key", "already used for a different request; use a new key"
                )
            response = JsonResponse(record.response["body"], status=record.status_code)
            for name, value in record.response["headers"].items():
                response[name] = value
            response["Idempotent-Replayed"] = "true"
            return response

        if (earlier := replay()) is not None:
            return earlier
        try:
            with transaction.atomic():
                response = view(request, *args, **kwargs)
                if 200 <= response.status_code < 300:
                    IdempotencyRecord.objects.create(
                        user=user,
                        key=key,
                        fingerprint=fingerprint,
                        status_code=response.status_code,
                        response={
                            "body": json.loads(response.content),
                            "headers": {
                                h: response[h] for h in _REPLAYED_HEADERS if response.has_header(h)
                            },
                        },
                        created_at=clock.now(),
                    )
        except IntegrityError:
            if (earlier := replay()) is not None:
                return earlier
            raise
        return response

    # ninja reads the view's parameters from its signature; resolve the annotations here,
    # in the view's own module, since the wrapper lives in another.
    wrapper.__signature__ = inspect.signature(view, eval_str=True)  # type: ignore[attr-defined]
    return wrapper


def json_response(status: int, body: dict[str, Any], **headers: str) -> HttpResponse:
    """Answer ``body`` as JSON, with timestamps written as the rest of the API writes them."""
    response = JsonResponse(body, status=status, encoder=ApiJSONEncoder)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response
