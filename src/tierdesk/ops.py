"""Operator tasks behind `tierdesk check`, `tierdesk backup` and `tierdesk restore`."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from tierdesk.core.errors import DomainError


@dataclass
class CheckResult:
    name: str
    level: str  # ok, warning, error
    message: str


def run_checks() -> list[CheckResult]:
    results: list[CheckResult] = []
    data_dir = Path(settings.DATA_DIR)
    writable = os.access(data_dir, os.W_OK)
    results.append(
        CheckResult(
            "data directory",
            "ok" if writable else "error",
            f"{data_dir} ({'writable' if writable else 'NOT writable'})",
        )
    )
    vendor = connection.vendor
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        results.append(CheckResult("database", "ok", f"{vendor} reachable"))
    except Exception as exc:  # report any driver error as a failed check
        results.append(CheckResult("database", "error", f"{vendor}: {exc}"))
        return results
    if vendor == "sqlite":
        with connection.cursor() as cursor:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            sync = cursor.execute("PRAGMA synchronous").fetchone()[0]
            fks = cursor.execute("PRAGMA foreign_keys").fetchone()[0]
        ok = mode == "wal" and fks == 1
        results.append(
            CheckResult(
                "sqlite settings",
                "ok" if ok else "error",
                f"journal_mode={mode} synchronous={sync} (2=FULL) foreign_keys={fks}",
            )
        )
    from django.db.migrations.executor import MigrationExecutor

    pending = MigrationExecutor(connection).migration_plan(
        MigrationExecutor(connection).loader.graph.leaf_nodes()
    )
    results.append(
        CheckResult(
            "migrations",
            "ok" if not pending else "error",
            "up to date" if not pending else f"{len(pending)} pending: run `tierdesk migrate`",
        )
    )
    if os.environ.get("TIERDESK_SECRET_KEY") or os.environ.get("TIERDESK_SECRET_KEY_FILE"):
        results.append(CheckResult("secret key", "ok", "from the environment"))
    else:
        results.append(
            CheckResult(
                "secret key",
                "warning",
                f"generated and kept in {data_dir / 'secret_key'}; set TIERDESK_SECRET_KEY "
                "(same value on every process) when you run several machines",
            )
        )
    if settings.REDIS_URL:
        try:
            import redis

            redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
            results.append(CheckResult("task queue", "ok", "Redis reachable"))
        except Exception as exc:  # any connection problem is the message
            results.append(CheckResult("task queue", "error", f"Redis: {exc}"))
    else:
        results.append(
            CheckResult("task queue", "ok", f"embedded SQLite queue {settings.HUEY['filename']}")
        )
    if settings.DEBUG:
        results.append(CheckResult("debug", "warning", "TIERDESK_DEBUG is on; never in production"))
    return results


def _sqlite_path() -> Path:
    if connection.vendor != "sqlite":
        raise DomainError(
            "tierdesk backup copies the embedded SQLite database; for PostgreSQL use "
            "pg_dump (see docs/operations.md)."
        )
    return Path(str(settings.DATABASES["default"]["NAME"]))


def backup_sqlite(archive: str) -> str:
    """Copy the live database with SQLite's online backup API (readers and writers go on),
    check the copy, and pack it with the attachments into a .tar.gz."""
    source = _sqlite_path()
    out = Path(archive)
    if not out.parent.resolve().is_dir():
        raise DomainError(f"cannot write {out}: the directory {out.parent} does not exist")
    with tempfile.TemporaryDirectory(dir=out.parent.resolve()) as tmp:
        snapshot = Path(tmp) / "tierdesk.sqlite3"
        src = sqlite3.connect(source)
        dst = sqlite3.connect(snapshot)
        try:
            src.backup(dst, pages=1024)
            status = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
        if status != "ok":
            raise DomainError(f"the backup copy failed its integrity check: {status}")
        partial = out.with_name(out.name + ".part")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(snapshot, arcname="tierdesk.sqlite3")
            if Path(settings.ATTACHMENTS_DIR).is_dir():
                tar.add(settings.ATTACHMENTS_DIR, arcname="attachments")
        partial.replace(out)
    return f"backup written to {out} ({out.stat().st_size} bytes)"


def restore_sqlite(archive: str, *, force: bool) -> str:
    """Unpack a backup made by backup_sqlite into the data directory. Refuses to replace an
    existing database without ``force``; checks the copy before putting it in place."""
    target = _sqlite_path()
    if target.exists() and not force:
        raise DomainError(f"{target} exists; stop tierdesk and pass --force to replace it")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        restored = Path(tmp) / "tierdesk.sqlite3"
        if not restored.exists():
            raise DomainError("the archive holds no tierdesk.sqlite3; is it a tierdesk backup?")
        check = sqlite3.connect(restored)
        try:
            status = check.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            check.close()
        if status != "ok":
            raise DomainError(f"the backup failed its integrity check: {status}")
        connection.close()
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        restored.replace(target)
        attachments = Path(tmp) / "attachments"
        if attachments.is_dir():
            dest = Path(settings.ATTACHMENTS_DIR)
            if dest.exists():
                shutil.rmtree(dest)
            shutil.move(attachments, dest)
    return f"restored {target} from {archive}"
