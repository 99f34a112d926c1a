"""Real-browser tests: Debian's Chromium driven by Playwright for Python, against the real
server (`tierdesk serve`, granian) started here on loopback with a fresh database.

Chromium is installed with apt-get when it is missing (the tests run as root in CI and on
the development machines); nothing is downloaded by Playwright itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import Server, fresh_install, serving
from tierdesk.demo import DEMO_PASSWORD

CHROMIUM = "/usr/bin/chromium"
# Quiet, sandbox-free headless Chromium for a closed network (see the machine notes):
# without the background-networking flags it keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


BROWSER_TESTS = Path(__file__).resolve().parent
# Where the pages' screenshots for docs/ are written.
SCREENSHOTS = BROWSER_TESTS.parents[1] / "docs" / "screenshots"
AXE = BROWSER_TESTS / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = {"serious", "critical"}


@contextlib.contextmanager
def _installing() -> Iterator[None]:
    """One installer at a time across the test workers (xdist runs several processes, and
    each would otherwise start its own apt-get or npm in the same place)."""
    with open(Path(tempfile.gettempdir()) / "tierdesk-test-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _apt_install(package: str, binary: str) -> None:
    """apt-get install ``package`` when ``binary`` is missing; a clear failure when that
    cannot be."""
    if shutil.which(binary):
        return
    with _installing():
        if not shutil.which(binary):  # another worker may have installed it meanwhile
            _apt_get_install(package, binary)


def _apt_get_install(package: str, binary: str) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{binary} is missing: install Debian's {package} package (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for dpkg's lock when something else on the machine is installing.
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q"]
    install += ["--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"apt-get install {package} failed: {done.stderr[-2000:]}"


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, installed from the npm registry at the version package-lock.json
    pins (``npm ci`` in tests/browser when it is not there yet)."""
    if not AXE.exists():
        _apt_install("npm", "npm")
        with _installing():
            if not AXE.exists():
                done = subprocess.run(
                    ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                    cwd=BROWSER_TESTS,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert done.returncode == 0, f"npm ci failed: {done.stderr[-2000:]}"
    return AXE.read_text()


def axe_violations(page: Any, source: str) -> list[str]:
    """axe-core's serious and critical accessibility violations on the page as it is now.
    The script goes in through DevTools, not as a page script, so the page's own
    Content-Security-Policy stays as strict as it is."""
    page.evaluate(source)
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in found
        if v.get("impact") in SERIOUS
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: while Playwright's sync API is
    running, its event loop is the running loop, and Django refuses database work from the
    tests that share the process next (as they do under xdist)."""
    from playwright.sync_api import sync_playwright

    _apt_install("chromium", CHROMIUM)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`tierdesk serve` on a free loopback port, over a fresh installation."""
    with fresh_install(tmp_path_factory.mktemp("browser")) as env:
        env["TIERDESK_QUEUE_REFRESH_SECONDS"] = "2"  # live refresh within a test's patience
        with serving(env) as running:
            yield running


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A page in a new browser context that records every request it makes and every
    console error and uncaught exception (``page.requested``, ``page.problems``)."""
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.requested = []
    p.problems = []
    p.on("request", lambda r: p.requested.append(r.url))
    # Each console error with the page it happened on.
    p.on(
        "console", lambda m: p.problems.append(f"{m.text} @ {p.url}") if m.type == "error" else None
    )
    p.on("pageerror", lambda e: p.problems.append(str(e)))
    try:
        yield p
    finally:
        context.close()


def sign_in(page: Any, email: str) -> None:
    """Sign in as a demo user (the demo's password) and wait for the first page."""
    page.context.clear_cookies()
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
