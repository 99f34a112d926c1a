"""What every page view shares: who may open it."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

from tierdesk.core.models import User

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Signed-in agents, managers and admins only. Anyone else signed in gets "not found":
    the console's pages do not exist for requesters (the portal is theirs)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        assert isinstance(user, User)
        if not (user.is_active and user.is_staff_member):
            raise Http404("Not found.")
        return view(request, *args, **kwargs)

    return wrapper
