"""A self-contained HTML page for a bench result: latency against throughput, per level."""

from __future__ import annotations

import html
from typing import Any

from breakeven.render.html import CSS, svg_of

__all__ = ["bench_html"]


def _chart(levels: list[dict[str, Any]], metric: str, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for pct, style in (("p50", "o-"), ("p90", "s--"), ("p99", "^:")):
        points = sorted((lv["request_throughput"], lv[metric][pct]) for lv in levels
                        if lv.get(metric) and lv["completed"])
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=pct)
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel(f"{title} (ms)")
    ax.set_title(f"{title} vs throughput")
    ax.grid(alpha=0.3)
    ax.legend()
    svg = svg_of(fig)
    plt.close(fig)
    return svg


def bench_html(result: dict[str, Any]) -> str:
    levels = result["levels"]
    target = result["target"]
    rows = "".join(
        f"<tr><td>{html.escape(lv['level'])}</td><td>{lv['status']}</td>"
        f"<td class=n>{lv['completed']}</td><td class=n>{lv['failed']}</td>"
        f"<td class=n>{lv['request_throughput']:.2f}</td>"
        f"<td class=n>{lv['output_throughput']:.0f}</td>"
        + "".join(f"<td class=n>{(lv[m] or {}).get(p, float('nan')):.1f}</td>"
                  for m in ("ttft_ms", "tpot_ms", "e2e_ms") for p in ("p50", "p99"))
        + "</tr>" for lv in levels)
    charts = "".join(f"<div>{_chart(levels, m, t)}</div>" for m, t in (
        ("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms", "ITL"), ("e2e_ms", "E2E latency")))
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>breakeven bench: {html.escape(target['model'])}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>breakeven bench: {html.escape(target['model'])} at "
        f"{html.escape(target['url'])}</h1>"
        f"<p class=src>{html.escape(result['created'])} &middot; "
        f"{html.escape(' '.join(result['command']))}</p>"
        "<table><tr><th>level</th><th>status</th><th>done</th><th>failed</th><th>req/s</th>"
        "<th>out tok/s</th><th>TTFT p50</th><th>TTFT p99</th><th>TPOT p50</th>"
        "<th>TPOT p99</th><th>E2E p50</th><th>E2E p99</th></tr>"
        f"{rows}</table><div class=charts>{charts}</div></body></html>")
