"""Webhooks in a real browser, against `tierdesk serve` with the demo data and a receiver on
loopback (the server runs with TIERDESK_OUTBOUND_ALLOW_LOOPBACK, as tests and local
development may): the admin adds a webhook and sees its secret once, a ticket is made and
the worker's round delivers it, signed with that secret; the delivery log shows it and
replays it with the same delivery id; a manager serving one organization sees only that
organization's webhooks. axe-core on the pages; screenshots of the list and the log
(docs/screenshots/config-webhooks.png, config-webhook-deliveries.png)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, Server, axe_violations, serving, sign_in
from tests.processes import django_eval, fresh_install, tierdesk

ADMIN = "admin@msp.example"
ACME_MANAGER = "acme.manager@msp.example"  # made below: serves ACME only

SETUP = """
from tierdesk.channels import webhooks
from tierdesk.core import clock
from tierdesk.core.models import Organization, OutboxEvent
from tierdesk.demo import DEMO_PASSWORD
from tierdesk.tiers.services import agent_create, tier_by_code
OutboxEvent.objects.update(dispatched_at=clock.now())  # the demo's history: not for webhooks
agent_create(
    actor=None, email="acme.manager@msp.example", full_name="Ada Acme-Manager",
    role="manager", tier=tier_by_code("L2"), password=DEMO_PASSWORD,
    served_organizations=[Organization.objects.get(code="ACME")],
)
webhooks.webhook_create(
    actor=None, organization=Organization.objects.get(code="GLOBEX"),
    url="https://hooks.globex.example/desk", events=["ticket.*"], description="GLOBEX only",
)
print("ok")
"""

TICKET_AND_ROUND = """
from tierdesk.channels import webhooks
from tierdesk.core.models import Organization, User
from tierdesk.core.outbox import relay
from tierdesk.tickets.services import ticket_create
acme = Organization.objects.get(code="ACME")
alice = User.objects.get(email="alice@acme.example")
ticket_create(actor=alice, organization=acme, subject="Webhook test: printer jammed")
relay()
print(webhooks.deliver_due())
"""

ROUND = """
from tierdesk.channels import webhooks
print(webhooks.deliver_due())
"""


class Receiver:
    """An HTTP endpoint on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append((dict(self.headers), body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tierdesk"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.httpd.shutdown()
        found.httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server, with loopback receivers allowed, over the demo data."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(fresh_install(tmp_path_factory.mktemp("webhooks")))
        env["TIERDESK_OUTBOUND_ALLOW_LOOPBACK"] = "true"
        done = tierdesk(env, "demo", "--tickets", "5", "--workers", "1")
        assert done.returncode == 0, done.stderr
        assert django_eval(env, SETUP) == "ok"
        yield stack.enter_context(serving(env))


def stayed_home(page: Any, server: Server, answered: tuple[int, ...] = ()) -> None:
    """No request left the server and the console stayed clean, except Chromium's note of
    the ``answered`` statuses the test provoked (a refused form answers 422)."""
    outside = [u for u in page.requested if not u.startswith(server.url + "/")]
    assert outside == [], f"requests left the server: {outside}"
    expected = [f"the server responded with a status of {code} " for code in answered]
    problems = [p for p in page.problems if not any(e in p for e in expected)]
    assert problems == [], problems


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = headers["Tierdesk-Signature"].split(",")
    stamp = fields[0].removeprefix("t=")
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, f.removeprefix("v1=")) for f in fields[1:])


def test_an_admin_adds_a_webhook_sees_a_delivery_and_replays_it(
    page: Any, server: Server, receiver: Receiver, axe_source: str
) -> None:
    sign_in(page, ADMIN)
    page.goto("/console/config/")
    page.get_by_role("link", name="Webhooks", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    page.get_by_role("link", name="New webhook").click()
    page.wait_for_load_state("networkidle")
    assert axe_violations(page, axe_source) == [], "webhook form"

    # a plain http address elsewhere than loopback is refused beside the field
    page.locator("#id_url").fill("http://hooks.acme.example/desk")
    page.locator("#id_organization").select_option("ACME")
    page.get_by_label("ticket.created — ", exact=False).check()
    page.get_by_role("button", name="Add webhook").click()
    page.wait_for_load_state("networkidle")
    assert "https://" in page.locator("#id_url_error").inner_text()
    assert page.get_by_label("ticket.created — ", exact=False).is_checked()  # kept

    page.locator("#id_url").fill(receiver.url)
    page.locator("#id_description").fill("ACME's status board")
    page.get_by_role("button", name="Add webhook").click()
    page.wait_for_load_state("networkidle")
    assert "it will not be shown again" in page.content()
    secret = page.get_by_label("Signing secret").input_value()
    assert len(secret) == 64
    assert axe_violations(page, axe_source) == [], "secret page"
    page.get_by_role("link", name="I have stored it").click()
    page.wait_for_load_state("networkidle")
    assert secret not in page.content()  # shown once
    row = page.locator("#webhooks tbody tr", has_text=receiver.url)
    assert "ACME" in row.inner_text()
    assert "none yet" in row.inner_text()

    # an ACME ticket, and the worker's round: delivered, signed with the secret
    assert django_eval(server.env, TICKET_AND_ROUND) == "1"
    assert len(receiver.got) == 1
    headers, body = receiver.got[0]
    assert headers["Tierdesk-Event"] == "ticket.created"
    assert verified(secret, headers, body)
    delivery_id = headers["Tierdesk-Delivery"]

    page.reload()
    assert "delivered" in row.inner_text()
    assert "HTTP 204" in row.inner_text()
    assert axe_violations(page, axe_source) == [], "webhook list"
    page.screenshot(path=str(SCREENSHOTS / "config-webhooks.png"), full_page=True)

    row.get_by_role("link", name="Delivery log").click()
    page.wait_for_load_state("networkidle")
    entry = page.locator(f'#deliveries tr[data-delivery-id="{delivery_id}"]')
    assert "Delivered" in entry.inner_text()
    assert "HTTP 204" in entry.inner_text()
    assert "ticket.created" in entry.inner_text()
    assert axe_violations(page, axe_source) == [], "delivery log"
    page.screenshot(path=str(SCREENSHOTS / "config-webhook-deliveries.png"), full_page=True)

    entry.get_by_role("button", name="Replay").click()
    page.wait_for_load_state("networkidle")
    assert "queued again" in page.locator(".messages").inner_text()
    assert "Pending" in entry.inner_text()
    assert django_eval(server.env, ROUND) == "1"
    assert len(receiver.got) == 2
    assert receiver.got[1][0]["Tierdesk-Delivery"] == delivery_id  # the same id
    page.reload()
    assert "Delivered" in entry.inner_text()
    stayed_home(page, server, answered=(422,))


ACME_HOOK = """
from tierdesk.channels import webhooks
from tierdesk.core.models import Organization
webhooks.webhook_create(
    actor=None, organization=Organization.objects.get(code="ACME"),
    url="https://hooks.acme.example/board", events=["ticket.created"], description="ACME board",
)
print("ok")
"""


def test_a_manager_sees_only_their_organizations_webhooks(page: Any, server: Server) -> None:
    # its own ACME webhook: this test does not lean on the one before having run first
    assert django_eval(server.env, ACME_HOOK) == "ok"
    sign_in(page, ACME_MANAGER)
    page.goto("/console/config/webhooks/")
    listed = page.locator("#webhooks tbody").inner_text()
    assert "hooks.globex.example" not in listed
    assert "hooks.acme.example" in listed
    page.goto("/console/config/webhooks/new/")
    organizations = page.locator("#id_organization").locator("option").all_inner_texts()
    assert [o.split(" — ")[0] for o in organizations] == ["ACME"]
    assert page.locator('input[value="sla.breached"]').count() == 0
    stayed_home(page, server)
