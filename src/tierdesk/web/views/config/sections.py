"""The configuration area's sections (its side navigation) and its start page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from tierdesk.web.views.common import manager_required


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    url_name: str
    summary: str

    def url(self) -> str:
        return reverse(self.url_name)


# In the order the side navigation shows them. Each module adds its own entries.
SECTIONS: list[Section] = []


def render_config(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    section: str,
    status: int = 200,
) -> HttpResponse:
    """Render a configuration page with the side navigation, ``section`` marked current."""
    return render(
        request,
        template,
        {**context, "sections": SECTIONS, "section": section},
        status=status,
    )


@manager_required
def home(request: HttpRequest) -> HttpResponse:
    return render_config(request, "web/config/home.html", {}, section="")
