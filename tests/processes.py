"""Helpers for tests that run tierdesk as real processes against a fresh installation."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

TIERDESK = str(Path(sys.executable).with_name("tierdesk"))
DATABASE_FILE = "tierdesk.sqlite3"  # under TIERDESK_DATA_DIR, as settings name it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A migrated database per test process, copied for each fresh installation instead of
# migrating again (3-4 s on SQLite, about 8 s on PostgreSQL, for each of some twenty
# installations the suite makes on each database).
_templates: dict[str, str] = {}


def _sqlite_template() -> Path:
    found = _templates.get("sqlite")
    if found is None:
        data_dir = Path(tempfile.mkdtemp(prefix="tierdesk-template-"))
        env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        env["TIERDESK_DATA_DIR"] = str(data_dir)
        done = tierdesk(env, "migrate")
        assert done.returncode == 0, done.stderr
        found = _templates["sqlite"] = str(data_dir / DATABASE_FILE)
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return Path(found)


def _postgresql_template(base_url: str) -> str:
    """The name of a migrated database on the server of ``base_url``, dropped when the
    process ends; nothing stays connected to it, so CREATE DATABASE … TEMPLATE can copy it."""
    import psycopg

    found = _templates.get(base_url)
    if found is None:
        name = f"tierdesk_e2e_template_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        atexit.register(_drop_database, base_url, name)
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.pop("REDIS_URL", None)
        env["TIERDESK_DATA_DIR"] = tempfile.mkdtemp(prefix="tierdesk-template-")
        env["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + name
        done = tierdesk(env, "migrate")
        assert done.returncode == 0, done.stderr
        found = _templates[base_url] = name
    return found


def _drop_database(base_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_install(data_dir: Path) -> Iterator[dict[str, str]]:
    """The environment of a new, migrated installation: SQLite in ``data_dir``, or, when
    DATABASE_URL names PostgreSQL, a scratch database on that server, dropped afterwards.
    The schema is a copy of one this process migrated with `tierdesk migrate`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["TIERDESK_DATA_DIR"] = str(data_dir)
    env.pop("REDIS_URL", None)
    base_url = os.environ.get("DATABASE_URL", "")
    scratch = None
    if base_url.startswith("postgres"):
        import psycopg

        template = _postgresql_template(base_url)
        scratch = f"tierdesk_e2e_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}" TEMPLATE "{template}"')
        env["DATABASE_URL"] = base_url.rsplit("/", 1)[0] + "/" + scratch
    else:
        env.pop("DATABASE_URL", None)
        data_dir.mkdir(parents=True, exist_ok=True)
        template = _sqlite_template()
        for suffix in ("", "-wal"):  # a WAL left behind holds part of the database
            if Path(f"{template}{suffix}").exists():
                shutil.copyfile(f"{template}{suffix}", data_dir / f"{DATABASE_FILE}{suffix}")
    try:
        yield env
    finally:
        if scratch:
            _drop_database(base_url, scratch)


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


@dataclass(frozen=True)
class Server:
    url: str
    env: dict[str, str]


@contextlib.contextmanager
def serving(env: dict[str, str], workers: int = 1) -> Iterator[Server]:
    """`tierdesk serve` with ``env`` on a free loopback port, until the block ends."""
    port = free_port()
    proc = subprocess.Popen(
        [TIERDESK, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            time.sleep(0.1)
        yield Server(url, env)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
