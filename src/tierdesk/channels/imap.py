"""Fetching from an IMAP mailbox (over TLS, or STARTTLS), crash-safely.

Each message not yet taken is read without marking it (``BODY.PEEK``), stored and
committed (``inbound.store``), and only then flagged on the server: with the keyword
``$TierdeskStored`` where the server keeps keywords (and ``\\Seen``), else with ``\\Seen``
alone. A crash between the two fetches it again next time, and ``store`` recognises it.
Messages over ``MAX_MESSAGE_BYTES`` are not downloaded: their header is stored and they
are quarantined as too large.

Mailboxes are configured by admins (the MSP), so a mailbox may be on a private network;
tenant-chosen addresses go through channels.http instead.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import ssl
from types import TracebackType

import certifi
from django.conf import settings

from tierdesk.channels import inbound
from tierdesk.channels.models import Mailbox, MailSecurity
from tierdesk.core import crypto, faults

KEYWORD = "$TierdeskStored"
TIMEOUT = 20  # seconds per network operation
BATCH = 200  # messages taken per poll at most


class MailError(Exception):
    """The mailbox could not be read; the message says why, for an admin."""


def _context(mailbox: Mailbox) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certifi.where())
    if mailbox.ca_certificate.strip():
        try:
            context.load_verify_locations(cadata=mailbox.ca_certificate)
        except (ssl.SSLError, ValueError) as exc:
            raise MailError(f"the CA certificate given is not valid PEM: {exc}") from None
    return context


def describe(exc: BaseException, mailbox: Mailbox) -> str:
    """What went wrong, in an admin's words."""
    where = f"{mailbox.host}:{mailbox.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{where}: the server's certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"{where}: TLS failed ({exc.reason or exc})"
    if isinstance(exc, socket.gaierror):
        return f"{mailbox.host}: no such host"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{where}: no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused"
    if isinstance(exc, OSError):
        return f"{where}: unreachable ({exc.strerror or exc})"
    if isinstance(exc, crypto.Unreadable):
        return "the stored password cannot be read (the secret key changed): enter it again"
    if isinstance(exc, imaplib.IMAP4.error):
        text = str(exc)
        if "authenticat" in text.lower() or "login" in text.lower():
            return "the server refused the user name or password"
        return f"the server said: {text[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class Connection:
    """A logged-in connection with the mailbox's folder selected."""

    def __init__(self, mailbox: Mailbox, *, timeout: float = TIMEOUT) -> None:
        self.mailbox = mailbox
        self.timeout = timeout
        self.imap: imaplib.IMAP4 | None = None
        self.keywords = False

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        box = self.mailbox
        try:
            context = _context(box)
            if box.security == MailSecurity.TLS:
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    box.host, box.port, ssl_context=context, timeout=self.timeout
                )
            else:
                imap = imaplib.IMAP4(box.host, box.port, timeout=self.timeout)
                imap.starttls(ssl_context=context)
            self.imap = imap
            imap.login(box.username, crypto.unseal(box.password_sealed))
            status, _ = imap.select(_quoted(box.folder))
            if status != "OK":
                raise MailError(f"there is no folder {box.folder!r}")
            answers = imap.untagged_responses.get("PERMANENTFLAGS", [])
            flags = b" ".join(x for x in answers if isinstance(x, bytes))
            self.keywords = b"\\*" in flags
        except MailError:
            self.close()
            raise
        except (OSError, imaplib.IMAP4.error, crypto.Unreadable) as exc:
            self.close()
            raise MailError(describe(exc, box)) from exc

    def close(self) -> None:
        if self.imap is None:
            return
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            self.imap.logout()
        self.imap = None

    def _uid(self, *args: str) -> list[object]:
        assert self.imap is not None
        status, data = self.imap.uid(*args)
        if status != "OK":
            raise MailError(f"the server refused {args[0]}: {data!r:.200}")
        return list(data)

    def waiting(self) -> list[bytes]:
        """The UIDs of the messages not taken yet."""
        criterion = f"UNKEYWORD {KEYWORD}" if self.keywords else "UNSEEN"
        found = self._uid("SEARCH", criterion)
        first = found[0] if found else b""
        return first.split() if isinstance(first, bytes) else []

    def take(self, limit: int = BATCH) -> tuple[int, int]:
        """Store the messages not taken yet (at most ``limit``), a chunk at a time, each
        chunk flagged on the server after its messages are committed; how many were
        taken, and how many of those were new."""
        sizes = self._sizes(self.waiting()[:limit])
        taken = new = 0
        for chunk in _chunks(sizes):
            bodies = self._bodies(
                [u for u in chunk if sizes[u] <= settings.MAIL_MAX_BYTES], "BODY.PEEK[]"
            ) | self._bodies(
                [u for u in chunk if sizes[u] > settings.MAIL_MAX_BYTES], "BODY.PEEK[HEADER]"
            )  # fmt: skip
            faults.point("imap.fetched")
            for uid in chunk:
                if uid not in bodies:
                    continue  # expunged meanwhile
                large = sizes[uid] > settings.MAIL_MAX_BYTES
                _message, created = inbound.store(
                    self.mailbox, bodies[uid], size=sizes[uid] if large else None
                )
                new += created
                faults.point("imap.stored")  # committed, not yet flagged
            if bodies:
                flags = f"(\\Seen {KEYWORD})" if self.keywords else "(\\Seen)"
                self._uid("STORE", b",".join(bodies).decode(), "+FLAGS.SILENT", flags)
            taken += len(bodies)
        return taken, new

    def _sizes(self, uids: list[bytes]) -> dict[bytes, int]:
        """Each message's size, by UID, in the order given (those expunged left out)."""
        if not uids:
            return {}
        found: dict[bytes, int] = {}
        for item in self._uid("FETCH", b",".join(uids).decode(), "(UID RFC822.SIZE)"):
            head = item[0] if isinstance(item, tuple) else item
            uid = re.search(rb"\bUID (\d+)", head if isinstance(head, bytes) else b"")
            size = re.search(rb"RFC822\.SIZE (\d+)", head if isinstance(head, bytes) else b"")
            if uid and size:
                found[uid.group(1)] = int(size.group(1))
        return {u: found[u] for u in uids if u in found}

    def _bodies(self, uids: list[bytes], part: str) -> dict[bytes, bytes]:
        """Each message's bytes by UID. A server may name the UID before the literal or
        after it (in the line that follows): both are read."""
        if not uids:
            return {}
        found: dict[bytes, bytes] = {}
        pending: bytes | None = None  # a literal whose UID was not in its own line
        for item in self._uid("FETCH", b",".join(uids).decode(), f"(UID {part})"):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                uid = re.search(rb"\bUID (\d+)", item[0])
                if uid:
                    found[uid.group(1)] = item[1]
                    pending = None
                else:
                    pending = item[1]
            elif isinstance(item, bytes) and pending is not None:
                uid = re.search(rb"\bUID (\d+)", item)
                if uid:
                    found[uid.group(1)] = pending
                pending = None
        return found


CHUNK_MESSAGES = 25
CHUNK_BYTES = 32 * 1024 * 1024  # held in memory at once (one larger message goes alone)


def _chunks(sizes: dict[bytes, int]) -> list[list[bytes]]:
    chunks: list[list[bytes]] = [[]]
    held = 0
    for uid, size in sizes.items():
        size = min(size, settings.MAIL_MAX_BYTES)
        full = len(chunks[-1]) >= CHUNK_MESSAGES or held + size > CHUNK_BYTES
        if chunks[-1] and full:
            chunks.append([])
            held = 0
        chunks[-1].append(uid)
        held += size
    return [c for c in chunks if c]


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def poll(mailbox: Mailbox) -> int:
    """Take what waits in ``mailbox``; the count stored new. Raises ``MailError``."""
    with Connection(mailbox) as connection:
        return connection.take()[1]
