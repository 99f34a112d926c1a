"""The one client for HTTP requests tierdesk makes to addresses someone else chose (webhook
endpoints first): it will not reach the machine it runs on or the networks behind it.

A URL given by a tenant could otherwise point tierdesk at its own loopback services, the
private network it sits in, or a cloud metadata endpoint (server-side request forgery).
The guard sits where a connection is opened, not where the URL is read: every address
the host name resolves to must be public (not loopback, private, link-local, shared,
multicast, reserved or unspecified; IPv4 inside IPv6 is unwrapped), and the connection
goes to an address that was checked, so a DNS answer that changes between the check and
the connection (rebinding) cannot slip through. Each redirect is a new connection and is
checked again. Proxies from the environment are ignored, requests time out, and a
response body larger than ``MAX_BYTES`` is refused.

``TIERDESK_OUTBOUND_ALLOW_LOOPBACK`` lets loopback addresses through (tests and local
development only: a receiver on 127.0.0.1); nothing else is ever allowed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import certifi
import httpcore
import httpx
from django.conf import settings

MAX_BYTES = 1 << 20  # a response body read at most (as sent: no compression is asked for)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # per connect, read or write
DEADLINE = 30.0  # seconds for the whole exchange, however slowly the other side drips
MAX_REDIRECTS = 3
SCHEMES = ("https", "http")
# IPv6 ranges that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible):
# the IPv4 address is the one judged.
EMBEDDING_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))
# Never reachable though Python may call them global: NAT64's local-use prefix, the
# deprecated site-local range, Teredo.
NOT_PUBLIC_V6 = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("fec0::/10"),
    ipaddress.IPv6Network("2001::/32"),
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """A request tierdesk will not make, or an answer it will not read; ``reason`` says
    why in words an admin can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def allowed(address: Address, *, loopback: bool = False) -> bool:
    """May tierdesk connect to ``address``? Public addresses only (and loopback when
    ``loopback``)."""
    if isinstance(address, ipaddress.IPv6Address):
        if loopback and address.is_loopback:
            return True
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address != ipaddress.IPv6Address("::"):
            for network in EMBEDDING_IPV4:
                if address in network:
                    inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return allowed(inner, loopback=loopback)
        if any(address in network for network in NOT_PUBLIC_V6):
            return False
    if loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses ``allowed`` accepts, resolving the name
    once and connecting to what was checked."""

    def __init__(self, loopback: bool, deadline: float) -> None:
        self._loopback = loopback
        self._deadline = deadline
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        if not addresses:
            raise Refused(f"{host} has no address")
        if any(not allowed(a, loopback=self._loopback) for a in addresses):
            # Which address is not said: the message reaches the tenant who chose the name.
            raise Refused(f"{host} resolves to an address that is not a public address")
        stream = self._backend.connect_tcp(
            str(addresses[0]), port, _left(self._deadline, timeout), local_address,
            socket_options,
        )  # fmt: skip
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise Refused("unix sockets are not reachable")


def _left(deadline: float, timeout: float | None) -> float:
    """The time an operation may take: its own timeout, cut to what is left of the
    exchange's deadline (a slow drip of one byte a second would never time out alone)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ReadTimeout("the exchange took longer than its deadline")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the exchange's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(self._deadline, timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wrapped = self._stream.start_tls(
            ssl_context, server_hostname, _left(self._deadline, timeout)
        )
        return _DeadlineStream(wrapped, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"{host} could not be resolved ({exc.strerror})") from exc
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport with its connection pool opening connections through the
    guard. (The pool is httpx's private attribute: httpx is pinned to a minor version, and
    tests/channels/test_http.py fails if the guard is not in the path.)"""

    def __init__(self, loopback: bool, deadline: float) -> None:
        super().__init__(trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(cafile=certifi.where()),
            max_connections=20,
            network_backend=_GuardedBackend(loopback, deadline),
        )


def client() -> httpx.Client:
    """A client for tenant-chosen URLs, for one exchange of at most ``DEADLINE`` seconds
    (use it as a context manager). Compressed answers are not asked for: the size cap
    counts what arrives, and a small compressed body cannot unfold into gigabytes."""
    loopback = bool(getattr(settings, "OUTBOUND_ALLOW_LOOPBACK", False))
    return httpx.Client(
        transport=_GuardedTransport(loopback, time.monotonic() + DEADLINE),
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,
        headers={"Accept-Encoding": "identity"},
    )


def check_url(url: str) -> httpx.URL:
    """``url`` parsed, or Refused: http(s) only, a host, no user name or password in it."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise Refused(f"not a URL: {exc}") from exc
    if parsed.scheme not in SCHEMES:
        raise Refused("only http and https addresses are reachable")
    if not parsed.host:
        raise Refused("the address has no host")
    if parsed.userinfo:
        raise Refused("the address may not carry a user name or password")
    return parsed


@dataclass(frozen=True)
class Answer:
    """What came back: the status, the headers and the body as it arrived."""

    status_code: int
    headers: httpx.Headers
    content: bytes


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = False,
) -> Answer:
    """Make one request to a tenant-chosen ``url`` through the guard; the answer with at
    most ``MAX_BYTES`` of its body. Refused for an address that is not allowed, a body
    too large, too many redirects, or a redirect from https to http; httpx's own errors
    for timeouts and refused connections. A redirect to another host is followed without
    the caller's headers."""
    target = check_url(url)
    with client() as http:
        for _ in range(MAX_REDIRECTS + 1):
            with http.stream(method, target, headers=headers, content=content) as response:
                if follow_redirects and response.is_redirect:
                    location = response.headers.get("location", "")
                    following = check_url(str(response.url.join(location)))
                    if target.scheme == "https" and following.scheme != "https":
                        raise Refused("a redirect from https to http is not followed")
                    if following.host != target.host:
                        headers = None
                    if response.status_code not in (307, 308):
                        method, content = "GET", None
                    target = following
                    continue
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise Refused(f"the answer is larger than {MAX_BYTES} bytes")
                return Answer(response.status_code, response.headers, bytes(body))
    raise Refused(f"more than {MAX_REDIRECTS} redirects")
