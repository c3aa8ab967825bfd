"""Style features of one response's Markdown, in the column order of ``data.STYLE_FEATURES``.

The counts follow Chatbot Arena's style control (headers, list items, bold spans; Li et al., "Does style
matter?", LMSYS blog, 2024). Length is in characters by default: the platform may not have a tokenizer for
every system; pass a token count from the response's provenance instead where one is stored, the same unit
for every response of a study (the normalised difference (a - b) / (a + b + 1) only needs that).
Code blocks are skipped, so a '#' comment in code is not a header.
"""
from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
_HEADER = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.MULTILINE)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__", re.DOTALL)


def markdown_style(text: str, length: float | None = None) -> tuple[float, float, float, float]:
    """(length, headers, list items, bold spans) of a response; ``length`` overrides the character count."""
    prose = _FENCE.sub("", text)
    return (
        float(len(text) if length is None else length),
        float(len(_HEADER.findall(prose))),
        float(len(_LIST_ITEM.findall(prose))),
        float(len(_BOLD.findall(prose))),
    )
