"""Problem details for answers Django gives before the API's own handlers run."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tierdesk.api.problems import problem

API_PREFIX = "/api/"


class ApiProblemMiddleware:
    """Turn Django's HTML 404 and plain 405 under /api/ into RFC 9457 problem details, so
    every error a client of the API sees has one shape."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX):
            return response
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
