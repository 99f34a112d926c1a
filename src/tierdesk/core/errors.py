"""Domain errors. The API turns each into RFC 9457 problem details; the CLI into a message.

``status`` is the HTTP status the error maps to; ``errors`` names the offending fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldIssue:
    field: str
    message: str


class DomainError(Exception):
    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldIssue] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    @classmethod
    def for_field(cls, field: str, message: str) -> DomainError:
        return cls(f"{field}: {message}", errors=[FieldIssue(field, message)])


class NotFound(DomainError):
    """Missing, or hidden from this actor: the two are indistinguishable on purpose."""

    status = 404
    slug = "not-found"
    title = "Not found"


class PermissionDenied(DomainError):
    """The actor may see the object but may not do this to it."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class ValidationFailed(DomainError):
    status = 422
    slug = "validation-failed"
    title = "Validation failed"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = "Transition not allowed"


class ContentTooLarge(DomainError):
    status = 413
    slug = "content-too-large"
    title = "Content too large"


class PreconditionFailed(DomainError):
    status = 412
    slug = "stale-version"
    title = "The ticket changed since you read it"


class PreconditionRequired(DomainError):
    status = 428
    slug = "precondition-required"
    title = "If-Match header required"
