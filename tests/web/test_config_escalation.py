"""The automatic escalation rule pages: list, add, change, delete.

The manager serves ACME: they manage ACME's rules, read the MSP-wide ones without
changing them, and find GLOBEX's missing. Agents and requesters find no such pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.escalation.models import EscalationRule
from tierdesk.escalation.services import escalation_rule_create
from tierdesk.tiers.services import tier_by_code

pytestmark = pytest.mark.django_db


@dataclass
class Rules:
    cast: Cast
    msp: EscalationRule
    acme: EscalationRule
    globex: EscalationRule


@pytest.fixture
def rules(cast: Cast) -> Rules:
    l2 = tier_by_code("L2")
    return Rules(
        cast,
        escalation_rule_create(
            actor=cast.admin, name="P1 straight to L2", trigger="priority", priority="P1",
            to_tier=l2,
        ),
        escalation_rule_create(
            actor=cast.admin, name="ACME stuck in L1", trigger="time_in_tier", minutes=120,
            organization=cast.acme, from_tier=tier_by_code("L1"),
        ),
        escalation_rule_create(
            actor=cast.admin, name="Globex reopened", trigger="reopened", count=2,
            organization=cast.globex,
        ),
    )  # fmt: skip


def error_beside(html: str, field: str) -> str:
    match = re.search(rf'<ul class="errorlist"[^>]*id="id_{field}_error">(.*?)</ul>', html, re.S)
    assert match, f"no error beside {field}"
    return re.sub(r"<[^>]+>", " ", match[1]).strip()


def rule_post(rule: EscalationRule, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": rule.name,
        "trigger": rule.trigger,
        "minutes": rule.minutes or "",
        "percent": rule.percent or "",
        "count": rule.count or "",
        "priority": rule.priority,
        "from_tier": rule.from_tier.code if rule.from_tier else "",
        "to_tier": rule.to_tier.code if rule.to_tier else "",
    }
    if rule.is_active:
        data["is_active"] = "on"
    if rule.notify_managers:
        data["notify_managers"] = "on"
    return data | changes


def test_agents_and_requesters_find_none_of_the_pages(rules: Rules) -> None:
    c = rules.cast
    pages = [
        "/console/config/escalation/",
        "/console/config/escalation/new/",
        f"/console/config/escalation/{rules.acme.pk}/",
        f"/console/config/escalation/{rules.acme.pk}/delete/",
    ]
    for user in (c.lena, c.omar, c.gus, c.alice, c.gerd):
        client = signed_in(user)
        for url in pages:
            assert client.get(url).status_code == 404, (user.email, url)
        assert client.post(f"/console/config/escalation/{rules.acme.pk}/delete/").status_code == 404
    assert EscalationRule.objects.filter(pk=rules.acme.pk).exists()


def test_the_manager_lists_msp_wide_and_acme_rules_not_globex(rules: Rules) -> None:
    r = signed_in(rules.cast.manager).get("/console/config/escalation/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "P1 straight to L2" in html
    assert "ACME stuck in L1" in html
    assert "120 minutes in the tier" in html
    assert "Globex reopened" not in html
    # a delete link only where the manager may delete
    assert f"/console/config/escalation/{rules.acme.pk}/delete/" in html
    assert f"/console/config/escalation/{rules.msp.pk}/delete/" not in html
    admin_html = signed_in(rules.cast.admin).get("/console/config/escalation/").content.decode()
    assert "Globex reopened" in admin_html


def test_another_organizations_rule_is_not_found_nor_changed_nor_deleted(rules: Rules) -> None:
    client = signed_in(rules.cast.manager)
    base = f"/console/config/escalation/{rules.globex.pk}/"
    assert client.get(base).status_code == 404
    assert client.post(base, rule_post(rules.globex, name="Mine now")).status_code == 404
    assert client.get(base + "delete/").status_code == 404
    assert client.post(base + "delete/").status_code == 404
    assert EscalationRule.objects.get(pk=rules.globex.pk).name == "Globex reopened"


def new_rule(**changes: Any) -> dict[str, Any]:
    return {
        "name": "ACME P2 slow",
        "organization": "ACME",
        "trigger": "sla_resolution_used",
        "percent": "75",
        "minutes": "",
        "count": "",
        "priority": "P2",
        "from_tier": "",
        "to_tier": "L3",
        "notify_managers": "on",
        "is_active": "on",
    } | changes


def test_a_manager_adds_a_rule_for_their_organization(rules: Rules) -> None:
    client = signed_in(rules.cast.manager)
    form = client.get("/console/config/escalation/new/").content.decode()
    assert '<option value="ACME">' in form
    assert '<option value="GLOBEX">' not in form
    assert "MSP-wide (every organization)" not in form
    # a number typed for another trigger is kept on the page but not used by the rule
    r = client.post("/console/config/escalation/new/", new_rule(minutes="30"))
    assert r.status_code == 302
    rule = EscalationRule.objects.get(name="ACME P2 slow")
    assert (rule.organization, rule.trigger, rule.percent, rule.minutes) == (
        rules.cast.acme, "sla_resolution_used", 75, None,
    )  # fmt: skip
    assert (rule.priority, rule.to_tier.code if rule.to_tier else None) == ("P2", "L3")
    assert rule.notify_managers
    assert "added" in client.get("/console/config/escalation/").content.decode()


def test_a_bad_number_keeps_what_was_typed(rules: Rules) -> None:
    r = signed_in(rules.cast.manager).post(
        "/console/config/escalation/new/", new_rule(percent="most", name="Typed name")
    )
    assert r.status_code == 400
    html = r.content.decode()
    assert 'value="most"' in html
    assert 'value="Typed name"' in html
    assert "whole number" in error_beside(html, "percent")
    assert not EscalationRule.objects.filter(name="Typed name").exists()


def test_the_services_refusals_show_beside_the_field(rules: Rules) -> None:
    client = signed_in(rules.cast.manager)
    cases = [
        (new_rule(percent=""), "percent", "required for the sla_resolution_used trigger"),
        (new_rule(percent="150"), "percent", "1 to 100"),
        (new_rule(from_tier="L3", to_tier="L2"), "to_tier", "cyclic"),
        (new_rule(trigger="priority", priority="", to_tier="L2"), "priority", "required"),
        (new_rule(trigger="priority", to_tier=""), "to_tier", "required for the priority"),
        (new_rule(to_tier="L1"), "to_tier", "lowest tier"),
    ]
    for data, field, message in cases:
        r = client.post("/console/config/escalation/new/", data)
        assert r.status_code == 422, (data, r.status_code)
        assert message in error_beside(r.content.decode(), field), data
    assert not EscalationRule.objects.filter(name="ACME P2 slow").exists()


def test_a_manager_cannot_add_an_msp_wide_or_another_organizations_rule(rules: Rules) -> None:
    client = signed_in(rules.cast.manager)
    r = client.post("/console/config/escalation/new/", new_rule(organization=""))
    assert r.status_code == 403
    assert "Only admins manage MSP-wide escalation rules" in r.content.decode()
    r = client.post("/console/config/escalation/new/", new_rule(organization="GLOBEX"))
    assert r.status_code == 400
    assert "valid choice" in error_beside(r.content.decode(), "organization")
    assert EscalationRule.objects.count() == 3
    r = signed_in(rules.cast.admin).post(
        "/console/config/escalation/new/", new_rule(organization="", name="MSP P2")
    )
    assert r.status_code == 302
    assert EscalationRule.objects.get(name="MSP P2").organization is None


def test_a_manager_changes_their_organizations_rule(rules: Rules) -> None:
    url = f"/console/config/escalation/{rules.acme.pk}/"
    client = signed_in(rules.cast.manager)
    html = client.get(url).content.decode()
    assert 'value="120"' in html
    assert '<option value="L1" selected>' in html
    r = client.post(
        url, rule_post(rules.acme, trigger="reopened", count="3", minutes="120", to_tier="L3")
    )
    assert r.status_code == 302
    rule = EscalationRule.objects.get(pk=rules.acme.pk)
    assert (rule.trigger, rule.count, rule.minutes) == ("reopened", 3, None)
    assert rule.to_tier is not None
    assert rule.to_tier.code == "L3"


def test_a_refused_change_writes_nothing(rules: Rules) -> None:
    url = f"/console/config/escalation/{rules.acme.pk}/"
    r = signed_in(rules.cast.manager).post(
        url, rule_post(rules.acme, name="Renamed", minutes="9999999")
    )
    assert r.status_code == 422
    assert "1 to 525600" in error_beside(r.content.decode(), "minutes")
    rule = EscalationRule.objects.get(pk=rules.acme.pk)
    assert (rule.name, rule.minutes) == ("ACME stuck in L1", 120)


def test_the_msp_wide_rule_is_read_only_for_a_manager(rules: Rules) -> None:
    url = f"/console/config/escalation/{rules.msp.pk}/"
    client = signed_in(rules.cast.manager)
    html = client.get(url).content.decode()
    assert "managed by the admins" in html
    assert "Save rule" not in html
    r = client.post(url, rule_post(rules.msp, name="Changed"))
    assert r.status_code == 403
    assert "Only admins manage MSP-wide escalation rules" in r.content.decode()
    r = client.post(url + "delete/")
    assert r.status_code == 403
    assert "Only admins" in r.content.decode()
    assert EscalationRule.objects.get(pk=rules.msp.pk).name == "P1 straight to L2"


def test_deleting_asks_first_then_deletes_on_post(rules: Rules) -> None:
    client = signed_in(rules.cast.manager)
    url = f"/console/config/escalation/{rules.acme.pk}/delete/"
    r = client.get(url)
    assert r.status_code == 200
    html = r.content.decode()
    assert "Delete the escalation rule" in html
    assert 'method="post"' in html
    assert "csrfmiddlewaretoken" in html
    assert EscalationRule.objects.filter(pk=rules.acme.pk).exists()
    r = client.post(url)
    assert r.status_code == 302
    assert not EscalationRule.objects.filter(pk=rules.acme.pk).exists()
    assert client.get(f"/console/config/escalation/{rules.acme.pk}/").status_code == 404


# --- query budget ----------------------------------------------------------------------------


def _list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/console/config/escalation/").status_code == 200
    return len(ctx.captured_queries)


def test_the_rule_list_query_count_does_not_grow_with_its_rules(rules: Rules) -> None:
    cast = rules.cast
    client = signed_in(cast.admin)
    _list_queries(client)  # warm the per-process caches
    few = _list_queries(client)
    for i in range(20):
        # each trigger, with and without tiers, in every kind of scope
        trigger = ("time_in_tier", "sla_resolution_used", "reopened", "priority")[i % 4]
        escalation_rule_create(
            actor=cast.admin,
            name=f"Rule {i}",
            trigger=trigger,
            organization=(None, cast.acme, cast.globex)[i % 3],
            minutes=30 if trigger == "time_in_tier" else None,
            percent=80 if trigger == "sla_resolution_used" else None,
            count=2 if trigger == "reopened" else None,
            priority="P1" if trigger == "priority" else "",
            from_tier=tier_by_code("L1") if i % 2 else None,
            to_tier=tier_by_code("L3") if i % 2 else None,
            notify_managers=bool(i % 2),
        )
    assert _list_queries(client) == few
