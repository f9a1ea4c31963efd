"""A self-contained HTML report of a plan: inline SVG charts, no network needed to view it.

The plan's charts are drawn by ``svg_chart`` (no matplotlib: ``plan --html`` stays well
under its 1.5 s); ``svg_of`` turns a matplotlib figure into inline SVG for the bench page.
"""

from __future__ import annotations

import html
import io
from typing import Any

from breakeven.catalog import Catalog
from breakeven.planner.types import Plan

__all__ = ["plan_html"]

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}
.verdict{font-size:1.3em;padding:.6em 1em;border-radius:6px;display:inline-block}
.hosted{background:#e0f2fe} .self_host{background:#dcfce7} .hybrid{background:#f3e8ff}
.none{background:#fee2e2} table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left} td.n{text-align:right}
.warn{color:#92400e} code{background:#f4f4f5;padding:.2em .4em;display:block;white-space:pre-wrap}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1em} .src{color:#666;font-size:.8em}
"""


def svg_of(fig: object) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")  # type: ignore[attr-defined]
    text = buf.getvalue()
    return text[text.find("<svg"):]


def _charts(plan: Plan) -> list[tuple[str, str]]:
    """The break-even charts, drawn as SVG by hand (``svg_chart``: no matplotlib, so the
    page costs milliseconds, not the second its import and layout took)."""
    be = plan.breakeven
    if be is None:
        return []
    from breakeven.render.svg_chart import Axis, Mark, Series, line_chart

    current = sum(s.demand.tokens_per_day for s in plan.segments)
    top = max(current, be.tokens_per_day or 0.0, be.replica_tokens_per_day) * 4
    low = max(top / 2000, 1.0)
    volumes = [low * (top / low) ** (i / 199) for i in range(200)]
    pts = [be.curve(v) for v in volumes]
    mtok = [v / 1e6 for v in volumes]
    x = Axis("tokens per day (millions)", log=True)
    here = Mark("this workload", x=current / 1e6, dash="", color="#000")
    marks = [here]
    if be.tokens_per_day:
        marks.insert(0, Mark(f"break-even {be.tokens_per_day / 1e6:,.1f}M/day",
                             x=be.tokens_per_day / 1e6))
    per_month = [v * be.active_days_per_month / 1e6 for v in volumes]
    return [
        ("Monthly cost of each side", line_chart(
            "Monthly cost of each side",
            [Series("hosted API", list(zip(mtok, (p[0] for p in pts), strict=True))),
             Series("self-hosted (GPUs + ops)",
                    list(zip(mtok, (p[1] for p in pts), strict=True)), step=True)],
            x, Axis("USD per month", log=True), marks)),
        ("Utilisation", line_chart(
            "Utilisation",
            [Series("GPU utilisation of the replicas needed",
                    list(zip(mtok, (p[2] * 100 for p in pts), strict=True)))],
            x, Axis("GPU utilisation (%)", lo=0, hi=100),
            [Mark("30%: below, hosted usually wins", y=30, dash="2 2"),
             Mark("80%: above, self-hosting usually pays", y=80, dash="2 2"), here])),
        ("Cost per million tokens", line_chart(
            "Cost per million tokens",
            [Series("hosted API", [(x_, p[0] / m) for x_, p, m in
                                   zip(mtok, pts, per_month, strict=True)]),
             Series("self-hosted", [(x_, p[1] / m) for x_, p, m in
                                    zip(mtok, pts, per_month, strict=True)])],
            x, Axis("USD per million tokens", log=True), [here])),
    ]


def _sources(plan: Plan, catalog: Catalog) -> list[str]:
    """The price rows behind both sides compared: the chosen option's and the best option
    of the other kind, so a reader can check what the verdict was weighed against."""
    e = html.escape
    best = {kind: min((o for o in plan.options if (o.kind == "hosted") == kind),
                      key=lambda o: o.monthly_usd, default=None) for kind in (True, False)}
    shown: list[Any] = []
    for o in (plan.chosen, best[True], best[False]):
        if o is not None and all(o is not seen for seen in shown):
            shown.append(o)
    out: list[str] = []
    for option in shown:
        for p in option.placements:
            if p.side == "hosted" and catalog.has_hosted(p.model):
                h = catalog.hosted_model(p.model)
                out.append(f"<li>{e(h.id)}: {e(h.source)} ({h.as_of})</li>")
        if option.deployment is not None:
            offer = option.deployment.offer
            out.append(f"<li>{e(offer.provider)} {e(offer.gpu)} "
                       f"${offer.usd_per_gpu_hour}/GPU-hour: {e(offer.source)} "
                       f"({offer.as_of})</li>")
    return list(dict.fromkeys(out))


def plan_html(plan: Plan, catalog: Catalog) -> str:
    e = html.escape
    chosen = plan.chosen
    rows = []
    for i, o in enumerate(plan.options[:30], 1):
        dep = o.deployment
        rows.append(
            f"<tr><td>{i}{' *' if o is chosen else ''}</td><td>{e(o.kind.replace('_', '-'))}</td>"
            f"<td>{e(o.label)}</td><td class=n>${o.monthly_usd:,.0f}</td>"
            f"<td class=n>${o.hosted_usd:,.0f}</td><td class=n>${o.self_usd:,.0f}</td>"
            f"<td class=n>{dep.pool.gpu_count if dep else '-'}</td>"
            f"<td class=n>{f'{dep.utilisation:.0%}' if dep else '-'}</td></tr>")
    charts = "".join(f"<figure><figcaption>{e(t)}</figcaption>{svg}</figure>"
                     for t, svg in _charts(plan))
    reasons = "".join(f"<li>{e(r)}</li>" for r in plan.reasons)
    warns = "".join(f"<li class=warn>{e(w)}</li>" for w in plan.warnings)
    launch = ""
    if chosen is not None and chosen.deployment is not None:
        basis = "measured" if chosen.deployment.measured else "estimated"
        launch = f"<h2>Launch (throughput {basis})</h2>" + "".join(
            f"<p>{e(k)}</p><code>{e(v)}</code>" for k, v in chosen.deployment.launch.items()
        ) + f"<p>{e(chosen.deployment.context_note)}</p>"
    be = plan.breakeven
    be_html = f"<p>{e(be.note)}</p>" if be else ""
    if be_html or charts:
        be_html = f"<h2>Break-even</h2>{be_html}"
    sources = _sources(plan, catalog)
    title = f"breakeven plan: {plan.workload.name}"
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<title>{e(title)}</title><style>{CSS}</style></head><body>
<h1>{e(title)}</h1>
<div class="verdict {e(plan.verdict)}">{e(plan.verdict.upper().replace("_", "-"))}
{e(chosen.label) if chosen else ''} {f'${chosen.monthly_usd:,.0f}/month' if chosen else ''}</div>
<h2>Why</h2><ul>{reasons}</ul>
{'<h2>Warnings</h2><ul>' + warns + '</ul>' if warns else ''}
{be_html}<div class=charts>{charts}</div>
<h2>Options</h2><table><tr><th>#</th><th>kind</th><th>option</th><th>$/month</th>
<th>hosted</th><th>self-hosted</th><th>GPUs</th><th>util.</th></tr>{''.join(rows)}</table>
{launch}
<h2>Sources</h2><ul class=src>{''.join(sources)}</ul>
</body></html>"""
