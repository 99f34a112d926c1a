"""A directory's configuration: checked whole, its password sealed and never shown, and a
connection test that says plainly what is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import ldapserver, tlscerts
from tests.automation.conftest import directory_fields
from tests.conftest import Cast
from tests.processes import free_port
from tierdesk.automation import ldap, runbooks, services
from tierdesk.automation.models import Directory
from tierdesk.core.errors import Conflict, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry

PEM_START, PEM_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def test_the_password_is_sealed_and_the_audit_never_holds_it(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    d = services.directory_create(
        actor=cast.admin, organization=cast.acme, **directory_fields(slapd)
    )
    stored = Directory.objects.get(pk=d.pk)
    assert ldapserver.SERVICE_PASSWORD not in stored.password_sealed
    services.directory_update(actor=cast.admin, directory=d, password="Another-Secret-9")
    services.directory_update(actor=cast.admin, directory=d, min_password_length=14)
    audit = str(list(AuditEntry.objects.filter(target_type="directory").values()))
    assert ldapserver.SERVICE_PASSWORD not in audit
    assert "Another-Secret-9" not in audit
    last = AuditEntry.objects.filter(action="directory.updated").order_by("pk").last()
    assert last is not None
    assert last.changes == {"min_password_length": {"old": 12, "new": 14}}
    with pytest.raises(Conflict):  # one per organization
        services.directory_create(
            actor=cast.admin, organization=cast.acme, **directory_fields(slapd)
        )
    with pytest.raises(PermissionDenied):
        services.directory_update(actor=cast.manager, directory=d, is_active=False)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"host": "ldap://dc1.example"}, "host"),
        ({"host": "dc1.example:636"}, "host"),
        ({"port": 0}, "port"),
        ({"port": "636"}, "port"),
        ({"security": "plain"}, "security"),
        ({"kind": "novell"}, "kind"),
        ({"base_dn": "not a dn"}, "base_dn"),
        ({"bind_dn": ""}, "bind_dn"),
        ({"allowed_ous": []}, "allowed_ous"),
        ({"allowed_ous": ["ou=Elsewhere,dc=other,dc=test"]}, "allowed_ous"),
        ({"allowed_ous": "ou=Staff,dc=acme,dc=test"}, "allowed_ous"),
        (
            {"allowed_groups": [f"cn=Domain Admins,ou=Groups,{ldapserver.BASE}"]},
            "allowed_groups",
        ),
        ({"new_accounts_ou": f"ou=Executives,ou=People,{ldapserver.BASE}"}, "new_accounts_ou"),
        ({"login_attribute": "uid)(x=*"}, "login_attribute"),
        ({"min_password_length": 4}, "min_password_length"),
        ({"password": ""}, "password"),
        ({"ca_certificate": "-----BEGIN PRIVATE KEY-----\nabc"}, "ca_certificate"),
        (
            {"ca_certificate": f"{PEM_START}\nnot base64\n{PEM_END}"},
            "ca_certificate",
        ),
    ],
)
def test_bad_configuration_is_refused_with_the_field(
    slapd: ldapserver.Directory, cast: Cast, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.directory_create(
            actor=cast.admin, organization=cast.acme, **directory_fields(slapd, **overrides)
        )
    assert refused.value.errors[0].field == field
    assert not Directory.objects.exists()


def test_the_connection_test_says_what_is_wrong(
    slapd: ldapserver.Directory, cast: Cast, tmp_path: Path
) -> None:
    d = services.directory_create(
        actor=cast.admin, organization=cast.acme, **directory_fields(slapd)
    )
    found = services.test_connection(actor=cast.admin, directory=d)
    assert found[0].startswith("connected to 127.0.0.1")
    assert "base DN dc=acme,dc=test found" in found

    def failure(**change: Any) -> ldap.DirectoryError:
        services.directory_update(actor=cast.admin, directory=d, **change)
        with pytest.raises(ldap.DirectoryError) as failed:
            services.test_connection(actor=cast.admin, directory=d)
        return failed.value

    wrong = failure(password="not-the-password")
    assert wrong.kind == "credentials"
    assert "refused the service account" in str(wrong)
    assert "not-the-password" not in str(wrong)
    services.directory_update(actor=cast.admin, directory=d, password=ldapserver.SERVICE_PASSWORD)
    other_ca = tlscerts.make(tmp_path / "other").ca_pem
    untrusted = failure(ca_certificate=other_ca)
    assert untrusted.kind == "certificate"
    assert "not trusted" in str(untrusted)
    services.directory_update(actor=cast.admin, directory=d, ca_certificate=slapd.ca_pem)
    missing = failure(
        base_dn="dc=missing,dc=acme,dc=test",
        allowed_ous=["ou=x,dc=missing,dc=acme,dc=test"],
        protected_groups=[], allowed_groups=[], new_accounts_ou="",
    )  # fmt: skip
    assert missing.kind == "base_dn"
    unreachable = failure(port=free_port())
    assert unreachable.kind == "unreachable"
    assert "cannot be reached" in str(unreachable)
    # StartTLS on the plain port works as well
    services.directory_update(
        actor=cast.admin, directory=d, base_dn=ldapserver.BASE,
        allowed_ous=[f"ou=Staff,ou=People,{ldapserver.BASE}"], port=slapd.port,
        security="starttls",
    )  # fmt: skip
    assert services.test_connection(actor=cast.admin, directory=d)


def test_runbooks_with_mistakes_are_refused_with_the_file_and_the_reason() -> None:
    bad = {
        "unknown step": "name: x1\ntitle: X\nsteps: [format_disk]\n",
        "not a parameter": "name: x2\ntitle: X\nsteps:\n  - add_to_group: {group: $grp}\n",
        "unknown argument": "name: x3\ntitle: X\nsteps:\n  - unlock: {force: true}\n",
        "roles": "name: x4\ntitle: X\nroles: [requester]\nsteps: [unlock]\n",
        "name": "name: Bad Name\ntitle: X\nsteps: [unlock]\n",
        "own account": (
            "name: x5\ntitle: X\nself_service: true\nneeds_approval: true\nsteps: [unlock]\n"
        ),
        "not valid YAML": "name: [x\n",
        "steps": "name: x6\ntitle: X\nsteps: []\n",
        "unknown key": "name: x7\ntitle: X\nrun_as: root\nsteps: [unlock]\n",
        "starts with create_account": (
            "name: x8\ntitle: X\ncreates_account: true\nsteps: [unlock]\n"
        ),
        "no default": (
            "name: x9\ntitle: X\nparameters:\n  - {name: pw, type: password, default: abc}\n"
            "steps: [unlock]\n"
        ),
    }
    for expected, text in bad.items():
        with pytest.raises(runbooks.RunbookError) as refused:
            runbooks.parse(text, "mine.yaml")
        assert str(refused.value).startswith("mine.yaml: "), expected
        assert expected in str(refused.value), (expected, str(refused.value))
    built_in = runbooks.catalogue()
    assert {"reset-password", "unlock-account", "onboard-user"} <= set(built_in)
    assert built_in["reset-password"].self_service
    assert built_in["add-to-group"].needs_approval
