"""Configuration readers reject bad values with a message naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

from tierdesk.env import ConfigError, env_bool, env_int, env_list, env_str


def test_readers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TD_FLAG", "yes")
    monkeypatch.setenv("TD_NUM", "12")
    monkeypatch.setenv("TD_LIST", "a, b,,c")
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("TD_KEY_FILE", str(secret))
    assert env_bool("TD_FLAG") is True
    assert env_int("TD_NUM", 1) == 12
    assert env_list("TD_LIST") == ["a", "b", "c"]
    assert env_str("TD_KEY") == "s3cret"
    assert env_str("TD_MISSING", "default") == "default"


@pytest.mark.parametrize(
    ("name", "value", "reader"),
    [
        ("TD_FLAG", "maybe", lambda: env_bool("TD_FLAG")),
        ("TD_NUM", "twelve", lambda: env_int("TD_NUM", 1)),
        ("TD_NUM", "0", lambda: env_int("TD_NUM", 1, minimum=1)),
        ("TD_KEY_FILE", "/nonexistent/secret", lambda: env_str("TD_KEY")),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reader: object
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name.removesuffix("_FILE")):
        reader()  # type: ignore[operator]


@pytest.mark.django_db
def test_sqlite_runs_with_wal_foreign_keys_and_full_sync() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite settings; this run is on " + connection.vendor)
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] == 20_000
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
