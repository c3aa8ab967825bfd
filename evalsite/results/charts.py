"""The results page's charts, drawn from the same JSON-ready numbers the API returns (StudyResults.to_dict).

Every chart repeats numbers that are also in a table beside it; the chart shows the shape, the table the
values. Undefined numbers (None) are left out of a chart rather than drawn at zero.
"""
from __future__ import annotations

import math

from django.utils.safestring import SafeString

from evalsite.results.svg import Canvas, Scale, format_tick, nice_domain

WIN, TIE, LOSS = "#3f9d6e", "#c5ccd6", "#d9675f"
INK, MUTED, GRID = "#1d2330", "#5f6b7a", "#e3e7ee"
ACCENT, RAW = "#3451b2", "#8a94a6"


def _ok(*values) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _pct_tick(value: float) -> str:
    """A tick on a percent axis, with as many decimals as the tick needs (45%, 47.5%)."""
    return format_tick(round(100 * value, 6)) + "%"


def _interval(prop: dict | None) -> tuple[float | None, float | None]:
    interval = (prop or {}).get("bootstrap") or (prop or {}).get("wilson") or {}
    return interval.get("low"), interval.get("high")


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def head_to_head_chart(rows: list[dict], *, reference: str) -> SafeString:
    """Stacked win / tie / loss bars, one per candidate, with the cluster-bootstrap interval of the win rate
    (at the win/tie boundary) and of the win-or-tie rate (at the tie/loss boundary), and the sign test's p."""
    label_w, bar_w, right_w = 170.0, 460.0, 110.0
    top, row_h, bottom = 38.0, 40.0, 34.0
    width, height = label_w + bar_w + right_w + 10, top + row_h * len(rows) + bottom
    c = Canvas(width, height, chart_id="h2h-chart",
               title=f"Win, tie and loss rates of each candidate against {reference}",
               description="Stacked bars: green wins, grey ties, red losses; black bars are 95% intervals of the "
                           "win rate and of the win-or-tie rate. The p-value is the sign test on decisive judgments.")
    x = Scale(0.0, 1.0, label_w, label_w + bar_w)
    for i, (name, colour) in enumerate((("candidate wins", WIN), ("tie", TIE), (f"{_short(reference)} wins", LOSS))):
        lx = label_w + i * 150
        c.rect(lx, 8, 12, 12, fill=colour)
        c.text(lx + 17, 14, name, size=12, fill=MUTED)
    c.text(label_w + bar_w + 12, 14, "sign test p", size=12, fill=MUTED)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        c.line(x(tick), top - 4, x(tick), top + row_h * len(rows), stroke=GRID if tick != 0.5 else MUTED,
               dash="3 3" if tick == 0.5 else None)
        c.text(x(tick), height - bottom + 16, _pct(tick), anchor="middle", size=11, fill=MUTED)
    for i, row in enumerate(rows):
        y = top + i * row_h
        mid = y + row_h / 2 - 3
        c.text(label_w - 10, mid, _short(row["candidate_name"]), anchor="end", size=13, weight="600")
        c.text(label_w - 10, mid + 14, f"n = {row['n']:,}", anchor="end", size=10.5, fill=MUTED)
        win, tie, loss = row["win"]["rate"], row["tie"]["rate"], row["loss"]["rate"]
        if not _ok(win, tie, loss):
            c.text(x(0.5), mid, "no judgments", anchor="middle", size=12, fill=MUTED)
            continue
        bar_y, bar_h = y + 6, row_h - 16
        start = 0.0
        for rate, colour in ((win, WIN), (tie, TIE), (loss, LOSS)):
            c.rect(x(start), bar_y, x(start + rate) - x(start), bar_h, fill=colour)
            if rate >= 0.08:
                c.text((x(start) + x(start + rate)) / 2, bar_y + bar_h / 2, _pct(rate), anchor="middle", size=11,
                       fill="#ffffff" if colour != TIE else INK, weight="600")
            start += rate
        for prop in (row["win"], row["win_or_tie"]):
            low, high = _interval(prop)
            if _ok(low, high):
                c.whisker(x(low), x(high), bar_y + bar_h + 3, cap=3.5, width=1.4)
        p = row["sign_test"]["p_value"]
        c.text(label_w + bar_w + 12, mid + 2, format_p(p), size=12, weight="600" if _ok(p) and p < 0.05 else None)
    return c.render()


def format_p(p: float | None) -> str:
    if not _ok(p):
        return "—"
    if p < 0.001:
        return "< 0.001"
    if p < 0.01:
        return f"{p:.3f}"
    return f"{p:.2f}"


def dot_chart(rows: list[dict], *, chart_id: str, title: str, description: str, axis_label: str,
              reference_value: float | None = None, reference_label: str = "", percent: bool = False,
              domain: tuple[float, float] | None = None, legend: list[tuple[str, str]] | None = None) -> SafeString:
    """Points with horizontal interval bars, one line per row; a row may carry several series
    (``points``: list of {value, low, high, colour}), offset vertically so their bars do not overlap."""
    label_w, plot_w, pad_r = 170.0, 470.0, 30.0
    top = 34.0 if legend else 14.0
    per_series = 14.0
    n_series = max((len(r["points"]) for r in rows), default=1)
    row_h = max(30.0, 12.0 + per_series * n_series)
    bottom = 44.0
    width, height = label_w + plot_w + pad_r, top + row_h * len(rows) + bottom
    values = [v for r in rows for p in r["points"] for v in (p["value"], p.get("low"), p.get("high")) if _ok(v)]
    if reference_value is not None:
        values.append(reference_value)
    if domain is None:
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        domain = nice_domain(lo - pad, hi + pad)
        if percent:  # a rate's axis never leaves [0, 1]
            domain = (max(domain[0], 0.0), min(domain[1], 1.0))
    x = Scale(domain[0], domain[1], label_w, label_w + plot_w)
    c = Canvas(width, height, chart_id=chart_id, title=title, description=description)
    if legend:
        lx = label_w
        for name, colour in legend:
            c.circle(lx + 6, 14, 5, fill=colour)
            c.text(lx + 16, 14, name, size=12, fill=MUTED)
            lx += 16 + 7.2 * len(name) + 24
    plot_bottom = top + row_h * len(rows)
    for tick in x.ticks(6):
        c.line(x(tick), top - 4, x(tick), plot_bottom, stroke=GRID)
        c.text(x(tick), plot_bottom + 14, _pct_tick(tick) if percent else format_tick(tick), anchor="middle",
               size=11, fill=MUTED)
    c.text(label_w + plot_w / 2, plot_bottom + 34, axis_label, anchor="middle", size=12, fill=MUTED)
    if reference_value is not None and domain[0] <= reference_value <= domain[1]:
        c.line(x(reference_value), top - 4, x(reference_value), plot_bottom, stroke=MUTED, dash="4 3")
        if reference_label:
            c.text(x(reference_value) + 4, top - 8, reference_label, size=10.5, fill=MUTED)
    for i, row in enumerate(rows):
        y = top + i * row_h
        c.text(label_w - 10, y + row_h / 2, _short(row["label"]), anchor="end", size=13, weight="600")
        count = len(row["points"])
        for k, point in enumerate(row["points"]):
            py = y + row_h / 2 + (k - (count - 1) / 2) * per_series
            low, high, value = point.get("low"), point.get("high"), point["value"]
            if _ok(low, high):
                c.whisker(x(max(low, domain[0])), x(min(high, domain[1])), py, cap=4, stroke=point["colour"])
            if _ok(value):
                c.circle(x(value), py, 4.5, fill=point["colour"], stroke="#ffffff", stroke_width=1.0)
    return c.render()


def ratings_chart(ratings: list[dict], *, reference: str | None) -> SafeString:
    rows = [{"label": r["system_name"], "points": [{"value": r["elo"], "low": r["elo_interval"]["low"],
                                                    "high": r["elo_interval"]["high"], "colour": ACCENT}]}
            for r in sorted(ratings, key=lambda r: -(r["elo"] if _ok(r["elo"]) else -math.inf))]
    return dot_chart(
        rows, chart_id="bt-chart", title="Bradley-Terry ratings with 95% intervals",
        description="One point per system on the Elo-like scale; bars are cluster-bootstrap intervals.",
        axis_label="Rating (Elo-like scale: +400 = 10 times the odds of being preferred)",
        reference_value=1000.0, reference_label=f"{reference} = 1000" if reference else "mean = 1000",
    )


def style_chart(candidates: list[dict]) -> SafeString:
    rows = [{"label": c["candidate_name"], "points": [
        {"value": c["raw"], "low": c["raw_interval"]["low"], "high": c["raw_interval"]["high"], "colour": RAW},
        {"value": c["adjusted"], "low": c["adjusted_interval"]["low"], "high": c["adjusted_interval"]["high"],
         "colour": ACCENT},
    ]} for c in candidates]
    return dot_chart(
        rows, chart_id="style-chart", title="Raw and style-adjusted preference for each candidate",
        description="Grey: the raw preference rate (ties count half). Blue: the rate predicted when both responses "
                    "have the same length and Markdown. Bars are 95% intervals.",
        axis_label="Preference for the candidate over the reference (ties count half)", percent=True,
        reference_value=0.5, reference_label="50%: as good as the reference",
        legend=[("raw", RAW), ("style-adjusted", ACCENT)],
    )


def scaling_chart(series: dict, *, reference: str, index: int = 0) -> SafeString:
    """Win-or-tie rate (y) of each candidate against a numeric metadata value (x), with interval bars."""
    left, plot_w, right = 64.0, 520.0, 150.0
    top, plot_h, bottom = 16.0, 260.0, 50.0
    width, height = left + plot_w + right, top + plot_h + bottom
    points = [p for p in series["points"] if _ok(p["value"])]
    values = [p["value"] for p in points]
    if series["log_scale"]:
        lo, hi = min(values) / 1.6, max(values) * 1.6
    else:
        span = (max(values) - min(values)) or abs(max(values)) or 1.0
        lo, hi = nice_domain(min(values) - 0.08 * span, max(values) + 0.08 * span)
    x = Scale(lo, hi, left, left + plot_w, log=series["log_scale"])
    y = Scale(0.0, 1.0, top + plot_h, top)
    axis = series["label"] + (" (log scale)" if series["log_scale"] else "")
    c = Canvas(width, height, chart_id=f"scaling-chart-{index}",
               title=f"Win-or-tie rate against {reference} by {series['label']}",
               description="One point per candidate; vertical bars are 95% cluster-bootstrap intervals.")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        c.line(left, y(tick), left + plot_w, y(tick), stroke=GRID)
        c.text(left - 8, y(tick), _pct(tick), anchor="end", size=11, fill=MUTED)
    for tick in x.ticks(6):
        c.line(x(tick), top, x(tick), top + plot_h, stroke=GRID)
        c.text(x(tick), top + plot_h + 14, format_tick(tick), anchor="middle", size=11, fill=MUTED)
    c.text(left + plot_w / 2, top + plot_h + 36, axis, anchor="middle", size=12, fill=MUTED)
    c.text(14, top + plot_h / 2, "win or tie", anchor="middle", size=12, fill=MUTED,
           transform=f"rotate(-90 14 {top + plot_h / 2:.1f})")
    placed: list[tuple[float, float, float]] = []  # labels drawn so far: (left, right, y)
    for p in sorted(points, key=lambda p: p["value"]):
        px = x(p["value"])
        if _ok(p["low"], p["high"]):
            c.vwhisker(px, y(p["low"]), y(p["high"]), cap=4, stroke=ACCENT)
        if _ok(p["win_or_tie"]):
            py = y(p["win_or_tie"])
            c.circle(px, py, 5, fill=ACCENT, stroke="#ffffff", stroke_width=1.0)
            name = _short(p["name"], 20)
            left, right = px + 9, px + 9 + 6.6 * len(name)  # about 6.6 user units per character at this size
            label_y = py
            # Step a label down while it would overlap one already drawn (close candidates, e.g. 7B and 13B).
            while any(left < r and right > lo and abs(label_y - ly) < 13 for lo, r, ly in placed):
                label_y += 13
            placed.append((left, right, label_y))
            c.text(left, label_y, name, size=11.5, fill=INK)
    return c.render()


#: The measures of the crowd-vs-experts chart, one line each per candidate: (key, label, colour).
CROWD_EXPERT_MEASURES = (
    ("crowd_win_or_tie", "Crowd: win or tie", ACCENT),
    ("expert_win_or_tie", "Experts: not factually worse", WIN),
    ("candidate_major", "Major error: candidate", LOSS),
    ("reference_major", "Major error: reference", RAW),
    ("won_on_style", "Crowd wins “won on style”", "#b7791f"),
)


def crowd_expert_chart(rows: list[dict], *, reference: str) -> SafeString:
    """Per candidate, a block of five labelled lines on one 0-100% axis: the crowd's win-or-tie rate, the
    experts' (not factually worse), the major-error shares of the candidate's and the reference's responses,
    and the share of the candidate's crowd wins that went to a response with a major error. Points with
    their interval (the cluster bootstrap where computed, else Wilson); a measure with no data is left out."""
    label_w, plot_w, pad_r = 210.0, 440.0, 30.0
    top, line_h, head_h, gap, bottom = 10.0, 17.0, 22.0, 10.0, 40.0
    block_h = head_h + line_h * len(CROWD_EXPERT_MEASURES) + gap
    width, height = label_w + plot_w + pad_r, top + block_h * len(rows) + bottom
    x = Scale(0.0, 1.0, label_w, label_w + plot_w)
    c = Canvas(width, height, chart_id="crowd-expert-chart",
               title=f"Crowd preference beside the experts' factual verdict, each candidate against {reference}",
               description="For each candidate: the crowd's win-or-tie rate, the share of comparisons where the "
                           "experts found the candidate not factually worse, the shares of candidate and reference "
                           "responses with a major error, and the share of the candidate's crowd wins that went to "
                           "a response with a major error. Bars are 95% intervals.")
    plot_bottom = top + block_h * len(rows)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        c.line(x(tick), top, x(tick), plot_bottom - gap, stroke=GRID if tick != 0.5 else MUTED,
               dash="3 3" if tick == 0.5 else None)
        c.text(x(tick), plot_bottom + 8, _pct(tick), anchor="middle", size=11, fill=MUTED)
    c.text(label_w + plot_w / 2, plot_bottom + 28, "Share (95% interval)", anchor="middle", size=12, fill=MUTED)
    for i, row in enumerate(rows):
        y = top + i * block_h
        c.text(10, y + head_h / 2, f"{_short(row['candidate_name'], 40)}  ·  {row['n_comparisons']:,} comparisons, "
                                   f"{row['n_judgments']:,} judgments", size=12.5, weight="600")
        for k, (key, label, colour) in enumerate(CROWD_EXPERT_MEASURES):
            py = y + head_h + line_h * (k + 0.5)
            c.text(label_w - 10, py, label, anchor="end", size=11.5, fill=MUTED)
            prop = row[key]
            low, high = _interval(prop)
            if _ok(low, high):
                c.whisker(x(low), x(high), py, cap=3.5, stroke=colour, width=1.4)
            if _ok(prop["rate"]):
                c.circle(x(prop["rate"]), py, 4.5, fill=colour, stroke="#ffffff", stroke_width=1.0)
            else:
                c.text(x(0.0) + 4, py, "no data", size=10.5, fill=MUTED)
    return c.render()
