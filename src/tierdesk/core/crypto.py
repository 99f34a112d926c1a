"""Secrets tierdesk must keep to use later (a mailbox's password, a directory's bind
password): encrypted at rest with Fernet (AES-128-CBC and HMAC-SHA256, from the
``cryptography`` package), under a key derived from the installation's secret key.

Changing ``TIERDESK_SECRET_KEY`` makes the stored secrets unreadable: they must be entered
again (``Unreadable`` says which). They are never shown again once stored, and never
logged.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

INFO = b"tierdesk.core.crypto.v1"


class Unreadable(Exception):
    """A stored secret could not be decrypted (the secret key changed, or the value was
    altered)."""


@functools.cache
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(plain: str) -> str:
    """``plain`` encrypted and authenticated, as text to store."""
    return _fernet(settings.SECRET_KEY).encrypt(plain.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    """The text ``seal`` was given; ``Unreadable`` when it cannot be recovered."""
    try:
        return _fernet(settings.SECRET_KEY).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise Unreadable("a stored secret cannot be read: enter it again") from exc
