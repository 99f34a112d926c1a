"""The directory pages: admins add, change and delete the directory of an organization (the
service account's password never shown again, kept when left empty), see the service's
refusals beside their field with nothing stored, and test the connection against a real
slapd. Managers, agents and requesters find no such pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import ldapserver
from tests.automation.conftest import directory_fields
from tests.conftest import Cast
from tests.processes import free_port
from tests.web.conftest import signed_in
from tierdesk.automation import services
from tierdesk.automation.models import Directory
from tierdesk.core.models import AuditEntry

pytestmark = pytest.mark.django_db
BASE = "/console/config/"
DN = ldapserver.BASE
STAFF_OU = f"ou=Staff,ou=People,{DN}"
ADMINS = f"cn=Domain Admins,ou=Groups,{DN}"
VPN = f"cn=VPN Users,ou=Groups,{DN}"
PEM_START = "-----BEGIN CERTIFICATE-----"


@pytest.fixture(scope="module")
def slapd() -> Iterator[ldapserver.Directory]:
    """One directory for the module: these tests only read it."""
    with ldapserver.directory() as running:
        yield running


def form(slapd: ldapserver.Directory, **over: Any) -> dict[str, Any]:
    """The new-directory form as a browser posts it (the lists one DN a line)."""
    return {
        "organization": "ACME",
        "kind": "openldap",
        "host": slapd.host,
        "port": str(slapd.ldaps_port),
        "security": "ldaps",
        "ca_certificate": slapd.ca_pem,
        "bind_dn": ldapserver.SERVICE_DN,
        "password": ldapserver.SERVICE_PASSWORD,
        "base_dn": DN,
        "login_attribute": "",
        "email_attribute": "mail",
        "allowed_ous": f"{STAFF_OU}\r\n",
        "protected_groups": ADMINS,
        "allowed_groups": f"\r\n{VPN}\r\n\r\n",
        "new_accounts_ou": STAFF_OU,
        "min_password_length": "12",
        "is_active": "on",
    } | over


def errors_beside(page: str) -> dict[str, str]:
    """Field id -> the error list Django renders with it."""
    return dict(re.findall(r'<ul class="errorlist" id="id_(\w+)_error">(.*?)</ul>', page, re.S))


def made(cast: Cast, slapd: ldapserver.Directory, **over: Any) -> Directory:
    """A directory of ACME (or ``organization``), made through the service."""
    organization = over.pop("organization", cast.acme)
    return services.directory_create(
        actor=None, organization=organization, **directory_fields(slapd, **over)
    )


def test_only_admins_see_the_pages_and_the_navigation(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    acme = made(cast, slapd)
    globex = made(cast, slapd, organization=cast.globex)
    urls = [f"{BASE}directories/", f"{BASE}directories/new/"]
    for d in (acme, globex):
        urls += [f"{BASE}directories/{d.pk}/", f"{BASE}directories/{d.pk}/delete/"]
    # the manager and the agent serve ACME: its directory is as missing as GLOBEX's
    for user in (cast.manager, cast.lena, cast.omar, cast.alice):
        client = signed_in(user)
        for url in urls:
            assert client.get(url).status_code == 404, (user.email, url)
        for d in (acme, globex):
            assert client.post(f"{BASE}directories/{d.pk}/test/").status_code == 404
            assert client.post(f"{BASE}directories/{d.pk}/delete/").status_code == 404
            assert client.post(f"{BASE}directories/{d.pk}/", form(slapd)).status_code == 404
        assert client.post(f"{BASE}directories/new/", form(slapd)).status_code == 404
    assert Directory.objects.count() == 2
    assert not AuditEntry.objects.filter(action="directory.deleted").exists()
    assert "Directories" not in signed_in(cast.manager).get(BASE).content.decode()
    admin_home = signed_in(cast.admin).get(BASE).content.decode()
    assert f'href="{BASE}directories/"' in admin_home
    assert "where L1 automation resets passwords and unlocks accounts" in admin_home
    # visitors are sent to sign in
    assert signed_in(cast.admin).get(f"{BASE}directories/").status_code == 200
    visitor = signed_in(cast.admin)
    visitor.logout()
    assert visitor.get(f"{BASE}directories/").status_code == 302
    assert signed_in(cast.admin).get(f"{BASE}directories/9999/").status_code == 404


def test_an_admin_adds_a_directory_tests_it_and_keeps_the_password(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    client = signed_in(cast.admin)
    new = client.get(f"{BASE}directories/new/").content.decode()
    assert 'type="password"' in new
    assert "sAMAccountName" in new  # the kind's help says what each kind looks people up by
    created = client.post(f"{BASE}directories/new/", form(slapd))
    d = Directory.objects.get()
    assert created.status_code == 302
    assert created["Location"] == f"{BASE}directories/{d.pk}/"
    assert d.organization == cast.acme
    assert d.login_attribute == "uid"  # left empty: OpenLDAP's default
    assert d.allowed_ous == [STAFF_OU]
    assert d.protected_groups == [ADMINS]
    assert d.allowed_groups == [VPN]  # blank lines dropped
    edit = client.get(created["Location"]).content.decode()
    assert ldapserver.SERVICE_PASSWORD not in edit
    assert "Leave empty to keep the stored password" in edit
    assert "added: test its connection below" in edit
    listed = client.get(f"{BASE}directories/").content.decode()
    assert f'href="{BASE}directories/{d.pk}/"' in listed
    assert f"{slapd.host}:{slapd.ldaps_port}" in listed
    assert "OpenLDAP (ppolicy)" in listed
    assert "LDAPS (TLS from the start)" in listed
    assert DN in listed
    assert "Active" in listed

    tested = client.post(f"{BASE}directories/{d.pk}/test/").content.decode()
    assert 'id="test-result"' in tested
    assert "Connection works:" in tested
    assert f"<li>connected to {slapd.host}:{slapd.ldaps_port} and bound as" in tested
    assert f"<li>base DN {DN} found</li>" in tested
    assert "<li>allowed ous: all 1 found</li>" in tested
    # the form under the result still saves to the directory, not to the test
    assert f'action="{BASE}directories/{d.pk}/"' in tested
    assert ldapserver.SERVICE_PASSWORD not in tested

    # saved with the password left empty: the stored one stays, and only what changed
    # is written and audited
    sealed = d.password_sealed
    saved = client.post(
        f"{BASE}directories/{d.pk}/", form(slapd, password="", min_password_length="14")
    )
    assert saved.status_code == 302
    d.refresh_from_db()
    assert d.password_sealed == sealed
    assert d.min_password_length == 14
    last = AuditEntry.objects.filter(action="directory.updated").order_by("pk").last()
    assert last is not None
    assert last.changes == {"min_password_length": {"old": 12, "new": 14}}
    # the organization is permanent: one posted is ignored
    client.post(f"{BASE}directories/{d.pk}/", form(slapd, password="", organization="GLOBEX"))
    d.refresh_from_db()
    assert d.organization == cast.acme

    # a wrong password, saved: the test says plainly what is wrong
    client.post(f"{BASE}directories/{d.pk}/", form(slapd, password="not-the-password"))
    d.refresh_from_db()
    assert d.password_sealed != sealed
    failed = client.post(f"{BASE}directories/{d.pk}/test/")
    assert failed.status_code == 200
    page = failed.content.decode()
    assert "Connection failed (credentials): the directory refused the service account" in page
    assert "not-the-password" not in page
    # the server on a port where nothing listens
    client.post(
        f"{BASE}directories/{d.pk}/",
        form(slapd, password=ldapserver.SERVICE_PASSWORD, port=str(free_port())),
    )
    gone = client.post(f"{BASE}directories/{d.pk}/test/").content.decode()
    assert "Connection failed (unreachable):" in gone
    assert "cannot be reached" in gone
    audit = str(list(AuditEntry.objects.filter(target_type="directory").values()))
    assert ldapserver.SERVICE_PASSWORD not in audit
    assert "not-the-password" not in audit
    assert "BEGIN CERTIFICATE" not in audit


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host": "ldaps://dc1.acme.test"}, "host"),
        ({"host": "dc1.acme.test:636"}, "host"),
        ({"port": "99999"}, "port"),
        ({"security": "plain"}, "security"),
        ({"kind": "novell"}, "kind"),
        ({"bind_dn": "not a dn"}, "bind_dn"),
        ({"base_dn": ""}, "base_dn"),
        ({"allowed_ous": ""}, "allowed_ous"),
        ({"allowed_ous": "ou=Elsewhere,dc=other,dc=test"}, "allowed_ous"),
        ({"allowed_ous": f"{STAFF_OU}\nnot a dn"}, "allowed_ous"),
        ({"allowed_groups": f"{VPN}\n{ADMINS}"}, "allowed_groups"),
        ({"new_accounts_ou": f"ou=Executives,ou=People,{DN}"}, "new_accounts_ou"),
        ({"login_attribute": "uid)(x=*"}, "login_attribute"),
        ({"min_password_length": "4"}, "min_password_length"),
        ({"ca_certificate": "not a certificate"}, "ca_certificate"),
        ({"ca_certificate": f"{PEM_START}\n-----BEGIN PRIVATE KEY-----"}, "ca_certificate"),
        ({"password": ""}, "password"),
        ({"organization": "NOPE"}, "organization"),
        ({"organization": ""}, "organization"),
    ],
)  # fmt: skip
def test_bad_input_is_shown_beside_its_field_and_nothing_is_stored(
    slapd: ldapserver.Directory, cast: Cast, change: dict[str, Any], field: str
) -> None:
    client = signed_in(cast.admin)
    response = client.post(f"{BASE}directories/new/", form(slapd, **change))
    assert response.status_code in (400, 422)
    page = response.content.decode()
    assert list(errors_beside(page)) == [field], errors_beside(page)
    # the message is tied to its field for assistive technology
    described = re.search(rf'<(?:input|select|textarea)[^>]*id="id_{field}"[^>]*>', page)
    assert described is not None
    assert f"id_{field}_error" in described.group(0)
    assert ldapserver.SERVICE_PASSWORD not in page  # the typed password is not sent back
    if field != "ca_certificate":
        assert "BEGIN CERTIFICATE" in page  # what was typed stays
    assert not Directory.objects.exists()
    assert not AuditEntry.objects.filter(target_type="directory").exists()


def test_a_refused_change_keeps_what_was_stored(slapd: ldapserver.Directory, cast: Cast) -> None:
    d = made(cast, slapd)
    before = Directory.objects.filter(pk=d.pk).values().get()
    client = signed_in(cast.admin)
    for change, field in [
        ({"host": "ldap://dc1.acme.test"}, "host"),
        ({"allowed_ous": f"ou=Staff,{ldapserver.AD_BASE}"}, "allowed_ous"),
        ({"protected_groups": VPN}, "allowed_groups"),
    ]:
        response = client.post(f"{BASE}directories/{d.pk}/", form(slapd, password="x", **change))
        assert response.status_code == 422
        page = response.content.decode()
        assert list(errors_beside(page)) == [field], (change, errors_beside(page))
        # the test button still tests what is stored
        assert f'action="{BASE}directories/{d.pk}/test/"' in page
    assert Directory.objects.filter(pk=d.pk).values().get() == before
    assert not AuditEntry.objects.filter(action="directory.updated").exists()


def test_one_directory_per_organization(slapd: ldapserver.Directory, cast: Cast) -> None:
    made(cast, slapd)
    client = signed_in(cast.admin)
    again = client.post(f"{BASE}directories/new/", form(slapd))
    assert again.status_code == 409
    assert "already" in errors_beside(again.content.decode())["organization"]
    assert Directory.objects.count() == 1
    other = client.post(f"{BASE}directories/new/", form(slapd, organization="GLOBEX"))
    assert other.status_code == 302
    assert Directory.objects.get(organization=cast.globex)


def test_an_admin_deletes_a_directory_after_confirming(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    d = made(cast, slapd)
    kept = made(cast, slapd, organization=cast.globex)
    client = signed_in(cast.admin)
    edit = client.get(f"{BASE}directories/{d.pk}/").content.decode()
    assert f'href="{BASE}directories/{d.pk}/delete/"' in edit
    asked = client.get(f"{BASE}directories/{d.pk}/delete/")
    assert asked.status_code == 200
    assert "Delete the directory of ACME?" in asked.content.decode()
    assert Directory.objects.filter(pk=d.pk).exists()  # a GET deletes nothing
    done = client.post(f"{BASE}directories/{d.pk}/delete/", follow=True)
    assert done.redirect_chain[-1][0] == f"{BASE}directories/"
    page = done.content.decode()
    assert "Directory of ACME deleted." in page
    assert not Directory.objects.filter(pk=d.pk).exists()
    assert Directory.objects.filter(pk=kept.pk).exists()
    deleted = AuditEntry.objects.get(action="directory.deleted")
    assert deleted.target_id == str(d.pk)
    assert deleted.changes == {"host": d.host}
    assert client.post(f"{BASE}directories/{d.pk}/delete/").status_code == 404
    assert client.post(f"{BASE}directories/{d.pk}/test/").status_code == 404


def test_the_test_is_post_only(slapd: ldapserver.Directory, cast: Cast) -> None:
    d = made(cast, slapd)
    assert signed_in(cast.admin).get(f"{BASE}directories/{d.pk}/test/").status_code == 405


def test_the_list_reads_the_same_whatever_the_number_of_directories(
    slapd: ldapserver.Directory, cast: Cast
) -> None:
    client = signed_in(cast.admin)
    made(cast, slapd)

    def count() -> int:
        # the session and its user, the directories with their organizations in one query
        # (select_related), and the messages' session reads: none per row
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"{BASE}directories/").status_code == 200
        return len(captured.captured_queries)

    one = count()
    made(cast, slapd, organization=cast.globex)
    assert count() == one
