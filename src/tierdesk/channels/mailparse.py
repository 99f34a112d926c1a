"""Reading a received message: who sent it, what it says, its files, and whether it is
mail no one should answer (auto-generated, a bounce, a list).

Everything here is bounded: the header block, the number of parts, their nesting and the
text kept have limits, and a message past one is refused with ``Malformed`` (the caller
quarantines it with the reason) instead of being read at any cost. Unknown charsets and
broken MIME are read as well as they can be (defects noted, replacement characters), never
raised.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser

import nh3

MAX_HEADER_BYTES = 256 * 1024
MAX_HEADER_FIELD = 8 * 1024  # characters of one header's value that are parsed
MAX_PARTS = 500
MAX_DEPTH = 10
MAX_ATTACHMENTS = 50
MAX_TEXT = 100_000  # characters of body kept (a ticket's limit)
SUBJECT_MAX = 250
NO_SUBJECT = "(no subject)"


class Malformed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class File:
    filename: str
    content: bytes
    content_type: str
    inline: bool


@dataclass(frozen=True)
class Part:
    message: Message
    depth: int
    nested: bool  # inside a forwarded (attached) message


@dataclass(frozen=True)
class Bounce:
    recipients: list[str]
    reason: str


@dataclass
class Parsed:
    message_id: str
    sender: str  # the From address, lower case; "" when there is none
    sender_name: str
    subject: str
    text: str  # the body as plain text (HTML converted), whole
    reply_text: str  # the same with quoted history and signature trimmed
    files: list[File] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was not kept, and why
    references: str = ""  # where reply tokens may be: In-Reply-To, References, recipients
    recipients: list[str] = field(default_factory=list)
    auto_generated: str = ""  # why no automatic answer may go to it ("" when one may)
    auto_reply: bool = False  # an out-of-office or similar answer
    bounce: Bounce | None = None
    null_sender: bool = False


# --- the bytes ----------------------------------------------------------------------------


def header_block_size(raw: bytes) -> int:
    """Bytes before the first empty line (all of them when there is none)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


def key_for(message_id: str, raw: bytes) -> str:
    """What makes a message the same message twice: its Message-ID when it has a usable
    one, else the hash of its bytes."""
    if message_id and len(message_id) <= 240:
        return "mid:" + message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def message_id_of(raw: bytes) -> str:
    """The Message-ID from the header block alone (cheap; for the storing step): printable
    ASCII only, else none (the key is then the bytes' hash: two odd ids that would read
    alike are never taken for one message)."""
    head = raw[: min(header_block_size(raw), MAX_HEADER_BYTES)]
    found = re.search(
        rb"^message-id:[ \t]*(<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>)[ \t]*\r?$",
        head,
        re.IGNORECASE | re.MULTILINE,
    )
    return found.group(1).decode("ascii") if found else ""


def summary(raw: bytes) -> tuple[str, str]:
    """The sender and subject from the header block alone (for a message that cannot be
    read whole); empty when even that is past the limit."""
    size = header_block_size(raw)
    if size > MAX_HEADER_BYTES:
        return "", ""
    head = email.message_from_bytes(raw[:size] + b"\r\n\r\n", policy=email.policy.default)
    try:
        senders = _addresses(head, "From")
    except Malformed:
        senders = []
    return (senders[0][1] if senders else ""), _subject(head)


def _count_parts(raw: bytes) -> None:
    """Refuse, before parsing, a message with more delimiter lines than ``MAX_PARTS`` parts
    would have: the parser builds every part first, at a cost per part."""
    boundaries: set[bytes] = set()
    for match in re.finditer(
        rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', raw, re.I
    ):
        boundaries.add((match.group(1) or match.group(2)).rstrip())
        if len(boundaries) > MAX_PARTS:
            raise Malformed(f"more than {MAX_PARTS} MIME parts")
    if not boundaries:
        return
    delimiters = 0
    for match in re.finditer(rb"^--([^\r\n]{1,204})", raw, re.MULTILINE):
        line = match.group(1).rstrip()
        if line.removesuffix(b"--") in boundaries:
            delimiters += 1
            if delimiters > 2 * MAX_PARTS:
                raise Malformed(f"more than {MAX_PARTS} MIME parts")


def parse(raw: bytes) -> Parsed:
    if header_block_size(raw) > MAX_HEADER_BYTES:
        raise Malformed(f"the header block is over {MAX_HEADER_BYTES // 1024} KiB")
    _count_parts(raw)
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except RecursionError:
        raise Malformed(f"parts nested more than {MAX_DEPTH} deep") from None
    parts = list(_parts(message))
    return _read(message, parts)


def _parts(message: Message) -> Iterator[Part]:
    """Every part, nested messages' included, in order, within the limits."""
    stack = [Part(message, 0, False)]
    count = 0
    while stack:
        part = stack.pop()
        count += 1
        if count > MAX_PARTS:
            raise Malformed(f"more than {MAX_PARTS} MIME parts")
        if part.depth > MAX_DEPTH:
            raise Malformed(f"parts nested more than {MAX_DEPTH} deep")
        yield part
        if part.message.is_multipart():
            children = part.message.get_payload()
            if isinstance(children, list):
                inside = part.nested or part.message.get_content_type() == "message/rfc822"
                stack.extend(
                    Part(c, part.depth + 1, inside)
                    for c in reversed(children)
                    if isinstance(c, Message)
                )


# --- headers ------------------------------------------------------------------------------


def _header(message: Message, name: str) -> str:
    """A header's value, decoded, control characters as spaces. One longer than
    ``MAX_HEADER_FIELD`` is not handed to the policy's parser (whose time grows with the
    square of some values' length): its raw text, cut, stands in; a sender's is refused."""
    wanted = name.lower()
    raw = next((v for k, v in message.raw_items() if k.lower() == wanted), None)
    if raw is None:
        return ""
    if len(raw) > MAX_HEADER_FIELD:
        if wanted in ("from", "sender", "return-path"):
            raise Malformed(f"the {name} header is over {MAX_HEADER_FIELD // 1024} KiB")
        text = str(raw)[:MAX_HEADER_FIELD]
    else:
        try:
            text = str(message.get(name))
        except Exception:  # a header the policy cannot parse: its raw text
            text = str(raw)
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _addresses(message: Message, *names: str) -> list[tuple[str, str]]:
    values = [_header(message, n) for n in names]
    found = []
    for display, address in email.utils.getaddresses([v for v in values if v]):
        address = address.strip().lower()
        if "@" in address and len(address) <= 254:
            found.append((display.strip(), address))
    return found


AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|abwesenheit|absence)",
    re.IGNORECASE,
)
NO_REPLY_SENDERS = re.compile(
    r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+-].*)?@", re.IGNORECASE
)


def _automatic(message: Message, sender: str, subject: str) -> tuple[str, bool]:
    """Why no automatic answer may go to ``message`` ("" if one may), and whether it is
    itself an automatic reply (out of office)."""
    auto_submitted = _header(message, "Auto-Submitted").lower()
    precedence = _header(message, "Precedence").lower()
    replied = (
        auto_submitted.startswith("auto-replied")
        or bool(_header(message, "X-Autoreply") or _header(message, "X-Autorespond"))
        or bool(AUTO_REPLY_SUBJECT.match(subject))
    )
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted[:40]}", replied
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}", replied
    if replied:
        return "an automatic reply", True
    if _header(message, "List-Id") or _header(message, "List-Unsubscribe"):
        return "mailing-list mail", False
    suppress = _header(message, "X-Auto-Response-Suppress").lower()
    if "all" in suppress or "autoreply" in suppress:
        return "X-Auto-Response-Suppress", False
    if not sender:
        return "no sender", False
    if NO_REPLY_SENDERS.match(sender):
        return f"sent by {sender.split('@')[0]}", False
    return "", False


# --- bounces ------------------------------------------------------------------------------


def _bounce(message: Message, parts: list[Part]) -> Bounce | None:
    if message.get_content_type() != "multipart/report":
        return None
    if message.get_param("report-type", "", header="content-type") != "delivery-status":
        return None
    recipients: list[str] = []
    reason = ""
    for part in (p.message for p in parts):
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part):
            action = str(block.get("Action", "")).strip().lower()
            if action not in ("failed", ""):
                continue  # delayed, delivered, relayed: not a bounce
            final = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            address = final.split(";", 1)[-1].strip().strip("<>").lower()
            if "@" in address and len(address) <= 254 and address not in recipients:
                recipients.append(address)
                status = str(block.get("Status", "")).strip()
                diagnostic = str(block.get("Diagnostic-Code", "")).split(";", 1)[-1].strip()
                reason = reason or " ".join(x for x in (status, diagnostic) if x)[:300]
    return Bounce(recipients, reason or "delivery failed") if recipients else None


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(chunk) for chunk in re.split(r"\r?\n\r?\n", text) if chunk]


# --- bodies and files -----------------------------------------------------------------------


def _text_of(part: Message) -> str:
    """A text part's content, decoded by its charset; an unknown or wrong charset gives
    replacement characters, not an error."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")


def _content(part: Message) -> bytes:
    """A file's bytes; a forwarded message's as the message it is (an .eml file)."""
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        try:
            return inner.as_bytes() if isinstance(inner, Message) else b""
        except Exception:  # a nested message too broken to write out again
            return b""
    content = part.get_payload(decode=True)
    return content if isinstance(content, bytes) else b""


def _filename(part: Message, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name:
        return str(name)
    subtype = part.get_content_subtype() or "bin"
    extension = {"jpeg": "jpg", "plain": "txt", "rfc822": "eml"}.get(subtype, subtype)
    return f"part-{index}.{extension[:10]}"


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        return ""


def _body_and_files(parts: list[Part], notes: list[str]) -> tuple[str, bool, list[File]]:
    plain: str | None = None
    html: str | None = None
    files: list[File] = []
    for index, item in enumerate(parts):
        part = item.message
        kind = part.get_content_type()
        if item.nested or kind == "message/delivery-status":
            continue  # inside a forwarded message (kept whole below), or a bounce's report
        if part.is_multipart() and kind != "message/rfc822":
            continue
        disposition = _disposition(part)
        try:
            named = bool(part.get_filename())
        except Exception:  # an unreadable name is still a name: a file
            named = True
        if disposition != "attachment" and not named and kind == "text/plain" and plain is None:
            plain = _text_of(part)
        elif disposition != "attachment" and not named and kind == "text/html" and html is None:
            html = _text_of(part)
        else:
            if len(files) >= MAX_ATTACHMENTS:
                notes.append(f"more than {MAX_ATTACHMENTS} files: the rest were not kept")
                break
            content = _content(part)
            if content:
                files.append(File(_filename(part, index), content, kind, disposition == "inline"))
    if plain is not None and plain.strip():
        return plain, False, files
    if html is not None:
        return html, True, files
    return plain or "", False, files


# --- HTML to text -----------------------------------------------------------------------------

ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "hr"}
QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
QUOTE_IDS = (
    "divrplyfwdmsg",
    "appendonsend",
    "stopspelling",
    "mail-editor-reference-message-container",
)


class _Text(HTMLParser):
    """Sanitized HTML to text; with ``trim``, quoted history (blockquotes, the quote
    containers mail programs mark) is left out."""

    def __init__(self, trim: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.trim = trim
        self.out: list[str] = []
        self.skip_depth = 0  # inside a quote being left out
        self.stack: list[bool] = []  # per open element: does it start a skipped quote?
        self.stopped = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCKS:
            self.out.append("\n")
        if tag == "li":
            self.out.append("- ")
        if tag in ("br", "hr"):
            return
        values = {k: (v or "").lower() for k, v in attrs}
        quote = self.trim and (
            tag == "blockquote"
            or any(c in values.get("class", "") for c in QUOTE_CLASSES)
            or values.get("id", "") in QUOTE_IDS
        )
        if quote and values.get("id", "") in QUOTE_IDS:
            self.stopped = True  # Outlook: everything from here on is the quoted message
        self.stack.append(quote)
        if quote:
            self.skip_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "hr"):
            return
        if self.stack and self.stack.pop():
            self.skip_depth -= 1
        if tag in BLOCKS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth and not self.stopped:
            self.out.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str, *, trim: bool = False) -> str:
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"*": {"class", "id"}, "a": {"href"}},
        clean_content_tags={"script", "style", "head", "title", "template"},
        link_rel=None,
    )
    parser = _Text(trim)
    parser.feed(clean)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- quoted history and signatures in plain text ----------------------------------------------

QUOTE_HEADERS = [
    re.compile(r"^on\b.{0,300}\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^am\b.{0,300}\bschrieb\b.{0,200}:\s*$", re.IGNORECASE),
    re.compile(r"^le\b.{0,300}\ba écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^el\b.{0,300}\bescribió:\s*$", re.IGNORECASE),
    re.compile(
        r"^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine)\s*-{2,}",
        re.IGNORECASE,
    ),
    re.compile(r"^_{20,}\s*$"),
]  # fmt: skip
OUTLOOK_FIELDS = re.compile(r"^(from|von|de):\s", re.IGNORECASE)
OUTLOOK_NEXT = re.compile(
    r"^(sent|date|gesendet|envoyé|to|an|à|subject|betreff|objet):\s", re.IGNORECASE
)


def trim_reply(text: str) -> str:
    """``text`` without the quoted message under it and the signature, where recognisable;
    ``text`` itself if trimming would leave nothing."""
    lines = text.replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        stripped = line.strip()
        joined = f"{stripped} {lines[i + 1].strip()}" if i + 1 < len(lines) else stripped
        if any(p.match(stripped) or p.match(joined) for p in QUOTE_HEADERS):
            cut = i
            break
        if (
            OUTLOOK_FIELDS.match(stripped)
            and sum(bool(OUTLOOK_NEXT.match(x.strip())) for x in lines[i + 1 : i + 5]) >= 2
        ):
            cut = i
            break
    kept = lines[:cut]
    while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith(">")):
        kept.pop()  # a quoted block at the end
    for i in range(len(kept) - 1, max(-1, len(kept) - 20), -1):
        if kept[i].rstrip() in ("--", "-- "):
            kept = kept[:i]
            break
    result = "\n".join(kept).strip()
    return result or text.strip()


# --- the whole ----------------------------------------------------------------------------------


def _subject(message: Message) -> str:
    subject = re.sub(r"\s+", " ", _header(message, "Subject")).strip()
    return subject[:SUBJECT_MAX] or NO_SUBJECT


def _read(message: Message, parts: list[Part]) -> Parsed:
    notes: list[str] = []
    senders = _addresses(message, "From")
    sender_name, sender = senders[0] if senders else ("", "")
    subject = _subject(message)
    return_path = _header(message, "Return-Path")
    null_sender = return_path.replace(" ", "") == "<>"
    auto_generated, auto_reply = _automatic(message, sender, subject)
    if null_sender and not auto_generated:
        auto_generated = "null sender"
    body, is_html, files = _body_and_files(parts, notes)
    if is_html:
        text, reply_text = html_to_text(body), html_to_text(body, trim=True)
        reply_text = trim_reply(reply_text)
    else:
        text = body.strip()
        reply_text = trim_reply(text)
    if len(text) > MAX_TEXT:
        notes.append(f"the text was cut at {MAX_TEXT:,} characters")
    recipients = [a for _n, a in _addresses(message, "To", "Cc", "Delivered-To", "X-Original-To")]
    references = " ".join(
        [_header(message, "In-Reply-To"), _header(message, "References"), *recipients]
    )
    return Parsed(
        message_id=_header(message, "Message-ID")[:255],
        sender=sender,
        sender_name=sender_name[:200],
        subject=subject,
        text=text[:MAX_TEXT],
        reply_text=reply_text[:MAX_TEXT],
        files=files,
        notes=notes,
        references=references,
        recipients=recipients,
        auto_generated=auto_generated,
        auto_reply=auto_reply,
        bounce=_bounce(message, parts),
        null_sender=null_sender,
    )
