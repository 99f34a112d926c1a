"""Images in articles: uploaded through the API by whoever may edit the article, shown
where the text says ``![alt](attachment:NAME)``, read by whoever may read the article and
by nobody else, checked to be the image they claim to be, and never half-stored."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import Api, Cast, problem_fields
from tests.images import GIF, JPEG, PNG, WEBP, png
from tierdesk.core import files
from tierdesk.core.models import User
from tierdesk.kb import services
from tierdesk.kb.models import Article, ArticleAttachment, Audience

ApiAs = Callable[[User | None], Api]
pytestmark = pytest.mark.django_db


def _article(cast: Cast, slug: str, audience: str = Audience.PUBLIC, **kw: Any) -> Article:
    kw.setdefault("status", "published")
    return services.article_create(
        actor=None,
        owner=kw.pop("owner", cast.admin),
        title=f"Printer guide {slug}",
        slug=slug,
        body=kw.pop("body", "![The tray](attachment:tray.png)\n\nOpen the tray."),
        audience=audience,
        **kw,
    )


def upload(api: Api, slug: str, name: str, content: bytes, if_match: str | None = "*") -> Any:
    """POST an image; ``if_match`` None sends no If-Match ("*": whatever the version)."""
    headers = api.headers | ({"If-Match": if_match} if if_match is not None else {})
    return api.client.post(
        f"/api/v1/kb/articles/{slug}/files",
        data={"file": SimpleUploadedFile(name, content)},
        headers=headers,
    )


def remove(api: Api, slug: str, name: str, if_match: str | None = "*") -> Any:
    return api.delete(
        f"/kb/articles/{slug}/files/{name}",
        headers={"If-Match": if_match} if if_match is not None else {},
    )


def stored_files() -> list[Path]:
    root = Path(settings.ATTACHMENTS_DIR)
    return [p for p in root.glob("*/*") if p.is_file()] if root.exists() else []


def test_an_image_is_uploaded_shown_in_the_text_and_read_back(cast: Cast, api_as: ApiAs) -> None:
    article = _article(cast, "printers", status="draft", owner=cast.lena)
    assert 'src="/api/v1/kb/articles/printers/files/tray.png"' in article.body_html
    lena = api_as(cast.lena)

    created = upload(lena, "printers", "../../etc/tray.png", PNG)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["filename"] == "tray.png"  # no directories
    assert body["markdown"] == "![tray.png](attachment:tray.png)"
    assert body["url"] == created["Location"] == "/api/v1/kb/articles/printers/files/tray.png"
    assert (body["content_type"], body["size"]) == ("image/png", len(PNG))
    assert [f["filename"] for f in lena.get("/kb/articles/printers/files").json()] == ["tray.png"]

    read = lena.get("/kb/articles/printers/files/tray.png")
    assert read.status_code == 200
    assert b"".join(read.streaming_content) == PNG
    assert read["Content-Type"] == "image/png"
    assert read["X-Content-Type-Options"] == "nosniff"
    assert read["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert read["Content-Disposition"].startswith("inline")


@pytest.mark.parametrize(
    ("name", "content"), [("a.jpg", JPEG), ("a.jpeg", JPEG), ("a.gif", GIF), ("a.webp", WEBP)]
)
def test_jpeg_gif_and_webp_are_taken(cast: Cast, api_as: ApiAs, name: str, content: bytes) -> None:
    _article(cast, "printers")
    assert upload(api_as(cast.admin), "printers", name, content).status_code == 201


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("logo.svg", b"<svg onload='alert(1)'/>", "images are .png, .jpg, .gif or .webp"),
        ("page.html", b"<script>alert(1)</script>", "images are .png"),
        ("tray.png", JPEG, "not a .png image"),
        ("tray.png", b"<script>alert(1)</script>", "not a .png image"),
        ("tray.webp", b"RIFF\x00\x00\x00\x00AVI LIST", "not a .webp image"),
        ("tray.png", b"", "empty"),
        ("...", PNG, "needs a name"),
    ],
)
def test_what_is_not_an_image_is_refused_and_nothing_is_stored(
    cast: Cast, api_as: ApiAs, name: str, content: bytes, message: str
) -> None:
    _article(cast, "printers")
    refused = upload(api_as(cast.admin), "printers", name, content)
    assert refused.status_code == 422, refused.content
    assert message in refused.json()["errors"][0]["message"]
    assert not ArticleAttachment.objects.exists()
    assert stored_files() == []


def test_a_file_over_the_limit_is_refused_with_413(
    cast: Cast, api_as: ApiAs, settings: Any
) -> None:
    settings.ATTACHMENT_MAX_BYTES = 100
    _article(cast, "printers")
    refused = upload(api_as(cast.admin), "printers", "big.png", PNG + b"\x00" * 100)
    assert refused.status_code == 413
    assert stored_files() == []


def test_only_who_may_edit_the_article_adds_or_removes_images(cast: Cast, api_as: ApiAs) -> None:
    _article(cast, "printers")  # published, owned by the admin
    _article(cast, "lenas", status="draft", owner=cast.lena)
    assert upload(api_as(cast.lena), "printers", "a.png", PNG).status_code == 403
    assert upload(api_as(cast.omar), "lenas", "a.png", PNG).status_code == 403
    assert upload(api_as(cast.alice), "printers", "a.png", PNG).status_code == 403
    assert upload(api_as(cast.manager), "printers", "a.png", PNG).status_code == 201
    assert remove(api_as(cast.lena), "printers", "a.png").status_code == 403
    assert remove(api_as(cast.alice), "printers", "a.png").status_code == 403
    assert ArticleAttachment.objects.count() == 1


def test_readers_of_the_article_read_its_images_and_nobody_else(cast: Cast, api_as: ApiAs) -> None:
    admin = api_as(cast.admin)
    _article(cast, "public")
    _article(cast, "internal", Audience.INTERNAL)
    _article(cast, "for-globex", Audience.ORGANIZATION, organization=cast.globex)
    _article(cast, "draft", status="draft")
    for slug in ("public", "internal", "for-globex", "draft"):
        assert upload(admin, slug, "tray.png", PNG).status_code == 201

    def status(user: User | None, slug: str, *, session: bool = False) -> int:
        path = f"/api/v1/kb/articles/{slug}/files/tray.png"
        if session and user is not None:
            client = Client()
            client.force_login(user)
            return int(client.get(path).status_code)
        api = api_as(user)
        return int(api.client.get(path, headers=api.headers).status_code)

    # A requester, with a token or signed in to the portal: public and published only.
    for session in (False, True):
        assert status(cast.alice, "public", session=session) == 200
        assert status(cast.alice, "internal", session=session) == 404
        assert status(cast.alice, "for-globex", session=session) == 404
        assert status(cast.alice, "draft", session=session) == 404
    assert status(cast.gerd, "for-globex") == 200
    # Staff: within the organizations they serve.
    assert status(cast.lena, "internal") == 200
    assert status(cast.lena, "for-globex") == 404
    assert status(cast.omar, "for-globex") == 200
    # Nobody signed in: the same answer as for a missing file.
    assert status(None, "public") == 404
    missing = api_as(cast.alice).get("/kb/articles/public/files/other.png")
    assert missing.status_code == 404


def test_an_image_of_the_same_name_replaces_the_old_one_and_its_bytes(
    cast: Cast, api_as: ApiAs, django_capture_on_commit_callbacks: Any
) -> None:
    _article(cast, "printers")
    admin = api_as(cast.admin)
    assert upload(admin, "printers", "tray.png", PNG).status_code == 201
    first = ArticleAttachment.objects.get().storage_key
    with django_capture_on_commit_callbacks(execute=False) as pending:
        assert upload(admin, "printers", "tray.png", PNG + b"new").status_code == 201
    assert files.path(first).exists()  # until the change has committed
    for callback in pending:
        callback()
    again = ArticleAttachment.objects.get()
    assert again.storage_key != first
    assert again.size == len(PNG) + 3
    assert not files.path(first).exists()
    assert [p.name for p in stored_files()] == [again.storage_key]


def test_removing_an_image_removes_its_bytes(
    cast: Cast, api_as: ApiAs, django_capture_on_commit_callbacks: Any
) -> None:
    _article(cast, "printers")
    admin = api_as(cast.admin)
    assert upload(admin, "printers", "tray.png", PNG).status_code == 201
    key = ArticleAttachment.objects.get().storage_key
    with django_capture_on_commit_callbacks(execute=True):
        assert remove(admin, "printers", "tray.png").status_code == 204
    assert not ArticleAttachment.objects.exists()
    assert not files.path(key).exists()
    assert remove(admin, "printers", "tray.png").status_code == 404


def test_the_orphan_sweep_keeps_article_images_and_removes_files_nobody_names(
    cast: Cast, api_as: ApiAs
) -> None:
    _article(cast, "printers")
    assert upload(api_as(cast.admin), "printers", "tray.png", PNG).status_code == 201
    kept = ArticleAttachment.objects.get().storage_key
    orphan = files.store(b"left behind by a rolled-back upload")
    for path in stored_files():
        os.utime(path, (0, 0))  # old enough to be swept
    assert files.sweep_orphans(older_than_seconds=60) == 1
    assert files.path(kept).exists()
    assert not files.path(orphan.storage_key).exists()


def test_an_article_has_at_most_fifty_images(cast: Cast) -> None:
    article = _article(cast, "printers")
    for i in range(services.MAX_FILES):
        services.article_file_add(
            actor=cast.admin, article=article, filename=f"{i}.png", content=PNG
        )
    with pytest.raises(services.ValidationFailed):
        services.article_file_add(actor=cast.admin, article=article, filename="x.png", content=PNG)
    assert ArticleAttachment.objects.count() == services.MAX_FILES
    assert len(stored_files()) == services.MAX_FILES


def test_an_archived_article_takes_no_images_until_it_is_a_draft_again(
    cast: Cast, api_as: ApiAs
) -> None:
    _article(cast, "old-printers", status="archived")
    refused = upload(api_as(cast.admin), "old-printers", "tray.png", PNG)
    assert refused.status_code == 409, refused.content
    assert "back to draft" in refused.json()["detail"]
    assert not ArticleAttachment.objects.exists()
    assert stored_files() == []


def test_adding_or_removing_an_image_follows_the_articles_if_match(
    cast: Cast, api_as: ApiAs
) -> None:
    """Images are part of the article: the same concurrency rule as an edit (PATCH), and
    each change gives the article a new ETag."""
    _article(cast, "printers")
    admin = api_as(cast.admin)
    etag = admin.get("/kb/articles/printers")["ETag"]
    # no If-Match: 428, as PATCH; a stale one: 412; nothing stored either way
    missing = upload(admin, "printers", "tray.png", PNG, if_match=None)
    assert missing.status_code == 428, missing.content
    assert missing.json()["status"] == 428
    assert admin.patch("/kb/articles/printers", {"title": "x"}).status_code == 428
    assert upload(admin, "printers", "tray.png", PNG, if_match='"v99"').status_code == 412
    assert not ArticleAttachment.objects.exists()
    assert stored_files() == []

    added = upload(admin, "printers", "tray.png", PNG, if_match=etag)
    assert added.status_code == 201, added.content
    after_add = added["ETag"]
    assert after_add != etag
    assert admin.get("/kb/articles/printers")["ETag"] == after_add
    # the ETag read before the upload is stale now, for an edit as for another image
    stale_edit = admin.patch(
        "/kb/articles/printers", {"title": "Trays"}, headers={"If-Match": etag}
    )
    assert stale_edit.status_code == 412
    assert upload(admin, "printers", "other.png", PNG, if_match=etag).status_code == 412
    assert [a.filename for a in ArticleAttachment.objects.all()] == ["tray.png"]

    assert remove(admin, "printers", "tray.png", if_match=None).status_code == 428
    assert remove(admin, "printers", "tray.png", if_match=etag).status_code == 412
    assert ArticleAttachment.objects.count() == 1
    removed = remove(admin, "printers", "tray.png", if_match=after_add)
    assert removed.status_code == 204
    assert removed["ETag"] not in (etag, after_add)
    assert admin.get("/kb/articles/printers")["ETag"] == removed["ETag"]
    assert not ArticleAttachment.objects.exists()
    # the text is unchanged: no new text version
    assert [v["number"] for v in admin.get("/kb/articles/printers/versions").json()] == [1]
    # a hidden article answers 404 before any precondition
    _article(cast, "for-globex", Audience.ORGANIZATION, organization=cast.globex)
    hidden = upload(api_as(cast.lena), "for-globex", "tray.png", PNG, if_match=None)
    assert hidden.status_code == 404


def test_an_image_over_the_pixel_limit_is_refused_as_a_decompression_bomb(
    cast: Cast, api_as: ApiAs, settings: Any
) -> None:
    _article(cast, "printers")
    bomb = png(10_000, 10_000)  # 100 megapixels, some 100 kB
    refused = upload(api_as(cast.admin), "printers", "bomb.png", bomb)
    assert refused.status_code == 422, refused.content
    assert problem_fields(refused) == ["file"]
    assert refused.json()["errors"][0]["message"] == (
        "the image is 10,000 by 10,000 pixels, 100,000,000 in all; at most 40,000,000 pixels "
        "are taken: scale it down"
    )
    assert not ArticleAttachment.objects.exists()
    assert stored_files() == []
    settings.IMAGE_MAX_PIXELS = 100_000_000
    assert upload(api_as(cast.admin), "printers", "bomb.png", bomb).status_code == 201
