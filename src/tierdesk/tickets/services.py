"""The only code that changes tickets.

Every service runs in one transaction: it checks permission, enforces the rule, writes the
change, the timeline entries and the domain event together, or nothing at all.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Q

from tierdesk.core import bulk, clock, config, files, policy
from tierdesk.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    ValidationFailed,
)
from tierdesk.core.events import emit, emit_all
from tierdesk.core.events import event as new_event
from tierdesk.core.models import STAFF_ROLES, Organization, OutboxEvent, Role, User
from tierdesk.core.unset import UNSET
from tierdesk.tickets import lifecycle
from tierdesk.tickets.lifecycle import Change, TicketChange
from tierdesk.tickets.models import (
    LINK_INVERSE,
    OPEN_STATUSES,
    Attachment,
    Comment,
    LinkKind,
    Priority,
    ResolutionCode,
    SatisfactionRating,
    Source,
    Status,
    Tag,
    Ticket,
    TicketLink,
    TimelineEntry,
    TimelineKind,
)
from tierdesk.tiers import assignment, form_fields, routing
from tierdesk.tiers.models import AssignmentStrategy, Category, Tier

# The state machine: status -> statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset(
        {
            Status.OPEN,
            Status.IN_PROGRESS,
            Status.PENDING_CUSTOMER,
            Status.PENDING_THIRD_PARTY,
            Status.RESOLVED,
        }
    ),
    Status.OPEN: frozenset(
        {Status.IN_PROGRESS, Status.PENDING_CUSTOMER, Status.PENDING_THIRD_PARTY, Status.RESOLVED}
    ),
    Status.IN_PROGRESS: frozenset(
        {Status.OPEN, Status.PENDING_CUSTOMER, Status.PENDING_THIRD_PARTY, Status.RESOLVED}
    ),
    Status.PENDING_CUSTOMER: frozenset(
        {Status.OPEN, Status.IN_PROGRESS, Status.PENDING_THIRD_PARTY, Status.RESOLVED}
    ),
    Status.PENDING_THIRD_PARTY: frozenset(
        {Status.OPEN, Status.IN_PROGRESS, Status.PENDING_CUSTOMER, Status.RESOLVED}
    ),
    # Reopening goes back to open; closed is final (a new ticket is opened instead).
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
# What a requester may do to their own ticket: reopen it or confirm the resolution.
REQUESTER_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {(Status.RESOLVED, Status.OPEN), (Status.RESOLVED, Status.CLOSED)}
)

# ITIL impact x urgency matrix (1 = high) -> priority.
PRIORITY_MATRIX: dict[tuple[int, int], str] = {
    (1, 1): Priority.P1,
    (1, 2): Priority.P2,
    (2, 1): Priority.P2,
    (1, 3): Priority.P3,
    (2, 2): Priority.P3,
    (3, 1): Priority.P3,
    (2, 3): Priority.P4,
    (3, 2): Priority.P4,
    (3, 3): Priority.P4,
}

SUBJECT_MAX = 250
# One message for "missing" and "not yours", so answers cannot be used to probe for people.
NO_SUCH_REQUESTER = "no such requester in this organization"
NO_SUCH_ASSIGNEE = "no such agent serving this organization"
BODY_MAX = 100_000


def priority_for(impact: int, urgency: int) -> str:
    try:
        return PRIORITY_MATRIX[(impact, urgency)]
    except KeyError:
        raise ValidationFailed.for_field("impact", "impact and urgency are 1, 2 or 3") from None


def _text(field: str, value: str, *, max_length: int, required: bool) -> str:
    cleaned = value.replace("\x00", "").strip()
    if required and not cleaned:
        raise ValidationFailed.for_field(field, "may not be empty")
    if len(cleaned) > max_length:
        raise ValidationFailed.for_field(field, f"at most {max_length} characters")
    return cleaned


def _check_choice(field: str, value: int | None) -> None:
    if value is not None and value not in (1, 2, 3):
        raise ValidationFailed.for_field(field, "1 (high), 2 (medium) or 3 (low)")


def _assignee_for(organization: Organization, assignee: User | None) -> User | None:
    """An assignee must be active staff serving the ticket's organization (admins serve all).
    Anyone else is reported exactly like a missing user."""
    if assignee is None:
        return None
    ok = (
        assignee.is_active
        and assignee.role in STAFF_ROLES
        and (
            assignee.role == Role.ADMIN
            or assignee.served_organizations.filter(pk=organization.pk).exists()
        )
    )
    if not ok:
        raise ValidationFailed.for_field("assignee", NO_SUCH_ASSIGNEE)
    return assignee


def _category_for(organization: Organization, category: Category | None) -> Category | None:
    if category is None:
        return None
    if not category.is_active or category.organization_id not in (None, organization.pk):
        raise ValidationFailed.for_field("category", "no such category")
    return category


def _timeline(
    ticket: Ticket,
    actor: User | None,
    kind: str,
    *,
    field: str = "",
    old: Any = "",
    new: Any = "",
    comment: Comment | None = None,
    internal: bool = False,
) -> TimelineEntry:
    return TimelineEntry(
        ticket=ticket,
        at=clock.now(),
        actor=actor,
        kind=kind,
        field=field,
        old_value="" if old is None else str(old),
        new_value="" if new is None else str(new),
        comment=comment,
        is_internal=internal,
    )


def _ticket_payload(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.pk, "key": ticket.key} | _unnumbered_payload(ticket)


def _unnumbered_payload(ticket: Ticket) -> dict[str, Any]:
    """An event's ticket fields but the id and key, which a new ticket gets on insert."""
    return {
        "status": ticket.status,
        "priority": ticket.priority,
        "tier": ticket.tier.code,
        "version": ticket.version,
    }


def _next_number(organization: Organization) -> int:
    # The UPDATE holds the organization's row lock (PostgreSQL) or the write lock (SQLite)
    # until commit, so concurrent creates queue here; a rollback returns the number.
    # One statement with RETURNING (PostgreSQL, SQLite >= 3.35) instead of UPDATE + SELECT.
    table = connection.ops.quote_name(Organization._meta.db_table)
    column = connection.ops.quote_name("last_ticket_number")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {column} + 1 WHERE id = %s RETURNING {column}",  # noqa: S608 - names from the model, value bound
            [organization.pk],
        )
        return int(cursor.fetchone()[0])


def _insert_new(ticket: Ticket, entries: list[TimelineEntry], events: list[OutboxEvent]) -> None:
    """Give the new ``ticket`` its organization's next number and insert it with its first
    timeline ``entries`` and its outbox ``events``; sets the ticket's id and number, and
    each event's ``aggregate_id`` and the ``id`` and ``key`` in its payload (which only the
    insert knows). Inside the create's transaction.

    On PostgreSQL that is one statement (``_numbered_insert_sql``), not four: each
    statement is a round trip, which costs more CPU here (psycopg, Django, the server's
    parse/bind/execute) than these inserts themselves. SQLite has no round trips, and no
    UPDATE inside WITH; there the four run one after the other, as the statement does."""
    if connection.vendor != "postgresql":
        ticket.number = _next_number(ticket.organization)
        bulk.insert_all([ticket])
        for entry in entries:
            entry.ticket = ticket
        bulk.insert_all(entries)
        _identify(ticket, events)
        emit_all(events)
        return
    sql, ticket_columns, entry_columns, event_columns = _numbered_insert_sql(
        len(entries), len(events)
    )
    # The connection itself, not Django's per-context proxy: every attribute read through the
    # proxy is a context-local lookup, and preparing the values reads it for every field.
    wrapper = connections[DEFAULT_DB_ALIAS]
    prefix = f"{ticket.organization.code}-"
    params: list[Any] = [ticket.organization_id, *_values(ticket, ticket_columns, wrapper)]
    for entry in entries:
        params += _values(entry, entry_columns, wrapper)
    for event in events:
        params += _values(event, event_columns, wrapper, key_prefix=prefix)
    with wrapper.cursor() as cursor:
        cursor.execute(sql, params)
        ticket.pk, ticket.number = cursor.fetchone()
    ticket._state.adding = False
    ticket._state.db = connection.alias
    for entry in entries:
        entry.ticket = ticket
    _identify(ticket, events)  # what the statement stored; the events' own ids stay unread


def _identify(ticket: Ticket, events: list[OutboxEvent]) -> None:
    for event in events:
        event.aggregate_id = str(ticket.pk)
        event.payload = {"id": ticket.pk, "key": ticket.key} | event.payload


# A column the statement computes from the new ticket instead of binding a value; "payload"
# binds the event's payload and the ticket key's prefix ("ACME-") and adds id and key.
_COMPUTED = {
    "number": "(SELECT {counter} FROM next_number)",
    "ticket": "(SELECT id FROM ticket)",
    "aggregate_id": "(SELECT id::text FROM ticket)",
    "payload": (
        "(%s::jsonb || jsonb_build_object('id', (SELECT id FROM ticket), "
        "'key', %s || (SELECT number FROM ticket)))"
    ),
}


# Fields whose database value is the attribute as it is (a str, int, bool or None, which
# psycopg adapts directly): their per-field preparation through Django is skipped. Exact
# classes only, so a subclass with its own conversion is prepared as usual.
_PLAIN_FIELDS = frozenset(
    {
        models.CharField,
        models.TextField,
        models.IntegerField,
        models.SmallIntegerField,
        models.PositiveSmallIntegerField,
        models.BooleanField,
        models.ForeignKey,
    }
)


def _values(
    obj: Any, columns: list[Any], wrapper: BaseDatabaseWrapper, *, key_prefix: str = ""
) -> list[Any]:
    """The parameters of ``obj``'s row in ``_numbered_insert_sql``, in its columns' order."""
    params: list[Any] = []
    for field in columns:
        if field.name in ("number", "ticket", "aggregate_id"):
            continue
        if type(field) in _PLAIN_FIELDS:
            params.append(getattr(obj, field.attname))
        else:
            params.append(field.get_db_prep_save(field.pre_save(obj, True), wrapper))
        if field.name == "payload":
            params.append(key_prefix)
    return params


_numbered_inserts: dict[tuple[int, int], tuple[str, list[Any], list[Any], list[Any]]] = {}


def _numbered_insert_sql(
    entry_count: int, event_count: int
) -> tuple[str, list[Any], list[Any], list[Any]]:
    """PostgreSQL: the statement that takes the organization's next number (its row stays
    locked until commit, as in ``_next_number``), inserts the ticket under that number,
    ``entry_count`` timeline entries and ``event_count`` outbox events under the ticket's
    id; with the columns of the ticket, an entry and an event, whose values ``_values``
    binds in order after the organization's id. Made once per process for each count.

        WITH next_number AS (UPDATE organization SET last_ticket_number = ... RETURNING ...),
             ticket AS (INSERT INTO ticket (..., number, ...)
                        VALUES (..., (SELECT last_ticket_number FROM next_number), ...)
                        RETURNING id, number),
             timeline AS (INSERT INTO timelineentry (ticket_id, ...)
                          VALUES ((SELECT id FROM ticket), ...), ...),
             outbox AS (INSERT INTO outboxevent (..., aggregate_id, payload, ...)
                        VALUES (..., (SELECT id::text FROM ticket), %s::jsonb || ..., ...))
        SELECT id, number FROM ticket

    Every other value is bound in a plain VALUES row, so it takes its column's type as in
    an ordinary INSERT. Table and column names come from the models."""
    found = _numbered_inserts.get((entry_count, event_count))
    if found is not None:
        return found
    qn = connection.ops.quote_name
    counter = qn("last_ticket_number")

    def insert(model: Any, rows: int) -> tuple[list[Any], str]:
        columns = [f for f in model._meta.concrete_fields if not f.primary_key]
        row = ", ".join(
            _COMPUTED[f.name].format(counter=counter) if f.name in _COMPUTED else "%s"
            for f in columns
        )
        names = ", ".join(qn(f.column) for f in columns)
        values = ", ".join([f"({row})"] * rows)
        table = qn(model._meta.db_table)
        return columns, f"INSERT INTO {table} ({names}) VALUES {values}"  # noqa: S608

    ticket_columns, ticket_insert = insert(Ticket, 1)
    entry_columns, entry_insert = insert(TimelineEntry, entry_count)
    event_columns, event_insert = insert(OutboxEvent, event_count)
    organizations = qn(Organization._meta.db_table)
    sql = (
        f"WITH next_number AS (UPDATE {organizations} SET {counter} = {counter} + 1 "  # noqa: S608
        f"WHERE {qn('id')} = %s RETURNING {counter}), "
        f"ticket AS ({ticket_insert} RETURNING {qn('id')} AS id, {qn('number')} AS number)"
    )
    if entry_count:
        sql += f", timeline AS ({entry_insert})"
    if event_count:
        sql += f", outbox AS ({event_insert})"
    sql += " SELECT id, number FROM ticket"
    found = (sql, ticket_columns, entry_columns, event_columns)
    _numbered_inserts[(entry_count, event_count)] = found
    return found


def _open_loads(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Ticket.objects.filter(assignee_id__in=user_ids, status__in=sorted(OPEN_STATUSES))
        .values("assignee_id")
        .annotate(n=Count("id"))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


def _pick_agent(organization: Organization, tier: Tier, category: Category | None, now: Any) -> Any:
    """The agent the tier's strategy gives a ticket to now, or None (manual tier, nobody on
    shift). Only reads; the caller marks the pick inside its transaction."""
    return Picker(now).pick(organization, tier, category=category)


class Picker:
    """Picks agents for several tickets in one transaction: the on-shift candidates of each
    (organization, tier) are read once, and the loads count the picks made so far, so a
    batch spreads over the agents exactly as one-by-one picks would."""

    def __init__(self, now: Any) -> None:
        self.now = now
        self._pools: dict[tuple[int, int], list[Any]] = {}
        self._picked: dict[int, int] = {}

    def _loads(self, user_ids: list[int]) -> dict[int, int]:
        loads = _open_loads(user_ids)
        return {u: loads.get(u, 0) + self._picked.get(u, 0) for u in user_ids}

    def pick(
        self,
        organization: Organization,
        tier: Tier,
        *,
        ticket: Ticket | None = None,
        category: Category | None = None,
    ) -> Any:
        """For ``ticket``'s category (read only for skill matching), or ``category``."""
        if tier.assignment_strategy == AssignmentStrategy.MANUAL:
            return None
        key = (organization.pk, tier.pk)
        if key not in self._pools:
            self._pools[key] = assignment.candidates(organization, tier, self.now)
        picked = assignment.choose(
            tier.assignment_strategy,
            self._pools[key],
            category=(ticket.category if ticket is not None else category)
            if tier.assignment_strategy == AssignmentStrategy.SKILL_MATCH
            else None,
            loads=self._loads,
        )  # fmt: skip
        if picked is not None:
            self._picked[picked.user_id] = self._picked.get(picked.user_id, 0) + 1
        return picked


def _assigned_entry(ticket: Ticket, tier: Tier) -> TimelineEntry:
    assert ticket.assignee is not None
    return _timeline(
        ticket,
        None,
        TimelineKind.ASSIGNED,
        field="assignee",
        new=f"{ticket.assignee.email} ({tier.get_assignment_strategy_display().lower()})",
    )


def _add_tags(ticket: Ticket, names: list[str]) -> list[Tag]:
    wanted = sorted({n.strip().lower() for n in names if n.strip()})
    existing = {t.name: t for t in Tag.objects.filter(name__in=wanted)}
    missing = [Tag(name=n) for n in wanted if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=wanted)}
    ticket.tags.add(*existing.values())
    return sorted(existing.values(), key=lambda t: t.name)


def route_intake(
    *,
    organization: Organization,
    subject: str,
    description: str = "",
    source: str = Source.API,
    requester: User | None = None,
    category: Category | None = None,
    impact: int | None = None,
    urgency: int | None = None,
    priority: str | None = None,
) -> routing.Decision:
    """Where a new ticket like this goes, and why (only reads): the routing rules see the
    priority the matrix gives it unless one was chosen. ticket_create and the dry-run both
    ask here."""
    impact = impact or (category.default_impact if category else 2)
    urgency = urgency or (category.default_urgency if category else 2)
    return routing.route(
        routing.Sample(
            organization_id=organization.pk,
            category=category,
            priority=priority or priority_for(impact, urgency),
            source=source,
            requester_id=requester.pk if requester else None,
            subject=subject,
            description=description,
        ),
        routing.rules_for(organization.pk),
    )


@config.pinned()
def ticket_create(
    *,
    actor: User,
    organization: Organization,
    subject: str,
    description: str = "",
    source: str = Source.API,
    requester: User | None = None,
    category: Category | None = None,
    impact: int | None = None,
    urgency: int | None = None,
    priority: str | None = None,
    tier: Tier | None = None,
    assignee: User | None = None,
    details: Mapping[str, Any] | None = None,
) -> Ticket:
    """Open a ticket in ``organization``.

    Requesters open tickets for themselves in their own organization; staff for any
    requester of an organization they serve. Priority comes from the impact x urgency matrix
    (defaults from the category) unless given; the tier from the category, else the lowest.
    """
    policy.require(actor, "ticket.create")
    if not policy.can_see_organization(actor, organization.pk):
        raise ValidationFailed.for_field("organization", "no such organization")
    if actor.role == Role.REQUESTER:
        if requester is not None and requester.pk != actor.pk:
            raise ValidationFailed.for_field("requester", NO_SUCH_REQUESTER)
        if any(v is not None for v in (tier, assignee, priority)):
            raise PermissionDenied("Requesters may not set tier, assignee or priority.")
        requester = actor
    if requester is None:
        raise ValidationFailed.for_field("requester", "a ticket needs a requester")
    if (
        requester.role != Role.REQUESTER
        or requester.organization_id != organization.pk
        or not requester.is_active
    ):
        raise ValidationFailed.for_field("requester", NO_SUCH_REQUESTER)
    if source not in Source.values:
        raise ValidationFailed.for_field("source", f"one of {', '.join(Source.values)}")
    subject = _text("subject", subject, max_length=SUBJECT_MAX, required=True)
    description = _text("description", description, max_length=BODY_MAX, required=False)
    category = _category_for(organization, category)
    # the answers to the chosen category's own questions (a rule may re-file the ticket
    # afterwards; what the requester was asked stays with it)
    answers = form_fields.check_answers(category.form_fields if category else [], details or {})
    assignee = _assignee_for(organization, assignee)
    _check_choice("impact", impact)
    _check_choice("urgency", urgency)
    if priority is not None and priority not in Priority.values:
        raise ValidationFailed.for_field("priority", "P1, P2, P3 or P4")

    decision = route_intake(
        organization=organization,
        subject=subject,
        description=description,
        source=source,
        requester=requester,
        category=category,
        impact=impact,
        urgency=urgency,
        priority=priority,
    )
    category = decision.category
    impact = impact or (category.default_impact if category else 2)
    urgency = urgency or (category.default_urgency if category else 2)
    chosen_priority = priority or decision.priority
    route_note = decision.summary()
    if tier is not None:
        route_note = f"tier {tier.code} set by the creator; " + route_note
    tier = tier or decision.tier
    if tier is None:
        raise ValidationFailed.for_field("tier", "no tiers are configured")
    if assignee is None and decision.assignee_id is not None:
        # A rule's assignee who no longer serves the organization, or who works in another
        # tier than the one the ticket ends up in, is skipped, not an error.
        ruled = User.objects.filter(pk=decision.assignee_id).select_related("agent_profile").first()
        try:
            assignee = _assignee_for(organization, ruled)
            profile = getattr(assignee, "agent_profile", None)
            if profile is not None and profile.tier_id != tier.pk:
                assignee = None
                raise ValidationFailed.for_field("assignee", "in another tier")
        except ValidationFailed:
            route_note += f"; its assignee (#{decision.assignee_id}) cannot take it"

    now = clock.now()
    picked = _pick_agent(organization, tier, category, now) if assignee is None else None
    if picked is not None:
        assignee = picked.user
    ticket = Ticket(
        organization=organization,
        subject=subject,
        description=description,
        requester=requester,
        assignee=assignee,
        tier=tier,
        category=category,
        impact=impact,
        urgency=urgency,
        priority=chosen_priority or priority_for(impact, urgency),
        priority_is_manual=chosen_priority is not None,
        status=Status.NEW,
        source=source,
        created_at=now,
        updated_at=now,
        tier_entered_at=now,
        created_by=actor,
        details=answers,
    )
    # Everything above only reads. The write transaction starts here and holds the number
    # lock (SQLite: the database write lock) only for the writes: short, so concurrent
    # creates queue less.
    entries = [
        _timeline(ticket, actor, TimelineKind.CREATED),
        _timeline(ticket, None, TimelineKind.ROUTED, field="tier", new=route_note),
    ]
    if picked is not None:
        entries.append(_assigned_entry(ticket, tier))
    events = [
        new_event(
            "ticket.created",
            organization=organization,
            aggregate_type="ticket",
            aggregate_id="",  # the new ticket's id and key: _insert_new
            payload=_unnumbered_payload(ticket)
            | {
                "source": source,
                "requester_id": requester.pk,
                "assignee_id": ticket.assignee_id,
                "routing_rule_id": decision.rule.pk if decision.rule else None,
            },
        )
    ]
    if picked is not None:
        events.append(
            new_event(
                "ticket.assigned",
                organization=organization,
                aggregate_type="ticket",
                aggregate_id="",
                payload=_unnumbered_payload(ticket) | {"assignee_id": picked.user_id},
            )
        )
    with transaction.atomic():
        _insert_new(ticket, entries, events)
        if picked is not None:
            assignment.mark_assigned(picked, now)
        tags = _add_tags(ticket, decision.tags) if decision.tags else []
        ticket.loaded_tags = [t.name for t in tags]
        lifecycle.notify([TicketChange(ticket, Change.CREATED, actor, now)])
    return ticket


_RELATED = ("organization", "tier", "category", "assignee", "requester")


def lock(ticket: Ticket, expected_version: int | None) -> Ticket:
    """Reload ``ticket`` under a row lock and check the caller saw its latest version.

    Only the ticket's own row is read; related rows the caller already holds (same ids) are
    reused, the rest load when touched. A seven-table join under the lock cost more (on
    PostgreSQL mostly planning) than it saved."""
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    for name in _RELATED:
        field = Ticket._meta.get_field(name)
        if field.is_cached(ticket):  # type: ignore[union-attr]
            related = getattr(ticket, name)
            if related is not None and related.pk == getattr(locked, f"{name}_id"):
                setattr(locked, name, related)
    if expected_version is not None and locked.version != expected_version:
        raise PreconditionFailed(
            f"{locked.key} is at version {locked.version}, you sent {expected_version}; "
            "reload it and apply your change again."
        )
    return locked


def lock_many(ids: list[int]) -> dict[int, Ticket]:
    """Lock the tickets ``ids`` (those that still exist) in id order, the order every batch
    locks in so that two never wait on each other in a circle, with the related rows a
    sweep reads (the rest load when touched)."""
    return {
        t.pk: t
        for t in Ticket.objects.select_for_update(of=("self",))
        .select_related("organization", "tier", "assignee")
        .filter(pk__in=sorted(set(ids)))
        .order_by("pk")
    }


def save(ticket: Ticket, fields: list[str], entries: list[TimelineEntry]) -> None:
    """Write the changed ``fields`` of a locked ticket, bump its version and add the
    timeline ``entries``: the last step of every change."""
    save_all([ticket], fields, entries)


def save_all(tickets: list[Ticket], fields: list[str], entries: list[TimelineEntry]) -> None:
    """``save`` for several locked tickets that changed the same ``fields``: one UPDATE."""
    now = clock.now()
    for ticket in tickets:
        ticket.version += 1
        ticket.updated_at = now
    if len(tickets) == 1:
        tickets[0].save(update_fields=[*fields, "version", "updated_at"])
    elif tickets:
        bulk.update_each(tickets, [*fields, "version", "updated_at"])
    bulk.insert_all(entries)


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, User):
        return value.email
    if isinstance(value, Tier | Category):
        return value.code if isinstance(value, Tier) else value.slug
    return str(value)


@transaction.atomic
@config.pinned()
def ticket_update(
    *,
    actor: User,
    ticket: Ticket,
    expected_version: int | None = None,
    subject: str = UNSET,
    description: str = UNSET,
    category: Category | None = UNSET,
    impact: int = UNSET,
    urgency: int = UNSET,
    priority: str | None = UNSET,
    assignee: User | None = UNSET,
    tier: Tier = UNSET,
) -> Ticket:
    """Change fields of a ticket the actor can see. Only given fields change; ``priority``
    None returns it to the matrix. Returns the ticket unchanged (same version) when nothing
    differs. Tier changes here are corrections; escalation has its own service."""
    if not policy.allowed(actor, "ticket.update"):
        raise PermissionDenied("Your role may not edit tickets.")
    ticket = lock(ticket, expected_version)
    if ticket.status == Status.CLOSED:
        raise InvalidTransition.for_field("status", "a closed ticket cannot be changed")
    org = ticket.organization
    new: dict[str, Any] = {}
    if subject is not UNSET:
        new["subject"] = _text("subject", subject, max_length=SUBJECT_MAX, required=True)
    if description is not UNSET:
        new["description"] = _text("description", description, max_length=BODY_MAX, required=False)
    if category is not UNSET:
        new["category"] = _category_for(org, category)
    if assignee is not UNSET:
        new["assignee"] = _assignee_for(org, assignee)
    if tier is not UNSET:
        if tier is None:
            raise ValidationFailed.for_field("tier", "may not be empty")
        new["tier"] = tier
    if impact is not UNSET:
        _check_choice("impact", impact)
        new["impact"] = impact
    if urgency is not UNSET:
        _check_choice("urgency", urgency)
        new["urgency"] = urgency
    if priority is not UNSET:
        if priority is not None and priority not in Priority.values:
            raise ValidationFailed.for_field("priority", "P1, P2, P3 or P4")
        new["priority_is_manual"] = priority is not None
        if priority is not None:
            new["priority"] = priority
    manual = new.get("priority_is_manual", ticket.priority_is_manual)
    if not manual:
        new["priority"] = priority_for(
            new.get("impact", ticket.impact), new.get("urgency", ticket.urgency)
        )

    changed = [f for f, v in new.items() if getattr(ticket, f) != v]
    if not changed:
        return ticket
    now = clock.now()
    hooks = []
    if "tier" in changed:
        ticket.tier_entered_at = now
        changed.append("tier_entered_at")
        hooks.append(
            TicketChange(ticket, Change.TIER, actor, now, ticket.tier.code, new["tier"].code)
        )
    if "priority" in changed:
        hooks.append(
            TicketChange(ticket, Change.PRIORITY, actor, now, ticket.priority, new["priority"])
        )
    entries = []
    changes: dict[str, dict[str, str]] = {}
    for field in changed:
        if field == "tier_entered_at":
            continue
        old = getattr(ticket, field)
        setattr(ticket, field, new[field])
        if field == "priority_is_manual":
            continue
        changes[field] = {"old": _display(old), "new": _display(new[field])}
        entries.append(
            _timeline(
                ticket,
                actor,
                TimelineKind.FIELD_CHANGED,
                field=field,
                old=_display(old),
                new=_display(new[field]),
            )
        )
    save(ticket, changed, entries)
    emit(
        "ticket.updated",
        organization=org,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=_ticket_payload(ticket) | {"changes": changes, "actor_id": actor.pk},
    )
    lifecycle.notify(hooks)
    return ticket


def within_reopen_window(ticket: Ticket) -> bool:
    """Whether a requester may still reopen ``ticket`` (resolved, not closed): within
    ``REOPEN_WINDOW_DAYS`` of its resolution."""
    window = dt.timedelta(days=settings.REOPEN_WINDOW_DAYS)
    return ticket.resolved_at is None or clock.now() - ticket.resolved_at <= window


def may_reopen(actor: User, ticket: Ticket) -> bool:
    """Whether ``actor`` may reopen ``ticket`` now, as ticket_transition decides it (for
    pages that offer the button only when it would work)."""
    if ticket.status != Status.RESOLVED:
        return False
    if actor.role == Role.REQUESTER:
        return ticket.requester_id == actor.pk and within_reopen_window(ticket)
    return policy.allowed(actor, "ticket.transition")


@transaction.atomic
@config.pinned()
def ticket_transition(
    *,
    actor: User | None,
    ticket: Ticket,
    to_status: str,
    expected_version: int | None = None,
    resolution_code: str | None = None,
    resolution_note: str | None = None,
) -> Ticket:
    """Move a ticket through the state machine (see TRANSITIONS). Resolving needs a
    resolution code and note; reopening counts on the ticket. ``actor`` None is tierdesk
    itself (automation resolving what it did), for services, never for a request."""
    if to_status not in Status.values:
        raise ValidationFailed.for_field("status", f"one of {', '.join(Status.values)}")
    ticket = lock(ticket, expected_version)
    current = ticket.status
    if actor is None:
        pass
    elif actor.role == Role.REQUESTER:
        if ticket.requester_id != actor.pk:
            raise PermissionDenied("Only the ticket's own requester may reopen or close it.")
        if (current, to_status) not in REQUESTER_TRANSITIONS:
            raise PermissionDenied("Requesters may only reopen or close a resolved ticket.")
        if to_status == Status.OPEN and not within_reopen_window(ticket):
            raise InvalidTransition.for_field(
                "status",
                f"resolved more than {settings.REOPEN_WINDOW_DAYS} days ago: "
                "please open a new ticket",
            )
    elif not policy.allowed(actor, "ticket.transition"):
        raise PermissionDenied("Your role may not change the status.")
    if to_status == current:
        return ticket
    if to_status not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (closed is final)"
        raise InvalidTransition.for_field(
            "status", f"a {current} ticket cannot move to {to_status}; allowed: {allowed}"
        )

    fields = ["status"]
    entries = [
        _timeline(
            ticket, actor, TimelineKind.STATUS_CHANGED, field="status", old=current, new=to_status
        )
    ]
    now = clock.now()
    event = "ticket.status_changed"
    if to_status == Status.RESOLVED:
        by_people = [c for c in ResolutionCode.values if c != ResolutionCode.AUTOMATED]
        if resolution_code not in (ResolutionCode.values if actor is None else by_people):
            raise ValidationFailed.for_field(
                "resolution_code", f"required, one of {', '.join(by_people)}"
            )
        note = _text("resolution_note", resolution_note or "", max_length=BODY_MAX, required=True)
        ticket.resolution_code, ticket.resolution_note, ticket.resolved_at = (
            resolution_code,
            note,
            now,
        )
        fields += ["resolution_code", "resolution_note", "resolved_at"]
        entries.append(
            _timeline(
                ticket,
                actor,
                TimelineKind.FIELD_CHANGED,
                field="resolution",
                new=f"{resolution_code}: {note}",
            )
        )
        event = "ticket.resolved"
    elif current == Status.RESOLVED and to_status == Status.OPEN:
        ticket.reopen_count += 1
        ticket.resolved_at = None
        ticket.resolution_code, ticket.resolution_note = "", ""
        fields += ["reopen_count", "resolved_at", "resolution_code", "resolution_note"]
        event = "ticket.reopened"
    elif to_status == Status.CLOSED:
        ticket.closed_at = now
        fields.append("closed_at")
        event = "ticket.closed"
    ticket.status = to_status
    save(ticket, fields, entries)
    emit(
        event,
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=_ticket_payload(ticket)
        | {"from": current, "to": to_status, "actor_id": actor.pk if actor else None},
    )
    lifecycle.notify([TicketChange(ticket, Change.STATUS, actor, now, current, to_status)])
    return ticket


RATING_COMMENT_MAX = 4000


@transaction.atomic
def ticket_rate(
    *, actor: User, ticket: Ticket, score: int, comment: str = ""
) -> SatisfactionRating:
    """The requester rates a resolved (or closed) ticket, once: ``score`` 1-5 and an
    optional comment."""
    if actor.role != Role.REQUESTER or ticket.requester_id != actor.pk:
        raise PermissionDenied("Only the ticket's own requester rates it.")
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise ValidationFailed.for_field("score", "a whole number from 1 to 5")
    comment = _text("comment", comment, max_length=RATING_COMMENT_MAX, required=False)
    ticket = lock(ticket, None)
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise InvalidTransition.for_field("score", "only a resolved ticket can be rated")
    if SatisfactionRating.objects.filter(ticket=ticket).exists():
        raise Conflict.for_field("score", "this ticket has been rated already")
    now = clock.now()
    rating = SatisfactionRating.objects.create(
        ticket=ticket,
        organization=ticket.organization,
        rated_by=actor,
        score=score,
        comment=comment,
        created_at=now,
    )
    save(
        ticket,
        [],
        [_timeline(ticket, actor, TimelineKind.RATED, field="rating", new=f"{score}/5")],
    )
    emit(
        "ticket.rated",
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=_ticket_payload(ticket) | {"score": score, "has_comment": bool(comment)},
    )
    return rating


@transaction.atomic
@config.pinned()
def ticket_comment(*, actor: User, ticket: Ticket, body: str, internal: bool = False) -> Comment:
    """Add a public reply or an internal note (staff only). A staff member's first public
    reply is the ticket's first response; a requester's reply on a ticket pending the
    customer puts it back to open."""
    policy.require(actor, "ticket.internal_note" if internal else "ticket.reply")
    ticket = lock(ticket, None)
    if ticket.status == Status.CLOSED:
        raise InvalidTransition.for_field("status", "a closed ticket takes no more comments")
    body = _text("body", body, max_length=BODY_MAX, required=True)
    now = clock.now()
    comment = Comment.objects.create(
        ticket=ticket, author=actor, body=body, is_internal=internal, created_at=now
    )
    fields: list[str] = []
    kind = TimelineKind.INTERNAL_NOTE if internal else TimelineKind.COMMENT
    entries = [_timeline(ticket, actor, kind, comment=comment, internal=internal)]
    hooks = []
    if actor.is_staff_member and not internal:
        hooks.append(TicketChange(ticket, Change.PUBLIC_REPLY, actor, now))
        if ticket.first_response_at is None:
            ticket.first_response_at = now
            fields.append("first_response_at")
    if actor.role == Role.REQUESTER and ticket.status == Status.PENDING_CUSTOMER:
        hooks.append(TicketChange(ticket, Change.STATUS, actor, now, ticket.status, Status.OPEN))
        entries.append(
            _timeline(
                ticket,
                actor,
                TimelineKind.STATUS_CHANGED,
                field="status",
                old=ticket.status,
                new=Status.OPEN,
            )
        )
        ticket.status = Status.OPEN
        fields.append("status")
    save(ticket, fields, entries)
    emit(
        "ticket.commented",
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=_ticket_payload(ticket)
        | {"comment_id": comment.pk, "internal": internal, "author_id": actor.pk},
    )
    lifecycle.notify(hooks)
    return comment


@dataclass(frozen=True)
class TierMove:
    """One ticket's move to another tier (see ``move_tiers``)."""

    ticket: Ticket  # locked and current
    to_tier: Tier
    kind: str  # the timeline entry's kind
    note: str
    actor: User | None = None
    assignee: User | None = None  # takes the ticket; else the new tier's strategy picks


def move_tiers(moves: list[TierMove]) -> list[TimelineEntry]:
    """Move locked tickets to other tiers (escalation's primitive; it holds the locks and
    writes its own record) and save them, with their timeline entries, in a few statements
    for any number of tickets. Each ticket leaves its assignee behind unless the move names
    one (who must serve the organization); otherwise the new tier's strategy picks one.
    Returns the timeline entries written."""
    now = clock.now()
    picker = Picker(now)
    entries: list[TimelineEntry] = []
    changes: list[TicketChange] = []
    for move in moves:
        ticket, actor = move.ticket, move.actor
        old_tier = ticket.tier
        ticket.tier, ticket.tier_entered_at = move.to_tier, now
        entries.append(
            _timeline(ticket, actor, move.kind, field="tier", old=old_tier.code, new=move.note)
        )
        old_assignee = ticket.assignee
        if move.assignee is not None:
            ticket.assignee = _assignee_for(ticket.organization, move.assignee)
        else:
            picked = picker.pick(ticket.organization, move.to_tier, ticket=ticket)
            ticket.assignee = picked.user if picked is not None else None
            if picked is not None:
                assignment.mark_assigned(picked, now)
        if ticket.assignee != old_assignee:
            entries.append(
                _timeline(
                    ticket,
                    actor,
                    TimelineKind.ASSIGNED if move.assignee is None else TimelineKind.FIELD_CHANGED,
                    field="assignee",
                    old=_display(old_assignee),
                    new=_display(ticket.assignee),
                )
            )
        changes.append(
            TicketChange(ticket, Change.TIER, actor, now, old_tier.code, ticket.tier.code)
        )
    lifecycle.notify(changes)
    save_all([m.ticket for m in moves], ["tier", "tier_entered_at", "assignee"], entries)
    return entries


def assign_waiting(*, limit: int = 200) -> int:
    """Hand unassigned, unresolved tickets of automatically assigned tiers to agents who are
    on shift now, most urgent and oldest first. Run by the worker every minute, so tickets
    that arrived while nobody was on shift are picked up when a shift starts. Returns how
    many were assigned."""
    done = 0
    now = clock.now()
    for tier in Tier.objects.exclude(assignment_strategy=AssignmentStrategy.MANUAL):
        waiting = (
            Ticket.objects.filter(
                tier=tier, assignee__isnull=True, status__in=[Status.NEW, Status.OPEN]
            )
            .select_related("organization", "category", "tier")
            .order_by("priority", "created_at", "id")[:limit]
        )
        on_shift: dict[int, list[Any]] = {}
        for ticket in waiting:
            org_id = ticket.organization_id
            if org_id not in on_shift:
                on_shift[org_id] = assignment.candidates(ticket.organization, tier, now)
            if not on_shift[org_id]:
                continue
            with transaction.atomic():
                locked = lock(ticket, None)
                if locked.assignee_id is not None or locked.tier_id != tier.pk:
                    continue
                picked = assignment.choose(
                    tier.assignment_strategy,
                    on_shift[org_id],
                    category=ticket.category,
                    loads=_open_loads,
                )
                if picked is None:
                    continue
                assignment.mark_assigned(picked, now)
                locked.assignee = picked.user
                save(locked, ["assignee"], [_assigned_entry(locked, tier)])
                emit(
                    "ticket.assigned",
                    organization=ticket.organization,
                    aggregate_type="ticket",
                    aggregate_id=locked.pk,
                    payload=_ticket_payload(locked) | {"assignee_id": picked.user_id},
                )
                done += 1
    return done


def attachment_path(attachment: Attachment) -> Path:
    """Where the bytes of ``attachment`` live; callers must have authorized the reader."""
    return files.path(attachment.storage_key)


def attachment_add(
    *,
    actor: User,
    ticket: Ticket,
    filename: str,
    content: bytes,
    internal: bool = False,
) -> Attachment:
    """Store a file on the ticket. Checks size and type first; the bytes are written and
    synced before the row is committed, and removed again if the row cannot be written."""
    policy.require(actor, "ticket.internal_note" if internal else "ticket.attach")
    name = files.safe_filename(filename)
    ext = files.extension(name)
    if ext not in settings.ATTACHMENT_ALLOWED_EXTENSIONS:
        raise ValidationFailed.for_field(
            "file", f"files of type .{ext or '(none)'} are not accepted"
        )
    files.check_size(content)
    stored = files.store(content)
    try:
        with transaction.atomic():
            locked = lock(ticket, None)
            if locked.status == Status.CLOSED:
                raise InvalidTransition.for_field("status", "a closed ticket takes no more files")
            attachment = Attachment.objects.create(
                ticket=locked,
                uploaded_by=actor,
                storage_key=stored.storage_key,
                filename=name,
                content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                size=stored.size,
                sha256=stored.sha256,
                is_internal=internal,
                created_at=clock.now(),
            )
            save(
                locked,
                [],
                [_timeline(locked, actor, TimelineKind.ATTACHMENT, new=name, internal=internal)],
            )
            emit(
                "ticket.attachment_added",
                organization=locked.organization,
                aggregate_type="ticket",
                aggregate_id=locked.pk,
                payload=_ticket_payload(locked)
                | {
                    "attachment_id": attachment.pk,
                    "filename": name,
                    "size": len(content),
                    # Read by channels.webhooks.for_organizations: an internal file's
                    # name must not reach an organization's webhook.
                    "internal": internal,
                },
            )
    except BaseException:
        files.discard(stored.storage_key)
        raise
    return attachment


# --- Links between tickets, and merging a duplicate into its primary -------------------
# Appended with the linking feature: links relate two tickets of one organization; a merge
# closes a duplicate into the ticket it repeats.

NO_SUCH_TICKET = "no such ticket in this organization"
MERGE_CARRY_MAX = BODY_MAX - 2_000  # room for the note's own lines


def _lock_pair(
    first: Ticket, second: Ticket, first_version: int | None, second_version: int | None
) -> tuple[Ticket, Ticket]:
    """Lock two tickets in id order (the order every service locks in, so that two
    requests on the same pair never wait on each other in a circle) and check the
    versions their callers saw. Returns them as (first, second)."""
    wanted = {first.pk: (first, first_version), second.pk: (second, second_version)}
    locked = {pk: lock(*wanted[pk]) for pk in sorted(wanted)}
    return locked[first.pk], locked[second.pk]


def _check_pair(ticket: Ticket, other: Ticket, field: str) -> None:
    """Both tickets of one organization, and two of them. The other organization's ticket
    gets the message a missing one gets: a link must not tell anybody that it exists."""
    if other.organization_id != ticket.organization_id:
        raise ValidationFailed.for_field(field, NO_SUCH_TICKET)
    if other.pk == ticket.pk:
        raise ValidationFailed.for_field(field, "that is this ticket itself")


def link_label(link: TicketLink, seen_from: Ticket) -> str:
    """How ``link`` reads from ``seen_from``'s side: "Duplicate of" or "Has duplicate"."""
    if link.source_id == seen_from.pk:
        return LinkKind(link.kind).label
    return LINK_INVERSE[link.kind]


def _link_entries(
    link: TicketLink, source: Ticket, target: Ticket, actor: User | None, kind: str
) -> list[TimelineEntry]:
    # Internal: a link names another ticket, which the requester may not be allowed to see.
    return [
        _timeline(
            source,
            actor,
            kind,
            field="link",
            new=f"{link_label(link, source).lower()} {target.key}",
            internal=True,
        ),
        _timeline(
            target,
            actor,
            kind,
            field="link",
            new=f"{link_label(link, target).lower()} {source.key}",
            internal=True,
        ),
    ]


def _existing_link(a: Ticket, b: Ticket) -> TicketLink | None:
    return (
        TicketLink.objects.filter(source=a, target=b).first()
        or TicketLink.objects.filter(source=b, target=a).first()
    )


@transaction.atomic
def ticket_link(
    *,
    actor: User,
    ticket: Ticket,
    other: Ticket,
    kind: str,
    expected_version: int | None = None,
) -> TicketLink:
    """Link ``ticket`` to ``other`` of the same organization: ``ticket`` <kind> ``other``
    ("duplicate of", "related to", "caused by"). Both tickets get an internal timeline
    entry and a new version. Two tickets have one link at most; the same pair again is a
    conflict whatever its kind or direction. ``ticket`` must be open (not closed);
    ``other`` may be closed (a recurrence of an old problem). The caller must have
    authorized reading both tickets."""
    if not policy.allowed(actor, "ticket.update"):
        raise PermissionDenied("Your role may not link tickets.")
    if kind not in LinkKind.values:
        raise ValidationFailed.for_field("kind", f"one of {', '.join(LinkKind.values)}")
    _check_pair(ticket, other, "target")
    ticket, other = _lock_pair(ticket, other, expected_version, None)
    if ticket.status == Status.CLOSED:
        raise InvalidTransition.for_field("status", "a closed ticket takes no more links")
    if (existing := _existing_link(ticket, other)) is not None:
        raise Conflict.for_field(
            "target",
            f"already linked: {ticket.key} {link_label(existing, ticket).lower()} {other.key}",
        )
    link = TicketLink.objects.create(
        organization_id=ticket.organization_id,
        source=ticket,
        target=other,
        kind=kind,
        created_by=actor,
        created_at=clock.now(),
    )
    save_all([ticket, other], [], _link_entries(link, ticket, other, actor, TimelineKind.LINKED))
    emit(
        "ticket.linked",
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=_ticket_payload(ticket)
        | {
            "link_id": link.pk,
            "kind": kind,
            "target_id": other.pk,
            "target_key": other.key,
            "actor_id": actor.pk,
        },
    )
    return link


@transaction.atomic
def ticket_unlink(
    *, actor: User, ticket: Ticket, link_id: int, expected_version: int | None = None
) -> None:
    """Remove the link ``link_id`` from ``ticket`` (either end of it). A link nobody has
    on ``ticket`` is NotFound; the link a merge made stays (the merge cannot be undone).
    ``ticket`` must be open."""
    if not policy.allowed(actor, "ticket.update"):
        raise PermissionDenied("Your role may not unlink tickets.")
    link = (
        TicketLink.objects.filter(pk=link_id)
        .filter(Q(source_id=ticket.pk) | Q(target_id=ticket.pk))
        .first()
    )
    if link is None:
        raise NotFound("No such link on this ticket.")
    other_id = link.target_id if link.source_id == ticket.pk else link.source_id
    other = Ticket.objects.select_related("organization").get(pk=other_id)
    ticket, other = _lock_pair(ticket, other, expected_version, None)
    # read again under the locks: a concurrent unlink may have removed it meanwhile
    link = TicketLink.objects.filter(pk=link_id).first()
    if link is None:
        raise NotFound("No such link on this ticket.")
    if link.is_merge:
        raise Conflict.for_field("link", "a merge made this link; it stays")
    if ticket.status == Status.CLOSED:
        raise InvalidTransition.for_field("status", "a closed ticket cannot be changed")
    source, target = (ticket, other) if link.source_id == ticket.pk else (other, ticket)
    entries = _link_entries(link, source, target, actor, TimelineKind.UNLINKED)
    link.delete()
    save_all([ticket, other], [], entries)
    emit(
        "ticket.unlinked",
        organization=ticket.organization,
        aggregate_type="ticket",
        aggregate_id=ticket.pk,
        payload=_ticket_payload(ticket)
        | {
            "link_id": link_id,
            "kind": link.kind,
            "other_id": other.pk,
            "other_key": other.key,
            "actor_id": actor.pk,
        },
    )


@dataclass(frozen=True)
class MergeResult:
    source: Ticket  # closed, linked "duplicate of" the target
    target: Ticket
    note: Comment  # on the target: what the source carried


def _merge_note(source: Ticket, public: bool) -> str:
    """The note the target gets: the source's description and public replies, oldest
    first, and its attachments by name (they stay on the source)."""
    parts = [f"Merged from {source.key}: {source.subject}"]
    if source.description:
        parts.append(f"Description ({source.requester.full_name}):\n{source.description}")
    replies = (
        Comment.objects.filter(ticket=source, is_internal=False)
        .select_related("author")
        .order_by("created_at", "id")
    )
    for c in replies:
        parts.append(f"{c.author.full_name}, {c.created_at:%Y-%m-%d %H:%M} UTC:\n{c.body}")
    files = Attachment.objects.filter(ticket=source).order_by("created_at", "id")
    if public:
        files = files.filter(is_internal=False)
    names = [f"{a.filename} (/api/v1/attachments/{a.pk})" for a in files]
    if names:
        parts.append(f"Attachments, kept on {source.key}:\n" + "\n".join(names))
    text = "\n\n".join(parts)
    if len(text) > MERGE_CARRY_MAX:
        text = text[:MERGE_CARRY_MAX] + f"\n\n[… cut here; the rest stays on {source.key}]"
    return text


@transaction.atomic
def ticket_merge(
    *,
    actor: User,
    source: Ticket,
    target: Ticket,
    public: bool = False,
    expected_version: int | None = None,
    target_version: int | None = None,
) -> MergeResult:
    """Merge the duplicate ``source`` into ``target`` (same organization): the target gets
    the source's description and public replies as one note (internal unless ``public``),
    naming the source; the source is linked "duplicate of" the target (replacing any other
    link between the two), gets a "merged into" entry, and is resolved as a duplicate and
    closed through the state machine, so its SLA clocks stop as for any close.

    Both tickets are locked in id order and their versions checked; everything happens in
    this one transaction or not at all. The caller must have authorized reading both."""
    if not (policy.allowed(actor, "ticket.transition") and policy.allowed(actor, "ticket.update")):
        raise PermissionDenied("Your role may not merge tickets.")
    _check_pair(source, target, "target")
    source, target = _lock_pair(source, target, expected_version, target_version)
    if source.status == Status.CLOSED:
        raise InvalidTransition.for_field(
            "status", f"{source.key} is closed: a closed ticket cannot be merged"
        )
    if target.status == Status.CLOSED:
        raise InvalidTransition.for_field(
            "target", f"{target.key} is closed: merge into a ticket that is not closed"
        )
    if public and source.requester_id != target.requester_id:
        # a public note would show one requester's ticket to another
        raise ValidationFailed.for_field(
            "public",
            "the two tickets have different requesters: the note can only be internal",
        )
    note = ticket_comment(
        actor=actor,
        ticket=target,
        body=_merge_note(source, public),
        internal=not public,
    )
    target = note.ticket
    existing = _existing_link(source, target)
    if existing is not None:
        existing.delete()
    link = TicketLink.objects.create(
        organization_id=source.organization_id,
        source=source,
        target=target,
        kind=LinkKind.DUPLICATE_OF,
        is_merge=True,
        created_by=actor,
        created_at=clock.now(),
    )
    save_all(
        [source, target],
        [],
        [
            _timeline(source, actor, TimelineKind.MERGED, field="merged_into", new=target.key),
            _timeline(
                target,
                actor,
                TimelineKind.MERGED,
                field="merged_from",
                new=source.key,
                internal=not public,
            ),
        ],
    )
    if source.status != Status.RESOLVED:
        source = ticket_transition(
            actor=actor,
            ticket=source,
            to_status=Status.RESOLVED,
            resolution_code=ResolutionCode.DUPLICATE,
            resolution_note=f"Merged into {target.key}.",
        )
    source = ticket_transition(actor=actor, ticket=source, to_status=Status.CLOSED)
    emit(
        "ticket.merged",
        organization=source.organization,
        aggregate_type="ticket",
        aggregate_id=source.pk,
        payload=_ticket_payload(source)
        | {
            "target_id": target.pk,
            "target_key": target.key,
            "link_id": link.pk,
            "comment_id": note.pk,
            "public": public,
            "actor_id": actor.pk,
        },
    )
    return MergeResult(source=source, target=target, note=note)
