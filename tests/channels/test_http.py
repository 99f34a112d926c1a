"""The guarded client for tenant-chosen URLs (channels.http), against a real HTTP server on
loopback: loopback, private, link-local (cloud metadata) and other non-public addresses
are refused where the connection is opened, whatever the URL or a redirect or a DNS
answer says; a loopback server is reachable only with the explicit setting."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tierdesk.channels import http


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ok":
            self._answer(200, b"hello")
        elif self.path == "/big":
            self._answer(200, b"x" * (http.MAX_BYTES + 10))
        elif self.path == "/slow":
            time.sleep(1.5)
            self._answer(200, b"late")
        elif self.path == "/drip":  # a byte at a time, each within the read timeout
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/gzip":
            body = gzip.compress(b"z" * (http.MAX_BYTES * 50))
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/").replace("_", "/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._answer(404, b"")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early (the tests' point, at times) is no error


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def loopback(settings: Any) -> None:
    settings.OUTBOUND_ALLOW_LOOPBACK = True


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True), ("2606:4700:4700::1111", True), ("127.0.0.1", False),
        ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False), ("192.0.2.1", False), ("::1", False), ("fd00::1", False),
        ("fe80::1", False), ("::ffff:127.0.0.1", False), ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False), ("::", False), ("64:ff9b::a00:1", False),
        ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::808:808", True), ("::7f00:1", False),
        ("fec0::1", False), ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
    ],
)  # fmt: skip
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert http.allowed(ipaddress.ip_address(address)) is public


def test_loopback_is_refused_unless_allowed(server: str, settings: Any) -> None:
    port = server.rsplit(":", 1)[1]
    for url in (f"{server}/ok", f"http://localhost:{port}/ok", f"http://[::1]:{port}/ok"):
        with pytest.raises(http.Refused, match="not a public address"):
            http.request("GET", url)
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    answer = http.request("GET", f"{server}/ok")
    assert (answer.status_code, answer.content) == (200, b"hello")


def test_private_and_metadata_addresses_are_refused_without_connecting(
    loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []
    real = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: opened.append(a) or real(*a, **k)
    )
    urls = [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "https://192.168.0.10:8443/hook",
        "http://[fd00::1]/",
        "http://0.0.0.0:80/",
    ]
    for url in urls:
        with pytest.raises(http.Refused, match="not a public address"):
            http.request("POST", url, content=b"{}")
    assert opened == []


def test_a_name_with_any_private_address_is_refused(
    loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DNS answer mixing a public and a private address (rebinding): refused, and the
    connection, when there is one, goes to an address that was checked."""
    real = socket.getaddrinfo

    def answers(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]  # fmt: skip
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", answers)
    with pytest.raises(http.Refused, match=r"rebind\.example resolves to an address that is not"):
        http.request("GET", "http://rebind.example/hook")


def test_redirects_are_checked_at_every_hop(server: str, loopback: None) -> None:
    with pytest.raises(http.Refused, match="not a public address"):
        http.request("GET", f"{server}/to/http:__169.254.169.254_latest", follow_redirects=True)
    assert http.request("GET", f"{server}/to/_ok", follow_redirects=True).content == b"hello"
    assert http.request("GET", f"{server}/to/_ok").status_code == 302  # not followed
    with pytest.raises(http.Refused, match="redirects"):
        http.request("GET", f"{server}/to/_to_to_to_to_ok", follow_redirects=True)


def test_limits_on_the_answer(server: str, loopback: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(http.Refused, match="larger than"):
        http.request("GET", f"{server}/big")
    monkeypatch.setattr(http, "TIMEOUT", httpx.Timeout(0.3))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.request("GET", f"{server}/slow")
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "http:///path",
     "http://user:secret@example.com/", "not a url", "javascript:alert(1)"],
)  # fmt: skip
def test_only_plain_http_addresses(url: str) -> None:
    with pytest.raises(http.Refused):
        http.check_url(url)


def test_no_compression_and_a_deadline_for_the_whole_exchange(
    server: str, loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressed answer arrives as sent (no decompressing a bomb): its 50 MiB of z's
    take a few kilobytes; and a server dripping a byte at a time, each in time, is cut off
    at the exchange's deadline."""
    answer = http.request("GET", f"{server}/gzip")
    assert answer.status_code == 200
    assert len(answer.content) < 100_000
    assert answer.headers["content-encoding"] == "gzip"
    monkeypatch.setattr(http, "DEADLINE", 1.0)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.request("GET", f"{server}/drip")
    assert 0.9 < time.monotonic() - started < 2.5
