"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from tierdesk.core.errors import DomainError, FieldIssue

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://tierdesk.dev/problems/"
TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Validation failed",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
}
# Parameter sources ninja puts first in an error's location.
_SOURCES = {"body", "query", "path", "header", "form", "file", "cookie"}


def problem(
    request: HttpRequest,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[FieldIssue] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or str(status)),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    response = JsonResponse(body, status=status, content_type="application/problem+json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """The client's name for the field at ninja's error location, e.g. ("body", "payload",
    "subject") -> "subject"; a missing body as a whole is "body"."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        # Body errors carry the schema parameter's name next (our bodies are one schema).
        if source == "body" and parts:
            parts.pop(0)
    return ".".join(parts) or "body"


def _validation_issues(errors: list[dict[str, Any]]) -> list[FieldIssue]:
    issues = []
    for error in errors:
        field = _field_of(error.get("loc", ()))
        kind = error.get("type", "")
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required"
        else:
            message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        issues.append(FieldIssue(field, message))
    return issues


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare error answers as application/problem+json in an OpenAPI document, and the
    415 that every operation with a body may answer (api.middleware refuses other body
    types before the operation runs)."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "415",
                    {
                        "description": "Unsupported media type",
                        "content": {
                            "application/problem+json": {
                                "schema": {"$ref": "#/components/schemas/Problem"}
                            }
                        },
                    },
                )
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status).isdigit() and int(status) >= 400 and "application/json" in content:
                    response["content"] = {"application/problem+json": content["application/json"]}
    return schema


def install(api: NinjaAPI) -> None:
    """Replace ninja's default error answers with problem details."""

    def on_validation(request: HttpRequest, exc: Any) -> HttpResponse:
        issues = _validation_issues(list(exc.errors))
        detail = "; ".join(f"{i.field}: {i.message}" for i in issues)
        return problem(request, 422, detail, slug="validation-failed", errors=issues)

    def on_auth(request: HttpRequest, exc: Any) -> HttpResponse:
        return problem(
            request,
            401,
            "Send a valid API token as 'Authorization: Bearer <token>'.",
            slug="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer realm="tierdesk"'},
        )

    def on_http(request: HttpRequest, exc: Any) -> HttpResponse:
        if exc.status_code == 400 and "parse request body" in str(exc):
            issues = [FieldIssue("body", "the request body is not valid JSON")]
            return problem(
                request,
                400,
                "The request body is not valid JSON.",
                errors=issues,
                slug="malformed-body",
            )
        return problem(request, exc.status_code, str(exc))

    def on_domain(request: HttpRequest, exc: Any) -> HttpResponse:
        return problem(
            request, exc.status, exc.detail, slug=exc.slug, title=exc.title, errors=exc.errors
        )

    def on_too_big(request: HttpRequest, exc: Any) -> HttpResponse:
        return problem(
            request,
            413,
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            slug="content-too-large",
            errors=[FieldIssue("body", "too large")],
        )

    def on_404(request: HttpRequest, exc: Any) -> HttpResponse:
        return problem(request, 404, "Not found.", slug="not-found")

    def on_any(request: HttpRequest, exc: Any) -> HttpResponse:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(request, 500, "Something went wrong on our side; it has been logged.")

    api.add_exception_handler(ValidationError, on_validation)
    api.add_exception_handler(AuthenticationError, on_auth)
    api.add_exception_handler(HttpError, on_http)
    api.add_exception_handler(DomainError, on_domain)
    api.add_exception_handler(Http404, on_404)
    api.add_exception_handler(RequestDataTooBig, on_too_big)
    api.add_exception_handler(Exception, on_any)
