"""Self-service in the portal: "I forgot my password" and "my account is locked", done by
tierdesk against the organization's directory once a one-time code sent to the address on
file has been entered (automation.selfservice). Open without signing in: a person locked
out of their account cannot sign in. Every answer is the same whether an account exists
or not; requests and code entries are rate-limited per account and per source address."""

from __future__ import annotations

import time
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from tierdesk.automation import selfservice
from tierdesk.core.errors import DomainError, ValidationFailed
from tierdesk.web import services as web_services
from tierdesk.web.forms import DomainErrors
from tierdesk.web.services import RateScope
from tierdesk.web.views.auth import client_address

SESSION_KEY = "tierdesk.self_service"
ACTIONS = [
    ("reset-password", "I forgot my password"),
    ("unlock-account", "My account is locked"),
]


class RequestForm(forms.Form):
    action = forms.ChoiceField(label="What do you need?", choices=ACTIONS, widget=forms.RadioSelect)
    email = forms.EmailField(
        label="Your work email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class CodeForm(DomainErrors, forms.Form):
    code = forms.RegexField(
        label="The code from the mail",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "The code is six digits."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 12}
        ),
    )

    def __init__(self, *args: Any, choose_password: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if choose_password:
            self.fields["password"] = forms.CharField(
                label="New password (leave empty for a generated one)",
                required=False,
                max_length=128,
                strip=False,
                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            )
            self.fields["password2"] = forms.CharField(
                label="Repeat the new password",
                required=False,
                max_length=128,
                strip=False,
                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password", "") != data.get("password2", ""):
            self.add_error("password2", "The two passwords differ.")
        return data


def _limited(request: HttpRequest, scope: RateScope, key: str, limit: int) -> bool:
    return not web_services.rate_limit_take(
        scope=scope, key=key, limit=limit, window=settings.RESET_LIMIT_WINDOW
    )


def _no_sooner_than(began: float) -> None:
    """Hold a refused or look-alike answer until ``SELF_SERVICE_ANSWER_MS`` after the
    request began: the work behind it (a code stored and audited for a known account, a
    code checked against its hash) does not show in how fast it comes."""
    left = settings.SELF_SERVICE_ANSWER_MS / 1000 - (time.monotonic() - began)
    if left > 0:
        time.sleep(left)


@never_cache
def start(request: HttpRequest) -> HttpResponse:
    began = time.monotonic()
    email = getattr(request.user, "email", "")  # signed in: their own, to start with
    initial = {"email": email} if email else {}
    form = RequestForm(request.POST or None, initial={"action": "reset-password", **initial})
    status = 200
    limited = ""
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        elif _limited(
            request, RateScope.SELF_SERVICE_ADDRESS, client_address(request),
            settings.SELF_SERVICE_LIMIT_PER_ADDRESS,
        ):  # fmt: skip
            minutes = int(settings.RESET_LIMIT_WINDOW.total_seconds() // 60)
            limited = f"Too many requests from this address. Try again in {minutes} minutes."
            status = 429
        else:
            email = form.cleaned_data["email"].lower()
            action = form.cleaned_data["action"]
            verification = None
            # over the account's limit: the same answer as always, and no mail
            if not _limited(
                request, RateScope.SELF_SERVICE_ACCOUNT, email,
                settings.SELF_SERVICE_LIMIT_PER_ACCOUNT,
            ):  # fmt: skip
                verification = selfservice.start(email=email, runbook=action)
            request.session[SESSION_KEY] = {
                "id": verification.pk if verification else None,
                "action": action,
                "email": email,
            }
            _no_sooner_than(began)
            return redirect("web:self-service-code")
    context = {"form": form, "limited_message": limited}
    return render(request, "web/selfservice/start.html", context, status=status)


@never_cache
def code(request: HttpRequest) -> HttpResponse:
    began = time.monotonic()
    pending = request.session.get(SESSION_KEY)
    if not pending:
        return redirect("web:self-service")
    choose = pending["action"] == "reset-password"
    form = CodeForm(request.POST or None, choose_password=choose)
    status = 200
    if request.method == "POST":
        status = 422
        if _limited(
            request, RateScope.SELF_SERVICE_CHECK_ADDRESS, client_address(request),
            settings.SELF_SERVICE_CHECKS_PER_ADDRESS,
        ):  # fmt: skip
            form.is_valid()
            form.add_error(None, "Too many codes tried from this address. Try again later.")
            status = 429
        elif form.is_valid():
            try:
                chosen = form.cleaned_data.get("password", "")
                if chosen and (problem := selfservice.password_problem(chosen)):
                    raise ValidationFailed.for_field("password", problem)
                if pending["id"] is None:  # no such account: what a wrong code is answered
                    pending["tries"] = pending.get("tries", 0) + 1
                    request.session[SESSION_KEY] = pending
                    raise selfservice.CodeRefused(selfservice.wrong_code(pending["tries"]))
                done = selfservice.complete(
                    verification_id=pending["id"],
                    code=form.cleaned_data["code"],
                    password=form.cleaned_data.get("password", ""),
                )
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                del request.session[SESSION_KEY]
                response = render(
                    request,
                    "web/selfservice/done.html",
                    {"run": done.run, "secret": done.secret},
                )
                response["Cache-Control"] = "no-store"
                return response
    if request.method == "POST":
        _no_sooner_than(began)
    context = {"form": form, "email": pending["email"], "minutes": selfservice.CODE_MINUTES}
    return render(request, "web/selfservice/code.html", context, status=status)
