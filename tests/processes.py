"""Helpers for tests that run tierdesk as real processes against a fresh installation."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

TIERDESK = str(Path(sys.executable).with_name("tierdesk"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_install(data_dir: Path) -> Iterator[dict[str, str]]:
    """The environment of a new, migrated installation: SQLite in ``data_dir``, or, when
    DATABASE_URL names PostgreSQL, a scratch database on that server, dropped afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["TIERDESK_DATA_DIR"] = str(data_dir)
    env.pop("REDIS_URL", None)
    base_url = os.environ.get("DATABASE_URL", "")
    scratch = None
    if base_url.startswith("postgres"):
        import psycopg

        scratch = f"tierdesk_e2e_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        env["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + scratch
    else:
        env.pop("DATABASE_URL", None)
    try:
        done = tierdesk(env, "migrate")
        assert done.returncode == 0, done.stderr
        yield env
    finally:
        if scratch:
            import psycopg

            with psycopg.connect(base_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def tierdesk(
    env: dict[str, str], *args: str, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TIERDESK, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def django_eval(env: dict[str, str], code: str) -> str:
    """Run ``code`` (which prints its answer) in a fresh Django process of the installation."""
    prelude = (
        "import django, os\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'tierdesk.settings'\n"
        "django.setup()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
