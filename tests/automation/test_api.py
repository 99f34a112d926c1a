"""The automation API against a real directory: directories for admins, runs for staff
with the same policy as everywhere, one-time passwords and required idempotency keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests import ldapserver
from tests.automation.conftest import directory_fields
from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.automation.models import ActionRun, Directory
from tierdesk.core.models import AuditEntry, IdempotencyRecord

OLD = ldapserver.USER_PASSWORD


def test_an_admin_connects_a_directory_and_tests_it(
    slapd: ldapserver.Directory, cast: Cast, api_as: Callable[[Any], Api]
) -> None:
    admin = api_as(cast.admin)
    fields = directory_fields(slapd) | {"organization": "ACME"}
    made = admin.post("/directories", fields)
    assert made.status_code == 201, made.content
    body = made.json()
    assert "password" not in body
    assert ldapserver.SERVICE_PASSWORD not in made.content.decode()
    assert body["login_attribute"] == "uid"
    tested = admin.post(f"/directories/{body['id']}/test")
    assert tested.status_code == 200, tested.content
    assert tested.json()["ok"] is True
    changed = admin.patch(f"/directories/{body['id']}", {"password": "wrong-one"})
    assert changed.status_code == 200
    failed = admin.post(f"/directories/{body['id']}/test")
    assert failed.status_code == 502
    assert failed.json()["detail"].startswith("credentials: ")
    # managers and agents do not see directories at all
    assert api_as(cast.manager).get("/directories").status_code == 403
    assert api_as(cast.lena).post("/directories", fields).status_code == 403
    # bad input is refused by field, nothing stored
    bad = admin.post("/directories", fields | {"organization": "GLOBEX", "port": 70000})
    assert bad.status_code == 422
    assert problem_fields(bad) == ["port"]
    bad = admin.post("/directories", fields | {"organization": "GLOBEX", "base_dn": "nope"})
    assert problem_fields(bad) == ["base_dn"]
    assert Directory.objects.count() == 1
    assert admin.delete(f"/directories/{body['id']}").status_code == 204
    assert not Directory.objects.exists()


def test_a_run_over_the_api_gives_the_password_once(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, api_as: Callable[[Any], Api]
) -> None:
    lena = api_as(cast.omar)  # L2: any account of the organization
    ask = {"organization": "ACME", "runbook": "reset-password", "account": "alice"}
    missing = lena.post("/automation-runs", ask)
    assert missing.status_code == 422
    assert problem_fields(missing) == ["Idempotency-Key"]
    first = lena.post("/automation-runs", ask, headers={"Idempotency-Key": "r-1"})
    assert first.status_code == 201, first.content
    assert first["Cache-Control"] == "no-store"
    run = first.json()
    assert run["status"] == "succeeded"
    password = run["password"]
    assert password
    assert slapd.bind_works(slapd.dn("alice"), password)
    assert [s["name"] for s in run["steps"]][-1] == "set_password"
    again = lena.post("/automation-runs", ask, headers={"Idempotency-Key": "r-1"})
    assert again.status_code == 200
    assert again.json()["id"] == run["id"]
    assert again.json()["password"] is None
    assert slapd.bind_works(slapd.dn("alice"), password)  # not reset a second time
    assert password not in lena.get(f"/automation-runs/{run['id']}").content.decode()
    assert password not in lena.get("/automation-runs").content.decode()
    assert not IdempotencyRecord.objects.exists()  # no answer with it is kept
    # another organization's agent does not see it
    assert api_as(cast.gus).get(f"/automation-runs/{run['id']}").status_code == 404
    refused = api_as(cast.gus).post("/automation-runs", ask, headers={"Idempotency-Key": "r-2"})
    assert refused.status_code == 422
    assert problem_fields(refused) == ["organization"]
    assert AuditEntry.objects.filter(action="automation.run").count() == 1


def test_from_a_ticket_the_requester_is_the_account_and_approvals_wait(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, api_as: Callable[[Any], Api]
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    lena = api_as(cast.lena)
    asked = lena.post(
        "/automation-runs",
        {"organization": "ACME", "runbook": "disable-account", "ticket": ticket.key},
        headers={"Idempotency-Key": "t-1"},
    )
    assert asked.status_code == 201, asked.content
    run = asked.json()
    assert run["account"] == "alice@acme.example"
    assert run["channel"] == "ticket"
    assert run["ticket"] == ticket.key
    assert run["status"] == "awaiting_approval"
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    waiting = lena.get("/automation-runs", params={"status": "awaiting_approval"})
    assert [r["id"] for r in waiting.json()] == [run["id"]]
    assert lena.post(f"/automation-runs/{run['id']}/approve").status_code == 403
    approved = api_as(cast.omar).post(f"/automation-runs/{run['id']}/approve")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "succeeded"
    assert approved.json()["decided_by"] == "omar@msp.example"
    assert not slapd.bind_works(slapd.dn("alice"), OLD)
    assert api_as(cast.omar).post(f"/automation-runs/{run['id']}/reject").status_code == 409


def test_bad_run_requests_are_refused_by_field(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, api_as: Callable[[Any], Api]
) -> None:
    lena = api_as(cast.omar)

    def ask(body: dict[str, Any], key: str) -> Any:
        return lena.post("/automation-runs", body, headers={"Idempotency-Key": key})

    base = {"organization": "ACME", "runbook": "reset-password", "account": "alice"}
    assert ask(base | {"runbook": "format-disk"}, "b1").status_code == 404
    bad = ask(base | {"parameters": {"colour": "red"}}, "b2")
    assert problem_fields(bad) == ["colour"]
    bad = ask(base | {"parameters": {"password": "short"}}, "b3")
    assert problem_fields(bad) == ["password"]
    bad = ask(base | {"parameters": {"must_change": "yes"}}, "b4")
    assert problem_fields(bad) == ["must_change"]
    bad = ask(base | {"account": ""}, "b5")
    assert problem_fields(bad) == ["account"]
    bad = ask(base | {"ticket": "ACME-999999"}, "b6")
    assert problem_fields(bad) == ["ticket"]
    assert api_as(cast.alice).get("/automation-runs").status_code == 403
    assert not ActionRun.objects.exists()
    assert slapd.bind_works(slapd.dn("alice"), OLD)
    listed = lena.get("/runbooks").json()
    assert {b["name"] for b in listed} >= {"reset-password", "unlock-account", "add-to-group"}


def test_every_runbook_runs_end_to_end_through_the_api(
    slapd: ldapserver.Directory, acme_directory: Directory, cast: Cast, api_as: Callable[[Any], Api]
) -> None:
    manager = api_as(cast.manager)  # may approve: each runs at once
    group = f"cn=VPN Users,ou=Groups,{ldapserver.BASE}"
    keys = iter(range(1, 100))

    def run(runbook: str, account: str, **parameters: Any) -> dict[str, Any]:
        answer = manager.post(
            "/automation-runs",
            {"organization": "ACME", "runbook": runbook, "account": account,
             "parameters": parameters},
            headers={"Idempotency-Key": f"every-{next(keys)}"},
        )  # fmt: skip
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert body["status"] == "succeeded", body
        return body

    run("disable-account", "dave")
    assert not slapd.bind_works(slapd.dn("dave"), OLD)
    run("enable-account", "dave")
    assert slapd.bind_works(slapd.dn("dave"), OLD)
    run("add-to-group", "dave", group="VPN Users")
    assert slapd.dn("dave") in slapd.read(group, "member")["member"]
    run("remove-from-group", "dave", group=group)  # by DN as well as by name
    assert slapd.dn("dave") not in slapd.read(group, "member")["member"]
    run("unlock-account", "bob")
    assert slapd.bind_works(slapd.dn("bob"), OLD)
    reset = run("reset-password", "dave@acme.example", must_change=False)
    assert slapd.bind_works(slapd.dn("dave"), reset["password"])
    made = run(
        "onboard-user", "frida", given_name="Frida", surname="Fuchs", email="frida@acme.example"
    )
    assert made["account_dn"] == f"uid=frida,ou=Staff,ou=People,{ldapserver.BASE}"
    assert slapd.bind_works(made["account_dn"], made["password"])
