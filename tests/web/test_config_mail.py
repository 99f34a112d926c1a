"""The mailbox and quarantine pages: admins add and change mailboxes (the password never
shown again), test the connection against a real IMAP server, and retry quarantined mail.
Managers, agents and requesters find no such pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.channels.mails import mail
from tests.conftest import Cast
from tests.imap import ImapServer, imap_server
from tests.web.conftest import signed_in
from tierdesk.channels import mailboxes
from tierdesk.channels.models import InboundMessage, InboundStatus, Mailbox
from tierdesk.core.models import AuditEntry

pytestmark = pytest.mark.django_db
PASSWORD = "s3cret-pw"
BASE = "/console/config/"


@pytest.fixture(scope="module")
def server() -> Iterator[ImapServer]:
    with imap_server(PASSWORD) as found:
        yield found


def form(server: ImapServer, user: str, **over: Any) -> dict[str, Any]:
    return {
        "organization": "ACME",
        "name": "ACME support",
        "address": f"{user}@acme.example",
        "host": "127.0.0.1",
        "port": str(server.imaps_port),
        "security": "tls",
        "username": user,
        "password": PASSWORD,
        "folder": "INBOX",
        "ca_certificate": server.ca_pem,
        "unknown_senders": "domains",
        "is_active": "on",
    } | over


def errors_beside(page: str) -> dict[str, str]:
    """Field id -> the error list Django renders with it."""
    return dict(re.findall(r'<ul class="errorlist" id="id_(\w+)_error">(.*?)</ul>', page, re.S))


def test_only_admins_see_the_pages_and_the_navigation(cast: Cast) -> None:
    box = mailboxes.mailbox_create(
        actor=None, organization=cast.acme, name="x", address="x@acme.example", host="h",
        port=993, security="tls", username="u", password="p",
    )  # fmt: skip
    urls = [
        f"{BASE}mailboxes/",
        f"{BASE}mailboxes/new/",
        f"{BASE}mailboxes/{box.pk}/",
        f"{BASE}quarantine/",
    ]
    for user in (cast.manager, cast.lena, cast.alice):
        client = signed_in(user)
        for url in urls:
            assert client.get(url).status_code == 404, (user.email, url)
        assert client.post(f"{BASE}mailboxes/{box.pk}/test/").status_code == 404
    manager_home = signed_in(cast.manager).get(BASE).content.decode()
    assert "Mailboxes" not in manager_home
    assert "quarantine" not in manager_home.lower()
    admin_home = signed_in(cast.admin).get(BASE).content.decode()
    assert f'href="{BASE}mailboxes/"' in admin_home
    assert f'href="{BASE}quarantine/"' in admin_home


def test_an_admin_adds_a_mailbox_and_tests_it(server: ImapServer, cast: Cast) -> None:
    client = signed_in(cast.admin)
    new = client.get(f"{BASE}mailboxes/new/")
    assert new.status_code == 200
    created = client.post(f"{BASE}mailboxes/new/", form(server, "web1"))
    box = Mailbox.objects.get()
    assert created.status_code == 302
    assert created["Location"] == f"{BASE}mailboxes/{box.pk}/"
    edit = client.get(created["Location"]).content.decode()
    assert PASSWORD not in edit
    assert "Leave empty to keep the stored password" in edit
    listed = client.get(f"{BASE}mailboxes/").content.decode()
    assert "web1@acme.example" in listed
    assert "never" in listed
    tested = client.post(f"{BASE}mailboxes/{box.pk}/test/").content.decode()
    assert "Connection works: connected; 0 message(s) waiting in INBOX." in tested
    # the form under the result still saves to the mailbox, not to the test
    assert f'action="{BASE}mailboxes/{box.pk}/"' in tested
    # a new password, saved without showing it; the old one kept when left empty
    sealed = box.password_sealed
    saved = client.post(f"{BASE}mailboxes/{box.pk}/", form(server, "web1", password=""))
    assert saved.status_code == 302
    assert Mailbox.objects.get().password_sealed == sealed
    client.post(f"{BASE}mailboxes/{box.pk}/", form(server, "web1", password="wrong-pw"))
    failed = client.post(f"{BASE}mailboxes/{box.pk}/test/").content.decode()
    assert "Connection failed: the server refused the user name or password" in failed
    assert "wrong-pw" not in failed
    audit = str(list(AuditEntry.objects.filter(target_type="mailbox").values()))
    assert PASSWORD not in audit
    assert "wrong-pw" not in audit


def test_form_errors_are_shown_beside_their_field_and_nothing_is_stored(
    server: ImapServer, cast: Cast
) -> None:
    client = signed_in(cast.admin)
    for change, field in [
        ({"address": "support+x@acme.example"}, "address"),
        ({"address": "nope"}, "address"),
        ({"host": "h" * 10_000}, "host"),
        ({"port": "99999"}, "port"),
        ({"security": "ssl"}, "security"),
        ({"ca_certificate": "not a certificate"}, "ca_certificate"),
        ({"password": ""}, "password"),
        ({"organization": "NOPE"}, "organization"),
    ]:
        response = client.post(f"{BASE}mailboxes/new/", form(server, "web2", **change))
        assert response.status_code in (400, 422), change
        page = response.content.decode()
        assert list(errors_beside(page)) == [field], (change, errors_beside(page))
        assert PASSWORD not in page
    assert not Mailbox.objects.exists()


def test_the_quarantine_shows_downloads_and_retries(server: ImapServer, cast: Cast) -> None:
    client = signed_in(cast.admin)
    client.post(f"{BASE}mailboxes/new/", form(server, "web3"))
    box = Mailbox.objects.get()
    server.deliver("web3", mail(sender="stranger@elsewhere.example", subject="Let me in"))
    mailboxes.poll_all()
    stuck = InboundMessage.objects.get()
    assert stuck.status == InboundStatus.QUARANTINED
    page = client.get(f"{BASE}quarantine/").content.decode()
    assert "stranger@elsewhere.example" in page
    assert "Let me in" in page
    assert "takes no new senders" in page
    raw = client.get(f"{BASE}quarantine/{stuck.pk}/raw/")
    assert raw["Content-Type"] == "message/rfc822"
    assert raw["Content-Disposition"].startswith("attachment;")
    assert raw.content == bytes(stuck.raw)
    # retried as it is: still quarantined, the reason shown
    again = client.post(f"{BASE}quarantine/{stuck.pk}/retry/", follow=True).content.decode()
    assert "still quarantined" in again
    # the mailbox takes anyone now: processed, with a link to the ticket
    client.post(f"{BASE}mailboxes/{box.pk}/", form(server, "web3", unknown_senders="anyone"))
    done = client.post(f"{BASE}quarantine/{stuck.pk}/retry/", follow=True).content.decode()
    key = InboundMessage.objects.get().ticket.key  # type: ignore[union-attr]
    assert f'href="/console/tickets/{key}">{key}</a>' in done
    assert "The quarantine is empty." in done
    assert client.get(f"{BASE}quarantine/?retried=abc").status_code == 200
    # retrying it again is no longer possible
    gone = client.post(f"{BASE}quarantine/{stuck.pk}/retry/", follow=True).content.decode()
    assert "no longer in the quarantine" in gone
