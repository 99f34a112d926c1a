"""Problem details for answers Django gives before the API's own handlers run."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tierdesk.api.problems import problem
from tierdesk.core.errors import FieldIssue

API_PREFIX = "/api/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ACCEPTED_BODIES = frozenset({"application/json", "multipart/form-data"})


class ApiProblemMiddleware:
    """Under /api/: refuse bodies of a type the API does not read (415), and turn Django's
    HTML 404 and plain 405 into RFC 9457 problem details, so every error has one shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if (
            request.method in BODY_METHODS
            and (
                int(request.META.get("CONTENT_LENGTH") or 0) > 0
                or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
            )
            and request.content_type not in ACCEPTED_BODIES
        ):
            return problem(
                request,
                415,
                f"Send the body as application/json (or multipart/form-data for files), "
                f"not {request.content_type or 'an unnamed type'}.",
                slug="unsupported-media-type",
                errors=[FieldIssue("Content-Type", "unsupported media type")],
            )
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("application/problem+json"):
            return response
        if response.status_code == 404:
            return problem(request, 404, f"No endpoint at {request.path}.", slug="not-found")
        if response.status_code == 405:
            allowed = response.get("Allow", "")
            return problem(
                request,
                405,
                f"{request.method} is not allowed here; allowed: {allowed}.",
                slug="method-not-allowed",
                headers={"Allow": allowed},
            )
        return response
