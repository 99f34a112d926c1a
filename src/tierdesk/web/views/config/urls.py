"""The configuration area's URLs, under /console/config/."""

from __future__ import annotations

from django.urls import URLPattern, path

from tierdesk.web.views.config import (
    catalog,
    directories,
    escalation,
    mail,
    people,
    routing,
    sections,
    skills,
    sla,
    webhooks,
)

urlpatterns: list[URLPattern] = [
    path("", sections.home, name="config"),
    *catalog.urlpatterns,
    *skills.urlpatterns,
    *routing.urlpatterns,
    *sla.urlpatterns,
    *escalation.urlpatterns,
    *people.urlpatterns,
    *webhooks.urlpatterns,
    *mail.urlpatterns,
    *directories.urlpatterns,
]
