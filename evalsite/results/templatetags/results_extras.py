"""Number formatting for the results page: one place decides the precision every number is shown with.

Rates are shown as percentages with one decimal, intervals as "low–high", p-values with up to three
decimals (and "< 0.001" below that), ratings as whole Elo points. An undefined number (None: no data,
or a statistic that does not exist for these judgments) is an em dash, never 0.
"""
from __future__ import annotations

import math

from django import template

from evalsite.results.charts import format_p

register = template.Library()

DASH = "—"

METHOD_NAMES = {
    "wilson": "Wilson score interval",
    "cluster-bootstrap-percentile": "cluster bootstrap over prompts (percentile)",
    "one-step-newton-cluster-bootstrap-percentile": "one-step cluster bootstrap over prompts (percentile)",
}


def _defined(value) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def _unsigned_zero(text: str) -> str:
    """"-0.0" and "+0.0" (a tiny number rounded away) read as "0.0"."""
    if text[:1] in "+-" and not any(c in "123456789" for c in text):
        return text[1:]
    return text


@register.filter
def pct(value, digits: int = 1) -> str:
    """0.6234 -> "62.3%"."""
    if not _defined(value):
        return DASH
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def pct_interval(interval) -> str:
    """{"low": 0.58, "high": 0.66} -> "58.0–66.0%"."""
    if not interval or not _defined(interval.get("low")) or not _defined(interval.get("high")):
        return DASH
    return f"{100 * interval['low']:.1f}–{100 * interval['high']:.1f}%"


@register.filter
def points(value) -> str:
    """A difference of two rates in percentage points, signed: 0.042 -> "+4.2 pts"."""
    if not _defined(value):
        return DASH
    return _unsigned_zero(f"{100 * float(value):+.1f}") + " pts"


@register.filter
def points_interval(interval) -> str:
    if not interval or not _defined(interval.get("low")) or not _defined(interval.get("high")):
        return DASH
    low, high = (_unsigned_zero(f"{100 * interval[k]:+.1f}") for k in ("low", "high"))
    return f"{low} to {high}"


@register.filter
def pvalue(value) -> str:
    return format_p(value)


@register.filter
def p_equals(value) -> str:
    """"p = 0.04", or "p < 0.001"."""
    text = format_p(value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


@register.filter
def num(value, digits: int = 2) -> str:
    """A plain number with ``digits`` decimals; signed values keep their sign."""
    if not _defined(value):
        return DASH
    return _unsigned_zero(f"{float(value):.{int(digits)}f}")


@register.filter
def num_interval(interval, digits: int = 2) -> str:
    if not interval or not _defined(interval.get("low")) or not _defined(interval.get("high")):
        return DASH
    d = int(digits)
    return " to ".join(_unsigned_zero(f"{interval[k]:.{d}f}") for k in ("low", "high"))


@register.filter
def elo(value) -> str:
    if not _defined(value):
        return DASH
    return f"{float(value):.0f}"


@register.filter
def elo_interval(interval) -> str:
    if not interval or not _defined(interval.get("low")) or not _defined(interval.get("high")):
        return DASH
    return f"{interval['low']:.0f}–{interval['high']:.0f}"


@register.filter
def method_name(method: str) -> str:
    return METHOD_NAMES.get(method or "", method or "")


@register.filter
def significant(value, alpha: float = 0.05) -> bool:
    return _defined(value) and float(value) < float(alpha)


@register.filter
def lookup(mapping, key):
    """mapping[key] in a template (None when absent)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
