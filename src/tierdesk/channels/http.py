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
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from django.conf import settings

MAX_BYTES = 1 << 20  # a response body read at most
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
MAX_REDIRECTS = 3
SCHEMES = ("https", "http")

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
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None:
            return allowed(inner, loopback=loopback)
    if loopback and address.is_loopback:
        return True
    return address.is_global and not address.is_multicast


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses ``allowed`` accepts, resolving the name
    once and connecting to what was checked."""

    def __init__(self, loopback: bool) -> None:
        self._loopback = loopback
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
        refused = [a for a in addresses if not allowed(a, loopback=self._loopback)]
        if not addresses:
            raise Refused(f"{host} has no address")
        if refused:
            raise Refused(f"{host} resolves to {refused[0]}, which is not a public address")
        return self._backend.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise Refused("unix sockets are not reachable")


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

    def __init__(self, loopback: bool) -> None:
        super().__init__(trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=20,
            network_backend=_GuardedBackend(loopback),
        )


def client() -> httpx.Client:
    """A client for tenant-chosen URLs (use it as a context manager)."""
    loopback = bool(getattr(settings, "OUTBOUND_ALLOW_LOOPBACK", False))
    return httpx.Client(
        transport=_GuardedTransport(loopback),
        timeout=TIMEOUT,
        follow_redirects=False,
        trust_env=False,
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


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = False,
) -> httpx.Response:
    """Make one request to a tenant-chosen ``url`` through the guard; the response with
    its body read (at most ``MAX_BYTES``). Refused for an address that is not allowed, a
    body too large, too many redirects; httpx's own errors for timeouts and refused
    connections."""
    target = check_url(url)
    with client() as http:
        for _ in range(MAX_REDIRECTS + 1):
            with http.stream(method, target, headers=headers, content=content) as response:
                if follow_redirects and response.is_redirect:
                    location = response.headers.get("location", "")
                    target = check_url(str(response.url.join(location)))
                    if response.status_code not in (307, 308):
                        method, content = "GET", None
                    continue
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise Refused(f"the answer is larger than {MAX_BYTES} bytes")
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    content=bytes(body),
                    request=response.request,
                )
    raise Refused(f"more than {MAX_REDIRECTS} redirects")
