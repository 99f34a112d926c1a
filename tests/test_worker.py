"""The background worker as a real process: `tierdesk worker` consumes the queue and
dispatches the outbox, with the embedded SQLite queue and with Redis (a redis-server started
here on loopback)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import TIERDESK, django_eval, free_port, fresh_install, tierdesk

PENDING = (
    "from tierdesk.core.models import OutboxEvent\n"
    "print(OutboxEvent.objects.filter(dispatched_at__isnull=True).count())"
)
QUEUE = (
    "from huey.contrib.djhuey import HUEY\n"
    "from tierdesk.core.tasks import outbox_relay_tick\n"
    "outbox_relay_tick()\n"
    "print(type(HUEY.storage).__name__, HUEY.pending_count())"
)


@pytest.fixture(params=["embedded", "redis"])
def queue_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    redis = None
    with fresh_install(tmp_path) as env:
        if request.param == "redis":
            binary = shutil.which("redis-server")
            if binary is None:
                pytest.skip("redis-server is not installed; the embedded queue is tested")
            port = free_port()
            redis = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
            )
            env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        try:
            yield env
        finally:
            if redis is not None:
                redis.terminate()
                redis.wait(timeout=10)


def test_the_worker_dispatches_the_outbox(queue_env: dict[str, str]) -> None:
    env = queue_env
    for args in (
        ["org", "create", "--code", "ACME", "--name", "Acme"],
        [
            "user",
            "create",
            "--email",
            "alice@acme.example",
            "--name",
            "Alice",
            "--role",
            "requester",
            "--org",
            "ACME",
        ],
        ["ticket", "create", "--as", "alice@acme.example", "--subject", "Queue me"],
    ):
        done = tierdesk(env, *args)
        assert done.returncode == 0, done.stderr
    assert int(django_eval(env, PENDING)) >= 3

    # Enqueue a run from another process, as the scheduler or an operator would, before any
    # worker runs: the task must sit in the configured queue until a worker takes it.
    queued = django_eval(env, QUEUE)
    expected = "RedisStorage" if "REDIS_URL" in env else "SqliteStorage"
    assert queued == f"{expected} 1"

    worker = subprocess.Popen(
        [TIERDESK, "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and int(django_eval(env, PENDING)) > 0:
            time.sleep(1)
        assert int(django_eval(env, PENDING)) == 0
    finally:
        worker.send_signal(signal.SIGINT)
        code = worker.wait(timeout=30)
    log = worker.stdout.read() if worker.stdout else ""
    assert code == 0, log
    assert "Huey consumer started" in log
    assert (
        django_eval(env, "from huey.contrib.djhuey import HUEY\nprint(HUEY.pending_count())") == "0"
    )
