"""Articles as Markdown files with front matter: `tierdesk kb import` / `export`, all or
nothing, idempotent, and strict about what a file may say."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from django.conf import settings

from tests.conftest import Cast
from tests.images import JPEG, png
from tierdesk.cli import main
from tierdesk.core import files
from tierdesk.core.audit import AuditAction
from tierdesk.core.errors import ValidationFailed
from tierdesk.core.models import AuditEntry
from tierdesk.kb import portable, services
from tierdesk.kb.models import Article, ArticleAttachment, ArticleVersion

pytestmark = pytest.mark.django_db

VPN = """---
title: "VPN: connects but nothing loads"
slug: vpn-connects-nothing-loads
category: network
tags: [vpn, dns]
audience: public
status: published
related: [vpn-internal-runbook]
---
## Steps

1. Disconnect and connect again.
"""
RUNBOOK = """---
title: VPN runbook
slug: vpn-internal-runbook
category: network
tags: [vpn]
audience: tier:L2
status: published
---
Check the tunnel on the firewall.
"""
ACME_ONLY = """---
title: ACME label printers
slug: acme-label-printers
category: hardware
tags: [zebra]
audience: ACME
status: draft
review_by: 2027-06-30
---
Restart the Zebra.
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def kb(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["kb", *args])
    return result.exit_code, result.output


def test_import_export_round_trip_changes_nothing(cast: Cast, tmp_path: Path) -> None:
    source = write(
        tmp_path / "in",
        {"vpn.md": VPN, "runbook.md": RUNBOOK, "sub/acme.md": ACME_ONLY},
    )
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 0, out
    assert "3 created, 0 updated, 0 unchanged" in out
    vpn = Article.objects.get(slug="vpn-connects-nothing-loads")
    assert (vpn.title, vpn.audience, vpn.category.slug) == (  # type: ignore[union-attr]
        "VPN: connects but nothing loads",
        "public",
        "network",
    )
    assert [r.slug for r in vpn.related.all()] == ["vpn-internal-runbook"]
    acme = Article.objects.get(slug="acme-label-printers")
    assert (acme.organization, acme.status, str(acme.review_by)) == (
        cast.acme,
        "draft",
        "2027-06-30",
    )
    assert Article.objects.get(slug="vpn-internal-runbook").min_tier.code == "L2"  # type: ignore[union-attr]

    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert "0 created, 0 updated, 3 unchanged" in out
    exported = tmp_path / "out"
    code, out = kb("export", str(exported), "--as", cast.admin.email)
    assert code == 0, out
    assert sorted(p.name for p in exported.iterdir()) == [
        "acme-label-printers.md",
        "vpn-connects-nothing-loads.md",
        "vpn-internal-runbook.md",
    ]
    versions = ArticleVersion.objects.count()
    code, out = kb("import", str(exported), "--as", cast.admin.email)
    assert "0 created, 0 updated, 3 unchanged" in out, out
    assert ArticleVersion.objects.count() == versions
    # what an agent exports is what they may read: no L2 runbook for an L1 agent
    code, out = kb("export", str(tmp_path / "lena"), "--as", cast.lena.email)
    names = sorted(p.name for p in (tmp_path / "lena").iterdir())
    assert names == ["acme-label-printers.md", "vpn-connects-nothing-loads.md"]
    assert "vpn-internal-runbook" not in (tmp_path / "lena" / names[1]).read_text()


def test_a_changed_file_makes_a_new_version(cast: Cast, tmp_path: Path) -> None:
    source = write(tmp_path, {"vpn.md": VPN, "runbook.md": RUNBOOK})
    kb("import", str(source), "--as", cast.admin.email)
    (source / "vpn.md").write_text(VPN.replace("again.", "again, then restart."))
    _code, out = kb("import", str(source), "--as", cast.admin.email)
    assert "0 created, 1 updated, 1 unchanged" in out, out
    vpn = Article.objects.get(slug="vpn-connects-nothing-loads")
    assert [v.number for v in vpn.versions.all()] == [2, 1]
    assert "restart" in vpn.body


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter", "must start with a '---' line"),
        ("---\ntitle: x\nslug: x\n", "not closed"),
        ("---\ntitle: [unclosed\nslug: x\n---\n", "not valid YAML"),
        ("---\n- a list\n---\n", "must be a mapping"),
        ("---\ntitle: x\nslug: x\ncolour: red\n---\n", "unknown front matter keys: colour"),
        ("---\nslug: x\n---\n", "'title' is required"),
        ("---\ntitle: x\nslug: Not A Slug\n---\n", "'slug' must be"),
        ("---\ntitle: x\nslug: x\ntags: vpn\n---\n", "'tags' must be a list"),
        ("---\ntitle: x\nslug: x\nreview_by: soon\n---\n", "'review_by' must be a date"),
    ],
)
def test_malformed_files_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(portable.FileError, match=message):
        portable.parse(text, "bad.md")


def test_one_bad_file_imports_nothing(cast: Cast, tmp_path: Path) -> None:
    for bad, message in (
        (VPN.replace("audience: public", "audience: everyone"), "audience"),
        (VPN.replace("audience: public", "audience: GLOBEX"), "audience"),  # not served
        (VPN.replace("category: network", "category: nope"), "no category"),
        (VPN.replace("[vpn-internal-runbook]", "[missing-one]"), "no article 'missing-one'"),
        (VPN.replace("title: ", "title: " + "x" * 300 + " #"), "at most 200"),
        (VPN.replace("status: published", "status: live"), "status"),
    ):
        source = write(tmp_path / str(abs(hash(bad))), {"a.md": RUNBOOK, "b.md": bad})
        code, out = kb("import", str(source), "--as", cast.manager.email)
        assert code == 1, out
        assert message in out, (message, out)
        assert "b.md" in out
        assert not Article.objects.exists()
    # a file that is not front matter at all: named, and nothing imported
    source = write(tmp_path / "broken", {"a.md": RUNBOOK, "b.md": "just text"})
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 1
    assert "b.md" in out
    assert not Article.objects.exists()


def test_an_import_changes_an_audience_only_as_the_importer_could_in_the_editor(
    cast: Cast, tmp_path: Path
) -> None:
    """A reviewer's import goes through the edit's own rule, not around it: an audience
    their role could not set in the editor is refused, naming the file, and nothing of the
    import is written; what it does change is the importer's edit, audited and authored as
    theirs (not the system's)."""
    seed = write(tmp_path / "seed", {"vpn.md": VPN, "runbook.md": RUNBOOK})
    code, out = kb("import", str(seed), "--owner", cast.admin.email)
    assert code == 0, out
    vpn = Article.objects.get(slug="vpn-connects-nothing-loads")
    before = (vpn.audience, vpn.organization_id, vpn.version)
    entries = AuditEntry.objects.count()
    # The manager serves ACME only: GLOBEX's requesters are not an audience they may give an
    # article, in the editor (the service) or in a file.
    with pytest.raises(ValidationFailed):
        services.article_update(
            actor=cast.manager, article=vpn, audience="organization", organization=cast.globex
        )
    changed = write(
        tmp_path / "globex",
        {
            "runbook.md": RUNBOOK.replace("Check the tunnel", "Check the tunnel twice"),
            "vpn.md": VPN.replace("audience: public", "audience: GLOBEX"),
        },
    )
    code, out = kb("import", str(changed), "--as", cast.manager.email)
    assert code == 1
    assert "vpn.md: audience:" in out
    assert "nothing was imported" in out
    vpn.refresh_from_db()
    assert (vpn.audience, vpn.organization_id, vpn.version) == before
    assert "twice" not in Article.objects.get(slug="vpn-internal-runbook").body  # not half-done
    assert AuditEntry.objects.count() == entries
    # what the editor allows them, the import does: as the manager's own edit
    mine = write(tmp_path / "acme", {"vpn.md": VPN.replace("audience: public", "audience: ACME")})
    code, out = kb("import", str(mine), "--as", cast.manager.email)
    assert code == 0, out
    vpn.refresh_from_db()
    assert (vpn.audience, vpn.organization) == ("organization", cast.acme)
    edit = AuditEntry.objects.filter(action=AuditAction.ARTICLE_UPDATED).latest("id")
    assert (edit.actor, edit.changes["audience"]) == (
        cast.manager,
        {"old": "public", "new": "organization"},
    )
    text = write(tmp_path / "text", {"vpn.md": VPN.replace("audience: public", "audience: ACME")
                                     .replace("Disconnect", "Sign out, disconnect")})  # fmt: skip
    code, out = kb("import", str(text), "--as", cast.manager.email)
    assert code == 0, out
    assert ArticleVersion.objects.filter(article=vpn).latest("number").author == cast.manager


def test_a_knowledge_base_kept_in_git_imports_without_its_repository_files(
    cast: Cast, tmp_path: Path
) -> None:
    """Hidden files and directories (.git, .gitignore) and the top-level README.md without
    front matter are not articles and are skipped; any other Markdown file without front
    matter, a README.md further down included, is refused, naming it."""
    source = write(
        tmp_path / "kb",
        {
            "vpn.md": VPN,
            "runbook.md": RUNBOOK,
            "README.md": "# Our knowledge base\n\nEdit the files, then run tierdesk kb import.\n",
            ".gitignore": "*.swp\n",
            ".git/HEAD": "ref: refs/heads/main\n",
            ".git/info/notes.md": "not front matter either",
            ".drafts/half.md": "---\ntitle: unfinished",
        },
    )
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 0, out
    assert "imported 2 files: 2 created" in out
    assert sorted(Article.objects.values_list("slug", flat=True)) == [
        "vpn-connects-nothing-loads",
        "vpn-internal-runbook",
    ]

    for name in ("sub/README.md", "notes.md"):
        bad = write(tmp_path / name.replace("/", "-"), {"runbook.md": RUNBOOK,
                                                       "README.md": "# Readme\n",
                                                       name: "# Notes\n"})  # fmt: skip
        code, out = kb("import", str(bad), "--as", cast.admin.email)
        assert code == 1
        assert f"error: {name}: must start with a '---' line opening the front matter" in out
    assert Article.objects.count() == 2

    # a README.md with front matter is an article like any other
    readme = VPN.replace("slug: vpn-connects-nothing-loads", "slug: readme").replace(
        "related: [vpn-internal-runbook]\n", ""
    )
    code, out = kb("import", str(write(tmp_path / "own", {"README.md": readme})), "--as",
                   cast.admin.email)  # fmt: skip
    assert code == 0, out
    assert Article.objects.filter(slug="readme").exists()


def test_only_reviewers_import(cast: Cast, tmp_path: Path) -> None:
    source = write(tmp_path, {"a.md": RUNBOOK})
    code, out = kb("import", str(source), "--as", cast.lena.email)
    assert code == 1
    assert "Only reviewers" in out
    assert not Article.objects.exists()


# --- images: DIR/<slug>.md and DIR/<slug>/<name> ----------------------------------------

PNG = png(3, 2)
PNG_2 = png(5, 4, shade=0x80)
VPN_IMAGES = {"tray.png": PNG, "diagram.jpg": JPEG}


def with_images(directory: Path, folder: str, images: dict[str, bytes]) -> None:
    (directory / folder).mkdir(parents=True, exist_ok=True)
    for name, content in images.items():
        (directory / folder / name).write_bytes(content)


def stored_files() -> set[Path]:
    root = Path(settings.ATTACHMENTS_DIR)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def images_of(slug: str) -> dict[str, bytes]:
    """The article's images as stored: name -> bytes (checked against the row's sha256)."""
    found = {}
    for row in ArticleAttachment.objects.filter(article__slug=slug):
        content = files.path(row.storage_key).read_bytes()
        assert hashlib.sha256(content).hexdigest() == row.sha256
        assert row.size == len(content)
        found[row.filename] = content
    return found


def kb_source(tmp_path: Path) -> Path:
    source = write(tmp_path / "in", {"vpn.md": VPN, "runbook.md": RUNBOOK})
    with_images(source, "vpn", VPN_IMAGES)
    with_images(source, "runbook", {"firewall.png": PNG_2})
    return source


def test_images_travel_with_their_articles_byte_for_byte(
    cast: Cast, tmp_path: Path, settings: Any
) -> None:
    source = kb_source(tmp_path)
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 0, out
    assert "2 created, 0 updated, 0 unchanged; images: 3 added, 0 replaced, 0 removed" in out
    assert images_of("vpn-connects-nothing-loads") == VPN_IMAGES
    assert images_of("vpn-internal-runbook") == {"firewall.png": PNG_2}
    row = ArticleAttachment.objects.get(filename="tray.png")
    assert (row.content_type, row.uploaded_by) == ("image/png", cast.admin)

    exported = tmp_path / "out"
    code, out = kb("export", str(exported), "--as", cast.admin.email)
    assert code == 0, out
    assert "exported 2 articles and 3 images" in out
    assert sorted(str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()) == [
        "vpn-connects-nothing-loads.md",
        "vpn-connects-nothing-loads/diagram.jpg",
        "vpn-connects-nothing-loads/tray.png",
        "vpn-internal-runbook.md",
        "vpn-internal-runbook/firewall.png",
    ]
    assert (exported / "vpn-connects-nothing-loads" / "tray.png").read_bytes() == PNG
    # an L1 agent exports what she may read: not the L2 runbook, nor its images
    kb("export", str(tmp_path / "lena"), "--as", cast.lena.email)
    assert sorted(p.name for p in (tmp_path / "lena").iterdir()) == [
        "vpn-connects-nothing-loads",
        "vpn-connects-nothing-loads.md",
    ]

    # into a fresh knowledge base and file store: the same articles, the same bytes
    Article.objects.all().delete()
    settings.ATTACHMENTS_DIR = tmp_path / "fresh-store"
    code, out = kb("import", str(exported), "--as", cast.admin.email)
    assert code == 0, out
    assert "2 created, 0 updated, 0 unchanged; images: 3 added" in out, out
    assert images_of("vpn-connects-nothing-loads") == VPN_IMAGES
    assert images_of("vpn-internal-runbook") == {"firewall.png": PNG_2}
    assert len(stored_files()) == 3
    assert all(tmp_path / "fresh-store" in p.parents for p in stored_files())


def test_importing_the_same_images_again_changes_nothing(cast: Cast, tmp_path: Path) -> None:
    source = kb_source(tmp_path)
    kb("import", str(source), "--as", cast.admin.email)
    kb("export", str(tmp_path / "out"), "--as", cast.admin.email)
    rows = sorted(ArticleAttachment.objects.values_list("pk", "storage_key", "sha256"))
    on_disk = stored_files()
    state = (ArticleVersion.objects.count(), AuditEntry.objects.count())
    for directory in (source, tmp_path / "out"):
        code, out = kb("import", str(directory), "--as", cast.admin.email)
        assert code == 0, out
        assert "0 created, 0 updated, 2 unchanged; images: 0 added, 0 replaced, 0 removed" in out
        assert sorted(ArticleAttachment.objects.values_list("pk", "storage_key", "sha256")) == rows
        assert stored_files() == on_disk
        assert (ArticleVersion.objects.count(), AuditEntry.objects.count()) == state


def test_a_changed_image_replaces_the_old_one(
    cast: Cast, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    source = kb_source(tmp_path)
    kb("import", str(source), "--as", cast.admin.email)
    old = ArticleAttachment.objects.get(filename="tray.png")
    versions = ArticleVersion.objects.count()
    (source / "vpn" / "tray.png").write_bytes(PNG_2)
    with django_capture_on_commit_callbacks(execute=True):
        code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 0, out
    assert "0 created, 1 updated, 1 unchanged; images: 0 added, 1 replaced, 0 removed" in out
    assert images_of("vpn-connects-nothing-loads") == {"tray.png": PNG_2, "diagram.jpg": JPEG}
    assert not files.path(old.storage_key).exists()  # the old bytes went after commit
    assert len(stored_files()) == 3
    assert ArticleVersion.objects.count() == versions  # the text did not change
    entry = AuditEntry.objects.filter(action=AuditAction.ARTICLE_FILE_ADDED).latest("pk")
    assert entry.changes == {"file": "tray.png", "size": len(PNG_2), "replaced": True}


def test_an_image_gone_from_the_directory_is_removed_and_said_so(
    cast: Cast, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    source = kb_source(tmp_path)
    kb("import", str(source), "--as", cast.admin.email)
    kb("export", str(tmp_path / "out"), "--as", cast.admin.email)
    old = ArticleAttachment.objects.get(filename="diagram.jpg")
    (source / "vpn" / "diagram.jpg").unlink()
    with django_capture_on_commit_callbacks(execute=True):
        code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 0, out
    assert "1 updated, 1 unchanged; images: 0 added, 0 replaced, 1 removed" in out, out
    assert "removed image vpn-connects-nothing-loads/diagram.jpg: no longer in" in out
    assert images_of("vpn-connects-nothing-loads") == {"tray.png": PNG}
    assert not files.path(old.storage_key).exists()
    assert AuditEntry.objects.filter(
        action=AuditAction.ARTICLE_FILE_REMOVED, changes={"file": "diagram.jpg"}
    ).exists()
    # exporting again over the old export takes the image out of it too
    kb("export", str(tmp_path / "out"), "--as", cast.admin.email)
    assert sorted(p.name for p in (tmp_path / "out" / "vpn-connects-nothing-loads").iterdir()) == [
        "tray.png"
    ]
    # and an article with no image left has no directory: the whole directory goes
    shutil.rmtree(source / "runbook")
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert "removed image vpn-internal-runbook/firewall.png" in out, out
    kb("export", str(tmp_path / "out"), "--as", cast.admin.email)
    assert not (tmp_path / "out" / "vpn-internal-runbook").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("vpn/tray.png", JPEG[:40], "vpn/tray.png: the file is not a .png image"),
        ("vpn/logo.svg", b"<svg onload='x()'/>", "vpn/logo.svg: images are .png, .jpg"),
        ("vpn/empty.gif", b"", "vpn/empty.gif: the file is empty"),
        ("vpn/big.png", PNG + bytes(200), "vpn/big.png: larger than the limit of 100 bytes"),
        ("orphan/tray.png", PNG, "orphan/tray.png: an image of no article: there is no orphan.md"),
        ("tray.png", PNG, "tray.png: not an article (.md)"),
    ],
)
def test_a_bad_image_imports_nothing_and_stores_nothing(
    cast: Cast, tmp_path: Path, settings: Any, name: str, content: bytes, message: str
) -> None:
    settings.ATTACHMENT_MAX_BYTES = 100
    source = write(tmp_path / "in", {"vpn.md": VPN, "runbook.md": RUNBOOK})
    with_images(source, "runbook", {"firewall.png": PNG})
    (source / name).parent.mkdir(exist_ok=True)
    (source / name).write_bytes(content)
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 1
    assert message in out, out
    assert "nothing was imported" in out
    assert not Article.objects.exists()
    assert not ArticleAttachment.objects.exists()
    assert stored_files() == set()


def test_too_many_images_import_nothing(
    cast: Cast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "MAX_FILES", 2)
    source = kb_source(tmp_path)
    with_images(source, "vpn", {"third.png": PNG})
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 1
    assert "vpn.md: an article has at most 2 images, not 3" in out, out
    assert not Article.objects.exists()
    assert stored_files() == set()


def test_images_stored_before_a_later_failure_are_discarded(
    cast: Cast, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    source = kb_source(tmp_path)
    kb("import", str(source), "--as", cast.admin.email)
    before_rows = sorted(ArticleAttachment.objects.values_list("pk", "storage_key"))
    before_files = stored_files()
    # vpn.md's new image is stored, then zzz.md fails as it is created ("new" is a page's)
    (source / "vpn" / "tray.png").write_bytes(PNG_2)
    with_images(source, "vpn", {"extra.png": PNG_2})
    write(source, {"zzz.md": RUNBOOK.replace("vpn-internal-runbook", "new")})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 1
    assert "zzz.md: slug: 'new' is taken by the pages" in out, out
    assert "nothing was imported" in out
    assert callbacks == []
    assert sorted(ArticleAttachment.objects.values_list("pk", "storage_key")) == before_rows
    assert stored_files() == before_files  # the new bytes discarded, the old ones kept
    assert images_of("vpn-connects-nothing-loads") == VPN_IMAGES
    # and into an empty knowledge base: no row, no file
    ArticleAttachment.objects.all().delete()
    Article.objects.all().delete()
    for path in stored_files():
        path.unlink()
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 1
    assert not Article.objects.exists()
    assert stored_files() == set()


# --- what the importer may not read ---------------------------------------------------------


def globex_article(cast: Cast) -> Article:
    """An article the manager (who serves Acme only) may not read."""
    return services.article_create(
        actor=None,
        owner=cast.admin,
        title="Globex Citrix gateway",
        slug="globex-citrix",
        body="Globex only.",
        audience="organization",
        organization=cast.globex,
        status="published",
    )


def test_a_related_article_the_importer_cannot_read_is_like_a_missing_one(
    cast: Cast, tmp_path: Path
) -> None:
    globex_article(cast)
    outputs = []
    for slug in ("globex-citrix", "no-such-thing"):
        source = write(tmp_path / slug, {"vpn.md": VPN.replace("vpn-internal-runbook", slug)})
        code, out = kb("import", str(source), "--as", cast.manager.email)
        assert code == 1
        outputs.append(out.replace(slug, "SLUG"))
    assert outputs[0] == outputs[1]
    assert "vpn.md: related: no article 'SLUG'" in outputs[0]
    assert Article.objects.count() == 1
    # the system (no --as) reads everything
    code, out = kb("import", str(tmp_path / "globex-citrix"), "--owner", cast.manager.email)
    assert code == 0, out
    assert [
        a.slug for a in Article.objects.get(slug="vpn-connects-nothing-loads").related.all()
    ] == ["globex-citrix"]


def test_a_slug_taken_by_an_article_the_importer_cannot_read_says_only_that(
    cast: Cast, tmp_path: Path
) -> None:
    globex_article(cast)
    source = write(tmp_path, {"mine.md": RUNBOOK.replace("vpn-internal-runbook", "globex-citrix")})
    code, out = kb("import", str(source), "--as", cast.manager.email)
    assert code == 1
    assert "mine.md: slug: an article with slug 'globex-citrix' exists" in out, out
    assert "cannot see" not in out
    assert Article.objects.get().title == "Globex Citrix gateway"


def test_reimporting_an_export_keeps_links_the_exporter_cannot_see(
    cast: Cast, tmp_path: Path
) -> None:
    hidden = globex_article(cast)
    source = write(tmp_path / "in", {"vpn.md": VPN, "runbook.md": RUNBOOK})
    kb("import", str(source), "--as", cast.admin.email)
    vpn = Article.objects.get(slug="vpn-connects-nothing-loads")
    vpn.related.add(hidden)
    exported = tmp_path / "out"
    code, out = kb("export", str(exported), "--as", cast.manager.email)
    assert code == 0, out
    assert "globex-citrix" not in (exported / "vpn-connects-nothing-loads.md").read_text()
    code, out = kb("import", str(exported), "--as", cast.manager.email)
    assert code == 0, out
    assert "0 updated, 2 unchanged" in out, out
    assert sorted(r.slug for r in vpn.related.all()) == ["globex-citrix", "vpn-internal-runbook"]
    # a link the manager can see follows the files (both: related is symmetrical); the
    # hidden one stays
    for file in exported.glob("*.md"):
        text = file.read_text()
        file.write_text("\n".join(x for x in text.split("\n") if not x.startswith("related:")))
    code, out = kb("import", str(exported), "--as", cast.manager.email)
    assert code == 0, out
    assert sorted(r.slug for r in vpn.related.all()) == ["globex-citrix"]
    # the system, which reads everything, takes the file at its word
    code, out = kb("import", str(exported), "--owner", cast.admin.email)
    assert code == 0, out
    assert [r.slug for r in vpn.related.all()] == []


def test_an_import_does_not_publish_the_importers_own_article(cast: Cast, tmp_path: Path) -> None:
    draft = VPN.replace("status: published", "status: draft").replace(
        "related: [vpn-internal-runbook]\n", ""
    )
    source = write(tmp_path, {"vpn.md": draft})
    assert kb("import", str(source), "--as", cast.manager.email)[0] == 0
    article = Article.objects.get(slug="vpn-connects-nothing-loads")
    assert (article.owner, article.status) == (cast.manager, "draft")
    # the manager who owns it publishes it through a changed file: refused, as in the editor
    (source / "vpn.md").write_text(draft.replace("status: draft", "status: published"))
    code, out = kb("import", str(source), "--as", cast.manager.email)
    assert code == 1, out
    assert "vpn.md" in out
    assert "Someone other than its owner publishes" in out
    article.refresh_from_db()
    assert (article.status, article.version) == ("draft", 1)
    # another reviewer's import publishes it
    code, out = kb("import", str(source), "--as", cast.admin.email)
    assert code == 0, out
    article.refresh_from_db()
    assert (article.status, article.reviewer) == ("published", cast.admin)
