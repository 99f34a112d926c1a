"""PostgreSQL: a kept connection the server has dropped is replaced before the next request
uses it, and a healthy one is checked without a round trip (tierdesk.core.backends.postgresql).

Requests go through Django's WSGI handler, as under the web server: Django's test client
leaves out the connection checks that run when a request starts and ends."""

from __future__ import annotations

import io
import sys
import time
from typing import Any

import psycopg
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoPostgres

from tests.conftest import Cast
from tierdesk.core.services import token_create

# Transactional: the checks only run outside a transaction, between requests.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    assert connection.settings_dict["ENGINE"] == "tierdesk.core.backends.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    assert connection.settings_dict["CONN_MAX_AGE"] != 0


def _get(app: Any, path: str, token: str) -> str:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    status: list[str] = []
    result = app(environ, lambda s, headers, exc_info=None: status.append(s))
    b"".join(result)
    result.close()
    return status[0]


def _terminate(pid: int) -> None:
    """End backend ``pid`` from another connection, as a restart or an admin would, and wait
    until it is gone."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.02)


@pytest.fixture
def full_checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Counts Django's own check (SELECT 1), which the backend falls back to."""
    calls: list[bool] = []
    original = DjangoPostgres.is_usable

    def counted(self: DjangoPostgres) -> bool:
        calls.append(result := original(self))
        return result

    monkeypatch.setattr(DjangoPostgres, "is_usable", counted)
    return calls


def test_the_next_request_after_the_backend_was_terminated_succeeds(
    postgresql: None, cast: Cast, full_checks: list[bool]
) -> None:
    _, token = token_create(actor=None, user=cast.lena, name="t")
    app = get_wsgi_application()
    connection.close()

    assert _get(app, "/api/v1/me", token).startswith("200")
    first = connection.connection.info.backend_pid
    assert _get(app, "/api/v1/me", token).startswith("200")
    assert connection.connection.info.backend_pid == first  # kept between requests
    assert full_checks == []  # and checked without SELECT 1

    _terminate(first)
    assert _get(app, "/api/v1/me", token).startswith("200")
    assert connection.connection.info.backend_pid != first
    # the server's goodbye was waiting on the socket: Django's check confirmed the loss
    assert full_checks == [False]
    assert _get(app, "/api/v1/me", token).startswith("200")
    assert full_checks == [False]


def test_a_connection_with_an_error_is_checked_in_full(postgresql: None, db: None) -> None:
    connection.ensure_connection()
    assert connection.is_usable()
    connection.errors_occurred = True
    try:
        with connection.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        _terminate(pid)
        assert connection.is_usable() is False
    finally:
        connection.errors_occurred = False
        connection.close()


def test_something_else_waiting_on_the_socket_is_not_taken_for_a_loss(
    postgresql: None, db: None, full_checks: list[bool]
) -> None:
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute("LISTEN tierdesk_health_check")
    try:
        assert connection.is_usable()
        assert full_checks == []
        # A notification arrives while the connection is idle: readable, yet alive.
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
            other.execute("NOTIFY tierdesk_health_check")
        time.sleep(0.1)
        assert connection.is_usable()
        assert full_checks == [True]
    finally:
        with connection.connection.cursor() as cursor:
            cursor.execute("UNLISTEN *")
