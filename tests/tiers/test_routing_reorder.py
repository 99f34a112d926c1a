"""Reordering one scope's routing rules: all of them at once, atomically, and never on top
of an order that changed meanwhile."""

from __future__ import annotations

import pytest

from tests.conftest import Cast
from tierdesk.core.errors import Conflict, PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent, User
from tierdesk.tiers import routing
from tierdesk.tiers.models import RoutingRule
from tierdesk.tiers.services import routing_rule_create, routing_rule_reorder, tier_by_code

pytestmark = pytest.mark.django_db


def rule(actor: User, name: str, org: object, tier: str = "L2") -> RoutingRule:
    return routing_rule_create(
        actor=actor,
        name=name,
        organization=org,
        tier=tier_by_code(tier),  # type: ignore[arg-type]
    )


def order(org: object) -> list[str]:
    return list(
        RoutingRule.objects.filter(organization=org)
        .order_by("position", "id")
        .values_list("name", flat=True)
    )


def test_it_rewrites_positions_in_the_given_order_and_routing_follows(cast: Cast) -> None:
    a = rule(cast.manager, "a", cast.acme, "L2")
    b = rule(cast.manager, "b", cast.acme, "L3")
    c = rule(cast.manager, "c", cast.acme, "L1")
    last = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    routed = routing_rule_reorder(
        actor=cast.manager, organization=cast.acme, rule_ids=[c.pk, a.pk, b.pk],
        expected=[a.pk, b.pk, c.pk],
    )  # fmt: skip
    assert [r.name for r in routed] == ["c", "a", "b"]
    assert order(cast.acme) == ["c", "a", "b"]
    assert [r.position for r in RoutingRule.objects.order_by("position")] == [10, 20, 30]
    # Every moved rule (all three: c 30->10, a 10->20, b 20->30) is audited and announced
    # with its old and new position.
    entries = list(AuditEntry.objects.filter(id__gt=last))
    assert len(entries) == 3
    assert {e.action for e in entries} == {"routing_rule.updated"}
    assert all(set(e.changes) == {"position"} for e in entries)
    assert OutboxEvent.objects.filter(name="routing_rule.updated").count() == 3
    decision = routing.route(
        routing.Sample(cast.acme.pk, None, "P3", "api", cast.alice.pk, "x"),
        routing.rules_for(cast.acme.pk),
    )
    assert decision.rule is not None
    assert decision.rule.name == "c"


def test_a_stale_expected_order_is_refused_and_nothing_moves(cast: Cast) -> None:
    a = rule(cast.manager, "a", cast.acme)
    b = rule(cast.manager, "b", cast.acme)
    positions = list(RoutingRule.objects.values_list("id", "position"))
    with pytest.raises(Conflict):
        routing_rule_reorder(
            actor=cast.manager, organization=cast.acme, rule_ids=[a.pk, b.pk],
            expected=[b.pk, a.pk],
        )  # fmt: skip
    assert list(RoutingRule.objects.values_list("id", "position")) == positions


def test_a_list_that_is_not_exactly_the_scopes_rules_is_refused(cast: Cast) -> None:
    a = rule(cast.manager, "a", cast.acme)
    b = rule(cast.manager, "b", cast.acme)
    c = rule(cast.manager, "c", cast.acme)
    other = rule(cast.admin, "globex", cast.globex)
    wrong: list[list[int]] = [
        [a.pk, b.pk],  # one missing (added meanwhile)
        [a.pk, b.pk, c.pk, other.pk],  # another scope's rule
        [a.pk, a.pk, b.pk, c.pk],  # twice
        [a.pk, b.pk, b.pk],  # twice, right length
    ]
    for ids in wrong:
        with pytest.raises(Conflict):
            routing_rule_reorder(actor=cast.manager, organization=cast.acme, rule_ids=ids)
    assert order(cast.acme) == ["a", "b", "c"]


def test_only_admins_reorder_msp_wide_rules_and_managers_only_their_organizations(
    cast: Cast,
) -> None:
    g1 = rule(cast.admin, "g1", None)
    g2 = rule(cast.admin, "g2", None)
    with pytest.raises(PermissionDenied):
        routing_rule_reorder(actor=cast.manager, organization=None, rule_ids=[g2.pk, g1.pk])
    x = rule(cast.admin, "x", cast.globex)
    with pytest.raises(ValidationFailed):  # GLOBEX is not the manager's: "no such"
        routing_rule_reorder(actor=cast.manager, organization=cast.globex, rule_ids=[x.pk])
    with pytest.raises(PermissionDenied):
        routing_rule_reorder(actor=cast.lena, organization=cast.acme, rule_ids=[])
    routing_rule_reorder(actor=cast.admin, organization=None, rule_ids=[g2.pk, g1.pk])
    assert order(None) == ["g2", "g1"]


def test_an_unchanged_order_writes_nothing(cast: Cast) -> None:
    a = rule(cast.manager, "a", cast.acme)
    b = rule(cast.manager, "b", cast.acme)
    counts = (AuditEntry.objects.count(), OutboxEvent.objects.count())
    routing_rule_reorder(actor=cast.manager, organization=cast.acme, rule_ids=[a.pk, b.pk])
    assert (AuditEntry.objects.count(), OutboxEvent.objects.count()) == counts
