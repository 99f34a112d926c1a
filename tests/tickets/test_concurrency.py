"""Concurrent writers on a real database: numbers stay gap-free and unique, a retried create
with one Idempotency-Key makes one ticket, and a concurrent stale update is refused."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import Api, Cast, in_threads, make_ticket
from tierdesk.core.errors import PreconditionFailed
from tierdesk.core.models import User
from tierdesk.tickets import services
from tierdesk.tickets.models import Ticket

# serialized_rollback: these tests commit for real, and the flush afterwards would otherwise
# also remove the default tiers and catalog that a data migration put in place.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_concurrent_creates_get_gap_free_unique_numbers(cast: Cast) -> None:
    if connection.vendor == "sqlite" and "memory" in str(connection.settings_dict["NAME"]):
        pytest.skip("needs a file database shared by threads")

    def create(i: int) -> list[int]:
        return [
            make_ticket(cast.lena, cast.acme, cast.alice, subject=f"t{i}-{n}").number
            for n in range(8)
        ]

    results = in_threads(6, create)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    numbers = sorted(n for r in results for n in r)
    assert numbers == list(range(1, 49))
    assert Ticket.objects.filter(organization=cast.acme).count() == 48


def test_concurrent_retries_with_one_idempotency_key_make_one_ticket(cast: Cast) -> None:
    payload = {"organization": "ACME", "subject": "Only once", "requester": "alice@acme.example"}
    apis = [Api(cast.lena) for _ in range(2)]
    token_user = User.objects.get(pk=cast.lena.pk)
    assert token_user.api_tokens.count() == 2

    def create(i: int) -> tuple[int, str]:
        r = apis[i % 2].post("/tickets", payload, headers={"Idempotency-Key": "same"})
        return r.status_code, r.json().get("key", r.content.decode())

    results = in_threads(6, create)
    assert all(not isinstance(r, Exception) for r in results), results
    assert {r for r in results} == {(201, "ACME-1")}
    assert Ticket.objects.count() == 1


def test_two_agents_editing_at_once_one_wins_the_other_is_told(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)

    def edit(i: int) -> str:
        actor = cast.lena if i == 0 else cast.omar
        try:
            services.ticket_update(
                actor=actor, ticket=ticket, subject=f"by {actor.email}", expected_version=1
            )
        except PreconditionFailed:
            return "refused"
        return "won"

    results = in_threads(2, edit)
    assert sorted(results) == ["refused", "won"]
    ticket.refresh_from_db()
    assert ticket.version == 2
