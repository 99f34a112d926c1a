"""Email notifications against a real SMTP server on loopback (aiosmtpd): the relay queues
them, the send job delivers them. Who gets which kind (and who never does: the person who
acted, inactive people, another tenant's staff), preferences, an organization's own
templates, time zones, one message per (event, recipient) however often the relay or the
sender runs, retries and giving up, the lease between two workers, and header injection."""

from __future__ import annotations

import datetime as dt
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from tests.channels.conftest import FROM, use_smtp
from tests.conftest import Cast, make_ticket
from tests.processes import free_port
from tests.smtp import Inbox
from tests.smtp import body as raw_body
from tierdesk.channels import notify, tokens
from tierdesk.channels.models import Notification, NotificationStatus
from tierdesk.channels.tasks import notifications_tick
from tierdesk.core import clock
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent, User
from tierdesk.core.outbox import relay
from tierdesk.core.services import user_create, user_update
from tierdesk.escalation.services import escalate
from tierdesk.sla import clocks
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as tickets
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.services import agent_create, tier_by_code, tier_update

pytestmark = pytest.mark.django_db
# The ``inbox`` fixture (tests/channels/conftest.py): an SMTP server on loopback that
# tierdesk sends to, the cast's own events already relayed.


def deliver() -> int:
    """What the worker does each minute: relay the events, then send what is due."""
    relay()
    return notify.send_due()


def body(message: EmailMessage) -> str:
    return raw_body(message).replace("\r\n", "\n")


def addressees(inbox: Inbox) -> list[str]:
    return sorted(str(m["To"]) for m in inbox.messages)


def html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def ticket_for_alice(cast: Cast, **kw: Any) -> Ticket:
    return make_ticket(cast.lena, cast.acme, cast.alice, assignee=cast.lena, **kw)


# --- who gets what ---------------------------------------------------------------------------


def test_a_new_ticket_is_acknowledged_to_its_requester_only(cast: Cast, inbox: Inbox) -> None:
    ticket = ticket_for_alice(cast, subject="Printer on fire")
    assert deliver() == 1
    [message] = inbox.wait_for("alice@acme.example")
    assert addressees(inbox) == ["Alice <alice@acme.example>"]
    assert message["Subject"] == "[ACME-1] We received your request: Printer on fire"
    assert message["From"] == FROM
    assert message["Auto-Submitted"] == "auto-generated"
    assert "https://desk.msp.example/portal/tickets/ACME-1" in body(message)
    # The Message-ID carries a reply token for this ticket and this recipient.
    message_id = str(message["Message-ID"])
    assert message_id.startswith("<tdk-")
    assert message_id.endswith("@msp.example>")
    assert tokens.verify(message_id, organization_id=cast.acme.pk,
                         sender="alice@acme.example") == ticket.pk  # fmt: skip
    assert (
        tokens.verify(message_id, organization_id=cast.acme.pk, sender="bob@acme.example") is None
    )
    assert str(message["References"]) == "<tierdesk.acme-1@msp.example>"
    assert str(message["In-Reply-To"]) == "<tierdesk.acme-1@msp.example>"
    # A requester who opens a ticket gets the receipt too (it is not a reaction to their act).
    make_ticket(cast.bob, cast.acme, subject="Mouse")
    deliver()
    assert "ACME-2" in str(inbox.wait_for("bob@acme.example")[0]["Subject"])


def test_public_replies_go_to_the_other_side_and_internal_notes_to_nobody(
    cast: Cast, inbox: Inbox
) -> None:
    ticket = ticket_for_alice(cast)
    deliver()
    inbox.messages.clear()
    tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Secret: the CFO's laptop",
                           internal=True)  # fmt: skip
    assert deliver() == 0
    tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Have you tried\nturning it off?")
    deliver()
    [to_alice] = inbox.wait_for("alice@acme.example")
    assert to_alice["Subject"] == "Re: [ACME-1] Printer on fire"
    assert "Have you tried\nturning it off?" in body(to_alice)
    assert "Lena wrote" in body(to_alice)
    assert "CFO" not in body(to_alice)
    assert addressees(inbox) == ["Alice <alice@acme.example>"]  # not Lena, who wrote it
    tickets.ticket_comment(actor=cast.alice, ticket=ticket, body="Yes, still burning")
    deliver()
    [to_lena] = inbox.wait_for("lena@msp.example")
    assert "Yes, still burning" in body(to_lena)
    assert "https://desk.msp.example/console/tickets/ACME-1" in body(to_lena)
    assert len(inbox.to("alice@acme.example")) == 1  # not her own reply


def test_escalation_reaches_the_new_assignee_and_if_asked_the_tiers_managers_who_serve_the_client(
    cast: Cast, inbox: Inbox
) -> None:
    # A second L2 manager serves GLOBEX only: ACME's escalations are none of his business.
    globex_manager = agent_create(actor=None, email="gm@msp.example", full_name="Gm",
                                  role="manager", tier=tier_by_code("L2"),
                                  served_organizations=[cast.globex])  # fmt: skip
    inactive = agent_create(actor=None, email="gone@msp.example", full_name="Gone",
                            role="manager", tier=tier_by_code("L2"),
                            served_organizations=[cast.acme])  # fmt: skip
    tier_update(actor=cast.admin, tier=tier_by_code("L2"),
                managers=[cast.manager, globex_manager, inactive])  # fmt: skip
    user_update(actor=cast.admin, user=inactive, is_active=False)
    # A functional escalation: the new assignee only.
    quiet = ticket_for_alice(cast, subject="Mouse slow")
    deliver()
    inbox.messages.clear()
    escalate(actor=cast.lena, ticket=quiet, reason="Odd", handoff_note="-", assignee=cast.omar)
    deliver()
    inbox.wait_for("omar@msp.example")
    assert addressees(inbox) == ["Omar <omar@msp.example>"]
    inbox.messages.clear()
    # A hierarchical one: the target tier's active managers who serve ACME too.
    ticket = ticket_for_alice(cast, subject="Server down")
    deliver()
    inbox.messages.clear()
    escalate(actor=cast.lena, ticket=ticket, reason="Needs L2", handoff_note="Rebooted",
             assignee=cast.omar, notify_managers=True)  # fmt: skip
    deliver()
    inbox.wait_for("manager@msp.example")
    assert addressees(inbox) == ["Manager <manager@msp.example>", "Omar <omar@msp.example>"]
    message = inbox.to("omar@msp.example")[0]
    assert message["Subject"] == "[ACME-2] Escalated to L2: Server down"
    assert "from L1 to L2" in body(message)
    assert "by Lena" in body(message)
    assert "Needs L2" in body(message)


def test_resolution_goes_to_the_requester(cast: Cast, inbox: Inbox) -> None:
    ticket = ticket_for_alice(cast)
    deliver()
    inbox.messages.clear()
    tickets.ticket_transition(actor=cast.lena, ticket=ticket, to_status="resolved",
                              resolution_code="fixed", resolution_note="New toner.")  # fmt: skip
    deliver()
    [message] = inbox.wait_for("alice@acme.example")
    assert message["Subject"] == "[ACME-1] Resolved: Printer on fire"
    assert "New toner." in body(message)
    assert addressees(inbox) == ["Alice <alice@acme.example>"]


def sla_contract(cast: Cast) -> None:
    calendar = calendar_create(actor=None, name="always", title="Always", time_zone="UTC",
                               hours={d: [(0, 24 * 60)] for d in range(7)})  # fmt: skip
    sla_policy_create(actor=None, name="ACME", organization=cast.acme, calendar=calendar,
                      warning_percent=50,
                      targets=[Target("P2", first_response_minutes=60,
                                      resolution_minutes=120)])  # fmt: skip


def sla_ticket(cast: Cast, start: dt.datetime) -> None:
    """A P2 ticket of Alice's, assigned to Lena, answered at once (its first-response clock
    stops): its resolution clock warns after an hour and is breached after two."""
    with clock.frozen_at(start):
        ticket = ticket_for_alice(cast, priority="P2")
        tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="On it")
        relay()
    Notification.objects.all().delete()


def test_sla_warning_and_breach_reach_the_assignee_and_the_tiers_managers_in_their_time(
    cast: Cast, inbox: Inbox
) -> None:
    sla_contract(cast)
    tier_update(actor=cast.admin, tier=tier_by_code("L1"), managers=[cast.manager])
    user_update(actor=cast.lena, user=cast.lena, time_zone="Asia/Tokyo")
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    sla_ticket(cast, start)
    with clock.frozen_at(start + dt.timedelta(minutes=61)):
        clocks.sweep()
        deliver()
    inbox.wait_for("manager@msp.example")
    assert addressees(inbox) == ["Lena <lena@msp.example>", "Manager <manager@msp.example>"]
    to_lena = inbox.to("lena@msp.example")[0]
    # Due at 11:00 UTC: 20:00 in Tokyo, the time Lena reads; the manager's is UTC.
    assert to_lena["Subject"] == "[ACME-1] SLA warning: resolution due 20:00 JST"
    assert "2 Mar 2026, 20:00 JST" in body(to_lena)
    assert "2 Mar 2026, 11:00 UTC" in body(inbox.to("manager@msp.example")[0])
    inbox.messages.clear()
    with clock.frozen_at(start + dt.timedelta(minutes=121)):
        clocks.sweep()
        deliver()
    inbox.wait_for("manager@msp.example")
    assert addressees(inbox) == ["Lena <lena@msp.example>", "Manager <manager@msp.example>"]
    assert "SLA breached" in str(inbox.to("lena@msp.example")[0]["Subject"])
    assert not inbox.to("alice@acme.example")  # staff-only kinds never reach requesters


def test_a_manager_of_the_tier_who_does_not_serve_the_client_gets_no_notice(
    cast: Cast, inbox: Inbox
) -> None:
    sla_contract(cast)
    globex_manager = agent_create(actor=None, email="gm@msp.example", full_name="Gm",
                                  role="manager", tier=tier_by_code("L1"),
                                  served_organizations=[cast.globex])  # fmt: skip
    tier_update(actor=cast.admin, tier=tier_by_code("L1"), managers=[globex_manager])
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    sla_ticket(cast, start)
    with clock.frozen_at(start + dt.timedelta(minutes=121)):
        clocks.sweep()
        deliver()
    inbox.wait_for("lena@msp.example", count=2)  # the warning and the breach
    assert not inbox.to("gm@msp.example")
    assert not Notification.objects.filter(recipient=globex_manager).exists()


def test_inactive_people_and_people_who_caused_the_event_get_nothing(
    cast: Cast, inbox: Inbox
) -> None:
    ticket = ticket_for_alice(cast)
    deliver()
    inbox.messages.clear()
    user_update(actor=cast.admin, user=cast.alice, is_active=False)
    tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Anyone there?")
    assert deliver() == 0
    # Queued while active, deactivated before the send: skipped, not sent.
    user_update(actor=cast.admin, user=cast.alice, is_active=True)
    tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Hello?")
    relay()
    user_update(actor=cast.admin, user=cast.alice, is_active=False)
    assert notify.send_due() == 1
    assert Notification.objects.get(kind="ticket_replied").status == NotificationStatus.SKIPPED
    assert inbox.messages == []


# --- preferences ----------------------------------------------------------------------------


def test_a_kind_switched_off_is_not_sent(cast: Cast, inbox: Inbox) -> None:
    assert notify.preferences_of(cast.alice) == {
        "ticket_created": True, "ticket_replied": True, "ticket_resolved": True,
    }  # fmt: skip
    assert "sla_breached" in notify.preferences_of(cast.lena)
    assert "security_alert" not in notify.preferences_of(cast.lena)  # admins only
    assert "security_alert" in notify.preferences_of(cast.admin)
    after = notify.notification_preferences_set(actor=cast.alice,
                                                changes={"ticket_created": False})  # fmt: skip
    assert after["ticket_created"] is False
    assert AuditEntry.objects.filter(action="user.notification_preferences_updated").count() == 1
    ticket = ticket_for_alice(cast)
    assert deliver() == 0
    tickets.ticket_comment(actor=cast.lena, ticket=ticket, body="Still on")
    deliver()
    assert len(inbox.wait_for("alice@acme.example")) == 1
    with pytest.raises(ValidationFailed, match="sla_breached"):
        notify.notification_preferences_set(actor=cast.alice, changes={"sla_breached": False})
    with pytest.raises(ValidationFailed):
        notify.notification_preferences_set(actor=cast.alice, changes={"nonsense": False})


# --- templates ------------------------------------------------------------------------------


def test_an_organizations_own_template_is_used_for_it_and_the_default_for_others(
    cast: Cast, inbox: Inbox
) -> None:
    notify.notification_template_set(
        actor=cast.manager, organization=cast.acme, kind="ticket_created",
        subject="ACME desk: {{ ticket.key }} {{ ticket.subject }}",
        text="Dear {{ recipient.name }}, ticket {{ ticket.key }} is ours now.",
    )  # fmt: skip
    assert AuditEntry.objects.filter(action="notification_template.set").count() == 1
    ticket_for_alice(cast, subject="Printer")
    make_ticket(cast.gus, cast.globex, cast.gerd, subject="Scanner")
    deliver()
    [acme] = inbox.wait_for("alice@acme.example")
    [globex] = inbox.wait_for("gerd@globex.example")
    assert acme["Subject"] == "ACME desk: ACME-1 Printer"
    assert body(acme).strip() == "Dear Alice, ticket ACME-1 is ours now."
    assert not acme.is_multipart()  # no HTML part given: plain text only
    assert globex["Subject"] == "[GLOBEX-1] We received your request: Scanner"
    assert "<strong>GLOBEX-1</strong>" in html(globex)
    notify.notification_template_delete(actor=cast.admin, organization=cast.acme,
                                        kind="ticket_created")  # fmt: skip
    inbox.messages.clear()
    ticket_for_alice(cast, subject="Again")
    deliver()
    assert "We received your request" in str(inbox.wait_for("alice@acme.example")[0]["Subject"])


@pytest.mark.parametrize(
    ("field", "source", "says"),
    [
        ("text", "Hello {% if %}", "template error"),
        ("text", "{{ ticket.key|nosuchfilter }}", "template error"),
        ("text", "{% include 'web/base.html' %}", "include"),
        ("text", "{% debug %}", "debug"),
        ("html", "{% autoescape off %}{{ ticket.subject }}{% endautoescape %}", "autoescape"),
        ("html", "<p>{{ ticket.subject|safe }}</p>", "safe"),
        ("subject", "{% load static %}x", "load"),
        (
            "subject",
            "{{ ticket.key|date:'Y' }}{% widthratio 1 0 x %}{{ x|add:1|divisibleby:0 }}",
            "does not render",
        ),
        ("html", "{% filter lower|safe %}{{ ticket.subject }}{% endfilter %}", "safe"),
        # what would cost the worker time or memory at send time, with a long reply
        (
            "text",
            "{% for a in comment.body %}{% for b in comment.body %}.{% endfor %}{% endfor %}",
            "inside another",
        ),
        ("text", '{{ ticket.subject|ljust:"2000000000" }}', "sizes above"),
        ("html", "{{ ticket.subject|center:5000 }}", "sizes above"),
        ("text", "{% widthratio 1 1 100000000 %}", "sizes above"),
    ],
)
def test_a_bad_template_is_refused_when_saved(
    cast: Cast, field: str, source: str, says: str
) -> None:
    parts = {"subject": "S", "text": "T", "html": ""} | {field: source}
    with pytest.raises(ValidationFailed, match=says) as caught:
        notify.notification_template_set(actor=cast.manager, organization=cast.acme,
                                          kind="ticket_replied", **parts)  # fmt: skip
    assert caught.value.errors[0].field == field
    assert not notify.templates_of(actor=cast.admin, organization=cast.acme)["ticket_replied"]


def test_who_may_change_an_organizations_templates(cast: Cast) -> None:
    parts = {"kind": "ticket_created", "subject": "S", "text": "T"}
    notify.notification_template_set(actor=cast.admin, organization=cast.globex, **parts)
    with pytest.raises(ValidationFailed, match="no such organization"):
        notify.notification_template_set(actor=cast.manager, organization=cast.globex, **parts)
    with pytest.raises(PermissionDenied):
        notify.notification_template_set(actor=cast.lena, organization=cast.acme, **parts)
    with pytest.raises(PermissionDenied):
        notify.notification_template_set(actor=cast.alice, organization=cast.acme, **parts)


def test_html_escapes_what_people_wrote(cast: Cast, inbox: Inbox) -> None:
    ticket_for_alice(cast, subject="<script>alert(1)</script> & more")
    deliver()
    [message] = inbox.wait_for("alice@acme.example")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html(message)
    assert "<script>" not in html(message)
    assert "<script>alert(1)</script> & more" in body(message)  # the text part is text


# --- delivery -------------------------------------------------------------------------------


def test_one_message_per_event_and_recipient_however_often_the_relay_runs(
    cast: Cast, inbox: Inbox
) -> None:
    ticket_for_alice(cast)
    relay()
    relay()
    event = OutboxEvent.objects.get(name="ticket.created")
    notify.on_event(event)  # as a relay that died before recording its run would
    assert Notification.objects.count() == 1
    assert notify.send_due() == 1
    assert notify.send_due() == 0
    inbox.wait_for("alice@acme.example")
    assert len(inbox.messages) == 1


def test_an_event_older_than_a_day_when_the_relay_reaches_it_is_not_mailed(
    cast: Cast, inbox: Inbox
) -> None:
    with clock.frozen_at(clock.now() - notify.STALE_AFTER - dt.timedelta(minutes=1)):
        ticket_for_alice(cast)  # e.g. while the worker was down for a day
    assert deliver() == 0
    assert not Notification.objects.exists()


def test_a_send_that_fails_is_retried_with_the_same_message_id_then_delivered_once(
    cast: Cast, settings: Any, inbox: Inbox
) -> None:
    use_smtp(settings, free_port())  # nothing listens there: the server is down
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with clock.frozen_at(start):
        ticket_for_alice(cast)
        deliver()
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 1)
    assert "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at == start + dt.timedelta(minutes=1)
    first_id = row.message_id
    with clock.frozen_at(start + dt.timedelta(seconds=59)):
        assert notify.send_due() == 0  # not yet
    use_smtp(settings, inbox.port)  # the server is back
    with clock.frozen_at(start + dt.timedelta(minutes=1)):
        assert notify.send_due() == 1
    [message] = inbox.wait_for("alice@acme.example")
    assert str(message["Message-ID"]) == first_id
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (NotificationStatus.SENT, 2, "")
    assert notify.send_due() == 0


def test_a_server_that_stays_down_is_retried_with_backoff_then_given_up(
    cast: Cast, settings: Any, inbox: Inbox
) -> None:
    use_smtp(settings, free_port())
    moment = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with clock.frozen_at(moment):
        ticket_for_alice(cast)
        relay()
    waits = []
    for _ in range(notify.MAX_ATTEMPTS):
        with clock.frozen_at(moment):
            assert notify.send_due() == 1
        row = Notification.objects.get()
        waits.append(row.next_attempt_at - moment)
        moment = row.next_attempt_at
    assert waits[:4] == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert row.status == NotificationStatus.FAILED
    assert row.attempts == notify.MAX_ATTEMPTS
    assert "ConnectionRefusedError" in row.last_error
    with clock.frozen_at(moment + dt.timedelta(days=1)):
        assert notify.send_due() == 0


def test_a_recipient_the_server_refuses_for_good_is_not_tried_again(
    cast: Cast, inbox: Inbox
) -> None:
    inbox.refused.add("alice@acme.example")
    ticket_for_alice(cast)
    assert deliver() == 1
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (NotificationStatus.FAILED, 1)
    assert "550" in row.last_error
    assert inbox.messages == []


def test_a_notification_that_cannot_be_built_is_counted_as_a_failed_attempt(
    cast: Cast, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(notify, "build", broken)
    start = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with clock.frozen_at(start):
        ticket_for_alice(cast)
        assert deliver() == 1
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (NotificationStatus.PENDING, 1)
    assert row.last_error == "RuntimeError: a bug"
    assert row.next_attempt_at == start + dt.timedelta(minutes=1)
    assert inbox.messages == []


def test_two_workers_never_send_the_same_notification(cast: Cast, inbox: Inbox) -> None:
    ticket_for_alice(cast)
    relay()
    # Both workers read it before either claimed it; only one claim holds.
    seen_by_one = notify.due().get()
    seen_by_other = notify.due().get()
    assert notify.claim(seen_by_one) is True
    assert notify.claim(seen_by_other) is False
    assert notify.send_due() == 0  # claimed: not due again until the lease runs out
    with clock.frozen_at(clock.now() + notify.LEASE + dt.timedelta(seconds=1)):
        assert notify.send_due() == 1  # a worker that died gives it back
    inbox.wait_for("alice@acme.example")
    assert len(inbox.messages) == 1


def test_the_periodic_job_runs_once_per_minute(cast: Cast, inbox: Inbox) -> None:
    ticket_for_alice(cast)
    relay()
    notifications_tick.call_local()
    inbox.wait_for("alice@acme.example")
    assert Notification.objects.get().status == NotificationStatus.SENT


# --- header injection -----------------------------------------------------------------------


def test_names_and_subjects_with_line_breaks_add_no_header_and_no_recipient(
    cast: Cast, inbox: Inbox
) -> None:
    ann = user_create(actor=None, email="ann@acme.example",
                      full_name="Ann\r\nBcc: victim@evil.test", role="requester",
                      organization=cast.acme)  # fmt: skip
    assert isinstance(ann, User)
    make_ticket(cast.lena, cast.acme, ann, assignee=cast.lena,
                subject="Help\r\nBcc: victim@evil.test\r\nX-Evil: 1\x00\u2028")  # fmt: skip
    deliver()
    [message] = inbox.wait_for("ann@acme.example")
    assert inbox.envelopes == [["ann@acme.example"]]  # the only recipient the server was given
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert message.get_all("To") == ['"Ann Bcc: victim@evil.test" <ann@acme.example>']
    # (folded after "Subject:" for its length: the parser keeps the fold's space)
    subject = str(message["Subject"]).strip()
    assert subject == "[ACME-1] We received your request: Help Bcc: victim@evil.test X-Evil: 1"
    raw = message.as_bytes(policy=email.policy.SMTP)
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.lower().startswith((b"bcc", b"x-evil")) for line in headers.split(b"\r\n"))
