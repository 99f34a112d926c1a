"""Password reset by email link, against a real SMTP server on loopback: the same answer
whether or not the account exists, a link that works once and for a limited time, other
sessions ended, and requests limited per email and per source address (in the database)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.test import Client

from tests.conftest import Cast
from tests.smtp import Inbox, body, mail_to_smtp, reset_link
from tests.web.conftest import signed_in
from tierdesk.core import clock
from tierdesk.core.models import User
from tierdesk.web.models import RateLimitHit

pytestmark = pytest.mark.django_db
OLD = "correct horse battery staple"
NEW = "tangerine kettle moonlight 42"


@pytest.fixture
def inbox(settings: Any) -> Iterator[Inbox]:
    with mail_to_smtp(settings) as server:
        yield server


def with_password(user: User, password: str = OLD) -> User:
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


def ask(client: Client, email: str, ip: str = "192.0.2.10") -> Any:
    return client.post("/password-reset", {"email": email}, REMOTE_ADDR=ip)


def path_of(url: str) -> str:
    return urlsplit(url).path


def set_new_password(client: Client, link: str, password: str = NEW) -> Any:
    opened = client.get(path_of(link))
    assert opened.status_code == 302, opened.content.decode()
    form_url = opened["Location"]
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def signs_in(email: str, password: str) -> bool:
    r = Client().post("/login", {"username": email, "password": password})
    return r.status_code == 302


def test_the_sign_in_page_offers_the_reset() -> None:
    page = Client().get("/login").content.decode()
    assert 'href="/password-reset"' in page
    assert "Forgot your password?" in page


def test_a_reset_by_email_link_sets_a_new_password(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    client = Client()
    r = ask(client, "Lena@MSP.example")
    assert r.status_code == 302
    assert r["Location"] == "/password-reset/sent"
    assert "If an account uses that email" in client.get("/password-reset/sent").content.decode()

    [mail] = inbox.wait_for("lena@msp.example")
    assert mail["From"] == "desk@msp.example"
    assert mail["Subject"] == "Set a new tierdesk password"
    assert "60 minutes" in body(mail)
    link = reset_link(mail)
    assert link.startswith("http://testserver/password-reset/")

    done = set_new_password(client, link)
    assert done.status_code == 302
    assert done["Location"] == "/login"
    assert "Your password has been set" in client.get("/login").content.decode()
    assert signs_in("lena@msp.example", NEW)
    assert not signs_in("lena@msp.example", OLD)


def test_a_reset_ends_the_accounts_lockout(cast: Cast, inbox: Inbox, settings: Any) -> None:
    with_password(cast.lena)
    for i in range(settings.AXES_FAILURE_LIMIT):
        Client().post("/login", {"username": "lena@msp.example", "password": f"guess {i}"},
                      REMOTE_ADDR="198.51.100.66")  # fmt: skip
    assert not signs_in("lena@msp.example", OLD)  # locked out, even with the right password
    ask(Client(), "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    assert set_new_password(Client(), link).status_code == 302
    assert signs_in("lena@msp.example", NEW)


def test_the_link_works_only_once(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    ask(Client(), "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    assert set_new_password(Client(), link).status_code == 302

    again = Client().get(path_of(link), follow=True)
    assert again.status_code == 400
    assert "This link does not work any more" in again.content.decode()
    assert set_new_password_refused(link, "another fine password 77")
    assert signs_in("lena@msp.example", NEW)


def set_new_password_refused(link: str, password: str) -> bool:
    client = Client()
    client.get(path_of(link))
    form_url = path_of(link).rsplit("/", 1)[0] + "/set-password"
    r = client.post(form_url, {"new_password1": password, "new_password2": password})
    return r.status_code == 400


def test_a_password_change_voids_the_link(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    ask(Client(), "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    with_password(User.objects.get(pk=cast.lena.pk), "changed meanwhile 1234")
    assert Client().get(path_of(link), follow=True).status_code == 400


def test_an_expired_link_is_refused(
    cast: Cast, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_password(cast.lena)
    ask(Client(), "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    sent = dt.datetime.now()
    late = sent + dt.timedelta(minutes=59)
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: late)
    assert Client().get(path_of(link)).status_code == 302  # still valid just before the hour

    later = sent + dt.timedelta(minutes=61)
    monkeypatch.setattr(PasswordResetTokenGenerator, "_now", lambda self: later)
    refused = Client().get(path_of(link), follow=True)
    assert refused.status_code == 400
    assert "does not work any more" in refused.content.decode()


def test_an_unknown_email_gets_the_same_answer_and_no_mail(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    unknown = ask(Client(), "nobody@msp.example")
    known = ask(Client(), "lena@msp.example")
    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    inbox.wait_for("lena@msp.example")
    time.sleep(0.5)  # the unknown request came first; its mail would be here by now
    assert [str(m["To"]) for m in inbox.messages] == ["lena@msp.example"]


def test_an_inactive_account_gets_no_mail(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    with_password(cast.omar)
    User.objects.filter(pk=cast.lena.pk).update(is_active=False)
    assert ask(Client(), "lena@msp.example")["Location"] == "/password-reset/sent"
    ask(Client(), "omar@msp.example")
    inbox.wait_for("omar@msp.example")
    time.sleep(0.5)
    assert inbox.to("lena@msp.example") == []


def test_a_bad_email_is_refused_beside_the_field_and_kept() -> None:
    r = ask(Client(), "not an email")
    page = r.content.decode()
    assert r.status_code == 422
    assert "Enter a valid email address." in page
    assert 'value="not an email"' in page


def test_a_new_password_ends_every_session_and_signs_no_one_in(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    elsewhere = signed_in(User.objects.get(pk=cast.lena.pk))
    assert elsewhere.get("/console/").status_code in {200, 302}
    assert elsewhere.get("/account/").status_code == 200
    # This browser is signed in as someone else when the link is used.
    browser = signed_in(cast.bob)
    ask(browser, "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    assert set_new_password(browser, link).status_code == 302

    assert elsewhere.get("/account/")["Location"].startswith("/login")
    assert browser.get("/account/")["Location"].startswith("/login")


def test_a_weak_new_password_is_refused_and_the_link_still_works(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    client = Client()
    ask(client, "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    r = set_new_password(client, link, password="12345")
    assert r.status_code == 422
    assert "too short" in r.content.decode()
    assert set_new_password(Client(), link).status_code == 302


def test_links_use_the_public_url_when_set(cast: Cast, inbox: Inbox, settings: Any) -> None:
    settings.PUBLIC_URL = "https://desk.msp.example"
    with_password(cast.lena)
    ask(Client(), "lena@msp.example")
    link = reset_link(inbox.wait_for("lena@msp.example")[0])
    assert link.startswith("https://desk.msp.example/password-reset/")


def test_requests_per_account_are_limited_without_telling(
    cast: Cast, inbox: Inbox, settings: Any
) -> None:
    settings.RESET_LIMIT_PER_ACCOUNT = 3
    with_password(cast.lena)
    start = clock.now()
    with clock.frozen_at(start):
        for i in range(3):
            assert ask(Client(), "lena@msp.example", ip=f"192.0.2.{i + 1}").status_code == 302
        inbox.wait_for("lena@msp.example", count=3)
        fourth = ask(Client(), "LENA@msp.example", ip="192.0.2.99")
        assert fourth.status_code == 302
        assert fourth["Location"] == "/password-reset/sent"
        # Another account is not affected.
        with_password(cast.omar)
        ask(Client(), "omar@msp.example", ip="192.0.2.99")
        inbox.wait_for("omar@msp.example")
    time.sleep(0.5)
    assert len(inbox.to("lena@msp.example")) == 3
    # An hour later the account may ask again.
    with clock.frozen_at(start + dt.timedelta(minutes=61)):
        ask(Client(), "lena@msp.example", ip="192.0.2.99")
    inbox.wait_for("lena@msp.example", count=4)


def test_requests_per_source_address_are_limited(cast: Cast, inbox: Inbox, settings: Any) -> None:
    settings.RESET_LIMIT_PER_ADDRESS = 10
    for i in range(10):
        assert ask(Client(), f"someone{i}@msp.example", ip="198.51.100.7").status_code == 302
    with_password(cast.lena)
    refused = ask(Client(), "lena@msp.example", ip="198.51.100.7")
    page = refused.content.decode()
    assert refused.status_code == 429
    assert "Too many reset requests from this address" in page
    assert 'value="lena@msp.example"' in page
    # Another address may still ask, and the account still gets its mail.
    assert ask(Client(), "lena@msp.example", ip="198.51.100.8").status_code == 302
    assert len(inbox.wait_for("lena@msp.example")) == 1


def test_the_counts_keep_no_email_or_address(cast: Cast, inbox: Inbox) -> None:
    with_password(cast.lena)
    ask(Client(), "lena@msp.example", ip="203.0.113.5")
    inbox.wait_for("lena@msp.example")
    stored = [f"{r.scope} {r.key}" for r in RateLimitHit.objects.all()]
    assert len(stored) == 2
    assert not any("lena" in s or "203.0.113.5" in s for s in stored)
