from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import ldapserver
from tests.conftest import Cast
from tierdesk.automation import services
from tierdesk.automation.models import Directory


@pytest.fixture(autouse=True)
def _prompt_self_service_answers(settings: Any) -> None:
    """No floor under refused self-service answers (tests of the floor set one)."""
    settings.SELF_SERVICE_ANSWER_MS = 0


@pytest.fixture
def slapd() -> Iterator[ldapserver.Directory]:
    """A fresh directory for each test: the tests change passwords, locks and groups."""
    with ldapserver.directory() as running:
        yield running


def directory_fields(slapd: ldapserver.Directory, **overrides: Any) -> dict[str, Any]:
    base = ldapserver.BASE
    return {
        "kind": "openldap",
        "host": slapd.host,
        "port": slapd.ldaps_port,
        "security": "ldaps",
        "ca_certificate": slapd.ca_pem,
        "bind_dn": ldapserver.SERVICE_DN,
        "password": ldapserver.SERVICE_PASSWORD,
        "base_dn": base,
        "allowed_ous": [f"ou=Staff,ou=People,{base}"],
        "protected_groups": [f"cn=Domain Admins,ou=Groups,{base}"],
        "allowed_groups": [f"cn=VPN Users,ou=Groups,{base}"],
        "new_accounts_ou": f"ou=Staff,ou=People,{base}",
    } | overrides


@pytest.fixture
def acme_directory(slapd: ldapserver.Directory, cast: Cast) -> Directory:
    return services.directory_create(
        actor=cast.admin, organization=cast.acme, **directory_fields(slapd)
    )
