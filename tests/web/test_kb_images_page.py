"""Images in the console's article editor, through Django's test client: the Images section
lists the article's images (thumbnail, name, size, the Markdown to paste) and uploads and
removes them. With HTMX only the section comes back, so the text being typed in the editor
stays; without scripts the editor is loaded again. Refusals (wrong type, not the image its
name says, empty, too large, archived, not allowed) are shown beside the file field and
store nothing; another organization's article is "not found"; every post needs the CSRF
token. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import html
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests import images
from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.core.models import User
from tierdesk.kb import services
from tierdesk.kb.models import Article, ArticleAttachment, ArticleStatus
from tierdesk.web.views import kb as kb_views

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Target": "kb-images"}
GIF = images.GIF
CURRENT = -1  # upload/remove: send the article's version as it is now (the editor's)


def png(red: int = 0x2A) -> bytes:
    """A valid 1 by 1 RGB PNG (one pixel, its red value ``red``)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, 0x6F, 0xD8]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def write(actor: User, title: str, **kw: Any) -> Article:
    return services.article_create(actor=actor, title=title, body=kw.pop("body", "Text."), **kw)


def publish(cast: Cast, article: Article) -> Article:
    services.article_transition(actor=article.owner, article=article, to="in_review")
    return services.article_transition(actor=cast.admin, article=article, to="published")


def _version(article: Article, version: int | None) -> dict[str, str]:
    """The version field the editor's Images forms send (None: none at all)."""
    if version is None:
        return {}
    if version == CURRENT:
        version = Article.objects.values_list("version", flat=True).get(pk=article.pk)
    return {"version": str(version)}


def upload(
    client: Client,
    article: Article,
    name: str,
    content: bytes,
    htmx: bool = False,
    version: int | None = CURRENT,
) -> Any:
    return client.post(
        f"/console/kb/{article.slug}/images",
        {"file": SimpleUploadedFile(name, content), **_version(article, version)},
        headers=HTMX if htmx else {},
    )


def remove(
    client: Client, article: Article, name: str, htmx: bool = False, version: int | None = CURRENT
) -> Any:
    return client.post(
        f"/console/kb/{article.slug}/images/{name}/remove",
        _version(article, version),
        headers=HTMX if htmx else {},
    )


def stored_files() -> list[Path]:
    root = Path(settings.ATTACHMENTS_DIR)
    return [p for p in root.glob("*/*") if p.is_file()] if root.exists() else []


def names(article: Article) -> list[str]:
    return list(
        ArticleAttachment.objects.filter(article=article).values_list("filename", flat=True)
    )


def field_error(text: str) -> str:
    """The file field's group as the page shows it (its errors and the input)."""
    start = text.index('<div class="field invalid">')
    return text[start : text.index("Upload image</button>", start)]


def test_an_uploaded_image_is_listed_inserted_and_shown_in_the_preview(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    article = write(cast.lena, "Printer tray")
    client = signed_in(cast.lena)
    editor = client.get(f"/console/kb/{article.slug}/edit").content.decode()
    assert '<h2 id="kb-images-title">Images</h2>' in editor
    assert "No images yet." in editor
    # its own form after the editor's (forms do not nest), posting to the section's view
    assert editor.index("</form>") < editor.index('enctype="multipart/form-data"')
    assert f'hx-post="/console/kb/{article.slug}/images"' in editor
    assert 'hx-target="#kb-images" hx-swap="outerHTML"' in editor
    assert 'accept=".png,.jpg,.jpeg,.gif,.webp,' in editor

    # without scripts: a redirect back to the editor, which lists it
    r = upload(client, article, "C:\\shots\\tray.png", png())
    assert (r.status_code, r["Location"]) == (302, f"/console/kb/{article.slug}/edit#kb-images")
    shown = client.get(f"/console/kb/{article.slug}/edit").content.decode()
    assert "Added tray.png: insert it where the text should show it." in shown
    url = f"/api/v1/kb/articles/{article.slug}/files/tray.png"
    assert f'<img src="{url}" alt="" class="kb-thumb"' in shown
    assert f'<a href="{url}">tray.png</a>' in shown
    assert "<code>![tray.png](attachment:tray.png)</code>" in shown
    assert 'data-kb-insert-image="![tray.png](attachment:tray.png)"' in shown
    assert f"{len(png())}\xa0bytes" in shown
    assert names(article) == ["tray.png"]
    assert len(stored_files()) == 1
    # the thumbnail's address serves it to the writer's session
    read = client.get(url)
    assert (read.status_code, b"".join(read.streaming_content)) == (200, png())

    # with HTMX: only the section comes back (the editor and its typed text stay as they are)
    r = upload(client, article, "queue dialog.gif", GIF, htmx=True)
    assert r.status_code == 200
    section = r.content.decode()
    assert section.startswith('<section id="kb-images"')
    assert 'name="body"' not in section
    assert "<html" not in section
    assert "Added queue dialog.gif" in section
    assert "<code>![queue dialog.gif](attachment:queue%20dialog.gif)</code>" in section
    assert f'action="/console/kb/{article.slug}/images/queue%20dialog.gif/remove"' in section
    assert names(article) == ["queue dialog.gif", "tray.png"]

    # the same name again replaces it (the old bytes go once that has committed)
    with django_capture_on_commit_callbacks(execute=True):
        r = upload(client, article, "tray.png", png(0x99), htmx=True)
    assert "Replaced tray.png with the new file." in r.content.decode()
    assert names(article) == ["queue dialog.gif", "tray.png"]
    assert len(stored_files()) == 2
    assert b"".join(client.get(url).streaming_content) == png(0x99)

    # the preview of this article's text resolves them; the saved text too
    body = "![The tray](attachment:tray.png)\n\n![q](attachment:queue%20dialog.gif)"
    preview = client.post("/console/kb/preview", {"body": body, "article": article.slug})
    assert f'<img src="{url}" alt="The tray">' in preview.content.decode()
    assert "/files/queue%20dialog.gif" in preview.content.decode()
    services.article_update(actor=cast.lena, article=article, body=body)
    page = client.get(f"/console/kb/{article.slug}").content.decode()
    assert f'<img src="{url}" alt="The tray">' in page


def test_a_new_article_says_to_save_the_draft_first(cast: Cast) -> None:
    editor = signed_in(cast.lena).get("/console/kb/new").content.decode()
    assert "Save the draft first to add images" in editor
    assert 'enctype="multipart/form-data"' not in editor


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"hello", "Images are .png, .jpg, .gif or .webp, not .txt"),
        ("logo.svg", b"<svg onload=alert(1)/>", "Images are .png, .jpg, .gif or .webp, not .svg"),
        ("fake.png", GIF[:40], "The file is not a .png image"),
        ("empty.png", b"", "The submitted file is empty."),
        ("big.png", png() + b"\x00" * 200, "big.png: larger than the limit of 100\xa0bytes."),
        (None, b"", "Choose an image file to upload."),
    ],
)
def test_a_refused_file_is_named_beside_the_field_and_nothing_is_stored(
    cast: Cast, settings: Any, name: str | None, content: bytes, message: str
) -> None:
    settings.ATTACHMENT_MAX_BYTES = 100
    article = write(cast.lena, "Printer tray", body="Kept text")
    client = signed_in(cast.lena)
    for htmx in (True, False):
        if name is None:
            r = client.post(
                f"/console/kb/{article.slug}/images",
                {"version": str(article.version)},
                headers=HTMX if htmx else {},
            )
        else:
            r = upload(client, article, name, content, htmx=htmx)
        assert r.status_code == 400, (htmx, r.content[:300])
        text = r.content.decode()
        assert text.startswith('<section id="kb-images"') == htmx
        group = field_error(text)
        assert message in group, (htmx, group)
        assert 'aria-invalid="true"' in group
        if not htmx:  # the editor again, with the saved text
            assert "<h1>Edit article</h1>" in text
            assert "Kept text</textarea>" in text
    assert names(article) == []
    assert stored_files() == []


def test_the_service_checks_the_size_too(cast: Cast, settings: Any, monkeypatch: Any) -> None:
    """Past the form's check (an upload that does not say its size), the service refuses a
    file over the limit: 413, beside the field."""
    article = write(cast.lena, "Printer tray")
    settings.ATTACHMENT_MAX_BYTES = 100
    monkeypatch.setattr(kb_views.ImageForm, "clean_file", lambda form: form.cleaned_data["file"])
    r = upload(signed_in(cast.lena), article, "big.png", png() + b"\x00" * 200, htmx=True)
    assert r.status_code == 413
    assert "Larger than the limit of 100 bytes" in field_error(r.content.decode())
    assert names(article) == []
    assert stored_files() == []


def test_an_image_is_removed(cast: Cast, django_capture_on_commit_callbacks: Any) -> None:
    article = write(cast.lena, "Printer tray")
    for name in ("a.png", "b.png"):
        services.article_file_add(actor=cast.lena, article=article, filename=name, content=png())
    client = signed_in(cast.lena)
    with django_capture_on_commit_callbacks(execute=True):  # the bytes go after the commit
        r = remove(client, article, "a.png", htmx=True)
    assert r.status_code == 200
    section = r.content.decode()
    assert section.startswith('<section id="kb-images"')
    assert "Removed a.png. If the text still shows it, take it out of the text too." in section
    assert "a.png</a>" not in section
    assert "b.png</a>" in section
    assert names(article) == ["b.png"]
    assert len(stored_files()) == 1
    # without scripts: back to the editor
    with django_capture_on_commit_callbacks(execute=True):
        r = remove(client, article, "b.png")
    assert (r.status_code, r["Location"]) == (302, f"/console/kb/{article.slug}/edit#kb-images")
    assert "Removed b.png." in client.get(r["Location"]).content.decode()
    assert names(article) == []
    assert stored_files() == []
    # gone already: said, nothing else happens
    r = remove(client, article, "b.png", htmx=True)
    assert r.status_code == 404
    assert "No such file on this article." in r.content.decode()
    assert client.get(f"/console/kb/{article.slug}/images/a.png/remove").status_code == 405


def test_who_may_add_and_remove_images(cast: Cast) -> None:
    """As the editor: owners on their drafts, reviewers on any article not archived. A
    refusal is said beside the field (HTMX) or on the "you cannot edit" page (403, 409);
    an article the agent may not read is not found (404)."""
    published = publish(cast, write(cast.lena, "Printer tray"))
    services.article_file_add(
        actor=cast.manager, article=published, filename="a.png", content=png()
    )
    lena = signed_in(cast.lena)
    r = upload(lena, published, "b.png", png(), htmx=True)
    assert r.status_code == 403
    assert "You may not change this article." in field_error(r.content.decode())
    r = upload(lena, published, "b.png", png())
    assert r.status_code == 403
    assert "Only reviewers change a published article." in r.content.decode()
    r = remove(lena, published, "a.png", htmx=True)
    assert r.status_code == 403
    assert "You may not change this article." in r.content.decode()
    assert remove(lena, published, "a.png").status_code == 403
    # Omar's draft is his
    draft = write(cast.omar, "Omar's draft")
    assert upload(lena, draft, "b.png", png(), htmx=True).status_code == 403
    # a reviewer may; not on an archived article
    manager = signed_in(cast.manager)
    assert upload(manager, published, "b.png", png(), htmx=True).status_code == 200
    services.article_transition(actor=cast.manager, article=published, to="archived")
    r = upload(manager, published, "c.png", png(), htmx=True)
    assert r.status_code == 409
    assert "An archived article is not edited" in field_error(r.content.decode())
    r = upload(manager, published, "c.png", png())
    assert r.status_code == 409
    assert "restore it as a draft" in r.content.decode()
    assert remove(manager, published, "a.png", htmx=True).status_code == 409
    assert names(published) == ["a.png", "b.png"]
    assert names(draft) == []
    assert len(stored_files()) == 2


def test_another_organizations_article_is_not_found(cast: Cast) -> None:
    globex = write(cast.omar, "Globex Citrix", audience="organization", organization=cast.globex)
    services.article_file_add(actor=cast.omar, article=globex, filename="a.png", content=png())
    lena = signed_in(cast.lena)  # serves ACME only
    for htmx in (True, False):
        assert upload(lena, globex, "b.png", png(), htmx=htmx).status_code == 404
        assert remove(lena, globex, "a.png", htmx=htmx).status_code == 404
    assert lena.get(f"/api/v1/kb/articles/{globex.slug}/files/a.png").status_code == 404
    # requesters have no console, signed-out visitors sign in first
    alice = signed_in(cast.alice)
    assert upload(alice, globex, "b.png", png()).status_code == 404
    assert remove(alice, globex, "a.png").status_code == 404
    r = upload(Client(), globex, "b.png", png())
    assert (r.status_code, r["Location"].startswith("/login")) == (302, True)
    assert names(globex) == ["a.png"]
    assert len(stored_files()) == 1
    assert signed_in(cast.omar).get(f"/console/kb/{globex.slug}/edit").status_code == 200


def test_uploads_and_removals_need_the_csrf_token(cast: Cast) -> None:
    article = write(cast.lena, "Printer tray")
    services.article_file_add(actor=cast.lena, article=article, filename="a.png", content=png())
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.lena)
    assert upload(client, article, "b.png", png(), htmx=True).status_code == 403
    assert upload(client, article, "b.png", png()).status_code == 403
    assert remove(client, article, "a.png", htmx=True).status_code == 403
    assert names(article) == ["a.png"]
    assert len(stored_files()) == 1
    # with the page's token it goes through
    editor = client.get(f"/console/kb/{article.slug}/edit")
    token = editor.cookies["csrftoken"].value
    r = client.post(
        f"/console/kb/{article.slug}/images",
        {"file": SimpleUploadedFile("b.png", png()), **_version(article, CURRENT)},
        headers=HTMX | {"X-CSRFToken": token},
    )
    assert r.status_code == 200
    assert names(article) == ["a.png", "b.png"]


def test_the_editor_query_count_does_not_grow_with_the_images(cast: Cast) -> None:
    article = write(cast.lena, "Printer tray")
    client = signed_in(cast.lena)

    def count() -> int:
        client.get(f"/console/kb/{article.slug}/edit")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/console/kb/{article.slug}/edit").status_code == 200
        return len(ctx.captured_queries)

    services.article_file_add(actor=cast.lena, article=article, filename="0.png", content=png())
    before = count()
    for i in range(1, 6):
        services.article_file_add(
            actor=cast.lena, article=article, filename=f"{i}.png", content=png()
        )
    assert count() == before
    assert article.status == ArticleStatus.DRAFT


def _sent_versions(section: str) -> set[str]:
    """The versions the section's forms (upload, each removal) send back."""
    return set(re.findall(r'<input type="hidden" name="version" value="(\d+)">', section))


def test_the_images_forms_send_the_version_the_editor_showed_and_move_it_on(cast: Cast) -> None:
    """An upload or a removal is a change of the article like an edit: made at the version
    the editor was opened at, refused when someone else changed the article meanwhile, and
    the editor's own version follows the writer's change (or saving the text next would be
    refused as a conflict with themselves)."""
    article = write(cast.lena, "Printer tray", body="Kept text")
    client = signed_in(cast.lena)
    editor = client.get(f"/console/kb/{article.slug}/edit").content.decode()
    assert 'name="version" value="1" id="id_version"' in editor  # the text's form
    assert _sent_versions(editor) == {"1"}  # the Images section's

    r = upload(client, article, "tray.png", png(), htmx=True, version=1)
    assert r.status_code == 200
    section = r.content.decode()
    assert _sent_versions(section) == {"2"}
    # out of band, into the editor's form: its version moves on too
    assert (
        '<input type="hidden" name="version" value="2" id="id_version" hx-swap-oob="true">'
        in section
    )
    saved = client.post(
        f"/console/kb/{article.slug}/edit",
        {"title": "Printer tray", "body": "Kept text\n\n![t](attachment:tray.png)",
         "audience": "internal", "version": "2", "base": "1"},
    )  # fmt: skip
    assert saved.status_code == 302, saved.content[:400]

    # someone else changes the article: the editor's version (3 now) is stale
    services.article_update(actor=cast.manager, article=article, title="Printer trays")
    for r in (
        upload(client, article, "b.png", png(), htmx=True, version=3),
        remove(client, article, "tray.png", htmx=True, version=3),
    ):
        assert r.status_code == 409
        section = r.content.decode()
        assert "Someone else changed this article since you opened the editor" in section
        assert _sent_versions(section) == {"3"}  # still the editor's: refused again until saved
        assert "hx-swap-oob" not in section
    assert names(article) == ["tray.png"]
    assert len(stored_files()) == 1
    # without scripts: the editor again, from the saved article
    r = upload(client, article, "b.png", png(), version=3)
    assert r.status_code == 409
    assert "Someone else changed this article" in field_error(r.content.decode())
    # a form that sends no version is out of date
    r = upload(client, article, "b.png", png(), htmx=True, version=None)
    assert r.status_code == 400
    assert "This form is out of date: reload the page and try again." in field_error(
        r.content.decode()
    )
    r = remove(client, article, "tray.png", htmx=True, version=None)
    assert r.status_code == 400
    assert "This form is out of date" in r.content.decode()
    assert names(article) == ["tray.png"]
    article.refresh_from_db()
    assert article.version == 4


def test_a_decompression_bomb_is_refused_beside_the_field(cast: Cast) -> None:
    article = write(cast.lena, "Printer tray")
    r = upload(signed_in(cast.lena), article, "huge.png", images.png(9_000, 9_000), htmx=True)
    assert r.status_code == 400
    assert (
        "The image is 9,000 by 9,000 pixels, 81,000,000 in all; at most 40,000,000 pixels are "
        "taken: scale it down" in html.unescape(field_error(r.content.decode()))
    )
    assert names(article) == []
    assert stored_files() == []
