"""The shared cast of actors, built through services.

Who may see what:
- ``acme`` and ``globex`` are two client organizations (tenants) of the MSP.
- ``admin`` sees everything.
- ``manager`` serves ACME only.
- ``lena`` is an L1 agent serving ACME; ``omar`` an L2 agent serving ACME and GLOBEX;
  ``gus`` an L1 agent serving GLOBEX only.
- ``alice`` and ``bob`` are ACME requesters who see only their own tickets; ``carol`` is an
  ACME requester whose role lets her see all of ACME's tickets.
- ``gerd`` is a GLOBEX requester.
- ``outsider`` is an agent who serves no organization at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.hashers import (
    PBKDF2PasswordHasher,
    get_hashers,
    get_hashers_by_algorithm,
)
from django.db import connections
from django.test import Client

from tierdesk.core.models import Organization, User
from tierdesk.core.services import organization_create, token_create, user_create
from tierdesk.tickets import services as ticket_services
from tierdesk.tickets.models import Ticket
from tierdesk.tiers.services import agent_create, tier_by_code

# Files whose module-scoped fixtures (a server over a fresh installation) are worth
# starting once: under xdist (`./run test` runs `--dist loadgroup`) each stays on one worker.
# Every other test is scheduled on its own, in collection order, which keeps pytest-django's
# order on each worker: transactional tests, which empty the tables when they end, come
# after every test that needs the migrations' seeded rows.
ONE_WORKER_FILES = ("tests/browser/", "tests/test_server.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith(ONE_WORKER_FILES):
            item.add_marker(pytest.mark.xdist_group(path))


class QuickPBKDF2(PBKDF2PasswordHasher):
    """PBKDF2 at a thousandth of its cost, for passwords set in the tests' own process.

    Django's default (over a million rounds) takes about 0.7 s a password here, and the
    sign-in, reset and lockout tests set and check hundreds. The stored format, the checks
    and every code path stay Django's; only the work factor differs. Servers that tests
    start as processes hash as in production."""

    algorithm = "pbkdf2_sha256_quick"
    iterations = 1_000


@pytest.fixture(autouse=True, scope="session")
def _quick_password_hashing() -> None:
    settings.PASSWORD_HASHERS = ["tests.conftest.QuickPBKDF2", *settings.PASSWORD_HASHERS]
    get_hashers.cache_clear()
    get_hashers_by_algorithm.cache_clear()


@pytest.fixture(autouse=True)
def _own_attachments_dir(settings: Any, tmp_path: Path) -> None:
    """Each test stores files in its own directory, so what one leaves is not another's."""
    settings.ATTACHMENTS_DIR = tmp_path / "attachments"


@dataclass
class Cast:
    acme: Organization
    globex: Organization
    admin: User
    manager: User
    lena: User
    omar: User
    gus: User
    alice: User
    bob: User
    carol: User
    gerd: User
    outsider: User


@pytest.fixture
def cast(db: None) -> Cast:
    acme = organization_create(
        actor=None,
        code="ACME",
        name="Acme Inc.",
        time_zone="America/New_York",
        email_domains=["acme.example"],
    )
    globex = organization_create(
        actor=None,
        code="GLOBEX",
        name="Globex GmbH",
        time_zone="Europe/Berlin",
        email_domains=["globex.example"],
    )

    def staff(email: str, role: str, tier: str, serves: list[Organization]) -> User:
        return agent_create(
            actor=None,
            email=email,
            full_name=email.split("@")[0].title(),
            role=role,
            tier=tier_by_code(tier),
            served_organizations=serves,
        )

    def requester(email: str, org: Organization, sees: bool = False) -> User:
        return user_create(
            actor=None,
            email=email,
            full_name=email.split("@")[0].title(),
            role="requester",
            organization=org,
            sees_organization_tickets=sees,
        )

    return Cast(
        acme=acme,
        globex=globex,
        admin=staff("admin@msp.example", "admin", "L3", []),
        manager=staff("manager@msp.example", "manager", "L2", [acme]),
        lena=staff("lena@msp.example", "agent", "L1", [acme]),
        omar=staff("omar@msp.example", "agent", "L2", [acme, globex]),
        gus=staff("gus@msp.example", "agent", "L1", [globex]),
        alice=requester("alice@acme.example", acme),
        bob=requester("bob@acme.example", acme),
        carol=requester("carol@acme.example", acme, sees=True),
        gerd=requester("gerd@globex.example", globex),
        outsider=staff("outsider@msp.example", "agent", "L1", []),
    )


def make_ticket(actor: User, org: Organization, requester: User | None = None, **kw: Any) -> Ticket:
    return ticket_services.ticket_create(
        actor=actor,
        organization=org,
        subject=kw.pop("subject", "Printer on fire"),
        requester=requester,
        **kw,
    )


class Api:
    """A test client speaking to /api/v1 as one user, through a real token."""

    def __init__(self, user: User | None) -> None:
        self.client = Client()
        self.headers: dict[str, str] = {}
        if user is not None:
            _, token = token_create(actor=None, user=user, name="tests")
            self.token = token
            self.headers["Authorization"] = f"Bearer {token}"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
        **kw: Any,
    ) -> Any:
        all_headers = {**self.headers, **(headers or {})}
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else None)
        func = getattr(self.client, method.lower())
        extra = {"content_type": "application/json"} if data is not None else {}
        if method.upper() in ("GET", "HEAD"):
            return func(f"/api/v1{path}", data=kw.get("params"), headers=all_headers)
        return func(f"/api/v1{path}", data=data, headers=all_headers, **extra)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


@pytest.fixture
def api_as(db: None) -> Callable[[User | None], Api]:
    return Api


def problem_fields(response: Any) -> list[str]:
    """The field names a problem-details answer blames."""
    assert response["Content-Type"] == "application/problem+json", response.content
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= body.keys()
    return [e["field"] for e in body.get("errors", [])]


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` for i in 0..count-1, each in its own thread (and database connection),
    started together; what each returned or raised, in order (the caller asserts)."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(i)
        except Exception as exc:  # collected and asserted by the caller
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def needs_shared_database() -> None:
    """Skip a test whose threads must share one database (not SQLite's in-memory one)."""
    from django.db import connection

    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("needs a file database shared by threads")
