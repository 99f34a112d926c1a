"""Article Markdown: rendered, then only the allow-listed HTML stays (SECURITY.md's
stored-XSS cases for rich text)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tierdesk.kb.markup import plain_text, render, sanitize

DANGEROUS = [
    ("<script>alert(1)</script>", "<script"),
    ("<iframe src='https://evil.example'></iframe>", "<iframe"),
    ("<form action='/x'><input name=a></form>", "<form"),
    ("<img src=x onerror=alert(1)>", "onerror"),
    ("<a href='javascript:alert(1)'>x</a>", "javascript:"),
    ("<a href='JaVaScRiPt:alert(1)'>x</a>", "avascript"),
    ("[x](javascript:alert(1))", 'href="javascript'),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", 'href="data:'),
    ("<a href='data:text/html,<script>alert(1)</script>'>x</a>", "data:"),
    ("<p style='background:url(javascript:alert(1))'>x</p>", "style="),
    ("<svg onload=alert(1)><circle/></svg>", "onload"),
    ("<object data='x.swf'></object>", "<object"),
    ("<meta http-equiv='refresh' content='0;url=https://evil.example'>", "<meta"),
    ("<base href='https://evil.example/'>", "<base"),
    ("<iframe srcdoc='<script>alert(1)</script>'></iframe>", "srcdoc"),
    ("<style>body{background:url(javascript:alert(1))}</style>", "<style"),
    ('<a href="jav&#x09;ascript:alert(1)">x</a>', "ascript"),
    ("<a href='&#106;avascript:alert(1)'>x</a>", "avascript"),
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>', "onerror"),
    ("<svg><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>", "javascript"),
    ("<img src='attachment:x.png' onerror=alert(1)>", "onerror"),
    ("![x](attachment:x.png)<img src=x onerror=alert(1)>", "onerror"),
]


@pytest.mark.parametrize(("source", "forbidden"), DANGEROUS)
def test_dangerous_markup_is_stripped(source: str, forbidden: str) -> None:
    out = render(f"Before\n\n{source}\n\nAfter")
    assert forbidden.lower() not in out.lower()
    assert "Before" in out
    assert "After" in out


def test_the_math_style_mutation_leaves_no_script() -> None:
    # An unclosed <style> inside foreign content takes the rest of the block as its text, so
    # "After" goes too: what matters is that no element with a handler comes out.
    out = render("Before\n\n<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>")
    assert "onerror" not in out
    assert "<img" not in out
    assert "<style" not in out
    assert sanitize(out) == out


def test_markdown_is_rendered_with_tables_and_safe_links() -> None:
    out = render(
        "## Steps\n\n1. Open **Settings**\n2. Run `ipconfig /flushdns`\n\n"
        "| Key | Value |\n|---|---|\n| a | b |\n\n[Portal](https://portal.example/x)"
    )
    assert "<h2>Steps</h2>" in out
    assert "<strong>Settings</strong>" in out
    assert "<code>ipconfig /flushdns</code>" in out
    assert "<table>" in out
    assert 'href="https://portal.example/x"' in out
    assert 'rel="noopener noreferrer nofollow"' in out


def test_code_keeps_its_characters() -> None:
    out = render("`if a < b && c > d`")
    assert "<code>if a &lt; b &amp;&amp; c &gt; d</code>" in out
    assert plain_text(out) == "if a < b && c > d"


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>/='\"&; abcjsvrtpimgonerfx:()[]!*#`\n")), max_size=120)
)
def test_sanitizing_twice_changes_nothing(source: str) -> None:
    once = render(source)
    assert sanitize(once) == once


def test_the_indexed_text_has_no_control_characters() -> None:
    # \x02 and \x03 are the search engines' match marks: in the text they would become
    # stray <mark> tags in a snippet
    text = plain_text(render("Error \x1b[31mred\x1b[0m, \x02odd\x03 bytes\x07\ttab"))
    assert text == "Error [31mred [0m, odd bytes tab"
