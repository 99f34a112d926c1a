"""Signing in and out. Django's own views do the work (session rotation on sign-in, CSRF,
POST-only sign-out); django-axes counts failures per account and per address."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tierdesk.core.models import User


class SignInForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an active account.",
    }

    def clean_username(self) -> str:
        return str(self.cleaned_data["username"]).strip().lower()  # stored in lower case


class SignIn(auth_views.LoginView):
    template_name = "web/auth/login.html"
    form_class = SignInForm
    redirect_authenticated_user = True


class SignOut(auth_views.LogoutView):
    pass


def home(request: HttpRequest) -> HttpResponse:
    """Staff to the console, requesters to the portal, anyone else to sign in."""
    user = request.user
    if isinstance(user, User) and user.is_active:
        return redirect("web:console" if user.is_staff_member else "web:portal")
    return redirect("web:login")


def attempted_account(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The account a sign-in attempt is counted against: the email as typed, in lower case
    (accounts are stored so), so that "Lena@…" and "lena@…" share one count."""
    typed = (credentials or {}).get("username") or request.POST.get("username") or ""
    return str(typed).strip().lower()[:254]


def locked_out(
    request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any
) -> HttpResponse:
    """django-axes' answer to a sign-in while the account or the address is locked out: the
    sign-in page again, with the reason, and 429."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    # Unbound: validating it would try the password again.
    form = SignInForm(request, initial={"username": request.POST.get("username", "")[:254]})
    message = (
        "Too many failed sign-ins for this account or from this address. "
        f"Try again in {minutes} minutes."
    )
    return render(
        request, "web/auth/login.html", {"form": form, "locked_message": message}, status=429
    )


class ChangePassword(auth_views.PasswordChangeView):
    """The current password, then the new one twice (checked by the password validators).
    Django keeps this session (with a new key) and every other session of the account
    ends: sessions carry a hash of the password and no longer match."""

    template_name = "web/auth/password_change.html"

    def get_success_url(self) -> str:
        return str(self.request.path)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(
            self.request, "Your password has been changed. Other sessions are signed out."
        )
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 422
        return response
