"""The SVG helpers: scales, ticks, escaping; and the charts drawn from results."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from evalsite.results import charts
from evalsite.results.svg import Canvas, Scale, log_ticks, nice_domain, nice_ticks


def test_linear_scale_maps_the_domain_onto_pixels():
    x = Scale(0.0, 1.0, 100.0, 500.0)
    assert (x(0.0), x(0.5), x(1.0)) == (100.0, 300.0, 500.0)
    y = Scale(0.0, 1.0, 300.0, 20.0)  # inverted, as for a y axis
    assert y(0.25) == pytest.approx(230.0)


def test_log_scale_puts_decades_at_equal_distances_and_refuses_zero():
    x = Scale(1.0, 100.0, 0.0, 200.0, log=True)
    assert (x(1.0), x(10.0), x(100.0)) == pytest.approx((0.0, 100.0, 200.0))
    with pytest.raises(ValueError):
        Scale(0.0, 10.0, 0.0, 1.0, log=True)


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (843.0, 1142.0, [900.0, 1000.0, 1100.0]),
    (-3.2, 3.9, [-2.0, 0.0, 2.0]),
])
def test_nice_ticks_are_round_numbers_inside_the_range(lo, hi, expected):
    ticks = nice_ticks(lo, hi, 5)
    assert all(lo <= t <= hi for t in ticks)
    assert set(expected) <= set(ticks)


def test_nice_domain_widens_to_round_values_and_log_ticks_use_1_2_5():
    assert nice_domain(843.0, 1142.0) == (800.0, 1200.0)
    assert log_ticks(5.0, 80.0) == [5, 10, 20, 50]


def test_canvas_escapes_text_and_attributes_and_is_well_formed_xml():
    c = Canvas(200, 100, title='a <b> & "c"', description="d", chart_id="x")
    c.text(10, 10, '<script>alert(1)</script>')
    c.rect(0, 0, 10, 10, fill='red" onload="alert(1)')
    svg = str(c.render())
    assert "<script>" not in svg and 'onload="' not in svg
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "x-title"


def test_charts_skip_undefined_numbers_instead_of_drawing_zero():
    interval = {"low": None, "high": None, "method": "wilson"}
    prop = {"rate": None, "wilson": interval, "bootstrap": interval}
    row = {"candidate_name": "c", "n": 0, "win": prop, "tie": prop, "loss": prop, "win_or_tie": prop,
           "sign_test": {"p_value": 1.0}}
    svg = str(charts.head_to_head_chart([row], reference="r"))
    ET.fromstring(svg)
    assert "no judgments" in svg


@pytest.mark.parametrize(("p", "text"), [(0.0004, "< 0.001"), (0.0042, "0.004"), (0.042, "0.04"), (1.0, "1.00"),
                                         (None, "—")])
def test_p_values_are_shown_with_sensible_precision(p, text):
    assert charts.format_p(p) == text


def test_scaling_labels_of_close_candidates_do_not_overlap():
    points = [{"name": "koala-7b", "value": 7.0, "win_or_tie": 0.6, "low": 0.55, "high": 0.65, "n": 10},
              {"name": "koala-8b", "value": 8.0, "win_or_tie": 0.6, "low": 0.55, "high": 0.65, "n": 10},
              {"name": "koala-200b", "value": 200.0, "win_or_tie": 0.7, "low": 0.65, "high": 0.75, "n": 10}]
    svg = str(charts.scaling_chart({"key": "params_b", "label": "params", "log_scale": False, "points": points},
                                   reference="ref"))
    root = ET.fromstring(svg)
    labels = {t.text: float(t.get("y")) for t in root.iter("{http://www.w3.org/2000/svg}text")
              if t.text and t.text.startswith("koala")}
    assert abs(labels["koala-7b"] - labels["koala-8b"]) >= 13
