"""Line charts as inline SVG, written by hand: the plan page's charts without matplotlib.

``plan --html`` spent most of a second importing matplotlib and laying out three figures;
these charts are a few hundred SVG elements, drawn in milliseconds. Every chart has its
axes labelled, a legend naming each series and each reference line, and the text escaped.

Invariants: a point that is not finite (or not positive on a log axis) breaks its line
rather than being drawn; values outside the axis range are clamped to its edge; the
output is one ``<svg>`` element with a ``viewBox`` (it scales with the page).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Axis", "Mark", "Series", "line_chart"]

W, H = 540.0, 340.0
LEFT, RIGHT, TOP, BOTTOM = 64.0, 14.0, 12.0, 46.0  # the legend goes below H
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    step: bool = False  # a step function: each value holds until the next x


@dataclass(frozen=True)
class Mark:
    """A labelled reference line: vertical at ``x`` or horizontal at ``y``."""

    label: str
    x: float | None = None
    y: float | None = None
    dash: str = "4 3"
    color: str = "#555"


@dataclass(frozen=True)
class Axis:
    label: str
    log: bool = False
    lo: float | None = None  # None: from the data
    hi: float | None = None


def _ok(v: float, log: bool) -> bool:
    return math.isfinite(v) and (v > 0 or not log)


def _range(values: list[float], axis: Axis) -> tuple[float, float]:
    lo = axis.lo if axis.lo is not None else min(values, default=1.0)
    hi = axis.hi if axis.hi is not None else max(values, default=10.0)
    if axis.log:
        lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
    if hi <= lo:
        hi = lo * 10 if axis.log else lo + 1
    return lo, hi


def _scale(lo: float, hi: float, log: bool, a: float, b: float) -> Callable[[float], float]:
    f = math.log10 if log else (lambda v: v)
    flo, fhi = f(lo), f(hi)

    def to(v: float) -> float:
        v = min(max(v, lo), hi)
        return a + (f(v) - flo) / (fhi - flo) * (b - a)

    return to


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        k0, k1 = round(math.log10(lo)), round(math.log10(hi))
        every = max(1, math.ceil((k1 - k0) / 8))
        return [10.0 ** k for k in range(k0, k1 + 1, every)]
    step = 10 ** math.floor(math.log10((hi - lo) / 4))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if (hi - lo) / (step * m) <= 6)
    return [lo + i * step for i in range(int((hi - lo) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def _path(s: Series, sx: Callable[[float], float], sy: Callable[[float], float],
          xlog: bool, ylog: bool) -> list[str]:
    """The series' polylines' point lists (a break at every point that cannot be drawn)."""
    runs: list[list[str]] = [[]]
    pts = list(s.points)
    for i, (x, y) in enumerate(pts):
        if not (_ok(x, xlog) and _ok(y, ylog)):
            runs.append([])
            continue
        runs[-1].append(f"{sx(x):.1f},{sy(y):.1f}")
        if s.step and i + 1 < len(pts) and _ok(pts[i + 1][0], xlog):
            runs[-1].append(f"{sx(pts[i + 1][0]):.1f},{sy(y):.1f}")
    return [" ".join(r) for r in runs if len(r) > 1]


def line_chart(title: str, series: Sequence[Series], x: Axis, y: Axis,
               marks: Sequence[Mark] = ()) -> str:
    """One chart: the series as lines, the marks as labelled dashed lines, a legend."""
    xs = [p[0] for s in series for p in s.points if _ok(p[0], x.log)]
    ys = [p[1] for s in series for p in s.points if _ok(p[1], y.log)]
    xs += [m.x for m in marks if m.x is not None and _ok(m.x, x.log)]
    (x0, x1), (y0, y1) = _range(xs, x), _range(ys, y)
    sx = _scale(x0, x1, x.log, LEFT, W - RIGHT)
    sy = _scale(y0, y1, y.log, H - BOTTOM, TOP)
    e = escape
    rows = len(series) + len(marks)  # the legend, under the chart
    height = H + 14 * rows + 8
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W:g} {height:g}" '
           f'width="{W:g}" height="{height:g}" style="max-width:100%;height:auto" '
           f'role="img" aria-label="{e(title)}" '
           'font-family="system-ui,sans-serif" font-size="11">',
           f"<title>{e(title)}</title>",
           f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
           f'height="{H - TOP - BOTTOM}" fill="none" stroke="#999"/>']
    for t in _ticks(x0, x1, x.log):
        out.append(f'<line x1="{sx(t):.1f}" y1="{H - BOTTOM}" x2="{sx(t):.1f}" '
                   f'y2="{H - BOTTOM + 4}" stroke="#999"/><text x="{sx(t):.1f}" '
                   f'y="{H - BOTTOM + 16}" text-anchor="middle">{_fmt(t)}</text>')
    for t in _ticks(y0, y1, y.log):
        out.append(f'<line x1="{LEFT - 4}" y1="{sy(t):.1f}" x2="{W - RIGHT}" '
                   f'y2="{sy(t):.1f}" stroke="#eee"/><text x="{LEFT - 6}" '
                   f'y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" '
               f'text-anchor="middle">{e(x.label)}</text>')
    out.append(f'<text transform="translate(14 {(TOP + H - BOTTOM) / 2}) rotate(-90)" '
               f'text-anchor="middle">{e(y.label)}</text>')
    legend: list[tuple[str, str, str]] = []
    for i, s in enumerate(series):
        color = COLORS[i % len(COLORS)]
        for run in _path(s, sx, sy, x.log, y.log):
            out.append(f'<polyline points="{run}" fill="none" stroke="{color}" '
                       'stroke-width="1.6"/>')
        legend.append((s.name, color, ""))
    for m in marks:
        if m.x is not None:
            out.append(f'<line x1="{sx(m.x):.1f}" y1="{TOP}" x2="{sx(m.x):.1f}" '
                       f'y2="{H - BOTTOM}" stroke="{m.color}" stroke-dasharray="{m.dash}"/>')
        elif m.y is not None:
            out.append(f'<line x1="{LEFT}" y1="{sy(m.y):.1f}" x2="{W - RIGHT}" '
                       f'y2="{sy(m.y):.1f}" stroke="{m.color}" stroke-dasharray="{m.dash}"/>')
        legend.append((m.label, m.color, m.dash))
    for i, (name, color, dash) in enumerate(legend):
        ly = H + 10 + 14 * i
        out.append(f'<line x1="{LEFT}" y1="{ly - 4}" x2="{LEFT + 18}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="1.6"'
                   + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
                   f'<text x="{LEFT + 24}" y="{ly}">{e(name)}</text>')
    out.append("</svg>")
    return "".join(out)
