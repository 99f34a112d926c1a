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
from functools import cache

import nh3
from markdown_it import MarkdownIt

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


def render(source: str) -> str:
    """The article's HTML: ``source`` rendered as Markdown, then sanitized."""
    return sanitize(_markdown().render(source))


_SPACE = re.compile(r"\s+")


def plain_text(rendered: str) -> str:
    """The words of rendered (sanitized) HTML, for the search index and its snippets."""
    text = nh3.clean(rendered.replace("<", " <"), tags=set())
    return _SPACE.sub(" ", html.unescape(text)).strip()
