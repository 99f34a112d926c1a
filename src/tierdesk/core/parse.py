"""Parsing of identifiers and connection details that arrive as text from outside."""

from __future__ import annotations

import ipaddress
import ssl

from tierdesk.core.errors import ValidationFailed

MAX_ID = 2**62  # fits every database's 64-bit integer


def as_id(text: str) -> int | None:
    """``text`` as a row id if it is one: ASCII digits only (``str.isdigit`` also accepts
    "²" and other digit signs that ``int`` refuses), within the 64-bit range."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def is_host(host: str) -> bool:
    """Whether ``host`` is a host name or an IP address alone (no scheme, port or path)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return all(
            0 < len(label) <= 63
            and label.isascii()
            and label.replace("-", "").isalnum()
            and not label.startswith("-")
            for label in labels
        )
    return True


def host(value: object, field: str = "host") -> str:
    """A server's host name or IP address, alone and stripped; ``ValidationFailed``
    naming ``field`` otherwise."""
    text = str(value or "").strip()
    if not text or len(text) > 253 or not is_host(text):
        raise ValidationFailed.for_field(
            field, "a host name or an IP address alone (no scheme, port or path)"
        )
    return text


def port(value: object, field: str = "port") -> int:
    """A TCP port number (an integer, not a boolean, 1 to 65535)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise ValidationFailed.for_field(field, "a port number, 1 to 65535")
    return value


def ca_certificate(value: object, field: str = "ca_certificate") -> str:
    """Certificates to trust (PEM) as given for a server with its own authority, checked
    the way a connection will load them; empty for none. The field is shown again, so a
    private key pasted with them is refused."""
    ca = str(value or "").strip()
    if ca and "-----BEGIN CERTIFICATE-----" not in ca:
        raise ValidationFailed.for_field(field, "PEM certificates, or nothing")
    if len(ca) > 50_000:
        raise ValidationFailed.for_field(field, "at most 50,000 characters")
    if "PRIVATE KEY" in ca:
        raise ValidationFailed.for_field(
            field, "certificates only: remove the private key (and keep it secret)"
        )
    if ca:
        try:
            ssl.create_default_context().load_verify_locations(cadata=ca)
        except (ssl.SSLError, ValueError):
            raise ValidationFailed.for_field(field, "not valid PEM certificates") from None
    return ca
