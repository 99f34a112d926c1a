"""The per-process configuration cache and its shared token."""

from __future__ import annotations

from collections.abc import Callable

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


def test_an_article_change_reloads_the_knowledge_bases_caches_only(cast: Cast) -> None:
    """Articles are watched for the "kb" group: saving one reloads the caches named
    "kb.…" (the search vocabulary), never the shared configuration's (routing rules, SLA
    targets, tiers), and a configuration change leaves the kb caches alone."""
    from tierdesk.kb import services as kb_services

    loads = {"config": 0, "kb": 0}

    def load(group: str) -> Callable[[], int]:
        def count() -> int:
            loads[group] += 1
            return loads[group]

        return count

    assert config.group_of("kb.vocabulary") == "kb"
    assert config.group_of("routing.rules") == config.group_of("t.config") == "config"
    assert config.current_token("kb") != ""  # made after migrating: trusted from the start
    assert config.cached("t.config", load("config")) == 1
    assert config.cached("kb.t", load("kb")) == 1
    shared = config.current_token()

    article = kb_services.article_create(
        actor=cast.lena, title="Printer offline", body="Restart the spooler.", audience="public"
    )
    kb_services.article_update(actor=cast.lena, article=article, tags=["printer"])  # m2m too
    assert config.current_token() == shared
    assert config.cached("t.config", load("config")) == 1, "an article reloaded the config"
    assert config.cached("kb.t", load("kb")) == 2

    RoutingRule.objects.create(
        organization=cast.acme, name="vpn", position=1, set_tier=tier_by_code("L2"),
        created_at=clock.now(), updated_at=clock.now(),
    )  # fmt: skip
    assert config.cached("t.config", load("config")) == 2
    assert config.cached("kb.t", load("kb")) == 2, "a routing rule reloaded the kb caches"
    config.changed("kb")
    assert config.cached("kb.t", load("kb")) == 3

    # pinned: one query reads every group's token
    with CaptureQueriesContext(connection) as ctx, config.pinned():
        config.cached("t.config", load("config"))
        config.cached("kb.t", load("kb"))
    assert len(ctx.captured_queries) == 1
