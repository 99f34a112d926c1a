"""What the channels tests share: the SMTP server notifications are sent to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cast
from tests.smtp import Inbox, smtp_server
from tierdesk.core import clock
from tierdesk.core.models import OutboxEvent

FROM = "Service Desk <desk@msp.example>"


def use_smtp(settings: Any, port: int) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "use_tls": False, "timeout": 5},
        }
    }


@pytest.fixture
def inbox(settings: Any, cast: Cast) -> Iterator[Inbox]:
    """A real SMTP server on loopback (aiosmtpd) that notifications go to, with
    ``PUBLIC_URL`` https://desk.msp.example; the cast's own events count as relayed."""
    with smtp_server() as server:
        use_smtp(settings, server.port)
        settings.DEFAULT_FROM_EMAIL = FROM
        settings.PUBLIC_URL = "https://desk.msp.example"
        settings.MSP_NAME = "MSP Desk"
        OutboxEvent.objects.update(dispatched_at=clock.now())  # the cast's own events
        yield server
