"""Reads of tickets, always built outward from what the actor may see."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.core import signing
from django.db.models import Count, Q, QuerySet

from tierdesk.core import clock, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, Role, User
from tierdesk.core.parse import as_id
from tierdesk.tickets.models import (
    LINK_INVERSE,
    OPEN_STATUSES,
    Attachment,
    Comment,
    LinkKind,
    SatisfactionRating,
    Status,
    Ticket,
    TicketLink,
    TimelineEntry,
)
from tierdesk.tiers.models import Tier
from tierdesk.tiers.queries import tiers_by_level

TICKET_KEY = re.compile(r"^(?P<code>[A-Za-z][A-Za-z0-9]{1,9})-(?P<number>\d{1,9})$", re.ASCII)

# ?ordering= value -> (model field, value type). Only these may be sorted on.
ORDERINGS: dict[str, tuple[str, type]] = {
    "created_at": ("created_at", dt.datetime),
    "updated_at": ("updated_at", dt.datetime),
    "priority": ("priority", str),
    "number": ("number", int),
}


def ticket_scope(actor: User) -> QuerySet[Ticket]:
    """Every ticket the actor may see: staff the organizations they serve (admins all),
    requesters their own, and their organization's when their role allows."""
    qs = Ticket.objects.all()
    if not actor.is_active:
        return qs.none()
    if actor.role == Role.ADMIN:
        return qs
    if actor.role in (Role.AGENT, Role.MANAGER):
        return qs.filter(organization__in=policy.visible_organizations(actor))
    if actor.sees_organization_tickets and actor.organization_id is not None:
        return qs.filter(organization_id=actor.organization_id)
    return qs.filter(requester=actor)


def ticket_get(*, actor: User, ref: str | int) -> Ticket:
    """The ticket ``ref`` (``ACME-1042`` or its id) if the actor may see it, else NotFound.
    Loads organization, requester, assignee, tier and category."""
    qs = ticket_scope(actor).select_related(
        "organization", "requester", "assignee", "tier", "category"
    )
    ticket: Ticket | None = None
    text = str(ref).strip()
    if (ticket_id := as_id(text)) is not None:
        ticket = qs.filter(pk=ticket_id).first()
    elif match := TICKET_KEY.match(text):
        ticket = qs.filter(
            organization__code=match["code"].upper(), number=int(match["number"])
        ).first()
    if ticket is None:
        raise NotFound(f"No ticket {text[:40]!r}.")
    return ticket


def _clock_model() -> Any:
    # The SLA app hangs its clocks on tickets; reached through the relation, so that this
    # app does not import the one that builds on it.
    return Ticket._meta.get_field("sla_clocks").related_model


def _clocks() -> QuerySet[Any]:
    return _clock_model()._default_manager.select_related("policy__calendar").order_by("id")


def load_related(tickets: list[Ticket]) -> list[Ticket]:
    """Give ``tickets`` their organizations and tiers (one small query; tiers from the
    configuration cache), and their tag names and SLA clocks (with policy and calendar)
    in two queries onto ``loaded_tags`` / ``loaded_clocks`` — the same few queries
    whatever their number. Plain lists: Django's prefetch of a many-to-many relation
    builds a filtered queryset per ticket, which cost more than the page's queries."""
    if not tickets:
        return tickets
    ids = [t.pk for t in tickets]
    organizations = Organization.objects.in_bulk({t.organization_id for t in tickets})
    tiers = {t.pk: t for t in tiers_by_level()}
    for t in tickets:
        t.organization = organizations[t.organization_id]
        tier = tiers.get(t.tier_id)
        t.tier = tier if tier is not None else Tier.objects.get(pk=t.tier_id)
    tags: dict[int, list[str]] = {i: [] for i in ids}
    through = Ticket.tags.through._default_manager
    for ticket_id, name in (
        through.filter(ticket_id__in=ids)
        .order_by("tag__name")
        .values_list("ticket_id", "tag__name")
    ):
        tags[ticket_id].append(name)
    clocks: dict[int, list[Any]] = {i: [] for i in ids}
    for c in _clocks().filter(ticket_id__in=ids):
        clocks[c.ticket_id].append(c)
    for t in tickets:
        t.loaded_tags, t.loaded_clocks = tags[t.pk], clocks[t.pk]
    return tickets


def tag_names(ticket: Ticket) -> list[str]:
    """The ticket's tag names, by name."""
    if ticket.loaded_tags is None:
        ticket.loaded_tags = list(ticket.tags.order_by("name").values_list("name", flat=True))
    return ticket.loaded_tags


def clocks_of(ticket: Ticket) -> list[Any]:
    """The ticket's SLA clocks (with policy and calendar), oldest first."""
    if ticket.loaded_clocks is None:
        ticket.loaded_clocks = list(_clocks().filter(ticket_id=ticket.pk))
    return ticket.loaded_clocks


@dataclass
class TicketFilters:
    status: list[str] = field(default_factory=list)
    tier: list[str] = field(default_factory=list)
    organization: list[str] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    assignee: str | None = None  # a user id, "me" or "none"
    requester: int | None = None
    tags: list[str] = field(default_factory=list)  # every one of them (names, any case)
    text: str | None = None
    breached: bool | None = None  # has an SLA clock that breached and is not stopped
    breaching_within: int | None = None  # minutes: a running clock falls due within them


@dataclass
class Page:
    items: list[Ticket]
    next_cursor: str | None


def _filters_digest(filters: TicketFilters, ordering: str) -> str:
    """A fingerprint of what the list shows: equal for filters that select the same rows
    (codes in any case, values in any order)."""
    normal = {
        name: sorted({str(v).upper() for v in value}) if isinstance(value, list) else value
        for name, value in vars(filters).items()
    }
    raw = json.dumps([ordering, sorted(normal.items())], default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


_CURSOR_SALT = "tierdesk.tickets.cursor"


def _encode_cursor(ordering: str, digest: str, value: Any, pk: int) -> str:
    """A signed, opaque position: clients cannot forge one (out-of-range values, another
    list's filters), only hand back what they were given."""
    data = {
        "f": digest,
        "o": ordering,
        "v": value.isoformat() if isinstance(value, dt.datetime) else value,
        "id": pk,
    }
    return signing.dumps(data, salt=_CURSOR_SALT, compress=True)


def _decode_cursor(cursor: str, ordering: str, digest: str) -> tuple[Any, int]:
    """The position a cursor holds; refused unless it is ours and came from a list with the
    same filters and ordering (a cursor is no way around a filter)."""
    bad = ValidationFailed.for_field("cursor", "not a cursor from this list; start again")
    try:
        data = signing.loads(cursor, salt=_CURSOR_SALT)
        if not isinstance(data, dict) or data.get("o") != ordering or data.get("f") != digest:
            raise bad
        pk = data["id"]
        value = data["v"]
        if not isinstance(pk, int) or isinstance(pk, bool):
            raise bad
        kind = ORDERINGS[ordering.lstrip("-")][1]
        if kind is dt.datetime:
            value = dt.datetime.fromisoformat(value)
        elif not isinstance(value, kind) or isinstance(value, bool):
            raise bad
    except (signing.BadSignature, ValueError, KeyError, TypeError):
        raise bad from None
    return value, pk


def _where(actor: User, filters: TicketFilters) -> Q:
    """The conditions ``filters`` put on tickets (on top of what the actor may see)."""
    where = Q()
    if filters.status:
        where &= Q(status__in=filters.status)
    if filters.tier:
        # By id, not through a join on the code: the planner then walks the tier-queue
        # index (tier, status, created_at) instead of scanning by date and filtering.
        wanted = {t.upper() for t in filters.tier}
        where &= Q(tier_id__in=[t.pk for t in tiers_by_level() if t.code in wanted])
    if filters.organization:
        where &= Q(organization__code__in=[o.upper() for o in filters.organization])
    if filters.priority:
        where &= Q(priority__in=[p.upper() for p in filters.priority])
    if filters.category:
        ids = [i for c in filters.category if (i := as_id(c)) is not None]
        slugs = [c for c in filters.category if as_id(c) is None]
        where &= Q(category__slug__in=slugs) | Q(category_id__in=ids)
    if filters.assignee is not None:
        if filters.assignee == "none":
            where &= Q(assignee__isnull=True)
        elif filters.assignee == "me":
            where &= Q(assignee=actor)
        elif (assignee_id := as_id(filters.assignee)) is not None:
            where &= Q(assignee_id=assignee_id)
        else:
            raise ValidationFailed.for_field("assignee", "a user id, 'me' or 'none'")
    if filters.requester is not None:
        where &= Q(requester_id=filters.requester)
    if filters.tags:
        # One ``id IN (tickets with the tag)`` per tag: a ticket must carry all of them.
        tagged = Ticket.tags.through._default_manager
        for name in sorted({t.strip().lower() for t in filters.tags}):
            where &= Q(pk__in=tagged.filter(tag__name=name).values("ticket_id"))
    if filters.text:
        text = filters.text.strip()
        if match := TICKET_KEY.match(text):
            where &= Q(organization__code=match["code"].upper(), number=int(match["number"]))
        else:
            where &= Q(subject__icontains=text) | Q(description__icontains=text)
    if filters.breached is not None or filters.breaching_within is not None:
        where &= _sla_where(filters)
    return where


def _sla_where(filters: TicketFilters) -> Q:
    """SLA conditions as ``id IN (tickets with such a clock)``: the database builds that set
    once from the clocks, instead of probing the clocks for every candidate ticket (a
    correlated EXISTS), which made counting a queue of 30,000 open tickets slow."""
    where = Q()
    clocks = _clock_model()._default_manager
    if filters.breached is not None:
        breached = (
            clocks.filter(breached_at__isnull=False).exclude(status="stopped").values("ticket_id")
        )
        where &= Q(pk__in=breached) if filters.breached else ~Q(pk__in=breached)
    if filters.breaching_within is not None:
        horizon = clock.now() + dt.timedelta(minutes=filters.breaching_within)
        where &= Q(
            pk__in=clocks.filter(
                status="running", breached_at__isnull=True, due_at__lte=horizon
            ).values("ticket_id")
        )
    return where


def queue_counts(*, actor: User, queues: dict[str, TicketFilters]) -> dict[str, int]:
    """How many tickets the actor sees in each of ``queues`` (name -> filters): one query,
    a conditional count per queue."""
    if not queues:
        return {}
    scope = ticket_scope(actor)
    if all(f.status for f in queues.values()):
        # Only rows some queue can count: lets the database seek the status in its index
        # instead of reading every ticket the actor may see.
        scope = scope.filter(status__in=sorted({s for f in queues.values() for s in f.status}))
    counts = scope.aggregate(
        **{name: Count("pk", filter=_where(actor, f)) for name, f in queues.items()}
    )
    return {name: int(counts[name] or 0) for name in queues}


def ticket_list(
    *,
    actor: User,
    filters: TicketFilters,
    ordering: str = "-created_at",
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of the tickets the actor may see, filtered and keyset-paginated on
    (ordering field, id). Three queries whatever ``limit`` is: the page with its related
    rows joined, then its tags and its SLA clocks (``load_related``)."""
    name = ordering.lstrip("-")
    if name not in ORDERINGS:
        raise ValidationFailed.for_field(
            "ordering", f"one of {', '.join(ORDERINGS)} (prefix - for descending)"
        )
    if filters.status and not set(filters.status) <= set(Status.values):
        raise ValidationFailed.for_field("status", f"one of {', '.join(Status.values)}")
    column = ORDERINGS[name][0]
    descending = ordering.startswith("-")

    # Organization and tier come from small lookups after the page (load_related): every
    # join adds to PostgreSQL's planning, which cost more than the page's execution.
    qs = ticket_scope(actor).select_related("requester", "assignee", "category")
    qs = qs.filter(_where(actor, filters))
    if cursor:
        value, pk = _decode_cursor(cursor, ordering, _filters_digest(filters, ordering))
        op = "lt" if descending else "gt"
        # The first condition bounds the index range (the page starts where the last one
        # ended, not at the queue's head); the second breaks ties on the id.
        qs = qs.filter(**{f"{column}__{op}e": value}).filter(
            Q(**{f"{column}__{op}": value}) | Q(**{f"id__{op}": pk})
        )
    prefix = "-" if descending else ""
    rows = list(qs.order_by(f"{prefix}{column}", f"{prefix}id")[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor(
            ordering, _filters_digest(filters, ordering), getattr(last, column), last.pk
        )
    return Page(items=load_related(rows), next_cursor=next_cursor)


def related_tickets(*, actor: User, ticket: Ticket, limit: int = 5) -> dict[str, list[Ticket]]:
    """Beside a ticket: the requester's other open tickets and the organization's most
    recent ones, newest first (organization loaded; no tags or clocks). Two queries."""
    scope = ticket_scope(actor).exclude(pk=ticket.pk).select_related("organization")
    newest = ("-created_at", "-id")
    return {
        "requester_open": list(
            scope.filter(requester_id=ticket.requester_id, status__in=OPEN_STATUSES).order_by(
                *newest
            )[:limit]
        ),
        "organization_recent": list(
            scope.filter(organization_id=ticket.organization_id).order_by(*newest)[:limit]
        ),
    }


def next_in_queue(*, actor: User, ticket: Ticket) -> Ticket | None:
    """The next open ticket after ``ticket`` in its tier's queue (newest first, as the
    console lists it), for "next ticket"; one query on the tier-by-date index."""
    return (
        ticket_scope(actor)
        .filter(tier_id=ticket.tier_id, status__in=OPEN_STATUSES)
        .filter(
            Q(created_at__lt=ticket.created_at) | Q(created_at=ticket.created_at, id__lt=ticket.pk)
        )
        .select_related("organization")
        .order_by("-created_at", "-id")
        .first()
    )


def comment_list(*, actor: User, ticket: Ticket) -> QuerySet[Comment]:
    """The ticket's comments the actor may read: requesters never see internal notes.
    ``ticket`` must come from ticket_get (already authorized)."""
    qs = ticket.comments.select_related("author")
    if not actor.is_staff_member:
        qs = qs.filter(is_internal=False)
    return qs


def timeline_list(*, actor: User, ticket: Ticket) -> QuerySet[TimelineEntry]:
    qs = ticket.timeline.select_related("actor", "comment")
    if not actor.is_staff_member:
        qs = qs.filter(is_internal=False)
    return qs


def attachment_list(*, actor: User, ticket: Ticket) -> QuerySet[Attachment]:
    qs = ticket.attachments.all()
    if not actor.is_staff_member:
        qs = qs.filter(is_internal=False)
    return qs


def attachment_get(*, actor: User, attachment_id: int) -> Attachment:
    """An attachment on a ticket the actor may see (internal ones: staff only), else
    NotFound."""
    qs = Attachment.objects.filter(ticket__in=ticket_scope(actor)).select_related("ticket")
    if not actor.is_staff_member:
        qs = qs.filter(is_internal=False)
    attachment = qs.filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    return attachment


def rating_of(ticket: Ticket) -> SatisfactionRating | None:
    """The requester's satisfaction rating of ``ticket`` (one at most; staff and the
    requesters who see the ticket may read it). ``ticket`` must come from ticket_get
    (already authorized)."""
    return SatisfactionRating.objects.filter(ticket=ticket).first()


# --- Links between tickets --------------------------------------------------------------


@dataclass(frozen=True)
class LinkedTicket:
    """One link as seen from a ticket: the ticket at its other end and how it reads from
    here ("Duplicate of", "Has duplicate", ...)."""

    link: TicketLink
    other: Ticket
    label: str
    outgoing: bool  # this ticket is the link's source


def link_list(*, actor: User, ticket: Ticket) -> list[LinkedTicket]:
    """The links of ``ticket`` (from ticket_get: already authorized) to tickets the actor
    may see, oldest first, the other ticket with its organization loaded. One query."""
    visible = ticket_scope(actor)
    links = (
        TicketLink.objects.filter(Q(source_id=ticket.pk) | Q(target_id=ticket.pk))
        .filter(
            Q(source_id=ticket.pk, target__in=visible) | Q(target_id=ticket.pk, source__in=visible)
        )
        .select_related("source__organization", "target__organization")
        .order_by("created_at", "id")
    )
    out = []
    for link in links:
        outgoing = link.source_id == ticket.pk
        other = link.target if outgoing else link.source
        label = LinkKind(link.kind).label if outgoing else LINK_INVERSE[link.kind]
        out.append(LinkedTicket(link=link, other=other, label=label, outgoing=outgoing))
    return out


def merged_into(*, actor: User, ticket: Ticket) -> Ticket | None:
    """The ticket ``ticket`` was merged into, if it was and the actor may see it."""
    link = (
        TicketLink.objects.filter(source_id=ticket.pk, is_merge=True)
        .filter(target__in=ticket_scope(actor))
        .select_related("target__organization")
        .first()
    )
    return link.target if link is not None else None


def link_target_get(*, actor: User, ticket: Ticket, ref: str, bare: str = "number") -> Ticket:
    """The ticket ``ref`` names as the other end of a link or merge from ``ticket``: its
    key (``ACME-12``), or a bare number — ``bare="number"``: its number in ``ticket``'s
    organization (as agents type it), ``"id"``: its id (as the API names tickets). Only a
    ticket of the same organization that the actor may see; anything else is refused
    beside the ``target`` field exactly like a missing one."""
    text = ref.strip().lstrip("#")
    found: Ticket | None = None
    scope = ticket_scope(actor).filter(organization_id=ticket.organization_id)
    scope = scope.select_related("organization", "requester", "assignee", "tier", "category")
    if (value := as_id(text)) is not None:
        found = scope.filter(**({"number": value} if bare == "number" else {"pk": value})).first()
    elif match := TICKET_KEY.match(text):
        found = scope.filter(
            organization__code=match["code"].upper(), number=int(match["number"])
        ).first()
    if found is None:
        raise ValidationFailed.for_field("target", "no such ticket in this organization")
    return found
