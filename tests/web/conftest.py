"""Shared by the page tests."""

from __future__ import annotations

from django.test import Client

from tierdesk.core.models import User


def signed_in(user: User) -> Client:
    """A test client with ``user`` signed in (no password needed)."""
    client = Client()
    client.force_login(user)
    return client
