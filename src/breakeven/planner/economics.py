"""Economics: what each side costs per month, utilisation, and the break-even volume. Pure.

Hosted cost is per token: requests x (uncached input x input price + cached input x cached
price + output x output price). Self-hosted cost is per GPU-hour whatever the traffic:
replicas x GPUs x hours x price, plus ops time (a fraction of an engineer) which is shown
separately and never silently zero. Replicas are sized for the *peak*: a replica may run at
``target_peak_load`` of its capacity at peak; utilisation is mean demand over provisioned
capacity across the hours that are paid for. A month is ``month_days`` long (30 by default,
as in the usual back-of-envelope maths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from breakeven.catalog.schema import HostedModel

__all__ = [
    "Breakeven",
    "Demand",
    "Load",
    "Pool",
    "batch_priced",
    "breakeven_volume",
    "hosted_monthly_usd",
    "hosted_usd_per_request",
    "load_of",
    "paid_hours_per_month",
    "pool",
    "pool_of_loads",
    "pool_usd",
]


@dataclass(frozen=True)
class Demand:
    """One stream of traffic with one shape."""

    requests_per_day: float
    input_tokens: int
    output_tokens: int
    cached_input_fraction: float = 0.0
    peak_to_mean: float = 1.0
    hours_per_day: float = 24.0
    days_per_week: float = 7.0
    month_days: float = 30.0
    batch: bool = False

    @property
    def tokens_per_request(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def tokens_per_day(self) -> float:
        return self.requests_per_day * self.tokens_per_request

    @property
    def active_days_per_month(self) -> float:
        return self.month_days * self.days_per_week / 7

    @property
    def requests_per_month(self) -> float:
        return self.requests_per_day * self.active_days_per_month

    @property
    def tokens_per_month(self) -> float:
        return self.requests_per_month * self.tokens_per_request

    @property
    def mean_rps(self) -> float:
        """Mean request rate while traffic flows (batch work may use the whole day)."""
        hours = 24.0 if self.batch else self.hours_per_day
        return self.requests_per_day / (hours * 3600)

    @property
    def peak_rps(self) -> float:
        return self.mean_rps * (1.0 if self.batch else self.peak_to_mean)


def batch_priced(model: HostedModel, demand: Demand) -> bool:
    """Whether ``demand`` pays ``model``'s Batch API rates: batch work, and a row that has them."""
    return demand.batch and model.batch_input_per_mtok is not None


def hosted_usd_per_request(model: HostedModel, demand: Demand) -> float:
    """Interactive rates, or the row's batch rates for batch work (about half, where sold);
    a cached prefix never costs more than the batch input rate."""
    input_price, output_price = model.input_per_mtok, model.output_per_mtok
    cached_price = model.cached_input_per_mtok
    if batch_priced(model, demand):
        assert model.batch_input_per_mtok is not None
        input_price = model.batch_input_per_mtok
        output_price = model.batch_output_per_mtok or 0.0
        if cached_price is not None:
            cached_price = min(cached_price, input_price)
    cached = demand.cached_input_fraction if cached_price is not None else 0.0
    return (
        demand.input_tokens * (1 - cached) * input_price
        + demand.input_tokens * cached * (cached_price or 0.0)
        + demand.output_tokens * output_price
    ) / 1e6


def hosted_monthly_usd(model: HostedModel, demand: Demand) -> float:
    return hosted_usd_per_request(model, demand) * demand.requests_per_month


def paid_hours_per_month(demand: Demand, always_on: bool = True) -> float:
    if always_on:
        return 24 * demand.month_days
    return demand.hours_per_day * demand.active_days_per_month


@dataclass(frozen=True)
class Pool:
    """Self-hosted replicas shared by several demands."""

    replicas: int
    gpus_per_replica: int
    usd_per_gpu_hour: float
    paid_hours: float
    gpu_usd: float
    ops_usd: float
    utilisation: float
    peak_load: float

    @property
    def gpu_count(self) -> int:
        return self.replicas * self.gpus_per_replica

    @property
    def monthly_usd(self) -> float:
        return self.gpu_usd + self.ops_usd


def pool(
    demands: list[tuple[Demand, float]],
    *,
    gpus_per_replica: int,
    usd_per_gpu_hour: float,
    ops_usd: float,
    target_peak_load: float,
    always_on: bool = True,
    min_billed_gpus: int = 1,
) -> Pool:
    """Size replicas for ``(demand, capacity_rps_per_replica)`` pairs sharing one deployment.

    Each demand's load is counted in replica-seconds per second, so demands with different
    token shapes add up correctly on the same GPUs. Offers rented by the node bill at least
    ``min_billed_gpus`` GPUs however few the replicas use.
    """
    return pool_of_loads([load_of(d, cap, always_on) for d, cap in demands],
                         gpus_per_replica=gpus_per_replica, usd_per_gpu_hour=usd_per_gpu_hour,
                         ops_usd=ops_usd, target_peak_load=target_peak_load,
                         min_billed_gpus=min_billed_gpus)


class Load(NamedTuple):
    """One demand on replicas of one deployment: replicas busy at its peak, the hours a
    month it needs them paid, the replica-seconds a month it takes."""

    peak: float
    hours: float
    served: float


def load_of(demand: Demand, capacity_rps: float, always_on: bool = True) -> Load:
    """What ``demand`` puts on replicas that each serve ``capacity_rps`` of it."""
    return Load(demand.peak_rps / capacity_rps, paid_hours_per_month(demand, always_on),
                demand.requests_per_month / capacity_rps)


def _replicas(loads: list[Load], target_peak_load: float) -> tuple[int, float, float]:
    if not loads:
        raise ValueError("a pool needs at least one demand")
    peak = sum(lo.peak for lo in loads)
    return (max(1, math.ceil(peak / target_peak_load - 1e-9)), max(lo.hours for lo in loads),
            peak)


def pool_of_loads(loads: list[Load], *, gpus_per_replica: int, usd_per_gpu_hour: float,
                  ops_usd: float, target_peak_load: float, min_billed_gpus: int = 1) -> Pool:
    """``pool`` of loads already worked out (the planner prices every subset of segments on
    a deployment from each segment's load, computed once)."""
    replicas, hours, peak = _replicas(loads, target_peak_load)
    served = sum(lo.served for lo in loads)  # replica-seconds
    utilisation = served / (replicas * hours * 3600)
    gpu_usd = max(replicas * gpus_per_replica, min_billed_gpus) * usd_per_gpu_hour * hours
    return Pool(replicas, gpus_per_replica, usd_per_gpu_hour, hours, gpu_usd, ops_usd,
                utilisation, peak / replicas)


def pool_usd(loads: list[Load], *, gpus_per_replica: int, usd_per_gpu_hour: float,
             ops_usd: float, target_peak_load: float, min_billed_gpus: int = 1) -> float:
    """``pool_of_loads(...).monthly_usd`` without building the ``Pool``."""
    replicas, hours, _ = _replicas(loads, target_peak_load)
    gpu_usd = max(replicas * gpus_per_replica, min_billed_gpus) * usd_per_gpu_hour * hours
    return gpu_usd + ops_usd


@dataclass(frozen=True)
class Breakeven:
    """Daily token volume at which self-hosting costs what the hosted API costs."""

    tokens_per_day: float | None
    replicas: int | None
    hosted_usd_per_mtok: float
    replica_monthly_usd: float
    replica_tokens_per_day: float
    note: str
    ops_usd: float = 0.0
    active_days_per_month: float = 30.0
    replica_full_tokens_per_day: float = 0.0  # at 100% load, flat traffic

    def curve(self, tokens_per_day: float) -> tuple[float, float, float]:
        """(hosted USD/month, self-hosted USD/month, utilisation) at a daily volume."""
        hosted = self.hosted_usd_per_mtok / 1e6 * tokens_per_day * self.active_days_per_month
        if self.replica_tokens_per_day <= 0:
            return hosted, math.inf, 0.0
        replicas = max(1, math.ceil(tokens_per_day / self.replica_tokens_per_day - 1e-9))
        selfhost = self.ops_usd + replicas * self.replica_monthly_usd
        util = tokens_per_day / (replicas * self.replica_full_tokens_per_day)
        return hosted, selfhost, util


def breakeven_volume(
    demand: Demand,
    *,
    hosted_usd_per_request: float,
    capacity_rps: float,
    replica_monthly_usd: float,
    ops_usd: float,
    target_peak_load: float,
    max_replicas: int = 100_000,
) -> Breakeven:
    """Walk the step function of replica counts for the first volume where self wins.

    Self-hosted cost is ``ops + c * ceil(V / K)`` with ``K`` the daily tokens one replica
    serves at the allowed peak load for this traffic shape; hosted is linear in ``V``.
    """
    per_token = hosted_usd_per_request / demand.tokens_per_request
    slope = per_token * demand.active_days_per_month  # hosted USD/month per token/day
    peak_factor = 1.0 if demand.batch else demand.peak_to_mean
    hours = 24.0 if demand.batch else demand.hours_per_day
    k = capacity_rps * target_peak_load * hours * 3600 / peak_factor * demand.tokens_per_request
    c = replica_monthly_usd
    mtok = per_token * 1e6
    full = capacity_rps * 24 * 3600 * demand.tokens_per_request
    extra = (ops_usd, demand.active_days_per_month, full)
    if slope <= 0:
        return Breakeven(None, None, mtok, c, k, "the hosted side is free at this price", *extra)
    if slope * k <= c:
        return Breakeven(
            None, None, mtok, c, k,
            f"self-hosting never pays on this shape: a fully loaded replica costs "
            f"${c:,.0f}/month, the hosted API serves the same {k / 1e6:,.1f}M tokens/day for "
            f"${slope * k:,.0f}/month", *extra,
        )
    for n in range(1, max_replicas + 1):
        v = (ops_usd + c * n) / slope
        if v <= n * k:
            v = max(v, (n - 1) * k)
            return Breakeven(v, n, mtok, c, k,
                             f"self-hosting pays from {v / 1e6:,.1f}M tokens/day ({n} replica"
                             f"{'s' if n > 1 else ''})", *extra)
    return Breakeven(None, None, mtok, c, k, "no crossover within the replica limit", *extra)
