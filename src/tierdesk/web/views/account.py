"""The signed-in person's own profile: name and time zone (the pages show times in it);
email, role and organization are shown, and changed by an admin or manager."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

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
