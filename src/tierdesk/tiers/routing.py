"""Routing on intake: which tier (and category, priority, assignee, tags) a new ticket gets.

Rules are checked in order — the organization's own rules first, then the MSP-wide ones,
each by position — and the first rule whose conditions all hold decides. Without a match
the category's default tier applies, and without a category the lowest tier. What the
creator set explicitly (a staff member choosing a tier or an assignee) is never overridden.

``route`` explains itself: every rule checked and, for each condition, what it wanted and
what the ticket had. The dry-run API and CLI print exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tierdesk.core import config
from tierdesk.tiers.models import Category, RoutingRule, Tier

CONDITION_KEYS = ("categories", "organizations", "requesters", "priorities", "sources", "keywords")


@dataclass(frozen=True)
class Sample:
    """What routing looks at: a ticket about to be created (or a made-up one, dry-run)."""

    organization_id: int
    category: Category | None
    priority: str
    source: str
    requester_id: int | None
    subject: str
    description: str = ""


@dataclass(frozen=True)
class Check:
    condition: str
    wanted: list[Any]
    actual: Any
    holds: bool


@dataclass(frozen=True)
class RuleTrace:
    rule: RoutingRule
    matched: bool
    checks: list[Check]


@dataclass
class Decision:
    tier: Tier | None
    category: Category | None
    priority: str | None  # set by a rule; None: the matrix (or the creator) decides
    assignee_id: int | None
    tags: list[str]
    rule: RoutingRule | None
    via: str  # "rule", "category default" or "lowest tier"
    sample: Sample
    trace: list[RuleTrace] = field(default_factory=list)

    def summary(self) -> str:
        tier = self.tier.code if self.tier else "?"
        if self.rule is not None:
            return f"rule {self.rule.name!r} (#{self.rule.pk}) routed to {tier}"
        return f"{self.via} routed to {tier}"


def _check(rule: RoutingRule, sample: Sample) -> list[Check]:
    conditions: dict[str, list[Any]] = rule.conditions or {}
    checks = []
    text = f"{sample.subject}\n{sample.description}".casefold()
    for key in CONDITION_KEYS:
        wanted = conditions.get(key) or []
        if not wanted:
            continue
        if key == "categories":
            actual: Any = sample.category.pk if sample.category else None
            holds = actual in wanted
        elif key == "organizations":
            actual, holds = sample.organization_id, sample.organization_id in wanted
        elif key == "requesters":
            actual, holds = sample.requester_id, sample.requester_id in wanted
        elif key == "priorities":
            actual, holds = sample.priority, sample.priority in wanted
        elif key == "sources":
            actual, holds = sample.source, sample.source in wanted
        else:
            found = [word for word in wanted if word.casefold() in text]
            actual, holds = found, bool(found)
        checks.append(Check(key, list(wanted), actual, holds))
    return checks


def _active_rules() -> list[RoutingRule]:
    # Tiers are read fresh per decision (their assignment strategy matters); the category a
    # rule sets comes with its default tier.
    return list(
        RoutingRule.objects.filter(is_active=True).select_related(
            "set_category", "set_category__default_tier"
        )
    )


def rules_for(organization_id: int) -> list[RoutingRule]:
    """Active rules in the order they are checked: the organization's, then MSP-wide.
    Read from the per-process configuration cache."""
    rules = [
        r
        for r in config.cached("routing.rules", _active_rules)
        if r.organization_id in (None, organization_id)
    ]
    rules.sort(key=lambda r: (r.organization_id is None, r.position, r.pk))
    return rules


def lowest_tier() -> Tier | None:
    return Tier.objects.order_by("level").first()


def route(sample: Sample, rules: list[RoutingRule]) -> Decision:
    """Decide where ``sample`` goes. Reads no more than the rules it is given and, when no
    rule and no category decides, the lowest tier."""
    trace: list[RuleTrace] = []
    for rule in rules:
        checks = _check(rule, sample)
        matched = all(c.holds for c in checks)
        trace.append(RuleTrace(rule, matched, checks))
        if matched:
            # A category retired after the rule was written takes no new tickets.
            ruled = rule.set_category if rule.set_category and rule.set_category.is_active else None
            category = ruled or sample.category
            tier = (
                Tier.objects.filter(pk=rule.set_tier_id).first()
                if rule.set_tier_id
                else (category.default_tier if category else None)
            )
            return Decision(
                tier=tier or lowest_tier(),
                category=category,
                priority=rule.set_priority or None,
                assignee_id=rule.set_assignee_id,
                tags=list(rule.add_tags or []),
                rule=rule,
                via="rule",
                sample=sample,
                trace=trace,
            )
    if sample.category is not None:
        return Decision(
            sample.category.default_tier, sample.category, None, None, [], None,
            "category default", sample, trace,
        )  # fmt: skip
    return Decision(lowest_tier(), None, None, None, [], None, "lowest tier", sample, trace)


def trace_out(decision: Decision) -> list[dict[str, Any]]:
    """The trace as plain data (API, CLI --json)."""
    return [
        {
            "rule_id": t.rule.pk,
            "rule": t.rule.name,
            "scope": "organization" if t.rule.organization_id else "global",
            "position": t.rule.position,
            "matched": t.matched,
            "checks": [
                {"condition": c.condition, "wanted": c.wanted, "actual": c.actual, "holds": c.holds}
                for c in t.checks
            ],
        }
        for t in decision.trace
    ]
