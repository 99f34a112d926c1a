"""Attachments: limits, storage outside any web root, and who may download them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.core.models import User
from tierdesk.tickets.models import Attachment
from tierdesk.tickets.services import attachment_path

ApiAs = Callable[[User | None], Api]


def upload(api: Api, name: str, content: bytes, ref: str = "ACME-1", internal: bool = False):  # type: ignore[no-untyped-def]
    return api.client.post(
        f"/api/v1/tickets/{ref}/attachments",
        data={
            "file": SimpleUploadedFile(name, content),
            "internal": "true" if internal else "false",
        },
        headers=api.headers,
    )


def test_upload_and_download(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.alice, cast.acme)
    alice = api_as(cast.alice)
    r = upload(alice, "../../etc/screen shot.png", b"\x89PNG\r\n\x1a\nfake")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["filename"] == "screen shot.png"
    stored = Attachment.objects.get()
    path = attachment_path(stored)
    assert path.read_bytes() == b"\x89PNG\r\n\x1a\nfake"
    assert Path(settings.ATTACHMENTS_DIR) in path.parents
    assert stored.storage_key not in stored.filename
    download = alice.client.get(body["download_url"], headers=alice.headers)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"\x89PNG\r\n\x1a\nfake"  # type: ignore[attr-defined]
    assert download["Content-Type"] == "application/octet-stream"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Content-Disposition"].startswith("attachment;")
    assert [a["filename"] for a in alice.get("/tickets/ACME-1/attachments").json()] == [
        "screen shot.png"
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evil.exe", b"MZ....", "not accepted"),
        ("page.html", b"<script>alert(1)</script>", "not accepted"),
        ("noext", b"data", "not accepted"),
        ("empty.txt", b"", "empty"),
    ],
)
def test_forbidden_files_are_refused_and_nothing_is_stored(
    cast: Cast, api_as: ApiAs, name: str, content: bytes, message: str
) -> None:
    make_ticket(cast.alice, cast.acme)
    r = upload(api_as(cast.alice), name, content)
    assert r.status_code == 422
    assert problem_fields(r) == ["file"]
    assert message in r.json()["detail"]
    assert not Attachment.objects.exists()
    assert not any(p.is_file() for p in Path(settings.ATTACHMENTS_DIR).rglob("*"))


@override_settings(ATTACHMENT_MAX_BYTES=1024)
def test_oversized_files_are_refused(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.alice, cast.acme)
    r = upload(api_as(cast.alice), "big.log", b"x" * 1025)
    assert r.status_code == 413
    assert problem_fields(r) == ["file"]
    assert "limit" in r.json()["detail"]
    assert not Attachment.objects.exists()


def test_download_is_404_for_anyone_who_may_not_see_it(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.alice, cast.acme)
    public = upload(api_as(cast.alice), "log.txt", b"public").json()["download_url"]
    internal = upload(api_as(cast.lena), "notes.txt", b"internal", internal=True).json()[
        "download_url"
    ]
    anonymous = Client()
    assert anonymous.get(public).status_code == 404  # logged out
    bad_token = anonymous.get(public, headers={"Authorization": "Bearer td_wrong"})
    assert bad_token.status_code == 404
    for outsider in (cast.gerd, cast.gus, cast.outsider, cast.bob):  # other tenant / not theirs
        api = api_as(outsider)
        assert api.client.get(public, headers=api.headers).status_code == 404
    alice = api_as(cast.alice)  # lower role: requesters never get internal files
    assert alice.client.get(internal, headers=alice.headers).status_code == 404
    assert alice.client.get(public, headers=alice.headers).status_code == 200
    carol = api_as(cast.carol)  # sees her organization's tickets
    assert carol.client.get(public, headers=carol.headers).status_code == 200
    lena = api_as(cast.lena)
    assert lena.client.get(internal, headers=lena.headers).status_code == 200
    assert [a["filename"] for a in alice.get("/tickets/ACME-1/attachments").json()] == ["log.txt"]
