"""Signing in the long ways, in a real browser against `tierdesk serve`, with a real SMTP
server on loopback: a forgotten password reset through the emailed link, and two-step
sign-in turned on with the QR page and then used. axe-core checks each of these pages."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django_otp.oath import TOTP

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, serving
from tests.processes import fresh_install, tierdesk
from tests.smtp import Inbox, reset_link, smtp_server
from tierdesk.demo import DEMO_PASSWORD

NEW_PASSWORD = "orchid lantern seventy 8"


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[Server]:
    """`tierdesk serve` with the demo people, sending its mail to ``inbox`` over SMTP."""
    with fresh_install(tmp_path_factory.mktemp("signin")) as env:
        env.update(
            TIERDESK_EMAIL_HOST=inbox.host,
            TIERDESK_EMAIL_PORT=str(inbox.port),
            TIERDESK_EMAIL_USE_TLS="false",
            TIERDESK_EMAIL_FROM="desk@msp.example",
        )
        done = tierdesk(env, "demo", "--tickets", "0", "--workers", "1")
        assert done.returncode == 0, done.stderr
        with serving(env) as running:
            yield running


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def sign_in(page: Any, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def test_a_forgotten_password_is_reset_through_the_emailed_link(
    page: Any, server: Server, inbox: Inbox, axe_source: str
) -> None:
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.wait_for_url(re.compile(r"/password-reset$"))
    assert axe_violations(page, axe_source) == [], "reset request"
    page.get_by_label("Email").fill("omar.l2@msp.example")
    page.get_by_role("button", name="Send the link").click()
    page.wait_for_url(re.compile(r"/password-reset/sent$"))
    assert "If an account uses that email" in page.get_by_role("status").inner_text()
    assert axe_violations(page, axe_source) == [], "reset sent"

    [mail] = inbox.wait_for("omar.l2@msp.example")
    link = reset_link(mail)
    assert link.startswith(server.url + "/password-reset/")
    page.goto(link)
    assert page.get_by_role("heading", name="Set a new password").is_visible()
    assert axe_violations(page, axe_source) == [], "new password"
    page.get_by_label("New password:", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(re.compile(r"/login$"))
    assert "Your password has been set" in page.get_by_role("status").inner_text()

    sign_in(page, "omar.l2@msp.example", NEW_PASSWORD)
    assert "/console/" in page.url

    # the link is spent
    page.goto(link)
    assert page.get_by_role("heading", name="This link does not work any more").is_visible()
    assert axe_violations(page, axe_source) == [], "spent link"
    stayed_home(page, server, answered=(400,))


def test_two_step_sign_in_is_turned_on_and_then_asked_for(
    page: Any, server: Server, axe_source: str
) -> None:
    sign_in(page, "grace.l3@msp.example", DEMO_PASSWORD)
    page.goto("/account/two-step")
    page.get_by_role("button", name="Set up two-step sign-in").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("figure.qr svg").is_visible()
    assert axe_violations(page, axe_source) == [], "two-step setup"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "account-two-step.png"), full_page=True)
    key = base64.b32decode(page.locator("#totp-secret").inner_text().replace(" ", ""))

    def code(steps_ahead: int = 0) -> str:
        totp = TOTP(key, step=30, t0=0, digits=6, drift=0)
        totp.time = time.time() + 30 * steps_ahead
        return f"{totp.token():06d}"

    page.get_by_label("Code").fill(code())
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", name="Your recovery codes").is_visible()
    assert page.locator(".recovery-codes li").count() == 10
    assert axe_violations(page, axe_source) == [], "two-step on"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"))
    sign_in(page, "grace.l3@msp.example", DEMO_PASSWORD)
    page.wait_for_url(re.compile(r"/login/code$"))
    assert page.get_by_role("heading", name="Enter your sign-in code").is_visible()
    assert axe_violations(page, axe_source) == [], "code step"
    page.get_by_label("Code").fill("000000" if code(1) != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    assert (
        "That code is not right"
        in page.locator(".field, div").filter(has_text="That code is not right").first.inner_text()
    )
    page.get_by_label("Code").fill(code(1))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/"))
    stayed_home(page, server, answered=(422,))
