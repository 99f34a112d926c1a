"""The configuration area's URLs, under /console/config/."""

from __future__ import annotations

from django.urls import URLPattern, path

from tierdesk.web.views.config import sections

urlpatterns: list[URLPattern] = [
    path("", sections.home, name="config"),
]
