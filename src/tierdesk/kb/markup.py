"""Article text: Markdown in, sanitized HTML and plain text out.

Markdown (CommonMark with tables and strikethrough; raw HTML allowed) is rendered, then the
HTML goes through an allow-list (ammonia, by nh3): only the tags and attributes below stay,
links keep only http, https and mailto URLs (or relative ones), and everything else —
script, iframes, forms, event attributes, style, javascript: and data: URLs — is removed.
Cleaning clean HTML changes nothing, so what is stored is stable.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Iterator
from functools import cache

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

TAGS = frozenset(
    {
        *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "code"),
        *("strong", "em", "b", "i", "del", "s", "sub", "sup", "kbd", "mark", "small"),
        *("ul", "ol", "li", "dl", "dt", "dd", "details", "summary"),
        *("a", "img", "table", "thead", "tbody", "tr", "th", "td", "caption"),
    }
)
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "th": {"scope", "colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def sanitize(fragment: str) -> str:
    """``fragment`` with only the allow-listed HTML left."""
    return nh3.clean(
        fragment,
        tags=set(TAGS),
        attributes={k: set(v) for k, v in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
    )


ATTACHMENT_SCHEME = "attachment:"


def _attachment_refs(tokens: list[Token]) -> Iterator[tuple[Token, str, str]]:
    """(token, attribute, file name) of every ``attachment:NAME`` image or link."""
    for token in tokens:
        for attr in ("src", "href"):
            value = token.attrGet(attr)
            if isinstance(value, str) and value.startswith(ATTACHMENT_SCHEME):
                yield token, attr, urllib.parse.unquote(value.removeprefix(ATTACHMENT_SCHEME))
        if token.children:
            yield from _attachment_refs(token.children)


def render(source: str, files_url: str | None = None) -> str:
    """The article's HTML: ``source`` rendered as Markdown, then sanitized. Images and links
    written as ``attachment:NAME`` (Markdown syntax, not raw HTML) point at
    ``files_url + NAME``; without ``files_url`` they are dropped as unknown URLs."""
    md = _markdown()
    tokens = md.parse(source)
    if files_url is not None:
        for token, attr, name in _attachment_refs(tokens):
            token.attrSet(attr, files_url + urllib.parse.quote(name))
    return sanitize(md.renderer.render(tokens, md.options, {}))


_SPACE = re.compile(r"\s+")
# C0 control characters other than whitespace (a pasted terminal log's escapes): never
# words, and the search engines mark matches in snippets with two of them (kb.search).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def plain_text(rendered: str) -> str:
    """The words of rendered (sanitized) HTML, for the search index and its snippets."""
    text = nh3.clean(rendered.replace("<", " <"), tags=set())
    return _SPACE.sub(" ", _CONTROL.sub(" ", html.unescape(text))).strip()
