"""The security headers on every kind of page (sign-in, portal, console, configuration, API
docs, error pages), the error pages themselves, and the behind-TLS setting (TIERDESK_HTTPS:
HSTS, secure cookies, the proxy's X-Forwarded-Proto, the redirect to HTTPS)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path

from tests.conftest import Cast, make_ticket
from tests.processes import django_eval
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("SECRET-DETAIL of a failure")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("SECRET-DETAIL of a refusal")


# The site's URLs, and two that fail, for the error pages (see the tests marked with urls).
urlpatterns: list[URLPattern | URLResolver] = [
    path("test-boom", boom),
    path("test-forbidden", forbidden),
    path("", include("tierdesk.urls")),
]

POLICY = [
    "default-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]


def assert_secure_page(r: Any, *, html: bool = True) -> None:
    """The headers every page carries, and for HTML pages: every script carries this
    response's nonce, and there are no inline handlers or style attributes."""
    policy = r["Content-Security-Policy"]
    for directive in POLICY:
        assert directive in policy, (directive, policy)
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src, policy
    assert "unsafe-inline" not in policy, policy
    assert "unsafe-eval" not in policy, policy
    assert r["X-Frame-Options"] == "DENY"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Referrer-Policy"] == "same-origin"
    assert r["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in r  # plain HTTP, TIERDESK_HTTPS off
    if not html:
        return
    page = r.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    nonce = re.search(r"'nonce-([^']+)'", script_src[1])
    for tag in scripts:
        if 'type="application/json"' in tag:
            continue  # data for a script, never run
        # a script from tierdesk's own files, or one this response's nonce lets run
        assert "src=" in tag or 'nonce="' in tag, tag
        if 'nonce="' in tag:
            assert nonce, (tag, policy)
            assert f'nonce="{nonce[1]}"' in tag, (tag, policy)
    assert not re.search(r"<[^>]+\son[a-z]+=", page), "an inline event handler"
    assert not re.search(r"<[^>]+\sstyle=", page), "an inline style attribute"


def test_the_sign_in_page(db: None) -> None:
    r = Client().get("/login")
    assert r.status_code == 200
    assert_secure_page(r)


def test_the_portal_pages(cast: Cast) -> None:
    ticket = make_ticket(cast.alice, cast.acme)
    client = signed_in(cast.alice)
    for url in ("/portal/", "/portal/new", f"/portal/tickets/{ticket.key}", "/account/"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert_secure_page(r)
    r = client.get("/account/password")
    assert r.status_code == 200
    assert_secure_page(r)


def test_the_console_and_configuration_pages(cast: Cast) -> None:
    ticket = make_ticket(cast.lena, cast.acme, cast.alice)
    client = signed_in(cast.manager)
    for url in (
        "/console/queue/l1",
        f"/console/tickets/{ticket.key}",
        "/console/config/",
        "/console/config/routing/",
        "/console/config/sla/",
        "/console/config/people/",
    ):
        r = client.get(url)
        assert r.status_code == 200, url
        assert_secure_page(r)


def test_the_api_docs_and_an_api_answer(cast: Cast) -> None:
    r = Client().get("/api/v1/docs")
    assert r.status_code == 200
    assert_secure_page(r)
    r = Client().get("/api/v1/tickets")
    assert r.status_code == 401
    assert_secure_page(r, html=False)


# --- error pages -----------------------------------------------------------------------------


def assert_not_found_page(r: Any, *, hidden: str = "") -> str:
    assert r.status_code == 404
    assert r["Content-Type"].startswith("text/html")
    assert_secure_page(r)
    page = r.content.decode()
    # the site's own page, from its base template, saying "not found" plainly
    assert '<a class="brand" href="/">tierdesk</a>' in page
    assert "/static/web/app.css" in page
    assert "<title>Not found · tierdesk</title>" in page
    assert "<h1>Not found</h1>" in page
    # and nothing of the request or of why: a hidden ticket reads like a missing one
    for detail in ("No such ticket", "Traceback", "Page not found", hidden):
        if detail:
            assert detail not in page, detail
    return page


def test_an_unknown_address_gets_the_styled_not_found_page(db: None) -> None:
    page = assert_not_found_page(Client().get("/no-such-page-xyz"), hidden="no-such-page-xyz")
    assert "Sign out" not in page


def test_another_organizations_ticket_reads_exactly_like_a_missing_one(cast: Cast) -> None:
    theirs = make_ticket(cast.gus, cast.globex, cast.gerd)
    client = signed_in(cast.alice)
    hidden = assert_not_found_page(client.get(f"/portal/tickets/{theirs.key}"), hidden=theirs.key)
    missing = assert_not_found_page(client.get("/portal/tickets/ACME-999"), hidden="ACME-999")
    strip = re.compile(r"nonce-?=?\"?[\w+/=-]+|value=\"[^\"]+\"|\"X-CSRFToken\": \"[^\"]+\"")
    assert strip.sub("", hidden) == strip.sub("", missing)
    assert "Alice" in hidden  # signed in: the header with the person's name and links
    console = signed_in(cast.lena).get(f"/console/tickets/{theirs.key}")
    assert_not_found_page(console, hidden=theirs.key)


def test_an_api_address_still_answers_problem_details(db: None) -> None:
    r = Client().get("/api/v1/no-such-endpoint")
    assert r.status_code == 404
    assert r["Content-Type"] == "application/problem+json"


@pytest.mark.urls("tests.web.test_security_headers")
def test_a_server_error_shows_the_plain_error_page_without_details(db: None) -> None:
    r = Client(raise_request_exception=False).get("/test-boom")
    assert r.status_code == 500
    assert_secure_page(r)
    page = r.content.decode()
    assert "<h1>Something went wrong</h1>" in page
    assert "/static/web/app.css" in page
    assert "SECRET-DETAIL" not in page
    assert "RuntimeError" not in page
    assert "<script" not in page  # nothing that needs the nonce


@pytest.mark.urls("tests.web.test_security_headers")
def test_a_refusal_shows_the_styled_not_allowed_page_without_details(cast: Cast) -> None:
    r = signed_in(cast.alice).get("/test-forbidden")
    assert r.status_code == 403
    assert_secure_page(r)
    page = r.content.decode()
    assert "<h1>Not allowed</h1>" in page
    assert '<a class="brand" href="/">tierdesk</a>' in page
    assert "SECRET-DETAIL" not in page


def test_a_form_sent_without_its_token_gets_the_styled_expired_page(db: None) -> None:
    r = Client(enforce_csrf_checks=True).post(
        "/login", {"username": "alice@acme.example", "password": "x"}
    )
    assert r.status_code == 403
    assert_secure_page(r)
    page = r.content.decode()
    assert "<h1>This form has expired</h1>" in page
    assert '<a class="brand" href="/">tierdesk</a>' in page
    # Django's own page explains the mechanism and its reason; ours does not
    assert "CSRF verification failed" not in page
    assert "cookie not set" not in page.lower()


# --- behind TLS ------------------------------------------------------------------------------

PROBE = """
import json
from django.conf import settings
from django.test import Client
client = Client()
plain = client.get('/login')
secure = client.get('/login', headers={'X-Forwarded-Proto': 'https'})
health = client.get('/healthz')
cookie = secure.cookies.get('csrftoken')
print(json.dumps({
    'plain': [plain.status_code, plain.get('Location', '')],
    'secure': secure.status_code,
    'hsts': secure.get('Strict-Transport-Security', ''),
    'csrf_cookie_secure': bool(cookie and cookie['secure']),
    'session_cookie_secure': settings.SESSION_COOKIE_SECURE,
    'health': health.status_code,
}))
"""


def probe(tmp_path: Path, **env: str) -> dict[str, Any]:
    """Requests through a fresh process configured with ``env`` (settings are read once,
    when the process starts)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIERDESK_", "DJANGO_")) and k != "DATABASE_URL"
    }
    base["TIERDESK_DATA_DIR"] = str(tmp_path)
    return dict(json.loads(django_eval(base | env, PROBE)))


def test_https_is_off_by_default_for_the_loopback_demo(tmp_path: Path) -> None:
    seen = probe(tmp_path)
    assert seen["plain"] == [200, ""]  # no redirect
    # a client's X-Forwarded-Proto is not believed: no HSTS, cookies for plain HTTP too
    assert (seen["secure"], seen["hsts"]) == (200, "")
    assert seen["csrf_cookie_secure"] is False
    assert seen["session_cookie_secure"] is False


def test_behind_tls_hsts_secure_cookies_and_the_proxy_header_are_on(tmp_path: Path) -> None:
    seen = probe(tmp_path, TIERDESK_HTTPS="true")
    # plain HTTP is sent to HTTPS, except the load balancer's health check
    assert seen["plain"] == [301, "https://testserver/login"]
    assert seen["health"] == 200
    # the proxy's X-Forwarded-Proto: https marks the request secure
    assert seen["secure"] == 200
    assert seen["hsts"] == "max-age=31536000"
    assert seen["csrf_cookie_secure"] is True
    assert seen["session_cookie_secure"] is True


def test_hsts_can_be_tuned_and_widened_to_subdomains(tmp_path: Path) -> None:
    seen = probe(
        tmp_path,
        TIERDESK_HTTPS="1",
        TIERDESK_HSTS_SECONDS="600",
        TIERDESK_HSTS_INCLUDE_SUBDOMAINS="yes",
    )
    assert seen["hsts"] == "max-age=600; includeSubDomains"
    # HSTS without HTTPS would never be sent: the setting alone changes nothing
    seen = probe(tmp_path, TIERDESK_HSTS_SECONDS="600")
    assert (seen["secure"], seen["hsts"]) == (200, "")
