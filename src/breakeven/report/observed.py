"""The workload that observed traffic implies, for rerunning the planner on reality. Pure.

From the hourly usage rollup: volume per day over the window, mean input and output tokens,
the peak-to-mean of hourly request rates, and one segment per (route, data class, batch)
with its share and lengths; given the observed p99 lengths (``run.tails`` reads them from
the ledger's rows, which the rollup does not keep), the longest request to accept.
Everything the ledger cannot know (quality tier, SLO, team, compliance, candidates,
prices) comes from the plan's workload when one is given; a segment
takes the task, quality, SLO and ``allow_hosted`` of the plan's segment for the same route.
Failed requests (status >= 400) are not demand and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from breakeven.gateway.config import GatewayConfig
from breakeven.planner.workload import DEFAULT_DATA_CLASSES, Segment, Workload

__all__ = ["mismatches", "workload"]


def _served(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["task"] != "identity" and 0 < r["status"] < 400]


def _plan_segment(base: Workload | None, alias: str) -> Segment | None:
    if base is None:
        return None
    return next((s for s in base.segments if (s.route or s.name) == alias), None)


def workload(rows: list[dict[str, Any]], hours: float, cfg: GatewayConfig | None,
             base: Workload | None, name: str,
             tails: tuple[int, int] | None = None) -> dict[str, Any]:
    """A workload file (as a dict) for the traffic in ``rows`` over ``hours``; ``tails``:
    the observed p99 input and output tokens per request (from the ledger's rows), which
    become ``traffic.max_input_tokens``/``max_output_tokens`` (the launch context)."""
    served = _served(rows)
    total = sum(r["requests"] for r in served)
    if total == 0 or hours <= 0:
        raise ValueError("no served traffic in the window: there is no workload to emit")
    groups: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    hourly: dict[int, int] = defaultdict(int)
    for r in served:
        g = groups[(r["alias"], r["data_class"], int(r["batch"]))]
        g[0] += r["requests"]
        g[1] += r["tokens_in"]
        g[2] += r["tokens_out"]
        hourly[r["hour"]] += r["requests"]
    mean_per_hour = total / max(hours, 1.0)
    peak = max(hourly.values()) if hours >= 2 else mean_per_hour  # one hour: no shape yet
    tokens_in = sum(g[1] for g in groups.values())
    tokens_out = sum(g[2] for g in groups.values())
    segments = []
    for (alias, data_class, batch), (n, t_in, t_out) in sorted(
            groups.items(), key=lambda kv: -kv[1][0]):
        seg: dict[str, Any] = {
            "name": "-".join([alias] + ([data_class] if data_class != "general" else [])
                             + (["batch"] if batch else [])),
            "share": n / total, "data_class": data_class or "general",
            "mode": "batch" if batch else "interactive", "route": alias,
            "input_tokens": max(1, round(t_in / n)), "output_tokens": round(t_out / n)}
        route = cfg.route(alias) if cfg else None
        if route is not None and route.task == "embeddings":
            seg["task"] = "embeddings"
        planned = _plan_segment(base, alias)
        if planned is not None:
            seg.update({k: v for k, v in planned.model_dump(
                mode="json", include={"task", "quality", "slo", "allow_hosted"},
                exclude_none=True).items() if k not in seg})
        segments.append(seg)
    biggest = max(segments, key=lambda s: s["share"])
    biggest["share"] += 1.0 - sum(s["share"] for s in segments)
    for s in segments:
        s["share"] = round(s["share"], 6)
    out = base.model_dump(mode="json", exclude_none=True, exclude={"segments", "traffic"}
                          ) if base else {}
    out.update({
        "name": name,
        "description": f"observed through the gateway over {hours:.1f} hours",
        "traffic": {"requests_per_day": round(total / hours * 24, 3),
                    "input_tokens": max(1, round(tokens_in / total)),
                    "output_tokens": round(tokens_out / total),
                    "peak_to_mean": round(max(1.0, peak / mean_per_hour), 3),
                    "hours_per_day": 24, "days_per_week": 7,
                    **_maxima(tails, tokens_in / total, tokens_out / total)},
        "segments": segments,
    })
    out["data_classes"] = _declared_classes(base, cfg, [s["data_class"] for s in segments])
    out.pop("as_of", None)
    return out


def _maxima(tails: tuple[int, int] | None, mean_in: float, mean_out: float
            ) -> dict[str, int]:
    """The observed p99 lengths, never below the means the file states."""
    if tails is None:
        return {}
    return {"max_input_tokens": max(1, tails[0], round(mean_in)),
            "max_output_tokens": max(tails[1], round(mean_out))}


def _declared_classes(base: Workload | None, cfg: GatewayConfig | None,
                      seen: list[str]) -> list[dict[str, Any]]:
    """The plan's data classes, plus any the gateway recorded that the plan lacks (sensitive
    where the gateway keeps them off hosted backends), so the emitted file loads."""
    declared = [c.model_dump(mode="json") for c in
                (base.data_classes if base else DEFAULT_DATA_CLASSES)]
    names = {c["name"].lower() for c in declared}
    for name in dict.fromkeys(seen):
        if name.lower() in names:
            continue
        rule = cfg.rule(name) if cfg else None
        declared.append({"name": name, "sensitive": rule is None or "hosted" not in rule.hosting,
                         "description": "recorded by the gateway"})
        names.add(name.lower())
    return declared


def mismatches(base: Workload, rows: list[dict[str, Any]],
               cfg: GatewayConfig | None) -> list[str]:
    """Where the plan's segments and the gateway's routes or traffic disagree."""
    seen = {r["alias"] for r in _served(rows)}
    routes = {r.alias for r in cfg.routes} if cfg else seen
    planned = {s.route or s.name for s in base.segments}
    out = [f"plan segment route '{a}' is not a gateway route" for a in sorted(planned - routes)
           if base.segments]
    out += [f"route '{a}' carried traffic the plan has no segment for"
            for a in sorted(seen - planned) if base.segments]
    return out
