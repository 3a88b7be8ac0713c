"""Markdown to sanitised HTML for what reviewers read in Label Studio (guidelines, answers, reasoning).

markdown-it-py (already installed with rich) parses CommonMark with raw HTML off, so ``<script>`` in a
record shows as text; nh3 (the Ammonia sanitiser) then keeps only a small tag list as a second guard: no
scripts, no styles, no images (a remote image would call out to a third party when a reviewer opens a task),
links get ``rel="noopener noreferrer"``.
"""
from __future__ import annotations

import html
from functools import lru_cache

import nh3

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
})
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})


@lru_cache(maxsize=2)
def _parser(hard_breaks: bool):
    from markdown_it import MarkdownIt

    options = {"html": False, "linkify": False, "breaks": hard_breaks}
    return MarkdownIt("commonmark", options).enable(["table", "strikethrough"])


def sanitize(fragment: str) -> str:
    """HTML reduced to the allowed tags and attributes (anything else is dropped, its text kept)."""
    return nh3.clean(fragment, tags=set(ALLOWED_TAGS), attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), link_rel="noopener noreferrer")


def markdown_html(text: str | None, hard_breaks: bool = True) -> str:
    """Markdown rendered and sanitised; empty input gives an empty string. ``hard_breaks``: a single newline
    is a line break (model answers mean it; hand-wrapped documents such as the guidelines do not)."""
    if not text:
        return ""
    return sanitize(_parser(hard_breaks).render(text))


def escape(text: object) -> str:
    """Plain text for our own HTML templates."""
    return html.escape(str(text), quote=True)
