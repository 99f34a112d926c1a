"""Mails about automation, against a real SMTP server on loopback (aiosmtpd): a runbook
run that waits for an approval is mailed to the people who may approve it (the client's
managers and the L2 tier's, else its L2 agents; never the asker, an L1 agent, another
client's staff or someone inactive), and security alerts to every admin and nobody else.
Alerts are about no ticket: no thread headers, no reply token. The events are made as the
automation code makes them (``emit`` in a transaction), the runs as rows."""

from __future__ import annotations

import itertools
from email.message import EmailMessage

import pytest
from django.db import transaction
from django.db.models import QuerySet

from tests.channels.test_notify import addressees, body, deliver, html
from tests.conftest import Cast, make_ticket
from tests.smtp import Inbox
from tierdesk.automation.models import ActionRun, RunStatus
from tierdesk.channels import notify, tokens
from tierdesk.channels.models import (
    Mailbox,
    Notification,
    NotificationStatus,
    NotificationTemplate,
)
from tierdesk.core import clock
from tierdesk.core.errors import ValidationFailed
from tierdesk.core.events import emit
from tierdesk.core.models import Organization, OutboxEvent, User
from tierdesk.core.outbox import relay
from tierdesk.core.services import user_update
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.services import agent_create, tier_by_code, tier_update

pytestmark = pytest.mark.django_db
_keys = itertools.count(1)
ADMIN_DN = "uid=administrator,ou=People,dc=acme,dc=example"
REFUSED = "administrator is in the protected group Domain Admins"


def staff(email: str, role: str, tier: str, serves: list[Organization]) -> User:
    name = email.split("@")[0].title()
    return agent_create(actor=None, email=email, full_name=name, role=role,
                        tier=tier_by_code(tier), served_organizations=serves)  # fmt: skip


def asked(
    asker: User,
    organization: Organization,
    ticket: Ticket | None,
    *,
    account: str = "alice@acme.example",
) -> ActionRun:
    """A run of ``asker``'s that waits for an approval, and its event, as
    ``automation.services.run_action`` records them."""
    with transaction.atomic():
        run = ActionRun.objects.create(
            organization=organization, runbook="unlock-account", title="Unlock an account",
            channel="ticket" if ticket else "api", requested_by=asker, ticket=ticket,
            account=account, parameters={}, idempotency_key=f"k{next(_keys)}",
            status=RunStatus.AWAITING_APPROVAL, created_at=clock.now(),
        )  # fmt: skip
        emit(
            "automation.approval_needed",
            organization=organization,
            aggregate_type="action_run",
            aggregate_id=run.pk,
            payload={"run_id": run.pk, "runbook": run.runbook, "status": run.status,
                     "channel": run.channel, "ticket_id": run.ticket_id},
        )  # fmt: skip
    return run


def protected_account_asked(cast: Cast, ticket: Ticket | None) -> ActionRun:
    """Lena asked to unlock the domain administrator: refused, and an alert."""
    with transaction.atomic():
        run = ActionRun.objects.create(
            organization=cast.acme, runbook="unlock-account", title="Unlock an account",
            channel="ticket", requested_by=cast.lena, ticket=ticket, account="administrator",
            account_dn=ADMIN_DN, parameters={}, idempotency_key=f"k{next(_keys)}",
            status=RunStatus.FAILED, outcome=REFUSED, created_at=clock.now(),
        )  # fmt: skip
        emit(
            "security.protected_account",
            organization=cast.acme,
            aggregate_type="action_run",
            aggregate_id=run.pk,
            payload={"run_id": run.pk, "runbook": run.runbook, "status": run.status,
                     "channel": run.channel, "ticket_id": run.ticket_id,
                     "account": run.account, "account_dn": run.account_dn,
                     "requested_by": cast.lena.pk, "reason": run.outcome},
        )  # fmt: skip
    return run


def self_service_blocked(user: User) -> None:
    with transaction.atomic():
        emit(
            "security.self_service_blocked",
            organization=user.organization,
            aggregate_type="user",
            aggregate_id=user.pk,
            payload={"user_id": user.pk, "email": user.email, "wrong_codes_today": 10},
        )


def acme_mailbox(cast: Cast) -> None:
    """ACME has a mailbox: ticket mail then says to reply to support+<token>@acme.example."""
    Mailbox.objects.create(
        organization=cast.acme, name="Support", address="support@acme.example",
        host="127.0.0.1", port=993, security="tls", username="u", password_sealed="-",
        created_at=clock.now(),
    )  # fmt: skip


def about(run: ActionRun) -> QuerySet[Notification]:
    """The notifications about ``run``'s approval."""
    return Notification.objects.filter(
        event__name="automation.approval_needed", event__aggregate_id=str(run.pk)
    )


def subject(message: EmailMessage) -> str:
    # A long subject is folded onto the header's next line; read back, it keeps the space.
    return str(message["Subject"]).strip()


@pytest.fixture
def ticket(cast: Cast, inbox: Inbox) -> Ticket:
    """ACME-1, Alice's, with its acknowledgement sent and forgotten."""
    found = make_ticket(cast.lena, cast.acme, cast.alice, assignee=cast.lena, subject="Locked out")
    deliver()
    inbox.messages.clear()
    return found


# --- approvals ------------------------------------------------------------------------------


def test_an_approval_goes_to_the_managers_who_serve_the_client_and_the_l2_tiers_managers(
    cast: Cast, inbox: Inbox, ticket: Ticket
) -> None:
    # The L2 tier's managers: an admin on duty (admins serve every client): asked; a
    # manager who serves GLOBEX only, and one who left: not asked.
    duty = staff("duty@msp.example", "admin", "L3", [])
    globex_manager = staff("gm@msp.example", "manager", "L2", [cast.globex])
    gone = staff("gone@msp.example", "manager", "L2", [cast.acme])
    tier_update(actor=cast.admin, tier=tier_by_code("L2"), managers=[duty, globex_manager, gone])
    user_update(actor=cast.admin, user=gone, is_active=False)
    run = asked(cast.lena, cast.acme, ticket)
    deliver()
    inbox.wait_for("duty@msp.example")
    # Not Lena, who asked; not Omar (an L2 agent: managers come first); not the other
    # admin, GLOBEX's staff, the requesters.
    assert addressees(inbox) == ["Duty <duty@msp.example>", "Manager <manager@msp.example>"]
    message = inbox.to("manager@msp.example")[0]
    assert subject(message) == (
        "[ACME-1] Your approval is needed: Unlock an account for alice@acme.example"
    )
    text = body(message)
    assert "Unlock an account for alice@acme.example, asked by Lena, waits for your approval" in (
        text
    )
    assert "Decide on the ticket: https://desk.msp.example/console/tickets/ACME-1" in text
    assert "<strong>Unlock an account</strong>" in html(message)
    # It joins the ticket's thread, and a reply joins the ticket.
    assert str(message["References"]) == "<tierdesk.acme-1@msp.example>"
    assert tokens.verify(str(message["Message-ID"]), organization_id=cast.acme.pk,
                         sender="manager@msp.example") == ticket.pk  # fmt: skip
    assert about(run).count() == 2
    # The one who asked is never asked, even when they could approve themselves.
    inbox.messages.clear()
    asked(cast.manager, cast.acme, ticket, account="bob@acme.example")
    deliver()
    inbox.wait_for("duty@msp.example")
    assert addressees(inbox) == ["Duty <duty@msp.example>"]


def test_without_managers_the_l2_and_higher_agents_who_serve_the_client_are_asked(
    cast: Cast, inbox: Inbox
) -> None:
    # GLOBEX has no manager, and the L2 tier none: its L2 and L3 agents are asked.
    staff("expert@msp.example", "agent", "L3", [cast.globex])
    staff("acme-only@msp.example", "agent", "L2", [cast.acme])
    staff("junior@msp.example", "agent", "L1", [cast.globex])
    ticket = make_ticket(cast.gus, cast.globex, cast.gerd, subject="Locked out")
    deliver()
    inbox.messages.clear()
    asked(cast.gus, cast.globex, ticket, account="gerd@globex.example")
    deliver()
    inbox.wait_for("omar@msp.example")
    assert addressees(inbox) == ["Expert <expert@msp.example>", "Omar <omar@msp.example>"]


def test_an_approval_asked_through_the_api_is_about_no_ticket(cast: Cast, inbox: Inbox) -> None:
    acme_mailbox(cast)
    run = asked(cast.lena, cast.acme, None)
    deliver()
    [message] = inbox.wait_for("manager@msp.example")
    assert subject(message) == (
        "[ACME] Your approval is needed: Unlock an account for alice@acme.example"
    )
    assert f"POST /api/v1/automation-runs/{run.pk}/approve" in body(message)
    # No thread, no reply token, no reply address: a reply has no ticket to join.
    assert message["References"] is None
    assert message["In-Reply-To"] is None
    assert message["Reply-To"] is None
    assert str(message["Message-ID"]).startswith("<tierdesk.")
    assert tokens.find(str(message["Message-ID"])) == []
    assert Notification.objects.get().ticket_id is None


def test_approvals_switched_off_or_decided_meanwhile_are_not_sent(
    cast: Cast, inbox: Inbox, ticket: Ticket
) -> None:
    staff("lead@msp.example", "manager", "L2", [cast.acme])
    notify.notification_preferences_set(actor=cast.manager, changes={"approval_needed": False})
    asked(cast.lena, cast.acme, ticket)
    deliver()
    inbox.wait_for("lead@msp.example")
    assert addressees(inbox) == ["Lead <lead@msp.example>"]
    # Decided before the relay came to it: nobody is asked.
    inbox.messages.clear()
    run = asked(cast.lena, cast.acme, ticket, account="bob@acme.example")
    ActionRun.objects.filter(pk=run.pk).update(status=RunStatus.REJECTED)
    assert deliver() == 0
    # Decided after it was queued, before it was sent: skipped.
    run = asked(cast.lena, cast.acme, ticket, account="carol@acme.example")
    relay()
    ActionRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert notify.send_due() == 1
    skipped = about(run).get()
    assert skipped.status == NotificationStatus.SKIPPED
    assert skipped.last_error == "the run no longer waits for an approval"
    assert inbox.messages == []


def test_an_organizations_own_approval_template_is_used(
    cast: Cast, inbox: Inbox, ticket: Ticket
) -> None:
    notify.notification_template_set(
        actor=cast.manager, organization=cast.acme, kind="approval_needed",
        subject="ACME approval: {{ approval.title }} ({{ approval.runbook }})",
        text="{{ approval.asked_by }} asks to act on {{ approval.account }} ({{ ticket.key }}).",
    )  # fmt: skip
    asked(cast.lena, cast.acme, ticket)
    deliver()
    [message] = inbox.wait_for("manager@msp.example")
    assert subject(message) == "ACME approval: Unlock an account (unlock-account)"
    assert body(message).strip() == "Lena asks to act on alice@acme.example (ACME-1)."


# --- security alerts ------------------------------------------------------------------------


def test_a_protected_account_alert_goes_to_every_active_admin_and_nobody_else(
    cast: Cast, inbox: Inbox, ticket: Ticket
) -> None:
    acme_mailbox(cast)
    staff("second@msp.example", "admin", "L3", [])
    gone = staff("former@msp.example", "admin", "L3", [])
    user_update(actor=cast.admin, user=gone, is_active=False)
    protected_account_asked(cast, ticket)
    deliver()
    inbox.wait_for("second@msp.example")
    inbox.wait_for("admin@msp.example")
    assert addressees(inbox) == ["Admin <admin@msp.example>", "Second <second@msp.example>"]
    message = inbox.to("admin@msp.example")[0]
    assert subject(message) == "Security alert (ACME): A protected account was asked for"
    text = body(message)
    assert "A protected account was asked for in Acme Inc., on " in text
    assert (
        "Asked by Lena (lena@msp.example): Unlock an account (unlock-account) for the account "
        "administrator." in text
    )
    assert "tierdesk stopped before changing anything." in text
    assert f"Found in the directory as: {ADMIN_DN}" in text
    assert f"Why it was refused: {REFUSED}" in text
    assert "Asked on ticket ACME-1: Locked out" in text
    assert "https://desk.msp.example/console/tickets/ACME-1" in text
    assert "<li>Asked by Lena (lena@msp.example)" in html(message)
    # About no ticket: no thread, no reply token, no reply address (ACME has a mailbox).
    assert message["References"] is None
    assert message["In-Reply-To"] is None
    assert message["Reply-To"] is None
    assert str(message["Message-ID"]).startswith("<tierdesk.")
    assert str(message["Message-ID"]).endswith("@msp.example>")
    assert tokens.find(str(message["Message-ID"])) == []
    assert message["Auto-Submitted"] == "auto-generated"
    alerts = Notification.objects.filter(kind="security_alert")
    assert [(n.ticket_id, n.organization_id) for n in alerts] == [(None, cast.acme.pk)] * 2
    assert set(Notification.objects.values_list("kind", flat=True)) == {
        "ticket_created",  # Alice's acknowledgement of ACME-1
        "security_alert",
    }


def test_a_self_service_block_alert_goes_to_the_admins_who_did_not_switch_it_off(
    cast: Cast, inbox: Inbox
) -> None:
    second = staff("second@msp.example", "admin", "L3", [])
    notify.notification_preferences_set(actor=second, changes={"security_alert": False})
    with pytest.raises(ValidationFailed, match="security_alert"):
        notify.notification_preferences_set(actor=cast.manager, changes={"security_alert": False})
    user_update(actor=cast.admin, user=cast.admin, time_zone="Asia/Tokyo")
    with clock.frozen_at(clock.now().replace(hour=11, minute=0, second=0, microsecond=0)):
        self_service_blocked(cast.alice)
        deliver()
    [message] = inbox.wait_for("admin@msp.example")
    assert addressees(inbox) == ["Admin <admin@msp.example>"]
    assert subject(message) == "Security alert (ACME): Self-service blocked after wrong codes"
    text = body(message)
    assert "20:00 JST" in text  # in the admin's own time zone
    assert "10 wrong self-service codes were entered for alice@acme.example within a day." in text
    assert "The account itself is not locked." in text
    assert message["References"] is None
    assert tokens.find(str(message["Message-ID"])) == []


def test_a_security_alert_is_queued_once_however_often_the_relay_runs(
    cast: Cast, inbox: Inbox
) -> None:
    self_service_blocked(cast.alice)
    asked(cast.lena, cast.acme, None)
    relay()
    relay()
    for event in OutboxEvent.objects.filter(dispatched_at__isnull=False):
        notify.on_event(event)  # as a relay that died before recording its run would
    assert sorted(Notification.objects.values_list("kind", "recipient__email")) == [
        ("approval_needed", "manager@msp.example"),
        ("security_alert", "admin@msp.example"),
    ]
    assert notify.send_due() == 2
    assert notify.send_due() == 0
    inbox.wait_for("admin@msp.example")
    inbox.wait_for("manager@msp.example")
    assert len(inbox.messages) == 2


def test_organizations_cannot_reword_security_alerts(cast: Cast, inbox: Inbox) -> None:
    with pytest.raises(ValidationFailed, match="own wording only") as caught:
        notify.notification_template_set(actor=cast.admin, organization=cast.acme,
                                          kind="security_alert", subject="S", text="T")  # fmt: skip
    assert caught.value.errors[0].field == "kind"
    assert "security_alert" not in notify.templates_of(actor=cast.admin, organization=cast.acme)
    # A row that got there all the same is not used.
    NotificationTemplate.objects.create(
        organization=cast.acme, kind="security_alert", subject="Nothing to see",
        text="All fine.", updated_at=clock.now(),
    )  # fmt: skip
    self_service_blocked(cast.alice)
    deliver()
    [message] = inbox.wait_for("admin@msp.example")
    assert subject(message) == "Security alert (ACME): Self-service blocked after wrong codes"


def test_a_token_is_for_a_ticket_only() -> None:
    with pytest.raises(ValueError, match="for a ticket"):
        tokens.make(organization_id=1, ticket_id=0, recipient="a@example.com", nonce="1")
