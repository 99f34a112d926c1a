"""/api/v1/mailboxes and /api/v1/inbound-messages: admins configure mailboxes (the password
write-only), test them against a real IMAP server, and work the quarantine."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.channels.mails import mail
from tests.conftest import Api, Cast, problem_fields
from tests.imap import ImapServer, imap_server
from tierdesk.channels import inbound, mailboxes
from tierdesk.channels.models import InboundMessage, InboundStatus, Mailbox
from tierdesk.core.models import AuditEntry, User

ApiAs = Callable[[User | None], Api]
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[ImapServer]:
    with imap_server(PASSWORD) as found:
        yield found


def body(**over: Any) -> dict[str, Any]:
    return {
        "organization": "ACME",
        "name": "ACME support",
        "address": "support@acme.example",
        "host": "imap.acme.example",
        "port": 993,
        "security": "tls",
        "username": "support",
        "password": "hunter2-pw",
    } | over


def written() -> tuple[int, int]:
    return Mailbox.objects.count(), AuditEntry.objects.filter(target_type="mailbox").count()


def test_an_admin_creates_reads_lists_and_changes_a_mailbox(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    created = api.post("/mailboxes", body(address="Support@ACME.example"))
    assert created.status_code == 201, created.content
    out = created.json()
    assert out["address"] == "support@acme.example"
    assert (out["organization"], out["port"], out["security"], out["folder"]) == (
        "ACME",
        993,
        "tls",
        "INBOX",
    )
    assert out["unknown_senders"] == "domains"
    assert out["is_active"] is True
    assert "password" not in out
    assert "password_sealed" not in out
    box_id = out["id"]
    for response in (
        created,
        api.get(f"/mailboxes/{box_id}"),
        api.get("/mailboxes"),
    ):
        assert response.status_code == 200 or response.status_code == 201
        assert "hunter2" not in response.content.decode()
        assert "password" not in response.content.decode()
    assert [b["id"] for b in api.get("/mailboxes").json()] == [box_id]
    sealed = Mailbox.objects.get().password_sealed
    # a PATCH without a password keeps it
    changed = api.patch(f"/mailboxes/{box_id}", {"host": "mail.acme.example", "port": 143})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["host"], changed.json()["port"]) == ("mail.acme.example", 143)
    assert Mailbox.objects.get().password_sealed == sealed
    # with one, it changes (and is not shown)
    changed = api.patch(f"/mailboxes/{box_id}", {"password": "new-secret-99"})
    assert changed.status_code == 200
    assert "new-secret" not in changed.content.decode()
    assert Mailbox.objects.get().password_sealed != sealed
    # deactivated, not deleted
    off = api.patch(f"/mailboxes/{box_id}", {"is_active": False})
    assert off.json()["is_active"] is False
    assert api.delete(f"/mailboxes/{box_id}").status_code == 405
    audit = json.dumps(list(AuditEntry.objects.filter(target_type="mailbox").values()), default=str)
    assert "hunter2" not in audit
    assert "new-secret" not in audit
    assert AuditEntry.objects.filter(target_type="mailbox").count() == 4
    # the same values again: nothing written, nothing audited
    same = api.patch(f"/mailboxes/{box_id}", {"host": "mail.acme.example", "is_active": False})
    assert same.status_code == 200
    assert AuditEntry.objects.filter(target_type="mailbox").count() == 4
    last = AuditEntry.objects.filter(target_type="mailbox").order_by("pk").last()
    assert last is not None
    assert last.changes == {"is_active": {"old": True, "new": False}}


def test_mailboxes_are_for_admins_only(cast: Cast, api_as: ApiAs) -> None:
    box = mailboxes.mailbox_create(
        actor=None,
        organization=cast.acme,
        **{k: v for k, v in body().items() if k != "organization"},
    )
    for user in (cast.manager, cast.lena, cast.alice):
        api = api_as(user)
        for response in (
            api.get("/mailboxes"),
            api.get(f"/mailboxes/{box.pk}"),
            api.post("/mailboxes", body(address="other@acme.example")),
            api.patch(f"/mailboxes/{box.pk}", {"name": "mine now"}),
            api.post(f"/mailboxes/{box.pk}/test"),
            api.get("/inbound-messages"),
        ):
            assert response.status_code == 403, (user.email, response.content)
    assert api_as(None).get("/mailboxes").status_code == 401
    assert Mailbox.objects.get().name == "ACME support"
    assert Mailbox.objects.count() == 1
    assert api_as(cast.admin).get("/mailboxes/99999").status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"port": "993x"}, "port"),
        ({"port": True}, "port"),
        ({"port": "993"}, "port"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"security": "none"}, "security"),
        ({"unknown_senders": "everyone"}, "unknown_senders"),
        ({"address": "not an address"}, "address"),
        ({"address": "support+x@acme.example"}, "address"),
        ({"host": "h" * 10_000}, "host"),
        ({"host": "bad\nhost"}, "host"),
        ({"host": ""}, "host"),
        ({"ca_certificate": "not pem at all"}, "ca_certificate"),
        (
            {"ca_certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
            "ca_certificate",
        ),
        ({"password": ""}, "password"),
        ({"name": 12}, "name"),
        ({"is_active": "maybe"}, "is_active"),
        ({"organization": "NOPE"}, "organization"),
        ({"organization": "GLOBEXXXXXXXXX"}, "organization"),
        ({"colour": "red"}, "colour"),
        ({"password_sealed": "x"}, "password_sealed"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    cast: Cast, api_as: ApiAs, change: dict[str, Any], field: str
) -> None:
    before = written()
    response = api_as(cast.admin).post("/mailboxes", body(**change))
    assert response.status_code == 422, response.content
    assert problem_fields(response) == [field]
    assert written() == before
    assert "hunter2" not in response.content.decode()


def test_a_missing_password_and_a_taken_address_are_refused(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    without = {k: v for k, v in body().items() if k != "password"}
    assert problem_fields(api.post("/mailboxes", without)) == ["password"]
    assert api.post("/mailboxes", body()).status_code == 201
    again = api.post("/mailboxes", body(name="again", address="SUPPORT@acme.example"))
    assert problem_fields(again) == ["address"]
    assert Mailbox.objects.count() == 1


def test_a_bad_patch_changes_nothing(cast: Cast, api_as: ApiAs) -> None:
    api = api_as(cast.admin)
    box_id = api.post("/mailboxes", body()).json()["id"]
    before = Mailbox.objects.get().__dict__.copy()
    for patch, field in [
        ({"host": "h" * 10_000}, "host"),
        ({"port": None}, "port"),
        ({"password": None}, "password"),
        ({"ca_certificate": "-----BEGIN PRIVATE KEY-----"}, "ca_certificate"),
        ({"address": "a+b@acme.example"}, "address"),
        ({"name": "ok", "security": "ssl"}, "security"),
    ]:
        response = api.patch(f"/mailboxes/{box_id}", patch)
        assert response.status_code == 422, (patch, response.content)
        assert problem_fields(response) == [field]
    after = Mailbox.objects.get().__dict__
    assert {k: v for k, v in after.items() if k != "_state"} == {
        k: v for k, v in before.items() if k != "_state"
    }


def _dovecot_box(server: ImapServer, cast: Cast, user: str, **over: Any) -> Mailbox:
    return mailboxes.mailbox_create(
        actor=None,
        organization=cast.acme,
        name="ACME support",
        address=f"{user}@acme.example",
        host="127.0.0.1",
        port=server.imaps_port,
        security="tls",
        username=user,
        password=PASSWORD,
        ca_certificate=server.ca_pem,
        **over,
    )


def test_the_connection_test_says_what_it_found_or_why_it_failed(
    server: ImapServer, cast: Cast, api_as: ApiAs
) -> None:
    api = api_as(cast.admin)
    box = _dovecot_box(server, cast, "apitest1")
    server.deliver("apitest1", mail(subject="waiting"))
    found = api.post(f"/mailboxes/{box.pk}/test")
    assert found.status_code == 200, found.content
    assert found.json() == {"ok": True, "detail": "connected; 1 message(s) waiting in INBOX"}
    api.patch(f"/mailboxes/{box.pk}", {"password": "wrong-one"})
    failed = api.post(f"/mailboxes/{box.pk}/test")
    assert failed.status_code == 502
    assert failed["Content-Type"] == "application/problem+json"
    assert failed.json()["type"].endswith("/mail-server-failed")
    assert "refused the user name or password" in failed.json()["detail"]
    assert "wrong-one" not in failed.content.decode()
    # a private key pasted with the CA is refused: the field is shown again
    key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
    with_key = api.patch(f"/mailboxes/{box.pk}", {"ca_certificate": server.ca_pem + key})
    assert problem_fields(with_key) == ["ca_certificate"]
    assert "private key" in with_key.json()["detail"]
    assert "PRIVATE KEY" not in str(Mailbox.objects.values_list("ca_certificate", flat=True))


def _quarantined(server: ImapServer, cast: Cast, user: str) -> tuple[Mailbox, InboundMessage]:
    box = _dovecot_box(server, cast, user)
    server.deliver(user, mail(sender="stranger@elsewhere.example", subject="Let me in"))
    server.deliver(user, mail(subject="A normal one"))
    mailboxes.poll_all()
    return box, InboundMessage.objects.get(mailbox=box, subject="Let me in")


def test_the_quarantine_is_listed_downloaded_and_retried(
    server: ImapServer, cast: Cast, api_as: ApiAs
) -> None:
    api = api_as(cast.admin)
    box, stuck = _quarantined(server, cast, "apitest2")
    assert stuck.status == InboundStatus.QUARANTINED
    listed = api.get("/inbound-messages", params={"status": "quarantined"})
    assert listed.status_code == 200, listed.content
    (item,) = listed.json()["items"]
    assert item["id"] == stuck.pk
    assert (item["sender"], item["subject"], item["status"], item["ticket"]) == (
        "stranger@elsewhere.example",
        "Let me in",
        "quarantined",
        None,
    )
    assert "takes no new senders" in item["reason"]
    assert item["mailbox"] == box.pk
    assert item["organization"] == "ACME"
    everything = api.get("/inbound-messages", params={"mailbox": box.pk}).json()["items"]
    assert [m["subject"] for m in everything] == ["A normal one", "Let me in"]
    assert everything[0]["ticket"].startswith("ACME-")
    # the raw message: a download, never inline
    raw = api.get(f"/inbound-messages/{stuck.pk}/raw")
    assert raw.status_code == 200
    assert raw["Content-Type"] == "message/rfc822"
    assert raw["Content-Disposition"] == f'attachment; filename="message-{stuck.pk}.eml"'
    assert raw["X-Content-Type-Options"] == "nosniff"
    assert raw.content == bytes(stuck.raw)
    # retried as it is: still quarantined, with the reason
    again = api.post(f"/inbound-messages/{stuck.pk}/retry")
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "quarantined"
    assert "takes no new senders" in again.json()["reason"]
    # after the rule changed: a ticket
    api.patch(f"/mailboxes/{box.pk}", {"unknown_senders": "anyone"})
    done = api.post(f"/inbound-messages/{stuck.pk}/retry")
    assert done.json()["status"] == "processed"
    assert done.json()["ticket"].startswith("ACME-")
    # only a quarantined message is retried
    twice = api.post(f"/inbound-messages/{stuck.pk}/retry")
    assert twice.status_code == 409
    assert problem_fields(twice) == ["status"]
    assert api.get("/inbound-messages", params={"status": "quarantined"}).json()["items"] == []


def test_the_inbound_list_pages_and_refuses_bad_queries(cast: Cast, api_as: ApiAs) -> None:
    box = mailboxes.mailbox_create(
        actor=None,
        organization=cast.acme,
        **{k: v for k, v in body().items() if k != "organization"},
    )
    stored = [inbound.store(box, mail(subject=f"m{i}"))[0].pk for i in range(5)]
    api = api_as(cast.admin)
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        page = api.get("/inbound-messages", params=params).json()
        seen += [m["id"] for m in page["items"]]
        pages += 1
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == stored[::-1]
    assert pages == 3
    for bad, field in [
        ({"status": "lost"}, "status"),
        ({"cursor": "abc"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"mailbox": "one"}, "mailbox"),
        ({"mailbox__organization": "1"}, "mailbox__organization"),
    ]:
        response = api.get("/inbound-messages", params=bad)
        assert response.status_code == 422, (bad, response.content)
        assert problem_fields(response) == [field]
    assert api.get("/inbound-messages/99999/raw").status_code == 404
    assert api.post("/inbound-messages/99999/retry").status_code == 404


def test_the_inbound_list_costs_the_same_for_a_few_messages_or_many(
    cast: Cast, api_as: ApiAs
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    box = mailboxes.mailbox_create(
        actor=None,
        organization=cast.acme,
        **{k: v for k, v in body().items() if k != "organization"},
    )
    api = api_as(cast.admin)

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/inbound-messages").status_code == 200
        return len(queries)

    inbound.store(box, mail(subject="first"))
    cost()  # the token's first use is noted once
    few = cost()
    for i in range(10):
        inbound.store(box, mail(subject=f"more {i}"))
    # the token with its user, then one query for the page (mailbox, organization and
    # ticket joined; the raw bytes deferred)
    assert cost() == few
    assert few == 2
