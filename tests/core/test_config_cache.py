"""The per-process configuration cache and its shared token."""

from __future__ import annotations

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast, make_ticket
from tierdesk.core import clock, config
from tierdesk.tiers.models import RoutingRule
from tierdesk.tiers.routing import rules_for
from tierdesk.tiers.services import tier_by_code


def test_a_value_is_loaded_once_until_the_token_moves(cast: Cast) -> None:
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert config.cached("t.count", load) == 1
    assert config.cached("t.count", load) == 1
    config.changed()
    assert config.cached("t.count", load) == 2


def test_saving_a_watched_model_reaches_the_next_ticket(cast: Cast) -> None:
    assert rules_for(cast.acme.pk) == []
    now = clock.now()
    RoutingRule.objects.create(
        organization=cast.acme, name="vpn", position=1, conditions={"keywords": ["vpn"]},
        set_tier=tier_by_code("L2"), created_at=now, updated_at=now,
    )  # fmt: skip
    assert [r.name for r in rules_for(cast.acme.pk)] == ["vpn"]
    assert make_ticket(cast.lena, cast.acme, cast.alice, subject="VPN down").tier.code == "L2"
    RoutingRule.objects.filter(name="vpn").delete()
    assert rules_for(cast.acme.pk) == []


def test_a_rolled_back_change_does_not_leave_a_stale_cache(cast: Cast) -> None:
    before = config.current_token()
    now = clock.now()
    try:
        with transaction.atomic():
            RoutingRule.objects.create(
                organization=cast.acme, name="gone", position=1, set_tier=tier_by_code("L3"),
                created_at=now, updated_at=now,
            )  # fmt: skip
            assert [r.name for r in rules_for(cast.acme.pk)] == ["gone"]
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert config.current_token() == before
    assert rules_for(cast.acme.pk) == [], "the cache loaded inside the rolled-back block"


def test_a_pinned_block_reads_the_token_once_and_follows_its_own_changes(cast: Cast) -> None:
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    with config.pinned():
        with CaptureQueriesContext(connection) as ctx:
            first = config.cached("t.pinned", load)
            assert config.cached("t.pinned", load) == first
            with config.pinned():  # nested: shares the outer read
                assert config.cached("t.pinned", load) == first
        assert ctx.captured_queries == []  # the one token read happened on entry
        config.changed()
        assert config.cached("t.pinned", load) == first + 1, "a change inside the block is seen"
    # Outside, the token is read again (and matches the change just made).
    with CaptureQueriesContext(connection) as ctx:
        assert config.cached("t.pinned", load) == first + 1
    assert len(ctx.captured_queries) == 1
