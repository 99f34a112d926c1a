"""Bad input from ../shared/SECURITY.md §2 B and D that the API surface must survive:
mass assignment (9), filter and sort injection (17), SQL injection probes (18), scope
widening (19), trusted-header spoofing (20), odd and oversized input (22, 23), hostile file
names (36) and no unsafe deserialization (42)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.conftest import Api, Cast, make_ticket, problem_fields
from tierdesk.core.models import User
from tierdesk.kb import services as kb_services
from tierdesk.kb.models import Article
from tierdesk.tickets.models import Attachment, Ticket

ApiAs = Callable[[User | None], Api]


@pytest.mark.parametrize(
    "smuggled",
    [
        {"role": "admin"},
        {"is_staff": True},
        {"organization_id": 2},
        {"tenant_id": 2},
        {"version": 99},
        {"number": 1},
        {"created_by": 1},
    ],
)
def test_mass_assignment_is_refused(cast: Cast, api_as: ApiAs, smuggled: dict[str, Any]) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.lena)
    patched = api.patch(
        "/tickets/ACME-1", {"subject": "x", **smuggled}, headers={"If-Match": '"v1"'}
    )
    assert patched.status_code == 422
    assert problem_fields(patched) == list(smuggled)
    created = api.post(
        "/tickets",
        {"organization": "ACME", "subject": "x", "requester": "alice@acme.example", **smuggled},
    )
    assert created.status_code == 422
    me = api_as(cast.alice).post("/tokens", {"name": "x", **smuggled})
    assert me.status_code == 422
    assert Ticket.objects.get().subject == "Printer on fire"
    assert Ticket.objects.count() == 1


@pytest.mark.parametrize(
    "query",
    [
        "requester__password__startswith=a",
        "filter[tenant_id]=2",
        "organization_id=2",
        "status=open&search=x",
        "ordering=requester__password",
        "ordering=-organization__name",
    ],
)
def test_only_allow_listed_filters_and_orderings(cast: Cast, api_as: ApiAs, query: str) -> None:
    api = api_as(cast.lena)
    r = api.client.get(f"/api/v1/tickets?{query}", headers=api.headers)
    assert r.status_code == 422, r.content
    assert problem_fields(r)


SQL_PROBES = [
    "' OR pg_sleep(3)--",
    "1;SELECT pg_sleep(3)",
    '"||randomblob(1000000000)||"',
    "1 OR 1=1",
    "ACME-1' --",
]


@pytest.mark.parametrize("probe", SQL_PROBES)
def test_sql_injection_probes_are_plain_data(cast: Cast, api_as: ApiAs, probe: str) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    api = api_as(cast.lena)
    calls = [
        lambda: api.client.get("/api/v1/tickets", {"text": probe}, headers=api.headers),
        lambda: api.client.get(
            "/api/v1/tickets", {"organization": probe[:10]}, headers=api.headers
        ),
        lambda: api.client.get(f"/api/v1/tickets/{probe}", headers=api.headers),
        lambda: api.post(
            "/tickets", {"organization": "ACME", "subject": probe, "requester": probe}
        ),
        lambda: Client().get("/api/v1/me", headers={"Authorization": f"Bearer td_{probe}"}),
    ]
    for call in calls:
        started = time.monotonic()
        response = call()
        assert time.monotonic() - started < 1.0
        assert response.status_code < 500
    assert Ticket.objects.count() == 1


def test_no_header_or_parameter_widens_the_scope(cast: Cast, api_as: ApiAs) -> None:
    make_ticket(cast.gus, cast.globex, cast.gerd)
    api = api_as(cast.lena)
    for headers in (
        {"X-Tenant": "GLOBEX"},
        {"X-Organization": "GLOBEX"},
        {"X-Remote-User": "admin@msp.example"},
        {"X-Forwarded-User": "admin"},
    ):
        r = api.client.get("/api/v1/tickets", headers={**api.headers, **headers})
        assert r.json()["items"] == []
        assert (
            api.client.get(
                "/api/v1/tickets/GLOBEX-1", headers={**api.headers, **headers}
            ).status_code
            == 404
        )
    assert api.client.get("/api/v1/tickets?tenant=GLOBEX", headers=api.headers).status_code == 422


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Remote-User": "admin@msp.example"},
        {"X-Forwarded-For": "127.0.0.1"},
        {"Remote-User": "admin@msp.example"},
        {"X-Original-URL": "/api/v1/me"},
    ],
)
def test_trusted_header_spoofing_does_not_authenticate(cast: Cast, headers: dict[str, str]) -> None:
    assert Client().get("/api/v1/me", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        ("[" * 10_000 + "]" * 10_000, "application/json", 400),
        (
            json.dumps({"organization": "ACME", "subject": "x", "requester": "a", "impact": 2**70}),
            "application/json",
            422,
        ),
        (
            '{"organization": "ACME", "subject": "\\ud800", "requester": "alice@acme.example"}',
            "application/json",
            422,
        ),
        ('{"subject": "x"}', "text/plain", 415),
        ('{"subject": "x"}', "application/x-www-form-urlencoded", 415),
        ("x" * (3 * 1024 * 1024), "application/json", 413),
    ],
)
def test_odd_and_oversized_bodies_get_a_bounded_4xx(
    cast: Cast, api_as: ApiAs, raw: str, content_type: str, status: int
) -> None:
    api = api_as(cast.lena)
    started = time.monotonic()
    r = api.client.post("/api/v1/tickets", data=raw, content_type=content_type, headers=api.headers)
    assert time.monotonic() - started < 1.0
    assert r.status_code == status, r.content[:300]
    assert problem_fields(r)
    assert Ticket.objects.count() == 0


def test_a_right_to_left_override_survives_as_text(cast: Cast, api_as: ApiAs) -> None:
    body = {
        "organization": "ACME",
        "subject": "invoice\u202efdp.exe",
        "requester": "alice@acme.example",
    }
    r = api_as(cast.lena).post("/tickets", body)
    assert r.status_code == 201
    assert r.json()["subject"] == "invoice\u202efdp.exe"  # stored as given, escaped on output


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\win.ini.txt", "win.ini.txt"),
        ("invoice\u202efdp.txt", "invoicefdp.txt"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),  # at most 255 characters
        ("CON.txt", "CON.txt"),
    ],
)
def test_hostile_file_names_are_neutralised(
    cast: Cast, api_as: ApiAs, name: str, stored: str, settings: Any
) -> None:
    make_ticket(cast.alice, cast.acme)
    api = api_as(cast.alice)
    r = api.client.post(
        "/api/v1/tickets/ACME-1/attachments",
        data={"file": SimpleUploadedFile(name, b"data")},
        headers=api.headers,
    )
    assert r.status_code == 201, r.content
    assert r.json()["filename"] == stored
    attachment = Attachment.objects.get()
    root = Path(settings.ATTACHMENTS_DIR).resolve()
    files = [p.resolve() for p in root.rglob("*") if p.is_file()]
    assert files == [root / attachment.storage_key[:2] / attachment.storage_key]


def test_no_code_deserializes_untrusted_data_unsafely() -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    pattern = re.compile(r"\b(pickle|marshal|shelve)\b|yaml\.load\(|yaml\.unsafe_load")
    offenders = [
        f"{path.relative_to(src)}:{n}"
        for path in src.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "path",
    [
        "/organizations",
        "/tokens",
        "/tiers",
        "/categories",
        "/users",
        "/kb/articles",
        "/webhooks",
        "/webhook-events",
    ],
)
def test_collections_refuse_unknown_query_parameters(cast: Cast, api_as: ApiAs, path: str) -> None:
    api = api_as(cast.admin)
    r = api.client.get(f"/api/v1{path}?organization_id=2", headers=api.headers)
    assert r.status_code == 422
    assert problem_fields(r) == ["organization_id"]


def test_validation_messages_read_cleanly(cast: Cast, api_as: ApiAs) -> None:
    r = api_as(cast.lena).post(
        "/tickets", {"organization": "ACME", "subject": "a\x00b", "requester": "alice@acme.example"}
    )
    assert r.json()["errors"] == [
        {"field": "subject", "message": "must not contain NUL characters"}
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("get", "/tickets/²", None, {}),
        ("get", "/tickets?category=²", None, {}),
        ("get", "/tickets?assignee=99999999999999999999", None, {}),
        ("post", "/tickets", {"organization": "ACME", "subject": "x", "requester": "²"}, {}),
        (
            "post",
            "/tickets",
            {
                "organization": "ACME",
                "subject": "x",
                "requester": "alice@acme.example",
                "category": "²",
            },
            {},
        ),
        ("patch", "/tickets/ACME-1", {"subject": "x"}, {"If-Match": '"v²"'}),
        ("get", "/tickets/ACME-٣", None, {}),
    ],
)
def test_unicode_digits_and_huge_numbers_never_crash(
    cast: Cast, api_as: ApiAs, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    make_ticket(cast.lena, cast.acme, cast.alice)
    response = api_as(cast.lena).call(method.upper(), path, body, headers=headers)
    # A refusal, or (for a filter value that names nothing) an empty list: never a 500.
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        problem_fields(response)


def test_a_forged_cursor_is_refused(cast: Cast, api_as: ApiAs) -> None:
    import base64

    forged = base64.urlsafe_b64encode(
        json.dumps({"f": "x", "o": "-created_at", "v": "2026-01-01T00:00:00", "id": 2**70}).encode()
    ).decode()
    api = api_as(cast.lena)
    r = api.client.get(f"/api/v1/tickets?cursor={forged}", headers=api.headers)
    assert r.status_code == 422
    assert problem_fields(r) == ["cursor"]


def test_a_missing_attachment_file_is_a_404_not_a_crash(cast: Cast, api_as: ApiAs) -> None:
    from tierdesk.tickets.services import attachment_add, attachment_path

    ticket = make_ticket(cast.alice, cast.acme)
    attachment = attachment_add(actor=cast.alice, ticket=ticket, filename="a.txt", content=b"x")
    attachment_path(attachment).unlink()
    api = api_as(cast.alice)
    r = api.client.get(f"/api/v1/attachments/{attachment.pk}", headers=api.headers)
    assert r.status_code == 404
    problem_fields(r)


@pytest.mark.parametrize(
    "smuggled",
    [
        {"owner": "admin@msp.example"},
        {"organization": "GLOBEX"},
        {"organization_id": 2},
        {"version": 99},
        {"reviewer": 1},
        {"published_at": "2020-01-01T00:00:00Z"},
        {"body_html": "<script>x</script>"},
    ],
)
def test_kb_mass_assignment_is_refused(cast: Cast, api_as: ApiAs, smuggled: dict[str, Any]) -> None:
    api = api_as(cast.lena)
    created = api.post("/kb/articles", {"title": "x", **smuggled})
    assert created.status_code == 422
    assert problem_fields(created) == list(smuggled)
    kb_services.article_create(actor=cast.lena, title="Mine", slug="mine")
    patched = api.patch(
        "/kb/articles/mine", {"title": "y", **smuggled}, headers={"If-Match": '"v1"'}
    )
    assert patched.status_code == 422
    assert problem_fields(patched) == list(smuggled)
    assert list(Article.objects.values_list("title", "version")) == [("Mine", 1)]


FTS_PROBES = [
    "NEAR(laptop secret, 2)",
    '"unbalanced',
    "title:secret",
    "* OR *",
    "laptop AND NOT x",
    "{title body}: secret",
    "^secret",
    "secret:* & !laptop | (",
    "x" * 200,
]


@pytest.mark.parametrize("probe", SQL_PROBES + FTS_PROBES)
def test_kb_search_and_filters_take_probes_as_words(cast: Cast, api_as: ApiAs, probe: str) -> None:
    """The search engines' own query syntax (FTS5 MATCH, to_tsquery) never reaches them:
    only the searcher's words do, so a probe neither fails nor widens what is found."""
    kb_services.article_create(
        actor=None,
        owner=cast.admin,
        title="Laptop secret internal",
        slug="internal",
        body="secret laptop",
        audience="internal",
        status="published",
    )
    api = api_as(cast.alice)
    for path, params in (
        ("/kb/search", {"q": probe}),
        ("/kb/search", {"q": probe, "prefix": "true"}),
        ("/kb/search", {"q": "laptop", "category": probe[:50], "tag": probe[:50]}),
        ("/kb/articles", {"text": probe}),
        ("/kb/articles", {"category": probe[:50], "tag": probe[:50]}),
    ):
        started = time.monotonic()
        response = api.get(path, params=params)
        assert time.monotonic() - started < 1.0
        assert response.status_code in (200, 422), (path, params, response.content)
        if response.status_code == 200:
            assert response.json()["items"] == [], (path, params)
        else:
            problem_fields(response)
    assert api.get(f"/kb/articles/{probe[:200]}").status_code == 404
