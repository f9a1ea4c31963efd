"""The plan page's hand-drawn SVG charts: labelled axes, a legend naming every series and
reference line, lines broken at points that cannot be drawn, text escaped."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from breakeven.render.svg_chart import Axis, Mark, Series, line_chart

NS = "{http://www.w3.org/2000/svg}"


def _svg(**kw) -> ET.Element:
    series = kw.get("series", [Series("a <b>", [(1, 1), (10, 100), (100, 1000)]),
                               Series("steps", [(1, 5), (10, 50), (100, 50)], step=True)])
    return ET.fromstring(line_chart("t & t", series, Axis("x", log=True),
                                    Axis("y", log=True), kw.get("marks", [Mark("m", x=3)])))


def test_a_chart_has_its_labels_and_a_legend_for_every_line():
    root = _svg()
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert {"x", "y", "a <b>", "steps", "m"} <= set(texts)  # parsed: the text was escaped
    assert root.find(f"{NS}title").text == "t & t"
    assert "1" in texts and "1k" in texts  # log decades on the y axis
    lines = root.findall(f"{NS}polyline")
    assert len(lines) == 2
    # the step function holds each value until the next x: 3 points become 5
    assert len(lines[1].get("points").split()) == 5


def test_points_that_cannot_be_drawn_break_the_line():
    root = _svg(series=[Series("s", [(1, 1), (2, 2), (3, math.inf), (4, 4), (5, 5),
                                     (6, 0.0), (7, 7)])], marks=[])
    runs = [p.get("points").split() for p in root.findall(f"{NS}polyline")]
    assert [len(r) for r in runs] == [2, 2]  # inf and 0 (on a log axis) split it; (7, 7) alone


def test_a_linear_axis_with_fixed_limits_clamps_and_ticks():
    root = ET.fromstring(line_chart("u", [Series("u", [(1, -5), (10, 150)])],
                                    Axis("x", log=True), Axis("%", lo=0, hi=100),
                                    [Mark("80%", y=80)]))
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert {"0", "20", "40", "60", "80", "100"} <= set(texts)
    ys = [float(p.split(",")[1]) for p in root.find(f"{NS}polyline").get("points").split()]
    assert ys == [294.0, 12.0]  # clamped to the plot's bottom and top edges
