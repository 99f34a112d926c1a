"""Signing in and out. Django's own views do the work (session rotation on sign-in, CSRF,
POST-only sign-out); django-axes counts failures per account and per address. Accounts with
two-step sign-in give a code after the password (django-otp's TOTP and static devices).
A forgotten password is reset by an emailed link (Django's token views), with requests
limited per email and per address."""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any

import segno
from axes.utils import reset as axes_reset
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.mail import EmailMultiAlternatives
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.template import loader
from django.urls import reverse_lazy
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp.plugins.otp_totp.models import TOTPDevice

from tierdesk.core.errors import Conflict, PermissionDenied, ValidationFailed
from tierdesk.core.models import Role, User
from tierdesk.web import services
from tierdesk.web.forms import DomainErrors
from tierdesk.web.services import RateScope


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

    def form_valid(self, form: Any) -> HttpResponse:
        """Signs in, unless the account uses two-step sign-in: then the code comes first."""
        user = form.get_user()
        if services.two_step_enabled(user):
            return _start_second_step(self.request, user, self.get_redirect_url())
        return super().form_valid(form)


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


def client_address(request: HttpRequest) -> str:
    """The address a request came from, as django-axes sees it (the direct peer)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


# --- Two-step sign-in ---------------------------------------------------------------------------

# Between the password and the code the session holds only this: who passed the first step,
# when, and their password's session hash (a password change meanwhile voids it). The session
# is not signed in until the code is right.
PENDING_KEY = "tierdesk_two_step"
PENDING_SECONDS = 300


def _start_second_step(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "hash": user.get_session_auth_hash(),
        "at": int(time.time()),
        "next": next_url,
    }
    return redirect("web:login-code")


def _pending_user(request: HttpRequest) -> tuple[User, str] | None:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    if int(time.time()) - int(pending.get("at", 0)) > PENDING_SECONDS:
        del request.session[PENDING_KEY]
        return None
    user = User.objects.filter(pk=int(pending.get("user") or 0), is_active=True).first()
    if user is None or not constant_time_compare(
        str(pending.get("hash", "")), user.get_session_auth_hash()
    ):
        del request.session[PENDING_KEY]
        return None
    return user, str(pending.get("next") or "")


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your "
        "recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(str(self.cleaned_data["code"]).split())
        if not code:
            raise forms.ValidationError("Enter the code.")
        return code


def _code_limits(request: HttpRequest, user: User) -> list[tuple[RateScope, str]]:
    return [
        (RateScope.CODE_ACCOUNT, str(user.pk)),
        (RateScope.CODE_ADDRESS, client_address(request)),
    ]


def _take_code_attempt(request: HttpRequest, user: User) -> bool:
    """Count this code attempt against the account's and the address's limits *before* the
    code is checked, so that parallel guesses cannot all pass a check made before any of
    them was counted. False (nothing counted) when either limit is full."""
    taken = [
        (scope, key)
        for scope, key in _code_limits(request, user)
        if services.rate_limit_take(
            scope=scope,
            key=key,
            limit=settings.TWO_STEP_FAILURE_LIMIT,
            window=settings.TWO_STEP_COOLOFF,
        )
    ]
    if len(taken) == len(_code_limits(request, user)):
        return True
    for scope, key in taken:
        services.rate_limit_release(scope=scope, key=key)
    return False


def _code_was_right(request: HttpRequest, user: User) -> None:
    """A right code: the account starts afresh and the attempt does not count against the
    address (many people may sign in from one office)."""
    services.rate_limit_clear(scope=RateScope.CODE_ACCOUNT, key=str(user.pk))
    services.rate_limit_release(scope=RateScope.CODE_ADDRESS, key=client_address(request))


def sign_in_code(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator app (or a recovery code).
    Wrong codes are limited per account and per address like passwords; only a right code
    signs the session in (with a new session key)."""
    pending = _pending_user(request)
    if pending is None:
        messages.info(request, "Sign in again: the first step has expired.")
        return redirect("web:login")
    user, next_url = pending
    form = CodeForm(request.POST or None)
    if request.method != "POST":
        return render(request, "web/auth/login_code.html", {"form": form})
    if not _take_code_attempt(request, user):
        minutes = int(settings.TWO_STEP_COOLOFF.total_seconds() // 60)
        message = (
            "Too many wrong codes for this account or from this address. "
            f"Try again in {minutes} minutes."
        )
        return render(
            request,
            "web/auth/login_code.html",
            {"form": CodeForm(), "locked_message": message},
            status=429,
        )
    if form.is_valid() and services.two_step_verify(user=user, code=form.cleaned_data["code"]):
        _code_was_right(request, user)
        del request.session[PENDING_KEY]
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = resolve_url(settings.LOGIN_REDIRECT_URL)
        return redirect(next_url)
    if form.is_valid():  # counted already
        form.add_error("code", "That code is not right. Enter the current one.")
    return render(request, "web/auth/login_code.html", {"form": form}, status=422)


def _staff_only(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User) or not user.is_staff_member:
        raise Http404
    return user


class DisableTwoStepForm(DomainErrors, forms.Form):
    code = forms.CharField(
        label="Current code",
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "spellcheck": "false"}),
    )
    password = forms.CharField(
        label="Or your password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        if not data.get("code") and not data.get("password"):
            self.add_error("code", "Enter a current code or your password.")
        return data


class ConfirmTwoStepForm(DomainErrors, CodeForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].help_text = "The 6-digit code the app shows now."


def _qr_svg(device: TOTPDevice) -> str:
    qr = segno.make(device.config_url, error="m")
    return str(qr.svg_inline(scale=4, border=4, title="QR code for your authenticator app"))


@login_required
def two_step(request: HttpRequest) -> HttpResponse:
    """Two-step sign-in for the signed-in staff member: turn it on (a secret shown as a QR
    code and as text, confirmed with a code from the app), get new recovery codes, or turn
    it off (with a current code or the password)."""
    user = _staff_only(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    status = 200
    context: dict[str, Any] = {
        "required": settings.REQUIRE_ADMIN_2FA and user.role == Role.ADMIN,
        "confirm_form": ConfirmTwoStepForm(),
        "disable_form": DisableTwoStepForm(),
        "renew_form": DisableTwoStepForm(prefix="renew"),
    }
    try:
        if action == "begin":
            services.two_step_begin(actor=user)
            return redirect("web:two-step")
        if action == "confirm":
            form = ConfirmTwoStepForm(request.POST)
            context["confirm_form"] = form
            status = 422
            if form.is_valid():
                try:
                    codes = services.two_step_confirm(actor=user, code=form.cleaned_data["code"])
                except ValidationFailed as exc:
                    form.add_domain_error(exc)
                else:
                    context["recovery_codes"] = codes
                    messages.success(request, "Two-step sign-in is on.")
                    status = 200
        elif action == "renew-codes":
            renew = DisableTwoStepForm(request.POST, prefix="renew")
            context["renew_form"] = renew
            status = 422
            if not _take_code_attempt(request, user):
                renew.add_error(None, "Too many wrong codes. Try again later.")
                status = 429
            elif renew.is_valid():
                try:
                    context["recovery_codes"] = services.recovery_codes_renew(
                        actor=user,
                        code=renew.cleaned_data["code"],
                        password=renew.cleaned_data["password"],
                    )
                except ValidationFailed as exc:
                    renew.add_domain_error(exc)  # the attempt stays counted
                else:
                    _code_was_right(request, user)
                    context["renew_form"] = DisableTwoStepForm(prefix="renew")
                    status = 200
        elif action == "disable":
            disable = DisableTwoStepForm(request.POST)
            context["disable_form"] = disable
            status = 422
            if not _take_code_attempt(request, user):
                disable.add_error(None, "Too many wrong codes. Try again later.")
                status = 429
            elif disable.is_valid():
                try:
                    services.two_step_disable(
                        actor=user,
                        code=disable.cleaned_data["code"],
                        password=disable.cleaned_data["password"],
                    )
                except ValidationFailed as exc:
                    disable.add_domain_error(exc)  # the attempt stays counted
                else:
                    _code_was_right(request, user)
                    messages.success(request, "Two-step sign-in is off.")
                    return redirect("web:two-step")
        elif request.method == "POST":
            status = 400
    except (Conflict, PermissionDenied) as exc:
        messages.error(request, exc.detail)
        status = exc.status
    enabled = services.two_step_enabled(user)
    pending = None if enabled else services.two_step_pending(actor=user)
    context["enabled"] = enabled
    if enabled:
        context["codes_left"] = services.recovery_codes_left(user)
    if pending is not None:
        context["qr_svg"] = mark_safe(_qr_svg(pending))  # noqa: S308 (made here, no user text)
        secret = base64.b32encode(pending.bin_key).decode()
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render(request, "web/auth/two_step.html", context, status=status)


# --- Password reset by email link -----------------------------------------------------------------

logger = logging.getLogger(__name__)


def _send_in_background(message: EmailMultiAlternatives, user_pk: int) -> None:
    """Hand ``message`` to the mail server after the answer has gone: a reply that waits on
    SMTP only when an account exists would tell who has one."""

    def send() -> None:
        try:
            message.send()
        except Exception:
            logger.exception("could not send the password reset mail to user %s", user_pk)

    threading.Thread(target=send, name="tierdesk-reset-mail", daemon=True).start()


class ResetRequestForm(auth_forms.PasswordResetForm):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email, [to_email])
        _send_in_background(message, context["user"].pk)


class PasswordReset(auth_views.PasswordResetView):
    """Asks for the email and always answers the same. An active account with that email
    gets a link (Django's HMAC token: nothing stored, void after the timeout, after any
    password change and after the next sign-in). Requests are limited per email and per
    source address, across processes (counted in the database)."""

    template_name = "web/auth/password_reset.html"
    form_class = ResetRequestForm
    subject_template_name = "web/email/password_reset_subject.txt"
    email_template_name = "web/email/password_reset.txt"
    success_url = reverse_lazy("web:password-reset-sent")

    def form_valid(self, form: Any) -> HttpResponse:
        window = settings.RESET_LIMIT_WINDOW
        if not services.rate_limit_take(
            scope=RateScope.RESET_ADDRESS,
            key=client_address(self.request),
            limit=settings.RESET_LIMIT_PER_ADDRESS,
            window=window,
        ):
            minutes = int(window.total_seconds() // 60)
            context = self.get_context_data(
                form=form,
                limited_message="Too many reset requests from this address. "
                f"Try again in {minutes} minutes.",
            )
            return self.render_to_response(context, status=429)
        if not services.rate_limit_take(
            scope=RateScope.RESET_ACCOUNT,
            key=form.cleaned_data["email"],
            limit=settings.RESET_LIMIT_PER_ACCOUNT,
            window=window,
        ):
            # The same answer as always: the limit must not tell that the account exists.
            return redirect(self.get_success_url())
        base = settings.PUBLIC_URL or f"{self.request.scheme}://{self.request.get_host()}"
        self.extra_email_context = {
            "base_url": base,
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        }
        return super().form_valid(form)

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 422
        return response


class PasswordResetSent(auth_views.PasswordResetDoneView):
    template_name = "web/auth/password_reset_sent.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **super().get_context_data(**kwargs),
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
        }


class NewPasswordForm(auth_forms.SetPasswordForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password2"].label = "Repeat the new password"


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    """The link from the mail: a new password twice. Setting it voids the link and every
    session of the account (sessions carry a hash of the password); this browser's session
    ends too, and the person signs in with the new password (and code, if they use one).
    The failed sign-ins on the account (from any address) are forgotten: whoever holds the
    mailbox has proved who they are, and a lockout caused by someone guessing would
    otherwise keep them out with their new password, which the guesser does not know."""

    template_name = "web/auth/password_reset_confirm.html"
    form_class = NewPasswordForm
    post_reset_login = False
    success_url = reverse_lazy("web:login")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        axes_reset(username=form.user.email.lower())
        auth_logout(self.request)
        messages.success(self.request, "Your password has been set. Sign in with it.")
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 422
        return response

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> HttpResponse:
        response = super().render_to_response(context, **kwargs)
        if not context.get("validlink"):
            response.status_code = 400
        return response
