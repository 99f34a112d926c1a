"""Who sees which tickets."""

from __future__ import annotations

import pytest

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import NotFound
from tierdesk.tickets import queries


@pytest.fixture
def tickets(cast: Cast) -> dict[str, str]:
    return {
        "alice": make_ticket(cast.alice, cast.acme).key,
        "bob": make_ticket(cast.bob, cast.acme).key,
        "gerd": make_ticket(cast.gerd, cast.globex).key,
    }


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("admin", {"alice", "bob", "gerd"}),
        ("manager", {"alice", "bob"}),
        ("lena", {"alice", "bob"}),
        ("omar", {"alice", "bob", "gerd"}),
        ("gus", {"gerd"}),
        ("alice", {"alice"}),
        ("bob", {"bob"}),
        ("carol", {"alice", "bob"}),
        ("gerd", {"gerd"}),
        ("outsider", set()),
    ],
)
def test_each_role_sees_exactly_its_tickets(
    cast: Cast, tickets: dict[str, str], who: str, sees: set[str]
) -> None:
    actor = getattr(cast, who)
    listed = {
        t.key for t in queries.ticket_list(actor=actor, filters=queries.TicketFilters()).items
    }
    assert listed == {tickets[name] for name in sees}
    for name, key in tickets.items():
        if name in sees:
            assert queries.ticket_get(actor=actor, ref=key).key == key
        else:
            with pytest.raises(NotFound):
                queries.ticket_get(actor=actor, ref=key)


def test_a_deactivated_user_sees_nothing(cast: Cast, tickets: dict[str, str]) -> None:
    cast.lena.is_active = False
    assert queries.ticket_scope(cast.lena).count() == 0


def test_cursor_pagination_walks_every_ticket_once(cast: Cast) -> None:
    made = {make_ticket(cast.lena, cast.acme, cast.alice, urgency=1 + i % 3).key for i in range(23)}
    for ordering in ("-created_at", "priority", "-number", "updated_at"):
        seen: list[str] = []
        cursor = None
        while True:
            page = queries.ticket_list(
                actor=cast.lena,
                filters=queries.TicketFilters(),
                ordering=ordering,
                cursor=cursor,
                limit=5,
            )
            seen += [t.key for t in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert len(seen) == len(set(seen)) == 23, ordering
        assert set(seen) == made
