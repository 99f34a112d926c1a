"""A real SMTP server on loopback for tests (aiosmtpd), keeping what it is sent."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.processes import free_port


@dataclass
class Inbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    # Each message's envelope recipients (RCPT TO), in the same order as ``messages``.
    envelopes: list[list[str]] = field(default_factory=list)
    # Addresses the server refuses for good (550 at RCPT TO).
    refused: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
            self.envelopes.append(list(envelope.rcpt_tos))
        return "250 Message accepted"

    def wait_for(self, to: str, count: int = 1, timeout: float = 15) -> list[EmailMessage]:
        """The messages to ``to`` once there are ``count`` of them (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(to)
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"no mail to {to} within {timeout} s"
            time.sleep(0.05)

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]


@contextlib.contextmanager
def mail_to_smtp(settings: Any, sender: str = "desk@msp.example") -> Iterator[Inbox]:
    """A loopback SMTP server that Django's mail (the default mailer) goes to, from
    ``sender``, for the block."""
    with smtp_server() as server:
        settings.MAILERS = {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": server.host, "port": server.port, "use_tls": False},
            }
        }
        settings.DEFAULT_FROM_EMAIL = sender
        yield server


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def reset_link(message: EmailMessage) -> str:
    found = re.search(r"https?://\S+/password-reset/\S+", body(message))
    assert found, body(message)
    return found.group(0)


@contextlib.contextmanager
def smtp_server() -> Iterator[Inbox]:
    inbox = Inbox("127.0.0.1", free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
