"""The self-hosted pools: replicas, what they cost, what they can serve, how busy they were.
Pure.

Replicas of one model (same kind and model, hosted ``self``, with a GPU cost) form a pool,
keyed ``kind:model``. A pool costs its GPUs' hourly price whether used or not, and can
serve the sum of its replicas' ``capacity_tokens_per_s``.

Invariants:

- every self-hosted backend with a GPU cost is in exactly one pool; pools keep the
  config's order, and a pool's backends theirs;
- **utilisation** is tokens served / (capacity x seconds), per pool, per hour and over the
  window; ``None`` where there is no capacity (no pool) or no time;
- replicas **needed** for a series of hourly tokens: the busiest covered hour's token rate
  / (one replica's capacity x the target peak load), rounded up; 0 for no traffic. This
  is the replica step function every move and counterfactual is priced by.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from breakeven.gateway.config import GatewayConfig
from breakeven.report._num import ratio, rounded
from breakeven.report.window import H, Window, iso

__all__ = ["Pool", "Served", "Utilisation", "needed", "peak", "plus", "pools",
           "utilisation"]


@dataclass(frozen=True)
class Pool:
    """Replicas of one self-hosted model."""

    key: str
    backends: tuple[str, ...]
    usd_per_hour: float  # all replicas
    capacity: float  # tokens/s, all replicas

    @property
    def replicas(self) -> int:
        return len(self.backends)

    @property
    def per_replica(self) -> tuple[float, float]:
        """One replica's (usd per hour, tokens/s)."""
        return self.usd_per_hour / self.replicas, self.capacity / self.replicas


@dataclass(frozen=True)
class Served:
    """Tokens each pool served, by pool key, then hour (every pool has an entry; an hour
    is there once any of its traffic was, even at 0 tokens); ``batch``: the batch share."""

    hourly: dict[str, dict[int, float]]
    batch: dict[str, dict[int, float]]


@dataclass(frozen=True)
class Utilisation:
    """How busy the pools were over the window: the report's ``utilisation`` section."""

    capacity: float  # tokens/s, all pools
    mean: float | None
    mean_without_batch: float | None
    peak_to_mean: float | None  # of the hourly token rate on all pools
    pools: list[dict[str, Any]]
    by_hour: list[dict[str, Any]]
    notes: tuple[str, ...]  # pools that served more than their configured capacity

    def section(self) -> dict[str, Any]:
        return {
            "capacity_tokens_per_s": round(self.capacity, 1),
            "mean": rounded(self.mean, 4),
            "mean_without_batch": rounded(self.mean_without_batch, 4),
            "peak_to_mean": rounded(self.peak_to_mean, 3),
            "pools": self.pools, "by_hour": self.by_hour,
        }


def pools(cfg: GatewayConfig | None) -> dict[str, Pool]:
    """The config's self-hosted pools, by key."""
    names: dict[str, list[str]] = {}
    usd: dict[str, float] = {}
    capacity: dict[str, float] = {}
    for b in cfg.backends if cfg else ():
        if b.hosting != "self" or b.gpu is None:
            continue
        key = f"{b.kind}:{b.model}"
        names.setdefault(key, []).append(b.name)
        usd[key] = usd.get(key, 0.0) + b.gpu.count * b.gpu.usd_per_gpu_hour
        capacity[key] = capacity.get(key, 0.0) + b.gpu.capacity_tokens_per_s
    return {key: Pool(key, tuple(backends), usd[key], capacity[key])
            for key, backends in names.items()}


def plus(*series: dict[int, float]) -> dict[int, float]:
    """Hourly token series added up."""
    out: dict[int, float] = defaultdict(float)
    for hourly in series:
        for h, t in hourly.items():
            out[h] += t
    return out


def peak(hourly: dict[int, float], covered: dict[int, float]) -> float:
    """The busiest hour's rate (tokens/s) in ``hourly``."""
    return max((tokens / covered[h] for h, tokens in hourly.items() if covered.get(h)),
               default=0.0)


def needed(hourly: dict[int, float], covered: dict[int, float], per_replica: float,
           target: float) -> int:
    """Replicas that serve the busiest hour of ``hourly`` (tokens) at the target load."""
    top = peak(hourly, covered)
    return math.ceil(top / (per_replica * target) - 1e-9) if top > 0 else 0


def _pool_row(p: Pool, hourly: dict[int, float], w: Window, target: float
              ) -> dict[str, Any]:
    used = sum(hourly.values())
    return {
        "pool": p.key, "backends": list(p.backends), "replicas": p.replicas,
        "usd_per_hour": round(p.usd_per_hour, 4),
        "capacity_tokens_per_s": round(p.capacity, 1), "tokens": int(used),
        "utilisation": rounded(ratio(used, p.capacity * w.hours * H), 4),
        "needed_replicas": needed(hourly, w.covered, p.per_replica[1], target)}


def _over_capacity(p: Pool, hourly: dict[int, float], w: Window) -> str | None:
    top = peak(hourly, w.covered)
    if top > p.capacity:
        return (f"pool {p.key} served {top:,.0f} tokens/s in its busiest hour, more "
                f"than the {p.capacity:,.0f} its config says it can: "
                "capacity_tokens_per_s is an underestimate (measure it with "
                "'breakeven bench' and 'plan --calibrate')")
    return None


def utilisation(by_key: dict[str, Pool], served: Served, w: Window,
                target: float) -> Utilisation:
    """The pools' utilisation over the window, from the tokens they served."""
    every = list(by_key.values())
    hourly = [served.hourly[p.key] for p in every]
    batch = [served.batch[p.key] for p in every]
    capacity = sum(p.capacity for p in every)
    by_hour = []
    for h, secs in w.covered.items():
        cap = capacity * secs
        used = sum(s.get(h, 0.0) for s in hourly)
        used_batch = sum(s.get(h, 0.0) for s in batch)
        by_hour.append({"hour": iso(h * H), "utilisation": rounded(ratio(used, cap), 4),
                        "without_batch": rounded(ratio(used - used_batch, cap), 4)})
    total = sum(sum(s.values()) for s in hourly)
    total_batch = sum(sum(s.values()) for s in batch)
    rates = [sum(s.get(h, 0.0) for s in hourly) / secs for h, secs in w.covered.items()]
    mean_rate = ratio(total, w.hours * H) or 0.0
    notes = (_over_capacity(p, s, w) for p, s in zip(every, hourly, strict=True))
    return Utilisation(
        capacity=capacity,
        mean=ratio(total, capacity * w.hours * H),
        mean_without_batch=ratio(total - total_batch, capacity * w.hours * H),
        peak_to_mean=max(rates) / mean_rate if mean_rate > 0 else None,
        pools=[_pool_row(p, s, w, target) for p, s in zip(every, hourly, strict=True)],
        by_hour=by_hour,
        notes=tuple(n for n in notes if n is not None))
