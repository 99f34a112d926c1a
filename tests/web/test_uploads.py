"""Files sent through the pages' forms (the console's reply and note, the portal's new
ticket and reply) that are too large or of a type not accepted: refused with the message
beside the file field, everything typed kept, and nothing stored — no ticket, comment or
attachment row, and no file in the attachments directory."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import Cast, make_ticket
from tests.web.conftest import signed_in
from tierdesk.tickets.models import Attachment, Comment, Ticket
from tierdesk.tiers.queries import category_for_organization

pytestmark = pytest.mark.django_db

LIMIT = 1024 * 1024  # 1 MiB for these tests: the message names the limit in MiB


@pytest.fixture(autouse=True)
def _small_limit(settings: Any) -> None:
    settings.ATTACHMENT_MAX_BYTES = LIMIT


def too_large() -> SimpleUploadedFile:
    return SimpleUploadedFile("dump.log", b"x" * (LIMIT + 1), content_type="text/plain")


def forbidden() -> SimpleUploadedFile:
    return SimpleUploadedFile("setup.exe", b"MZ\x90\x00", content_type="application/octet-stream")


def fine() -> SimpleUploadedFile:
    return SimpleUploadedFile("notes.txt", b"fine", content_type="text/plain")


REFUSALS = [
    pytest.param(too_large, "dump.log: larger than the limit of 1 MiB.", id="over-the-limit"),
    pytest.param(forbidden, "setup.exe: files of type .exe are not accepted.", id="forbidden"),
]


def error_beside_files(page: str) -> str:
    """The message Django shows with the file field, which the field itself points at
    (aria-describedby), as text; fails when there is none."""
    found = re.search(r'<ul class="errorlist" id="id_attachments_error">(.*?)</ul>', page, re.S)
    assert found, "no error beside the file field"
    field = re.search(r'<input type="file" name="attachments"[^>]*>', page)
    assert field, "no file field"
    assert re.search(r'aria-describedby="[^"]*\bid_attachments_error\b', field[0]), field[0]
    assert 'aria-invalid="true"' in field[0], field[0]
    return unescape(re.sub(r"<[^>]+>", "", found[1])).strip()


def nothing_stored() -> None:
    assert not Attachment.objects.exists()
    stored = Path(settings.ATTACHMENTS_DIR)
    files = [p for p in stored.rglob("*") if p.is_file()] if stored.exists() else []
    assert files == [], files


# --- the portal ------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "message"), REFUSALS)
def test_a_new_portal_ticket_with_a_refused_file_is_not_opened(
    cast: Cast, make: Any, message: str
) -> None:
    category = category_for_organization(cast.acme, "hardware")
    assert category is not None
    hardware = category.pk
    r = signed_in(cast.alice).post(
        "/portal/new",
        {
            "category": hardware,
            "subject": "Printer jams",
            "description": "Every second page\nsince Monday",
            "urgency": "1",
            "attachments": [fine(), make()],  # one good file does not save the ticket
        },
    )
    page = r.content.decode()
    assert r.status_code == 422
    assert error_beside_files(page) == message
    assert 'value="Printer jams"' in page
    assert "Every second page\nsince Monday</textarea>" in page
    assert re.search(rf'<option value="{hardware}" selected>', page)
    assert re.search(r'<option value="1" selected>', page)
    assert not Ticket.objects.exists()
    nothing_stored()


@pytest.mark.parametrize(("make", "message"), REFUSALS)
def test_a_portal_reply_with_a_refused_file_is_not_sent(
    cast: Cast, make: Any, message: str
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    comments = Comment.objects.count()
    version = ticket.version
    r = signed_in(cast.alice).post(
        f"/portal/tickets/{ticket.key}/reply",
        {"version": version, "body": "Here is the log you asked for", "attachments": [make()]},
    )
    page = r.content.decode()
    assert r.status_code == 422
    assert error_beside_files(page) == message
    assert "Here is the log you asked for</textarea>" in page
    assert Comment.objects.count() == comments
    ticket.refresh_from_db()
    assert ticket.version == version
    nothing_stored()


# --- the console -----------------------------------------------------------------------------


@pytest.mark.parametrize("internal", [False, True], ids=["reply", "note"])
@pytest.mark.parametrize(("make", "message"), REFUSALS)
def test_a_console_reply_or_note_with_a_refused_file_is_not_added(
    cast: Cast, make: Any, message: str, internal: bool
) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    comments = Comment.objects.count()
    version = ticket.version
    data: dict[str, Any] = {
        "version": version,
        "body": "Attached the driver log",
        "attachments": [make(), fine()],
    }
    if internal:
        data["internal"] = "on"
    r = signed_in(cast.lena).post(f"/console/tickets/{ticket.key}/comment", data)
    page = r.content.decode()
    assert r.status_code == 422
    assert error_beside_files(page) == message
    assert "Attached the driver log</textarea>" in page
    checkbox = re.search(r'<input type="checkbox" name="internal"[^>]*>', page)
    assert checkbox
    assert ("checked" in checkbox[0]) is internal  # the choice of reply or note is kept too
    assert Comment.objects.count() == comments
    ticket.refresh_from_db()
    assert ticket.version == version
    nothing_stored()


def test_files_within_the_limit_are_stored(cast: Cast) -> None:
    """The other side of the tests above: a file of exactly the limit is accepted."""
    ticket = make_ticket(cast.alice, cast.acme)
    exact = SimpleUploadedFile("dump.log", b"x" * LIMIT, content_type="text/plain")
    r = signed_in(cast.lena).post(
        f"/console/tickets/{ticket.key}/comment",
        {"version": ticket.version, "body": "Log attached", "attachments": [exact]},
    )
    assert r.status_code == 302
    [stored] = Attachment.objects.filter(ticket=ticket)
    assert (stored.filename, stored.size) == ("dump.log", LIMIT)
    assert [p.stat().st_size for p in Path(settings.ATTACHMENTS_DIR).rglob("*") if p.is_file()] == [
        LIMIT
    ]
