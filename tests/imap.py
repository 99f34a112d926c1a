"""A real IMAP server for tests: Dovecot from Debian (installed when missing), started on
loopback ports with a throwaway configuration, users and TLS certificate; messages are put
into it over IMAP (APPEND), as a mail server would deliver them. Any user name logs in
with the server's one password."""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import tlscerts
from tests.processes import free_port

DOVECOT = "/usr/sbin/dovecot"


@dataclass
class ImapServer:
    host: str
    imaps_port: int
    imap_port: int  # STARTTLS
    ca_pem: str
    root: Path
    password: str  # every user's: a user's mail folder is made when it first logs in

    def client(self, user: str) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cadata=self.ca_pem)
        client = imaplib.IMAP4_SSL(self.host, self.imaps_port, ssl_context=context, timeout=10)
        client.login(user, self.password)
        return client

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put ``raw`` into ``user``'s ``folder``, unread."""
        client = self.client(user)
        try:
            status, data = client.append(folder, "", None, raw)
            assert status == "OK", data
        finally:
            client.logout()

    def deliver_many(self, user: str, messages: list[bytes]) -> None:
        client = self.client(user)
        try:
            for raw in messages:
                status, data = client.append("INBOX", "", None, raw)
                assert status == "OK", data
        finally:
            client.logout()

    def flags(self, user: str) -> list[str]:
        """Each message's flags, in order."""
        client = self.client(user)
        try:
            client.select("INBOX")
            status, data = client.fetch("1:*", "(FLAGS)")
            if status != "OK" or data == [None]:
                return []
            return [d.decode() for d in data if isinstance(d, bytes)]
        finally:
            client.logout()


def _ensure_dovecot() -> None:
    if Path(DOVECOT).exists() and Path("/usr/lib/dovecot/imap").exists():
        return
    from tests.browser.conftest import _apt_get_install, _installing

    with _installing():
        if not Path("/usr/lib/dovecot/imap").exists():
            _apt_get_install("dovecot-imapd", "dovecot")


CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = tierdesk-test-{port}
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = {uid}
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
"""


@contextlib.contextmanager
def imap_server(password: str = "s3cret-pw") -> Iterator[ImapServer]:  # noqa: S107 - a test's
    _ensure_dovecot()
    root = Path(tempfile.mkdtemp(prefix="tierdesk-dovecot-"))
    owner = pwd.getpwnam("dovecot")
    certs = tlscerts.make(root / "tls")
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
    os.chown(root / "home", owner.pw_uid, owner.pw_gid)
    root.chmod(0o755)
    server = ImapServer("127.0.0.1", free_port(), free_port(), certs.ca_pem, root, password)
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            root=root, cert=certs.cert_file, key=certs.key_file, uid=owner.pw_uid,
            gid=owner.pw_gid, imap_port=server.imap_port, imaps_port=server.imaps_port,
            port=server.imaps_port, password=password,
        )
    )  # fmt: skip
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                server.client("probe@test").logout()
                break
            except (OSError, imaplib.IMAP4.error) as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_file = root / "dovecot.log"
                    log = log_file.read_text() if log_file.exists() else ""
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise RuntimeError(f"dovecot did not start: {exc}\n{output}\n{log}") from exc
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
