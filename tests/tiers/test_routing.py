"""Routing on intake: ordered rules (organization's, then MSP-wide), first match wins, the
category default and the lowest tier as fallbacks; and the validation of rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Cast, make_ticket
from tierdesk.core.errors import PermissionDenied, ValidationFailed
from tierdesk.core.models import AuditEntry, OutboxEvent, User
from tierdesk.tickets.models import Ticket, TimelineEntry
from tierdesk.tiers import routing
from tierdesk.tiers.models import Category, RoutingRule
from tierdesk.tiers.services import (
    RuleConditions,
    category_create,
    routing_rule_create,
    routing_rule_delete,
    routing_rule_update,
    tier_by_code,
)

CONDITION_NAMES = ("categories", "organizations", "requesters", "priorities", "sources", "keywords")


def cat(slug: str) -> Category:
    return Category.objects.get(slug=slug, organization__isnull=True)


def make_rule(actor: User, name: str, **kw: Any) -> RoutingRule:
    """A rule through the service; condition lists given by their names."""
    conditions = RuleConditions(**{k: kw.pop(k) for k in list(kw) if k in CONDITION_NAMES})
    return routing_rule_create(actor=actor, name=name, conditions=conditions, **kw)


def routed_note(ticket: Ticket) -> str:
    return TimelineEntry.objects.get(ticket=ticket, kind="routed").new_value


def tag_names(ticket: Ticket) -> list[str]:
    return sorted(ticket.tags.values_list("name", flat=True))


def written() -> tuple[int, int, int]:
    return (RoutingRule.objects.count(), AuditEntry.objects.count(), OutboxEvent.objects.count())


# --- order -----------------------------------------------------------------------------------


def test_organization_rules_are_checked_before_msp_wide_ones(cast: Cast) -> None:
    make_rule(cast.admin, "global first by position", position=0, tier=tier_by_code("L3"))
    mine = make_rule(
        cast.manager, "acme late", organization=cast.acme, position=500, tier=tier_by_code("L2")
    )
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    assert ticket.tier.code == "L2"
    assert f"#{mine.pk}" in routed_note(ticket)
    # Another organization's rule never applies: GLOBEX gets the MSP-wide one.
    other = make_ticket(cast.gus, cast.globex, cast.gerd)
    assert other.tier.code == "L3"


def test_within_a_scope_position_decides_and_the_first_match_wins(cast: Cast) -> None:
    second = make_rule(
        cast.manager, "second", organization=cast.acme, position=20, tier=tier_by_code("L3")
    )
    first = make_rule(
        cast.manager, "first", organization=cast.acme, position=10, tier=tier_by_code("L2"),
        tags=["first"],
    )  # fmt: skip
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    assert ticket.tier.code == "L2"
    assert tag_names(ticket) == ["first"]  # the later rule's actions are not merged in
    decision = routing.route(
        routing.Sample(cast.acme.pk, None, "P3", "api", cast.alice.pk, "x"),
        routing.rules_for(cast.acme.pk),
    )
    assert decision.rule == first
    assert [t.rule for t in decision.trace] == [first]  # checking stops at the first match
    routing_rule_update(actor=cast.manager, rule=first, position=30)
    assert make_ticket(cast.lena, cast.acme, cast.alice).tier.code == "L3"
    assert routing.rules_for(cast.acme.pk) == [second, RoutingRule.objects.get(pk=first.pk)]


def test_a_rule_without_position_goes_last_in_its_scope(cast: Cast) -> None:
    a = make_rule(cast.manager, "a", organization=cast.acme, tier=tier_by_code("L2"))
    b = make_rule(cast.manager, "b", organization=cast.acme, tier=tier_by_code("L3"))
    g = make_rule(cast.admin, "g", tier=tier_by_code("L3"))
    assert a.position < b.position
    assert routing.rules_for(cast.acme.pk) == [a, b, g]
    assert routing.rules_for(cast.globex.pk) == [g]


def test_inactive_rules_are_ignored(cast: Cast) -> None:
    make_rule(cast.manager, "off", organization=cast.acme, tier=tier_by_code("L3"), is_active=False)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    assert ticket.tier.code == "L1"
    assert "lowest tier" in routed_note(ticket)
    rule = RoutingRule.objects.get()
    routing_rule_update(actor=cast.manager, rule=rule, is_active=True)
    assert make_ticket(cast.lena, cast.acme, cast.alice).tier.code == "L3"


# --- conditions ------------------------------------------------------------------------------


def test_category_condition(cast: Cast) -> None:
    make_rule(
        cast.manager, "mail", organization=cast.acme, categories=[cat("email")],
        tier=tier_by_code("L3"),
    )  # fmt: skip
    assert make_ticket(cast.lena, cast.acme, cast.alice, category=cat("email")).tier.code == "L3"
    assert make_ticket(cast.lena, cast.acme, cast.alice, category=cat("hardware")).tier.code == "L1"
    assert make_ticket(cast.lena, cast.acme, cast.alice).tier.code == "L1"


def test_organization_condition_of_an_msp_wide_rule(cast: Cast) -> None:
    make_rule(cast.admin, "globex only", organizations=[cast.globex], tier=tier_by_code("L3"))
    assert make_ticket(cast.gus, cast.globex, cast.gerd).tier.code == "L3"
    assert make_ticket(cast.lena, cast.acme, cast.alice).tier.code == "L1"


def test_priority_condition_sees_the_matrix_priority(cast: Cast) -> None:
    make_rule(
        cast.manager, "urgent", organization=cast.acme, priorities=["P1"], tier=tier_by_code("L3")
    )
    # impact 1 x urgency 1 -> P1 by the matrix
    assert make_ticket(cast.lena, cast.acme, cast.alice, impact=1, urgency=1).tier.code == "L3"
    # the category's defaults feed the matrix too: security is impact 1, urgency 1
    security = make_ticket(cast.alice, cast.acme, subject="phish", category=cat("security"))
    assert (security.priority, security.tier.code) == ("P1", "L3")
    assert make_ticket(cast.lena, cast.acme, cast.alice, impact=2, urgency=2).tier.code == "L1"
    # an explicit priority is what the rule sees
    explicit = make_ticket(cast.lena, cast.acme, cast.alice, impact=3, urgency=3, priority="P1")
    assert explicit.tier.code == "L3"


def test_source_condition(cast: Cast) -> None:
    make_rule(
        cast.manager, "alerts", organization=cast.acme, sources=["monitoring"],
        tier=tier_by_code("L2"),
    )  # fmt: skip
    assert make_ticket(cast.lena, cast.acme, cast.alice, source="monitoring").tier.code == "L2"
    assert make_ticket(cast.lena, cast.acme, cast.alice, source="email").tier.code == "L1"


def test_requester_condition(cast: Cast) -> None:
    make_rule(
        cast.manager, "vip", organization=cast.acme, requesters=[cast.bob], tier=tier_by_code("L3")
    )
    assert make_ticket(cast.lena, cast.acme, cast.bob).tier.code == "L3"
    assert make_ticket(cast.bob, cast.acme).tier.code == "L3"  # requester opening their own
    assert make_ticket(cast.lena, cast.acme, cast.alice).tier.code == "L1"


@pytest.mark.parametrize(
    ("subject", "description", "matches"),
    [
        ("VPN is down", "", True),
        ("vpn is down", "", True),
        ("Cannot connect", "the Vpn client says no", True),
        ("Cannot connect", "", False),
        ("ransomware!", "", True),  # any of the keywords
        ("RANSOMWARE", "", True),
    ],
)
def test_keyword_condition_in_subject_or_body_any_case(
    cast: Cast, subject: str, description: str, matches: bool
) -> None:
    make_rule(
        cast.manager, "kw", organization=cast.acme, keywords=["VPN", "Ransomware"],
        tier=tier_by_code("L3"),
    )  # fmt: skip
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject=subject, description=description)
    assert (ticket.tier.code == "L3") is matches


def test_condition_kinds_combine_with_and(cast: Cast) -> None:
    make_rule(
        cast.manager, "both", organization=cast.acme, categories=[cat("email")],
        keywords=["outage"], sources=["email", "phone"], tier=tier_by_code("L3"),
    )  # fmt: skip

    def tier(**kw: Any) -> str:
        return make_ticket(cast.lena, cast.acme, cast.alice, **kw).tier.code

    assert tier(category=cat("email"), subject="Mail outage", source="phone") == "L3"
    assert tier(category=cat("email"), subject="Mail outage", source="api") == "L1"
    assert tier(category=cat("email"), subject="Mail slow", source="email") == "L1"
    assert tier(category=cat("hardware"), subject="outage", source="email") == "L1"
    decision = routing.route(
        routing.Sample(cast.acme.pk, cat("email"), "P3", "api", cast.alice.pk, "outage"),
        routing.rules_for(cast.acme.pk),
    )
    (trace,) = decision.trace
    assert not trace.matched
    assert {c.condition: c.holds for c in trace.checks} == {
        "categories": True,
        "sources": False,
        "keywords": True,
    }


# --- actions ---------------------------------------------------------------------------------


def test_actions_apply_on_create(cast: Cast) -> None:
    rule = make_rule(
        cast.manager, "network gear", organization=cast.acme, keywords=["switch"],
        tier=tier_by_code("L2"), category=cat("network"), priority="P2", assignee=cast.omar,
        tags=["Network", "hardware-vendor"],
    )  # fmt: skip
    ticket = make_ticket(cast.alice, cast.acme, subject="The switch is blinking")
    assert ticket.tier.code == "L2"
    assert ticket.category == cat("network")
    assert ticket.priority == "P2"
    assert ticket.assignee == cast.omar
    assert tag_names(ticket) == ["hardware-vendor", "network"]
    note = routed_note(ticket)
    assert "network gear" in note
    assert f"#{rule.pk}" in note
    created = OutboxEvent.objects.get(name="ticket.created", aggregate_id=str(ticket.pk))
    assert created.payload["routing_rule_id"] == rule.pk


def test_a_rule_category_brings_its_default_tier_when_no_tier_is_set(cast: Cast) -> None:
    make_rule(
        cast.manager, "to network", organization=cast.acme, keywords=["wifi"],
        category=cat("network"),
    )  # fmt: skip
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="wifi", category=cat("email"))
    assert ticket.category == cat("network")
    assert ticket.tier.code == "L2"  # network's default tier, not email's L1
    assert (ticket.impact, ticket.urgency) == (2, 2)


def test_a_rule_with_only_tags_keeps_the_category_default_tier(cast: Cast) -> None:
    make_rule(cast.manager, "tag it", organization=cast.acme, tags=["acme"])
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, category=cat("server"))
    assert ticket.tier.code == "L2"
    assert tag_names(ticket) == ["acme"]
    assert make_ticket(cast.lena, cast.acme, cast.alice).tier.code == "L1"


def test_a_rule_priority_sets_the_ticket_priority(cast: Cast) -> None:
    make_rule(cast.manager, "p1", organization=cast.acme, keywords=["fire"], priority="P1")
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, subject="fire!", impact=3, urgency=3)
    assert ticket.priority == "P1"
    plain = make_ticket(cast.lena, cast.acme, cast.alice, subject="calm", impact=3, urgency=3)
    assert plain.priority == "P4"


def test_an_msp_wide_rule_assignee_who_does_not_serve_the_organization_is_skipped(
    cast: Cast,
) -> None:
    make_rule(cast.admin, "to gus", tier=tier_by_code("L1"), assignee=cast.gus)
    globex = make_ticket(cast.gerd, cast.globex)
    assert globex.assignee == cast.gus
    acme = make_ticket(cast.alice, cast.acme)
    assert acme.assignee is None
    assert "cannot take it" in routed_note(acme)


# --- explicit creator values win -------------------------------------------------------------


def test_explicit_tier_assignee_and_priority_of_staff_win(cast: Cast) -> None:
    make_rule(
        cast.manager, "everything", organization=cast.acme, tier=tier_by_code("L2"),
        priority="P1", assignee=cast.omar, tags=["ruled"],
    )  # fmt: skip
    ticket = make_ticket(
        cast.lena, cast.acme, cast.alice, tier=tier_by_code("L3"), priority="P4",
        assignee=cast.manager,
    )  # fmt: skip
    assert ticket.tier.code == "L3"
    assert ticket.priority == "P4"
    assert ticket.assignee == cast.manager
    assert tag_names(ticket) == ["ruled"]  # what the creator did not set still applies
    assert routed_note(ticket).startswith("tier L3 set by the creator")


def test_an_explicit_tier_is_not_paired_with_the_rule_assignee_of_another_tier(
    cast: Cast,
) -> None:
    """A rule routing to L2 and handing the ticket to omar (L2); the creator puts it in L1.
    The rule's assignee belongs to the tier the creator overrode: the ticket must not end up
    in L1 assigned to an L2 agent (the very contradiction rule validation refuses)."""
    make_rule(
        cast.manager, "to omar", organization=cast.acme, tier=tier_by_code("L2"),
        assignee=cast.omar,
    )  # fmt: skip
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, tier=tier_by_code("L1"))
    assert ticket.tier.code == "L1"
    assert ticket.assignee != cast.omar


# --- fallbacks -------------------------------------------------------------------------------


def test_without_a_match_the_category_default_then_the_lowest_tier(cast: Cast) -> None:
    make_rule(
        cast.manager, "never", organization=cast.acme, keywords=["zzz"], tier=tier_by_code("L3")
    )
    by_category = make_ticket(cast.lena, cast.acme, cast.alice, category=cat("backup"))
    assert by_category.tier.code == "L2"
    assert routed_note(by_category) == "category default routed to L2"
    plain = make_ticket(cast.lena, cast.acme, cast.alice)
    assert plain.tier.code == "L1"
    assert routed_note(plain) == "lowest tier routed to L1"


def test_the_routed_entry_names_the_rule(cast: Cast) -> None:
    rule = make_rule(cast.manager, "Printers", organization=cast.acme, tier=tier_by_code("L2"))
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    entry = TimelineEntry.objects.get(ticket=ticket, kind="routed")
    assert entry.field == "tier"
    assert entry.new_value == f"rule 'Printers' (#{rule.pk}) routed to L2"


def test_route_trace_explains_each_check(cast: Cast) -> None:
    miss = make_rule(
        cast.manager, "miss", organization=cast.acme, requesters=[cast.bob], tier=tier_by_code("L3")
    )
    hit = make_rule(cast.admin, "hit", sources=["api"], tier=tier_by_code("L2"))
    decision = routing.route(
        routing.Sample(cast.acme.pk, None, "P3", "api", cast.alice.pk, "x"),
        routing.rules_for(cast.acme.pk),
    )
    out = routing.trace_out(decision)
    assert [(t["rule_id"], t["scope"], t["matched"]) for t in out] == [
        (miss.pk, "organization", False),
        (hit.pk, "global", True),
    ]
    assert out[0]["checks"] == [
        {
            "condition": "requesters",
            "wanted": [cast.bob.pk],
            "actual": cast.alice.pk,
            "holds": False,
        }
    ]


# --- validation ------------------------------------------------------------------------------


@pytest.fixture
def globex_category(cast: Cast) -> Category:
    return category_create(
        actor=None, slug="globex-erp", name="Globex ERP", organization=cast.globex,
        default_tier=tier_by_code("L2"),
    )  # fmt: skip


def _refused(field: str, **kw: Any) -> None:
    before = written()
    with pytest.raises(ValidationFailed) as info:
        make_rule(**kw)
    assert [e.field for e in info.value.errors] == [field], info.value.detail
    assert written() == before


def test_refuses_another_organizations_category(cast: Cast, globex_category: Category) -> None:
    _refused(
        "conditions.categories", actor=cast.manager, name="r", organization=cast.acme,
        categories=[globex_category], tier=tier_by_code("L2"),
    )  # fmt: skip
    _refused(
        "actions.category", actor=cast.admin, name="r", organization=cast.acme,
        category=globex_category,
    )  # fmt: skip
    # MSP-wide rules may not name one client's category either
    _refused(
        "actions.category", actor=cast.admin, name="r", category=globex_category,
    )  # fmt: skip


def test_refuses_another_organizations_requester(cast: Cast) -> None:
    _refused(
        "conditions.requesters", actor=cast.manager, name="r", organization=cast.acme,
        requesters=[cast.gerd], tier=tier_by_code("L2"),
    )  # fmt: skip
    _refused(  # staff are not requesters
        "conditions.requesters", actor=cast.manager, name="r", organization=cast.acme,
        requesters=[cast.lena], tier=tier_by_code("L2"),
    )  # fmt: skip


def test_refuses_an_assignee_who_does_not_serve_the_organization(cast: Cast) -> None:
    _refused(
        "actions.assignee", actor=cast.manager, name="r", organization=cast.acme,
        assignee=cast.gus,
    )  # fmt: skip
    _refused(
        "actions.assignee", actor=cast.manager, name="r", organization=cast.acme,
        assignee=cast.alice,
    )  # fmt: skip


def test_refuses_a_rule_without_an_action(cast: Cast) -> None:
    _refused("actions", actor=cast.manager, name="r", organization=cast.acme, keywords=["x"])
    _refused("actions", actor=cast.admin, name="r")


def test_refuses_unknown_priorities_and_sources(cast: Cast) -> None:
    base = {"actor": cast.manager, "name": "r", "organization": cast.acme, "tags": ["t"]}
    _refused("conditions.priorities", priorities=["P9"], **base)
    _refused("conditions.sources", sources=["pigeon"], **base)
    _refused("actions.priority", priority="P0", **base)


def test_refuses_an_assignee_of_another_tier_than_the_rule_routes_to(cast: Cast) -> None:
    _refused(
        "actions.assignee", actor=cast.manager, name="r", organization=cast.acme,
        tier=tier_by_code("L2"), assignee=cast.lena,
    )  # fmt: skip
    # the target tier may come from the rule's category (network -> L2)
    _refused(
        "actions.assignee", actor=cast.manager, name="r", organization=cast.acme,
        category=cat("network"), assignee=cast.lena,
    )  # fmt: skip
    ok = make_rule(
        cast.manager, "ok", organization=cast.acme, tier=tier_by_code("L2"), assignee=cast.omar
    )
    # and an update cannot make it contradictory either
    before = written()
    with pytest.raises(ValidationFailed) as info:
        routing_rule_update(actor=cast.manager, rule=ok, tier=tier_by_code("L1"))
    assert [e.field for e in info.value.errors] == ["actions.assignee"]
    assert written() == before
    assert RoutingRule.objects.get(pk=ok.pk).set_tier == tier_by_code("L2")


def test_refuses_organization_conditions_on_an_organization_rule(cast: Cast) -> None:
    _refused(
        "conditions.organizations", actor=cast.manager, name="r", organization=cast.acme,
        organizations=[cast.acme], tags=["t"],
    )  # fmt: skip


def test_refuses_too_long_lists_and_bad_names(cast: Cast) -> None:
    base = {"actor": cast.manager, "organization": cast.acme, "tags": ["t"]}
    _refused("conditions.keywords", name="r", keywords=[f"k{i}" for i in range(51)], **base)
    _refused("conditions.keywords", name="r", keywords=["  "], **base)
    _refused("name", name="   ", **base)
    _refused("actions.tags", actor=cast.manager, organization=cast.acme, name="r", tags=[""])


def test_a_manager_may_not_create_msp_wide_rules(cast: Cast) -> None:
    before = written()
    with pytest.raises(PermissionDenied):
        make_rule(cast.manager, "global", tier=tier_by_code("L2"))
    assert written() == before


def test_a_manager_may_not_create_rules_for_organizations_they_do_not_serve(cast: Cast) -> None:
    before = written()
    with pytest.raises(ValidationFailed) as info:
        make_rule(cast.manager, "globex", organization=cast.globex, tier=tier_by_code("L2"))
    assert [e.field for e in info.value.errors] == ["organization"]
    assert written() == before


@pytest.mark.parametrize("who", ["lena", "omar", "alice", "outsider"])
def test_agents_and_requesters_may_not_create_rules(cast: Cast, who: str) -> None:
    before = written()
    with pytest.raises(PermissionDenied):
        make_rule(getattr(cast, who), "mine", organization=cast.acme, tier=tier_by_code("L2"))
    assert written() == before


def test_manager_may_not_change_or_delete_msp_wide_rules(cast: Cast) -> None:
    shared = make_rule(cast.admin, "shared", tier=tier_by_code("L2"))
    before = written()
    with pytest.raises(PermissionDenied):
        routing_rule_update(actor=cast.manager, rule=shared, name="mine now")
    with pytest.raises(PermissionDenied):
        routing_rule_delete(actor=cast.manager, rule=shared)
    assert written() == before
    assert RoutingRule.objects.get(pk=shared.pk).name == "shared"


def test_create_update_delete_are_audited(cast: Cast) -> None:
    rule = make_rule(cast.manager, "r", organization=cast.acme, tags=["a"])
    routing_rule_update(actor=cast.manager, rule=rule, tags=["b"])
    routing_rule_update(actor=cast.manager, rule=rule, tags=["b"])  # no change: no record
    routing_rule_delete(actor=cast.manager, rule=rule)
    actions = list(
        AuditEntry.objects.filter(target_type="routing_rule")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["routing_rule.created", "routing_rule.updated", "routing_rule.deleted"]
    assert not RoutingRule.objects.exists()


def test_a_rule_assignee_is_not_given_a_ticket_of_another_tier(cast: Cast) -> None:
    """A rule with an assignee but no tier is valid (nothing to contradict at creation), but
    the ticket's tier then comes from its category: lena (L1) must not receive a network
    ticket that went to L2."""
    make_rule(cast.manager, "printers to lena", organization=cast.acme, assignee=cast.lena)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice, category=cat("network"))
    assert ticket.tier.code == "L2"
    assert ticket.assignee != cast.lena


def test_a_rule_does_not_put_new_tickets_in_an_inactive_category(cast: Cast) -> None:
    """An inactive category "takes no new tickets" (category_update); a rule written while it
    was active must not route new tickets into it."""
    from tierdesk.tiers.services import category_update

    make_rule(cast.manager, "to email", organization=cast.acme, category=cat("email"))
    category_update(actor=cast.admin, category=cat("email"), is_active=False)
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    assert ticket.category != cat("email")
