"""Reading received mail: bodies (HTML through the allow-list), quoted history and
signatures, files, automatic mail and bounces; and the limits that keep a hostile message
from costing unbounded time or memory."""

from __future__ import annotations

import time

import pytest

from tests.channels.mails import mail
from tierdesk.channels import mailparse
from tierdesk.channels.mailparse import Malformed, parse


def test_a_plain_message() -> None:
    got = parse(mail(sender='"Alice A." <Alice@Acme.Example>', subject="  Printer    on fire "))
    assert (got.sender, got.sender_name, got.subject) == (
        "alice@acme.example",
        "Alice A.",
        "Printer on fire",
    )
    assert got.text == "It smokes."
    assert not got.auto_generated
    assert got.bounce is None


def test_html_is_sanitized_into_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Hello <b>desk</b>,</p><p onclick='x()'>the <a href='javascript:x'>VPN</a> is down"
        "<img src=x onerror=alert(2)></p><ul><li>one</li><li>two</li></ul></body></html>"
    )
    got = parse(mail(text=None, html=html))
    assert "alert" not in got.text
    assert "color" not in got.text
    assert "onclick" not in got.text
    assert "Hello desk," in got.text
    assert "the VPN is down" in got.text
    assert "- one" in got.text
    assert "- two" in got.text


def test_plain_text_is_preferred_to_html() -> None:
    assert parse(mail(text="plain words", html="<p>html words</p>")).text == "plain words"


@pytest.mark.parametrize(
    "quote",
    [
        "On Mon, 2 Mar 2026 at 09:00, Desk <support@acme.example> wrote:\n> old text",
        "On Mon, 2 Mar 2026 at 09:00, Desk <support@acme.example>\nwrote:\n> old text",
        "Am 02.03.2026 um 09:00 schrieb Desk <support@acme.example>:\n> old text",
        "-----Original Message-----\nFrom: Desk\nSent: Monday\nTo: Alice\nSubject: x\n\nold text",
        "From: Desk <support@acme.example>\nSent: Monday, 2 March 2026 09:00\n"
        "To: Alice\nSubject: RE: x\n\nold text",
        "> old text\n> more old text",
    ],
)
def test_quoted_history_is_trimmed_from_replies(quote: str) -> None:
    got = parse(mail(text=f"Thanks, it works now.\n\n{quote}\n"))
    assert got.reply_text == "Thanks, it works now."
    assert "old text" in got.text  # the whole message stays readable


def test_a_signature_is_trimmed_and_an_all_quote_reply_kept() -> None:
    assert parse(mail(text="Done.\n-- \nAlice\nAcme Inc.")).reply_text == "Done."
    assert parse(mail(text="> only a quote")).reply_text == "> only a quote"


def test_html_quotes_are_trimmed_from_replies() -> None:
    html = (
        '<div>Fixed, thanks!</div><div class="gmail_quote">On Mon wrote:'
        "<blockquote>old text</blockquote></div>"
    )
    got = parse(mail(text=None, html=html))
    assert got.reply_text == "Fixed, thanks!"
    outlook = '<p>Works.</p><div id="appendonsend"></div><hr><p>From: Desk</p><p>old text</p>'
    assert parse(mail(text=None, html=outlook)).reply_text == "Works."


def test_files_and_inline_images_are_kept() -> None:
    raw = mail(
        files=[
            ("log.txt", b"line 1\n", "text/plain"),
            ("shot.png", b"\x89PNG\r\n\x1a\nxx", "image/png"),
        ]
    )
    got = parse(raw)
    assert [(f.filename, f.content) for f in got.files] == [
        ("log.txt", b"line 1\n"),
        ("shot.png", b"\x89PNG\r\n\x1a\nxx"),
    ]
    assert got.text == "It smokes."


def test_a_forwarded_message_is_a_file_not_the_body() -> None:
    inner = mail(subject="inner", text="inner words")
    outer = mail(text="see below", files=[("fwd.eml", inner, "message/rfc822")])
    got = parse(outer)
    assert got.text == "see below"
    assert [f.filename for f in got.files] == ["fwd.eml"]
    assert b"inner words" in got.files[0].content


def test_unknown_and_wrong_charsets_are_read_not_raised() -> None:
    raw = (
        b"From: a@acme.example\r\nSubject: =?x-unknown?q?caf=E9?=\r\nMessage-ID: <c@x>\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\ncaf\xe9 \xff ok\r\n"
    )
    got = parse(raw)
    assert "ok" in got.text
    assert "caf" in got.text
    latin = (
        b"From: a@acme.example\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n"
    )
    assert parse(latin).text == "café"


def test_broken_mime_is_read() -> None:
    raw = (
        b"From: a@acme.example\r\nSubject: broken\r\nContent-Type: multipart/mixed; boundary=zz\r\n"
        b"\r\n--zz\r\nContent-Type: text/plain\r\n\r\nbody text\r\n--zz\r\nContent-Type: app"
    )  # no closing boundary, a part cut off
    assert "body text" in parse(raw).text
    assert parse(b"not a message at all").sender == ""


def test_a_huge_header_block_is_refused() -> None:
    raw = (
        b"From: a@acme.example\r\nX-Junk: "
        + b"a" * (mailparse.MAX_HEADER_BYTES + 10)
        + b"\r\n\r\nx"
    )
    with pytest.raises(Malformed, match="header block"):
        parse(raw)


def _many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count)
    )
    return (
        b"From: a@acme.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + parts
        + b"--b--\r\n"
    )


def test_thousands_of_parts_are_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(Malformed, match="MIME parts"):
        parse(_many_parts(5_000))
    assert time.monotonic() - started < 10
    assert parse(_many_parts(20)).files  # a few are fine


def test_deep_nesting_is_refused() -> None:
    raw = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(60):
        raw = (
            b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (level, level)
            + raw
            + b"\r\n--b%d--\r\n" % level
        )
    with pytest.raises(Malformed, match="nested"):
        parse(b"From: a@acme.example\r\n" + raw)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Auto-Submitted": "auto-generated"}, "Auto-Submitted"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "list"}, "Precedence: list"),
        ({"Precedence": "junk"}, "Precedence: junk"),
        ({"List-Id": "<news.example>"}, "mailing-list"),
        ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress"),
        ({"Return-Path": "<>"}, "null sender"),
    ],
)
def test_automatic_mail_is_recognised(headers: dict[str, str], why: str) -> None:
    assert why in parse(mail(headers=headers)).auto_generated


def test_out_of_office_replies_are_recognised() -> None:
    assert parse(mail(headers={"Auto-Submitted": "auto-replied"})).auto_reply
    assert parse(mail(subject="Automatic reply: Printer on fire")).auto_reply
    assert parse(mail(headers={"X-Autoreply": "yes"})).auto_reply
    assert not parse(mail(headers={"Auto-Submitted": "no"})).auto_generated
    assert "mailer-daemon" in parse(mail(sender="MAILER-DAEMON@mx.example")).auto_generated


def test_a_delivery_status_notice_is_a_bounce() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.acme.example\r\nTo: support@acme.example\r\n"
        b"Subject: Undelivered\r\n"
        b"Return-Path: <>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        b"Final-Recipient: rfc822; Bob@Acme.Example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
        b"--r--\r\n"
    )
    got = parse(raw)
    assert got.bounce is not None
    assert got.bounce.recipients == ["bob@acme.example"]
    assert "5.1.1" in got.bounce.reason
    assert "user unknown" in got.bounce.reason
    delayed = raw.replace(b"Action: failed", b"Action: delayed")
    assert parse(delayed).bounce is None


def test_header_control_characters_do_not_survive() -> None:
    raw = b"From: a@acme.example\r\nSubject: =?utf-8?q?one=0D=0ABcc=3A_x=40evil.test?=\r\n\r\nx"
    subject = parse(raw).subject
    assert "\r" not in subject
    assert "\n" not in subject


def test_the_storing_step_reads_the_message_id_and_keys_by_it() -> None:
    raw = mail(message_id="<abc@mail.acme.example>")
    assert mailparse.message_id_of(raw) == "<abc@mail.acme.example>"
    assert mailparse.key_for("<abc@mail.acme.example>", raw) == "mid:<abc@mail.acme.example>"
    bare = b"From: a@acme.example\r\n\r\nno id"
    assert mailparse.message_id_of(bare) == ""
    assert mailparse.key_for("", bare).startswith("sha256:")


def test_a_long_address_header_is_not_handed_to_the_slow_parser() -> None:
    # the policy's address parser takes quadratic time on runs of quotes: 32K took 7 s
    started = time.monotonic()
    with pytest.raises(Malformed, match="From header is over 8 KiB"):
        parse(b"From: " + b'"' * 200_000 + b"\r\nSubject: x\r\n\r\nbody")
    long_to = b"To: " + b'"' * 200_000 + b"\r\n"
    got = parse(b"From: a@acme.example\r\n" + long_to + b"Subject: x\r\n\r\nbody")
    assert got.sender == "a@acme.example"
    assert time.monotonic() - started < 2


def test_hundreds_of_thousands_of_parts_are_refused_before_parsing() -> None:
    raw = _many_parts(300_000)  # about 10 MB: the parser would build every part first
    started = time.monotonic()
    with pytest.raises(Malformed, match="MIME parts"):
        parse(raw)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("odd", [b"<a\x00b@x.example>", b"<caf\xe9@x.example>", b"<a b@x.example>"])
def test_an_odd_message_id_keys_by_the_bytes(odd: bytes) -> None:
    raw = b"From: a@acme.example\r\nMessage-ID: " + odd + b"\r\n\r\nx"
    assert mailparse.message_id_of(raw) == ""
    other = raw.replace(b"\r\n\r\nx", b"\r\n\r\ny")
    assert mailparse.key_for("", raw) != mailparse.key_for("", other)
