"""Runbooks run against a real OpenLDAP (tests.ldapserver): the directory really changes,
refusals really refuse, and a failure leaves the directory as it was or says what
remains."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import pytest

from tests import ldapserver
from tests.automation.conftest import directory_fields
from tests.conftest import Cast, make_ticket
from tierdesk.automation import engine, runbooks, services
from tierdesk.automation.models import ActionRun, ActionStep, Directory, RunStatus
from tierdesk.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent

OLD = ldapserver.USER_PASSWORD
keys = itertools.count(1)


def run(actor: Any, org: Any, runbook: str, account: str, **kw: Any) -> services.RunResult:
    return services.run_action(
        actor=actor,
        organization=org,
        runbook=runbook,
        account=account,
        parameters=kw.pop("parameters", {}),
        channel=kw.pop("channel", "api"),
        idempotency_key=kw.pop("key", f"k-{next(keys)}"),
        **kw,
    )


def test_a_reset_sets_a_generated_password_that_works_and_is_kept_nowhere(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)  # every logger, ldap3's too
    done = run(cast.omar, cast.acme, "reset-password", "alice")
    assert done.run.status == RunStatus.SUCCEEDED, done.run.outcome
    assert done.secret
    assert len(done.secret) >= 16
    dn = slapd.dn("alice")
    assert slapd.bind_works(dn, done.secret)
    assert not slapd.bind_works(dn, OLD)
    assert slapd.read(dn, "pwdReset")["pwdReset"] == ["TRUE"]  # change at next sign-in
    steps = list(ActionStep.objects.filter(run=done.run).values_list("name", "status"))
    assert steps == [
        ("find_account", "done"), ("check_scope", "done"), ("check_protected", "done"),
        ("set_password", "done"),
    ]  # fmt: skip
    # the password is in none of what is kept
    kept = [
        str(ActionRun.objects.filter(pk=done.run.pk).values().get()),
        str(list(ActionStep.objects.filter(run=done.run).values())),
        str(list(AuditEntry.objects.values())),
        str(list(OutboxEvent.objects.values())),
    ]
    assert not any(done.secret in text for text in kept)
    assert done.secret not in caplog.text
    assert done.run.parameters == {"password": "(generated)", "must_change": True}


def test_a_chosen_password_is_checked_first_and_then_works(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        run(cast.omar, cast.acme, "reset-password", "alice", parameters={"password": "short"})
    assert refused.value.errors[0].field == "password"
    with pytest.raises(ValidationFailed, match="three of"):
        run(cast.omar, cast.acme, "reset-password", "alice", parameters={"password": "a" * 20})
    assert not ActionRun.objects.exists()  # a refusal before the directory leaves no run
    assert AuditEntry.objects.filter(action="automation.refused").count() == 2
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    chosen = "Winter-Harbour-42"
    done = run(
        cast.omar, cast.acme, "reset-password", "alice",
        parameters={"password": chosen, "must_change": False},
    )  # fmt: skip
    assert done.run.status == RunStatus.SUCCEEDED
    assert done.secret is None
    assert slapd.bind_works(slapd.dn("alice"), chosen)
    assert slapd.read(slapd.dn("alice"), "pwdReset")["pwdReset"] == []
    assert done.run.parameters["password"] == "(chosen)"


def test_unlock_clears_a_lockout_and_a_second_unlock_changes_nothing(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    dn = slapd.dn("bob")
    assert not slapd.bind_works(dn, OLD)  # locked
    done = run(cast.omar, cast.acme, "unlock-account", "bob@acme.example")
    assert done.run.status == RunStatus.SUCCEEDED, done.run.outcome
    assert done.run.account_dn == dn
    assert slapd.bind_works(dn, OLD)
    again = run(cast.omar, cast.acme, "unlock-account", "bob")
    assert again.run.status == RunStatus.SUCCEEDED
    assert "nothing to change" in again.run.outcome
    assert ActionStep.objects.get(run=again.run, name="unlock").status == "unchanged"


@pytest.mark.parametrize(
    ("account", "why"),
    [
        ("root-admin", "protected group"),  # in an allowed OU, but a Domain Admin
        ("ceo", "outside the OUs"),
        ("nobody", "no account"),
        ("*", "no account"),  # a wildcard is a value, not a pattern
        ("alice)(uid=*", "no account"),
        ("*)(|(objectClass=*", "no account"),
        ("alice\\2a", "no account"),
    ],
)
def test_refusals_refuse_and_change_nothing(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, account: str, why: str
) -> None:
    done = run(cast.omar, cast.acme, "reset-password", account)
    assert done.run.status == RunStatus.FAILED
    assert why in done.run.outcome
    assert done.secret is None
    assert not ActionStep.objects.filter(run=done.run, name="set_password").exists()
    for uid, ou in (("root-admin", "Staff"), ("ceo", "Executives"), ("alice", "Staff")):
        assert slapd.bind_works(slapd.dn(uid, ou), OLD), uid
    assert AuditEntry.objects.filter(action="automation.refused", target_id=str(done.run.pk))
    # a protected account asked for is an alert; a mistyped or out-of-scope one is not
    alerts = OutboxEvent.objects.filter(name="security.protected_account")
    assert alerts.count() == (1 if why == "protected group" else 0)
    if why == "protected group":
        payload = alerts.get().payload
        assert payload["account"] == account
        assert payload["requested_by"] == cast.omar.pk
        assert "root-admin" in payload["account_dn"]


def test_a_lookup_that_finds_two_entries_stops(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    with slapd.as_root() as root:
        assert root.modify(
            slapd.dn("carol"), {"mail": [("MODIFY_REPLACE", ["alice@acme.example"])]}
        )
    done = run(cast.omar, cast.acme, "reset-password", "alice@acme.example")
    assert done.run.status == RunStatus.FAILED
    assert "more than one account" in done.run.outcome
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    assert slapd.bind_works(slapd.dn("carol"), OLD)


def test_never_across_organizations(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    with pytest.raises(NotFound):  # gus serves Globex only
        run(cast.gus, cast.acme, "reset-password", "alice")
    with pytest.raises(ValidationFailed, match="no active directory"):
        run(cast.omar, cast.globex, "reset-password", "alice")  # Globex has none
    with pytest.raises(PermissionDenied):  # a requester through the API
        run(cast.alice, cast.acme, "reset-password", "alice")
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    assert AuditEntry.objects.filter(action="automation.refused").count() == 3


def test_the_same_request_twice_acts_once(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    first = run(cast.omar, cast.acme, "reset-password", "alice", key="retry-1")
    again = run(cast.omar, cast.acme, "reset-password", "alice", key="retry-1")
    assert again.repeated
    assert again.run.pk == first.run.pk
    assert again.secret is None
    assert first.secret
    assert slapd.bind_works(slapd.dn("alice"), first.secret)
    assert ActionRun.objects.count() == 1
    with pytest.raises(Conflict):
        run(cast.omar, cast.acme, "unlock-account", "bob", key="retry-1")


def test_an_action_that_needs_approval_waits_for_l2(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    asked = run(
        cast.lena, cast.acme, "add-to-group", "alice@acme.example",
        parameters={"group": "VPN Users"}, channel="ticket",
        ticket=make_ticket(cast.alice, cast.acme),
    )  # fmt: skip
    assert asked.run.status == RunStatus.AWAITING_APPROVAL
    group = f"cn=VPN Users,ou=Groups,{ldapserver.BASE}"
    assert slapd.dn("alice") not in slapd.read(group, "member")["member"]
    assert OutboxEvent.objects.filter(name="automation.approval_needed").count() == 1
    with pytest.raises(NotFound):  # another organization's agent
        services.decide(actor=cast.gus, run=asked.run, approve=True)
    with pytest.raises(PermissionDenied, match="L2"):  # L1 does not approve
        services.decide(actor=cast.lena, run=asked.run, approve=True)
    done = services.decide(actor=cast.omar, run=asked.run, approve=True)  # L2
    assert done.run.status == RunStatus.SUCCEEDED, done.run.outcome
    assert done.run.decided_by == cast.omar
    assert slapd.dn("alice") in slapd.read(group, "member")["member"]
    with pytest.raises(Conflict):
        services.decide(actor=cast.omar, run=asked.run, approve=True)
    # refused: nothing happens
    carols = make_ticket(cast.carol, cast.acme)
    other = run(
        cast.lena, cast.acme, "disable-account", "carol@acme.example", channel="ticket",
        ticket=carols,
    )  # fmt: skip
    refused = services.decide(actor=cast.manager, run=other.run, approve=False)
    assert refused.run.status == RunStatus.REJECTED
    assert slapd.bind_works(slapd.dn("carol"), OLD)
    # whoever may approve runs it at once
    direct = run(cast.omar, cast.acme, "disable-account", "carol")
    assert direct.run.status == RunStatus.SUCCEEDED
    assert direct.run.decided_by == cast.omar
    assert not slapd.bind_works(slapd.dn("carol"), OLD)
    assert slapd.read(slapd.dn("carol"), "pwdAccountLockedTime")["pwdAccountLockedTime"] == [
        ldapserver.PERMANENT_LOCK
    ]
    # a disabled account is not unlocked by unlock-account
    unlock = run(
        cast.lena, cast.acme, "unlock-account", "carol@acme.example", channel="ticket",
        ticket=carols,
    )  # fmt: skip
    assert "nothing to change" in unlock.run.outcome
    assert not slapd.bind_works(slapd.dn("carol"), OLD)
    enabled = run(cast.manager, cast.acme, "enable-account", "carol")
    assert enabled.run.status == RunStatus.SUCCEEDED
    assert slapd.bind_works(slapd.dn("carol"), OLD)


def test_only_allowed_groups_and_never_a_protected_one(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    done = run(cast.omar, cast.acme, "add-to-group", "alice", parameters={"group": "Domain Admins"})
    assert done.run.status == RunStatus.FAILED
    assert "not one of the groups" in done.run.outcome
    admins = f"cn=Domain Admins,ou=Groups,{ldapserver.BASE}"
    assert slapd.dn("alice") not in slapd.read(admins, "member")["member"]


@pytest.fixture
def own_runbooks(tmp_path: Path, settings: Any) -> Path:
    settings.RUNBOOKS_DIR = str(tmp_path)
    runbooks.catalogue.cache_clear()
    yield tmp_path
    runbooks.catalogue.cache_clear()


def test_a_failed_step_takes_back_what_the_run_did(
    slapd: ldapserver.Directory, cast: Cast, own_runbooks: Path
) -> None:
    base = ldapserver.BASE
    services.directory_create(
        actor=cast.admin,
        organization=cast.acme,
        **directory_fields(
            slapd,
            # allowed, but not in the directory: adding to it fails
            allowed_groups=[f"cn=VPN Users,ou=Groups,{base}", f"cn=Ghosts,ou=Groups,{base}"],
        ),
    )
    (own_runbooks / "two-groups.yaml").write_text(
        "name: two-groups\ntitle: Two groups\nroles: [agent]\nsteps:\n"
        "  - disable\n  - add_to_group: {group: VPN Users}\n  - add_to_group: {group: Ghosts}\n"
    )
    done = run(cast.omar, cast.acme, "two-groups", "alice")
    assert done.run.status == RunStatus.FAILED
    assert "step 3 (add_to_group) failed" in done.run.outcome
    assert done.run.remains == ""  # all taken back
    statuses = list(ActionStep.objects.filter(run=done.run).values_list("name", "status"))
    assert statuses[3:] == [
        ("disable", "done"), ("add_to_group", "done"), ("add_to_group", "failed"),
        ("undo_add_to_group", "undone"), ("undo_disable", "undone"),
    ]  # fmt: skip
    assert slapd.bind_works(slapd.dn("alice"), OLD)  # enabled again
    group = f"cn=VPN Users,ou=Groups,{base}"
    assert slapd.dn("alice") not in slapd.read(group, "member")["member"]


def test_a_directory_that_goes_away_mid_run_leaves_a_clear_account_of_it(
    slapd: ldapserver.Directory, cast: Cast, own_runbooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.directory_create(actor=cast.admin, organization=cast.acme, **directory_fields(slapd))
    (own_runbooks / "offboard.yaml").write_text(
        "name: offboard\ntitle: Offboard\nroles: [agent]\nsteps:\n"
        "  - disable\n  - remove_from_group: {group: VPN Users}\n"
    )
    real = engine.STEPS["disable"]
    stopped: list[Any] = []

    def disable_then_vanish(ctx: engine.Context, arguments: dict[str, Any]) -> str:
        detail = real.apply(ctx, arguments)
        stopped.append(slapd.stop())
        return detail

    monkeypatch.setitem(
        engine.STEPS, "disable", engine.StepDefinition(
            "disable", (), disable_then_vanish, real.undo, real.remains
        ),
    )  # fmt: skip
    done = run(cast.omar, cast.acme, "offboard", "carol")
    assert stopped
    assert done.run.status == RunStatus.FAILED
    assert "step 2 (remove_from_group) failed" in done.run.outcome
    assert "the account is disabled" in done.run.remains
    assert "taking it back failed" in done.run.remains
    slapd.start()
    # and what it says is so
    assert slapd.read(slapd.dn("carol"), "pwdAccountLockedTime")["pwdAccountLockedTime"] == [
        ldapserver.PERMANENT_LOCK
    ]


def test_onboarding_creates_an_account_in_its_groups_with_a_first_password(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    asked = run(
        cast.manager, cast.acme, "onboard-user", "erik",
        parameters={"given_name": "Erik", "surname": "Engel", "email": "erik@acme.example"},
    )  # fmt: skip
    assert asked.run.status == RunStatus.SUCCEEDED, asked.run.outcome
    dn = f"uid=erik,ou=Staff,ou=People,{ldapserver.BASE}"
    assert asked.run.account_dn == dn
    assert asked.secret
    assert slapd.bind_works(dn, asked.secret)
    assert slapd.read(dn, "pwdReset")["pwdReset"] == ["TRUE"]
    group = f"cn=VPN Users,ou=Groups,{ldapserver.BASE}"
    assert dn in slapd.read(group, "member")["member"]
    again = run(
        cast.manager, cast.acme, "onboard-user", "erik",
        parameters={"given_name": "Erik", "surname": "Engel", "email": "erik@acme.example"},
    )  # fmt: skip
    assert again.run.status == RunStatus.FAILED
    assert "exists already" in again.run.outcome


def test_self_service_needs_the_code_and_the_own_account(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    with pytest.raises(PermissionDenied, match="one-time code"):
        run(cast.alice, cast.acme, "reset-password", "alice@acme.example", channel="self_service")
    with pytest.raises(PermissionDenied, match="own account"):
        run(
            cast.alice, cast.acme, "reset-password", "bob@acme.example",
            channel="self_service", verified=True,
        )  # fmt: skip
    with pytest.raises(PermissionDenied, match="not offered"):
        run(
            cast.alice, cast.acme, "disable-account", "alice@acme.example",
            channel="self_service", verified=True,
        )  # fmt: skip
    done = run(
        cast.alice, cast.acme, "reset-password", "alice@acme.example",
        channel="self_service", verified=True,
    )  # fmt: skip
    assert done.run.status == RunStatus.SUCCEEDED
    assert done.secret
    assert slapd.bind_works(slapd.dn("alice"), done.secret)


def test_active_directory_writes_follow_its_conventions(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    ad = ldapserver.AD_BASE
    services.directory_create(
        actor=cast.admin,
        organization=cast.acme,
        **directory_fields(
            slapd, kind="active_directory", bind_dn=ldapserver.AD_SERVICE_DN, base_dn=ad,
            login_attribute="sAMAccountName", allowed_ous=[f"OU=Staff,{ad}"],
            protected_groups=[], allowed_groups=[], new_accounts_ou="",
        ),
    )  # fmt: skip
    finn = f"CN=Finn Fuchs,OU=Staff,{ad}"
    unlocked = run(cast.omar, cast.acme, "unlock-account", "finn")
    assert unlocked.run.status == RunStatus.SUCCEEDED, unlocked.run.outcome
    assert slapd.read(finn, "lockoutTime")["lockoutTime"] == ["0"]
    reset = run(cast.omar, cast.acme, "reset-password", "finn@ad.example")
    assert reset.run.status == RunStatus.SUCCEEDED, reset.run.outcome
    written = slapd.read(finn, "unicodePwd", "pwdLastSet")
    assert written["unicodePwd"] == [f'"{reset.secret}"'.encode("utf-16-le").decode()]
    assert written["pwdLastSet"] == ["0"]
    disabled = run(cast.omar, cast.acme, "disable-account", "finn")
    assert disabled.run.status == RunStatus.SUCCEEDED
    assert slapd.read(finn, "userAccountControl")["userAccountControl"] == ["514"]
    enabled = run(cast.omar, cast.acme, "enable-account", "finn")
    assert enabled.run.status == RunStatus.SUCCEEDED
    assert slapd.read(finn, "userAccountControl")["userAccountControl"] == ["512"]
    # an account AD protects as privileged (adminCount=1) is refused
    with slapd.as_root(ad) as root:
        assert root.modify(
            f"CN=Erin Ernst,OU=Staff,{ad}", {"adminCount": [("MODIFY_REPLACE", ["1"])]}
        )
    privileged = run(cast.omar, cast.acme, "reset-password", "erin")
    assert privileged.run.status == RunStatus.FAILED
    assert "adminCount=1" in privileged.run.outcome


def test_l1_acts_from_a_ticket_for_its_requester_with_generated_passwords_only(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    with pytest.raises(PermissionDenied, match="from a ticket"):
        run(cast.lena, cast.acme, "reset-password", "alice@acme.example")
    with pytest.raises(PermissionDenied, match="requester only"):
        run(
            cast.lena, cast.acme, "reset-password", "bob@acme.example", channel="ticket",
            ticket=ticket,
        )  # fmt: skip
    with pytest.raises(PermissionDenied, match="chosen password"):
        run(
            cast.lena, cast.acme, "reset-password", "alice@acme.example", channel="ticket",
            ticket=ticket, parameters={"password": "Harbour-Lights-77"},
        )  # fmt: skip
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    done = run(
        cast.lena, cast.acme, "reset-password", "alice@acme.example", channel="ticket",
        ticket=ticket, parameters={"must_change": False},
    )  # fmt: skip
    assert done.run.status == RunStatus.SUCCEEDED
    assert done.run.parameters["must_change"] is True  # L1's always must be changed
    assert slapd.read(slapd.dn("alice"), "pwdReset")["pwdReset"] == ["TRUE"]
    assert AuditEntry.objects.filter(action="automation.refused").count() == 3


def test_protection_reaches_through_nested_groups_and_odd_spellings(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    base = ldapserver.BASE
    with slapd.as_root() as root:
        # carol is in Helpdesk Leads, which is inside Domain Admins
        assert root.add(
            f"cn=Helpdesk Leads,ou=Groups,{base}", "groupOfNames",
            {"member": [f"UID=Carol,OU=staff,ou=People,{base}"]},
        )  # fmt: skip
        assert root.modify(
            f"cn=Domain Admins,ou=Groups,{base}",
            {"member": [("MODIFY_ADD", [f"commonName=Helpdesk Leads,ou=Groups,{base}"])]},
        )
        # and an entry whose name has ou=Staff in its first part, outside the allowed OU
        assert root.add(
            f"uid=sneaky+ou=Staff,ou=People,{base}", "inetOrgPerson",
            {"cn": "Sneaky", "sn": "S", "mail": "sneaky@acme.example",
             "userPassword": OLD},
        )  # fmt: skip
    nested = run(cast.omar, cast.acme, "reset-password", "carol")
    assert nested.run.status == RunStatus.FAILED
    assert "protected group" in nested.run.outcome
    sneaky = run(cast.omar, cast.acme, "reset-password", "sneaky@acme.example")
    assert "outside the OUs" in sneaky.run.outcome
    assert slapd.bind_works(slapd.dn("carol"), OLD)


def test_the_service_account_itself_is_never_touched(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    # a careless setup: the service account is a person in an allowed OU (dave)
    with slapd.as_root() as root:
        assert root.modify(
            slapd.dn("dave"), {"userPassword": [("MODIFY_REPLACE", [ldapserver.SERVICE_PASSWORD])]}
        )
        # an administrator's change marks it for a change at next bind: not for a service
        assert root.modify(slapd.dn("dave"), {"pwdReset": [("MODIFY_DELETE", [])]})
    services.directory_create(
        actor=cast.admin, organization=cast.acme,
        **directory_fields(slapd, bind_dn=f"UID=dave,ou=staff,ou=People,{ldapserver.BASE}"),
    )  # fmt: skip
    itself = run(cast.omar, cast.acme, "reset-password", "dave")
    assert itself.run.status == RunStatus.FAILED
    assert "the service account tierdesk binds as" in itself.run.outcome
    assert slapd.bind_works(slapd.dn("dave"), ldapserver.SERVICE_PASSWORD)


def test_a_protected_group_that_cannot_be_read_refuses(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    Directory.objects.update(protected_groups=[f"cn=Gone,ou=Groups,{ldapserver.BASE}"])
    done = run(cast.omar, cast.acme, "reset-password", "alice")
    assert done.run.status == RunStatus.FAILED
    assert "cannot be read" in done.run.outcome
    assert slapd.bind_works(slapd.dn("alice"), OLD)


def test_an_allowed_group_inside_a_protected_one_is_not_joined(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast
) -> None:
    base = ldapserver.BASE
    with slapd.as_root() as root:
        assert root.modify(
            f"cn=Domain Admins,ou=Groups,{base}",
            {"member": [("MODIFY_ADD", [f"cn=VPN Users,ou=Groups,{base}"])]},
        )
    done = run(cast.omar, cast.acme, "add-to-group", "alice", parameters={"group": "VPN Users"})
    assert done.run.status == RunStatus.FAILED
    assert "inside the protected group" in done.run.outcome
    group = f"cn=VPN Users,ou=Groups,{base}"
    assert slapd.dn("alice") not in slapd.read(group, "member")["member"]


def test_an_active_directory_primary_group_counts_as_membership(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    """AD leaves a user's primary group out of the group's member list (primaryGroupID
    names it): a Domain Admin by primary group, directly or through a nested group, is
    protected all the same."""
    ad = ldapserver.AD_BASE
    admins = f"CN=Domain Admins,OU=Groups,{ad}"
    services.directory_create(
        actor=cast.admin,
        organization=cast.acme,
        **directory_fields(
            slapd, kind="active_directory", bind_dn=ldapserver.AD_SERVICE_DN, base_dn=ad,
            login_attribute="sAMAccountName", allowed_ous=[f"OU=Staff,{ad}"],
            protected_groups=[admins], allowed_groups=[], new_accounts_ou="",
        ),
    )  # fmt: skip
    erin = f"CN=Erin Ernst,OU=Staff,{ad}"
    ordinary = run(cast.omar, cast.acme, "unlock-account", "erin")  # Domain Users: fine
    assert ordinary.run.status == RunStatus.SUCCEEDED, ordinary.run.outcome
    with slapd.as_root(ad) as root:
        assert root.modify(erin, {"primaryGroupID": [("MODIFY_REPLACE", ["512"])]})
    direct = run(cast.omar, cast.acme, "unlock-account", "erin")
    assert direct.run.status == RunStatus.FAILED
    assert "Domain Admins" in direct.run.outcome
    # a primary group inside a protected one
    operators = f"CN=Helpdesk Operators,OU=Groups,{ad}"
    with slapd.as_root(ad) as root:
        assert root.modify(erin, {"primaryGroupID": [("MODIFY_REPLACE", ["1200"])]})
        assert root.modify(admins, {"member": [("MODIFY_ADD", [operators])]})
    nested = run(cast.omar, cast.acme, "unlock-account", "erin")
    assert nested.run.status == RunStatus.FAILED
    assert "Domain Admins" in nested.run.outcome
    # a primary group that cannot be found is refused, not assumed harmless
    with slapd.as_root(ad) as root:
        assert root.modify(erin, {"primaryGroupID": [("MODIFY_REPLACE", ["4242"])]})
    unknown = run(cast.omar, cast.acme, "unlock-account", "erin")
    assert unknown.run.status == RunStatus.FAILED
    assert "primary group" in unknown.run.outcome
    # and so is one that cannot be read (every AD account has one)
    with slapd.as_root(ad) as root:
        assert root.modify(erin, {"primaryGroupID": [("MODIFY_DELETE", [])]})
    unread = run(cast.omar, cast.acme, "unlock-account", "erin")
    assert unread.run.status == RunStatus.FAILED
    assert "cannot be read" in unread.run.outcome
    assert OutboxEvent.objects.filter(name="security.protected_account").count() == 2
