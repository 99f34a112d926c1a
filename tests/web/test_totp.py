"""Two-step sign-in with an authenticator app (TOTP, django-otp) for staff: turning it on
with a QR code and a confirming code, the code step after the password, replays and wrong
codes refused, recovery codes, turning it off, and admins required to use it when the
setting says so. Codes are computed here from the secret, as an app would."""

from __future__ import annotations

import base64
import re
import time
from typing import Any

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.conftest import Cast
from tests.web.conftest import signed_in
from tierdesk.core.models import User
from tierdesk.web import services
from tierdesk.web.models import RateLimitHit

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _whole_time_step() -> None:
    """Start each test at least 8 s before the next 30 s step: the tests reason about "this
    step's code" and "the next one", which a step boundary mid-test would shift."""
    left = 30 - time.time() % 30
    if left < 8:
        time.sleep(left + 0.05)


def code_for(key: bytes, steps_ahead: int = 0) -> str:
    totp = TOTP(key, step=30, t0=0, digits=6, drift=0)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def with_password(user: User) -> User:
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def enable(user: User) -> tuple[bytes, list[str]]:
    """Two-step sign-in on for ``user`` through the services; returns the key and the
    recovery codes."""
    device = services.two_step_begin(actor=user)
    codes = services.two_step_confirm(actor=user, code=code_for(device.bin_key))
    return device.bin_key, codes


def password_step(client: Client, email: str, next_url: str = "") -> Any:
    data = {"username": email, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    return client.post("/login", data, REMOTE_ADDR="192.0.2.10")


def code_step(client: Client, code: str, ip: str = "192.0.2.10") -> Any:
    return client.post("/login/code", {"code": code}, REMOTE_ADDR=ip)


def is_signed_in(client: Client) -> bool:
    return client.get("/account/").status_code == 200


def test_requesters_have_no_two_step_page(cast: Cast) -> None:
    assert signed_in(cast.alice).get("/account/two-step").status_code == 404
    assert Client().get("/account/two-step")["Location"].startswith("/login")


def test_an_agent_turns_it_on_with_a_qr_code_and_a_code(cast: Cast) -> None:
    client = signed_in(cast.lena)
    page = client.get("/account/two-step").content.decode()
    assert "Set up two-step sign-in" in page
    assert client.post("/account/two-step", {"action": "begin"}).status_code == 302

    page = client.get("/account/two-step").content.decode()
    svg = re.search(r"<svg.*?</svg>", page, re.S)
    assert svg, page
    assert "http" not in svg.group(0)  # drawn here, nothing fetched
    assert "style=" not in svg.group(0)  # the page's CSP allows no inline style
    shown = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert shown, page
    key = base64.b32decode(shown.group(1).replace(" ", ""))
    assert key == TOTPDevice.objects.get(user=cast.lena).bin_key
    assert not services.two_step_enabled(cast.lena)

    wrong = client.post("/account/two-step", {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 422
    assert "That code does not match" in wrong.content.decode()
    assert not services.two_step_enabled(cast.lena)

    right = client.post("/account/two-step", {"action": "confirm", "code": code_for(key)})
    page = right.content.decode()
    assert right.status_code == 200
    assert "Two-step sign-in is on" in page
    assert len(re.findall(r"<li><code>[a-z2-7]{5}-[a-z2-7]{5}</code></li>", page)) == 10
    assert services.two_step_enabled(cast.lena)
    assert services.recovery_codes_left(cast.lena) == 10


def test_recovery_codes_are_stored_hashed(cast: Cast) -> None:
    _, codes = enable(cast.lena)
    from django_otp.plugins.otp_static.models import StaticToken

    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert len(stored) == 10
    assert not stored & ({c.replace("-", "") for c in codes} | set(codes))


def test_sign_in_asks_for_the_code_after_the_password(cast: Cast) -> None:
    with_password(cast.lena)
    key, _ = enable(cast.lena)
    client = Client()
    first = password_step(client, "lena@msp.example", next_url="/console/queue/l2")
    assert first.status_code == 302
    assert first["Location"] == "/login/code"
    assert not is_signed_in(client)  # the password alone signs nobody in
    between = client.session.session_key
    page = client.get("/login/code").content.decode()
    assert "Enter your sign-in code" in page
    assert 'autocomplete="one-time-code"' in page

    wrong = code_step(client, "123456" if code_for(key, 1) != "123456" else "654321")
    assert wrong.status_code == 422
    assert "That code is not right" in wrong.content.decode()
    assert not is_signed_in(client)

    # (setting it up used this step's code: the app's next one is accepted, one step early)
    right = code_step(client, code_for(key, steps_ahead=1))
    assert right.status_code == 302
    assert right["Location"] == "/console/queue/l2"
    assert is_signed_in(client)
    assert client.session.session_key != between


def test_accounts_without_it_sign_in_with_the_password_alone(cast: Cast) -> None:
    with_password(cast.lena)
    client = Client()
    assert password_step(client, "lena@msp.example")["Location"] == "/"
    assert is_signed_in(client)


def test_a_used_code_cannot_be_replayed(cast: Cast) -> None:
    with_password(cast.lena)
    key, _ = enable(cast.lena)  # used the current step's code
    client = Client()
    password_step(client, "lena@msp.example")
    assert code_step(client, code_for(key)).status_code == 422
    assert code_step(client, code_for(key, steps_ahead=1)).status_code == 302
    again = Client()
    password_step(again, "lena@msp.example")
    assert code_step(again, code_for(key, steps_ahead=1)).status_code == 422
    assert not is_signed_in(again)


def test_a_recovery_code_works_once(cast: Cast) -> None:
    with_password(cast.lena)
    _, codes = enable(cast.lena)
    client = Client()
    password_step(client, "lena@msp.example")
    assert code_step(client, codes[3].upper()).status_code == 302
    assert services.recovery_codes_left(cast.lena) == 9
    again = Client()
    password_step(again, "lena@msp.example")
    assert code_step(again, codes[3]).status_code == 422


def test_wrong_codes_are_limited_per_account(cast: Cast, settings: Any) -> None:
    settings.TWO_STEP_FAILURE_LIMIT = 3
    with_password(cast.lena)
    key, _ = enable(cast.lena)
    wrong = "000000" if code_for(key, 1) != "000000" else "111111"
    for i in range(3):
        client = Client()
        password_step(client, "lena@msp.example")
        assert code_step(client, wrong, ip=f"192.0.2.{i + 20}").status_code == 422
    client = Client()
    password_step(client, "lena@msp.example")
    locked = code_step(client, code_for(key, 1), ip="192.0.2.99")
    assert locked.status_code == 429
    assert "Too many wrong codes" in locked.content.decode()
    assert not is_signed_in(client)


def test_wrong_codes_are_limited_per_address(cast: Cast, settings: Any) -> None:
    settings.TWO_STEP_FAILURE_LIMIT = 2
    with_password(cast.lena)
    with_password(cast.omar)
    enable(cast.lena)
    omar_key, _ = enable(cast.omar)
    for _ in range(2):
        client = Client()
        password_step(client, "lena@msp.example")
        assert code_step(client, "999999x", ip="198.51.100.3").status_code == 422
    client = Client()
    password_step(client, "omar@msp.example")
    assert code_step(client, code_for(omar_key, 1), ip="198.51.100.3").status_code == 429
    assert code_step(client, code_for(omar_key, 1), ip="198.51.100.4").status_code == 302


def test_right_codes_do_not_count_against_a_shared_address(cast: Cast, settings: Any) -> None:
    settings.TWO_STEP_FAILURE_LIMIT = 2
    keys = {}
    for user in (cast.lena, cast.omar, cast.manager):
        with_password(user)
        keys[user.email] = enable(user)[0]
    for email, key in keys.items():  # three people behind one office address
        client = Client()
        password_step(client, email)
        assert code_step(client, code_for(key, 1), ip="203.0.113.5").status_code == 302
    assert not RateLimitHit.objects.exists()


def test_the_code_step_expires_and_starts_over(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    with_password(cast.lena)
    key, _ = enable(cast.lena)
    client = Client()
    password_step(client, "lena@msp.example")
    later = time.time() + 301
    monkeypatch.setattr("tierdesk.web.views.auth.time.time", lambda: later)
    r = code_step(client, code_for(key, 1))
    assert r["Location"] == "/login"
    assert not is_signed_in(client)


def test_a_password_change_voids_a_half_done_sign_in(cast: Cast) -> None:
    with_password(cast.lena)
    key, _ = enable(cast.lena)
    client = Client()
    password_step(client, "lena@msp.example")
    user = User.objects.get(pk=cast.lena.pk)
    user.set_password("another strong password 9")
    user.save(update_fields=["password"])
    assert code_step(client, code_for(key, 1))["Location"] == "/login"
    assert not is_signed_in(client)


def test_turning_it_off_needs_a_code_or_the_password(cast: Cast) -> None:
    with_password(cast.lena)
    key, _ = enable(cast.lena)
    client = signed_in(User.objects.get(pk=cast.lena.pk))
    empty = client.post("/account/two-step", {"action": "disable"})
    assert empty.status_code == 422
    assert "Enter a current code or your password" in empty.content.decode()
    bad = client.post("/account/two-step", {"action": "disable", "password": "nope nope"})
    assert bad.status_code == 422
    assert services.two_step_enabled(cast.lena)
    ok = client.post("/account/two-step", {"action": "disable", "code": code_for(key, 1)})
    assert ok.status_code == 302
    assert not services.two_step_enabled(cast.lena)
    client2 = Client()
    assert password_step(client2, "lena@msp.example")["Location"] == "/"


def test_new_recovery_codes_replace_the_old(cast: Cast) -> None:
    with_password(cast.lena)
    _, old = enable(cast.lena)
    client = signed_in(cast.lena)
    refused = client.post("/account/two-step", {"action": "renew-codes"})  # no re-check
    assert refused.status_code == 422
    assert "Enter a current code or your password." in refused.content.decode()
    assert services.two_step_verify(user=cast.lena, code=old[1])  # still the old codes
    page = client.post("/account/two-step", {"action": "renew-codes", "renew-password": PASSWORD})
    new = re.findall(r"<li><code>([a-z2-7-]{11})</code></li>", page.content.decode())
    assert len(new) == 10
    assert not set(new) & set(old)
    assert not services.two_step_verify(user=cast.lena, code=old[0])
    assert services.two_step_verify(user=cast.lena, code=new[0])


def test_admins_must_set_it_up_when_required(cast: Cast, settings: Any) -> None:
    settings.REQUIRE_ADMIN_2FA = True
    admin = signed_in(cast.admin)
    r = admin.get("/console/")
    assert r.status_code == 302
    assert r["Location"] == "/account/two-step"
    assert admin.get("/account/").status_code == 302
    page = admin.get("/account/two-step").content.decode()
    assert "requires two-step sign-in for admins" in page
    # Other staff are free.
    assert signed_in(cast.lena).get("/account/").status_code == 200

    admin.post("/account/two-step", {"action": "begin"})
    key = TOTPDevice.objects.get(user=cast.admin).bin_key
    admin.post("/account/two-step", {"action": "confirm", "code": code_for(key)})
    assert admin.get("/account/").status_code == 200
    # and it cannot be turned off while required
    off = admin.post("/account/two-step", {"action": "disable", "code": code_for(key, 1)})
    assert off.status_code == 403
    assert services.two_step_enabled(cast.admin)


def test_admins_are_free_when_not_required(cast: Cast, settings: Any) -> None:
    settings.REQUIRE_ADMIN_2FA = False
    assert signed_in(cast.admin).get("/account/").status_code == 200
