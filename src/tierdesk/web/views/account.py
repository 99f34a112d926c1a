"""The signed-in person's own profile: name and time zone (the pages show times in it);
email, role and organization are shown, and changed by an admin or manager. Beside it,
which email notifications they receive."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tierdesk.channels import notify
from tierdesk.channels.models import NotificationKind
from tierdesk.core.errors import DomainError
from tierdesk.core.models import User
from tierdesk.core.services import user_update
from tierdesk.web.forms import DomainErrors, time_zone_choices


class ProfileForm(DomainErrors, forms.Form):
    full_name = forms.CharField(label="Name", max_length=200)
    time_zone = forms.ChoiceField(
        label="Time zone", help_text="Dates and times on these pages are shown in it."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = time_zone_choices()

    def clean_full_name(self) -> str:
        name = " ".join(str(self.cleaned_data["full_name"]).split())
        if not name or not name.isprintable():
            raise forms.ValidationError("Enter your name.")
        return name


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = ProfileForm(
        request.POST or None, initial={"full_name": user.full_name, "time_zone": user.time_zone}
    )
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                user_update(actor=user, user=user, **form.cleaned_data)
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, "Your profile has been saved.")
                return redirect("web:profile")
    return render(request, "web/account/profile.html", {"form": form}, status=status)


class NotificationsForm(DomainErrors, forms.Form):
    """One checkbox per kind of notification the person can receive."""

    def __init__(self, *args: Any, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind in kinds:
            self.fields[kind] = forms.BooleanField(
                label=NotificationKind(kind).label, required=False
            )


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    chosen = notify.preferences_of(user)
    form = NotificationsForm(request.POST or None, kinds=list(chosen), initial=chosen)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                notify.notification_preferences_set(actor=user, changes=form.cleaned_data)
            except DomainError as exc:
                form.add_domain_error(exc)
            else:
                messages.success(request, "Your notification settings have been saved.")
                return redirect("web:notifications")
    return render(request, "web/account/notifications.html", {"form": form}, status=status)
