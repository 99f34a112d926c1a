"""Reads of escalations (scoped through the ticket the actor can see) and of the automatic
escalation rules (scoped like routing rules)."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from tierdesk.core import policy
from tierdesk.core.errors import NotFound
from tierdesk.core.models import STAFF_ROLES, User
from tierdesk.escalation.models import Escalation, EscalationRule
from tierdesk.tickets.models import Ticket


def escalation_list(*, actor: User, ticket: Ticket) -> QuerySet[Escalation]:
    """The escalations of a ticket the actor has already been allowed to see (the caller
    got it from tickets.queries.ticket_get). Requesters see that it moved, not the
    internal reasoning: the API leaves reason and handoff out for them."""
    return Escalation.objects.filter(ticket=ticket).select_related("from_tier", "to_tier", "actor")


def escalation_rule_list(*, actor: User) -> QuerySet[EscalationRule]:
    """Rules staff may read: MSP-wide ones and those of organizations they serve, MSP-wide
    first, then by organization and name. Requesters see none. Preloads organization and
    tiers."""
    if not actor.is_active or actor.role not in STAFF_ROLES:
        return EscalationRule.objects.none()
    return (
        EscalationRule.objects.filter(
            Q(organization__isnull=True) | Q(organization__in=policy.visible_organizations(actor))
        )
        .select_related("organization", "from_tier", "to_tier")
        .order_by(F("organization_id").asc(nulls_first=True), "name", "id")
    )


def escalation_rule_get(*, actor: User, rule_id: int) -> EscalationRule:
    """One rule the actor may read; another tenant's answers NotFound, like a missing one."""
    rule = escalation_rule_list(actor=actor).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No such escalation rule.")
    return rule
