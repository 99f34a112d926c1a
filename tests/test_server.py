"""End to end through real processes: the `tierdesk` command sets up a fresh installation,
`tierdesk run` starts the web server (granian) and the Huey worker, the API answers over
HTTP, Ctrl-C stops both; on SQLite, `tierdesk backup` and `restore` round-trip the data.

Runs on SQLite in its own data directory, or, when DATABASE_URL names PostgreSQL, in a
scratch database of that server created and dropped here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import TIERDESK, free_port, fresh_install, tierdesk


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with fresh_install(tmp_path_factory.mktemp("install")) as env:
        done = tierdesk(env, "demo", "--tickets", "40", "--days", "10")
        assert done.returncode == 0, done.stderr
        yield env


_tierdesk = tierdesk


def test_run_serves_the_api_and_stops_cleanly_on_ctrl_c(install: dict[str, str]) -> None:
    token = _tierdesk(install, "token", "create", "--user", "lena.l1@msp.example").stdout.strip()
    assert token.startswith("td_")
    port = free_port()
    proc = subprocess.Popen(
        [TIERDESK, "run", "--port", str(port)],
        env=install,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        banner = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            banner.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        text = "".join(banner)
        assert f"http://127.0.0.1:{port}/" in text, text
        assert "lena.l1@msp.example" in text
        assert "requester" in text

        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            listed = http.get("/api/v1/tickets", params={"limit": 5}, headers=auth)
            assert listed.status_code == 200
            assert len(listed.json()["items"]) == 5
            created = http.post(
                "/api/v1/tickets",
                headers=auth,
                json={
                    "organization": "ACME",
                    "subject": "Over real HTTP",
                    "requester": "alice@acme.example",
                },
            )
            assert created.status_code == 201, created.text
            children = subprocess.run(
                ["ps", "-o", "args=", "--ppid", str(proc.pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            assert "granian" in children, children
            assert "run_huey" in children, children
            docs = http.get("/api/v1/docs")
            assert docs.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
            assert assets
            assert all(a.startswith("/") for a in assets), assets
            for asset in assets:
                assert http.get(asset).status_code == 200, asset
            assert http.get("/api/v1/openapi.json").json()["info"]["title"] == "tierdesk API"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0
    assert proc.stdout is not None
    assert "stopped." in proc.stdout.read()
    leftovers = subprocess.run(
        ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout.strip() == "", "server or worker processes outlived Ctrl-C"


def _without_time_left(listing: str) -> list[dict[str, Any]]:
    """The tickets as listed, less what moves with the wall clock: an SLA clock's business
    time left shrinks between two listings made during business hours."""
    tickets: list[dict[str, Any]] = json.loads(listing)
    for ticket in tickets:
        for sla in ticket.get("sla", []):
            sla.pop("business_seconds_left", None)
    return tickets


def test_backup_and_restore_round_trip(install: dict[str, str], tmp_path: Path) -> None:
    if install.get("DATABASE_URL"):
        refused = _tierdesk(install, "backup", str(tmp_path / "b.tar.gz"))
        assert refused.returncode == 1
        assert "pg_dump" in refused.stderr
        return
    archive = tmp_path / "backup.tar.gz"
    made = _tierdesk(install, "backup", str(archive))
    assert made.returncode == 0, made.stderr
    before = _tierdesk(
        install, "ticket", "list", "--as", "admin@msp.example", "--limit", "200", "--json"
    )
    _tierdesk(
        install,
        "ticket",
        "create",
        "--as",
        "admin@msp.example",
        "--org",
        "ACME",
        "--subject",
        "After the backup",
        "--requester",
        "alice@acme.example",
    )
    refused = _tierdesk(install, "restore", str(archive))
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    restored = _tierdesk(install, "restore", str(archive), "--force")
    assert restored.returncode == 0, restored.stderr
    after = _tierdesk(
        install, "ticket", "list", "--as", "admin@msp.example", "--limit", "200", "--json"
    )
    assert _without_time_left(after.stdout) == _without_time_left(before.stdout)
    assert "After the backup" not in after.stdout
