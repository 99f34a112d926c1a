"""Articles as Markdown files with front matter: `tierdesk kb import` / `export`, all or
nothing, idempotent, and strict about what a file may say."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import Cast
from tierdesk.cli import main
from tierdesk.kb import portable
from tierdesk.kb.models import Article, ArticleVersion

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


def test_only_reviewers_import(cast: Cast, tmp_path: Path) -> None:
    source = write(tmp_path, {"a.md": RUNBOOK})
    code, out = kb("import", str(source), "--as", cast.lena.email)
    assert code == 1
    assert "Only reviewers" in out
    assert not Article.objects.exists()
