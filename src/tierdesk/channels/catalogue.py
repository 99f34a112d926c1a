"""The domain events tierdesk emits, which a webhook may ask for.

Kept by hand beside the code that emits them; tests/channels/test_catalogue.py reads every
``emit``/``event(`` call (and every audited change that is also announced) in the source
and fails when one is missing here, or when a name here is emitted nowhere.

A webhook names events exactly (``ticket.created``), by group (``ticket.*``: every event
whose name starts with ``ticket.``) or all of them (``*``). An organization's webhook
receives ticket events only (``for_organizations`` in channels.webhooks), so it may only
ask for those.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "*"
GROUP_SUFFIX = ".*"
# The group an organization's webhook may receive (its tickets' events).
ORGANIZATION_GROUP = "ticket"

EVENTS: dict[str, str] = {
    # tickets (an organization's webhooks receive these, internal notes excepted)
    "ticket.created": "A ticket was opened, from any channel.",
    "ticket.assigned": "A ticket was given to an agent (on intake or later).",
    "ticket.updated": "Ticket fields changed; the payload has old and new values.",
    "ticket.status_changed": "A status change other than resolved, reopened or closed.",
    "ticket.resolved": "A ticket was resolved.",
    "ticket.reopened": "A resolved ticket was opened again.",
    "ticket.closed": "A ticket was closed.",
    "ticket.commented": "A public reply (organization webhooks never get internal notes).",
    "ticket.attachment_added": "A file was attached to a ticket.",
    "ticket.rated": "A requester rated the service on a resolved ticket (CSAT).",
    "ticket.linked": "Two tickets were linked.",
    "ticket.unlinked": "A link between two tickets was removed.",
    "ticket.merged": "A duplicate ticket was merged into another.",
    "ticket.escalated": "A ticket moved up a tier, by hand or by a rule.",
    "ticket.de_escalated": "A ticket was handed back down a tier.",
    # MSP-wide webhooks only, from here on
    "escalation.managers_notified": "A hierarchical escalation notified a tier's managers.",
    "automation.approval_needed": "A runbook run waits for an L2 or manager approval.",
    "automation.approval_expired": "A runbook run waited too long for an approval; not run.",
    "automation.succeeded": "A runbook run (a reset, an unlock…) did what it was asked.",
    "automation.failed": "A runbook run was refused or failed; the payload has no details.",
    "security.protected_account": (
        "A runbook was asked to change a protected account (an admin, the service account)"
        "; refused."
    ),
    "security.self_service_blocked": "Wrong self-service codes blocked an account for a day.",
    "sla.warning": "An SLA clock reached its warning percentage.",
    "sla.breached": "An SLA clock ran past its target.",
    "organization.created": "A client organization was added.",
    "organization.updated": "A client organization changed.",
    "user.created": "A person (requester or staff) was added.",
    "user.updated": "A person's name, time zone, active flag or visibility changed.",
    "agent.updated": "A staff member's tier, skills, hours or organizations changed.",
    "category.created": "A service catalog category was added.",
    "category.updated": "A service catalog category changed.",
    "routing_rule.created": "A routing rule was added.",
    "routing_rule.updated": "A routing rule changed (or was moved in the order).",
    "routing_rule.deleted": "A routing rule was removed.",
    "escalation_rule.created": "An automatic escalation rule was added.",
    "escalation_rule.updated": "An automatic escalation rule changed.",
    "escalation_rule.deleted": "An automatic escalation rule was removed.",
    "calendar.created": "A business calendar was added.",
    "calendar.updated": "A business calendar changed.",
    "sla_policy.created": "An SLA policy was added.",
    "sla_policy.updated": "An SLA policy changed.",
    "kb.article_created": "A knowledge base article was written.",
    "kb.article_status_changed": "An article was submitted, published or archived.",
    "webhook.created": "A webhook was registered.",
    "webhook.updated": "A webhook's address, events or description changed.",
    "webhook.secret_rotated": "A webhook's secret was replaced.",
    "webhook.enabled": "A webhook was turned on again.",
    "webhook.disabled": "A webhook was turned off, by someone or after repeated failures.",
    "webhook.deleted": "A webhook was removed.",
}

GROUPS: tuple[str, ...] = tuple(sorted({name.split(".", 1)[0] for name in EVENTS}))


@dataclass(frozen=True)
class EventKind:
    name: str
    description: str
    organizations: bool  # an organization's webhook may receive it


def organization_may_receive(name: str) -> bool:
    """May an organization's webhook ask for the event (or group) ``name``?"""
    return name == ALL or name.split(".", 1)[0] == ORGANIZATION_GROUP


def kinds() -> list[EventKind]:
    """The catalogue, in a stable order (ticket events first)."""
    return [EventKind(n, d, organization_may_receive(n)) for n, d in EVENTS.items()]


def matches(patterns: list[str], name: str) -> bool:
    """Does a webhook asking for ``patterns`` want the event ``name``?"""
    for pattern in patterns:
        if pattern in (ALL, name):
            return True
        if pattern.endswith(GROUP_SUFFIX) and name.startswith(pattern[:-1]):
            return True
    return False


def problem_with(pattern: str, *, organization: bool) -> str | None:
    """What is wrong with asking for ``pattern`` (None: nothing). ``organization``: for an
    organization's webhook."""
    if pattern == ALL:
        return None
    if pattern.endswith(GROUP_SUFFIX):
        group = pattern.removesuffix(GROUP_SUFFIX)
        if group not in GROUPS:
            return f"no event group {pattern[:40]!r} (groups: {', '.join(GROUPS)})"
    elif pattern not in EVENTS:
        return f"no event {pattern[:40]!r}; GET /api/v1/webhook-events lists them"
    if organization and not organization_may_receive(pattern):
        return f"an organization's webhook receives ticket events only, not {pattern!r}"
    return None
