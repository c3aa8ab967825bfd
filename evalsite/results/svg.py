"""A few inline-SVG drawing helpers for the results page: a canvas, scales with readable ticks.

Charts are drawn on the server as plain SVG markup (no plotting library, no script, nothing from a CDN), so
they print, zoom and work without JavaScript. Every string placed in the markup goes through Django's
``escape``: system names and categories come from researchers' files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', Arial, sans-serif"


def _num(value: float) -> str:
    """Coordinates with two decimals at most: smaller markup, no visible difference."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attrs(attrs: dict) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        if isinstance(value, float):
            value = _num(value)
        parts.append(f'{name}="{escape(str(value))}"')
    return " ".join(parts)


class Canvas:
    """An SVG image of ``width`` x ``height`` user units; results.css lets it shrink to narrow screens.

    ``title`` and ``description`` become the <title>/<desc> a screen reader announces (role="img")."""

    def __init__(self, width: float, height: float, *, title: str, description: str = "", chart_id: str = "chart"):
        self.width, self.height = width, height
        self.title, self.description, self.chart_id = title, description, chart_id
        self._items: list[str] = []

    def _add(self, tag: str, attrs: dict, content: str | None = None) -> None:
        if content is None:
            self._items.append(f"<{tag} {_attrs(attrs)}/>")
        else:
            self._items.append(f"<{tag} {_attrs(attrs)}>{content}</{tag}>")

    def rect(self, x: float, y: float, w: float, h: float, *, fill: str, **attrs) -> None:
        self._add("rect", {"x": float(x), "y": float(y), "width": float(max(w, 0.0)), "height": float(max(h, 0.0)),
                           "fill": fill, **attrs})

    def line(self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = "#1d2330", width: float = 1.0,
             dash: str | None = None, **attrs) -> None:
        self._add("line", {"x1": float(x1), "y1": float(y1), "x2": float(x2), "y2": float(y2), "stroke": stroke,
                           "stroke_width": float(width), "stroke_dasharray": dash, **attrs})

    def circle(self, cx: float, cy: float, r: float, *, fill: str, stroke: str | None = None, **attrs) -> None:
        self._add("circle", {"cx": float(cx), "cy": float(cy), "r": float(r), "fill": fill, "stroke": stroke, **attrs})

    def path(self, d: str, *, fill: str = "none", stroke: str = "#1d2330", width: float = 1.0, **attrs) -> None:
        self._add("path", {"d": d, "fill": fill, "stroke": stroke, "stroke_width": float(width), **attrs})

    def text(self, x: float, y: float, content: str, *, anchor: str = "start", size: float = 12,
             fill: str = "#1d2330", weight: str | None = None, baseline: str = "middle", **attrs) -> None:
        self._add("text", {"x": float(x), "y": float(y), "text_anchor": anchor, "font_size": float(size), "fill": fill,
                           "font_weight": weight, "dominant_baseline": baseline, **attrs}, escape(content))

    def whisker(self, low_x: float, high_x: float, y: float, *, cap: float = 5.0, stroke: str = "#1d2330",
                width: float = 1.5, **attrs) -> None:
        """A horizontal interval bar with end caps."""
        self.line(low_x, y, high_x, y, stroke=stroke, width=width, **attrs)
        self.line(low_x, y - cap, low_x, y + cap, stroke=stroke, width=width)
        self.line(high_x, y - cap, high_x, y + cap, stroke=stroke, width=width)

    def vwhisker(self, x: float, low_y: float, high_y: float, *, cap: float = 5.0, stroke: str = "#1d2330",
                 width: float = 1.5) -> None:
        """A vertical interval bar with end caps."""
        self.line(x, low_y, x, high_y, stroke=stroke, width=width)
        self.line(x - cap, low_y, x + cap, low_y, stroke=stroke, width=width)
        self.line(x - cap, high_y, x + cap, high_y, stroke=stroke, width=width)

    def render(self) -> SafeString:
        title_id, desc_id = f"{self.chart_id}-title", f"{self.chart_id}-desc"
        labelled = f'aria-labelledby="{escape(title_id)}"' + (f' aria-describedby="{escape(desc_id)}"'
                                                               if self.description else "")
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" {labelled} '
                f'viewBox="0 0 {_num(self.width)} {_num(self.height)}" width="{_num(self.width)}" '
                f'height="{_num(self.height)}" font-family="{escape(FONT)}">'
                f'<title id="{escape(title_id)}">{escape(self.title)}</title>')
        if self.description:
            head += f'<desc id="{escape(desc_id)}">{escape(self.description)}</desc>'
        return mark_safe(head + "".join(self._items) + "</svg>")  # noqa: S308 - every piece is escaped above


@dataclass(frozen=True)
class Scale:
    """Maps a data interval onto pixels, linearly or on a log10 axis."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def __post_init__(self):
        if self.log and (self.lo <= 0 or self.hi <= 0):
            raise ValueError("a log scale needs a positive domain")

    def _t(self, value: float) -> float:
        if self.log:
            return math.log10(value)
        return value

    def __call__(self, value: float) -> float:
        lo, hi = self._t(self.lo), self._t(self.hi)
        if hi == lo:
            return (self.start + self.end) / 2
        return self.start + (self._t(value) - lo) / (hi - lo) * (self.end - self.start)

    def ticks(self, count: int = 5) -> list[float]:
        if self.log:
            return log_ticks(self.lo, self.hi)
        return nice_ticks(self.lo, self.hi, count)


def nice_step(span: float, count: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``count`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def nice_domain(lo: float, hi: float, count: int = 5) -> tuple[float, float]:
    """[lo, hi] widened outwards to round tick values."""
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    step = nice_step(hi - lo, count)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 times powers of ten inside [lo, hi]; only the powers when there are many decades."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    factors = (1, 2, 5) if len(decades) <= 4 else (1,)
    ticks = [f * 10 ** d for d in decades for f in factors if lo * (1 - 1e-9) <= f * 10 ** d <= hi * (1 + 1e-9)]
    return ticks or [lo, hi]


def format_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 and value == int(value):
        return f"{int(value):,}"
    if value == int(value):
        return str(int(value))
    return f"{value:g}"
