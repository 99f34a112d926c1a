"""Keeps an admin without a second factor on its setup page while the installation requires
one of admins (TIERDESK_REQUIRE_ADMIN_2FA)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from tierdesk.core.models import Role, User
from tierdesk.web.services import two_step_enabled


class RequireAdminTwoStep:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.REQUIRE_ADMIN_2FA and self._must_set_up(request):
            # The setup page says why.
            return redirect("web:two-step")
        return self.get_response(request)

    @staticmethod
    def _must_set_up(request: HttpRequest) -> bool:
        user = request.user
        if not isinstance(user, User) or user.role != Role.ADMIN:
            return False
        path = request.path_info
        allowed = (reverse("web:two-step"), reverse("web:logout"), "/healthz")
        if path in allowed or path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return False
        return not two_step_enabled(user)
