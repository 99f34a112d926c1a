"""Signing in and out: clear errors, a new session on sign-in, CSRF on the form, and
failures limited per account and per address (django-axes, on the real database)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import Cast
from tierdesk.core.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


def with_password(user: User) -> User:
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def sign_in(client: Client, email: str, password: str, ip: str = "192.0.2.10") -> object:
    return client.post("/login", {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_a_wrong_password_says_so_and_keeps_the_email(cast: Cast) -> None:
    with_password(cast.lena)
    r = sign_in(Client(), "lena@msp.example", "wrong")
    page = r.content.decode()  # type: ignore[attr-defined]
    assert r.status_code == 200  # type: ignore[attr-defined]
    assert "do not match an active account" in page
    assert 'value="lena@msp.example"' in page


def test_signing_in_starts_a_new_session(cast: Cast) -> None:
    with_password(cast.lena)
    client = Client()
    session = client.session
    session["probe"] = 1
    session.save()
    before = session.session_key
    r = sign_in(client, "lena@msp.example", PASSWORD)
    assert r.status_code == 302
    assert r["Location"] == "/"
    assert client.session.session_key != before
    assert client.get("/console/queue/l1").status_code == 200


def test_the_email_is_not_case_sensitive(cast: Cast) -> None:
    with_password(cast.lena)
    assert sign_in(Client(), " Lena@MSP.example ", PASSWORD).status_code == 302  # type: ignore[attr-defined]


def test_an_inactive_account_cannot_sign_in(cast: Cast) -> None:
    with_password(cast.lena)
    User.objects.filter(pk=cast.lena.pk).update(is_active=False)
    r = sign_in(Client(), "lena@msp.example", PASSWORD)
    assert r.status_code == 200  # type: ignore[attr-defined]
    assert "do not match an active account" in r.content.decode()  # type: ignore[attr-defined]


def test_the_form_needs_its_csrf_token(cast: Cast) -> None:
    with_password(cast.lena)
    client = Client(enforce_csrf_checks=True)
    assert sign_in(client, "lena@msp.example", PASSWORD).status_code == 403  # type: ignore[attr-defined]


def test_sign_out_is_a_post_and_ends_the_session(cast: Cast) -> None:
    client = Client()
    client.force_login(cast.lena)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/console/queue/l1").status_code == 302


def test_too_many_failures_lock_the_account_even_from_elsewhere(cast: Cast) -> None:
    with_password(cast.lena)
    for i in range(settings.AXES_FAILURE_LIMIT):
        email = "LENA@msp.example" if i % 2 else "lena@msp.example"  # one account, any case
        sign_in(Client(), email, f"guess {i}", ip=f"198.51.100.{i + 1}")
    r = sign_in(Client(), "lena@msp.example", PASSWORD, ip="203.0.113.7")
    assert r.status_code == 429  # type: ignore[attr-defined]
    assert "Too many failed sign-ins" in r.content.decode()  # type: ignore[attr-defined]
    # another account is not affected
    with_password(cast.omar)
    assert sign_in(Client(), "omar@msp.example", PASSWORD, ip="203.0.113.8").status_code == 302  # type: ignore[attr-defined]


def test_too_many_failures_from_one_address_lock_that_address(cast: Cast) -> None:
    with_password(cast.omar)
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(Client(), f"nobody{i}@msp.example", "guess", ip="198.51.100.99")
    r = sign_in(Client(), "omar@msp.example", PASSWORD, ip="198.51.100.99")
    assert r.status_code == 429  # type: ignore[attr-defined]
    assert sign_in(Client(), "omar@msp.example", PASSWORD, ip="198.51.100.100").status_code == 302  # type: ignore[attr-defined]


NEW_PASSWORD = "a different long passphrase"


def change(client: Client, old: str, new: str, again: str | None = None) -> object:
    return client.post(
        "/account/password",
        {"old_password": old, "new_password1": new, "new_password2": again or new},
    )


def test_changing_the_password_needs_the_current_one(cast: Cast) -> None:
    with_password(cast.lena)
    client = Client()
    sign_in(client, "lena@msp.example", PASSWORD)
    r = change(client, "not it", NEW_PASSWORD)
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "Your old password was entered incorrectly" in r.content.decode()  # type: ignore[attr-defined]
    r = change(client, PASSWORD, "short")
    assert r.status_code == 422  # type: ignore[attr-defined]
    assert "too short" in r.content.decode()  # type: ignore[attr-defined]
    r = change(client, PASSWORD, NEW_PASSWORD, "a different long passphrasE")
    assert r.status_code == 422  # type: ignore[attr-defined]
    cast.lena.refresh_from_db()
    assert cast.lena.check_password(PASSWORD)


def test_a_new_password_ends_the_other_sessions_and_keeps_this_one(cast: Cast) -> None:
    with_password(cast.lena)
    here, elsewhere = Client(), Client()
    sign_in(here, "lena@msp.example", PASSWORD)
    sign_in(elsewhere, "lena@msp.example", PASSWORD, ip="192.0.2.77")
    before = here.session.session_key
    assert elsewhere.get("/console/queue/l1").status_code == 200
    assert change(here, PASSWORD, NEW_PASSWORD).status_code == 302  # type: ignore[attr-defined]
    assert here.session.session_key != before
    assert here.get("/console/queue/l1").status_code == 200
    assert elsewhere.get("/console/queue/l1").status_code == 302  # signed out
    assert sign_in(Client(), "lena@msp.example", NEW_PASSWORD).status_code == 302  # type: ignore[attr-defined]
    assert sign_in(Client(), "lena@msp.example", PASSWORD).status_code == 200  # type: ignore[attr-defined]


def test_changing_the_password_needs_a_sign_in(cast: Cast) -> None:
    r = Client().get("/account/password")
    assert r.status_code == 302
    assert r["Location"].startswith("/login")
