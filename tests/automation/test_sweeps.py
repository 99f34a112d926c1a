"""The worker's automation sweep: approvals nobody gave expire, and runs whose process
ended mid-run are closed with what their step records say remains."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests import ldapserver
from tests.automation.test_runs import OLD, run
from tests.conftest import Cast, make_ticket
from tierdesk.automation import runbooks, services
from tierdesk.automation.models import ActionRun, ActionStep, Directory, RunStatus, StepStatus
from tierdesk.automation.tasks import automation_sweep_tick
from tierdesk.core import clock
from tierdesk.core.errors import Conflict
from tierdesk.core.models import AuditEntry, OutboxEvent
from tierdesk.tickets.models import Comment


def test_an_approval_nobody_gives_expires_and_nothing_is_done(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    ticket = make_ticket(cast.carol, cast.acme)
    asked = run(
        cast.lena, cast.acme, "disable-account", "carol@acme.example", channel="ticket",
        ticket=ticket,
    )  # fmt: skip
    assert asked.run.status == RunStatus.AWAITING_APPROVAL
    later = clock.now() + dt.timedelta(hours=23, minutes=59)
    with clock.frozen_at(later):
        assert services.expire_approvals() == 0  # not yet
    with clock.frozen_at(clock.now() + dt.timedelta(hours=24, minutes=1)):
        assert services.expire_approvals() == 1
        assert services.expire_approvals() == 0  # once
    expired = ActionRun.objects.get(pk=asked.run.pk)
    assert expired.status == RunStatus.EXPIRED
    assert expired.finished_at is not None
    assert "24 h" in expired.outcome
    assert slapd.bind_works(slapd.dn("carol"), OLD)  # nothing was done
    assert AuditEntry.objects.filter(
        action="automation.expired", target_id=str(expired.pk)
    ).exists()
    assert OutboxEvent.objects.filter(name="automation.approval_expired").count() == 1
    note = Comment.objects.filter(ticket=ticket, is_internal=True).latest("pk")
    assert "nobody approved it within 24 hours" in note.body
    # an approval that comes too late finds nothing to approve
    with pytest.raises(Conflict, match="not waiting"):
        services.decide(actor=cast.omar, run=expired, approve=True)
    assert slapd.bind_works(slapd.dn("carol"), OLD)


def test_the_approval_window_is_a_setting(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, settings: Any
) -> None:
    settings.AUTOMATION_APPROVAL_HOURS = 2
    asked = run(
        cast.lena, cast.acme, "disable-account", "carol@acme.example", channel="ticket",
        ticket=make_ticket(cast.carol, cast.acme),
    )  # fmt: skip
    with clock.frozen_at(clock.now() + dt.timedelta(hours=2, minutes=1)):
        automation_sweep_tick.call_local()
    assert ActionRun.objects.get(pk=asked.run.pk).status == RunStatus.EXPIRED


def _cut_short(cast: Cast, ticket: object, steps: list[tuple[str, str, str]]) -> ActionRun:
    """A run as a process that died mid-run leaves it: "running", with step records."""
    now = clock.now()
    stale = ActionRun.objects.create(
        organization=cast.acme, runbook="onboard-user", title="Onboard a new user",
        channel="ticket", requested_by=cast.omar, ticket=ticket, account="newbie",
        account_dn=f"uid=newbie,ou=Staff,ou=People,{ldapserver.BASE}", parameters={},
        idempotency_key="crashed", status=RunStatus.RUNNING, created_at=now, started_at=now,
    )  # fmt: skip
    for position, (name, status, detail) in enumerate(steps, start=1):
        ActionStep.objects.create(
            run=stale, position=position, name=name, status=status, detail=detail,
            started_at=now, finished_at=None if status == StepStatus.STARTED else now,
        )  # fmt: skip
    return stale


def test_a_run_its_process_left_behind_is_closed_with_what_remains(
    acme_directory: Directory, cast: Cast
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    stale = _cut_short(
        cast,
        ticket,
        [
            ("check_scope", StepStatus.DONE, "new account in ou=Staff"),
            ("create_account", StepStatus.DONE, "created uid=newbie,…"),
            ("set_password", StepStatus.DONE, "set a generated password"),
            ("add_to_group", StepStatus.STARTED, ""),
        ],
    )
    fresh = clock.now() + dt.timedelta(minutes=14)
    with clock.frozen_at(fresh):
        assert services.close_interrupted() == 0  # it may still be running
    with clock.frozen_at(clock.now() + dt.timedelta(minutes=16)):
        assert services.close_interrupted() == 1
        assert services.close_interrupted() == 0
    closed = ActionRun.objects.get(pk=stale.pk)
    assert closed.status == RunStatus.FAILED
    assert "stopped before it finished" in closed.outcome
    assert closed.remains.splitlines() == [
        "the account was created (created uid=newbie,…)",
        "the password was changed (set a generated password)",
        "unknown whether step add_to_group changed anything",
    ]
    assert AuditEntry.objects.filter(
        action="automation.interrupted", target_id=str(closed.pk)
    ).exists()
    event = OutboxEvent.objects.get(name="automation.failed", aggregate_id=str(closed.pk))
    assert event.payload["status"] == "failed"
    note = Comment.objects.filter(ticket=ticket, is_internal=True).latest("pk")
    assert "stopped before it finished" in note.body
    assert "the account was created" in note.body


def test_steps_taken_back_before_the_crash_are_not_said_to_remain(
    acme_directory: Directory, cast: Cast
) -> None:
    stale = _cut_short(
        cast,
        None,
        [
            ("find_account", StepStatus.DONE, "uid=alice,…"),
            ("add_to_group", StepStatus.DONE, "added to cn=VPN Users"),
            ("disable", StepStatus.FAILED, "the directory went away"),
            ("undo_add_to_group", StepStatus.UNDONE, "removed from cn=VPN Users again"),
        ],
    )
    with clock.frozen_at(clock.now() + dt.timedelta(minutes=16)):
        services.close_interrupted()
    closed = ActionRun.objects.get(pk=stale.pk)
    assert closed.status == RunStatus.FAILED
    assert closed.remains == ""


def test_of_two_steps_of_one_name_only_the_one_taken_back_is_not_said_to_remain(
    acme_directory: Directory, cast: Cast
) -> None:
    """An installation's runbook may add to two groups: when only the later one was taken
    back before the crash, the earlier one remains."""
    stale = _cut_short(
        cast,
        None,
        [
            ("find_account", StepStatus.DONE, "uid=alice,…"),
            ("add_to_group", StepStatus.DONE, "added to cn=VPN Users"),
            ("add_to_group", StepStatus.DONE, "added to cn=Wiki Editors"),
            ("disable", StepStatus.FAILED, "the directory went away"),
            ("undo_add_to_group", StepStatus.UNDONE, "removed from cn=Wiki Editors again"),
            ("undo_add_to_group", StepStatus.STARTED, ""),
        ],
    )
    with clock.frozen_at(clock.now() + dt.timedelta(minutes=16)):
        services.close_interrupted()
    closed = ActionRun.objects.get(pk=stale.pk)
    assert closed.remains.splitlines() == [
        "the account was added to the group (added to cn=VPN Users)",
        "unknown whether step undo_add_to_group changed anything",
    ]


def test_a_run_that_finished_is_left_alone(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    done = run(cast.omar, cast.acme, "unlock-account", "alice")
    assert done.run.status == RunStatus.SUCCEEDED
    with clock.frozen_at(clock.now() + dt.timedelta(days=3)):
        assert services.close_interrupted() == 0
        assert services.expire_approvals() == 0
    assert ActionRun.objects.get(pk=done.run.pk).status == RunStatus.SUCCEEDED


def test_a_run_that_ends_after_the_sweep_closed_it_records_its_real_outcome(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    now = clock.now()
    slow = ActionRun.objects.create(
        organization=cast.acme, runbook="unlock-account", title="Unlock an account",
        channel="api", requested_by=cast.omar, account="alice", parameters={},
        idempotency_key="slow", status=RunStatus.RUNNING, created_at=now, started_at=now,
    )  # fmt: skip
    # the sweep took it for cut short while it was still going
    ActionRun.objects.filter(pk=slow.pk).update(status=RunStatus.FAILED)
    done = services._execute(slow, cast.omar, runbooks.get("unlock-account"), acme_directory, {})  # type: ignore[arg-type]
    assert ActionRun.objects.get(pk=slow.pk).status == RunStatus.SUCCEEDED
    entry = AuditEntry.objects.filter(action="automation.run", target_id=str(slow.pk)).get()
    assert entry.changes["after_presumed_interrupted"] is True
    assert done.run.status == RunStatus.SUCCEEDED
