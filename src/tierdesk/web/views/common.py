"""What every page view shares: who may open it."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse

from tierdesk.core.models import Role, User

View = Callable[..., HttpResponse]


def _for(admits: Callable[[User], bool]) -> Callable[[View], View]:
    """Signed-in, active users that ``admits`` lets in; others signed in get "not found"
    (the page does not exist for them), visitors the sign-in page."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            assert isinstance(user, User)
            if not (user.is_active and admits(user)):
                raise Http404("Not found.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


# The console is the staff's; the portal the requesters'.
staff_required = _for(lambda user: user.is_staff_member)
requester_required = _for(lambda user: user.role == Role.REQUESTER)
# Configuration pages are the managers' and admins'; each service still checks the scope
# (a manager changes only the organizations they serve, MSP-wide settings are admins').
manager_required = _for(lambda user: user.role in (Role.MANAGER, Role.ADMIN))
# Mail server credentials and the quarantine are the admins' alone.
admin_required = _for(lambda user: user.role == Role.ADMIN)
