"""Calibration: a bench result replaces the roofline estimate for the deployment it measured.

A bench run measures one (model, GPU count and type, quantisation, engine) at several loads.
For a workload's SLO the measured capacity is the highest request rate among the levels
whose p90 TTFT and p90 TPOT meet it (the estimate is a steady-state mean, so the measured
side is held to the tail). The ratio of that capacity to the sizing model's estimate on the
*bench's* token lengths scales the estimate on the workload's lengths, so a benchmark with
other lengths still transfers. The figure is then marked measured. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from breakeven.catalog import Catalog
from breakeven.errors import InputError
from breakeven.planner.sizing import Deployment, OperatingPoint, Sizing, SloTarget, evaluate

__all__ = ["Calibration", "Measured", "calibrate", "from_result"]


@dataclass(frozen=True)
class Measured:
    """One benchmarked level, in engine seconds (a simulator's time scale undone)."""

    rps: float
    ttft_p90_ms: float
    tpot_p90_ms: float


@dataclass(frozen=True)
class Calibration:
    model: str
    gpu: str
    gpus: int
    quant: str
    engine: str
    input_len: int
    output_len: int
    levels: tuple[Measured, ...]
    source: str

    def resolved(self, cat: Catalog) -> Calibration:
        """The same with catalog ids (the result may name a Hugging Face id or an alias)."""
        return replace(self, model=cat.model(self.model).id, gpu=cat.gpu(self.gpu).id,
                       engine=cat.engine(self.engine).id)

    def matches(self, dep: Deployment) -> bool:
        return (dep.model.id, dep.gpu.id, dep.gpus, dep.quant, dep.engine.id) == (
            self.model, self.gpu, self.gpus, self.quant, self.engine)

    def capacity(self, slo: SloTarget) -> float:
        """Requests/s of the best level within ``slo`` (0: no level met it)."""
        return max((lv.rps for lv in self.levels
                    if (slo.ttft_ms is None or lv.ttft_p90_ms <= slo.ttft_ms)
                    and (slo.tpot_ms is None or lv.tpot_p90_ms <= slo.tpot_ms)), default=0.0)

    def factor(self, dep: Deployment, slo: SloTarget) -> float:
        """Measured over estimated capacity on the bench's own lengths."""
        est = evaluate(dep, self.input_len, self.output_len, None, slo)
        point = est.slo_point if slo.ttft_ms or slo.tpot_ms else est.point
        if point is None or point.requests_per_s <= 0:
            return 0.0
        return self.capacity(slo) / point.requests_per_s


def _scaled(point: OperatingPoint | None, factor: float) -> OperatingPoint | None:
    if point is None:
        return None
    return replace(point, requests_per_s=point.requests_per_s * factor,
                   output_tok_s=point.output_tok_s * factor,
                   total_tok_s=point.total_tok_s * factor)


def calibrate(s: Sizing, cal: Calibration) -> Sizing:
    """``s`` with its SLO capacity replaced by the measured one (0 when none met the SLO)."""
    factor = cal.factor(s.deployment, s.slo)
    note = f"measured by {cal.source}: {factor:.2f}x the estimate"
    if factor <= 0:
        return replace(s, slo_concurrency=0, slo_point=None, estimated=False,
                       calibration=f"measured by {cal.source}: no level met the SLO")
    return replace(s, point=_scaled(s.point, factor), slo_point=_scaled(s.slo_point, factor),
                   estimated=False, calibration=note)


def _number(level: dict[str, Any], key: str, pct: str) -> float | None:
    stats = level.get(key)
    value = stats.get(pct) if isinstance(stats, dict) else None
    return float(value) if isinstance(value, int | float) else None


def from_result(data: dict[str, Any], source: str) -> Calibration:
    """Read a ``breakeven.bench/v1`` document (already parsed)."""
    dep = data.get("deployment")
    if not isinstance(dep, dict) or not {"model", "gpu"} <= set(dep):
        raise InputError("the result does not say which deployment it measured; rerun "
                         "bench with --deployment model=ID,gpu=ID,gpus=N,quant=Q,engine=E",
                         where=source)
    card = (data.get("server") or {}).get("breakeven") or {}
    scale = float(card.get("time_scale", 1.0)) if dep.get("simulated") else 1.0
    levels, weights, inp, out = [], 0.0, 0.0, 0.0
    for lv in data.get("levels", []):
        if lv.get("status") == "failed" or not lv.get("completed"):
            continue
        ttft, tpot = _number(lv, "ttft_ms", "p90"), _number(lv, "tpot_ms", "p90")
        if ttft is None:
            continue
        levels.append(Measured(lv["request_throughput"] * scale, ttft / scale,
                               (tpot or 0.0) / scale))
        n = lv["completed"]
        weights += n
        inp += lv.get("mean_input_tokens", 0) * n
        out += lv.get("mean_output_tokens", 0) * n
    if not levels or weights == 0:
        raise InputError("the result has no successful level to calibrate from", where=source)
    return Calibration(str(dep["model"]), str(dep["gpu"]), int(dep.get("gpus", 1)),
                       str(dep.get("quant", "bf16")), str(dep.get("engine", "vllm")),
                       max(1, round(inp / weights)), max(1, round(out / weights)),
                       tuple(levels), f"{source} ({data.get('created', 'undated')})")
