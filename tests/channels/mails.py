"""Messages for the email tests, built as mail programs build them."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
from email.message import EmailMessage
from email.utils import format_datetime

_ids = itertools.count(1)


def mail(
    *,
    sender: str = "Alice <alice@acme.example>",
    to: str = "support@acme.example",
    subject: str = "Printer on fire",
    text: str | None = "It smokes.",
    html: str | None = None,
    headers: dict[str, str] | None = None,
    files: list[tuple[str, bytes, str]] | None = None,
    message_id: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC))
    message["Message-ID"] = message_id or f"<m{next(_ids)}@mail.acme.example>"
    for name, value in (headers or {}).items():
        message[name] = value
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for name, content, kind in files or []:
        if kind == "message/rfc822":  # a forwarded message, attached as a message
            inner = email.message_from_bytes(content, policy=email.policy.default)
            message.add_attachment(inner, filename=name)
            continue
        main, _, sub = kind.partition("/")
        message.add_attachment(content, maintype=main, subtype=sub, filename=name)
    return message.as_bytes()
