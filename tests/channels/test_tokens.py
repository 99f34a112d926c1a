"""Reply tokens verify only for their organization, ticket, sender and lifetime."""

from __future__ import annotations

import datetime as dt

import pytest

from tierdesk.channels import tokens
from tierdesk.core import clock


def _token(**overrides: object) -> str:
    args: dict[str, object] = {
        "organization_id": 3, "ticket_id": 42, "recipient": "Ann@Acme.test", "nonce": "a1"
    } | overrides  # fmt: skip
    return tokens.make(**args)  # type: ignore[arg-type]


def test_a_token_verifies_for_its_sender_and_organization() -> None:
    token = _token()
    header = f"<{token}@desk.example>"
    assert tokens.verify(header, organization_id=3, sender="ann@acme.test") == 42
    assert tokens.verify(header.upper(), organization_id=3, sender="ANN@acme.test") == 42


@pytest.mark.parametrize(
    ("organization_id", "sender"),
    [(4, "ann@acme.test"), (3, "eve@acme.test"), (3, "")],
)
def test_a_token_does_not_verify_elsewhere(organization_id: int, sender: str) -> None:
    assert tokens.verify(_token(), organization_id=organization_id, sender=sender) is None


def test_a_changed_token_does_not_verify() -> None:
    token = _token()
    other_ticket = token.replace("tdk-42-", "tdk-43-", 1)
    flipped = token[:-1] + ("0" if token[-1] != "0" else "1")
    for forged in (other_ticket, flipped, "Re: [ACME-42] help", "tdk-42-zzzzzz-a1-" + "0" * 20):
        assert tokens.verify(forged, organization_id=3, sender="ann@acme.test") is None


def test_an_expired_token_does_not_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    token = _token()
    later = clock.now() + tokens.LIFETIME + dt.timedelta(days=2)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert tokens.verify(token, organization_id=3, sender="ann@acme.test") is None


def test_a_bad_nonce_is_refused() -> None:
    with pytest.raises(ValueError, match="nonce"):
        _token(nonce="A-1")
