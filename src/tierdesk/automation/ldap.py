"""The LDAP connector: one client organization's directory, spoken to in its dialect.

Two dialects: OpenLDAP (the ppolicy overlay's lockout and ``pwdReset``, the password
modify extended operation) and Active Directory (``unicodePwd`` over TLS, ``lockoutTime``,
``userAccountControl``, ``pwdLastSet``). Everything that reaches the directory from
outside goes through ldap3's escaping: values in filters through ``escape_filter_chars``,
values in a new entry's name through ``escape_rdn``; and a lookup that finds anything but
exactly one entry stops there.

Connections always use TLS (LDAPS or StartTLS) and check the server's certificate and
name with Python's own ``ssl`` (ldap3's host name check does not know IP addresses).
Passwords never appear in an exception, a log line or ``repr``.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_bytes, escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

# ppolicy's mark of an account locked by an administrator (never expires): disabled.
OPENLDAP_DISABLED = "000001010000Z"
AD_ACCOUNTDISABLE = 0x0002
AD_NORMAL_ACCOUNT = 0x0200
# How far nested groups are followed when asking whether someone is protected.
GROUP_DEPTH = 8
GROUP_ENTRIES = 5000

OPENLDAP = "openldap"
ACTIVE_DIRECTORY = "active_directory"


class DirectoryError(Exception):
    """Something the directory (or the way to it) refused or could not do. ``kind`` is one
    of: unreachable, certificate, credentials, base_dn, not_found, ambiguous, refused,
    failed; the message says it for a person."""

    def __init__(self, kind: str, message: str, *, partial: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        # What the failing operation had already changed before it failed (a password
        # set, its must-change mark not): for the run's ``remains``.
        self.partial = partial


@dataclass(frozen=True)
class Settings:
    """What the connector needs of a directory's configuration (``automation.models``)."""

    kind: str
    host: str
    port: int
    security: str  # "ldaps" or "starttls"
    ca_certificate: str  # PEM; empty: the system's trusted authorities
    bind_dn: str
    password: str = field(repr=False)
    base_dn: str
    login_attribute: str
    email_attribute: str
    timeout: int = 8  # seconds; whole (ldap3 sets it on the socket as such)


@dataclass(frozen=True)
class Account:
    dn: str
    login: str
    email: str
    name: str
    locked: bool
    disabled: bool
    must_change: bool


# Attribute names a DN may spell long or short (RFC 4519), compared as one.
_SYNONYMS = {
    "commonname": "cn",
    "organizationalunitname": "ou",
    "domaincomponent": "dc",
    "userid": "uid",
    "organizationname": "o",
    "countryname": "c",
    "localityname": "l",
    "stateorprovincename": "st",
    "streetaddress": "street",
}

Rdn = frozenset[tuple[str, str]]


def sid_with_rid(sid: bytes, rid: int) -> bytes:
    """A binary SID (revision, count, 6-byte authority, ``count`` 4-byte little-endian
    parts) with its last part replaced by ``rid``: a user's SID and a primaryGroupID make
    the primary group's SID. ``ValueError`` for anything that is not a SID."""
    if len(sid) < 12 or sid[0] != 1 or len(sid) != 8 + 4 * sid[1] or not 0 <= rid < 2**32:
        raise ValueError("not a SID")
    return sid[:-4] + rid.to_bytes(4, "little")


def _unescape(value: str) -> str:
    """An RDN value with its escapes resolved (``\\,`` and ``\\2C`` are both a comma)."""
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += c.encode()
        i += 1
    return out.decode("utf-8", "replace").strip()


def normalize_dn(dn: str) -> tuple[Rdn, ...]:
    """``dn`` as comparable RDNs, each the set of its (attribute, value) pairs (a
    multi-valued RDN such as ``uid=x+ou=Staff`` stays one RDN): attribute names in one
    spelling, values unescaped, both without regard to case, as directories compare the
    usual naming attributes. ``ValueError`` when ``dn`` is not a distinguished name."""
    if not dn.strip():
        raise ValueError("empty")
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except ldap_errors.LDAPInvalidDnError as exc:
        raise ValueError(str(exc)) from None
    rdns: list[Rdn] = []
    current: set[tuple[str, str]] = set()
    for attr, value, separator in parts:
        name = attr.strip().lower()
        current.add((_SYNONYMS.get(name, name), _unescape(value).lower()))
        if separator != "+":
            rdns.append(frozenset(current))
            current = set()
    if current:
        rdns.append(frozenset(current))
    return tuple(rdns)


def within(dn: str, container: str) -> bool:
    """Whether ``dn`` is ``container`` or below it (RDN by RDN: ``uid=x+ou=Staff,…`` is
    not below ``ou=Staff,…``)."""
    inner, outer = normalize_dn(dn), normalize_dn(container)
    return len(inner) >= len(outer) and inner[len(inner) - len(outer) :] == outer


def same_dn(a: str, b: str) -> bool:
    try:
        return normalize_dn(a) == normalize_dn(b)
    except ValueError:
        return False


def suffix(dn: str) -> str:
    """The domain part of ``dn`` (its trailing ``dc=`` RDNs), where an organization's
    groups are searched for: protected groups need not lie below the base DN."""
    parts = parse_dn(dn, escape=False, strip=True)
    tail: list[str] = []
    for attr, value, _sep in reversed(parts):
        if attr.lower() not in ("dc", "domaincomponent"):
            break
        tail.insert(0, f"{attr}={value}")
    return ",".join(tail) or dn


class _VerifiedTls(ldap3.Tls):
    """TLS whose certificate and host name checks are Python's ``ssl`` module's."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


def _context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca_pem or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def describe(exc: BaseException, settings: Settings) -> DirectoryError:
    """A connection-level failure as a person would want it said."""
    text = str(exc)
    # ldap3 raises its own exception classes, made on the fly to inherit from the one it
    # caught: the ssl module's reason survives in the text
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        detail = text.split("certificate verify failed:")[-1].split("(_ssl")[0].strip(" )]'\"")
        return DirectoryError(
            "certificate",
            f"the certificate of {settings.host} is not trusted ({detail or 'not trusted'}); "
            "add the authority that issued it, or correct the host name",
        )
    if "ssl" in text.lower() or "tls" in text.lower():
        return DirectoryError("certificate", f"TLS with {settings.host} failed: {text[:200]}")
    return DirectoryError(
        "unreachable",
        f"{settings.host}:{settings.port} cannot be reached ({text[:200] or type(exc).__name__})",
    )


class Connection:
    """A bound connection as the service account; use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: Any = None

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        s = self.settings
        server = ldap3.Server(
            s.host,
            port=s.port,
            use_ssl=s.security == "ldaps",
            tls=_VerifiedTls(_context(s.ca_certificate)),
            connect_timeout=s.timeout,
            get_info=ldap3.NONE,
        )
        conn = ldap3.Connection(
            server,
            user=s.bind_dn,
            password=s.password,
            receive_timeout=s.timeout,
            raise_exceptions=False,
            auto_referrals=False,
            read_only=False,
        )
        try:
            conn.open(read_server_info=False)
            if s.security == "starttls" and not conn.start_tls(read_server_info=False):
                raise DirectoryError("certificate", f"{s.host} refused StartTLS")
            bound = conn.bind(read_server_info=False)
        except DirectoryError:
            conn.unbind()
            raise
        except (ldap_errors.LDAPException, OSError) as exc:
            conn.unbind()
            raise describe(exc, s) from None
        if not bound:
            result = conn.result or {}
            conn.unbind()
            if result.get("result") == 49:
                raise DirectoryError(
                    "credentials", f"the directory refused the service account {s.bind_dn}"
                )
            raise DirectoryError(
                "failed", f"binding as {s.bind_dn} failed: {result.get('description', '?')}"
            )
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(ldap_errors.LDAPException, OSError):
                self._conn.unbind()
            self._conn = None

    # --- reading ----------------------------------------------------------------------

    def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run ``method`` on the connection; its result, or ``DirectoryError`` when the
        connection failed. A refused operation is the caller's to read in the result."""
        try:
            getattr(self._conn, method)(*args, **kwargs)
        except (ldap_errors.LDAPException, OSError) as exc:
            if isinstance(
                exc,
                ldap_errors.LDAPSocketOpenError | ldap_errors.LDAPSessionTerminatedByServerError,
            ):
                raise describe(exc, self.settings) from None
            raise DirectoryError(
                "unreachable",
                f"the directory stopped answering while {what} ({type(exc).__name__})",
            ) from None
        return dict(self._conn.result or {})

    def entry_exists(self, dn: str) -> bool:
        result = self._call(
            f"reading {dn}", "search", dn, "(objectClass=*)", ldap3.BASE, attributes=["1.1"]
        )
        if result.get("result") == 0:
            return True
        if result.get("result") == 32:
            return False
        raise DirectoryError("failed", f"reading {dn} failed: {result.get('description')}")

    def search(
        self, base: str, filter_: str, attributes: list[str], limit: int
    ) -> list[dict[str, Any]]:
        result = self._call(
            "searching",
            "search",
            base,
            filter_,
            ldap3.SUBTREE,
            attributes=attributes,
            size_limit=limit,
        )
        if result.get("result") == 32:
            raise DirectoryError("base_dn", f"{base} does not exist in the directory")
        if result.get("result") not in (0, 4):  # 4: size limit exceeded, the entries came
            raise DirectoryError("failed", f"the search failed: {result.get('description')}")
        return [r for r in self._conn.response or [] if r.get("type") == "searchResEntry"]

    def _attributes(self) -> list[str]:
        s = self.settings
        common = [s.login_attribute, s.email_attribute, "cn", "displayName"]
        if s.kind == ACTIVE_DIRECTORY:
            return [*common, "lockoutTime", "userAccountControl", "pwdLastSet"]
        return [*common, "pwdAccountLockedTime", "pwdReset"]

    def _account(self, entry: dict[str, Any]) -> Account:
        s = self.settings
        raw = {k.lower(): v for k, v in entry.get("raw_attributes", {}).items()}

        def first(name: str) -> str:
            values = raw.get(name.lower()) or []
            return values[0].decode("utf-8", "replace") if values else ""

        if s.kind == ACTIVE_DIRECTORY:
            lockout = first("lockoutTime")
            control = int(first("userAccountControl") or 0)
            locked = bool(lockout) and lockout != "0"
            disabled = bool(control & AD_ACCOUNTDISABLE)
            must_change = first("pwdLastSet") == "0"
        else:
            lock_time = first("pwdAccountLockedTime")
            disabled = lock_time == OPENLDAP_DISABLED
            locked = bool(lock_time) and not disabled
            must_change = first("pwdReset").upper() == "TRUE"
        return Account(
            dn=entry["dn"],
            login=first(s.login_attribute),
            email=first(s.email_attribute),
            name=first("displayName") or first("cn"),
            locked=locked,
            disabled=disabled,
            must_change=must_change,
        )

    def find_account(self, attribute: str, value: str) -> Account:
        """The one person entry whose ``attribute`` is ``value``; ``DirectoryError``
        (not_found, ambiguous) otherwise."""
        s = self.settings
        if attribute not in (s.login_attribute, s.email_attribute):
            raise ValueError(f"accounts are found by {s.login_attribute} or {s.email_attribute}")
        person = (
            "(&(objectClass=user)(!(objectClass=computer)))"
            if s.kind == ACTIVE_DIRECTORY
            else "(objectClass=person)"
        )
        filter_ = f"(&{person}({attribute}={escape_filter_chars(value)}))"
        found = self.search(s.base_dn, filter_, self._attributes(), limit=2)
        if not found:
            raise DirectoryError("not_found", f"no account has {attribute} {value!r}")
        if len(found) > 1:
            raise DirectoryError("ambiguous", f"more than one account has {attribute} {value!r}")
        return self._account(found[0])

    def reread(self, account: Account) -> Account:
        result = self._call(
            f"reading {account.dn}",
            "search",
            account.dn,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=self._attributes(),
        )
        entries = [r for r in self._conn.response or [] if r.get("type") == "searchResEntry"]
        if result.get("result") != 0 or len(entries) != 1:
            raise DirectoryError("not_found", f"{account.dn} is no longer in the directory")
        return self._account(entries[0])

    def is_member(self, group_dn: str, dn: str) -> bool:
        """Whether ``dn`` is a direct member of ``group_dn``, compared by the server (a
        filter on the group, not its member list: Active Directory hands a large group's
        list out in ranges)."""
        result = self._call(
            f"reading {group_dn}",
            "search",
            group_dn,
            f"(member={escape_filter_chars(dn)})",
            ldap3.BASE,
            attributes=["1.1"],
        )
        if result.get("result") == 32:
            raise DirectoryError("refused", f"the group {group_dn} does not exist")
        if result.get("result") != 0:
            raise DirectoryError(
                "failed", f"reading {group_dn} failed: {result.get('description')}"
            )
        return any(r.get("type") == "searchResEntry" for r in self._conn.response or [])

    def _primary_group(self, dn: str) -> str:
        """(Active Directory) The DN of ``dn``'s primary group.
        The group's SID is the account's own with its last part (the RID) replaced by
        ``primaryGroupID``. Fails closed: a primary group that cannot be found is an
        error, as it could be a protected one."""
        result = self._call(
            f"reading {dn}",
            "search",
            dn,
            "(objectClass=*)",
            ldap3.BASE,
            attributes=["primaryGroupID", "objectSid"],
        )
        entries = [r for r in self._conn.response or [] if r.get("type") == "searchResEntry"]
        if result.get("result") != 0 or len(entries) != 1:
            raise DirectoryError("failed", f"reading {dn} failed: {result.get('description')}")
        raw = {k.lower(): v for k, v in entries[0].get("raw_attributes", {}).items()}
        rid_values, sid_values = raw.get("primarygroupid") or [], raw.get("objectsid") or []
        if not rid_values:  # every AD account has one: unreadable, not absent
            raise DirectoryError(
                "refused",
                f"the primary group of {dn} cannot be read (no primaryGroupID): check that "
                "the service account may read it",
            )
        try:
            group_sid = sid_with_rid(sid_values[0], int(rid_values[0]))
        except (IndexError, ValueError):
            raise DirectoryError(
                "refused", f"the primary group of {dn} cannot be told (no usable objectSid)"
            ) from None
        found = self.search(
            suffix(self.settings.base_dn), f"(objectSid={escape_bytes(group_sid)})", ["1.1"], 2
        )
        if len(found) != 1:
            raise DirectoryError(
                "refused",
                f"the primary group of {dn} (RID {int(rid_values[0])}) cannot be found",
            )
        return str(found[0]["dn"])

    def protected_by(self, dn: str, groups: list[str]) -> str | None:
        """The first of ``groups`` that ``dn`` belongs to, directly or through nested
        groups, or (Active Directory) the reason it is protected anyway (``adminCount``);
        None when none. The groups holding ``dn`` are asked of the server (it compares the
        names), then the groups holding those, ``GROUP_DEPTH`` levels up. Fails closed:
        a protected group that cannot be read, or nesting deeper than that, is an error."""
        if self.settings.kind == ACTIVE_DIRECTORY:
            result = self._call(
                f"reading {dn}", "search", dn, "(adminCount=1)", ldap3.BASE, attributes=["1.1"]
            )
            if result.get("result") == 0 and any(
                r.get("type") == "searchResEntry" for r in self._conn.response or []
            ):
                return "adminCount=1 (an account Active Directory protects as privileged)"
        if not groups:
            return None
        start = [dn]
        if self.settings.kind == ACTIVE_DIRECTORY:
            # AD keeps a user's primary group out of the group's member list: it is named
            # by the user's primaryGroupID (the group SID's last part) instead.
            start.append(self._primary_group(dn))
        for group in groups:
            if not self.entry_exists(group):
                raise DirectoryError(
                    "refused",
                    f"the protected group {group} cannot be read: check the configuration",
                )
        wanted = [normalize_dn(g) for g in groups]
        for held in start[1:]:
            if normalize_dn(held) in wanted:
                return groups[wanted.index(normalize_dn(held))]
        base = suffix(self.settings.base_dn)
        frontier, seen = start, set()
        for _level in range(GROUP_DEPTH):
            holders: list[str] = []
            for member in frontier:
                value = escape_filter_chars(member)
                found = self.search(
                    base,
                    f"(|(member={value})(uniqueMember={value}))",
                    ["1.1"],
                    limit=GROUP_ENTRIES,
                )
                for entry in found:
                    key = normalize_dn(entry["dn"])
                    if key in wanted:
                        return groups[wanted.index(key)]
                    if key not in seen:
                        seen.add(key)
                        holders.append(entry["dn"])
            if not holders:
                return None
            if len(seen) > GROUP_ENTRIES:
                raise DirectoryError("refused", "too many nested groups to check; refused")
            frontier = holders
        raise DirectoryError(
            "refused", f"groups nest deeper than {GROUP_DEPTH} levels above {dn}; refused"
        )

    # --- writing ------------------------------------------------------------------------

    def _modify(self, what: str, dn: str, changes: dict[str, Any]) -> None:
        result = self._call(what, "modify", dn, changes)
        if result.get("result") != 0:
            raise _answered(what, result)

    def set_password(self, account: Account, password: str, *, must_change: bool) -> None:
        if self.settings.kind == ACTIVE_DIRECTORY:
            encoded = f'"{password}"'.encode("utf-16-le")
            self._modify(
                "setting the password",
                account.dn,
                {"unicodePwd": [(ldap3.MODIFY_REPLACE, [encoded])]},
            )
            try:
                self._modify(
                    "setting when the password must change",
                    account.dn,
                    {"pwdLastSet": [(ldap3.MODIFY_REPLACE, ["0" if must_change else "-1"])]},
                )
            except DirectoryError as exc:
                exc.partial = "the password was changed; whether it must change was not set"
                raise
            return
        try:
            done = self._conn.extend.standard.modify_password(
                user=account.dn, new_password=password
            )
        except (ldap_errors.LDAPException, OSError) as exc:
            raise DirectoryError(
                "unreachable",
                "the directory stopped answering while setting the password "
                f"({type(exc).__name__})",
            ) from None
        if not done:
            raise _answered("setting the password", dict(self._conn.result or {}))
        try:
            current = self.reread(account)
            if current.must_change != must_change:
                change = (
                    (ldap3.MODIFY_REPLACE, ["TRUE"]) if must_change else (ldap3.MODIFY_DELETE, [])
                )
                self._modify(
                    "setting when the password must change", account.dn, {"pwdReset": [change]}
                )
        except DirectoryError as exc:
            exc.partial = "the password was changed; whether it must change was not set"
            raise

    def unlock(self, account: Account) -> None:
        if self.settings.kind == ACTIVE_DIRECTORY:
            self._modify("unlocking", account.dn, {"lockoutTime": [(ldap3.MODIFY_REPLACE, ["0"])]})
            return
        # ppolicy forgets the failed attempts with the lock (pwdFailureTime goes too)
        self._modify("unlocking", account.dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]})

    def set_disabled(self, account: Account, disabled: bool) -> None:
        if self.settings.kind == ACTIVE_DIRECTORY:
            result = self._call(
                f"reading {account.dn}",
                "search",
                account.dn,
                "(objectClass=*)",
                ldap3.BASE,
                attributes=["userAccountControl"],
            )
            entries = [r for r in self._conn.response or [] if r.get("type") == "searchResEntry"]
            if result.get("result") != 0 or not entries:
                raise DirectoryError("not_found", f"{account.dn} is no longer in the directory")
            raw = {k.lower(): v for k, v in entries[0].get("raw_attributes", {}).items()}
            control = int((raw.get("useraccountcontrol") or [b"512"])[0])
            wanted = control | AD_ACCOUNTDISABLE if disabled else control & ~AD_ACCOUNTDISABLE
            self._modify(
                "disabling" if disabled else "enabling",
                account.dn,
                {"userAccountControl": [(ldap3.MODIFY_REPLACE, [str(wanted)])]},
            )
            return
        change = (
            (ldap3.MODIFY_REPLACE, [OPENLDAP_DISABLED]) if disabled else (ldap3.MODIFY_DELETE, [])
        )
        self._modify(
            "disabling" if disabled else "enabling", account.dn, {"pwdAccountLockedTime": [change]}
        )

    def set_membership(self, account: Account, group_dn: str, member: bool) -> bool:
        """Add ``account`` to ``group_dn`` (or remove it); False when it already was (or
        was not) a member, and nothing was written."""
        present = self.is_member(group_dn, account.dn)
        if present == member:
            return False
        operation = ldap3.MODIFY_ADD if member else ldap3.MODIFY_DELETE
        self._modify(
            f"{'adding to' if member else 'removing from'} {group_dn}",
            group_dn,
            {"member": [(operation, [account.dn])]},
        )
        return True

    def add_entry(self, dn: str, object_classes: list[str], attributes: dict[str, Any]) -> None:
        result = self._call(f"creating {dn}", "add", dn, object_classes, attributes)
        if result.get("result") == 68:
            raise DirectoryError("refused", f"{dn} exists already")
        if result.get("result") != 0:
            raise DirectoryError(
                "failed",
                f"creating {dn}: {result.get('description')} ({result.get('message') or ''})",
            )

    def delete_entry(self, dn: str) -> None:
        result = self._call(f"removing {dn}", "delete", dn)
        if result.get("result") not in (0, 32):
            raise DirectoryError("failed", f"removing {dn}: {result.get('description')}")


def _answered(what: str, result: dict[str, Any]) -> DirectoryError:
    """A refused write, with the directory's words: ``refused`` for what its rules forbid
    (a constraint such as password quality, missing rights), ``failed`` otherwise."""
    code = result.get("result")
    kind = "refused" if code in (19, 50, 53) else "failed"
    detail = result.get("message") or code
    return DirectoryError(
        kind, f"{what}: the directory answered {result.get('description')} ({detail})"
    )


def child_dn(attribute: str, value: str, container: str) -> str:
    """A new entry's name: ``attribute=value`` (escaped) under ``container``."""
    return f"{attribute}={escape_rdn(value)},{container}"
