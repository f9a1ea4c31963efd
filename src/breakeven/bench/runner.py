"""Levels of load: what each one sends, split over worker processes, and what came back.

Load modes: closed-loop concurrency levels, open-loop request rates (constant, or Poisson
with optional burstiness: gamma-distributed gaps with shape ``burstiness``, as vLLM's
benchmark draws them), a timestamped trace replayed as recorded, and a sweep (one caller
for the idle point, a closed loop at high concurrency for saturation, then evenly spaced
rates between the two).
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing as mp
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from breakeven.bench.bounds import MOST_REQUESTS
from breakeven.bench.client import Target, Work, WorkerResult, run_work, send_one
from breakeven.bench.metrics import Record, Slo, percentiles, summarise
from breakeven.bench.workload import RequestSpec
from breakeven.errors import BreakevenError
from breakeven.event_loop import event_loop
from breakeven.prometheus import samples

__all__ = ["MIN_COMPLETED", "BenchError", "Level", "Load", "Runner", "offsets", "preflight",
           "server_cache", "server_lateness", "sweep_rates"]

_SATURATED_CPU = 0.9  # a worker busier than this cannot be trusted to send on time
_SATURATED_LAG_MS = 10.0
_BUSY_CPU = 0.5  # late sends count against the client only when it was this busy
MIN_COMPLETED = 50  # a level with fewer completed requests is ``too_few`` to trust


class BenchError(BreakevenError):
    """The target cannot be benchmarked at all (unreachable, wrong model, refused key)."""


@dataclass(frozen=True)
class Level:
    mode: str  # "concurrency" | "rate" | "trace"
    value: float = 0.0
    arrival: str = "poisson"  # rate mode: "constant" | "poisson"
    burstiness: float = 1.0

    @property
    def label(self) -> str:
        if self.mode == "concurrency":
            return f"concurrency {self.value:g}"
        if self.mode == "rate":
            return f"{self.value:.4g} req/s {self.arrival}"
        return "trace replay"


@dataclass(frozen=True)
class Load:
    """How much each level sends."""

    requests: int | None = 200  # measured requests per level (warm-up extra)
    duration_s: float | None = None  # or: seconds of measured sending per level
    warmup: float = 0.1  # fraction of the measured requests / duration sent first
    workers: int = 1
    seed: int = 0
    stagger_s: float = 0.2  # closed loop: the callers' first sends spread over this

    def as_dict(self) -> dict[str, Any]:
        """Every setting, for the result document."""
        return {"requests": self.requests, "duration_s": self.duration_s,
                "warmup": self.warmup, "workers": self.workers, "seed": self.seed,
                "stagger_s": self.stagger_s, "min_completed": MIN_COMPLETED}


def offsets(level: Level, count: int, rng: random.Random) -> list[float]:
    """Send times (seconds from the level's start) of ``count`` open-loop requests."""
    rate = level.value
    if level.arrival == "constant":
        return [i / rate for i in range(count)]
    shape = level.burstiness
    t, out = 0.0, []
    for _ in range(count):
        out.append(t)
        t += rng.gammavariate(shape, 1 / (rate * shape))
    return out


def _split(work: Work, n: int) -> list[Work]:
    """One level's work for ``n`` processes: offsets dealt round-robin, callers divided."""
    if n <= 1:
        return [work]
    parts = []
    for k in range(n):
        if work.offsets is not None:
            offs = work.offsets[k::n]
            parts.append(replace(work, offsets=offs, specs=work.specs[k::n] or work.specs,
                                 warmup=len([i for i in range(k, work.warmup, n)])))
        else:
            conc = work.concurrency // n + (1 if k < work.concurrency % n else 0)
            count = None if work.count is None else (
                work.count // n + (1 if k < work.count % n else 0))
            parts.append(replace(work, concurrency=max(conc, 1), count=count,
                                 specs=work.specs[k::n] or work.specs,
                                 warmup=math.ceil(work.warmup / n)))
    return [p for p in parts if p.offsets is None or p.offsets]


_progress_counter: Any = None


def _init_worker(counter: Any) -> None:
    global _progress_counter
    _progress_counter = counter


def _bump(n: int) -> None:
    with _progress_counter.get_lock():
        _progress_counter.value += n


def _worker(work: Work) -> WorkerResult:
    with asyncio.Runner(loop_factory=event_loop) as runner:
        return runner.run(run_work(work, _bump))


async def server_lateness(target: Target) -> dict[str, float] | None:
    """A breakeven sim's own counters: how far it fell behind its schedule (its model card's
    ``breakeven.lateness``) and its prefix cache's ``prefix_cache_queries`` and
    ``prefix_cache_hits`` (``breakeven.prefix_cache``), or None from any other server."""
    timeout = aiohttp.ClientTimeout(total=min(target.timeout_s, 10))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                f"{target.url.rstrip('/')}/models", headers=target.headers()) as resp:
            listing = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    for card in (listing or {}).get("data") or []:
        sim = card.get("breakeven") if isinstance(card, dict) else None
        if card.get("id") == target.model and isinstance(sim, dict) and isinstance(
                sim.get("lateness"), dict):
            cache = sim.get("prefix_cache")
            extra = {f"prefix_cache_{k}": float(cache[k]) for k in ("queries", "hits")
                     if isinstance(cache, dict) and isinstance(cache.get(k), int | float)}
            return dict(sim["lateness"]) | extra
    return None


async def preflight(target: Target, spec: RequestSpec) -> dict[str, Any] | None:
    """Check the target once before loading it: reachable, serving the model, accepting
    the key, answering one request. Returns the server's model card when it lists one."""
    card = None
    timeout = aiohttp.ClientTimeout(total=min(target.timeout_s, 30))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            async with session.get(f"{target.url.rstrip('/')}/models",
                                   headers=target.headers()) as resp:
                if resp.status == 200:
                    listing = await resp.json(content_type=None)
                    data = listing.get("data") if isinstance(listing, dict) else None
                    ids = [m.get("id") for m in data or [] if isinstance(m, dict)]
                    if ids and target.model not in ids:
                        raise BenchError(f"{target.url} does not serve model "
                                         f"{target.model!r}; it serves: {', '.join(map(str, ids))}")
                    card = next((m for m in data or [] if m.get("id") == target.model), None)
        except aiohttp.ClientConnectorError as exc:
            raise BenchError(f"cannot reach {target.url}: {exc.os_error or exc}") from None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            pass  # not every server lists models; the test request decides
        rec = Record(scheduled=time.perf_counter())
        await send_one(session, replace(target, timeout_s=min(target.timeout_s, 120)),
                       replace(spec, max_tokens=min(spec.max_tokens, 16)), rec)
    if rec.error:
        hint = ""
        if rec.error in ("http_401", "http_403"):
            hint = "; give the API key with --api-key-env VAR"
        elif rec.error == "http_404":
            hint = "; check --url (it should end in /v1) and --model"
        raise BenchError(f"test request to {target.url} failed ({rec.error}): "
                         f"{rec.detail}{hint}")
    return card


_MOST_METRICS_BYTES = 8 << 20  # a /metrics page is read this far, no further


async def server_cache(target: Target) -> dict[str, str] | None:
    """The KV cache the server allocated, as vLLM's ``/metrics`` states it (the labels of
    its ``vllm:cache_config_info`` info gauge: ``num_gpu_blocks``, ``block_size``,
    ``gpu_memory_utilization``, ...); None where the server exposes no such gauge."""
    root = target.url.rstrip("/").removesuffix("/v1")
    timeout = aiohttp.ClientTimeout(total=min(target.timeout_s, 10))
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(
                f"{root}/metrics", headers=target.headers()) as resp:
            if resp.status != 200:
                return None
            text = (await resp.content.read(_MOST_METRICS_BYTES)).decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return next((labels for labels, _ in samples(text, "vllm:cache_config_info")), None)


class Runner:
    """Runs levels one after another against one target with one set of requests."""

    def __init__(self, target: Target, specs: list[RequestSpec], load: Load,
                 slo: Slo | None = None,
                 on_progress: Callable[[Level, int, int], None] | None = None) -> None:
        self.target = target
        self.specs = specs
        self.load = load
        self.slo = slo
        self.on_progress = on_progress
        self._pool: ProcessPoolExecutor | None = None
        self._counter: Any = None

    def __enter__(self) -> Runner:
        if self.load.workers > 1:
            ctx = mp.get_context("spawn")
            self._counter = ctx.Value("q", 0)
            self._pool = ProcessPoolExecutor(self.load.workers, mp_context=ctx,
                                             initializer=_init_worker,
                                             initargs=(self._counter,))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _work(self, level: Level) -> tuple[Work, int]:
        load = self.load
        rng = random.Random(load.seed)
        start_at = time.perf_counter() + (0.5 if self._pool else 0.0)
        if level.mode == "trace":
            stamps = [s.timestamp or 0.0 for s in self.specs]
            order = sorted(range(len(stamps)), key=stamps.__getitem__)
            specs = [self.specs[i] for i in order]
            base = stamps[order[0]]
            offs = [stamps[i] - base for i in order]
            return Work(self.target, specs, offsets=offs, start_at=start_at), len(offs)
        if load.duration_s is not None:
            warm_s = load.duration_s * load.warmup
            if level.mode == "rate":
                count = max(1, math.ceil(level.value * (load.duration_s + warm_s)))
                if count > MOST_REQUESTS:  # a sweep's rates are known only here
                    raise BenchError(f"{level.label} for {load.duration_s:,g} s is "
                                     f"{count:,} requests, more than a bench sends a level "
                                     f"(at most {MOST_REQUESTS:,})")
                return Work(self.target, self.specs, offsets=offsets(level, count, rng),
                            warmup_s=warm_s, start_at=start_at), count
            return Work(self.target, self.specs, concurrency=int(level.value),
                        duration_s=load.duration_s + warm_s, warmup_s=warm_s,
                        start_at=start_at, stagger_s=load.stagger_s), 0
        measured = load.requests or 200
        warm = math.ceil(measured * load.warmup)
        if level.mode == "rate":
            return Work(self.target, self.specs, offsets=offsets(level, measured + warm, rng),
                        warmup=warm, start_at=start_at), measured + warm
        return Work(self.target, self.specs, concurrency=int(level.value), count=measured + warm,
                    warmup=warm, start_at=start_at, stagger_s=load.stagger_s), measured + warm

    def run(self, level: Level) -> dict[str, Any]:
        work, planned = self._work(level)
        parts = _split(work, self.load.workers)
        started = time.perf_counter()
        if self._pool is None:
            done = [0]

            def bump(n: int) -> None:
                done[0] += n
                if self.on_progress is not None:
                    self.on_progress(level, done[0], planned)

            with asyncio.Runner(loop_factory=event_loop) as runner:
                results = [runner.run(run_work(parts[0], bump))]
        else:
            with self._counter.get_lock():
                self._counter.value = 0
            futures = [self._pool.submit(_worker, part) for part in parts]
            while not all(f.done() for f in futures):
                time.sleep(0.1)
                if self.on_progress is not None:
                    self.on_progress(level, self._counter.value, planned)
            results = [f.result() for f in futures]
        records = [r for res in results for r in res.records]
        summary = summarise(records, self.slo)
        lags = [lag for res in results for lag in res.loop_lag_ms]
        cpu = max((res.cpu_s / res.wall_s if res.wall_s else 0.0) for res in results)
        lag = percentiles(lags, scale=1.0)
        send_lag = summary.get("send_lag_ms") or {}
        saturated_by, late = _saturation(cpu, send_lag.get("p99", 0.0), level.mode)
        failed = summary["completed"] == 0 or summary["failed"] > summary["requests"] / 2
        samples: dict[str, str] = {}
        for r in records:
            if r.error and r.error not in samples and r.detail:
                samples[r.error] = r.detail
        return {
            "level": level.label,
            "mode": level.mode,
            "concurrency": int(level.value) if level.mode == "concurrency" else None,
            "rate": level.value if level.mode == "rate" else None,
            "arrival": level.arrival if level.mode == "rate" else None,
            "burstiness": level.burstiness if level.mode == "rate" else None,
            "status": "failed" if failed else ("degraded" if summary["failed"] else "ok"),
            "too_few": summary["completed"] < MIN_COMPLETED,
            **summary,
            "error_samples": samples,
            "wall_s": time.perf_counter() - started,
            "client": {
                "workers": len(parts),
                "cpu_fraction": round(cpu, 3),
                "cpu_s": round(sum(res.cpu_s for res in results), 3),
                "loop_lag_ms": lag,
                "saturated": saturated_by is not None,
                "saturated_by": saturated_by,  # the figure that says so
                "late_sends": late,  # sent late though the client was not busy: the host was
            },
        }


def _saturation(cpu: float, send_lag_p99_ms: float, mode: str) -> tuple[str | None, str | None]:
    """(what says the client saturated, what says the host delayed it): judged on the
    client's own CPU time and, open loop, on how late it sent; loop lag or late sends with
    an idle client are other processes' load, not the client's."""
    if cpu > _SATURATED_CPU:
        return f"the client's own CPU at {cpu:.0%} of a core", None
    if mode == "concurrency" or send_lag_p99_ms <= _SATURATED_LAG_MS:
        return None, None
    if cpu > _BUSY_CPU:
        return (f"send lag p99 {send_lag_p99_ms:,.1f} ms with the client's own CPU at "
                f"{cpu:.0%} of a core"), None
    return None, (f"send lag p99 {send_lag_p99_ms:,.1f} ms while the client used {cpu:.0%} "
                  "of a core: other processes on the host delayed it")


def sweep_rates(idle: dict[str, Any], saturation: dict[str, Any], points: int,
                arrival: str = "poisson", burstiness: float = 1.0) -> list[Level]:
    """``points`` rates evenly spaced from the idle throughput up to saturation."""
    lo = idle["request_throughput"]
    hi = max(saturation["request_throughput"], lo)
    if hi <= 0:
        return []
    return [Level("rate", lo + (hi - lo) * k / points, arrival, burstiness)
            for k in range(1, points + 1)]
