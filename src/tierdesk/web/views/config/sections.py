"""The configuration area's sections (its side navigation) and its start page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from tierdesk.core.models import Role
from tierdesk.web.views.common import manager_required


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    url_name: str
    summary: str
    admin_only: bool = False

    def url(self) -> str:
        return reverse(self.url_name)


# In the order the side navigation shows them.
SECTIONS: list[Section] = [
    Section(
        "tiers",
        "Tiers",
        "web:config-tiers",
        (
            "Each tier: its name, what it handles, how its new tickets are assigned (manual, "
            "round-robin, least loaded, skill match) and who leads it."
        ),
    ),
    Section(
        "categories",
        "Categories",
        "web:config-categories",
        (
            "The service catalog: what requesters can ask for, the tier each category starts "
            "at, its default impact and urgency, the skills it needs."
        ),
    ),
    Section(
        "skills",
        "Skills",
        "web:config-skills",
        (
            "What agents can do and categories need, for skill-match assignment: add, rename "
            "or remove a skill nobody uses."
        ),
    ),
    Section(
        "routing",
        "Routing rules",
        "web:config-routing",
        (
            "Ordered rules that send a new ticket to a tier, category, priority or agent; "
            "reorder them and try a sample ticket before it is real."
        ),
    ),
    Section(
        "sla",
        "SLA policies",
        "web:config-sla",
        "Response and resolution targets per priority, by organization or MSP-wide.",
    ),
    Section(
        "calendars",
        "Business calendars",
        "web:config-calendars",
        "Opening hours per weekday and holidays, which SLA clocks count.",
    ),
    Section(
        "escalation",
        "Escalation rules",
        "web:config-escalation",
        (
            "When a ticket moves up by itself: SLA warnings and breaches, time without a "
            "reply, priority."
        ),
    ),
    Section(
        "webhooks",
        "Webhooks",
        "web:config-webhooks",
        (
            "HTTPS addresses that receive the events they ask for, signed; their delivery "
            "log, replay, secret rotation, and turning them back on after failures."
        ),
    ),
    Section(
        "organizations",
        "Organizations",
        "web:config-organizations",
        "Client organizations: code, name, time zone, email domains.",
    ),
    Section(
        "people",
        "People",
        "web:config-people",
        "Requesters and staff: roles, organizations served, and agents' tier, skills and shifts.",
    ),
    Section(
        "mailboxes",
        "Mailboxes",
        "web:config-mailboxes",
        "Email in: the IMAP mailboxes polled for each organization, and their connection test.",
        admin_only=True,
    ),
    Section(
        "quarantine",
        "Mail quarantine",
        "web:config-quarantine",
        "Incoming mail that was held back, with the reason: download it, or process it again.",
        admin_only=True,
    ),
    Section(
        "directories",
        "Directories",
        "web:config-directories",
        (
            "The LDAP / Active Directory of each organization, where L1 automation resets "
            "passwords and unlocks accounts; and their connection test."
        ),
        admin_only=True,
    ),
]


def render_config(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    section: str,
    status: int = 200,
) -> HttpResponse:
    """Render a configuration page with the side navigation, ``section`` marked current;
    admins' sections are listed for admins only."""
    admin = getattr(request.user, "role", None) == Role.ADMIN
    sections = [s for s in SECTIONS if admin or not s.admin_only]
    return render(
        request,
        template,
        {**context, "sections": sections, "section": section},
        status=status,
    )


@manager_required
def home(request: HttpRequest) -> HttpResponse:
    return render_config(request, "web/config/home.html", {}, section="")
