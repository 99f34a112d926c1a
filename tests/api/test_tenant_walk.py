"""The tenant walk: every endpoint and method, called by people of organization A against the
objects of organization B, answers 404 and changes nothing.

The list of endpoints comes from the API itself (its OpenAPI document, cross-checked with its
URL patterns), so a new endpoint is walked without editing this test. A new kind of path
parameter fails the walk until ``b_values`` below knows which object of B it names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver

from tests.conftest import Api, Cast, make_ticket
from tests.images import png
from tierdesk.api.main import api as ninja_api
from tierdesk.automation import services as automation
from tierdesk.channels import inbound, mailboxes, webhooks
from tierdesk.channels.models import DeliveryStatus, WebhookDelivery
from tierdesk.core.models import User
from tierdesk.core.outbox import relay
from tierdesk.core.services import token_create
from tierdesk.escalation.services import escalation_rule_create
from tierdesk.kb import services as kb_services
from tierdesk.sla.services import Target, calendar_create, sla_policy_create
from tierdesk.tickets import services as ticket_services
from tierdesk.tiers.services import category_create, routing_rule_create, tier_by_code

ApiAs = Callable[[User | None], Api]
SECRET = "B-ONLY-7f3a"  # written into B's objects; must never appear in an answer to A
METHODS = ("get", "post", "put", "patch", "delete")
# Body fields that name another object, and the object of B to name there.
# Path parameters that name MSP-wide objects, which belong to no tenant (their permission
# tests are in test_people_api.py). Anything else must be taught to b_values().
SHARED_PATH_PARAMS = frozenset({"tier_code", "skill_slug"})
# Paths only admins may use: everyone else is refused (403) whichever id they name.
ADMIN_ONLY = ("/api/v1/mailboxes", "/api/v1/inbound-messages", "/api/v1/directories")
REFERENCE_FIELDS = (
    "organization",
    "requester",
    "assignee",
    "category",
    "served_organizations",
    "audience",  # a knowledge base article's: an organization's code
    "article",
)
# Required query parameters, and what to send in them (other ones get a sample value): a
# search for B's secret must find nothing of B.
QUERY_VALUES = {"q": SECRET}


def _snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of tierdesk's tables, to prove a refused call changed nothing."""
    snap = {}
    for label in ("core", "tiers", "tickets", "sla", "escalation", "kb", "channels"):
        for model in apps.get_app_config(label).get_models():
            rows = list(model._default_manager.order_by("pk").values())
            for row in rows:
                row.pop("last_used_at", None)  # tokens note their use; that is not a change
            snap[model._meta.label] = rows
    return snap


@pytest.fixture
def world(cast: Cast) -> dict[str, Any]:
    """Objects of B (GLOBEX) that A's people must not reach."""
    secret_category = category_create(
        actor=None,
        slug="b-only",
        name=SECRET,
        organization=cast.globex,
        default_tier=tier_by_code("L2"),
    )
    ticket = make_ticket(
        cast.gus, cast.globex, cast.gerd, subject=f"{SECRET} payroll", category=secret_category
    )
    ticket_services.ticket_comment(actor=cast.gus, ticket=ticket, body=SECRET)
    ticket_services.ticket_comment(actor=cast.gus, ticket=ticket, body=SECRET, internal=True)
    attachment = ticket_services.attachment_add(
        actor=cast.gerd, ticket=ticket, filename="b.txt", content=SECRET.encode()
    )
    token, _ = token_create(actor=None, user=cast.gerd, name=SECRET)
    calendar = calendar_create(
        actor=None,
        name="b-only-hours",
        title=SECRET,
        time_zone="Europe/Berlin",
        hours={0: [(480, 1020)]},
        organization=cast.globex,
    )
    rule = routing_rule_create(
        actor=cast.admin,
        name=SECRET,
        organization=cast.globex,
        category=secret_category,
        tags=["b-only"],
    )
    escalation_rule = escalation_rule_create(
        actor=cast.admin,
        name=SECRET,
        organization=cast.globex,
        trigger="time_in_tier",
        minutes=60,
        from_tier=tier_by_code("L1"),
    )
    sla_policy = sla_policy_create(
        actor=None,
        name=SECRET,
        organization=cast.globex,
        calendar=calendar,
        targets=[Target("P2", 60, 240)],
    )
    make_ticket(cast.lena, cast.acme, cast.alice, subject="A's own ticket")
    # a published article for B's requesters, with a second version, a vote and a flag
    article = kb_services.article_create(
        actor=None,
        owner=cast.gus,
        title=f"{SECRET} payroll export",
        slug="b-only-payroll",
        body=f"Run the {SECRET} export.",
        audience="organization",
        organization=cast.globex,
        category=secret_category,
        status="published",
    )
    kb_services.article_update(actor=None, article=article, body=f"Run the {SECRET} job.")
    kb_services.article_vote(actor=cast.gerd, article=article, helpful=True)
    flag = kb_services.article_flag_outdated(actor=cast.gus, article=article, comment=SECRET)
    kb_services.article_file_add(
        actor=cast.admin,
        article=article,
        filename="payroll.png",
        content=png(2, 1) + SECRET.encode(),  # a real image, with the secret after its end
    )
    # a link between two of B's tickets (tickets/{ref}/links/{link_id})
    link = ticket_services.ticket_link(
        actor=cast.gus,
        ticket=ticket,
        other=make_ticket(cast.gus, cast.globex, cast.gerd, subject=SECRET),
        kind="related_to",
    )
    # a webhook of B's with a delivery that may be replayed
    webhook, _ = webhooks.webhook_create(
        actor=cast.admin,
        organization=cast.globex,
        url="https://hooks.globex.example/b-only",
        events=["*"],
        description=SECRET,
    )
    relay()
    delivery = WebhookDelivery.objects.filter(webhook=webhook).first()
    assert delivery is not None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED)
    # a mailbox of B's and a message it stored (admins only: others are refused outright)
    box = {"host": "imap.globex.example", "port": 993, "security": "tls", "password": SECRET}
    mailbox = mailboxes.mailbox_create(
        actor=None,
        organization=cast.globex,
        name=SECRET,
        address="help@globex.example",
        username=SECRET,
        **box,
    )
    message, _ = inbound.store(mailbox, f"From: {SECRET}@x.example\r\n\r\n{SECRET}".encode())
    # B's directory (admins only) and a run that waits for an approval there
    directory = automation.directory_create(
        actor=None, organization=cast.globex, kind="openldap", host="dc.globex.example",
        port=636, security="ldaps", bind_dn="cn=svc,dc=globex", password=SECRET,
        base_dn="dc=globex", allowed_ous=["ou=staff,dc=globex"],
    )  # fmt: skip
    run = automation.run_action(
        actor=cast.gus, organization=cast.globex, runbook="disable-account",
        account=cast.gerd.email, parameters={}, channel="ticket", ticket=ticket,
        idempotency_key=SECRET,
    ).run  # fmt: skip
    return {
        "directory": directory,
        "run": run,
        "webhook": webhook,
        "delivery": delivery,
        "mailbox": mailbox,
        "message": message,
        "link": link,
        "sla_policy": sla_policy,
        "ticket": ticket,
        "attachment": attachment,
        "token": token,
        "category": secret_category,
        "calendar": calendar,
        "rule": rule,
        "escalation_rule": escalation_rule,
        "article": article,
        "flag": flag,
    }


def b_values(cast: Cast, world: dict[str, Any]) -> dict[str, list[str]]:
    """Path parameter -> the ways to name an object of B in it."""
    return {
        "ref": [world["ticket"].key, str(world["ticket"].pk)],
        "code": [cast.globex.code],
        "user_id": [str(cast.gerd.pk)],
        "token_id": [str(world["token"].pk)],
        "attachment_id": [str(world["attachment"].pk)],
        "category_id": [str(world["category"].pk)],
        "name": [world["calendar"].name],
        "rule_id": [str(world["rule"].pk)],
        "escalation_rule_id": [str(world["escalation_rule"].pk)],
        "policy_id": [str(world["sla_policy"].pk)],
        "link_id": [str(world["link"].pk)],
        "article_ref": [world["article"].slug, str(world["article"].pk)],
        "filename": ["payroll.png"],
        "flag_id": [str(world["flag"].pk)],
        "kind": ["ticket_created"],  # a notification kind, under B's organization code
        "webhook_id": [str(world["webhook"].pk)],
        "delivery_id": [str(world["delivery"].delivery_id)],
        "mailbox_id": [str(world["mailbox"].pk)],
        "message_id": [str(world["message"].pk)],
        "directory_id": [str(world["directory"].pk)],
        "run_id": [str(world["run"].pk)],
    }


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = ninja_api.get_openapi_schema()
    ops = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    return sorted(ops, key=lambda o: (o[0], o[1]))


OPERATIONS = _operations()
SCHEMA = ninja_api.get_openapi_schema()


def test_every_routed_path_is_in_the_walk() -> None:
    """An endpoint left out of the OpenAPI document would escape the walk: forbid that."""
    resolver = get_resolver()
    routed = set()
    for pattern in resolver.url_patterns:
        if str(pattern.pattern) == "api/v1/":
            for sub in pattern.url_patterns:  # type: ignore[union-attr]
                route = "/api/v1/" + str(sub.pattern).replace("<", "{").replace(">", "}")
                routed.add(route.replace("{int:", "{").replace("{str:", "{").replace("{path:", "{"))
    documented = {path for path, _, _ in OPERATIONS}
    # The root, the schema and its docs page hold no tenant data.
    hidden = routed - documented - {"/api/v1/", "/api/v1/openapi.json", "/api/v1/docs"}
    assert not hidden, f"endpoints outside the OpenAPI document escape the tenant walk: {hidden}"
    assert len(OPERATIONS) >= 20


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in node:
        return _resolve(next(n for n in node["anyOf"] if n.get("type") != "null"))
    return node


def _sample(node: dict[str, Any]) -> Any:
    node = _resolve(node)
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "string":
        return {"time": "09:00:00", "date-time": "2026-01-01T00:00:00Z"}.get(
            node.get("format", ""), "x" * max(1, node.get("minLength", 1))
        )
    if kind == "integer":
        return max(1, node.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return _body(node, {})
    return None


def _body(node: dict[str, Any], refs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node)
    props = node.get("properties", {})
    body = {name: _sample(props[name]) for name in node.get("required", [])}
    for name, value in refs.items():
        if name in props:
            body[name] = value
    if not body:  # an all-optional body (a PATCH): change one text field
        for name, prop in props.items():
            plain = _resolve(prop)  # free text: a choice (enum) would be refused first
            if (
                plain.get("type") == "string"
                and "enum" not in plain
                and name not in REFERENCE_FIELDS
            ):
                body[name] = "changed by A"
                break
    return body


def _call(api: Api, method: str, path: str, op: dict[str, Any], refs: dict[str, Any]) -> Any:
    headers = {**api.headers, "If-Match": '"v1"', "Idempotency-Key": f"walk-{method}-{path}"}
    content = op.get("requestBody", {}).get("content", {})
    url = path
    if method == "get":
        query = {
            p["name"]: QUERY_VALUES.get(p["name"]) or _sample(p.get("schema", {}))
            for p in op.get("parameters", [])
            if p["in"] == "query" and p.get("required")
        }
        return api.client.get(url, query, headers=headers)
    if "multipart/form-data" in content:
        return api.client.post(
            url, data={"file": SimpleUploadedFile("a.txt", b"from A")}, headers=headers
        )
    data = None
    if "application/json" in content:
        data = json.dumps(_body(content["application/json"]["schema"], refs))
    func = getattr(api.client, method)
    return func(url, data=data, content_type="application/json", headers=headers)


@pytest.mark.parametrize("who", ["alice", "carol", "lena", "manager"])
def test_people_of_a_get_404_for_every_object_of_b(
    cast: Cast, world: dict[str, Any], api_as: ApiAs, who: str
) -> None:
    api = api_as(getattr(cast, who))
    values = b_values(cast, world)
    walked = 0
    for path, method, op in OPERATIONS:
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
        if not names or set(names) <= SHARED_PATH_PARAMS:
            continue
        unknown = [n for n in names if n not in values]
        assert not unknown, f"teach the tenant walk which object of B {unknown} names ({path})"
        variants = max(len(values[n]) for n in names)
        for i in range(variants):
            url = path
            for n in names:
                url = url.replace("{" + n + "}", values[n][min(i, len(values[n]) - 1)])
            before = _snapshot()
            response = _call(api, method, url, op, {})
            # admins' endpoints refuse everyone else whatever the id (nothing leaks)
            expected = 403 if path.startswith(ADMIN_ONLY) else 404
            assert response.status_code == expected, (who, method.upper(), url, response.content)
            assert SECRET.encode() not in response.content
            assert _snapshot() == before, (who, method.upper(), url, "changed data")
            walked += 1
    assert walked >= 15


# Collections only some roles read (the others are refused, and learn nothing of B).
ROLE_RESTRICTED = {  # by path prefix
    "/api/v1/reports/": {"manager"},
    "/api/v1/webhook": {"manager"},  # webhooks and the event catalogue
    "/api/v1/automation-runs": {"lena", "manager"},  # staff
    "/api/v1/runbooks": {"lena", "manager"},
    **{prefix: frozenset[str]() for prefix in ADMIN_ONLY},
}


@pytest.mark.parametrize("who", ["alice", "carol", "lena", "manager"])
def test_collections_and_creates_never_reach_b(
    cast: Cast, world: dict[str, Any], api_as: ApiAs, who: str
) -> None:
    """Endpoints without a path parameter: lists show nothing of B; creates that name an
    object of B in their body are refused with a problem and store nothing."""
    api = api_as(getattr(cast, who))
    refs = {
        "organization": cast.globex.code,
        "requester": cast.gerd.email,
        "assignee": cast.gus.email,
        "category": world["category"].slug,
        "served_organizations": [cast.globex.code],
        "audience": cast.globex.code,
        "article": world["article"].slug,
    }
    for path, method, op in OPERATIONS:
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            continue
        if method == "get":
            response = _call(api, method, path, op, refs)
            readers = next((r for pre, r in ROLE_RESTRICTED.items() if path.startswith(pre)), None)
            expected = 200 if readers is None or who in readers else 403
            assert response.status_code == expected, (who, path, response.content)
            if "organization" in {p["name"] for p in op.get("parameters", [])}:
                # Asked for B's organization by name: unknown (404, 422) or nothing (a list
                # filter), never B's data.
                named = api.client.get(
                    path, {"organization": cast.globex.code}, headers=api.headers
                )
                assert named.status_code in (expected, 404, 422), (who, path, named.content)
                assert SECRET.encode() not in named.content
                assert cast.gerd.email.encode() not in named.content
                if expected == 200 and named.status_code == 200:
                    body = named.json()
                    found = body.get("items") if isinstance(body, dict) else body
                    assert not found, (who, path, named.content)
            text = response.content.decode()
            assert SECRET not in text, (who, path)
            assert cast.gerd.email not in text, (who, path)
            assert f'"{cast.globex.code}"' not in text, (who, path)
            continue
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        props = _resolve(schema.get("schema", {})).get("properties", {})
        if not any(name in props for name in REFERENCE_FIELDS):
            continue  # nothing in this body can name an object of B
        before = _snapshot()
        response = _call(api, method, path, op, refs)
        assert response.status_code in (403, 404, 422), (who, path, response.content)
        assert response["Content-Type"] == "application/problem+json"
        assert _snapshot() == before, (who, method.upper(), path, "changed data")
