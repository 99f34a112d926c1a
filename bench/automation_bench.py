"""L1 automation against a real directory (issue #10's targets: a self-service reset
completes, from code entry to the new password working, in under 2 s; 50 concurrent
resets against the directory without errors).

A throwaway slapd (the tests' own, tests/ldapserver.py) holds the organization and
``--users`` people; `tierdesk serve` runs over a fresh installation with that directory
and the same people as requesters, sending mail to an SMTP server on loopback.

1. Self-service, one person after another, through the pages as a browser would use them
   (form, CSRF token, the code from the mail): the time from posting the code to the first
   successful bind with the password the page showed.
2. ``--concurrent`` resets at once through the API (a thread each, distinct people and
   Idempotency-Keys): errors, each answer's latency, and whether every new password binds.

    .venv/bin/python bench/automation_bench.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/automation_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import ldapserver  # noqa: E402 - after the path
from tests.processes import django_eval, fresh_install, serving, tierdesk  # noqa: E402
from tests.smtp import body, smtp_server  # noqa: E402

SETUP = """
import os
from tierdesk.automation import services
from tierdesk.core.services import organization_create, user_create
acme = organization_create(actor=None, code="ACME", name="Acme", email_domains=["acme.example"])
for n in range(1, int(os.environ["BENCH_USERS"]) + 1):
    user_create(actor=None, email=f"user{n:03d}@acme.example", full_name=f"User {n:03d}",
                role="requester", organization=acme)
base = os.environ["LDAP_BASE"]
services.directory_create(
    actor=None, organization=acme, kind="openldap", host="127.0.0.1",
    port=int(os.environ["LDAP_PORT"]), security="ldaps", ca_certificate=os.environ["LDAP_CA"],
    bind_dn=os.environ["LDAP_BIND"], password=os.environ["LDAP_PASSWORD"], base_dn=base,
    allowed_ous=[f"ou=Staff,ou=People,{base}"],
    protected_groups=[f"cn=Domain Admins,ou=Groups,{base}"],
)
"""
STAFF = """
from tierdesk.tiers.services import agent_create, tier_by_code
from tierdesk.core.models import Organization
agent_create(actor=None, email="omar@msp.example", full_name="Omar", role="agent",
             tier=tier_by_code("L2"), served_organizations=[Organization.objects.get(code="ACME")])
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    page.raise_for_status()
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def self_service(url: str, inbox: Any, slapd: ldapserver.Directory, n: int) -> float:
    email = f"user{n:03d}@acme.example"
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        token = csrf(client, "/self-service")
        asked = client.post(
            "/self-service",
            data={"csrfmiddlewaretoken": token, "action": "reset-password", "email": email},
            headers={"Referer": f"{url}/self-service"},
        )
        assert asked.status_code == 302, asked.text[:500]
        found = re.search(r"The code is (\d{6})", body(inbox.wait_for(email)[-1]))
        assert found
        token = csrf(client, "/self-service/code")
        started = time.perf_counter()
        done = client.post(
            "/self-service/code",
            data={"csrfmiddlewaretoken": token, "code": found.group(1)},
            headers={"Referer": f"{url}/self-service/code"},
        )
        assert done.status_code == 200, done.text[:800]
        shown = re.search(r'id="new-password"[^>]*>([^<]+)<', done.text)
        assert shown, done.text[:800]
        password = shown.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
        while not slapd.bind_works(slapd.dn(f"user{n:03d}"), password):
            assert time.perf_counter() - started < 30, "the new password never worked"
            time.sleep(0.01)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resets", type=int, default=20, help="self-service resets, one by one")
    parser.add_argument("--concurrent", type=int, default=50, help="resets at once (API)")
    parser.add_argument("--workers", type=int, default=4, help="tierdesk serve --workers")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    users = args.resets + args.concurrent

    with (
        ldapserver.directory(extra_users=users) as slapd,
        smtp_server() as inbox,
        fresh_install(Path(tempfile.mkdtemp(prefix="tierdesk-autobench-"))) as env,
    ):
        env |= {
            "BENCH_USERS": str(users), "LDAP_BASE": ldapserver.BASE,
            "LDAP_PORT": str(slapd.ldaps_port), "LDAP_CA": slapd.ca_pem,
            "LDAP_BIND": ldapserver.SERVICE_DN, "LDAP_PASSWORD": ldapserver.SERVICE_PASSWORD,
            "TIERDESK_EMAIL_HOST": inbox.host, "TIERDESK_EMAIL_PORT": str(inbox.port),
            "TIERDESK_EMAIL_USE_TLS": "false",
            "TIERDESK_SELF_SERVICE_LIMIT_PER_ADDRESS": "100000",
            "TIERDESK_SELF_SERVICE_CHECKS_PER_ADDRESS": "100000",
        }  # fmt: skip
        django_eval(env, SETUP)
        django_eval(env, STAFF)
        made = tierdesk(env, "token", "create", "--user", "omar@msp.example", "--name", "bench")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        with serving(env, workers=args.workers) as server:
            self_service(server.url, inbox, slapd, 1)  # warm: the first request loads code
            latencies = [
                self_service(server.url, inbox, slapd, n) for n in range(2, args.resets + 1)
            ]
            first = args.resets + 1
            answers: dict[int, tuple[int, float, dict[str, Any]]] = {}
            gate = threading.Barrier(args.concurrent)

            def reset(n: int) -> None:
                with httpx.Client(base_url=server.url, timeout=120) as client:
                    gate.wait()
                    started = time.perf_counter()
                    answer = client.post(
                        "/api/v1/automation-runs",
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"b{n}"},
                        json={
                            "organization": "ACME", "runbook": "reset-password",
                            "account": f"user{n:03d}",
                        },
                    )  # fmt: skip
                    answers[n] = (answer.status_code, time.perf_counter() - started, answer.json())

            threads = [
                threading.Thread(target=reset, args=(n,))
                for n in range(first, first + args.concurrent)
            ]
            wall = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - wall
        errors = [
            (n, code, body_.get("outcome") or body_.get("detail"))
            for n, (code, _, body_) in answers.items()
            if code != 201 or body_.get("status") != "succeeded"
        ]
        binds = sum(
            slapd.bind_works(slapd.dn(f"user{n:03d}"), b["password"])
            for n, (code, _, b) in answers.items()
            if code == 201 and b.get("password")
        )
    concurrent = [elapsed for _, elapsed, _ in answers.values()]
    figures = {
        "machine": f"{platform.node()} ({os.cpu_count()} cores)",
        "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite",
        "self_service_resets": len(latencies),
        "code_to_working_password_s": {
            "median": round(statistics.median(latencies), 3),
            "p95": round(percentile(latencies, 0.95), 3),
            "max": round(max(latencies), 3),
        },
        "web_workers": args.workers,
        "concurrent_resets": args.concurrent,
        "concurrent_errors": len(errors),
        "concurrent_new_passwords_working": binds,
        "concurrent_wall_s": round(wall, 2),
        "concurrent_latency_s": {
            "median": round(statistics.median(concurrent), 3),
            "p95": round(percentile(concurrent, 0.95), 3),
            "max": round(max(concurrent), 3),
        },
    }
    print(json.dumps(figures, indent=2))
    if errors:
        print("errors:", errors[:10])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
