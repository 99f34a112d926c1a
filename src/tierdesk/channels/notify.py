"""Email notifications: who is told what, in which words, and their delivery.

The outbox relay hands every event to ``on_event``, which queues one ``Notification`` per
(event, recipient) — unique in the database, so a relay that runs twice queues once. The
recipients of a ticket's events are its requester and staff who serve its organization;
a runbook run that waits for an approval goes to the people who may approve it
(``approvers_of``); a security alert to every admin. Never the person who caused the
event (a requester's own acknowledgement excepted: it is their receipt), never an
inactive user, never someone who turned that kind off.

Most notifications are about a ticket; a security alert, and the approval of a run asked
through the API, are about none (``Notification.ticket_id`` is None). A message about a
ticket joins the ticket's thread (References, In-Reply-To) and carries a reply token (see
channels.tokens), so a reply joins the ticket; one about no ticket has neither: a reply
to it cannot land on a ticket.

The worker's ``send_due`` renders and sends them through Django's mail API, at least
once: each has a Message-ID fixed before its first attempt and kept on every retry, so a
receiver drops a resend after a crash. A failed send is tried again after 1, 2, 4 …
minutes (at most an hour) and given up after ``MAX_ATTEMPTS``; a refusal of the
recipient (a 5xx answer) gives up at once.

Templates: built-in Django template files per kind (``templates/channels/notify/<kind>/``),
or an organization's own text (``NotificationTemplate``), both rendered by a sandboxed
engine over plain values only (no model objects: a template cannot reach past what it is
given), the HTML part with autoescaping that the template cannot switch off.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import smtplib
import unicodedata
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, mailers
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType
from django.utils import timezone
from django.utils.http import int_to_base36

from tierdesk.channels import tokens
from tierdesk.channels.models import (
    Notification,
    NotificationKind,
    NotificationPreference,
    NotificationStatus,
    NotificationTemplate,
)
from tierdesk.core import audit, clock, faults, outbox, policy
from tierdesk.core.errors import NotFound, ValidationFailed
from tierdesk.core.models import Organization, OutboxEvent, Role, User

log = logging.getLogger(__name__)

Kind = NotificationKind
MAX_ATTEMPTS = 8  # per notification
BATCH = 100  # notifications sent per round
# A worker holds the notifications it sends this long: another worker does not send them.
LEASE = dt.timedelta(minutes=5)
SUBJECT_MAX = 250
ERROR_MAX = 500
# An event the relay reaches later than this (a worker down for days, the demo's history)
# is not mailed: a day-old "SLA warning" or "we received your request" is noise.
STALE_AFTER = dt.timedelta(hours=24)

# The kinds each audience may receive (and switch on or off). Approvals are staff's
# (runbook runs wait for an L2 agent or a manager); security alerts admins' only.
REQUESTER_KINDS = (Kind.TICKET_CREATED, Kind.TICKET_REPLIED, Kind.TICKET_RESOLVED)
STAFF_KINDS = (Kind.TICKET_REPLIED, Kind.TICKET_ESCALATED, Kind.SLA_WARNING,
               Kind.SLA_BREACHED, Kind.APPROVAL_NEEDED)  # fmt: skip
ADMIN_KINDS = (*STAFF_KINDS, Kind.SECURITY_ALERT)
# The kinds an organization may word itself: not the security alert, which tells the
# MSP's admins about an attack on a client; a client's manager must not reword (or blank)
# it. It is always sent in the built-in wording.
TEMPLATE_KINDS = tuple(kind for kind in Kind if kind != Kind.SECURITY_ALERT)

EVENT_KINDS: dict[str, Kind] = {
    "ticket.created": Kind.TICKET_CREATED,
    "ticket.commented": Kind.TICKET_REPLIED,
    "ticket.escalated": Kind.TICKET_ESCALATED,
    "escalation.managers_notified": Kind.TICKET_ESCALATED,
    "ticket.resolved": Kind.TICKET_RESOLVED,
    "sla.warning": Kind.SLA_WARNING,
    "sla.breached": Kind.SLA_BREACHED,
}
APPROVAL_EVENT = "automation.approval_needed"
# Security events (automation) mailed to admins: the alert's title per event.
ALERT_EVENTS: dict[str, str] = {
    "security.protected_account": "A protected account was asked for",
    "security.self_service_blocked": "Self-service blocked after wrong codes",
}


def kinds_for(user: User) -> tuple[Kind, ...]:
    """The kinds ``user`` can receive at all (requesters never get staff-only ones, only
    admins get security alerts)."""
    if user.role == Role.REQUESTER:
        return REQUESTER_KINDS
    return ADMIN_KINDS if user.role == Role.ADMIN else STAFF_KINDS


# --- preferences ----------------------------------------------------------------------------


def preferences_of(user: User) -> dict[str, bool]:
    """Kind -> on/off for every kind ``user`` can receive, in the catalogue's order
    (everything on unless switched off)."""
    chosen = dict(NotificationPreference.objects.filter(user=user).values_list("kind", "email"))
    return {kind.value: chosen.get(kind.value, True) for kind in kinds_for(user)}


@transaction.atomic
def notification_preferences_set(*, actor: User, changes: Mapping[str, bool]) -> dict[str, bool]:
    """Switch ``actor``'s own notifications on or off per kind (those not named keep their
    setting); all of them afterwards. A kind the actor cannot receive is refused."""
    allowed = {k.value for k in kinds_for(actor)}
    for kind, value in changes.items():
        if kind not in allowed:
            raise ValidationFailed.for_field(
                kind[:64], f"not a notification you can receive; one of {', '.join(allowed)}"
            )
        if not isinstance(value, bool):
            raise ValidationFailed.for_field(kind, "true or false")
    before = preferences_of(actor)
    changed = {k: v for k, v in changes.items() if before[k] != v}
    if not changed:
        return before
    now = clock.now()
    for kind, value in changed.items():
        NotificationPreference.objects.update_or_create(
            user=actor, kind=kind, defaults={"email": value, "updated_at": now}
        )
    audit.record(
        actor=actor,
        action=audit.AuditAction.NOTIFICATION_PREFERENCES_UPDATED,
        target_type="user",
        target_id=actor.pk,
        changes={k: [before[k], v] for k, v in changed.items()},
    )
    return before | changed


# --- templates ------------------------------------------------------------------------------

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "channels" / "notify"
TEXT_MAX = 20_000
# Tags a stored template may not use: they would reach other templates or files, print
# the context, or switch escaping off. The ``safe`` filters are refused for the same
# reason (the HTML part escapes everything it is given).
FORBIDDEN_TAGS = frozenset(
    {"include", "extends", "block", "load", "debug", "autoescape", "ssi", "lorem"}
)
FORBIDDEN_FILTERS = frozenset({"safe", "safeseq"})
# Filters and tags whose numeric argument sizes the output: bounded, so a template cannot
# ask for gigabytes ({{ x|ljust:"2000000000" }}).
SIZED = frozenset({"ljust", "rjust", "center", "widthratio", "truncatechars", "truncatewords"})
SIZE_MAX = 1_000
# A loop inside a loop over a 100,000-character reply is 10^10 steps: one level only.
LOOPS_MAX = 1
RENDERED_MAX = 200_000  # characters of one rendered part
SIZED_ARGUMENT = re.compile(r"(?:" + "|".join(sorted(SIZED)) + r")\s*:?\s*[\"']?\s*(-?\d+)")


@dataclass(frozen=True)
class Wording:
    subject: str
    text: str
    html: str  # "" for plain text only


@cache
def _engine(html: bool) -> Engine:
    # Only Django's built-in tags and filters, no loaders (nothing can be included), and
    # nothing but what ``context_for`` gives: plain values, no model objects.
    return Engine(loaders=[], libraries={}, autoescape=html, string_if_invalid="")


@cache
def default_wording(kind: str) -> Wording:
    folder = TEMPLATE_DIR / kind
    return Wording(
        subject=(folder / "subject.txt").read_text(),
        text=(folder / "body.txt").read_text(),
        html=(folder / "body.html").read_text(),
    )


def _check_source(field: str, source: str, html: bool) -> None:
    """Refuse a template that does not compile or uses what stored templates may not."""
    try:
        found = Lexer(source).tokenize()
    except TemplateSyntaxError as exc:  # pragma: no cover - the lexer rarely refuses
        raise ValidationFailed.for_field(field, f"template error: {exc}") from exc
    depth = 0
    for token in found:
        if token.token_type not in (TokenType.BLOCK, TokenType.VAR):
            continue
        words = token.contents.split()
        if token.token_type == TokenType.BLOCK and words and words[0] == "for":
            depth += 1
            if depth > LOOPS_MAX:
                raise ValidationFailed.for_field(field, "a {% for %} inside another is not allowed")
        if token.token_type == TokenType.BLOCK and words and words[0] == "endfor":
            depth = max(depth - 1, 0)
        for number in SIZED_ARGUMENT.findall(token.contents):
            if abs(int(number[:12])) > SIZE_MAX:
                raise ValidationFailed.for_field(field, f"sizes above {SIZE_MAX} are not allowed")
        if (
            words
            and words[0] == "widthratio"
            and any(w.isdigit() and int(w[:12]) > SIZE_MAX for w in words[1:])
        ):
            raise ValidationFailed.for_field(field, f"sizes above {SIZE_MAX} are not allowed")
        if token.token_type == TokenType.BLOCK and words and words[0] in FORBIDDEN_TAGS:
            raise ValidationFailed.for_field(field, f"the {{% {words[0]} %}} tag is not allowed")
        parts = token.contents.split("|")
        filters = [p.split(":", 1)[0].strip().split(" ", 1)[0] for p in parts[1:]]
        if words and words[0] == "filter" and len(words) > 1:  # {% filter safe %}
            filters.append(words[1].split("|", 1)[0])
        for name in filters:
            if name in FORBIDDEN_FILTERS:
                raise ValidationFailed.for_field(field, f"the |{name} filter is not allowed")
    try:
        _engine(html).from_string(source)
    except TemplateSyntaxError as exc:
        raise ValidationFailed.for_field(field, f"template error: {exc}") from exc


def wording_for(organization_id: int, kind: str) -> Wording:
    """The organization's own wording for ``kind``, else the built-in one (always for a
    kind outside ``TEMPLATE_KINDS``)."""
    if kind not in TEMPLATE_KINDS:
        return default_wording(kind)
    own = NotificationTemplate.objects.filter(organization_id=organization_id, kind=kind).first()
    if own is None:
        return default_wording(kind)
    return Wording(subject=own.subject, text=own.text, html=own.html)


def one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """``text`` fit for a header: control characters (CR, LF, tab, NUL …), format and
    separator characters become spaces, runs of spaces one."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(kept.split())[:limit]


def render(wording: Wording, context: Mapping[str, Any], time_zone: str) -> Wording:
    """Render ``wording`` over ``context``, dates in ``time_zone``: one subject line, the
    text, and the HTML (escaped) when there is one."""
    with timezone.override(_zone(time_zone)):
        subject = _render(wording.subject, context, html=False)
        text = _render(wording.text, context, html=False)
        html = _render(wording.html, context, html=True) if wording.html else ""
    return Wording(subject=one_line(subject), text=text, html=html)


def _render(source: str, context: Mapping[str, Any], *, html: bool) -> str:
    # The context, not the engine, decides escaping when a Template renders itself.
    text = _engine(html).from_string(source).render(Context(dict(context), autoescape=html))
    if len(text) > RENDERED_MAX:
        raise ValueError(f"the rendered message is over {RENDERED_MAX:,} characters")
    return text


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


SAMPLE_AT = dt.datetime(2026, 1, 15, 14, 30, tzinfo=dt.UTC)


def sample_context(organization: Organization) -> dict[str, Any]:
    """What every template is given, with made-up values: saving a template renders it over
    this first, so an error shows then and not at send time."""
    return {
        "recipient": {"name": "Ann Example", "email": "ann@example.com", "time_zone": "UTC"},
        "organization": {"code": organization.code, "name": organization.name},
        "msp_name": settings.MSP_NAME,
        "event": {"at": SAMPLE_AT},
        "ticket": {
            "key": f"{organization.code}-1",
            "subject": "Printer on fire",
            "status": "open",
            "priority": "P2",
            "tier": "L1",
            "url": "https://desk.example.com/portal/tickets/1",
            "requester_name": "Ann Example",
            "assignee_name": "Lena Agent",
            "created_at": SAMPLE_AT,
        },
        "comment": {
            "author_name": "Lena Agent",
            "body": "Have you tried…",
            "created_at": SAMPLE_AT,
        },
        "escalation": {"from_tier": "L1", "to_tier": "L2", "reason": "Needs L2", "by": "Lena"},
        "resolution": {"code": "fixed", "note": "Replaced the fuser."},
        "sla": {"kind": "resolution", "due_at": SAMPLE_AT, "target_minutes": 480},
        "approval": {
            "title": "Unlock an account",
            "account": "ann@example.com",
            "asked_by": "Lena Agent",
            "runbook": "unlock-account",
            "run_id": 1,
        },
    }


def templates_of(*, actor: User, organization: Organization) -> dict[str, Wording | None]:
    """Kind -> the organization's own wording (None: the built-in one is used), for the
    kinds an organization may word (``TEMPLATE_KINDS``)."""
    policy.require_config_scope(actor, organization, "notification_template", "templates")
    own = {
        t.kind: Wording(subject=t.subject, text=t.text, html=t.html)
        for t in NotificationTemplate.objects.filter(organization=organization)
    }
    return {kind.value: own.get(kind.value) for kind in TEMPLATE_KINDS}


def _clean_kind(kind: str) -> str:
    if kind not in Kind.values:
        raise NotFound(f"No notification kind {kind[:64]!r}.")
    if kind not in TEMPLATE_KINDS:
        raise ValidationFailed.for_field(
            "kind", f"{kind} is sent in tierdesk's own wording only: organizations cannot change it"
        )
    return kind


@transaction.atomic
def notification_template_set(
    *,
    actor: User | None,
    organization: Organization,
    kind: str,
    subject: str,
    text: str,
    html: str = "",
) -> NotificationTemplate:
    """Set ``organization``'s own wording for ``kind`` (an admin, or a manager serving it).
    Each part must compile, use no forbidden tag or filter, and render over the sample
    context; else ValidationFailed names the part."""
    policy.require_config_scope(actor, organization, "notification_template", "templates")
    kind = _clean_kind(kind)
    subject, text, html = subject.strip(), text.strip() + "\n", html.strip()
    if not subject:
        raise ValidationFailed.for_field("subject", "required")
    if len(subject) > 500:
        raise ValidationFailed.for_field("subject", "at most 500 characters")
    if not text.strip():
        raise ValidationFailed.for_field("text", "required")
    for field, value in (("text", text), ("html", html)):
        if len(value) > TEXT_MAX:
            raise ValidationFailed.for_field(field, f"at most {TEXT_MAX} characters")
    _check_source("subject", subject, False)
    _check_source("text", text, False)
    _check_source("html", html, True)
    sample = sample_context(organization)
    for field, value, escaped in (("subject", subject, False), ("text", text, False),
                                  ("html", html, True)):  # fmt: skip
        try:
            _render(value, sample, html=escaped)
        except Exception as exc:  # any error a tag or filter raises on real values
            raise ValidationFailed.for_field(field, f"does not render: {exc}") from exc
    existing = NotificationTemplate.objects.filter(organization=organization, kind=kind).first()
    before = (
        {"subject": existing.subject, "text": existing.text, "html": existing.html}
        if existing
        else {}
    )
    after = {"subject": subject, "text": text, "html": html}
    if before == after and existing is not None:
        return existing
    row, _ = NotificationTemplate.objects.update_or_create(
        organization=organization,
        kind=kind,
        defaults=after | {"updated_by": actor, "updated_at": clock.now()},
    )
    audit.record_and_emit(
        actor=actor,
        action=audit.AuditAction.NOTIFICATION_TEMPLATE_SET,
        target_type="notification_template",
        target_id=row.pk,
        organization=organization,
        changes={"kind": kind} | {k: [before.get(k), v] for k, v in after.items()},
        payload={"id": row.pk, "kind": kind},
    )
    return row


@transaction.atomic
def notification_template_delete(
    *, actor: User | None, organization: Organization, kind: str
) -> None:
    """Go back to the built-in wording for ``kind``."""
    policy.require_config_scope(actor, organization, "notification_template", "templates")
    kind = _clean_kind(kind)
    row = NotificationTemplate.objects.filter(organization=organization, kind=kind).first()
    if row is None:
        return
    row_id = row.pk
    row.delete()
    audit.record_and_emit(
        actor=actor,
        action=audit.AuditAction.NOTIFICATION_TEMPLATE_DELETED,
        target_type="notification_template",
        target_id=row_id,
        organization=organization,
        changes={"kind": kind, "subject": row.subject},
        payload={"id": row_id, "kind": kind},
    )


# --- who gets what (from the outbox) --------------------------------------------------------


def _ticket_of(event: OutboxEvent) -> Any:
    """The ticket a ticket event is about; None for another event, or a ticket gone."""
    if event.aggregate_type != "ticket" or event.organization_id is None:
        return None
    return _ticket_by_id(int(event.aggregate_id), event.organization_id)


def _ticket_by_id(ticket_id: int, organization_id: int) -> Any:
    """Ticket ``ticket_id`` if it is (still) ``organization_id``'s, else None."""
    from tierdesk.tickets.models import Ticket

    return (
        Ticket.objects.select_related("organization", "tier", "requester", "assignee")
        .filter(pk=ticket_id, organization_id=organization_id)
        .first()
    )


def _run_of(event: OutboxEvent) -> Any:
    """The runbook run (``automation.ActionRun``, its asker loaded) an ``action_run`` event
    is about, in the event's organization; None for another event, or a run gone."""
    from tierdesk.automation.models import ActionRun

    if event.aggregate_type != "action_run" or event.organization_id is None:
        return None
    return (
        ActionRun.objects.select_related("requested_by")
        .filter(pk=int(event.aggregate_id), organization_id=event.organization_id)
        .first()
    )


def approvers_of(organization_id: int, *, asker_id: int) -> list[User]:
    """Who is asked to approve a run in organization ``organization_id``: the managers who
    serve it and the managers of the L2 tier (``Tier.managers``); when there are none of
    those, the L2 (and higher) agents who serve it. Only active people who may see the
    organization (tenant isolation: an L2 manager who does not serve it is not asked) and
    may approve (``automation.services.may_approve``), never ``asker_id``."""
    from tierdesk.automation.services import may_approve

    def allowed(users: QuerySet[User]) -> list[User]:
        return [
            u
            for u in users.filter(is_active=True)
            .exclude(pk=asker_id)
            .select_related("agent_profile__tier")
            .order_by("pk")
            if may_approve(u) and policy.can_see_organization(u, organization_id)
        ]

    managers = User.objects.filter(
        Q(role=Role.MANAGER, served_organizations=organization_id) | Q(managed_tiers__level=2)
    ).values("pk")
    found = allowed(User.objects.filter(pk__in=managers))
    if found:
        return found
    return allowed(
        User.objects.filter(
            role=Role.AGENT,
            served_organizations=organization_id,
            agent_profile__tier__level__gte=2,
        )
    )


def _tier_managers(tier_code: str | None) -> list[User]:
    from tierdesk.tiers.models import Tier

    if not tier_code:
        return []
    tier = Tier.objects.filter(code=tier_code).first()
    return list(tier.managers.order_by("pk")) if tier else []


def recipients_of(event: OutboxEvent, ticket: Any) -> tuple[Kind, list[User], int | None]:
    """The kind, the candidate recipients and who caused ``event`` (before the checks of
    ``_may_receive``)."""
    kind = EVENT_KINDS[event.name]
    data = event.payload
    people: list[User | None] = []
    actor_id: int | None = data.get("actor_id")
    if kind == Kind.TICKET_CREATED:
        people = [ticket.requester]
        actor_id = None  # the acknowledgement is the requester's receipt, whoever opened it
    elif kind == Kind.TICKET_REPLIED:
        if data.get("internal"):
            return kind, [], None  # an internal note is for staff, and not mailed
        actor_id = data.get("author_id")
        author = User.objects.filter(pk=actor_id).first()
        if author is not None and author.role == Role.REQUESTER:
            people = [ticket.assignee]
        else:
            people = [ticket.requester]
    elif event.name == "ticket.escalated":
        people = [User.objects.filter(pk=data.get("assignee_id")).first()]
    elif event.name == "escalation.managers_notified":
        # Hierarchical escalation: the target tier's managers the escalation chose (it
        # asked for them). The new assignee hears of it by ticket.escalated already.
        ids = [
            m.get("id") for m in data.get("managers", []) if m.get("id") != data.get("assignee_id")
        ]
        people = list(User.objects.filter(pk__in=ids).order_by("pk"))
    elif kind == Kind.TICKET_RESOLVED:
        people = [ticket.requester]
    elif kind in (Kind.SLA_WARNING, Kind.SLA_BREACHED):
        people = [ticket.assignee, *_tier_managers(data.get("tier"))]
    seen: set[int] = set()
    found = []
    for person in people:
        if person is not None and person.pk not in seen:
            seen.add(person.pk)
            found.append(person)
    return kind, found, actor_id


def _may_receive(user: User, ticket: Any, kind: Kind) -> bool:
    """Active, of an audience that gets ``kind``, and able to see the ticket: its own
    requester, or staff serving its organization (tenant isolation)."""
    if not user.is_active or kind not in kinds_for(user):
        return False
    if user.role == Role.REQUESTER:
        return user.pk == ticket.requester_id and user.organization_id == ticket.organization_id
    return policy.can_see_organization(user, ticket.organization_id)


def _may_acknowledge(ticket: Any, user: User) -> bool:
    """May the acknowledgement of a ticket opened by email go to ``user``? Not to
    automatic mail (channels.loops), not to an address that bounced, and at most one per
    address per ``loops.AUTO_REPLY_WINDOW`` (claimed here)."""
    from tierdesk.channels import loops
    from tierdesk.channels.models import InboundMessage

    if user.email_bounced_at is not None:
        return False
    if InboundMessage.objects.filter(ticket_id=ticket.pk, auto_generated=True).exists():
        return False
    return loops.claim_auto_reply(ticket.organization_id, user.email)


def on_event(event: OutboxEvent) -> None:
    """Queue the notifications ``event`` calls for: a ticket's events to its people, a run
    that waits for an approval to its approvers, a security event to the admins; none
    for other events, nor for one older than ``STALE_AFTER``."""
    known = event.name in EVENT_KINDS or event.name == APPROVAL_EVENT or event.name in ALERT_EVENTS
    if not known or clock.now() - event.created_at > STALE_AFTER:
        return
    if event.name == APPROVAL_EVENT:
        _on_approval(event)
    elif event.name in ALERT_EVENTS:
        _on_alert(event)
    else:
        _on_ticket_event(event)


def _on_ticket_event(event: OutboxEvent) -> None:
    ticket = _ticket_of(event)
    if ticket is None:
        return
    kind, people, actor_id = recipients_of(event, ticket)
    wanted = [u for u in people if u.pk != actor_id and _may_receive(u, ticket, kind)]
    if kind == Kind.TICKET_CREATED and ticket.source == "email":
        wanted = [u for u in wanted if _may_acknowledge(ticket, u)]
    _queue(event, kind, wanted, organization_id=ticket.organization_id, ticket_id=ticket.pk)


def _on_approval(event: OutboxEvent) -> None:
    from tierdesk.automation.models import RunStatus

    run = _run_of(event)
    if run is None or run.status != RunStatus.AWAITING_APPROVAL:
        return  # decided (or expired) before the relay came to it: nothing to ask
    kind = Kind.APPROVAL_NEEDED
    wanted = [
        u
        for u in approvers_of(run.organization_id, asker_id=run.requested_by_id)
        if kind in kinds_for(u)
    ]
    # A run asked through the API has no ticket: the notification is about none.
    _queue(event, kind, wanted, organization_id=run.organization_id, ticket_id=run.ticket_id)


def _on_alert(event: OutboxEvent) -> None:
    if event.organization_id is None:  # both alerts name one (the run's, the requester's)
        log.warning("security event %s has no organization: not mailed", event.pk)
        return
    kind = Kind.SECURITY_ALERT
    admins = User.objects.filter(role=Role.ADMIN, is_active=True).order_by("pk")
    wanted = [u for u in admins if kind in kinds_for(u)]
    _queue(event, kind, wanted, organization_id=event.organization_id, ticket_id=None)


def _queue(
    event: OutboxEvent,
    kind: Kind,
    wanted: list[User],
    *,
    organization_id: int,
    ticket_id: int | None,
) -> None:
    """Queue ``kind`` about ``event`` to each of ``wanted`` (the caller has checked that
    they may receive it) who has not switched it off; ``ticket_id`` None: about no ticket."""
    if not wanted:
        return
    switched_off = set(
        NotificationPreference.objects.filter(user__in=wanted, kind=kind, email=False).values_list(
            "user_id", flat=True
        )
    )
    now = clock.now()
    Notification.objects.bulk_create(
        [
            Notification(
                event=event, recipient=user, organization_id=organization_id,
                kind=kind, ticket_id=ticket_id, next_attempt_at=now, created_at=now,
            )
            for user in wanted
            if user.pk not in switched_off
        ],
        ignore_conflicts=True,  # queued already (the relay ran this consumer before)
    )  # fmt: skip


# --- what a message says ---------------------------------------------------------------------


def _link(user: User, ticket: Any) -> str:
    if not settings.PUBLIC_URL:
        return ""
    area = "portal" if user.role == Role.REQUESTER else "console"
    return f"{settings.PUBLIC_URL}/{area}/tickets/{ticket.key}"


def context_for(notification: Notification, ticket: Any, run: Any = None) -> dict[str, Any]:
    """The values a template is given: plain strings, numbers and datetimes only.
    ``ticket`` None: a notification about no ticket (the context has no ``ticket``);
    ``run``: the runbook run an approval is about."""
    from tierdesk.tickets.models import Comment

    user, event = notification.recipient, notification.event
    organization = notification.organization
    data = event.payload
    context: dict[str, Any] = {
        "recipient": {"name": user.full_name, "email": user.email, "time_zone": user.time_zone},
        "organization": {"code": organization.code, "name": organization.name},
        "msp_name": settings.MSP_NAME,
        "event": {"at": event.created_at},
    }
    if ticket is not None:
        context["ticket"] = {
            "key": ticket.key,
            "subject": ticket.subject,
            "status": ticket.get_status_display(),
            "priority": ticket.priority,
            "tier": ticket.tier.code,
            "url": _link(user, ticket),
            "requester_name": ticket.requester.full_name,
            "assignee_name": ticket.assignee.full_name if ticket.assignee else "",
            "created_at": ticket.created_at,
        }
    if notification.kind == Kind.APPROVAL_NEEDED and run is not None:
        context["approval"] = {
            "title": run.title,
            "account": run.account,
            "asked_by": run.requested_by.full_name,
            "runbook": run.runbook,
            "run_id": run.pk,
        }
    elif notification.kind == Kind.SECURITY_ALERT:
        context["alert"] = _alert(event, organization, user)
    elif notification.kind == Kind.TICKET_REPLIED:
        comment = (
            Comment.objects.select_related("author")
            .filter(pk=data.get("comment_id"), ticket_id=ticket.pk, is_internal=False)
            .first()
        )
        if comment is not None:
            context["comment"] = {
                "author_name": comment.author.full_name,
                "body": comment.body,
                "created_at": comment.created_at,
            }
    elif notification.kind == Kind.TICKET_ESCALATED:
        by = User.objects.filter(pk=data.get("actor_id")).first()
        context["escalation"] = {
            "from_tier": data.get("from_tier", ""),
            "to_tier": data.get("to_tier", ""),
            "reason": data.get("reason", ""),
            "by": by.full_name if by else "",
        }
    elif notification.kind == Kind.TICKET_RESOLVED:
        context["resolution"] = {
            "code": ticket.resolution_code,
            "note": ticket.resolution_note,
        }
    elif notification.kind in (Kind.SLA_WARNING, Kind.SLA_BREACHED):
        due = data.get("due_at")
        context["sla"] = {
            "kind": str(data.get("kind", "")).replace("_", " "),
            "due_at": dt.datetime.fromisoformat(due) if due else None,
            "target_minutes": data.get("target_minutes"),
        }
    return context


def _alert(event: OutboxEvent, organization: Organization, user: User) -> dict[str, Any]:
    """A security alert in plain words: ``title``, ``details`` (lines), ``organization``
    (its name), ``at`` and ``url`` (the ticket's console page when a run from a ticket
    set it off, else empty). Built from the event's payload, which holds no secret."""
    data = event.payload
    details: list[str] = []
    url = ""
    if event.name == "security.protected_account":
        asker = User.objects.filter(pk=data.get("requested_by")).first()
        run = _run_of(event)
        who = f"{asker.full_name} ({asker.email})" if asker else "someone no longer known"
        what = run.title if run is not None else str(data.get("runbook", ""))
        details.append(
            f"Asked by {who}: {what} ({data.get('runbook', '')}) for the account "
            f"{data.get('account', '')}."
        )
        details.append(
            "The account is protected (a protected group's member, or the service account): "
            "tierdesk stopped before changing anything."
        )
        if data.get("account_dn"):
            details.append(f"Found in the directory as: {data['account_dn']}")
        if data.get("reason"):
            details.append(f"Why it was refused: {data['reason']}")
        ticket = (
            _ticket_by_id(int(data["ticket_id"]), organization.pk)
            if data.get("ticket_id")
            else None
        )
        if ticket is not None:
            details.append(f"Asked on ticket {ticket.key}: {ticket.subject}")
            url = _link(user, ticket)
    elif event.name == "security.self_service_blocked":
        details.append(
            f"{data.get('wrong_codes_today', '')} wrong self-service codes were entered for "
            f"{data.get('email', '')} within a day."
        )
        details.append(
            "Self-service for this account is blocked for a day: someone may be guessing "
            "codes. The account itself is not locked."
        )
    return {
        "title": ALERT_EVENTS.get(event.name, "Security alert"),
        "details": details,
        "organization": organization.name,
        "at": event.created_at,
        "url": url,
    }


def message_domain() -> str:
    """The domain of Message-IDs: ``TIERDESK_EMAIL_MESSAGE_ID_DOMAIN``, else the sender's."""
    if settings.EMAIL_MESSAGE_ID_DOMAIN:
        return str(settings.EMAIL_MESSAGE_ID_DOMAIN)
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "localhost"


def message_id_for(notification: Notification) -> str:
    """``<reply token@domain>``: made once per notification (the token's expiry moves
    with the clock, so it is stored, not recomputed). About no ticket: no token (a reply
    has no ticket to join), ``<tierdesk.<id>.<random>@domain>``."""
    if notification.ticket_id is None:
        unique = f"{int_to_base36(notification.pk)}.{secrets.token_hex(8)}"
        return f"<tierdesk.{unique}@{message_domain()}>"
    token = tokens.make(
        organization_id=notification.organization_id,
        ticket_id=notification.ticket_id,
        recipient=notification.recipient.email,
        nonce=int_to_base36(notification.pk),
    )
    return f"<{token}@{message_domain()}>"


def reply_address(notification: Notification) -> str | None:
    """Where a reply goes: the organization's (first active) mailbox, its address carrying
    the message's reply token as a plus-address (``support+tdk-…@acme.example``); None
    when the organization has no mailbox (replies then reach the sender's address, and
    still carry the token in ``In-Reply-To``), and for a message about no ticket."""
    from tierdesk.channels.models import Mailbox

    if notification.ticket_id is None:
        return None
    address = (
        Mailbox.objects.filter(organization_id=notification.organization_id, is_active=True)
        .order_by("pk")
        .values_list("address", flat=True)
        .first()
    )
    token = notification.message_id.strip("<>").partition("@")[0]
    if not address or not token:
        return None
    local, _, domain = address.partition("@")
    return f"{local}+{token}@{domain}"


def thread_id_for(ticket: Any) -> str:
    """The id every message about ``ticket`` refers to, so mail clients thread them."""
    return f"<tierdesk.{ticket.key.lower()}@{message_domain()}>"


def build(notification: Notification, ticket: Any, run: Any = None) -> EmailMultiAlternatives:
    """The message for ``notification`` (its ``message_id`` set), about ``ticket`` (None:
    about no ticket; the message then joins no thread) and, for an approval, ``run``."""
    user = notification.recipient
    context = context_for(notification, ticket, run)
    wording = wording_for(notification.organization_id, notification.kind)
    try:
        rendered = render(wording, context, user.time_zone)
    except Exception:  # a stored template that fails on these values: the built-in one
        if wording == default_wording(notification.kind):
            raise
        log.exception("notification %s: the organization's template failed", notification.pk)
        rendered = render(default_wording(notification.kind), context, user.time_zone)
    sender_name, sender = parseaddr(settings.DEFAULT_FROM_EMAIL)
    reply_to = reply_address(notification)
    headers = {"Message-ID": notification.message_id}
    if ticket is not None:
        headers |= {"References": thread_id_for(ticket), "In-Reply-To": thread_id_for(ticket)}
    message = EmailMultiAlternatives(
        reply_to=[reply_to] if reply_to else None,
        subject=rendered.subject,
        body=rendered.text,
        from_email=formataddr((one_line(sender_name or settings.MSP_NAME, 100), sender)),
        to=[formataddr((one_line(user.full_name, 100), user.email))],
        headers=headers | {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    return message


# --- sending --------------------------------------------------------------------------------


def due() -> QuerySet[Notification]:
    return Notification.objects.filter(
        status=NotificationStatus.PENDING, next_attempt_at__lte=clock.now()
    )


def claim(notification: Notification) -> bool:
    """Take ``notification`` (as read) for sending; False when another worker has it.
    Claimed by moving its time on: a worker that dies gives it back when the lease runs
    out, and another worker that read it too finds it moved and leaves it."""
    claimed = Notification.objects.filter(
        pk=notification.pk,
        status=NotificationStatus.PENDING,
        next_attempt_at=notification.next_attempt_at,
    ).update(next_attempt_at=clock.now() + LEASE)
    return claimed == 1


def send_due(limit: int = BATCH) -> int:
    """Send up to ``limit`` notifications whose time has come, over one connection; how
    many were tried."""
    found = list(
        due()
        .select_related("recipient", "event", "organization")
        .order_by("next_attempt_at", "pk")[:limit]
    )
    if not found:
        return 0
    connection = mailers.default
    try:
        for notification in found:
            if not claim(notification):
                continue
            try:
                _send(notification, connection)
            except Exception as exc:  # a bug must not stop the others
                log.exception("notification %s failed unexpectedly", notification.pk)
                # Counted as a failed attempt, so a notification that always fails is
                # given up on instead of coming back every time its lease runs out.
                _record(notification, f"{type(exc).__name__}: {exc}", permanent=False)
    finally:
        connection.close()
    return len(found)


# Kinds sent at most once: automatic answers. The others go at least once (a resend keeps
# its Message-ID, for the receiving side to deduplicate by).
AT_MOST_ONCE = frozenset({Kind.TICKET_CREATED})


def _why_not_send(notification: Notification, ticket: Any, run: Any) -> str:
    """Why ``notification`` is no longer to be sent ("" when it is): things changed since
    it was queued."""
    from tierdesk.automation.models import RunStatus

    user = notification.recipient
    if notification.ticket_id is not None and ticket is None:
        return "the ticket is gone"
    if not user.is_active:
        return "the recipient is inactive"
    if notification.kind not in kinds_for(user):
        return "the recipient's role no longer receives this kind"
    if notification.kind == Kind.APPROVAL_NEEDED and (
        run is None or run.status != RunStatus.AWAITING_APPROVAL
    ):
        return "the run no longer waits for an approval"
    return ""


def _send(notification: Notification, connection: Any) -> None:
    ticket = None
    if notification.ticket_id is not None:
        ticket = _ticket_by_id(notification.ticket_id, notification.organization_id)
    run = _run_of(notification.event) if notification.kind == Kind.APPROVAL_NEEDED else None
    why_not = _why_not_send(notification, ticket, run)
    if why_not:
        Notification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.SKIPPED, last_error=why_not
        )
        return
    if notification.sending_since is not None and notification.kind in AT_MOST_ONCE:
        # A worker died while handing it to the mail server: it may have gone. An
        # automatic answer is not risked twice (mail loops, annoyed requesters).
        Notification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.SKIPPED,
            last_error="a worker stopped while sending it; an acknowledgement is not sent twice",
        )
        return
    if not notification.message_id:
        notification.message_id = message_id_for(notification)
        Notification.objects.filter(pk=notification.pk).update(message_id=notification.message_id)
    message = build(notification, ticket, run)
    Notification.objects.filter(pk=notification.pk).update(sending_since=clock.now())
    error, permanent = "", False
    try:
        if connection.send_messages([message]) != 1:
            error = "the mail server did not take the message"
        else:
            faults.point("notify.sent")  # taken by the server, not yet recorded
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        error = f"recipient refused: {exc.recipients}"
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    if error:
        connection.close()  # a fresh connection for the next one
    _record(notification, error, permanent)


def _record(notification: Notification, error: str, permanent: bool) -> None:
    now = clock.now()
    row = Notification.objects.filter(pk=notification.pk)
    if not error:
        row.update(status=NotificationStatus.SENT, attempts=F("attempts") + 1, last_error="",
                   sent_at=now, sending_since=None)  # fmt: skip
        return
    attempts = notification.attempts + 1
    given_up = permanent or attempts >= MAX_ATTEMPTS
    row.update(
        status=NotificationStatus.FAILED if given_up else NotificationStatus.PENDING,
        attempts=F("attempts") + 1,
        last_error=error[:ERROR_MAX],
        next_attempt_at=now + outbox.backoff(attempts),
        sending_since=None,  # the server did not take it: trying again is safe
    )
    if given_up:
        log.warning("notification %s given up after %s attempts: %s", notification.pk,
                    attempts, error[:200])  # fmt: skip
