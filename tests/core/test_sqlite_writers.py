"""SQLite's writers' queue (``tierdesk.core.backends.sqlite3``): a write transaction holds
an advisory lock beside the database from BEGIN to COMMIT or ROLLBACK, and a writer that
cannot get it in time fails as SQLite would, leaving nothing behind."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection, connections, transaction

from tierdesk.core import config
from tierdesk.core.models import ConfigState

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the writers' queue is SQLite's"),
]


@pytest.fixture
def lock_file() -> Iterator[int]:
    """A descriptor of its own on the lock file: an outside writer's view of the lock."""
    fd = os.open(f"{connection.settings_dict['NAME']}.writers", os.O_RDWR | os.O_CREAT)
    try:
        yield fd
    finally:
        os.close(fd)


def _free(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _change(*, then_fail: bool = False) -> None:
    with transaction.atomic():
        config.changed()
        if then_fail:
            raise RuntimeError("the work failed")


def test_a_write_transaction_holds_the_lock_until_commit(lock_file: int) -> None:
    assert _free(lock_file)
    with transaction.atomic():
        assert not _free(lock_file)
        config.changed()
        with transaction.atomic():  # a savepoint keeps the outer transaction's lock
            assert not _free(lock_file)
        assert not _free(lock_file)
    assert _free(lock_file)


def test_a_rolled_back_transaction_releases_the_lock(lock_file: int) -> None:
    before = ConfigState.objects.values_list("token", flat=True).first()
    with pytest.raises(RuntimeError):
        _change(then_fail=True)
    assert _free(lock_file)
    assert ConfigState.objects.values_list("token", flat=True).first() == before


def test_closing_the_connection_releases_the_lock(lock_file: int) -> None:
    def hold_and_close() -> None:
        transaction.atomic().__enter__()  # never left: only closing can end it
        assert not _free(lock_file)
        connections["default"].close()

    worker = threading.Thread(target=hold_and_close)
    worker.start()
    worker.join(timeout=30)
    assert _free(lock_file)


def test_a_writer_that_cannot_get_the_lock_in_time_fails_and_writes_nothing(
    lock_file: int,
) -> None:
    before = ConfigState.objects.values_list("token", flat=True).first()
    options = connection.settings_dict["OPTIONS"]
    timeout = options["timeout"]
    fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process is writing, and slow
    options["timeout"] = 0.2
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            _change()
    finally:
        options["timeout"] = timeout
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    assert ConfigState.objects.values_list("token", flat=True).first() == before
    with transaction.atomic():  # and the connection is fine once the lock is free
        config.changed()
    assert ConfigState.objects.values_list("token", flat=True).first() != before


def test_a_waiting_writer_goes_as_soon_as_the_lock_is_free(lock_file: int) -> None:
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    entered = threading.Event()

    def write() -> None:
        try:
            with transaction.atomic():
                entered.set()
                config.changed()
        finally:
            connections.close_all()

    worker = threading.Thread(target=write)
    worker.start()
    try:
        assert not entered.wait(0.3)  # queued behind the holder
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    assert entered.wait(5)
    worker.join(timeout=30)
