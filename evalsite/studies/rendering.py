"""Rendering untrusted text (model output, prompts, instructions) as safe HTML.

Two layers, because model output is attacker-controlled input:
1. markdown-it in CommonMark mode with raw HTML turned off: a `<script>` in a response is shown as text,
   the way the model wrote it, rather than removed or run.
2. nh3 (an allow-list sanitizer) over the result: only the tags and attributes below survive, links only
   with http(s)/mailto, and nothing that loads a resource (no img, iframe, style) so a response cannot make
   a rater's browser contact another site.
"""
from __future__ import annotations

from functools import lru_cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td", "a", "sup", "sub",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def _image_as_alt_text(self, tokens, idx, options, env) -> str:
    # An image would be fetched by the rater's browser from wherever the model pointed: show its alt text.
    return escapeHtml(tokens[idx].content)


_markdown.add_render_rule("image", _image_as_alt_text)


# The same texts come back again and again (each response is shown to k raters, each prompt in every pair,
# the instructions on every entry), and rendering is a third of a rating page's work. Long texts are
# rendered each time so the cache stays a few megabytes per process.
_CACHE_ENTRIES = 1024
_CACHE_MAX_CHARS = 8000


def render_markdown(text: str) -> SafeString:
    text = text or ""
    return _render_cached(text) if len(text) <= _CACHE_MAX_CHARS else _render(text)


@lru_cache(maxsize=_CACHE_ENTRIES)
def _render_cached(text: str) -> SafeString:
    return _render(text)


def _render(text: str) -> SafeString:
    html = _markdown.render(text)
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above
