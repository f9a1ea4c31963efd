"""Calibration: a bench result replaces the roofline estimate for the deployment it measured.

A bench run measures one (model, GPU count and type, quantisation, engine, MoE layout) at
several loads.
Each trusted level (not failed, at least ``MIN_COMPLETED`` requests; a sim's levels that
fell behind their schedule only when no other is left) is a point: its
concurrency (a closed loop's, or Little's law for an open one), request rate and median
TPOT, in engine seconds (a simulator's time scale undone). The engine model is fitted to
those points with one speed factor ``k`` (the engine runs the model's steps ``k`` times
faster: rates times ``k``, latencies over ``k``), and the workload's capacity at its SLO
comes from the fitted model on the workload's own lengths, between and beyond the measured
levels, never below the best measured level that met the SLO at p90. The note says what was
measured, the fit, the ratio to the estimate and when the figure is only a lower bound.
Pure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from breakeven.catalog import Catalog
from breakeven.errors import InputError
from breakeven.planner.sizing import (
    Deployment,
    OperatingPoint,
    Sizing,
    SloTarget,
    operating_point,
    slo_concurrency,
)

__all__ = ["MIN_COMPLETED", "Calibration", "Measured", "calibrate", "from_result"]

MIN_COMPLETED = 50  # as bench marks ``too_few``
_HEADROOM = 0.8  # a level within 80% of every SLO bound met it with headroom
_LENGTHS_DIFFER = 0.25
_CACHE_DIFFERS = 0.15
_COUNT = re.compile(r"[0-9]{1,12}")
_MOST = 1e12  # no figure of a bench result is larger (requests, tokens, ms, req/s)


@dataclass(frozen=True)
class Measured:
    """One benchmarked level, in engine seconds (a simulator's time scale undone)."""

    rps: float
    ttft_p90_ms: float
    tpot_p90_ms: float
    concurrency: int = 1
    tpot_p50_ms: float = 0.0

    def meets(self, slo: SloTarget, margin: float = 1.0) -> bool:
        return (slo.ttft_ms is None or self.ttft_p90_ms <= slo.ttft_ms * margin) and (
            slo.tpot_ms is None or self.tpot_p90_ms <= slo.tpot_ms * margin)


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
    layout: str = "tp"  # a MoE model's layout as the bench ran it (tp when not said)
    kv_tokens: int | None = None  # the KV cache the server said it allocated (vLLM /metrics)

    def resolved(self, cat: Catalog) -> Calibration:
        """The same with catalog ids (the result may name a Hugging Face id or an alias)."""
        return replace(self, model=cat.model(self.model).id, gpu=cat.gpu(self.gpu).id,
                       engine=cat.engine(self.engine).id)

    def matches(self, dep: Deployment) -> bool:
        return (dep.model.id, dep.gpu.id, dep.gpus, dep.quant, dep.engine.id, dep.layout) == (
            self.model, self.gpu, self.gpus, self.quant, self.engine, self.layout)

    def capacity(self, slo: SloTarget) -> float:
        """Requests/s of the best measured level within ``slo`` at p90 (0: none met it)."""
        return max((lv.rps for lv in self.levels if lv.meets(slo)), default=0.0)

    def speed(self, dep: Deployment) -> float:
        """The fitted factor ``k``: geometric mean over the levels of measured over modelled
        rate and modelled over measured TPOT, on the bench's lengths."""
        logs = []
        for lv in self.levels:
            est = operating_point(dep, self.input_len, self.output_len, lv.concurrency)
            if lv.rps > 0 and est.requests_per_s > 0:
                logs.append(math.log(lv.rps / est.requests_per_s))
            if lv.tpot_p50_ms > 0 and est.tpot_ms > 0:
                logs.append(math.log(est.tpot_ms / lv.tpot_p50_ms))
        return math.exp(sum(logs) / len(logs)) if logs else 1.0

    def factor(self, dep: Deployment, slo: SloTarget) -> float:
        """The fitted speed factor (kept for callers of the old name)."""
        return self.speed(dep)

    def caveats(self, s: Sizing) -> list[str]:
        """Why the figure is only a bound or may not transfer to ``s``'s workload."""
        out = []
        met = [lv for lv in self.levels if lv.meets(s.slo)]
        top = max(self.levels, key=lambda lv: lv.rps)
        if met and top in met and top.meets(s.slo, _HEADROOM):
            out.append(f"every level met the SLO with headroom: the measured "
                       f"{self.capacity(s.slo):.2f} req/s is a lower bound, the rest is "
                       "the fitted model")
        if len(self.levels) > 1 and len(met) == 1 and met[0] is min(
                self.levels, key=lambda lv: lv.rps):
            out.append("only the lowest level met the SLO: bench between it and the next")
        held = s.memory.kv_tokens // s.deployment.ranks  # one engine's (a DP rank's)
        if self.kv_tokens and held and abs(self.kv_tokens - held) > _CACHE_DIFFERS * held:
            out.append(f"the benched server held {self.kv_tokens:,} KV tokens, the sizing "
                       f"{held:,}: it ran another memory setting or version, so its "
                       "concurrency limits are not this deployment's")
        for name, bench, want in (("input", self.input_len, s.input_len),
                                  ("output", self.output_len, s.output_len)):
            if abs(bench - want) > _LENGTHS_DIFFER * want:
                out.append(f"the bench's {name} length ({bench}) differs from the "
                           f"workload's ({want})")
        return out


def _scaled(point: OperatingPoint | None, k: float) -> OperatingPoint | None:
    if point is None:
        return None
    return replace(point, ttft_ms=point.ttft_ms / k, tpot_ms=point.tpot_ms / k,
                   e2e_ms=point.e2e_ms / k, requests_per_s=point.requests_per_s * k,
                   output_tok_s=point.output_tok_s * k, total_tok_s=point.total_tok_s * k)


def calibrate(s: Sizing, cal: Calibration) -> Sizing:
    """``s`` with its figures from the engine model fitted to ``cal`` (no SLO point when
    no measured level met the SLO and the fitted model says none would)."""
    dep = s.deployment
    k = cal.speed(dep)
    slo = s.slo
    loose = SloTarget(slo.ttft_ms * k if slo.ttft_ms is not None else None,
                      slo.tpot_ms * k if slo.tpot_ms is not None else None)
    best = slo_concurrency(dep, s.input_len, s.output_len, s.max_seqs, loose)
    slo_point = _scaled(operating_point(dep, s.input_len, s.output_len, best), k) if best \
        else None
    measured = cal.capacity(slo)
    layout = "" if cal.layout == "tp" else f" {cal.layout}"
    where = (f"calibrated from {cal.source} ({cal.model} {cal.quant} on {cal.gpus} x "
             f"{cal.gpu}, {cal.engine}{layout}; levels at concurrency "
             f"{', '.join(str(lv.concurrency) for lv in cal.levels)})")
    if slo_point is None:
        return replace(s, slo_concurrency=0, slo_point=None, estimated=False,
                       calibration=f"{where}: no level met the SLO and the fitted model "
                                   f"({k:.2f}x the estimate's speed) says none would")
    if slo_point.requests_per_s < measured:  # the measured p90 already met it there
        slo_point = replace(slo_point, requests_per_s=measured,
                            output_tok_s=measured * s.output_len,
                            total_tok_s=measured * (s.input_len + s.output_len))
    est = s.slo_point.requests_per_s if s.slo_point else 0.0
    ratio = f", {slo_point.requests_per_s / est:.2f}x the estimate" if est else ""
    parts = [f"{where}: measured {measured:.2f} req/s at the SLO; the engine model fitted "
             f"to the levels runs {k:.2f}x the estimate's speed and gives "
             f"{slo_point.requests_per_s:.2f} req/s at the SLO here{ratio}",
             *cal.caveats(s)]
    return replace(s, point=_scaled(s.point, k), slo_concurrency=best, slo_point=slo_point,
                   estimated=False, calibration="; ".join(parts))


def _value(value: Any, field: str, source: str) -> float | None:
    """A number a result may carry at ``field`` (None where it has none), or an input error
    naming the field: results are files a person may have edited."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 <= value <= _MOST):
        raise InputError(f"{field}: expected a number from 0 to {_MOST:g} (got "
                         f"{str(value)[:40]!r})", where=source)
    return float(value)


def _stat(lv: dict[str, Any], key: str, pct: str, where: str, source: str) -> float | None:
    stats = lv.get(key)
    if stats is not None and not isinstance(stats, dict):
        raise InputError(f"{where}.{key}: expected an object of percentiles (got "
                         f"{str(stats)[:40]!r})", where=source)
    return _value((stats or {}).get(pct), f"{where}.{key}.{pct}", source)


def _level(lv: Any, scale: float, where: str, source: str) -> Measured | None:
    """A trusted level in engine seconds, or None (failed, too few requests, no TTFT)."""
    if not isinstance(lv, dict):
        raise InputError(f"{where}: expected an object (got {str(lv)[:40]!r})", where=source)
    completed = _value(lv.get("completed"), f"{where}.completed", source) or 0.0
    if lv.get("status") == "failed" or lv.get("too_few") or completed < MIN_COMPLETED:
        return None
    ttft = _stat(lv, "ttft_ms", "p90", where, source)
    tpot = _stat(lv, "tpot_ms", "p90", where, source)
    if ttft is None:
        return None
    rps = _positive(lv.get("request_throughput"), f"{where}.request_throughput", source)
    conc = lv.get("concurrency")
    if not isinstance(conc, int) or isinstance(conc, bool) or conc < 1:  # an open loop:
        e2e = (_stat(lv, "e2e_ms", "mean", where, source)  # Little's law
               or _stat(lv, "e2e_ms", "p50", where, source) or 0.0)
        conc = max(1, round(rps * e2e / 1e3))
    return Measured(rps * scale, ttft / scale, (tpot or 0.0) / scale, conc,
                    (_stat(lv, "tpot_ms", "p50", where, source) or 0.0) / scale)


def from_result(data: dict[str, Any], source: str) -> Calibration:
    """Read a ``breakeven.bench/v1`` document (already parsed)."""
    dep = data.get("deployment")
    if not isinstance(dep, dict) or not {"model", "gpu"} <= set(dep):
        raise InputError("the result does not say which deployment it measured; rerun "
                         "bench with --deployment model=ID,gpu=ID,gpus=N,quant=Q,engine=E",
                         where=source)
    server = data.get("server")
    card = server.get("breakeven") if isinstance(server, dict) else None
    card = card if isinstance(card, dict) else {}
    scale = (_positive(card.get("time_scale", 1.0), "server.breakeven.time_scale", source)
             if dep.get("simulated") else 1.0)
    gpus = _positive(dep.get("gpus", 1), "deployment.gpus", source)
    if gpus != int(gpus):
        raise InputError(f"deployment.gpus: expected a whole number (got {gpus:g})",
                         where=source)
    levels, weights, inp, out = [], 0.0, 0.0, 0.0
    if not isinstance(data.get("levels"), list):
        raise InputError("levels: expected a list", where=source)
    read = [(f"levels[{i}]", lv, _level(lv, scale, f"levels[{i}]", source))
            for i, lv in enumerate(data["levels"])]
    trusted = [r for r in read if r[2] is not None]
    on_time = [r for r in trusted if not r[1].get("server_late")]
    late = len(trusted) - len(on_time)
    for where, lv, m in on_time or trusted:  # a sim's late levels only when no other is left
        assert m is not None
        levels.append(m)
        n = lv["completed"]
        weights += n
        inp += (_value(lv.get("mean_input_tokens"), f"{where}.mean_input_tokens", source)
                or 0.0) * n
        out += (_value(lv.get("mean_output_tokens"), f"{where}.mean_output_tokens", source)
                or 0.0) * n
    if not levels or weights == 0:
        raise InputError(f"the result has no successful level to calibrate from (each "
                         f"needs {MIN_COMPLETED} completed requests)", where=source)
    return Calibration(str(dep["model"]), str(dep["gpu"]), int(gpus),
                       str(dep.get("quant", "bf16")), str(dep.get("engine", "vllm")),
                       max(1, round(inp / weights)), max(1, round(out / weights)),
                       tuple(levels), f"{source} ({data.get('created', 'undated')})"
                       + (f" [{late} level(s) where the sim fell behind "
                          f"{'left out' if on_time else 'used: no other'}]" if late else ""),
                       str(dep.get("layout") or "tp"), _cache_tokens(data.get("server_cache")))


def _positive(value: Any, field: str, source: str) -> float:
    """``_value``, and more than 0."""
    number = _value(value, field, source)
    if not number:
        raise InputError(f"{field}: expected a number > 0 (got {str(value)[:40]!r})",
                         where=source)
    return number


def _cache_tokens(cache: Any) -> int | None:
    """KV tokens from the labels of vLLM's ``vllm:cache_config_info`` (blocks x block size;
    None where the result has none or they are not numbers)."""
    if not isinstance(cache, dict):
        return None
    blocks, size = str(cache.get("num_gpu_blocks", "")), str(cache.get("block_size", ""))
    if not (_COUNT.fullmatch(blocks) and _COUNT.fullmatch(size)):  # ASCII digits only:
        return None  # str.isdigit() passes '²', which int() refuses
    return int(blocks) * int(size) or None
