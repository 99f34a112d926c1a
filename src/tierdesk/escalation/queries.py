"""Reads of escalations, scoped through the ticket the actor can see."""

from __future__ import annotations

from django.db.models import QuerySet

from tierdesk.core.models import User
from tierdesk.escalation.models import Escalation
from tierdesk.tickets.models import Ticket


def escalation_list(*, actor: User, ticket: Ticket) -> QuerySet[Escalation]:
    """The escalations of a ticket the actor has already been allowed to see (the caller
    got it from tickets.queries.ticket_get). Requesters see that it moved, not the
    internal reasoning: the API leaves reason and handoff out for them."""
    return Escalation.objects.filter(ticket=ticket).select_related("from_tier", "to_tier", "actor")
