"""A real directory for tests: OpenLDAP's slapd from Debian (installed when missing),
started on loopback ports with a throwaway configuration and TLS certificate, loaded with a
small organization.

Two naming contexts in one server:

- ``dc=acme,dc=test`` speaks OpenLDAP's conventions: ``inetOrgPerson`` users, the ppolicy
  overlay (lockout after three failures, ``pwdReset`` after an administrator's reset),
  ``groupOfNames`` groups.
- ``dc=ad,dc=test`` carries Active Directory's schema (``msuser``): ``user`` entries with
  ``sAMAccountName``, ``userAccountControl``, ``lockoutTime``, ``pwdLastSet`` and
  ``unicodePwd``. slapd stores what is written there but does not act on it as a domain
  controller would (a ``unicodePwd`` write does not change what a bind accepts), so tests
  check what was written, never that a bind follows it.

The service account ``cn=tierdesk,ou=Service,...`` may write the whole tree: the limits a
careless administrator would leave to the application, so that what tierdesk refuses is
refused by tierdesk itself."""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import tlscerts
from tests.processes import free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")

BASE = "dc=acme,dc=test"
AD_BASE = "dc=ad,dc=test"
SERVICE_DN = f"cn=tierdesk,ou=Service,{BASE}"
AD_SERVICE_DN = f"cn=tierdesk,ou=Service,{AD_BASE}"
ROOT_PASSWORD = "root-Secret-1"
SERVICE_PASSWORD = "svc-Secret-1"
USER_PASSWORD = "Old-Passw0rd!"
PERMANENT_LOCK = "000001010000Z"  # ppolicy: locked by an administrator, never expires


@dataclass
class Directory:
    host: str
    port: int  # plain LDAP, StartTLS offered
    ldaps_port: int
    ca_pem: str
    root: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start slapd over this directory's configuration and data (again, after
        ``stop``)."""
        urls = f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", urls, "-F", str(self.root / "slapd.d")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        _wait_listening(self.port, self.process, deadline)
        _wait_listening(self.ldaps_port, self.process, deadline)

    def stop(self) -> None:
        """Stop slapd: the directory goes away, its data stays."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def dn(self, uid: str, ou: str = "Staff") -> str:
        return f"uid={uid},ou={ou},ou=People,{BASE}"

    def bind_works(self, dn: str, password: str) -> bool:
        """Whether a simple bind as ``dn`` with ``password`` succeeds, over LDAPS."""
        import ldap3

        server = ldap3.Server(self.host, port=self.ldaps_port, use_ssl=True, tls=self._tls())
        connection = ldap3.Connection(server, dn, password, receive_timeout=10)
        try:
            return bool(connection.bind())
        finally:
            connection.unbind()

    def read(self, dn: str, *attributes: str) -> dict[str, list[str]]:
        """``dn``'s ``attributes`` (operational ones too), read as the root DN."""

        with self.as_root(AD_BASE if dn.lower().endswith(AD_BASE) else BASE) as connection:
            assert connection.search(dn, "(objectClass=*)", "BASE", attributes=list(attributes))
            entry = connection.response[0]["raw_attributes"]
            return {
                name: [v.decode("utf-8", "replace") for v in values]
                for name, values in entry.items()
            } | {name: [] for name in attributes if name not in entry}

    @contextlib.contextmanager
    def as_root(self, suffix: str = BASE) -> Iterator[Any]:
        """A connection bound as ``suffix``'s root DN, which no access rule limits."""
        import ldap3

        server = ldap3.Server(self.host, port=self.ldaps_port, use_ssl=True, tls=self._tls())
        connection = ldap3.Connection(
            server, f"cn=root,{suffix}", ROOT_PASSWORD, receive_timeout=10
        )
        assert connection.bind(), connection.result
        try:
            yield connection
        finally:
            connection.unbind()

    def _tls(self) -> object:
        import ldap3

        # the chain is checked; the name is not (ldap3's check does not know IP addresses,
        # and this is the tests' own server)
        return ldap3.Tls(ca_certs_data=self.ca_pem, validate=ssl.CERT_REQUIRED, valid_names="*")


def _ensure_slapd() -> None:
    if Path(SLAPD).exists() and Path(SLAPADD).exists():
        return
    from tests.browser.conftest import _apt_get_install, _installing

    with _installing():
        if not Path(SLAPD).exists():
            _apt_get_install("slapd", "slapd")


def _config(root: Path, certs: tlscerts.Certificates) -> str:
    ca_file = root / "ca.pem"
    ca_file.write_text(certs.ca_pem)
    databases = []
    for index, (suffix, service) in enumerate(((BASE, SERVICE_DN), (AD_BASE, AD_SERVICE_DN)), 1):
        data = root / f"data{index}"
        data.mkdir()
        databases.append(f"""
dn: olcDatabase={{{index}}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{{index}}}mdb
olcSuffix: {suffix}
olcRootDN: cn=root,{suffix}
olcRootPW: {ROOT_PASSWORD}
olcDbDirectory: {data}
olcDbMaxSize: 268435456
olcAccess: {{0}}to attrs=userPassword,unicodePwd by dn.exact="{service}" write
  by self write by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{service}" write by self read by users read by * none
""")
    # Debian's copy of AD's schema gives these no matching rule (a search by them finds
    # nothing); a domain controller matches them (names ignoring case).
    msuser = root / "msuser.ldif"
    schema = (SCHEMA / "msuser.ldif").read_text()
    for name, rule in (
        ("sAMAccountName", "caseIgnoreMatch"),
        ("userPrincipalName", "caseIgnoreMatch"),
        ("adminCount", "integerMatch"),
        ("objectSid", "octetStringMatch"),
    ):
        schema = schema.replace(
            f"  NAME '{name}'\n  SYNTAX", f"  NAME '{name}'\n  EQUALITY {rule}\n  SYNTAX"
        )
    msuser.write_text(schema)
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {root}/slapd.pid
olcArgsFile: {root}/slapd.args
olcTLSCACertificateFile: {ca_file}
olcTLSCertificateFile: {certs.cert_file}
olcTLSCertificateKeyFile: {certs.key_file}
olcThreads: 8

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://{SCHEMA}/core.ldif
include: file://{SCHEMA}/cosine.ldif
include: file://{SCHEMA}/inetorgperson.ldif
include: file://{SCHEMA}/nis.ldif
include: file://{msuser}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none
{databases[0]}
dn: olcOverlay={{0}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{0}}ppolicy
olcPPolicyDefault: cn=default,ou=Policies,{BASE}
olcPPolicyUseLockout: TRUE
olcPPolicyHashCleartext: TRUE
{databases[1]}"""


def _person(uid: str, ou: str, name: str, mail: str, *extra: str) -> str:
    first, _, last = name.partition(" ")
    lines = [
        f"dn: uid={uid},ou={ou},ou=People,{BASE}",
        "objectClass: inetOrgPerson",
        f"uid: {uid}",
        f"cn: {name}",
        f"givenName: {first}",
        f"sn: {last or first}",
        f"mail: {mail}",
        f"userPassword: {USER_PASSWORD}",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def _acme(extra_users: int = 0) -> str:
    """The OpenLDAP-convention organization (and ``extra_users`` more people in Staff:
    user001@acme.example …, for the benchmark)."""
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: acme\no: Acme\n",
        f"dn: ou=Policies,{BASE}\nobjectClass: organizationalUnit\nou: Policies\n",
        f"""dn: cn=default,ou=Policies,{BASE}
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 3
pwdLockoutDuration: 0
pwdMustChange: TRUE
pwdAllowUserChange: TRUE
""",
        f"dn: ou=Service,{BASE}\nobjectClass: organizationalUnit\nou: Service\n",
        f"""dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: tierdesk
userPassword: {SERVICE_PASSWORD}
""",
        f"dn: ou=People,{BASE}\nobjectClass: organizationalUnit\nou: People\n",
        f"dn: ou=Staff,ou=People,{BASE}\nobjectClass: organizationalUnit\nou: Staff\n",
        f"dn: ou=Executives,ou=People,{BASE}\nobjectClass: organizationalUnit\nou: Executives\n",
        f"dn: ou=Groups,{BASE}\nobjectClass: organizationalUnit\nou: Groups\n",
        _person("alice", "Staff", "Alice Anders", "alice@acme.example"),
        _person(
            "bob",
            "Staff",
            "Bob Berger",
            "bob@acme.example",
            "pwdAccountLockedTime: 20261101000000Z",
        ),
        _person("carol", "Staff", "Carol Chen", "carol@acme.example"),
        _person("dave", "Staff", "Dave Dietrich", "dave@acme.example"),
        _person("root-admin", "Staff", "Rita Root", "rita@acme.example"),
        _person("ceo", "Executives", "Cora Executive", "cora@acme.example"),
        *(
            _person(f"user{n:03d}", "Staff", f"User {n:03d}", f"user{n:03d}@acme.example")
            for n in range(1, extra_users + 1)
        ),
        f"""dn: cn=VPN Users,ou=Groups,{BASE}
objectClass: groupOfNames
cn: VPN Users
member: uid=carol,ou=Staff,ou=People,{BASE}
""",
        f"""dn: cn=Domain Admins,ou=Groups,{BASE}
objectClass: groupOfNames
cn: Domain Admins
member: uid=root-admin,ou=Staff,ou=People,{BASE}
""",
    ]
    return "\n".join(entries)


def ad_sid(rid: int) -> str:
    """The base64 of a binary SID in the test domain S-1-5-21-1-2-3, ending in ``rid``."""
    parts = (21, 1, 2, 3, rid)
    raw = bytes([1, len(parts)]) + (5).to_bytes(6, "big")
    raw += b"".join(p.to_bytes(4, "little") for p in parts)
    return base64.b64encode(raw).decode()


def _ad() -> str:
    """The Active Directory-convention organization (its schema, not its behaviour)."""
    user = """dn: CN={name},OU=Staff,{base}
objectClass: user
objectClass: extensibleObject
cn: {name}
sn: {sn}
instanceType: 4
nTSecurityDescriptor:: AQAEgBQAAAAAAAAAAAAAAAAAAAA=
objectCategory: CN=Person,CN=Schema,CN=Configuration,{base}
sAMAccountName: {sam}
userPrincipalName: {sam}@ad.test
mail: {sam}@ad.example
userAccountControl: 512
lockoutTime: {lockout}
pwdLastSet: 134000000000000000
objectSid:: {sid}
primaryGroupID: 513
"""
    group = """dn: CN={name},OU=Groups,{base}
objectClass: group
objectClass: extensibleObject
cn: {name}
groupType: -2147483646
instanceType: 4
nTSecurityDescriptor:: AQAEgBQAAAAAAAAAAAAAAAAAAAA=
objectCategory: CN=Group,CN=Schema,CN=Configuration,{base}
objectSid:: {sid}
"""
    return "\n".join(
        [
            f"dn: {AD_BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: ad\no: AD\n",
            f"dn: ou=Service,{AD_BASE}\nobjectClass: organizationalUnit\nou: Service\n",
            f"""dn: {AD_SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: tierdesk
userPassword: {SERVICE_PASSWORD}
""",
            f"dn: OU=Staff,{AD_BASE}\nobjectClass: organizationalUnit\nou: Staff\n",
            f"dn: OU=Groups,{AD_BASE}\nobjectClass: organizationalUnit\nou: Groups\n",
            user.format(
                name="Erin Ernst",
                sn="Ernst",
                sam="erin",
                lockout=0,
                base=AD_BASE,
                sid=ad_sid(1105),
            ),
            user.format(
                name="Finn Fuchs",
                sn="Fuchs",
                sam="finn",
                lockout=134060000000000000,
                base=AD_BASE,
                sid=ad_sid(1106),
            ),
            group.format(name="Domain Admins", base=AD_BASE, sid=ad_sid(512)),
            group.format(name="Domain Users", base=AD_BASE, sid=ad_sid(513)),
            group.format(name="Helpdesk Operators", base=AD_BASE, sid=ad_sid(1200)),
        ]
    )


def _wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"slapd did not start:\n{output}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def directory(extra_users: int = 0) -> Iterator[Directory]:
    """A running slapd with the organizations loaded, until the block ends."""
    _ensure_slapd()
    root = Path(tempfile.mkdtemp(prefix="tierdesk-slapd-"))
    try:
        certs = tlscerts.make(root / "tls")
        (root / "slapd.d").mkdir()
        config = root / "config.ldif"
        config.write_text(_config(root, certs))
        for command in (
            [SLAPADD, "-n", "0", "-F", str(root / "slapd.d"), "-l", str(config)],
            [
                SLAPADD,
                "-F",
                str(root / "slapd.d"),
                "-b",
                BASE,
                "-l",
                _write(root, "acme", _acme(extra_users)),
            ],
            [SLAPADD, "-F", str(root / "slapd.d"), "-b", AD_BASE, "-l", _write(root, "ad", _ad())],
        ):
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}{done.stderr}"
        running = Directory("127.0.0.1", free_port(), free_port(), certs.ca_pem, root)
        running.start()
        try:
            yield running
        finally:
            running.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write(root: Path, name: str, text: str) -> str:
    path = root / f"{name}.ldif"
    path.write_text(text)
    return str(path)
